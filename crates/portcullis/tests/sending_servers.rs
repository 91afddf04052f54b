//! Sender-server enforcement through SMTP: an on-premises Exchange 2016 server
//! of bank.test (its own Received field, SPF passing for bank.test in
//! dnsmasq) is recognised, reported, then, by a first-detection date the test
//! sets in the store (no waiting for days), throttled with 451 4.7.230 and
//! blocked with 550 5.7.230; pausing, exempting and report-only mode let its
//! mail through; a spammer writing the same header, or greeting with the
//! bank's server name, does not get the bank's server's treatment; and our
//! own servers' mail is recorded as theirs and never enforced.

mod common;
use common::{Dns, Gateway, Sink};
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;
const KEY: &str = "bank.test/ex01.bank.test";

/// What Exchange 2016 CU23 writes when a mailbox server hands a message to
/// its edge/hub server, ex01, which then connects to us.
fn exchange_message(n: usize) -> String {
    format!(
        "Received: from EX02.bank.test (10.1.0.12) by ex01.bank.test (10.1.0.11) with\r\n \
         Microsoft SMTP Server (version=TLS1_2,\r\n \
         cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.1.2507.6; Mon, 23 Nov\r\n \
         2026 09:59:58 +0000\r\n\
         From: Alice <alice@bank.test>\r\nTo: bob@example.test\r\nSubject: statement {n}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <srv-{n}@bank.test>\r\n\r\n\
         Your statement is ready.\r\n"
    )
}

struct World {
    _dns: Dns,
    _sink: Sink,
    gw: Gateway,
    n: std::cell::Cell<usize>,
}

fn world(trusted: &str, senders: &str) -> World {
    let dns = Dns::start(&[
        "--txt-record=bank.test,v=spf1 ip4:127.0.0.1 -all".to_string(),
        "--txt-record=spam.test,v=spf1 ip4:127.0.0.1 -all".to_string(),
        "--txt-record=exim.test,v=spf1 ip4:127.0.0.1 -all".to_string(),
        "--txt-record=sendmail.test,v=spf1 ip4:127.0.0.1 -all".to_string(),
        "--txt-record=iis.test,v=spf1 ip4:127.0.0.1 -all".to_string(),
    ]);
    let sink = Sink::start(&[]);
    let gw = Gateway::start(
        &format!("trusted_networks = [{trusted}]"),
        &format!(
            "{}\
             [senders]\n{senders}\n",
            common::resolve_and_deliver(&dns, &sink)
        ),
    );
    World {
        _dns: dns,
        _sink: sink,
        gw,
        n: std::cell::Cell::new(0),
    }
}

impl World {
    /// Sends `data` as `from` greeting with `helo`; the server's reply line.
    fn send_as(&self, helo: &str, from: &str, data: &str) -> common::SwaksRun {
        let n = self.n.get() + 1;
        self.n.set(n);
        let file = self.gw.dir.path().join(format!("msg-{n}.eml"));
        std::fs::write(&file, data).expect("write message");
        self.gw.swaks(&[
            "--helo",
            helo,
            "--from",
            from,
            "--to",
            "bob@example.test",
            "--data",
            &file.display().to_string(),
        ])
    }

    fn send(&self) -> common::SwaksRun {
        let n = self.n.get() + 1;
        self.send_as("ex01.bank.test", "alice@bank.test", &exchange_message(n))
    }

    /// Sets when the bank's server was first seen out of date, `days` ago,
    /// and waits for the gateway to read it again.
    fn first_detected_days_ago(&self, days: i64) {
        let db = rusqlite::Connection::open(self.gw.data().join("trace.sqlite")).expect("db");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        let changed = db
            .execute(
                "UPDATE sender_servers SET first_detected = ? WHERE key = ?",
                rusqlite::params![now - days * DAY_MS, KEY],
            )
            .expect("update");
        assert_eq!(changed, 1, "the bank's server is known");
        // The gateway reads the servers' facts at most every two seconds.
        std::thread::sleep(Duration::from_millis(2300));
    }

    fn known(&self) {
        common::wait_until("the server in the store", Duration::from_secs(10), || {
            let out = self.gw.cli(&["senders", "list", "--format", "json"]);
            String::from_utf8_lossy(&out.stdout).contains(KEY)
        });
    }

