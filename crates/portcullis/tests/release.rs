//! The quarantine's release workflow against the real binary: mail held by a
//! rule, found by that rule, released through the CLI and the API to a real
//! smtp-sink, exactly once, per recipient, with its status followed to
//! `delivered`; deletion; the audit log; and an interrupted release settled at
//! the next start.

mod common;
use common::{Gateway, Sink};
use std::time::Duration;

/// A gateway accepting example.test for the sink, where a subject containing
/// HOLDME is held (quarantine threshold 8) by the admin rule `HOLD_ME`.
fn gateway(sink: &Sink) -> Gateway {
    Gateway::start(
        "",
        &format!(
            "[[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:{}\"\n\
             [[scan.rules]]\nname = \"HOLD_ME\"\npart = \"header\"\nheader = \"Subject\"\n\
             pattern = \"HOLDME\"\nscore = 9.0\ncategory = \"spam\"\ndetail = \"test rule\"\n\
             [[scan.rules]]\nname = \"HOLD_OTHER\"\npart = \"header\"\nheader = \"Subject\"\n\
             pattern = \"KEEPME\"\nscore = 9.0\ncategory = \"spam\"\ndetail = \"other rule\"\n\
             [quarantine]\nretention_days = 14\n[quarantine.retention_by_category]\nspam = 20\n",
            sink.port
        ),
    )
}

fn send(gw: &Gateway, to: &[&str], subject: &str) -> String {
    let mut args = vec!["--from", "sender@outside.test"];
    let joined = to.join(",");
    args.extend(["--to", &joined]);
    let header = format!("Subject: {subject}");
    args.extend(["--header", &header, "--body", "Please hold this.\n"]);
    let run = gw.swaks(&args);
    assert!(
        run.server_said("250 2.0.0 Ok: queued as"),
        "{}",
        run.transcript
    );
    let id = run.queue_id();
    gw.wait_status(&id, "quarantined");
    id
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn statuses(gw: &Gateway, id: &str) -> Vec<(String, String)> {
    let shown = json(&gw.cli(&["quarantine", "show", id, "--format", "json"]));
    shown["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["recipient"].as_str().unwrap_or_default().to_string(),
                e["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn wait_statuses(gw: &Gateway, id: &str, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(r, s)| (r.to_string(), s.to_string()))
        .collect();
    common::wait_until(
        &format!("{id} to reach {want:?}"),
        Duration::from_secs(20),
        || statuses(gw, id) == want,
    );
}

#[test]
fn held_mail_is_found_by_its_rule_and_released_once_per_recipient_to_the_server_downstream() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let id = send(
        &gw,
        &["alice@example.test", "bob@example.test"],
        "HOLDME invoice",
    );

    // One entry per recipient, found by the rule that held it, with the
    // category's retention (20 days, not the default 14).
    let list = json(&gw.cli(&[
        "quarantine",
        "list",
        "--symbol",
        "HOLD_ME",
        "--format",
        "json",
    ]));
    let entries = list.as_array().expect("array");
    assert_eq!(entries.len(), 2, "{list:#}");
    for e in entries {
        assert_eq!(e["message"], id.as_str());
        assert_eq!(e["status"], "held");
        assert_eq!(e["category"], "spam");
        let kept = e["expires_at"].as_i64().unwrap() - e["received_at"].as_i64().unwrap();
        // (received_at is when the trace recorded it, a moment after the hold)
        assert!((kept - 20 * 24 * 3600 * 1000).abs() < 1000, "{e:#}");
    }
    let none = json(&gw.cli(&[
        "quarantine",
        "list",
        "--symbol",
        "GTUBE",
        "--format",
        "json",
    ]));
    assert_eq!(none.as_array().map(Vec::len), Some(0));

    // Release to one recipient: only she gets it.
    let out = gw.cli(&[
        "quarantine",
        "release",
        &id,
        "--recipient",
        "alice@example.test",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.contains("released") && said.contains("alice@example.test"),
        "{said}"
    );
    let got = sink.wait_for(1);
    assert!(got[0].contains("HOLDME invoice"), "{}", got[0]);
    wait_statuses(
        &gw,
        &id,
        &[
            ("alice@example.test", "delivered"),
            ("bob@example.test", "held"),
        ],
    );

    // Releasing her again does nothing; the exit status says so.
    let again = gw.cli(&[
        "quarantine",
        "release",
        &id,
        "--recipient",
        "alice@example.test",
    ]);
    assert_eq!(again.status.code(), Some(3), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("alice@example.test is delivered"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // Releasing the whole message reaches only bob, the one still held.
    let rest = gw.cli(&["quarantine", "release", &id]);
    assert!(
        rest.status.success(),
        "{}",
        String::from_utf8_lossy(&rest.stderr)
    );
    assert!(String::from_utf8_lossy(&rest.stdout).contains("bob@example.test"));
    wait_statuses(
        &gw,
        &id,
        &[
            ("alice@example.test", "delivered"),
            ("bob@example.test", "delivered"),
        ],
    );
    let all = sink.wait_for(2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sink.messages().len(),
        2,
        "exactly one copy per recipient: {all:?}"
    );

    // The trace of the held message tells the story, and the audit log says who.
    let m = gw.wait_status(&id, "released");
    let kinds: Vec<_> = m["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "released").count(),
        2,
        "{kinds:?}"
    );
    let (code, body) = gw.http_get("/api/quarantine?status=delivered");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["entries"].as_array().map(Vec::len), Some(2), "{v:#}");
}

#[test]
fn two_releases_at_once_deliver_one_copy() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let id = send(&gw, &["carol@example.test"], "HOLDME race");
    let port = gw.http;
    let path = format!("/api/quarantine/{id}/release");
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || common::http(port, "POST", &path).0)
        })
        .collect();
    let codes: Vec<u16> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 409), "{codes:?}");
    sink.wait_for(1);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(sink.messages().len(), 1);
}

