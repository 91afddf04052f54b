//! Releasing and deleting held mail.
//!
//! A release queues a copy of the held message for the chosen recipients under
//! a new trace id, through the same durable queue as any accepted mail, so its
//! delivery is retried, traced and, when it fails for good, reported to the
//! sender. Exactly once: the recipients are first moved to `releasing` in one
//! compare-and-set transaction (a second release of the same recipients finds
//! nothing to move), then the copy is written to the spool, then they become
//! `released`. A crash between the two steps leaves `releasing` rows, which
//! [`recover`] settles at the next start: released if the copy reached the
//! spool or the trace, back to where they were if not.

use crate::{Held, Quarantine, QuarantineError};
use portcullis_queue::Queue;
use portcullis_store::{EventKind, ReleaseStatus, Store, StoreError};
use std::future::Future;
use std::pin::Pin;

/// A released copy after the [`ReleaseHook`].
pub struct Prepared {
    pub message: Vec<u8>,
    /// Recorded in the copy's trace once it is queued.
    pub event: Option<EventKind>,
}

/// What a released copy goes through before it is queued. It never fails: a
/// hook that cannot do its work hands the message back as it was.
pub trait ReleaseHook: Send + Sync {
    fn prepare<'a>(
        &'a self,
        held: &'a Held,
        release_id: &'a str,
        recipients: &'a [String],
        message: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Prepared> + Send + 'a>>;
}

/// The statuses an administrator may release or delete from.
const LIVE: [ReleaseStatus; 4] = [
    ReleaseStatus::Held,
    ReleaseStatus::Requested,
    ReleaseStatus::Approved,
    ReleaseStatus::Denied,
];

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("no held message {0}")]
    NotFound(String),
    /// Every chosen recipient was already released, deleted or expired.
    #[error("nothing to {action} in {id}: {}", describe(.statuses))]
    NothingToDo {
        action: &'static str,
        id: String,
        statuses: Vec<(String, ReleaseStatus)>,
    },
    #[error(transparent)]
    Quarantine(#[from] QuarantineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the copy could not be queued: {0}")]
    Queue(String),
}

