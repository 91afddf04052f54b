//! The retention purge: held entries past their expiry become `expired`, and
//! a held message's stored file is removed once none of its recipients can
//! be released any more. Runs at start and every ten minutes.
//!
//! With digests on, only entries a digest listed to their recipient as
//! expiring are purged (and listing keeps them the warning window longer);
//! an expired entry never listed waits for the next digest. Entries for
//! recipients outside the organisation's domains (held outbound mail, which
//! gets no digest) and all entries with digests off go at their expiry. Pinned entries
//! are never purged. Each purge is in the held message's trace (`purged`) and
//! in the audit log (actor `retention`).

use crate::{blocking, DigestError, Digests};
use portcullis_store::EventKind;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// How often the purge runs.
pub const PURGE_EVERY: Duration = Duration::from_secs(600);
/// Entries looked at per round.
const BATCH: usize = 5_000;

/// What a purge removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    /// Entries (message and recipient) expired.
    pub entries: usize,
    /// Held messages whose stored file was removed.
    pub removed: usize,
}

impl Digests {
    /// Purges what retention allows at `now` (Unix ms). Blocking: call off the
    /// async threads.
    pub fn purge(&self, now: i64) -> Result<PurgeReport, DigestError> {
        let store = &self.inner.store;
        let audience = self.inner.settings.audience();
        store.flush()?;
        let mut report = PurgeReport::default();
        loop {
            let due = store.expired_held(now, &audience, BATCH)?;
            if due.is_empty() {
                break;
            }
            let mut by_message: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (message, recipient) in due {
                by_message.entry(message).or_default().push(recipient);
            }
            let mut progressed = false;
            for (message, recipients) in by_message {
                let expired = store.expire_held(&message, &recipients, now, &audience)?;
                if expired.is_empty() {
                    continue;
                }
                progressed = true;
                report.entries += expired.len();
                let reason = "expired after its retention";
                store.record(
                    &message,
                    EventKind::Purged {
                        recipients: expired.clone(),
                        reason: reason.into(),
                    },
                );
                store.audit(
                    "retention",
                    "expire",
                    &message,
                    expired.len(),
                    Some(&expired.join(", ")),
                )?;
                let still_needed = store
                    .held_message(&message)?
                    .iter()
                    .any(|e| e.status.is_live());
                if !still_needed {
                    self.inner.quarantine.remove(&message)?;
                    report.removed += 1;
                }
                tracing::info!(id = %message, recipients = expired.len(), "held mail purged after its retention");
            }
            if !progressed {
                break;
            }
        }
        // Used links are remembered until a day after they expired.
        store.forget_used_links(now - crate::DAY_MS)?;
        Ok(report)
    }

    /// Runs the purge now and then every [`PURGE_EVERY`] until `stop`.
    pub async fn run_purge(self, mut stop: watch::Receiver<bool>) {
        loop {
            let me = self.clone();
            match blocking(move || me.purge(portcullis_store::now_ms())).await {
                Ok(r) if r.entries > 0 => {
                    tracing::info!(entries = r.entries, removed = r.removed, "retention purge")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "retention purge failed; it runs again later")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(PURGE_EVERY) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}
