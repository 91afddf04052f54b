//! Re-scan: judges held mail again with the current rules, weights and model,
//! and (unless it is a dry run) releases what now passes. After a rule that
//! went wrong is fixed, this is how the mail it held is checked and sent on,
//! without releasing anything the other checks still hold.
//!
//! What the network said at arrival (sender authentication, DNS lists, clamd) is kept
//! from the stored verdict (see `Scanner::rescan`). Each new verdict is
//! recorded in the held message's trace; a release goes through the same
//! exactly-once path as any other.

use crate::release::release;
use crate::Quarantine;
use portcullis_queue::Queue;
use portcullis_scan::{Action, Envelope, Scanner};
use portcullis_store::{EventKind, HeldQuery, ScanSymbol, Store, StoreError};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// The counts of a re-scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RescanOutcome {
    pub dry_run: bool,
    /// Held messages judged again.
    pub scanned: u64,
    /// Of those, the ones the current checks would deliver (or only tag).
    pub passing: u64,
    /// Recipients released (0 in a dry run).
    pub released: u64,
    /// Messages that failed, with why.
    pub failed: BTreeMap<String, String>,
}

/// Re-scans the live held messages `filter` selects; releases the passing
/// ones' selected recipients when `release_passing` and not `dry_run`.
#[allow(clippy::too_many_arguments)]
pub async fn rescan(
    quarantine: &Quarantine,
    store: &Store,
    queue: &Queue,
    scanner: Arc<Scanner>,
    filter: HeldQuery,
    release_passing: bool,
    dry_run: bool,
    actor: &str,
) -> Result<RescanOutcome, StoreError> {
    let query = HeldQuery {
        live: true,
        limit: portcullis_store::held::MAX_HELD_PAGE,
        ..filter
    };
    let mut outcome = RescanOutcome {
        dry_run,
        ..RescanOutcome::default()
    };
    let mut tried: HashSet<String> = HashSet::new();
    loop {
        let (s, q) = (store.clone(), query.clone());
        let page = tokio::task::spawn_blocking(move || {
            s.flush()?;
            s.held(&q)
        })
        .await
        .map_err(|e| StoreError::Corrupt(e.to_string()))??;
        let mut by_message: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in page {
            if !tried.contains(&e.message) {
                by_message.entry(e.message).or_default().push(e.recipient);
            }
        }
        if by_message.is_empty() {
            break;
        }
        tried.extend(by_message.keys().cloned());
        // Judge the page on one blocking thread: scanning is CPU work.
        let (q, sc, s) = (quarantine.clone(), scanner.clone(), store.clone());
        let ids: Vec<String> = by_message.keys().cloned().collect();
        let record = !dry_run;
        let judged = tokio::task::spawn_blocking(move || {
            ids.into_iter()
                .map(|id| {
                    let result = q.read(&id).map(|(held, raw)| {
                        let envelope = Envelope {
                            client_ip: held.client_ip.parse().ok(),
                            helo: None,
                            mail_from: Some(held.envelope.mail_from.clone()),
                            recipients: held
                                .envelope
                                .recipients
                                .iter()
                                .map(|r| r.address.clone())
                                .collect(),
                            received_at: Some(held.received_at / 1000),
                            ..Envelope::default()
                        };
                        let verdict = sc.rescan(&raw, &envelope, &held.verdict);
                        if record {
                            s.record(&id, scanned_event(&verdict, 0));
                        }
                        matches!(verdict.action, Action::Deliver | Action::Tag)
                    });
                    (id, result)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        for (id, result) in judged {
            match result {
                Err(e) => {
                    outcome.failed.insert(id, e.to_string());
                }
                Ok(passing) => {
                    outcome.scanned += 1;
                    if !passing {
                        continue;
                    }
                    outcome.passing += 1;
                    if dry_run || !release_passing {
                        continue;
                    }
                    let rcpts = by_message.remove(&id).unwrap_or_default();
                    match release(quarantine, store, queue, &id, Some(rcpts), actor).await {
                        Ok(r) => outcome.released += r.recipients.len() as u64,
                        Err(crate::ReleaseError::NothingToDo { .. }) => {}
                        Err(e) => {
                            outcome.failed.insert(id, e.to_string());
                        }
                    }
                }
            }
        }
    }
    if !dry_run {
        let (s, who) = (store.clone(), actor.to_string());
        let detail = format!(
            "{} scanned, {} passing, {} recipients released",
            outcome.scanned, outcome.passing, outcome.released
        );
        let n = outcome.scanned as usize;
        tokio::task::spawn_blocking(move || s.audit(&who, "rescan", "filter", n, Some(&detail)))
            .await
            .map_err(|e| StoreError::Corrupt(e.to_string()))??;
    }
    Ok(outcome)
}

/// A verdict as the trace's `scanned` event.
pub fn scanned_event(v: &portcullis_scan::Verdict, elapsed_us: u64) -> EventKind {
    EventKind::Scanned {
        score: v.score,
        category: v.category.as_str().to_string(),
        action: v.action.as_str().to_string(),
        symbols: v
            .symbols
            .iter()
            .map(|s| ScanSymbol {
                name: s.name.clone(),
                score: s.score,
                detail: s.detail.clone(),
            })
            .collect(),
        elapsed_us,
    }
}
