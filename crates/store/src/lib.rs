//! portcullis-store: what the gateway remembers. The message trace: one record per
//! message (connection, envelope, headers of interest, status, verdict), one per
//! recipient (status and the last reply) and the ordered events of its journey.
//! The quarantine's index (`held`): one row per held message and recipient with
//! its release status and expiry, and the audit log of administrators' actions.
//! Console sessions and API tokens (`access`, hashes only). Which messages
//! carried which URL behind secure links and who clicked (`clicks`). The
//! sending servers recognised in inbound mail and their enforcement's pauses
//! and exemptions (`servers`). And the learned models (the content
//! classifier's), shared by every process.
//! SQLite is the embedded default; the schema is plain SQL so that a PostgreSQL
//! backend for cluster mode can follow the same shape.
//!
//! Standards: none on the wire; times are Unix milliseconds, shown as RFC 3339.
//!
//! Security posture: every string stored may come from a hostile client (HELO
//! names, addresses, subjects). Values are only ever bound as SQL parameters, never
//! spliced into SQL; queries are bounded by a `limit`. Writes go through one writer
//! thread in batches so a flood of events cannot exhaust connections, and a full
//! queue of events applies back-pressure instead of growing without bound.

pub mod access;
pub mod clicks;
pub mod digest;
pub mod held;
mod models;
mod schema;
pub mod servers;
#[cfg(test)]
mod testing;
pub mod trace;

pub use clicks::{Click, LinkDelivery, LinkFilter};
pub use held::{AuditEntry, Changed, HeldEntry, HeldQuery, ReleaseStatus};

pub use trace::{
    Event, EventKind, MessageQuery, MessageStatus, MessageTrace, RecipientStatus, RecipientTrace,
    ScanSymbol, Store, StoreError, TraceEvent,
};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
