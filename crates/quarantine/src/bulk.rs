//! Bulk recovery: release or delete everything a filter selects (e.g. what one
//! rule held in a time window), with a dry run that only counts. The day a rule
//! goes wrong, this is how two days of held mail go out in one action.
//!
//! Only entries that can still be released or deleted are selected. Each held
//! message is released (or deleted) for the recipients the filter selected, one
//! message at a time through the same exactly-once path as a single release; a
//! message another administrator released meanwhile is skipped, not sent twice.
//! The whole action is one line of the audit log with its count.

use crate::release::{delete, release, ReleaseError};
use crate::Quarantine;
use portcullis_queue::Queue;
use portcullis_store::{HeldQuery, Store, StoreError};
use std::collections::{BTreeMap, HashSet};

/// What a bulk action does to each selected entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkAction {
    Release,
    Delete,
}

impl BulkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            BulkAction::Release => "release",
            BulkAction::Delete => "delete",
        }
    }
}

/// The counts of a bulk action (or of its dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BulkOutcome {
    pub dry_run: bool,
    /// Held messages and recipients the filter selected.
    pub messages: u64,
    pub recipients: u64,
    /// Recipients released or deleted.
    pub done: u64,
    /// Recipients someone else released or deleted meanwhile.
    pub skipped: u64,
    /// Messages that failed, with why (nothing changed for them).
    pub failed: BTreeMap<String, String>,
}

/// Runs `action` over the live entries `filter` selects, on behalf of `actor`.
pub async fn bulk(
    quarantine: &Quarantine,
    store: &Store,
    queue: &Queue,
    filter: HeldQuery,
    action: BulkAction,
    dry_run: bool,
    actor: &str,
) -> Result<BulkOutcome, StoreError> {
    let query = HeldQuery {
        live: true,
        limit: portcullis_store::held::MAX_HELD_PAGE,
        ..filter
    };
    let s = store.clone();
    let q = query.clone();
    let (messages, recipients) = tokio::task::spawn_blocking(move || {
        s.flush()?;
        s.count_held(&q)
    })
    .await
    .map_err(|e| StoreError::Corrupt(e.to_string()))??;
    let mut outcome = BulkOutcome {
        dry_run,
        messages,
        recipients,
        ..BulkOutcome::default()
    };
    if dry_run || recipients == 0 {
        return Ok(outcome);
    }
    // Page by page: what is done leaves the live set, so each page is new work;
    // a message tried once is not tried again (a failure must not loop).
    let mut tried: HashSet<String> = HashSet::new();
    loop {
        let (s, q) = (store.clone(), query.clone());
        let page = tokio::task::spawn_blocking(move || s.held(&q))
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
        for (id, rcpts) in by_message {
            tried.insert(id.clone());
            let wanted = rcpts.len() as u64;
            let result = match action {
                BulkAction::Release => release(quarantine, store, queue, &id, Some(rcpts), actor)
                    .await
                    .map(|r| r.recipients.len() as u64),
                BulkAction::Delete => {
                    let (q, s, who, i) = (
                        quarantine.clone(),
                        store.clone(),
                        actor.to_string(),
                        id.clone(),
                    );
                    tokio::task::spawn_blocking(move || {
                        delete(&q, &s, &i, Some(&rcpts), &who).map(|d| d.len() as u64)
                    })
                    .await
                    .unwrap_or_else(|e| Err(ReleaseError::Queue(e.to_string())))
                }
            };
            match result {
                Ok(n) => {
                    outcome.done += n;
                    outcome.skipped += wanted.saturating_sub(n);
                }
                Err(ReleaseError::NothingToDo { .. } | ReleaseError::NotFound(_)) => {
                    outcome.skipped += wanted
                }
                Err(e) => {
                    outcome.failed.insert(id, e.to_string());
                }
            }
        }
    }
    let detail = format!(
        "filter {}; {} done, {} skipped, {} messages failed",
        describe(&query),
        outcome.done,
        outcome.skipped,
        outcome.failed.len()
    );
    let (s, who) = (store.clone(), actor.to_string());
    let done = outcome.done as usize;
    tokio::task::spawn_blocking(move || {
        s.audit(
            &who,
            &format!("bulk {}", action.as_str()),
            "filter",
            done,
            Some(&detail),
        )
    })
    .await
    .map_err(|e| StoreError::Corrupt(e.to_string()))??;
    Ok(outcome)
}

/// A filter in words, for the audit log.
fn describe(q: &HeldQuery) -> String {
    let mut parts = Vec::new();
    let mut add = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    };
    add("category", &q.category);
    add("symbol", &q.symbol);
    add("sender", &q.sender);
    add("recipient", &q.recipient);
    add("text", &q.text);
    if let Some(s) = q.status {
        parts.push(format!("status={}", s.as_str()));
    }
    if let Some(since) = q.since_ms {
        parts.push(format!("since={}", portcullis_store::trace::rfc3339(since)));
    }
    if let Some(until) = q.until_ms {
        parts.push(format!("until={}", portcullis_store::trace::rfc3339(until)));
    }
    if parts.is_empty() {
        "everything held".into()
    } else {
        parts.join(" ")
    }
}
