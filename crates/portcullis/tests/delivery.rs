//! The queue end to end: retries while the downstream is down, `kill -9` and
//! SIGTERM recovery, bounces (RFC 3464) for permanent failures and expired
//! messages, MX lookup through a local DNS server, LMTP, and the queue and trace
//! commands.

mod common;
use common::{Gateway, Sink};

/// Fast retries so that a test sees several attempts.
const FAST_RETRY: &str = "[queue]\nretry_initial = \"1s\"\nretry_max = \"2s\"\n";

fn routes(example_to: &str) -> String {
    format!(
        "[[domains]]\nname = \"example.test\"\ndeliver_to = \"{example_to}\"\n\
         [[domains]]\nname = \"sender.test\"\n"
    )
}

/// A gateway whose example.test mail goes to 127.0.0.1:`port` (maybe not yet
/// listening), retried every second or two.
fn fast_retry_gateway(port: u16) -> Gateway {
    Gateway::start(
        "",
        &format!(
            "{}{FAST_RETRY}",
            routes(&format!("smtp://127.0.0.1:{port}"))
        ),
    )
}

fn maildir_messages(gw: &Gateway, address: &str) -> Vec<String> {
    let dir = gw.data().join("maildir").join(address).join("new");
    common::read_files(&dir)
}

fn send(gw: &Gateway, n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let run = gw.swaks(&[
                "--from",
                "alice@sender.test",
                "--to",
                "bob@example.test",
                "--header",
                &format!("Message-Id: <{tag}-{i}@sender.test>"),
            ]);
            assert!(run.ok, "{}", run.transcript);
            run.queue_id()
        })
        .collect()
}

/// Every tagged message reached the sink (at least once: after a crash a message
/// delivered just before it may arrive twice, as with any MTA).
fn assert_each_arrived(sink: &Sink, tag: &str, n: usize) {
    let got = sink.wait_for(n);
    for i in 0..n {
        let needle = format!("<{tag}-{i}@sender.test>");
        let count = got.iter().filter(|m| m.contains(&needle)).count();
        assert!(count >= 1, "{needle} never arrived");
    }
}