fn describe(statuses: &[(String, ReleaseStatus)]) -> String {
    if statuses.is_empty() {
        return "no such recipient".into();
    }
    statuses
        .iter()
        .map(|(r, s)| format!("{r} is {}", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a release did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Released {
    /// The trace id of the copy queued for delivery.
    pub release_id: String,
    pub recipients: Vec<String>,
}

/// Waits for the trace writer, so the index has every held message recorded so
/// far. Blocking: call off the async threads.
fn settled(store: &Store) -> Result<(), StoreError> {
    store.flush()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ReleaseError> + Send + 'static,
) -> Result<T, ReleaseError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ReleaseError::Queue(format!("worker: {e}")))?
}

/// Releases a held message to `recipients` (all of its held recipients when
/// None) on behalf of `actor`.
pub async fn release(
    quarantine: &Quarantine,
    store: &Store,
    queue: &Queue,
    id: &str,
    recipients: Option<Vec<String>>,
    actor: &str,
) -> Result<Released, ReleaseError> {
    let (q, s, owned_id) = (quarantine.clone(), store.clone(), id.to_string());
    let release_id = portcullis_queue::id::new_id();
    let rid = release_id.clone();
    let (held, message, claimed) = blocking(move || {
        let (held, message) = match q.read(&owned_id) {
            Ok(found) => found,
            Err(QuarantineError::NotFound(_)) => {
                // Deleted or expired entries are known to the index; the
                // stored message went with them.
                let statuses: Vec<_> = s
                    .held_message(&owned_id)?
                    .into_iter()
                    .map(|e| (e.recipient, e.status))
                    .collect();
                if statuses.is_empty() {
                    return Err(ReleaseError::NotFound(owned_id));
                }
                return Err(ReleaseError::NothingToDo {
                    action: "release",
                    id: owned_id,
                    statuses,
                });
            }
            Err(e) => return Err(e.into()),
        };
        settled(&s)?;
        let claimed = s.transition_held(
            &owned_id,
            recipients.as_deref(),
            &LIVE,
            ReleaseStatus::Releasing,
            Some(&rid),
        )?;
        if claimed.is_empty() {
            let statuses = s
                .held_message(&owned_id)?
                .into_iter()
                .filter(|e| {
                    recipients.as_ref().is_none_or(|list| {
                        list.iter().any(|r| r.eq_ignore_ascii_case(&e.recipient))
                    })
                })
                .map(|e| (e.recipient, e.status))
                .collect();
            return Err(ReleaseError::NothingToDo {
                action: "release",
                id: owned_id,
                statuses,
            });
        }
        Ok((held, message, claimed))
    })
    .await?;
    let chosen: Vec<String> = claimed.into_iter().map(|c| c.recipient).collect();

    let mut envelope = held.envelope.clone();
    envelope
        .recipients
        .retain(|r| chosen.iter().any(|c| c.eq_ignore_ascii_case(&r.address)));
    let (message, prepared_event) = match quarantine.release_hook() {
        Some(hook) => {
            let p = hook.prepare(&held, &release_id, &chosen, message).await;
            (p.message, p.event)
        }
        None => (message, None),
    };
    let reception = EventKind::Received {
        client_ip: held.client_ip.clone(),
        helo: None,
        tls: None,
        auth_user: None,
        mail_from: held.envelope.mail_from.clone(),
        recipients: chosen.clone(),
        size: message.len() as u64,
        message_id: held.message_id.clone(),
        subject: held.subject.clone(),
        reply: format!("released from quarantine {id} by {actor}"),
    };
    if let Err(e) = queue
        .enqueue(release_id.clone(), envelope, message, reception)
        .await
    {
        // Not queued: the recipients go back to where they were, to be
        // released again later.
        let (s, owned_id, rcpts) = (store.clone(), id.to_string(), chosen.clone());
        blocking(move || Ok(s.restore_held(&owned_id, &rcpts)?)).await?;
        return Err(ReleaseError::Queue(e.to_string()));
    }

    let (s, owned_id, rcpts, rid, who) = (
        store.clone(),
        id.to_string(),
        chosen.clone(),
        release_id.clone(),
        actor.to_string(),
    );
    blocking(move || {
        s.transition_held(
            &owned_id,
            Some(&rcpts),
            &[ReleaseStatus::Releasing],
            ReleaseStatus::Released,
            None,
        )?;
        s.record(
            &owned_id,
            EventKind::Released {
                recipients: rcpts.clone(),
                release_id: rid.clone(),
                actor: who.clone(),
            },
        );
        s.audit(&who, "release", &owned_id, rcpts.len(), Some(&rid))?;
        if let Some(event) = prepared_event {
            s.record(&rid, event);
        }
        Ok(())
    })
    .await?;
    tracing::info!(
        id,
        release_id,
        actor,
        recipients = chosen.len(),
        "released from quarantine"
    );
    Ok(Released {
        release_id,
        recipients: chosen,
    })
}

/// A user asks for the release of their held copy (for categories where the
/// release policy says `request`). Blocking: call off the async threads.
pub fn request(store: &Store, id: &str, recipient: &str, actor: &str) -> Result<(), ReleaseError> {
    settled(store)?;
    let rcpt = [recipient.to_string()];
    let changed = store.transition_held(
        id,
        Some(&rcpt),
        &[ReleaseStatus::Held],
        ReleaseStatus::Requested,
        None,
    )?;
    if changed.is_empty() {
        return Err(nothing_to_do("request", store, id, Some(&rcpt))?);
    }
    store.record(
        id,
        EventKind::ReleaseRequested {
            recipients: rcpt.to_vec(),
            actor: actor.to_string(),
        },
    );
    store.audit(actor, "request release", id, 1, Some(recipient))?;
    Ok(())
}

/// An administrator's answer to release requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approve,
    Deny,
}

/// Approves (and at once releases) or denies the requested recipients of a
/// held message (all requested ones when `recipients` is None). Returns the
/// recipients decided; an approval's release is in the second value.
pub async fn decide(
    quarantine: &Quarantine,
    store: &Store,
    queue: &Queue,
    id: &str,
    recipients: Option<Vec<String>>,
    decision: Decision,
    actor: &str,
) -> Result<(Vec<String>, Option<Released>), ReleaseError> {
    let to = match decision {
        Decision::Approve => ReleaseStatus::Approved,
        Decision::Deny => ReleaseStatus::Denied,
    };
    let (s, owned_id, chosen, who) = (
        store.clone(),
        id.to_string(),
        recipients.clone(),
        actor.to_string(),
    );
    let decided = blocking(move || {
        settled(&s)?;
        let changed = s.transition_held(
            &owned_id,
            chosen.as_deref(),
            &[ReleaseStatus::Requested],
            to,
            None,
        )?;
        if changed.is_empty() {
            return Err(nothing_to_do(
                "decide on",
                &s,
                &owned_id,
                chosen.as_deref(),
            )?);
        }
        let rcpts: Vec<String> = changed.into_iter().map(|c| c.recipient).collect();
        if decision == Decision::Deny {
            s.record(
                &owned_id,
                EventKind::ReleaseDenied {
                    recipients: rcpts.clone(),
                    actor: who.clone(),
                },
            );
            s.audit(&who, "deny release", &owned_id, rcpts.len(), None)?;
        } else {
            s.audit(&who, "approve release", &owned_id, rcpts.len(), None)?;
        }
        Ok(rcpts)
    })
    .await?;
    if decision == Decision::Deny {
        return Ok((decided, None));
    }
    let released = release(quarantine, store, queue, id, Some(decided.clone()), actor).await?;
    Ok((decided, Some(released)))
}

