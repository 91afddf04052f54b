//! Malware through a real clamd (INSTREAM) in the SMTP path: the EICAR test
//! string and files from Debian's clamav-testfiles are refused in the session;
//! when clamd is down the gateway fails closed with 451 4.7.0 (or, configured
//! so, delivers and records that the message was not scanned).

mod common;
use common::{clam_testfile, Clamd, Gateway, Sink, EICAR};

fn gateway(sink: &Sink, clamd_port: u16, on_failure: &str) -> Gateway {
    Gateway::start(
        "",
        &format!(
            "[[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:{}\"\n\
             [scan.clamd]\naddress = \"127.0.0.1:{clamd_port}\"\non_failure = \"{on_failure}\"\n",
            sink.port
        ),
    )
}

fn send_attachment(gw: &Gateway, name: &str, data: &[u8]) -> common::SwaksRun {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, data).expect("write attachment");
    gw.swaks(&[
        "--from",
        "sender@outside.test",
        "--to",
        "bob@example.test",
        "--header",
        "Subject: the file you asked for",
        "--attach-type",
        "application/octet-stream",
        "--attach",
        &path.display().to_string(),
    ])
}

fn rejected_as_malware(run: &common::SwaksRun, signature: &str) {
    assert!(
        run.server_said("550 5.7.1 Message rejected as malware (CLAMAV_VIRUS: ClamAV found"),
        "{}",
        run.transcript
    );
    assert!(run.transcript.contains(signature), "{}", run.transcript);
}

#[test]
fn eicar_and_clamav_test_files_are_refused_in_the_session() {
    let clamd = Clamd::start();
    let sink = Sink::start(&[]);
    let gw = gateway(&sink, clamd.port, "tempfail");

    let run = send_attachment(&gw, "readme.txt", EICAR.as_bytes());
    rejected_as_malware(&run, "Portcullis-Test-EICAR");

    // clamd opens the archive itself.
    let run = send_attachment(&gw, "clam.zip", &clam_testfile("clam.zip"));
    rejected_as_malware(&run, "Portcullis-Test-ClamExe");
    let run = send_attachment(&gw, "report.doc", &clam_testfile("clam.exe"));
    rejected_as_malware(&run, "Portcullis-Test-ClamExe");

    // A clean message goes through clamd and on to the server downstream.
    let run = send_attachment(&gw, "notes.txt", b"meeting notes\n");
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let got = sink.wait_for(1);
    assert!(got[0].contains("notes.txt"));
    assert!(!got.iter().any(|m| m.contains("clam.zip")));
}

#[test]
fn with_clamd_down_mail_is_deferred_by_default_and_the_trace_says_why() {
    let mut clamd = Clamd::start();
    let port = clamd.port;
    clamd.stop();
    let sink = Sink::start(&[]);
    let gw = gateway(&sink, port, "tempfail");
    let run = send_attachment(&gw, "notes.txt", b"meeting notes\n");
    assert!(
        run.server_said("451 4.7.0 Temporary problem: the message could not be scanned"),
        "{}",
        run.transcript
    );
    let id = run.trace_id();
    let t = gw.wait_status(&id, "rejected");
    let reason = t["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("cannot reach clamd"), "{t:#}");
    let (_, metrics) = gw.http_get("/metrics");
    assert!(
        metrics.contains(
            "portcullis_smtp_messages_total{reason=\"scanner_unavailable\",result=\"refused\"} 1"
        ),
        "{metrics}"
    );
    assert!(sink.messages().is_empty());
}

#[test]
fn with_clamd_down_and_on_failure_accept_mail_is_delivered_and_marked_unscanned() {
    let mut clamd = Clamd::start();
    let port = clamd.port;
    clamd.stop();
    let sink = Sink::start(&[]);
    let gw = gateway(&sink, port, "accept");
    let run = send_attachment(&gw, "notes.txt", b"meeting notes\n");
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let t = gw.wait_status(&run.queue_id(), "delivered");
    assert!(t.to_string().contains("CLAMAV_UNAVAILABLE"), "{t:#}");
    let got = sink.wait_for(1);
    assert!(got[0].contains("tests=CLAMAV_UNAVAILABLE"), "{}", got[0]);
}