#[test]
fn a_downstream_that_is_down_then_comes_back_gets_every_message() {
    let port = common::free_port();
    let gw = fast_retry_gateway(port);
    let ids = send(&gw, 5, "down-up");
    for id in &ids {
        let m = gw.wait_status(id, "deferred");
        let attempt = m["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "attempt")
            .cloned()
            .unwrap();
        assert!(
            attempt["reply"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("refused"),
            "{attempt:#}"
        );
    }
    let queue = gw.cli(&["queue", "list", "--json"]);
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&queue.stdout).unwrap();
    assert_eq!(listed.len(), 5);

    let sink = Sink::start_on(port, &[]);
    assert_each_arrived(&sink, "down-up", 5);
    for id in &ids {
        gw.wait_status(id, "delivered");
    }
    let (_, health) = gw.http_get("/healthz");
    assert!(health.contains("\"messages\":0"), "{health}");
}

#[test]
fn kill_9_loses_no_acknowledged_message() {
    let port = common::free_port();
    let mut gw = fast_retry_gateway(port);
    let ids = send(&gw, 10, "kill9");
    gw.kill9();
    let sink = Sink::start_on(port, &[]);
    gw.spawn();
    assert_each_arrived(&sink, "kill9", 10);
    for id in &ids {
        gw.wait_status(id, "delivered");
    }
}

#[test]
fn sigterm_stops_cleanly_and_keeps_the_queue() {
    let port = common::free_port();
    let mut gw = fast_retry_gateway(port);
    let ids = send(&gw, 3, "term");
    let status = gw.terminate();
    assert!(status.success(), "exit status {status}:\n{}", gw.log());
    assert!(
        gw.log()
            .contains("stopped; queued messages stay in the spool"),
        "{}",
        gw.log()
    );
    // The queue is readable with the daemon stopped.
    let list = gw.cli(&["queue", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    for id in &ids {
        assert!(text.contains(id.as_str()), "{text}");
    }
    let sink = Sink::start_on(port, &[]);
    gw.spawn();
    assert_each_arrived(&sink, "term", 3);
}

#[test]
fn permanent_failure_bounces_to_the_sender_but_never_to_the_null_sender() {
    // smtp-sink refuses every RCPT with a 5xx.
    let sink = Sink::start(&["-f", "rcpt"]);
    let gw = Gateway::start("", &routes(&format!("smtp://127.0.0.1:{}", sink.port)));
    let run = gw.swaks(&[
        "--from",
        "alice@sender.test",
        "--to",
        "bob@example.test",
        "--header",
        "Subject: will bounce",
    ]);
    assert!(run.ok, "{}", run.transcript);
    let m = gw.wait_status(&run.queue_id(), "bounced");
    assert!(
        m["recipients"][0]["reply"]
            .as_str()
            .unwrap()
            .starts_with('5'),
        "{m:#}"
    );

    common::wait_until(
        "the DSN in alice's Maildir",
        std::time::Duration::from_secs(60),
        || !maildir_messages(&gw, "alice@sender.test").is_empty(),
    );
    let dsn = &maildir_messages(&gw, "alice@sender.test")[0];
    assert!(
        dsn.contains("Return-Path: <>"),
        "a DSN is sent with the null sender: {dsn}"
    );
    assert!(
        dsn.contains("multipart/report; report-type=delivery-status"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Final-Recipient: rfc822; bob@example.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("Status: 5."), "{dsn}");
    assert!(
        dsn.contains("Subject: will bounce"),
        "the original headers are returned: {dsn}"
    );

    // A bounce of a bounce would loop: mail from <> that fails is only recorded.
    let run = gw.swaks(&["--from", "<>", "--to", "bob@example.test"]);
    assert!(run.ok, "{}", run.transcript);
    let m = gw.wait_status(&run.queue_id(), "bounced");
    assert!(
        m["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] != "dsn_queued"),
        "{m:#}"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(maildir_messages(&gw, "alice@sender.test").len(), 1);
}

#[test]
fn messages_past_the_maximum_age_are_returned() {
    let port = common::free_port();
    let gw = Gateway::start(
        "",
        &format!(
            "{}[queue]\nretry_initial = \"1s\"\nretry_max = \"1s\"\nmax_age = \"3s\"\n",
            routes(&format!("smtp://127.0.0.1:{port}"))
        ),
    );
    let run = gw.swaks(&["--from", "alice@sender.test", "--to", "bob@example.test"]);
    let m = gw.wait_status(&run.queue_id(), "bounced");
    assert!(
        m["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "expired"),
        "{m:#}"
    );
    common::wait_until("the expiry DSN", std::time::Duration::from_secs(60), || {
        !maildir_messages(&gw, "alice@sender.test").is_empty()
    });
    let dsn = &maildir_messages(&gw, "alice@sender.test")[0];
    assert!(dsn.contains("Status: 4.4.7"), "{dsn}");
    assert!(
        dsn.to_lowercase().contains("refused"),
        "the last error is named: {dsn}"
    );
}

#[test]
fn outbound_mail_follows_mx_records_from_the_configured_dns_server() {
    let sink = Sink::start(&[]);
    let dns = common::Dns::start(&[
        "--mx-host=outside.test,mx1.outside.test,10".into(),
        "--host-record=mx1.outside.test,127.0.0.1".into(),
        "--mx-host=nowhere.test,mx.unresolvable.test,10".into(),
    ]);
    let gw = Gateway::start(
        "",
        &format!(
            "{}[dns]\nservers = [\"127.0.0.1:{}\"]\n[queue]\nmx_port = {}\nretry_initial = \"1s\"\n",
            routes("maildir:/nonexistent-unused"),
            dns.port,
            sink.port
        ),
    );
    // Loopback is trusted, so it may send to any domain.
    let run = gw.swaks(&["--from", "alice@sender.test", "--to", "carol@outside.test"]);
    assert!(run.ok, "{}", run.transcript);
    let m = gw.wait_status(&run.queue_id(), "delivered");
    let attempt = m["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "attempt")
        .cloned()
        .unwrap();
    assert!(
        attempt["host"]
            .as_str()
            .unwrap()
            .contains("mx1.outside.test"),
        "{attempt:#}"
    );
    assert!(sink.wait_for(1)[0].contains("X-Rcpt-Args: <carol@outside.test>"));

    // A domain that does not exist is returned at once instead of retried for days.
    let run = gw.swaks(&[
        "--from",
        "alice@sender.test",
        "--to",
        "dave@does-not-exist.test",
    ]);
    let m = gw.wait_status(&run.queue_id(), "bounced");
    assert!(
        m["recipients"][0]["reply"]
            .as_str()
            .unwrap()
            .contains("does-not-exist.test"),
        "{m:#}"
    );
}

#[test]
fn lmtp_downstream_gets_a_reply_per_recipient() {
    let sink = Sink::start(&["-L"]);
    let gw = Gateway::start("", &routes(&format!("lmtp://127.0.0.1:{}", sink.port)));
    let run = gw.swaks(&[
        "--from",
        "alice@sender.test",
        "--to",
        "b1@example.test,b2@example.test",
    ]);
    assert!(run.ok, "{}", run.transcript);
    let m = gw.wait_status(&run.queue_id(), "delivered");
    assert!(m["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "delivered"));
    assert!(
        sink.wait_for(1)[0].contains("X-Client-Proto: LMTP"),
        "{:?}",
        sink.messages()
    );
}

#[test]
fn queue_commands_show_retry_and_delete() {
    let port = common::free_port();
    let gw = Gateway::start("", &routes(&format!("smtp://127.0.0.1:{port}")));
    let ids = send(&gw, 2, "qcmd");
    gw.wait_status(&ids[0], "deferred");

    let show = gw.cli(&["queue", "show", &ids[0]]);
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.status.success()
            && text.contains("bob@example.test")
            && text.contains("alice@sender.test"),
        "{text}"
    );

    let retry = gw.cli(&["queue", "retry", &ids[0]]);
    assert!(
        retry.status.success(),
        "{}",
        String::from_utf8_lossy(&retry.stderr)
    );
    let m = gw.wait_status(&ids[0], "deferred");
    common::wait_until(
        "a retry_requested event",
        std::time::Duration::from_secs(30),
        || {
            gw.trace(&["--id", &ids[0]])[0]["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "retry_requested")
        },
    );
    drop(m);

    let delete = gw.cli(&["queue", "delete", &ids[1]]);
    assert!(
        delete.status.success(),
        "{}",
        String::from_utf8_lossy(&delete.stderr)
    );
    gw.wait_status(&ids[1], "deleted");
    let list = String::from_utf8_lossy(&gw.cli(&["queue", "list"]).stdout).to_string();
    assert!(list.contains(&ids[0]) && !list.contains(&ids[1]), "{list}");

    let missing = gw.cli(&["queue", "show", "0000000000000000"]);
    assert!(!missing.status.success());
    // Unknown ids in the API are a 404, not a crash.
    assert_eq!(common::http(gw.http, "DELETE", "/api/queue/NOPE").0, 404);
}

#[test]
fn trace_filters_and_the_api_agree() {
    let sink = Sink::start(&[]);
    let gw = Gateway::start("", &routes(&format!("smtp://127.0.0.1:{}", sink.port)));
    let ids = send(&gw, 3, "filters");
    for id in &ids {
        gw.wait_status(id, "delivered");
    }
    assert_eq!(
        gw.trace(&["--from", "alice@sender.test", "--since", "1h"])
            .len(),
        3
    );
    assert_eq!(
        gw.trace(&["--to", "bob@example.test", "--status", "delivered"])
            .len(),
        3
    );
    assert!(gw.trace(&["--to", "nobody@example.test"]).is_empty());
    let text = gw.cli(&["trace", "--id", &ids[0]]);
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(
        out.contains("DELIVERED") && out.contains("attempt"),
        "{out}"
    );
    assert_eq!(
        gw.cli(&["trace", "--id", "0000000000000000"]).status.code(),
        Some(1)
    );

    let (status, body) =
        gw.http_get("/api/messages?from=alice@sender.test&since=1h&status=delivered");
    assert_eq!(status, 200);
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api["messages"].as_array().unwrap().len(), 3, "{api:#}");
    assert_eq!(gw.http_get("/api/messages?since=yesterday").0, 400);

    let (_, metrics) = gw.http_get("/metrics");
    for name in [
        "portcullis_smtp_connections_total",
        "portcullis_smtp_connections_active",
        "portcullis_smtp_messages_total",
        "portcullis_smtp_data_reply_seconds_bucket",
        "portcullis_delivery_outcomes_total{outcome=\"delivered\"} 3",
        "portcullis_delivery_attempt_seconds_bucket",
        "portcullis_queue_messages 0",
        "portcullis_queue_oldest_age_seconds",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
}

#[test]
fn a_bad_configuration_exits_2_naming_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nhostname = \"gw.test\"\n\n[smtp]\nlisten = [\"0.0.0.0:25\"]\ntrusted_networks = [\"10.0.0.0/40\"]\n").unwrap();
    for cmd in [&["serve"][..], &["trace"], &["queue", "list"]] {
        let out = std::process::Command::new(common::BIN)
            .args(cmd)
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("line 6") && err.contains("trusted_networks"),
            "{err}"
        );
    }
    let out = std::process::Command::new(common::BIN)
        .args(["serve", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.toml"));
}

#[test]
fn dsn_parameters_are_carried_downstream() {
    let sink = Sink::start(&[]);
    let gw = Gateway::start("", &routes(&format!("smtp://127.0.0.1:{}", sink.port)));
    let mut raw = common::Raw::connect(gw.smtp);
    raw.cmd("EHLO client.test");
    assert!(raw
        .cmd("MAIL FROM:<alice@sender.test> RET=HDRS ENVID=QQ314159")
        .starts_with("250"));
    assert!(raw
        .cmd("RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.test")
        .starts_with("250"));
    assert!(raw.cmd("DATA").starts_with("354"));
    raw.send(b"Subject: dsn\r\n\r\nbody\r\n.\r\n");
    assert!(raw.reply().starts_with("250 2.0.0"));
    let got = sink.wait_for(1);
    assert!(
        got[0].contains("X-Mail-Args: <alice@sender.test> RET=HDRS ENVID=QQ314159"),
        "{}",
        got[0]
    );
    assert!(
        got[0].contains("NOTIFY=SUCCESS,FAILURE")
            && got[0].contains("ORCPT=rfc822;bob@example.test"),
        "{}",
        got[0]
    );
}