/// The error for a change that found nothing to change, with each chosen
/// recipient's status.
fn nothing_to_do(
    action: &'static str,
    store: &Store,
    id: &str,
    recipients: Option<&[String]>,
) -> Result<ReleaseError, StoreError> {
    let statuses: Vec<_> = store
        .held_message(id)?
        .into_iter()
        .filter(|e| {
            recipients.is_none_or(|list| list.iter().any(|r| r.eq_ignore_ascii_case(&e.recipient)))
        })
        .map(|e| (e.recipient, e.status))
        .collect();
    if statuses.is_empty() && store.held_message(id)?.is_empty() {
        return Ok(ReleaseError::NotFound(id.to_string()));
    }
    Ok(ReleaseError::NothingToDo {
        action,
        id: id.to_string(),
        statuses,
    })
}

/// Deletes a held message's `recipients` (all of its live ones when None) on
/// behalf of `actor`. When no recipient is left that could still be released,
/// the stored message is removed. Blocking (it waits for the disk and the
/// store): call off the async threads.
pub fn delete(
    quarantine: &Quarantine,
    store: &Store,
    id: &str,
    recipients: Option<&[String]>,
    actor: &str,
) -> Result<Vec<String>, ReleaseError> {
    match quarantine.header(id) {
        Ok(_) => {}
        Err(QuarantineError::NotFound(_)) if !store.held_message(id)?.is_empty() => {}
        Err(QuarantineError::NotFound(_)) => return Err(ReleaseError::NotFound(id.to_string())),
        Err(e) => return Err(e.into()),
    }
    settled(store)?;
    let changed = store.transition_held(id, recipients, &LIVE, ReleaseStatus::Deleted, None)?;
    if changed.is_empty() {
        let statuses = store
            .held_message(id)?
            .into_iter()
            .map(|e| (e.recipient, e.status))
            .collect();
        return Err(ReleaseError::NothingToDo {
            action: "delete",
            id: id.to_string(),
            statuses,
        });
    }
    let deleted: Vec<String> = changed.into_iter().map(|c| c.recipient).collect();
    store.record(
        id,
        EventKind::Deleted {
            recipients: deleted.clone(),
        },
    );
    store.audit(actor, "delete", id, deleted.len(), None)?;
    let still_needed = store.held_message(id)?.iter().any(|e| e.status.is_live());
    if !still_needed {
        quarantine.remove(id)?;
    }
    tracing::info!(
        id,
        actor,
        recipients = deleted.len(),
        "deleted from quarantine"
    );
    Ok(deleted)
}

/// Settles releases a crash interrupted (entries left in `releasing`): if the
/// copy reached the queue's spool or the trace it was released; otherwise the
/// entries go back to where they were. Run at start, after the queue has
/// recovered its spool. Returns how many entries it settled.
pub fn recover(store: &Store, queue: &Queue) -> Result<usize, StoreError> {
    store.flush()?;
    let stuck = store.releasing_held()?;
    for (message, recipient, release_id) in &stuck {
        let queued = match release_id {
            Some(rid) => queue.item(rid).is_ok() || store.contains(rid)?,
            None => false,
        };
        let rcpts = std::slice::from_ref(recipient);
        if queued {
            store.transition_held(
                message,
                Some(rcpts),
                &[ReleaseStatus::Releasing],
                ReleaseStatus::Released,
                None,
            )?;
            store.record(
                message,
                EventKind::Released {
                    recipients: rcpts.to_vec(),
                    release_id: release_id.clone().unwrap_or_default(),
                    actor: "recovery".into(),
                },
            );
        } else {
            store.restore_held(message, rcpts)?;
        }
        tracing::warn!(
            id = %message,
            recipient = %recipient,
            released = queued,
            "settled a release interrupted by a stop"
        );
    }
    Ok(stuck.len())
}
