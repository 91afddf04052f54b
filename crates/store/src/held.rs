//! The quarantine's index: one row per held message and recipient, with where
//! its release stands, when it expires, and the symbols of every scanned
//! message (so held mail can be found by the rule that held it). The held
//! message itself lives in the quarantine folder; this is what lists, filters
//! and the release workflow read and change.
//!
//! Rows are added by the trace writer when it applies a `quarantined` event, in
//! the same transaction as the trace. Release, denial and deletion change them
//! directly, each as one compare-and-set transaction, so two administrators (or
//! a double click) releasing at once release once.

use crate::trace::{open_connection, rfc3339, ScanSymbol, Store, StoreError};
use rusqlite::{params, params_from_iter, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

/// How long held mail is kept when nothing else is configured: 30 days.
pub const DEFAULT_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// Where one held recipient's copy stands. `requested → approved | denied →
/// released → delivered | failed`; `held` is where every entry starts.
/// `delivered` and `failed` are not stored: they are the delivery outcome of
/// the released copy, read from its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseStatus {
    /// Held; nobody has asked for it.
    Held,
    /// A user asked for release; an administrator must decide.
    Requested,
    /// An administrator approved the request; release follows at once.
    Approved,
    /// An administrator refused the request; it stays held until it expires.
    Denied,
    /// Being queued for delivery (a moment, or until recovery after a crash).
    Releasing,
    /// Queued for delivery as a new message (`release_id`).
    Released,
    /// The released copy was accepted by the next hop (250).
    Delivered,
    /// The released copy could not be delivered (the sender got a DSN).
    Failed,
    /// Deleted by an administrator.
    Deleted,
    /// Purged after its retention.
    Expired,
}

impl ReleaseStatus {
    pub const ALL: [ReleaseStatus; 10] = [
        ReleaseStatus::Held,
        ReleaseStatus::Requested,
        ReleaseStatus::Approved,
        ReleaseStatus::Denied,
        ReleaseStatus::Releasing,
        ReleaseStatus::Released,
        ReleaseStatus::Delivered,
        ReleaseStatus::Failed,
        ReleaseStatus::Deleted,
        ReleaseStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Held => "held",
            ReleaseStatus::Requested => "requested",
            ReleaseStatus::Approved => "approved",
            ReleaseStatus::Denied => "denied",
            ReleaseStatus::Releasing => "releasing",
            ReleaseStatus::Released => "released",
            ReleaseStatus::Delivered => "delivered",
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::Deleted => "deleted",
            ReleaseStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<ReleaseStatus> {
        ReleaseStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Still in the quarantine: may yet be released, deleted or expire.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            ReleaseStatus::Held
                | ReleaseStatus::Requested
                | ReleaseStatus::Approved
                | ReleaseStatus::Denied
                | ReleaseStatus::Releasing
        )
    }

    /// The stored status a filter on this one must match (delivered and failed
    /// are released copies with an outcome).
    fn stored(self) -> &'static str {
        match self {
            ReleaseStatus::Delivered | ReleaseStatus::Failed => "released",
            other => other.as_str(),
        }
    }
}

/// One held recipient, as lists and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldEntry {
    /// The held message's id (its trace id).
    pub message: String,
    pub recipient: String,
    pub status: ReleaseStatus,
    pub received_at: i64,
    pub received: String,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub category: Option<String>,
    pub score: Option<f64>,
    pub size: Option<i64>,
    /// The verdict's main reason, as the trace gives it.
    pub reason: Option<String>,
    pub expires_at: i64,
    pub expires: String,
    pub pinned: bool,
    /// The trace id of the released copy.
    pub release_id: Option<String>,
    pub updated_at: i64,
}

/// A filter over held entries; every field narrows it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HeldQuery {
    pub message: Option<String>,
    pub status: Option<ReleaseStatus>,
    /// Only entries that may still be released or deleted.
    pub live: bool,
    pub category: Option<String>,
    /// A symbol (rule) of the verdict that held it.
    pub symbol: Option<String>,
    /// Envelope sender, exact (case-insensitive).
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Words in the subject or the sender.
    pub text: Option<String>,
    /// Only entries for these recipients (a user's own addresses); an empty
    /// list selects nothing.
    #[serde(skip)]
    pub owners: Option<Vec<String>>,
    pub limit: usize,
}

