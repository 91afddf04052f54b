//! Who may see and release held mail, against the real binary over HTTP: sign
//! in, sessions and their CSRF token, API tokens (made, tampered, revoked),
//! the roles' boundaries (a user never sees another's mail, not even that it
//! exists), the release policy per category (users release spam, request
//! phishing, never touch malware; helpdesk approves but not malware), and the
//! lockout after failed sign-ins.

mod common;
use common::{Gateway, Sink};
use std::io::{Read, Write};
use std::net::TcpStream;

const PASSWORD: &str = "correct horse battery staple";

fn hash() -> String {
    common::password_hash(PASSWORD)
}

/// A gateway where loopback is not trusted, with two users, a helpdesk and
/// an admin, and three rules holding spam, phishing and malware. (The bare
/// `trust_loopback` key lands in `[http]`, which the harness writes last.)
fn gateway(sink: &Sink) -> Gateway {
    let h = hash();
    let rule = |name: &str, word: &str, category: &str| {
        format!(
            "[[scan.rules]]\nname = \"{name}\"\npart = \"header\"\nheader = \"Subject\"\n\
             pattern = \"{word}\"\nscore = 9.0\ncategory = \"{category}\"\ndetail = \"test\"\n"
        )
    };
    Gateway::start(
        "",
        &format!(
            "trust_loopback = false\n\
             [[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:{port}\"\n\
             [[users]]\nname = \"alice@example.test\"\npassword_hash = \"{h}\"\n\
             [[users]]\nname = \"bob@example.test\"\npassword_hash = \"{h}\"\n\
             [[users]]\nname = \"desk\"\npassword_hash = \"{h}\"\nrole = \"helpdesk\"\n\
             [[users]]\nname = \"root\"\npassword_hash = \"{h}\"\nrole = \"admin\"\n\
             {}{}{}",
            rule("HOLD_SPAM", "SPAMMY", "spam"),
            rule("HOLD_PHISH", "PHISHY", "phishing"),
            rule("HOLD_MAL", "MALWARY", "malware"),
            port = sink.port,
        ),
    )
}

fn send(gw: &Gateway, to: &[&str], subject: &str) -> String {
    let joined = to.join(",");
    let header = format!("Subject: {subject}");
    let run = gw.swaks(&[
        "--from",
        "x@outside.test",
        "--to",
        &joined,
        "--header",
        &header,
        "--body",
        "hold me\n",
    ]);
    assert!(
        run.server_said("250 2.0.0 Ok: queued as"),
        "{}",
        run.transcript
    );
    let id = run.queue_id();
    gw.wait_status(&id, "quarantined");
    id
}

struct Answer {
    status: u16,
    head: String,
    json: serde_json::Value,
}

fn call(gw: &Gateway, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", gw.http)).expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    Answer {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        head: head.to_string(),
        json: serde_json::from_str(body).unwrap_or_default(),
    }
}

struct Session {
    cookie: String,
    csrf: String,
}

impl Session {
    fn headers(&self) -> Vec<(&str, &str)> {
        vec![
            ("Cookie", self.cookie.as_str()),
            ("X-CSRF-Token", self.csrf.as_str()),
        ]
    }
}

fn login(gw: &Gateway, name: &str) -> Session {
    let a = call(
        gw,
        "POST",
        "/api/login",
        &[],
        &serde_json::json!({ "name": name, "password": PASSWORD }).to_string(),
    );
    assert_eq!(a.status, 200, "{}", a.head);
    let set = a
        .head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .expect("a session cookie")
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure"),
        "{set}"
    );
    Session {
        cookie: set.split(';').next().unwrap().to_string(),
        csrf: a.json["csrf"].as_str().unwrap().to_string(),
    }
}

