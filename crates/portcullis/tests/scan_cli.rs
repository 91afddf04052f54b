//! `portcullis scan` on files and folders, with the configured thresholds.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

fn jsonl(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn scans_a_folder_and_reports_each_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let msgs = dir.path().join("msgs");
    std::fs::create_dir(&msgs).unwrap();
    std::fs::write(
        msgs.join("1-clean.eml"),
        "From: a@x.test\r\nMessage-ID: <clean@x.test>\r\nSubject: hi\r\n\r\nhello\r\n",
    )
    .unwrap();
    std::fs::write(
        msgs.join("2-gtube.mbox"),
        format!("From a@x.test Mon Nov 23 10:00:00 2026\nFrom: a@x.test\nMessage-ID: <gtube@x.test>\n\n{GTUBE}\n"),
    )
    .unwrap();

    let out = Command::new(BIN)
        .args(["scan", "--format", "jsonl"])
        .arg(&msgs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = jsonl(&out);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["message_id"], "clean@x.test");
    assert_eq!(
        (v[0]["action"].as_str(), v[0]["category"].as_str()),
        (Some("deliver"), Some("clean"))
    );
    assert_eq!(
        v[1]["message_id"], "gtube@x.test",
        "the mbox From line is skipped"
    );
    assert_eq!(
        (v[1]["action"].as_str(), v[1]["category"].as_str()),
        (Some("reject"), Some("spam"))
    );
    assert_eq!(v[1]["symbols"][0]["name"], "GTUBE");
    assert_eq!(v[1]["score"], 1000.0);
    assert!(v[1]["elapsed_us"].is_u64());

    let text = Command::new(BIN)
        .arg("scan")
        .arg(msgs.join("2-gtube.mbox"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("action reject") && text.contains("GTUBE"),
        "{text}"
    );

    // Weights and thresholds from the configuration.
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[scan.thresholds]\ntag = 5.0\nquarantine = 8.0\nreject = 15.0\n[scan.weights]\nGTUBE = 9.0\n").unwrap();
    let out = Command::new(BIN)
        .args(["scan", "--format", "jsonl", "--config"])
        .arg(&config)
        .arg(msgs.join("2-gtube.mbox"))
        .output()
        .unwrap();
    assert_eq!(jsonl(&out)[0]["action"], "quarantine");

    let bad = Command::new(BIN)
        .args(["scan", "/nonexistent/message.eml"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent/message.eml"));
}