/// The most entries one query returns.
pub const MAX_HELD_PAGE: usize = 10_000;

pub(crate) fn index_symbols(
    tx: &rusqlite::Transaction<'_>,
    message: &str,
    symbols: &[ScanSymbol],
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached("INSERT OR REPLACE INTO symbols (message, name, score) VALUES (?, ?, ?)")?;
    for s in symbols {
        stmt.execute(params![message, s.name, s.score])?;
    }
    Ok(())
}

pub(crate) fn index_held(
    tx: &rusqlite::Transaction<'_>,
    message: &str,
    recipients: &[String],
    reason: &str,
    expires_at: i64,
    at: i64,
) -> Result<(), StoreError> {
    let received_at: i64 = tx
        .prepare_cached("SELECT received_at FROM messages WHERE id = ?")?
        .query_row([message], |row| row.get(0))
        .optional()?
        .unwrap_or(at);
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO held (message, recipient, received_at, status, reason, expires_at, updated_at) \
         VALUES (?, ?, ?, 'held', ?, ?, ?)",
    )?;
    for r in recipients {
        stmt.execute(params![message, r, received_at, reason, expires_at, at])?;
    }
    Ok(())
}

pub(crate) const SELECT: &str =
    "SELECT h.message, h.recipient, h.status, r.status, h.received_at, \
     m.mail_from, m.subject, m.category, m.score, m.size, h.reason, h.expires_at, h.pinned, \
     h.release_id, h.updated_at \
     FROM held h \
     LEFT JOIN messages m ON m.id = h.message \
     LEFT JOIN recipients r ON r.message = h.release_id AND r.address = h.recipient";

pub(crate) fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<HeldEntry> {
    let stored: String = row.get(2)?;
    let copy: Option<String> = row.get(3)?;
    let mut status = ReleaseStatus::parse(&stored).unwrap_or(ReleaseStatus::Held);
    if status == ReleaseStatus::Released {
        match copy.as_deref() {
            Some("delivered") => status = ReleaseStatus::Delivered,
            Some("bounced") => status = ReleaseStatus::Failed,
            _ => {}
        }
    }
    let received_at: i64 = row.get(4)?;
    let expires_at: i64 = row.get(11)?;
    Ok(HeldEntry {
        message: row.get(0)?,
        recipient: row.get(1)?,
        status,
        received_at,
        received: rfc3339(received_at),
        sender: row.get(5)?,
        subject: row.get(6)?,
        category: row.get(7)?,
        score: row.get(8)?,
        size: row.get(9)?,
        reason: row.get(10)?,
        expires_at,
        expires: rfc3339(expires_at),
        pinned: row.get::<_, i64>(12)? != 0,
        release_id: row.get(13)?,
        updated_at: row.get(14)?,
    })
}

/// One recipient whose status a transition changed, and what it was before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub recipient: String,
    pub before: ReleaseStatus,
}