fn messages(a: &Answer) -> Vec<String> {
    let mut ids: Vec<String> = a.json["entries"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|e| e["message"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn users_see_and_release_only_their_own_mail_as_the_category_allows() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let spam = send(
        &gw,
        &["alice@example.test", "bob@example.test"],
        "SPAMMY deal",
    );
    let phish = send(&gw, &["alice@example.test"], "PHISHY login");
    let malware = send(&gw, &["alice@example.test"], "MALWARY invoice");
    let bobs = send(&gw, &["bob@example.test"], "SPAMMY for bob");

    // Without credentials nothing is shown, loopback or not.
    assert_eq!(call(&gw, "GET", "/api/quarantine", &[], "").status, 401);
    assert_eq!(call(&gw, "GET", "/api/messages", &[], "").status, 401);

    let alice = login(&gw, "alice@example.test");
    let list = call(&gw, "GET", "/api/quarantine", &alice.headers(), "");
    assert_eq!(list.status, 200);
    let mut want = vec![spam.clone(), phish.clone(), malware.clone()];
    want.sort();
    assert_eq!(messages(&list), want);
    assert!(list.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["recipient"] == "alice@example.test"));
    // Another's message does not exist for her; nor does the trace or queue.
    let path = format!("/api/quarantine/{bobs}");
    assert_eq!(call(&gw, "GET", &path, &alice.headers(), "").status, 404);
    assert_eq!(
        call(
            &gw,
            "POST",
            &format!("{path}/release"),
            &alice.headers(),
            ""
        )
        .status,
        404
    );
    assert_eq!(
        call(&gw, "GET", "/api/messages", &alice.headers(), "").status,
        403
    );
    // The shared message shows her copy only, and not bob's address.
    let shown = call(
        &gw,
        "GET",
        &format!("/api/quarantine/{spam}"),
        &alice.headers(),
        "",
    );
    assert_eq!(shown.json["entries"].as_array().map(Vec::len), Some(1));
    assert!(
        !shown.json.to_string().contains("bob@example.test"),
        "{}",
        shown.json
    );

    // A change without the CSRF token is refused.
    let release = format!("/api/quarantine/{spam}/release");
    let no_csrf = call(
        &gw,
        "POST",
        &release,
        &[("Cookie", alice.cookie.as_str())],
        "",
    );
    assert_eq!(no_csrf.status, 403);
    // Spam: she releases her own copy; bob's stays held.
    let done = call(&gw, "POST", &release, &alice.headers(), "");
    assert_eq!(done.status, 200, "{}", done.json);
    assert_eq!(
        done.json["recipients"],
        serde_json::json!(["alice@example.test"])
    );
    assert!(sink.wait_for(1)[0].contains("SPAMMY deal"));
    let bob = login(&gw, "bob@example.test");
    let his = call(
        &gw,
        "GET",
        &format!("/api/quarantine/{spam}"),
        &bob.headers(),
        "",
    );
    assert_eq!(his.json["entries"][0]["status"], "held", "{}", his.json);

    // Phishing: she may only ask; helpdesk approves and it goes out.
    let p = call(
        &gw,
        "POST",
        &format!("/api/quarantine/{phish}/release"),
        &alice.headers(),
        "",
    );
    assert_eq!(p.status, 403);
    assert!(
        p.json["error"].as_str().unwrap().contains("request"),
        "{}",
        p.json
    );
    let r = call(
        &gw,
        "POST",
        &format!("/api/quarantine/{phish}/request"),
        &alice.headers(),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let desk = login(&gw, "desk");
    let queue = call(
        &gw,
        "GET",
        "/api/quarantine?status=requested",
        &desk.headers(),
        "",
    );
    assert_eq!(messages(&queue), vec![phish.clone()]);
    // A user cannot approve her own request.
    let own = call(
        &gw,
        "POST",
        &format!("/api/quarantine/{phish}/approve"),
        &alice.headers(),
        "",
    );
    assert_eq!(own.status, 403);
    let ok = call(
        &gw,
        "POST",
        &format!("/api/quarantine/{phish}/approve"),
        &desk.headers(),
        "",
    );
    assert_eq!(ok.status, 200, "{}", ok.json);
    assert!(sink.wait_for(2).iter().any(|m| m.contains("PHISHY login")));

    // Malware: not for users, not for helpdesk; the admin may.
    for s in [&alice, &desk] {
        let m = call(
            &gw,
            "POST",
            &format!("/api/quarantine/{malware}/release"),
            &s.headers(),
            "",
        );
        assert_eq!(m.status, 403, "{}", m.json);
    }
    let m = call(
        &gw,
        "POST",
        &format!("/api/quarantine/{malware}/request"),
        &alice.headers(),
        "",
    );
    assert_eq!(m.status, 403);
    // Deleting and bulk actions are the admin's.
    let bulk = r#"{"action": "release", "dry_run": true, "filter": {}}"#;
    assert_eq!(
        call(&gw, "POST", "/api/quarantine/bulk", &desk.headers(), bulk).status,
        403
    );
    let del = call(
        &gw,
        "POST",
        &format!("/api/quarantine/{bobs}/delete"),
        &desk.headers(),
        "",
    );
    assert_eq!(del.status, 403);
    let root = login(&gw, "root");
    let m = call(
        &gw,
        "POST",
        &format!("/api/quarantine/{malware}/release"),
        &root.headers(),
        "",
    );
    assert_eq!(m.status, 200, "{}", m.json);

    // The audit log says who did what; it is for administrators.
    assert_eq!(
        call(&gw, "GET", "/api/audit", &desk.headers(), "").status,
        403
    );
    let log = call(&gw, "GET", "/api/audit?limit=50", &root.headers(), "");
    assert_eq!(log.status, 200);
    let lines: Vec<(String, String)> = log.json["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (who, what) in [
        ("alice@example.test@127.0.0.1", "release"),
        ("alice@example.test@127.0.0.1", "request release"),
        ("desk@127.0.0.1", "approve release"),
        ("root@127.0.0.1", "release"),
    ] {
        assert!(
            lines.contains(&(who.to_string(), what.to_string())),
            "{who} {what}: {lines:?}"
        );
    }

    // Signing out ends the session.
    assert_eq!(
        call(&gw, "POST", "/api/logout", &alice.headers(), "").status,
        200
    );
    assert_eq!(
        call(&gw, "GET", "/api/quarantine", &alice.headers(), "").status,
        401
    );
    // A forged cookie is nobody.
    let forged = [(
        "Cookie",
        "portcullis_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )];
    assert_eq!(call(&gw, "GET", "/api/me", &forged, "").status, 401);
}

#[test]
fn api_tokens_work_until_revoked_and_a_tampered_one_never_does() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let made = gw.cli(&["token", "create", "--name", "ticketing", "--role", "admin"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let token = String::from_utf8(made.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("pct_"), "{token}");
    let bearer = format!("Bearer {token}");
    let me = call(
        &gw,
        "GET",
        "/api/me",
        &[("Authorization", bearer.as_str())],
        "",
    );
    assert_eq!((me.status, me.json["role"].as_str()), (200, Some("admin")));
    // Tokens need no CSRF token: they are not sent by browsers on their own.
    let bulk = r#"{"action": "release", "dry_run": true, "filter": {}}"#;
    let dry = call(
        &gw,
        "POST",
        "/api/quarantine/bulk",
        &[("Authorization", bearer.as_str())],
        bulk,
    );
    assert_eq!(dry.status, 200, "{}", dry.json);

    let mut chars: Vec<char> = token.chars().collect();
    let last = chars.len() - 1;
    chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
    let tampered = format!("Bearer {}", chars.into_iter().collect::<String>());
    assert_eq!(
        call(
            &gw,
            "GET",
            "/api/me",
            &[("Authorization", tampered.as_str())],
            ""
        )
        .status,
        401
    );

    let id = token.split('_').nth(1).unwrap();
    let listed = String::from_utf8(gw.cli(&["token", "list"]).stdout).unwrap();
    assert!(listed.contains(id) && listed.contains("ticketing") && !listed.contains(&token));
    assert!(gw.cli(&["token", "revoke", id]).status.success());
    assert_eq!(
        call(
            &gw,
            "GET",
            "/api/me",
            &[("Authorization", bearer.as_str())],
            ""
        )
        .status,
        401
    );
}

#[test]
fn repeated_failed_sign_ins_are_locked_out_with_retry_after() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let wrong = r#"{"name": "root", "password": "guess"}"#;
    for _ in 0..5 {
        assert_eq!(call(&gw, "POST", "/api/login", &[], wrong).status, 401);
    }
    let locked = call(&gw, "POST", "/api/login", &[], wrong);
    assert_eq!(locked.status, 429);
    assert!(
        locked.head.to_ascii_lowercase().contains("retry-after:"),
        "{}",
        locked.head
    );
    // Even the right password waits: guessing must not be able to tell.
    let right = serde_json::json!({ "name": "root", "password": PASSWORD }).to_string();
    assert_eq!(call(&gw, "POST", "/api/login", &[], &right).status, 429);
    assert!(gw.log().contains("failed sign-in"));
    assert!(!gw.log().contains("guess"), "a password reached the log");
}

#[test]
fn users_allow_and_block_senders_for_their_own_addresses_only() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let alice = login(&gw, "alice@example.test");
    let block = r#"{"sender": "Pest@Outside.test", "rule": "block"}"#;
    let a = call(&gw, "POST", "/api/senders", &alice.headers(), block);
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(
        a.json["recipients"],
        serde_json::json!(["alice@example.test"])
    );
    let for_bob =
        r#"{"sender": "x@outside.test", "rule": "allow", "recipient": "bob@example.test"}"#;
    assert_eq!(
        call(&gw, "POST", "/api/senders", &alice.headers(), for_bob).status,
        404
    );
    let bad = r#"{"sender": "not an address", "rule": "block"}"#;
    assert_eq!(
        call(&gw, "POST", "/api/senders", &alice.headers(), bad).status,
        400
    );

    let bob = login(&gw, "bob@example.test");
    let his = call(&gw, "GET", "/api/senders", &bob.headers(), "");
    assert_eq!(
        his.json["rules"].as_array().map(Vec::len),
        Some(0),
        "{}",
        his.json
    );
    let hers = call(&gw, "GET", "/api/senders", &alice.headers(), "");
    assert_eq!(hers.json["rules"][0]["sender"], "pest@outside.test");
    assert_eq!(hers.json["rules"][0]["rule"], "block");

    // The gateway refuses the blocked sender for her (rules are read again
    // within two seconds).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let run = gw.swaks(&["--from", "pest@outside.test", "--to", "alice@example.test"]);
    assert!(run.server_said("550 5.7.1"), "{}", run.transcript);
    let none = r#"{"sender": "pest@outside.test", "rule": "none"}"#;
    assert_eq!(
        call(&gw, "POST", "/api/senders", &alice.headers(), none).status,
        200
    );
    let after = call(&gw, "GET", "/api/senders", &alice.headers(), "");
    assert_eq!(after.json["rules"].as_array().map(Vec::len), Some(0));
}
