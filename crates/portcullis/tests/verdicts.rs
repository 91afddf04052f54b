//! The scanner in the SMTP path, against the real binary with swaks and
//! smtp-sink: each action (reject, quarantine, tag, deliver) driven on purpose
//! with the GTUBE string and `[scan.weights]`, the marks delivered mail carries,
//! and the verdict in the trace and the quarantine commands.

mod common;
use common::{Gateway, Sink};

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// A gateway accepting example.test for the sink, with extra `[scan]` keys.
fn gateway(sink: &Sink, scan: &str) -> Gateway {
    Gateway::start(
        "",
        &format!(
            "[[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:{}\"\n{scan}",
            sink.port
        ),
    )
}

fn send_gtube(gw: &Gateway, subject: &str) -> common::SwaksRun {
    gw.swaks(&[
        "--from",
        "sender@outside.test",
        "--to",
        "bob@example.test",
        "--header",
        &format!("Subject: {subject}"),
        "--add-header",
        "X-Spam-Flag: NO",
        "--body",
        &format!("Buy now.\n{GTUBE}\n"),
    ])
}

#[test]
fn spam_over_the_reject_threshold_is_refused_in_the_session_with_the_reason_and_trace_id() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink, "");
    let run = send_gtube(&gw, "cheap pills");
    assert!(
        run.server_said("550 5.7.1 Message rejected as spam (GTUBE:"),
        "{}",
        run.transcript
    );
    let id = run.trace_id();
    let m = gw.wait_status(&id, "rejected");
    assert_eq!(m["action"], "reject");
    assert_eq!(m["category"], "spam");
    assert_eq!(m["score"], 1000.0);
    let scanned = m["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "scanned")
        .cloned()
        .unwrap_or_else(|| panic!("no scan event: {m:#}"));
    assert_eq!(scanned["symbols"][0]["name"], "GTUBE");
    // The text report shows the symbols, like SpamAssassin's.
    let text = String::from_utf8_lossy(&gw.cli(&["trace", "--id", &id]).stdout).to_string();
    assert!(
        text.contains("verdict: reject (spam), score 1000.00") && text.contains("GTUBE"),
        "{text}"
    );
    // Nothing reached the server downstream and no bounce was made.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(sink.messages().is_empty());
}

#[test]
fn quarantined_mail_is_accepted_held_with_its_verdict_and_never_delivered() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink, "[scan.weights]\nGTUBE = 9.0\n");
    let run = send_gtube(&gw, "held for review");
    assert!(
        run.server_said("250 2.0.0 Ok: queued as"),
        "{}",
        run.transcript
    );
    let id = run.queue_id();

    let m = gw.wait_status(&id, "quarantined");
    assert_eq!(m["action"], "quarantine");
    assert_eq!(m["recipients"][0]["status"], "quarantined");

    let out = gw.cli(&["quarantine", "list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list[0]["message"], id.as_str());
    assert_eq!(list[0]["recipient"], "bob@example.test");
    assert_eq!(list[0]["status"], "held");
    assert_eq!(list[0]["score"], 9.0);
    assert_eq!(list[0]["subject"], "held for review");

    let text = gw.cli(&["quarantine", "show", &id]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("verdict: quarantine (spam), score 9.00") && text.contains("GTUBE"),
        "{text}"
    );
    let raw = gw.cli(&["quarantine", "show", &id, "--raw"]);
    assert!(String::from_utf8_lossy(&raw.stdout).contains(GTUBE));
    assert_eq!(
        gw.cli(&["quarantine", "show", "NOSUCHID"]).status.code(),
        Some(1)
    );

    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        sink.messages().is_empty(),
        "held mail must not be delivered"
    );
}

#[test]
fn tagged_mail_is_delivered_marked_for_the_server_downstream() {
    let sink = Sink::start(&[]);
    let gw = gateway(
        &sink,
        "[scan.weights]\nGTUBE = 6.0\n[scan.tag]\nsubject_prefix = \"[SPAM] \"\nexchange_scl = true\n",
    );
    let run = send_gtube(&gw, "tag me");
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let id = run.queue_id();
    let got = sink.wait_for(1);
    let m = &got[0];
    assert!(m.contains("X-Spam-Flag: YES"), "{m}");
    assert!(
        m.contains("X-Spam-Status: Yes, score=6.0 required=5.0 tests=GTUBE"),
        "{m}"
    );
    assert!(m.contains("X-MS-Exchange-Organization-SCL: 6"), "{m}");
    assert!(m.contains("Subject: [SPAM] tag me"), "{m}");
    // The sender's own "X-Spam-Flag: NO" is gone.
    assert!(!m.contains("X-Spam-Flag: NO"), "{m}");
    let t = gw.wait_status(&id, "delivered");
    assert_eq!(t["action"], "tag");
}

#[test]
fn clean_mail_is_delivered_with_a_negative_mark_and_its_verdict_traced() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink, "");
    let run = gw.swaks(&[
        "--from",
        "alice@outside.test",
        "--to",
        "bob@example.test",
        "--header",
        "Subject: lunch",
        "--add-header",
        "X-Spam-Flag: YES",
        "--body",
        "See you at noon.\n",
    ]);
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let id = run.queue_id();
    let got = sink.wait_for(1);
    assert!(got[0].contains("X-Spam-Flag: NO"), "{}", got[0]);
    assert!(!got[0].contains("X-Spam-Flag: YES"), "{}", got[0]);
    assert!(got[0].contains("Subject: lunch"));
    let t = gw.wait_status(&id, "delivered");
    assert_eq!(t["action"], "deliver");
    assert_eq!(t["category"], "clean");
}

#[test]
fn a_held_message_missing_from_the_trace_is_recorded_again_at_start() {
    let sink = Sink::start(&[]);
    let mut gw = gateway(&sink, "[scan.weights]\nGTUBE = 9.0\n");
    let run = send_gtube(&gw, "held before a crash");
    let id = run.queue_id();
    gw.wait_status(&id, "quarantined");
    // Lose the trace as a crash before its write would, keep the held file.
    gw.kill9();
    for f in ["trace.sqlite", "trace.sqlite-wal", "trace.sqlite-shm"] {
        let _ = std::fs::remove_file(gw.data().join(f));
    }
    gw.spawn();
    let t = gw.wait_status(&id, "quarantined");
    assert_eq!(t["subject"], "held before a crash");
    assert_eq!(t["action"], "quarantine");
}