/// The WHERE clause of a held query and its parameters.
fn where_clause(q: &HeldQuery) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = String::from("1=1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(m) = &q.message {
        sql.push_str(" AND h.message = ?");
        args.push(m.clone().into());
    }
    if let Some(s) = q.status {
        sql.push_str(" AND h.status = ?");
        args.push(s.stored().to_string().into());
        match s {
            ReleaseStatus::Delivered => sql.push_str(" AND r.status = 'delivered'"),
            ReleaseStatus::Failed => sql.push_str(" AND r.status = 'bounced'"),
            ReleaseStatus::Released => {
                sql.push_str(" AND coalesce(r.status, '') NOT IN ('delivered', 'bounced')")
            }
            _ => {}
        }
    }
    if q.live {
        sql.push_str(" AND h.status IN ('held', 'requested', 'approved', 'denied', 'releasing')");
    }
    if let Some(c) = &q.category {
        sql.push_str(" AND m.category = ?");
        args.push(c.clone().into());
    }
    if let Some(sym) = &q.symbol {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM symbols s WHERE s.message = h.message AND s.name = ?)",
        );
        args.push(sym.clone().into());
    }
    if let Some(from) = &q.sender {
        sql.push_str(" AND m.mail_from = ? COLLATE NOCASE");
        args.push(from.trim_matches(['<', '>']).to_string().into());
    }
    if let Some(to) = &q.recipient {
        sql.push_str(" AND h.recipient = ? COLLATE NOCASE");
        args.push(to.trim_matches(['<', '>']).to_string().into());
    }
    if let Some(since) = q.since_ms {
        sql.push_str(" AND h.received_at >= ?");
        args.push(since.into());
    }
    if let Some(until) = q.until_ms {
        sql.push_str(" AND h.received_at < ?");
        args.push(until.into());
    }
    if let Some(text) = q.text.as_deref().filter(|t| !t.trim().is_empty()) {
        // LIKE with the pattern's own wildcards escaped: the words are data.
        let escaped = text
            .trim()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        sql.push_str(" AND (m.subject LIKE ? ESCAPE '\\' OR m.mail_from LIKE ? ESCAPE '\\')");
        let pattern = format!("%{escaped}%");
        args.push(pattern.clone().into());
        args.push(pattern.into());
    }
    if let Some(owners) = &q.owners {
        if owners.is_empty() {
            sql.push_str(" AND 0");
        } else {
            let marks = vec!["?"; owners.len()].join(", ");
            sql.push_str(&format!(" AND h.recipient COLLATE NOCASE IN ({marks})"));
            args.extend(owners.iter().map(|o| o.clone().into()));
        }
    }
    (sql, args)
}

