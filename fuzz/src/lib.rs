//! portcullis-fuzz: coverage-guided fuzzing of the parts that read hostile
//! bytes: the scanner (MIME, HTML, links, attachments and archives, the
//! classifier's tokenizer), the link rewriter and link tokens, and the SMTP
//! server's command loop and DATA receiver. Each target feeds libFuzzer's input
//! to the real code and fails only by panicking, overflowing, or running away
//! in time or memory (libFuzzer's `-timeout` and `-rss_limit_mb`).
//!
//! Run with `scripts/fuzz.sh TARGET [SECONDS]` (nightly Rust and cargo-fuzz).
//! Inputs that once failed are kept as regression tests in the crates they
//! broke, so the stable test suite replays them.

use portcullis_classifier::{Class, Model};
use portcullis_scan::{Envelope, ScanConfig, Scanner};
use std::sync::{Arc, OnceLock};

/// A scanner with the default configuration and a small trained model, so
/// that the classifier's tokenizer and judgement run on every input.
pub fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| {
        let scanner = Scanner::new(ScanConfig::default()).expect("the default configuration");
        let mut model = Model::new();
        for n in 0..60 {
            let spam = format!(
                "From: deals{n}@cheap.example\r\nSubject: FREE money {n}\r\n\
                 Content-Type: text/html\r\n\r\n<p>Click <a href=\"http://win{n}.example/\">here</a> now</p>\r\n"
            );
            let ham = format!(
                "From: colleague{n}@example.org\r\nSubject: minutes of meeting {n}\r\n\r\n\
                 The build is green again; see you at the review.\r\n"
            );
            for (raw, class) in [(spam, Class::Spam), (ham, Class::Ham)] {
                if let Some(m) = mail_parser::MessageParser::default().parse(raw.as_bytes()) {
                    model.learn(&m, class);
                }
            }
        }
        scanner.set_model(Some(Arc::new(model)));
        scanner
    })
}

/// What the gateway knows of a message from outside.
pub fn envelope() -> Envelope {
    Envelope {
        client_ip: Some("192.0.2.25".parse().expect("an address")),
        helo: Some("mail.sender.example".into()),
        mail_from: Some("someone@sender.example".into()),
        recipients: vec!["user@example.org".into()],
        tls: None,
        auth_user: None,
        trusted: false,
        received_at: Some(1_700_000_000),
    }
}

/// Scans `raw` as the gateway does, then as a re-scan of held mail does, and
/// reads what the trace and the rewriter read from it.
pub fn scan_all(raw: &[u8]) {
    let scanner = scanner();
    let env = envelope();
    let verdict = scanner.scan(raw, &env);
    assert!(verdict.score.is_finite(), "score {}", verdict.score);
    let _ = scanner.rescan(raw, &env, &verdict);
    let _ = portcullis_scan::message_id(raw);
    let _ = portcullis_scan::message_urls(raw);
}
