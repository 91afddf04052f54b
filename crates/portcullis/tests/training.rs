//! `portcullis train` against a running gateway: the model is stored, learning
//! adds to it, and the gateway uses it for the next message without a restart.

mod common;
use common::{wait_until, Gateway, Sink};
use std::time::Duration;

const SPAM_WORDS: &[&str] = &[
    "cheap",
    "pills",
    "casino",
    "winner",
    "bonus",
    "viagra",
    "lottery",
    "claim",
    "prize",
    "unsubscribe",
    "offer",
    "limited",
    "guaranteed",
    "income",
    "click",
];
const HAM_WORDS: &[&str] = &[
    "meeting",
    "agenda",
    "quarterly",
    "report",
    "project",
    "review",
    "draft",
    "minutes",
    "budget",
    "schedule",
    "thanks",
    "attached",
    "team",
    "deadline",
    "notes",
];

/// The `i`th selection of 40 of `words`.
fn body(words: &[&str], i: usize) -> String {
    let picked: Vec<&str> = (0..40)
        .map(|k| words[(i * 7 + k * 3) % words.len()])
        .collect();
    picked.join(" ")
}

/// `n` messages built from `words`, each a different selection.
fn corpus(dir: &std::path::Path, words: &[&str], n: usize) {
    std::fs::create_dir_all(dir).expect("folder");
    for i in 0..n {
        let msg = format!(
            "From: sender{i}@corpus.test\r\nTo: bob@example.test\r\nSubject: {} {}\r\n\
             Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <c{i}@corpus.test>\r\n\r\n{}\r\n",
            words[i % words.len()],
            words[(i + 3) % words.len()],
            body(words, i)
        );
        std::fs::write(dir.join(format!("{i:03}.eml")), msg).expect("write");
    }
}

#[test]
fn a_trained_model_reaches_the_running_gateway_without_a_restart() {
    let sink = Sink::start(&[]);
    let gw = Gateway::start(
        "",
        &format!(
            "[[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:{}\"\n",
            sink.port
        ),
    );
    // Long enough for the model to know well over 100 of its features: a short
    // message gets only a timid opinion, under the tag threshold by design.
    let spam_text: Vec<String> = (0..3).map(|i| body(SPAM_WORDS, i)).collect();
    let spam_text = spam_text.join("\n");
    let spammy = || {
        gw.swaks(&[
            "--from",
            "promo@outside.test",
            "--to",
            "bob@example.test",
            "--header",
            "Subject: casino winner bonus",
            "--body",
            &spam_text,
        ])
    };
    // Before training the classifier is silent.
    let run = spammy();
    let t = gw.wait_status(&run.queue_id(), "delivered");
    assert!(!t["events"].to_string().contains("BAYES_"), "{t:#}");

    let dir = tempfile::tempdir().expect("tempdir");
    corpus(&dir.path().join("spam"), SPAM_WORDS, 60);
    corpus(&dir.path().join("ham"), HAM_WORDS, 60);
    let out = gw.cli(&[
        "train",
        "--spam",
        &dir.path().join("spam").display().to_string(),
        "--ham",
        &dir.path().join("ham").display().to_string(),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("learned 60 spam and 60 ham"), "{said}");

    // The gateway polls the store; within a few seconds spam is judged by it.
    wait_until(
        "the gateway to load the model",
        Duration::from_secs(30),
        || gw.log().contains("classifier model reloaded"),
    );
    let run = spammy();
    let id = run.queue_id();
    let mut t = serde_json::Value::Null;
    wait_until("the verdict in the trace", Duration::from_secs(30), || {
        t = gw
            .trace(&["--id", &id])
            .into_iter()
            .next()
            .unwrap_or_default();
        !t["action"].is_null()
    });
    assert!(t["events"].to_string().contains("BAYES_SPAM"), "{t:#}");
    assert_ne!(t["action"], "deliver", "{t:#}");

    // A second run adds to the model rather than replacing it.
    let out = gw.cli(&[
        "train",
        "--ham",
        &dir.path().join("ham").display().to_string(),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("now knows 60 spam and 120 ham"), "{said}");
}