#[test]
fn deleted_mail_is_gone_cannot_be_released_and_the_audit_log_says_who() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let id = send(&gw, &["dave@example.test"], "HOLDME delete me");
    let out = gw.cli(&["quarantine", "delete", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        statuses(&gw, &id),
        [("dave@example.test".to_string(), "deleted".to_string())]
    );
    // The stored message is removed once no recipient can be released.
    assert!(!gw
        .data()
        .join("quarantine")
        .join(format!("{id}.held"))
        .exists());
    let release = gw.cli(&["quarantine", "release", &id]);
    assert_eq!(release.status.code(), Some(3), "{release:?}");
    assert_eq!(
        gw.cli(&["quarantine", "release", "NOSUCHID"]).status.code(),
        Some(1)
    );
    let (code, _) = common::http(gw.http, "POST", "/api/quarantine/NOSUCHID/release");
    assert_eq!(code, 404);
    gw.wait_status(&id, "deleted");
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.messages().is_empty());

    let store = rusqlite::Connection::open(gw.data().join("trace.sqlite")).unwrap();
    let (actor, action, count): (String, String, i64) = store
        .query_row(
            "SELECT actor, action, count FROM audit WHERE target = ?",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(
        actor.starts_with("cli:") && actor.ends_with("@127.0.0.1"),
        "{actor}"
    );
    assert_eq!((action.as_str(), count), ("delete", 1));
}

