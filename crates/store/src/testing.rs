//! What the store's unit tests share: a fresh store, and a held message
//! recorded as the gateway records one (received, scanned, quarantined).

use crate::trace::{EventKind, ScanSymbol, Store};

pub(crate) fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_sqlite(&dir.path().join("trace.db")).expect("store");
    (dir, store)
}

/// Holds `id` for `rcpts` by the rule `symbol`, expiring at `expires_at`;
/// its subject is "Cheap 100% offer <id>".
pub(crate) fn hold(store: &Store, id: &str, rcpts: &[&str], symbol: &str, expires_at: i64) {
    let recipients: Vec<String> = rcpts.iter().map(|r| r.to_string()).collect();
    store.record(
        id,
        EventKind::Received {
            client_ip: "192.0.2.1".into(),
            helo: None,
            tls: None,
            auth_user: None,
            mail_from: "spammer@example.net".into(),
            recipients: recipients.clone(),
            size: 100,
            message_id: None,
            subject: Some(format!("Cheap 100% offer {id}")),
            reply: "250".into(),
        },
    );
    store.record(
        id,
        EventKind::Scanned {
            score: 9.0,
            category: "spam".into(),
            action: "quarantine".into(),
            symbols: vec![ScanSymbol {
                name: symbol.into(),
                score: 9.0,
                detail: String::new(),
            }],
            elapsed_us: 1,
        },
    );
    store.record(
        id,
        EventKind::Quarantined {
            recipients,
            reason: symbol.into(),
            expires_at: Some(expires_at),
        },
    );
    store.flush().expect("flush");
}