impl Store {
    /// Held entries matching `q`, newest first.
    pub fn held(&self, q: &HeldQuery) -> Result<Vec<HeldEntry>, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let (filter, mut args) = where_clause(q);
        let mut sql = format!("{SELECT} WHERE {filter}");
        sql.push_str(" ORDER BY h.received_at DESC, h.message DESC, h.recipient LIMIT ?");
        let limit = if q.limit == 0 {
            100
        } else {
            q.limit.min(MAX_HELD_PAGE)
        };
        args.push((limit as i64).into());
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args.iter()), entry)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    /// How many held messages and recipients match `q` (its limit ignored).
    pub fn count_held(&self, q: &HeldQuery) -> Result<(u64, u64), StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let (filter, args) = where_clause(q);
        let sql = format!(
            "SELECT count(DISTINCT h.message), count(*) FROM held h \
             LEFT JOIN messages m ON m.id = h.message \
             LEFT JOIN recipients r ON r.message = h.release_id AND r.address = h.recipient \
             WHERE {filter}"
        );
        let counts = conn
            .prepare_cached(&sql)?
            .query_row(params_from_iter(args.iter()), |row| {
                Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64))
            })?;
        Ok(counts)
    }

    /// The entries of one held message, in recipient order.
    pub fn held_message(&self, message: &str) -> Result<Vec<HeldEntry>, StoreError> {
        let mut entries = self.held(&HeldQuery {
            message: Some(message.to_string()),
            limit: MAX_HELD_PAGE,
            ..HeldQuery::default()
        })?;
        entries.sort_by(|a, b| a.recipient.cmp(&b.recipient));
        Ok(entries)
    }

    /// Moves the chosen recipients of a held message (all of them when
    /// `recipients` is None) from any status in `from` to `to`, in one
    /// transaction. Returns the recipients it moved; those in another status
    /// are left alone. `release_id` is stored when given.
    pub fn transition_held(
        &self,
        message: &str,
        recipients: Option<&[String]>,
        from: &[ReleaseStatus],
        to: ReleaseStatus,
        release_id: Option<&str>,
    ) -> Result<Vec<Changed>, StoreError> {
        let mut conn = open_connection(&self.path)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Vec<(String, String)> = {
            let mut stmt = tx.prepare(
                "SELECT recipient, status FROM held WHERE message = ? ORDER BY recipient",
            )?;
            let rows = stmt.query_map([message], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let now = crate::now_ms();
        let mut changed = Vec::new();
        for (recipient, status) in current {
            let wanted = recipients
                .is_none_or(|list| list.iter().any(|r| r.eq_ignore_ascii_case(&recipient)));
            let before = ReleaseStatus::parse(&status).unwrap_or(ReleaseStatus::Held);
            if !wanted || !from.contains(&before) {
                continue;
            }
            tx.execute(
                "UPDATE held SET status = ?, prev_status = ?, release_id = coalesce(?, release_id), \
                 updated_at = ? WHERE message = ? AND recipient = ?",
                params![to.as_str(), before.as_str(), release_id, now, message, recipient],
            )?;
            changed.push(Changed { recipient, before });
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Puts entries left in `releasing` back where they were (the copy was
    /// never queued).
    pub fn restore_held(&self, message: &str, recipients: &[String]) -> Result<(), StoreError> {
        let conn = open_connection(&self.path)?;
        let now = crate::now_ms();
        for r in recipients {
            conn.execute(
                "UPDATE held SET status = coalesce(prev_status, 'held'), release_id = NULL, updated_at = ? \
                 WHERE message = ? AND recipient = ? AND status = 'releasing'",
                params![now, message, r],
            )?;
        }
        Ok(())
    }

    /// Entries caught in `releasing` (by a crash): message, recipient, release id.
    pub fn releasing_held(&self) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
        let conn = open_connection(&self.path)?;
        let mut stmt = conn.prepare(
            "SELECT message, recipient, release_id FROM held WHERE status = 'releasing' ORDER BY message",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether the index has any entry for this message.
    pub fn is_indexed_held(&self, message: &str) -> Result<bool, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let found = conn
            .prepare_cached("SELECT 1 FROM held WHERE message = ? LIMIT 1")?
            .query_row([message], |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }

    /// Writes one line of the audit log: who did what to what, and to how many.
    pub fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        count: usize,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let conn = open_connection(&self.path)?;
        conn.execute(
            "INSERT INTO audit (at, actor, action, target, count, detail) VALUES (?, ?, ?, ?, ?, ?)",
            params![crate::now_ms(), actor, action, target, count as i64, detail],
        )?;
        Ok(())
    }

    /// The audit log, newest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let mut stmt = conn.prepare_cached(
            "SELECT at, actor, action, target, count, detail FROM audit ORDER BY seq DESC LIMIT ?",
        )?;
        let rows = stmt.query_map([limit.clamp(1, MAX_HELD_PAGE) as i64], |row| {
            let at: i64 = row.get(0)?;
            Ok(AuditEntry {
                at,
                at_rfc3339: rfc3339(at),
                actor: row.get(1)?,
                action: row.get(2)?,
                target: row.get(3)?,
                count: row.get::<_, i64>(4)? as u64,
                detail: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: i64,
    pub at_rfc3339: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub count: u64,
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::EventKind;

    use crate::testing::store;

    fn hold(store: &Store, id: &str, rcpts: &[&str], symbol: &str) {
        crate::testing::hold(store, id, rcpts, symbol, 1_000);
    }

    #[test]
    fn a_quarantined_event_makes_one_entry_per_recipient() {
        let (_d, store) = store();
        hold(&store, "A1", &["b@example.org", "a@example.org"], "RULE_X");
        let entries = store.held_message("A1").unwrap();
        let rcpts: Vec<_> = entries.iter().map(|e| e.recipient.as_str()).collect();
        assert_eq!(rcpts, ["a@example.org", "b@example.org"]);
        assert!(entries.iter().all(|e| e.status == ReleaseStatus::Held
            && e.category.as_deref() == Some("spam")
            && e.expires_at == 1_000
            && e.sender.as_deref() == Some("spammer@example.net")));
    }

    #[test]
    fn filters_by_symbol_recipient_status_and_text() {
        let (_d, store) = store();
        hold(&store, "A1", &["a@example.org"], "RULE_X");
        hold(&store, "A2", &["b@example.org"], "RULE_Y");
        let by = |q: HeldQuery| -> Vec<String> {
            store
                .held(&q)
                .unwrap()
                .into_iter()
                .map(|e| e.message)
                .collect()
        };
        assert_eq!(
            by(HeldQuery {
                symbol: Some("RULE_Y".into()),
                ..Default::default()
            }),
            ["A2"]
        );
        assert_eq!(
            by(HeldQuery {
                recipient: Some("A@example.org".into()),
                ..Default::default()
            }),
            ["A1"]
        );
        assert_eq!(
            by(HeldQuery {
                text: Some("offer A1".into()),
                ..Default::default()
            }),
            ["A1"]
        );
        // The text is data: a LIKE wildcard in it matches only itself.
        assert_eq!(
            by(HeldQuery {
                text: Some("100%".into()),
                ..Default::default()
            })
            .len(),
            2
        );
        assert!(by(HeldQuery {
            text: Some("1_0".into()),
            ..Default::default()
        })
        .is_empty());
        store
            .transition_held(
                "A1",
                None,
                &[ReleaseStatus::Held],
                ReleaseStatus::Deleted,
                None,
            )
            .unwrap();
        assert_eq!(
            by(HeldQuery {
                live: true,
                ..Default::default()
            }),
            ["A2"]
        );
        let live = HeldQuery {
            live: true,
            ..Default::default()
        };
        assert_eq!(store.count_held(&live).unwrap(), (1, 1));
        assert_eq!(store.count_held(&HeldQuery::default()).unwrap(), (2, 2));
        let mine = |owners: Vec<&str>| HeldQuery {
            owners: Some(owners.into_iter().map(String::from).collect()),
            ..Default::default()
        };
        assert_eq!(by(mine(vec!["B@EXAMPLE.org"])), ["A2"]);
        assert!(by(mine(vec![])).is_empty());
        assert_eq!(
            by(HeldQuery {
                status: Some(ReleaseStatus::Deleted),
                ..Default::default()
            }),
            ["A1"]
        );
    }

    #[test]
    fn a_transition_moves_only_entries_in_an_allowed_status_once() {
        let (_d, store) = store();
        hold(&store, "A1", &["a@example.org", "b@example.org"], "RULE_X");
        let first = store
            .transition_held(
                "A1",
                Some(&["B@example.org".to_string()]),
                &[ReleaseStatus::Held],
                ReleaseStatus::Releasing,
                Some("R1"),
            )
            .unwrap();
        assert_eq!(
            first,
            [Changed {
                recipient: "b@example.org".into(),
                before: ReleaseStatus::Held
            }]
        );
        // The same request again finds nothing to move.
        let again = store
            .transition_held(
                "A1",
                Some(&["b@example.org".to_string()]),
                &[ReleaseStatus::Held],
                ReleaseStatus::Releasing,
                Some("R2"),
            )
            .unwrap();
        assert!(again.is_empty());
        assert_eq!(
            store.releasing_held().unwrap(),
            [(
                "A1".to_string(),
                "b@example.org".to_string(),
                Some("R1".to_string())
            )]
        );
        store
            .restore_held("A1", &["b@example.org".to_string()])
            .unwrap();
        let entries = store.held_message("A1").unwrap();
        assert!(entries
            .iter()
            .all(|e| e.status == ReleaseStatus::Held && e.release_id.is_none()));
    }

    #[test]
    fn a_released_entry_shows_its_copy_delivery_outcome() {
        let (_d, store) = store();
        hold(&store, "A1", &["a@example.org"], "RULE_X");
        store
            .transition_held(
                "A1",
                None,
                &[ReleaseStatus::Held],
                ReleaseStatus::Released,
                Some("R1"),
            )
            .unwrap();
        assert_eq!(
            store.held_message("A1").unwrap()[0].status,
            ReleaseStatus::Released
        );
        hold(&store, "R1", &["a@example.org"], "RULE_X");
        store.record(
            "R1",
            EventKind::Attempt {
                recipients: vec!["a@example.org".into()],
                host: "mx".into(),
                tls: None,
                reply: "250 ok".into(),
                outcome: crate::MessageStatus::Delivered,
            },
        );
        store.flush().unwrap();
        assert_eq!(
            store.held_message("A1").unwrap()[0].status,
            ReleaseStatus::Delivered
        );
        let delivered = store
            .held(&HeldQuery {
                status: Some(ReleaseStatus::Delivered),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].message, "A1");
    }

    #[test]
    fn the_audit_log_keeps_who_did_what() {
        let (_d, store) = store();
        store
            .audit("admin", "release", "A1", 2, Some("all recipients"))
            .unwrap();
        let log = store.audit_log(10).unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(
            (log[0].actor.as_str(), log[0].action.as_str(), log[0].count),
            ("admin", "release", 2)
        );
    }
}