#[test]
fn a_release_interrupted_by_a_crash_is_settled_at_the_next_start() {
    let sink = Sink::start(&[]);
    let mut gw = gateway(&sink);
    let id = send(&gw, &["erin@example.test"], "HOLDME crash");
    gw.kill9();
    // A release that claimed the entry but never queued the copy, as a crash
    // between the two steps leaves it.
    let db = rusqlite::Connection::open(gw.data().join("trace.sqlite")).unwrap();
    let n = db
        .execute(
            "UPDATE held SET status = 'releasing', prev_status = 'held', release_id = 'ZZZZZZZZZZZZZZZZ' WHERE message = ?",
            [&id],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    gw.spawn();
    // Back to held, and releasable as usual.
    wait_statuses(&gw, &id, &[("erin@example.test", "held")]);
    let out = gw.cli(&["quarantine", "release", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sink.wait_for(1);
    wait_statuses(&gw, &id, &[("erin@example.test", "delivered")]);
}

#[test]
fn everything_one_rule_held_is_released_in_one_action_after_a_dry_run() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let a = send(
        &gw,
        &["frank@example.test", "gina@example.test"],
        "HOLDME one",
    );
    let b = send(&gw, &["hank@example.test"], "HOLDME two");
    let other = send(&gw, &["ida@example.test"], "KEEPME");

    let dry = gw.cli(&[
        "quarantine",
        "release",
        "--symbol",
        "HOLD_ME",
        "--since",
        "1h",
        "--dry-run",
    ]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let said = String::from_utf8_lossy(&dry.stdout).to_string();
    assert!(
        said.contains("would release 3 recipients of 2 held messages"),
        "{said}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.messages().is_empty(), "a dry run changes nothing");

    // Neither an ID with filters nor an empty selection is accepted.
    assert!(!gw
        .cli(&["quarantine", "release", &a, "--symbol", "HOLD_ME"])
        .status
        .success());
    assert!(!gw.cli(&["quarantine", "release"]).status.success());

    let run = gw.cli(&["quarantine", "release", "--symbol", "HOLD_ME"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("released 3 recipients of 2 held messages"),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    sink.wait_for(2);
    wait_statuses(&gw, &b, &[("hank@example.test", "delivered")]);
    wait_statuses(
        &gw,
        &a,
        &[
            ("frank@example.test", "delivered"),
            ("gina@example.test", "delivered"),
        ],
    );
    assert_eq!(
        statuses(&gw, &other),
        [("ida@example.test".to_string(), "held".to_string())]
    );

    // Again: nothing left to do, nothing sent twice.
    let again = gw.cli(&["quarantine", "release", "--symbol", "HOLD_ME"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("released 0 recipients of 0"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.messages().len(), 2);

    let db = rusqlite::Connection::open(gw.data().join("trace.sqlite")).unwrap();
    let (count, detail): (i64, String) = db
        .query_row(
            "SELECT count, detail FROM audit WHERE action = 'bulk release' ORDER BY seq LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(count, 3);
    assert!(detail.contains("symbol=HOLD_ME"), "{detail}");
}

/// One HTTP request with a JSON body; the status and the parsed answer.
fn post_json(gw: &Gateway, path: &str, body: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.http)).expect("connect");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, rest) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(rest).unwrap_or_default())
}

#[test]
fn a_preview_is_text_only_reports_teach_the_classifier_and_a_release_can_allow_the_sender() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let id = send(
        &gw,
        &["jane@example.test"],
        "HOLDME <b>look</b> https://bad.example/x",
    );

    let (code, body) = gw.http_get(&format!("/api/quarantine/{id}/preview"));
    assert_eq!(code, 200, "{body}");
    let p: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        p["text"].as_str().unwrap().contains("Please hold this."),
        "{p:#}"
    );
    assert!(p["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h[0] == "Subject" && h[1].as_str().unwrap().contains("<b>look</b>")));
    assert_eq!(gw.http_get("/api/quarantine/NOSUCHID/preview").0, 404);

    // A false positive teaches the classifier: the site's model now has it as ham.
    let (code, r) = post_json(
        &gw,
        &format!("/api/quarantine/{id}/report"),
        r#"{"as": "ham"}"#,
    );
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["model"]["ham"], 1, "{r}");
    assert_eq!(
        post_json(
            &gw,
            &format!("/api/quarantine/{id}/report"),
            r#"{"as": "maybe"}"#
        )
        .0,
        400
    );

    // Release and allow the sender: the rule is kept for the recipient.
    let (code, r) = post_json(
        &gw,
        &format!("/api/quarantine/{id}/release"),
        r#"{"allow_sender": true}"#,
    );
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        r["allowed_senders"],
        serde_json::json!(["sender@outside.test"])
    );
    sink.wait_for(1);
    let db = rusqlite::Connection::open(gw.data().join("trace.sqlite")).unwrap();
    let rule: String = db
        .query_row(
            "SELECT rule FROM sender_rules WHERE recipient = 'jane@example.test' AND sender = 'sender@outside.test'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rule, "allow");
    let actions: Vec<String> = db
        .prepare("SELECT action FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        actions.contains(&"report false positive".to_string())
            && actions.contains(&"allow sender".to_string()),
        "{actions:?}"
    );
}

#[test]
fn after_a_rule_is_fixed_a_rescan_releases_only_what_now_passes() {
    let sink = Sink::start(&[]);
    let mut gw = gateway(&sink);
    let wrongly = send(&gw, &["kim@example.test"], "HOLDME quarterly report");
    let rightly = send(&gw, &["kim@example.test"], "KEEPME");

    // The rule that went wrong is fixed (its weight set to nothing) and the
    // gateway restarted with it.
    gw.kill9();
    let mut config = std::fs::read_to_string(gw.config_path()).unwrap();
    config.push_str("\n[scan.weights]\nHOLD_ME = 0.0\n");
    std::fs::write(gw.config_path(), config).unwrap();
    gw.spawn();

    let look = gw.cli(&["quarantine", "rescan", "--all"]);
    assert!(
        look.status.success(),
        "{}",
        String::from_utf8_lossy(&look.stderr)
    );
    let said = String::from_utf8_lossy(&look.stdout).to_string();
    assert!(
        said.contains("rescanned 2 held messages: 1 now pass"),
        "{said}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        sink.messages().is_empty(),
        "a rescan without --release sends nothing"
    );

    let run = gw.cli(&["quarantine", "rescan", "--all", "--release"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let said = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(said.contains("1 now pass; released 1 recipients"), "{said}");
    let got = sink.wait_for(1);
    assert!(got[0].contains("quarterly report"));
    wait_statuses(&gw, &wrongly, &[("kim@example.test", "delivered")]);
    assert_eq!(
        statuses(&gw, &rightly),
        [("kim@example.test".to_string(), "held".to_string())]
    );
    // The new verdict is in the trace.
    let m = gw.wait_status(&wrongly, "released");
    let scans = m["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "scanned")
        .count();
    assert!(scans >= 2, "{m:#}");
    assert!(
        !gw.cli(&["quarantine", "rescan"]).status.success(),
        "an empty selection is refused"
    );
}

#[test]
fn a_sender_allowed_on_release_is_delivered_next_time_and_a_blocked_one_is_refused() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let id = send(&gw, &["lee@example.test"], "HOLDME first");
    let (code, r) = post_json(
        &gw,
        &format!("/api/quarantine/{id}/release"),
        r#"{"allow_sender": true}"#,
    );
    assert_eq!(code, 200, "{r}");
    sink.wait_for(1);

    // The same rule would hold the next message, but the recipient allows the
    // sender now (rules are read again within two seconds).
    std::thread::sleep(Duration::from_millis(2500));
    let run = gw.swaks(&[
        "--from",
        "sender@outside.test",
        "--to",
        "lee@example.test",
        "--header",
        "Subject: HOLDME second",
        "--body",
        "again\n",
    ]);
    assert!(
        run.server_said("250 2.0.0 Ok: queued as"),
        "{}",
        run.transcript
    );
    let got = sink.wait_for(2);
    let second = got
        .iter()
        .find(|m| m.contains("HOLDME second"))
        .expect("delivered");
    assert!(second.contains("RECIPIENT_ALLOWS_SENDER"), "{second}");

    // A block of the recipient refuses the sender in the session.
    let db = rusqlite::Connection::open(gw.data().join("trace.sqlite")).unwrap();
    db.execute(
        "INSERT INTO sender_rules (recipient, sender, rule, created_at, actor) \
         VALUES ('lee@example.test', 'pest@outside.test', 'block', 0, 'test')",
        [],
    )
    .unwrap();
    drop(db);
    std::thread::sleep(Duration::from_millis(2500));
    let refused = gw.swaks(&["--from", "pest@outside.test", "--to", "lee@example.test"]);
    assert!(
        refused.server_said("550 5.7.1 Message rejected as policy (RECIPIENT_BLOCKS_SENDER"),
        "{}",
        refused.transcript
    );
}

#[test]
fn a_browser_on_the_gateway_host_is_not_trusted_like_the_command_line() {
    use std::io::{Read, Write};
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let id = send(&gw, &["max@example.test"], "HOLDME csrf");
    // What a page on another site can make a browser on this host send: a
    // "simple" cross-site POST, no preflight, no credentials.
    for header in ["Origin: https://evil.example", "Sec-Fetch-Site: cross-site"] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.http)).unwrap();
        let body = r#"{"action": "release", "filter": {}}"#;
        write!(
            s,
            "POST /api/quarantine/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 401"), "{header}: {answer}");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.messages().is_empty());
    assert_eq!(
        statuses(&gw, &id),
        [("max@example.test".to_string(), "held".to_string())]
    );
}
