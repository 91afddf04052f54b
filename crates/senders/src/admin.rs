//! What administrators do to a sending server's enforcement: pause it (within
//! the yearly allowance), resume it, exempt it or end the exemption. One
//! place for the CLI and the API, so both check the same allowance and write
//! the same audit line. Blocking (store writes): call off the async threads.

use crate::report::day;
use crate::stage::{self, Pause, DAY_MS};
use portcullis_store::{Store, StoreError};

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The store knows no such server; nothing changed.
    Unknown,
    /// The pause would exceed the yearly allowance; this many days are left.
    OverAllowance(u32),
    /// Paused from now until then (Unix ms).
    Paused { until: i64 },
    /// This many pauses ended now.
    Resumed { ended: usize },
    /// The exemption is now as asked.
    Exempt(bool),
}

fn known(store: &Store, key: &str) -> Result<bool, StoreError> {
    Ok(store.sender_server(key)?.is_some())
}

/// Pauses `key`'s enforcement for `days` from `now`, if the pauses of the
/// last and next 365 days stay within `allowance_days`.
pub fn pause(
    store: &Store,
    key: &str,
    days: u32,
    allowance_days: u32,
    actor: &str,
    now: i64,
) -> Result<Change, StoreError> {
    if !known(store, key)? {
        return Ok(Change::Unknown);
    }
    let pauses: Vec<Pause> = store
        .server_pauses(Some(key))?
        .into_iter()
        .map(|p| Pause {
            from: p.from,
            until: p.until,
        })
        .collect();
    if let Err(left) = stage::pause_fits(&pauses, now, days, allowance_days) {
        return Ok(Change::OverAllowance(left));
    }
    let until = now + i64::from(days) * DAY_MS;
    store.add_server_pause(key, now, until, actor)?;
    store.audit(
        actor,
        "pause sending server",
        key,
        1,
        Some(&format!("{days} days, until {}", day(until))),
    )?;
    Ok(Change::Paused { until })
}

/// Ends `key`'s pauses now.
pub fn resume(store: &Store, key: &str, actor: &str, now: i64) -> Result<Change, StoreError> {
    if !known(store, key)? {
        return Ok(Change::Unknown);
    }
    let ended = store.end_server_pauses(key, now)?;
    store.audit(
        actor,
        "resume sending server",
        key,
        ended,
        Some("enforcement resumed: its pauses end now"),
    )?;
    Ok(Change::Resumed { ended })
}

/// Exempts `key` from enforcement (`exempt`), or ends its exemption.
pub fn exempt(store: &Store, key: &str, exempt: bool, actor: &str) -> Result<Change, StoreError> {
    if !store.set_server_exempt(key, exempt)? {
        return Ok(Change::Unknown);
    }
    let what = if exempt {
        "exempt sending server"
    } else {
        "unexempt sending server"
    };
    store.audit(actor, what, key, 1, None)?;
    Ok(Change::Exempt(exempt))
}