    /// The `sender_servers` event of a delivered message.
    fn servers_event(&self, id: &str) -> serde_json::Value {
        let t = self.gw.wait_status(id, "delivered");
        t["events"]
            .as_array()
            .expect("events")
            .iter()
            .find(|e| e["kind"] == "sender_servers")
            .cloned()
            .unwrap_or_else(|| panic!("no sender_servers event: {t}"))
    }

    fn list_json(&self) -> serde_json::Value {
        let out = self.gw.cli(&["senders", "list", "--format", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }
}

#[test]
fn an_unsupported_exchange_is_reported_then_throttled_then_blocked() {
    let w = world("", "");
    let run = w.send();
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let id = run.queue_id();
    w.known();

    // The verdict says what was recognised, and from which field.
    let t = w.gw.wait_status(&id, "delivered");
    let events = t["events"].as_array().expect("events");
    let seen = events
        .iter()
        .find(|e| e["kind"] == "sender_servers")
        .unwrap_or_else(|| panic!("no sender_servers event: {t}"));
    assert_eq!(seen["decision"], "accept");
    assert_eq!(seen["stage"], "report");
    let server = &seen["servers"][0];
    assert_eq!(server["key"], KEY);
    assert_eq!(server["product"], "exchange");
    assert_eq!(server["version"], "15.1.2507.6");
    assert_eq!(server["status"], "unsupported");
    assert!(server["field"]
        .as_str()
        .unwrap_or_default()
        .contains("id 15.1.2507.6"));
    let symbols: Vec<String> = events
        .iter()
        .filter(|e| e["kind"] == "scanned")
        .flat_map(|e| e["symbols"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["name"] == "SENDER_SERVER")
        .map(|s| s["detail"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(symbols.len(), 1, "{t}");
    assert!(
        symbols[0].contains("ex01.bank.test") && symbols[0].contains("Received field 1"),
        "{symbols:?}"
    );

    let list = w.list_json();
    let row = &list["servers"][0];
    assert_eq!(row["key"], KEY);
    assert_eq!(row["stage"], "report");
    assert_eq!(row["next_stage"], "throttle 10%");

    // Day 45: a quarter of its messages is deferred, with a reply naming the
    // product, the build, why, and what to install.
    w.first_detected_days_ago(45);
    let replies: Vec<common::SwaksRun> = (0..4).map(|_| w.send()).collect();
    let deferred: Vec<&common::SwaksRun> = replies
        .iter()
        .filter(|r| r.server_said("451 4.7.230"))
        .collect();
    assert_eq!(deferred.len(), 1, "one in four deferred");
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.server_said("250 2.0.0"))
            .count(),
        3
    );
    let text = &deferred[0].transcript;
    for want in [
        "Microsoft Exchange Server",
        "15.1.2507.6",
        "ex01.bank.test",
        "Install",
    ] {
        assert!(text.contains(want), "{want} missing: {text}");
    }

    // Day 95: every message refused.
    w.first_detected_days_ago(95);
    for _ in 0..2 {
        let run = w.send();
        assert!(run.server_said("550 5.7.230"), "{}", run.transcript);
    }
    let list = w.list_json();
    assert_eq!(list["servers"][0]["stage"], "block 100%");

    // Paused: its mail goes through again, the schedule waits.
    let out = w.gw.cli(&["senders", "pause", KEY, "--days", "10"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(2300));
    assert!(w.send().server_said("250 2.0.0"));
    // More than the yearly allowance is refused.
    let out = w.gw.cli(&["senders", "pause", KEY, "--days", "85"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("80"),
        "{out:?}"
    );
    let out = w.gw.cli(&["senders", "resume", KEY]);
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(2300));
    assert!(w.send().server_said("550 5.7.230"));

    // Exempt: accepted, and the trace says why.
    let out = w.gw.cli(&["senders", "exempt", KEY]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(2300));
    let run = w.send();
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let seen = w.servers_event(&run.queue_id());
    assert_eq!(seen["stage"], "block 100% (exempt)");
}

#[test]
fn forged_evidence_never_gets_a_legitimate_server_blocked() {
    let w = world("", "");
    assert!(w.send().server_said("250 2.0.0"));
    w.known();
    w.first_detected_days_ago(95);
    assert!(w.send().server_said("550 5.7.230"));

    // A spammer from spam.test writes the bank's old Exchange header below
    // its own hop: not the connecting server's field, so nothing is enforced
    // and the bank's server is not counted.
    // Both of the bank's messages are counted before the forgeries come.
    common::wait_until("two messages counted", Duration::from_secs(10), || {
        w.list_json()["servers"][0]["messages"].as_i64() == Some(2)
    });
    let before = 2;
    let forged = format!(
        "Received: from x (unknown [203.0.113.9]) by mx.spam.test with ESMTP; Mon, 23 Nov 2026 10:00:00 +0000\r\n{}",
        exchange_message(900)
    );
    let run = w.send_as("mx.spam.test", "offers@spam.test", &forged);
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    // Greeting with the bank's server name and writing its header on top
    // does not make the spammer the bank: SPF passes only for spam.test.
    let run = w.send_as("ex01.bank.test", "offers@spam.test", &exchange_message(901));
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    std::thread::sleep(Duration::from_millis(500));
    let after = w.list_json()["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["key"] == KEY)
        .and_then(|s| s["messages"].as_i64())
        .unwrap_or(0);
    assert_eq!(
        before, after,
        "the forgeries were not counted as the bank's"
    );
}

#[test]
fn report_only_mode_records_but_never_refuses() {
    let w = world("", "mode = \"report\"");
    assert!(w.send().server_said("250 2.0.0"));
    w.known();
    w.first_detected_days_ago(95);
    let run = w.send();
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let seen = w.servers_event(&run.queue_id());
    assert_eq!(seen["stage"], "block 100% (report-only mode)");
    assert_eq!(seen["decision"], "accept");
}

#[test]
fn our_own_out_of_date_server_is_recorded_and_raised_never_refused() {
    // Loopback trusted: the client is our own Exchange sending out.
    let w = world("\"127.0.0.0/8\"", "");
    let msg = exchange_message(1).replace("bank.test", "example.test");
    let run = w.send_as("ex01.example.test", "alice@example.test", &msg);
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    common::wait_until("our server in the store", Duration::from_secs(10), || {
        let out = w.gw.cli(&["senders", "list", "--format", "json"]);
        String::from_utf8_lossy(&out.stdout).contains("example.test/ex01.example.test")
    });
    let list = w.list_json();
    let own = list["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["key"] == "example.test/ex01.example.test")
        .cloned()
        .expect("own server");
    assert_eq!(own["own"], true);
    assert_eq!(own["status"], "unsupported");
    assert!(own["enforced"].is_null(), "{own}");
    // The metric rises once the gateway has read the store again.
    common::wait_until("the own-server metric", Duration::from_secs(10), || {
        let _ = w.send_as("ex01.example.test", "alice@example.test", &msg);
        let (_, metrics) = w.gw.http_get("/metrics");
        metrics.contains("portcullis_own_servers_out_of_date 1")
    });
}

#[test]
fn the_catalogue_answers_lookups_and_takes_an_admins_file() {
    let w = world("", "");
    let out = w.gw.cli(&[
        "senders",
        "catalog",
        "lookup",
        "Microsoft SMTP Server id 15.1.2507.6",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Exchange Server 2016") && text.contains("unsupported"),
        "{text}"
    );
    let out =
        w.gw.cli(&["senders", "catalog", "lookup", "no software here"]);
    assert!(!out.status.success());
    // A bad file is refused and names what is wrong; nothing is replaced.
    let bad = w.gw.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[release]]\nproduct = \"exchange\"\nbuild = \"x.y\"\nname = \"bad\"\n",
    )
    .expect("write");
    let out =
        w.gw.cli(&["senders", "catalog", "import", &bad.display().to_string()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("x.y"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lookup = |text: &str| {
        let out = w.gw.cli(&["senders", "catalog", "lookup", text]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // Extending: a site's own release of a built-in line.
    let own = w.gw.dir.path().join("own.toml");
    std::fs::write(
        &own,
        "[[release]]\nproduct = \"exchange\"\nbuild = \"15.1.2507.999\"\n\
         name = \"Exchange Server 2016 CU23 site hotfix\"\nreleased = \"2026-01-10\"\n",
    )
    .expect("write");
    let out =
        w.gw.cli(&["senders", "catalog", "import", &own.display().to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = lookup("Microsoft SMTP Server id 15.1.2507.999");
    assert!(
        text.contains("release: Exchange Server 2016 CU23 site hotfix"),
        "{text}"
    );
    // The built-in entries are still there.
    assert!(lookup("Exim 4.94.2").contains("vulnerable"));
    // Replacing: only the file's entries count.
    let only = w.gw.dir.path().join("only.toml");
    std::fs::write(
        &only,
        "[[line]]\nproduct = \"exim\"\nname = \"Exim 4\"\nprefix = \"4\"\n\
         [[release]]\nproduct = \"exim\"\nbuild = \"4.94.2\"\nname = \"Exim 4.94.2\"\n",
    )
    .expect("write");
    let out = w.gw.cli(&[
        "senders",
        "catalog",
        "import",
        "--replace",
        &only.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = lookup("Microsoft SMTP Server id 15.1.2507.6");
    assert!(text.contains("not in the catalogue"), "{text}");
    assert!(lookup("Exim 4.94.2").contains("status: current"));
}

#[test]
fn the_summary_tells_the_admin_about_new_servers_and_our_own() {
    let w = world("", "summary_to = [\"postmaster@example.test\"]");
    assert!(w.send().server_said("250 2.0.0"));
    w.known();
    // Nothing about it until asked (or the configured day comes).
    let out = w.gw.cli(&["senders", "summary", "--now"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("summary queued as"), "{text}");
    // The bank's message and the summary both reach the sink.
    let got = w._sink.wait_for(2);
    let summary = got
        .iter()
        .find(|m| {
            m.contains("To: postmaster@example.test") || m.contains("To: <postmaster@example.test>")
        })
        .unwrap_or_else(|| panic!("no summary among {got:?}"));
    for want in ["ex01.bank.test", "15.1.2507.6", "unsupported"] {
        assert!(summary.contains(want), "{want} missing: {summary}");
    }
}

#[test]
fn exim_sendmail_and_iis_smtp_are_recognised_through_smtp() {
    let w = world("", "");
    let body = |n: usize, from: &str| {
        format!(
            "From: {from}\r\nTo: bob@example.test\r\nSubject: hello {n}\r\n\
             Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <p-{n}@test>\r\n\r\nHello.\r\n"
        )
    };
    // As each server writes its own field when it takes the message in.
    let exim = format!(
        "Received: from [10.0.0.7] (helo=ws7.exim.test)\r\n\tby mail.exim.test with esmtpsa (TLS1.3) tls TLS_AES_256_GCM_SHA384\r\n\
         \t(Exim 4.94.2)\r\n\t(envelope-from <ann@exim.test>)\r\n\tid 1rAbCd-000123-4x\r\n\
         \tfor bob@example.test; Mon, 23 Nov 2026 09:59:59 +0000\r\n{}",
        body(1, "ann@exim.test")
    );
    let sendmail = format!(
        "Received: from ws8.sendmail.test (ws8.sendmail.test [10.0.0.8])\r\n\
         \tby mail.sendmail.test (8.17.1/8.17.1) with ESMTP id 5ANA0x9B012345\r\n\
         \tfor <bob@example.test>; Mon, 23 Nov 2026 09:59:59 GMT\r\n{}",
        body(2, "sam@sendmail.test")
    );
    let iis = format!(
        "Received: from ws9 ([10.0.0.9]) by mail.iis.test with Microsoft SMTPSVC(6.0.3790.4675);\r\n\
         \t Mon, 23 Nov 2026 09:59:59 +0000\r\n{}",
        body(3, "ivy@iis.test")
    );
    for (helo, from, data) in [
        ("mail.exim.test", "ann@exim.test", &exim),
        ("mail.sendmail.test", "sam@sendmail.test", &sendmail),
        ("mail.iis.test", "ivy@iis.test", &iis),
    ] {
        let run = w.send_as(helo, from, data);
        assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    }
    common::wait_until(
        "three servers in the store",
        Duration::from_secs(10),
        || w.list_json()["servers"].as_array().map(Vec::len) == Some(3),
    );
    let list = w.list_json();
    let status = |key: &str| {
        list["servers"]
            .as_array()
            .expect("servers")
            .iter()
            .find(|s| s["key"] == key)
            .map(|s| {
                (
                    s["product"].clone(),
                    s["version"].clone(),
                    s["status"].clone(),
                )
            })
            .unwrap_or_else(|| panic!("{key} missing: {list}"))
    };
    assert_eq!(
        status("exim.test/mail.exim.test"),
        ("exim".into(), "4.94.2".into(), "vulnerable".into())
    );
    assert_eq!(
        status("sendmail.test/mail.sendmail.test"),
        ("sendmail".into(), "8.17.1".into(), "vulnerable".into())
    );
    assert_eq!(
        status("iis.test/mail.iis.test"),
        (
            "iis-smtp".into(),
            "6.0.3790.4675".into(),
            "unsupported".into()
        )
    );
}
