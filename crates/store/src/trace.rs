//! The message trace: events in, "where is my mail" out.

use crate::schema::SCHEMA;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create the store folder {0}: {1}")]
    Folder(String, std::io::Error),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("stored value is not valid: {0}")]
    Corrupt(String),
}

/// Where a message stands, as `portcullis trace` and the API show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Accepted and waiting for its first delivery attempt.
    Queued,
    /// At least one recipient is waiting for a retry.
    Deferred,
    /// Every recipient was accepted by the next hop.
    Delivered,
    /// No recipient is pending and at least one failed (a DSN went to the sender).
    Bounced,
    /// Refused during the SMTP session; never accepted.
    Rejected,
    /// Removed from the queue by an administrator.
    Deleted,
    /// Accepted and held in quarantine by the scanner's verdict.
    Quarantined,
    /// Released from quarantine: a copy was queued for delivery (its own trace
    /// id is in the `released` event).
    Released,
}

/// Where one recipient stands.
pub type RecipientStatus = MessageStatus;

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Deferred => "deferred",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Bounced => "bounced",
            MessageStatus::Rejected => "rejected",
            MessageStatus::Deleted => "deleted",
            MessageStatus::Quarantined => "quarantined",
            MessageStatus::Released => "released",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => MessageStatus::Queued,
            "deferred" => MessageStatus::Deferred,
            "delivered" => MessageStatus::Delivered,
            "bounced" => MessageStatus::Bounced,
            "rejected" => MessageStatus::Rejected,
            "deleted" => MessageStatus::Deleted,
            "quarantined" => MessageStatus::Quarantined,
            "released" => MessageStatus::Released,
            _ => return None,
        })
    }

    fn is_pending(self) -> bool {
        matches!(self, MessageStatus::Queued | MessageStatus::Deferred)
    }

    /// A message's status from its recipients' statuses.
    pub fn of_recipients(statuses: &[MessageStatus]) -> MessageStatus {
        use MessageStatus::*;
        if statuses.is_empty() {
            return Queued;
        }
        if statuses.iter().any(|s| s.is_pending()) {
            return if statuses.contains(&Deferred) {
                Deferred
            } else {
                Queued
            };
        }
        if statuses.contains(&Quarantined) {
            return Quarantined;
        }
        if statuses.contains(&Released) {
            return Released;
        }
        if statuses.iter().all(|s| *s == Delivered) {
            Delivered
        } else if statuses.contains(&Bounced) {
            Bounced
        } else if statuses.contains(&Rejected) {
            Rejected
        } else if statuses.contains(&Deleted) && !statuses.contains(&Delivered) {
            Deleted
        } else {
            Delivered
        }
    }
}

/// What happened. The variant name is the event's `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// Accepted with a 250 and stored in the queue.
    Received {
        client_ip: String,
        helo: Option<String>,
        /// e.g. `TLSv1.3 TLS13_AES_256_GCM_SHA384`
        tls: Option<String>,
        auth_user: Option<String>,
        mail_from: String,
        recipients: Vec<String>,
        size: u64,
        message_id: Option<String>,
        subject: Option<String>,
        reply: String,
    },
    /// Refused in the session.
    Rejected {
        client_ip: String,
        helo: Option<String>,
        tls: Option<String>,
        auth_user: Option<String>,
        mail_from: String,
        recipients: Vec<String>,
        reply: String,
    },
    /// One delivery attempt for some recipients, with the next hop's answer.
    Attempt {
        recipients: Vec<String>,
        host: String,
        tls: Option<String>,
        reply: String,
        outcome: RecipientStatus,
    },
    /// Given up after the maximum queue age.
    Expired {
        recipients: Vec<String>,
        reason: String,
    },
    /// A delivery status notification was queued for the sender.
    DsnQueued {
        dsn_id: String,
        recipients: Vec<String>,
    },
    /// An administrator asked for an immediate retry.
    RetryRequested,
    /// An administrator removed the message from the queue.
    Deleted { recipients: Vec<String> },
    /// The scanner's verdict, with every symbol that made it.
    Scanned {
        score: f64,
        /// `clean`, `spam`, `phishing`, `malware` or `policy`.
        category: String,
        /// `deliver`, `tag`, `quarantine` or `reject`.
        action: String,
        symbols: Vec<ScanSymbol>,
        elapsed_us: u64,
    },
    /// Held in quarantine instead of being queued for delivery.
    Quarantined {
        recipients: Vec<String>,
        reason: String,
        /// When the quarantine may purge it (Unix ms); absent in events written
        /// before retention existed (they get the default 30 days).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<i64>,
    },
    /// Released from quarantine: a copy was queued for these recipients under
    /// its own trace id, `release_id`.
    Released {
        recipients: Vec<String>,
        release_id: String,
        actor: String,
    },
    /// A recipient asked for the release of held mail an administrator must
    /// approve.
    ReleaseRequested {
        recipients: Vec<String>,
        actor: String,
    },
    /// An administrator refused a requested release; the mail stays held.
    ReleaseDenied {
        recipients: Vec<String>,
        actor: String,
    },
    /// Held mail removed at the end of its retention (after a digest listed
    /// it to its recipient as expiring).
    Purged {
        recipients: Vec<String>,
        reason: String,
    },
    /// A secure link of the message was clicked (`/l/<token>`).
    Clicked {
        url: String,
        /// `allow`, `warn` or `block`: what the click-time check said; or
        /// `continued`: the clicker went on past a warning.
        verdict: String,
        /// The keyed hash of the recipient the link was made for, in hex.
        recipient_hash: String,
        client_ip: String,
    },
    /// The message's links were rewritten into secure links on its way in.
    LinksRewritten {
        /// Links replaced by a secure link.
        rewritten: usize,
        /// Of those, links another vendor had wrapped, unwrapped first.
        unwrapped: usize,
        /// http(s) links left as they were on purpose.
        kept: usize,
        /// The distinct original URLs behind the secure links (at most
        /// [`crate::clicks::MAX_URLS_PER_MESSAGE`]), so that "who received
        /// this URL" can be answered when it turns bad.
        urls: Vec<String>,
        /// Whether an ARC set was added after the change.
        arc_sealed: bool,
    },
    /// The sending organisation's servers recognised in the message's
    /// Received fields, and what the staged enforcement did with it.
    SenderServers {
        servers: Vec<crate::servers::Sighting>,
        /// `accept`, `defer` or `reject`.
        decision: String,
        /// The connecting server's step of the schedule (`report`,
        /// `throttle 25%`, ...) and whether it was paused, exempt or
        /// report-only, when one applied.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<String>,
    },
}

/// One symbol of a stored verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanSymbol {
    pub name: String,
    pub score: f64,
    pub detail: String,
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Received { .. } => "received",
            EventKind::Rejected { .. } => "rejected",
            EventKind::Attempt { .. } => "attempt",
            EventKind::Expired { .. } => "expired",
            EventKind::DsnQueued { .. } => "dsn_queued",
            EventKind::RetryRequested => "retry_requested",
            EventKind::Deleted { .. } => "deleted",
            EventKind::Scanned { .. } => "scanned",
            EventKind::Quarantined { .. } => "quarantined",
            EventKind::Released { .. } => "released",
            EventKind::ReleaseRequested { .. } => "release_requested",
            EventKind::ReleaseDenied { .. } => "release_denied",
            EventKind::Purged { .. } => "purged",
            EventKind::Clicked { .. } => "clicked",
            EventKind::LinksRewritten { .. } => "links_rewritten",
            EventKind::SenderServers { .. } => "sender_servers",
        }
    }
}

/// One event for one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    pub message: String,
    pub at: i64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// An event as read back.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at: i64,
    pub at_rfc3339: String,
    #[serde(flatten)]
    pub kind: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecipientTrace {
    pub address: String,
    pub status: RecipientStatus,
    pub reply: Option<String>,
}

/// One message's journey.
#[derive(Debug, Clone, Serialize)]
pub struct MessageTrace {
    pub id: String,
    pub received_at: i64,
    pub received: String,
    pub updated_at: i64,
    pub status: MessageStatus,
    pub client_ip: Option<String>,
    pub helo: Option<String>,
    pub tls: Option<String>,
    pub auth_user: Option<String>,
    pub mail_from: String,
    pub size: Option<i64>,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// For rejected messages: the reply the client got.
    pub reason: Option<String>,
    /// The scanner's total score, action and category, once scanned.
    pub score: Option<f64>,
    pub action: Option<String>,
    pub category: Option<String>,
    pub recipients: Vec<RecipientTrace>,
    pub events: Vec<Event>,
}

/// Filters for [`Store::query`]. Empty filters match everything.
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    pub id: Option<String>,
    /// With or without angle brackets.
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub since_ms: Option<i64>,
    pub status: Option<MessageStatus>,
    pub limit: usize,
    pub with_events: bool,
}

enum Command {
    Event(Box<TraceEvent>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The store. Cheap to clone; writes are batched on a writer thread.
#[derive(Clone)]
pub struct Store {
    writer: SyncSender<Command>,
    pub(crate) reader: Arc<Mutex<Connection>>,
    pub(crate) path: std::path::PathBuf,
}

pub(crate) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // The trace is a record, not the queue: losing the last few events in a power
    // cut is acceptable; the spool holds the mail itself with full fsync.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path`.
    pub fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Folder(dir.display().to_string(), e))?;
        }
        let writer_conn = open_connection(path)?;
        writer_conn.execute_batch(SCHEMA)?;
        crate::schema::migrate(&writer_conn)?;
        // Checkpoints are mostly scheduled by the writer (see `writer_loop`).
        writer_conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
        let reader = open_connection(path)?;
        let (tx, rx) = sync_channel(100_000);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(writer_conn, rx))
            .map_err(|e| StoreError::Folder("writer thread".into(), e))?;
        Ok(Store {
            writer: tx,
            reader: Arc::new(Mutex::new(reader)),
            path: path.to_path_buf(),
        })
    }

    /// Records an event. Never fails the caller: the mail path must not stop
    /// because the trace is slow; a full buffer waits, a dead writer is logged.
    pub fn record(&self, message: &str, kind: EventKind) {
        let event = TraceEvent {
            message: message.to_string(),
            at: crate::now_ms(),
            kind,
        };
        match self.writer.try_send(Command::Event(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(cmd)) => {
                if self.writer.send(cmd).is_err() {
                    tracing::error!("trace writer has stopped; event lost");
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("trace writer has stopped; event lost")
            }
        }
    }

    /// Waits until every event recorded so far is written.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.writer
            .send(Command::Flush(tx))
            .map_err(|_| StoreError::WriterGone)?;
        rx.recv().map_err(|_| StoreError::WriterGone)
    }

    /// Whether the trace knows this message.
    pub fn contains(&self, id: &str) -> Result<bool, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let found = conn
            .query_row("SELECT 1 FROM messages WHERE id = ?", [id], |_| Ok(()))
            .map(|_| true);
        match found {
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(false),
            other => Ok(other?),
        }
    }

    /// Finds messages, newest first.
    pub fn query(&self, q: &MessageQuery) -> Result<Vec<MessageTrace>, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let mut sql = String::from(
            "SELECT id, received_at, updated_at, status, client_ip, helo, tls, auth_user, \
             mail_from, size, message_id, subject, reason, score, action, category \
             FROM messages m WHERE 1=1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(id) = &q.id {
            sql.push_str(" AND id = ?");
            args.push(id.clone().into());
        }
        if let Some(mid) = &q.message_id {
            let bare = mid.trim().trim_start_matches('<').trim_end_matches('>');
            sql.push_str(" AND message_id = ?");
            args.push(bare.to_string().into());
        }
        if let Some(from) = &q.from {
            sql.push_str(" AND mail_from = ? COLLATE NOCASE");
            args.push(from.trim_matches(['<', '>']).to_string().into());
        }
        if let Some(to) = &q.to {
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM recipients r WHERE r.message = m.id AND r.address = ? COLLATE NOCASE)",
            );
            args.push(to.trim_matches(['<', '>']).to_string().into());
        }
        if let Some(since) = q.since_ms {
            sql.push_str(" AND received_at >= ?");
            args.push(since.into());
        }
        if let Some(status) = q.status {
            sql.push_str(" AND status = ?");
            args.push(status.as_str().to_string().into());
        }
        sql.push_str(" ORDER BY received_at DESC, id DESC LIMIT ?");
        let limit = if q.limit == 0 {
            100
        } else {
            q.limit.min(10_000)
        };
        args.push((limit as i64).into());

        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args.iter()), |row| {
            let status: String = row.get(3)?;
            Ok(MessageTrace {
                id: row.get(0)?,
                received_at: row.get(1)?,
                received: rfc3339(row.get(1)?),
                updated_at: row.get(2)?,
                status: MessageStatus::parse(&status).unwrap_or(MessageStatus::Queued),
                client_ip: row.get(4)?,
                helo: row.get(5)?,
                tls: row.get(6)?,
                auth_user: row.get(7)?,
                mail_from: row.get(8)?,
                size: row.get(9)?,
                message_id: row.get(10)?,
                subject: row.get(11)?,
                reason: row.get(12)?,
                score: row.get(13)?,
                action: row.get(14)?,
                category: row.get(15)?,
                recipients: Vec::new(),
                events: Vec::new(),
            })
        })?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        drop(stmt);
        for m in &mut out {
            let mut stmt = conn.prepare_cached(
                "SELECT address, status, reply FROM recipients WHERE message = ? ORDER BY rowid",
            )?;
            let rcpts = stmt.query_map([&m.id], |row| {
                let status: String = row.get(1)?;
                Ok(RecipientTrace {
                    address: row.get(0)?,
                    status: MessageStatus::parse(&status).unwrap_or(MessageStatus::Queued),
                    reply: row.get(2)?,
                })
            })?;
            for r in rcpts {
                m.recipients.push(r?);
            }
            if q.with_events {
                let mut stmt = conn.prepare_cached(
                    "SELECT at, detail FROM events WHERE message = ? ORDER BY seq",
                )?;
                let events = stmt.query_map([&m.id], |row| {
                    let at: i64 = row.get(0)?;
                    let detail: String = row.get(1)?;
                    Ok((at, detail))
                })?;
                for e in events {
                    let (at, detail) = e?;
                    let kind = serde_json::from_str(&detail)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    m.events.push(Event {
                        at,
                        at_rfc3339: rfc3339(at),
                        kind,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Counts messages per status, for metrics.
    pub fn status_counts(&self) -> Result<Vec<(MessageStatus, i64)>, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let mut stmt =
            conn.prepare_cached("SELECT status, count(*) FROM messages GROUP BY status")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (s, n) = r?;
            if let Some(s) = MessageStatus::parse(&s) {
                out.push((s, n));
            }
        }
        Ok(out)
    }
}

/// WAL pages (4 KiB) after which SQLite checkpoints even while busy.
const WAL_CHECKPOINT_PAGES: i64 = 16_384;
/// How long the writer gathers events into one transaction: fewer, larger commits
/// write far fewer WAL pages than one commit per event.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(20);
/// Quiet time after which the writer checkpoints and truncates the WAL.
const IDLE_CHECKPOINT: std::time::Duration = std::time::Duration::from_millis(500);

/// Applies events in batches, one transaction per batch. Checkpoints (the only
/// fsyncs of the trace, with `synchronous=NORMAL`) run when the stream of events
/// pauses, not in the middle of a burst: there they would compete with the spool's
/// fsyncs, which a client is waiting on. Under sustained load SQLite's own
/// checkpoint runs every [`WAL_CHECKPOINT_PAGES`] pages.
fn writer_loop(mut conn: Connection, rx: Receiver<Command>) {
    let mut dirty = false;
    loop {
        let first = match rx.recv_timeout(IDLE_CHECKPOINT) {
            Ok(c) => c,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if dirty {
                    checkpoint(&conn, "TRUNCATE");
                    dirty = false;
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut batch = vec![first];
        let deadline = std::time::Instant::now() + BATCH_WINDOW;
        while batch.len() < 2000 && !matches!(batch.last(), Some(Command::Flush(_))) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        let mut flushes = Vec::new();
        let result = (|| -> Result<(), StoreError> {
            let tx = conn.transaction()?;
            for cmd in batch {
                match cmd {
                    Command::Event(e) => apply(&tx, &e)?,
                    Command::Flush(done) => flushes.push(done),
                }
            }
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!(error = %e, "writing trace events failed");
        }
        dirty = true;
        for f in flushes {
            let _ = f.send(());
        }
    }
    checkpoint(&conn, "TRUNCATE");
}

fn checkpoint(conn: &Connection, mode: &str) {
    if let Err(e) = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(())) {
        tracing::warn!(error = %e, "trace checkpoint failed; it is retried later");
    }
}

fn apply(tx: &rusqlite::Transaction<'_>, e: &TraceEvent) -> Result<(), StoreError> {
    let detail = serde_json::to_string(&e.kind).map_err(|x| StoreError::Corrupt(x.to_string()))?;
    tx.prepare_cached("INSERT INTO events (message, at, kind, detail) VALUES (?, ?, ?, ?)")?
        .execute(params![e.message, e.at, e.kind.name(), detail])?;
    match &e.kind {
        EventKind::Received {
            client_ip,
            helo,
            tls,
            auth_user,
            mail_from,
            recipients,
            size,
            message_id,
            subject,
            ..
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO messages (id, received_at, updated_at, status, client_ip, helo, tls, \
                 auth_user, mail_from, size, message_id, subject) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                e.message,
                e.at,
                e.at,
                client_ip,
                helo,
                tls,
                auth_user,
                mail_from,
                *size as i64,
                message_id
                    .as_deref()
                    .map(|m| m.trim().trim_start_matches('<').trim_end_matches('>')),
                subject
            ])?;
            for r in recipients {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO recipients (message, address, status, updated_at) VALUES (?, ?, 'queued', ?)",
                )?
                .execute(params![e.message, r, e.at])?;
            }
        }
        EventKind::Rejected {
            client_ip,
            helo,
            tls,
            auth_user,
            mail_from,
            recipients,
            reply,
        } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO messages (id, received_at, updated_at, status, client_ip, helo, tls, \
                 auth_user, mail_from, reason) VALUES (?, ?, ?, 'rejected', ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![e.message, e.at, e.at, client_ip, helo, tls, auth_user, mail_from, reply])?;
            for r in recipients {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO recipients (message, address, status, reply, updated_at) VALUES (?, ?, 'rejected', ?, ?)",
                )?
                .execute(params![e.message, r, reply, e.at])?;
            }
        }
        EventKind::Attempt {
            recipients,
            reply,
            outcome,
            ..
        } => set_recipients(tx, &e.message, recipients, *outcome, Some(reply), e.at)?,
        EventKind::Expired { recipients, reason } => set_recipients(
            tx,
            &e.message,
            recipients,
            MessageStatus::Bounced,
            Some(reason),
            e.at,
        )?,
        EventKind::Deleted { recipients } => set_recipients(
            tx,
            &e.message,
            recipients,
            MessageStatus::Deleted,
            Some(&"deleted by an administrator".to_string()),
            e.at,
        )?,
        EventKind::Purged { recipients, reason } => set_recipients(
            tx,
            &e.message,
            recipients,
            MessageStatus::Deleted,
            Some(reason),
            e.at,
        )?,
        EventKind::Scanned {
            score,
            category,
            action,
            symbols,
            ..
        } => {
            tx.prepare_cached(
                "UPDATE messages SET score = ?, action = ?, category = ?, updated_at = ? WHERE id = ?",
            )?
            .execute(params![score, action, category, e.at, e.message])?;
            crate::held::index_symbols(tx, &e.message, symbols)?;
        }
        EventKind::Quarantined {
            recipients,
            reason,
            expires_at,
        } => {
            set_recipients(
                tx,
                &e.message,
                recipients,
                MessageStatus::Quarantined,
                Some(reason),
                e.at,
            )?;
            let expires_at = expires_at.unwrap_or(e.at + crate::held::DEFAULT_RETENTION_MS);
            crate::held::index_held(tx, &e.message, recipients, reason, expires_at, e.at)?;
        }
        EventKind::Released {
            recipients,
            release_id,
            ..
        } => set_recipients(
            tx,
            &e.message,
            recipients,
            MessageStatus::Released,
            Some(&format!("released as {release_id}")),
            e.at,
        )?,
        EventKind::DsnQueued { .. }
        | EventKind::RetryRequested
        | EventKind::ReleaseRequested { .. }
        | EventKind::ReleaseDenied { .. } => {}
        EventKind::Clicked {
            url,
            verdict,
            recipient_hash,
            client_ip,
        } => crate::clicks::index_click(tx, e, url, verdict, recipient_hash, client_ip)?,
        EventKind::LinksRewritten { urls, .. } => {
            crate::clicks::index_urls(tx, &e.message, urls, e.at)?
        }
        EventKind::SenderServers { servers, .. } => {
            crate::servers::note_sightings(tx, &e.message, servers, e.at)?
        }
    }
    Ok(())
}

fn set_recipients(
    tx: &rusqlite::Transaction<'_>,
    message: &str,
    recipients: &[String],
    status: RecipientStatus,
    reply: Option<&String>,
    at: i64,
) -> Result<(), StoreError> {
    for r in recipients {
        tx.prepare_cached(
            "UPDATE recipients SET status = ?, reply = coalesce(?, reply), updated_at = ? WHERE message = ? AND address = ?",
        )?
        .execute(params![status.as_str(), reply, at, message, r])?;
    }
    let statuses: Vec<MessageStatus> = {
        let mut stmt = tx.prepare_cached("SELECT status FROM recipients WHERE message = ?")?;
        let rows = stmt.query_map([message], |row| row.get::<_, String>(0))?;
        let mut v = Vec::new();
        for r in rows {
            if let Some(s) = MessageStatus::parse(&r?) {
                v.push(s);
            }
        }
        v
    };
    let current: Option<String> = tx
        .prepare_cached("SELECT status FROM messages WHERE id = ?")?
        .query_row([message], |row| row.get(0))
        .optional()?;
    if current.is_some() {
        tx.prepare_cached("UPDATE messages SET status = ?, updated_at = ? WHERE id = ?")?
            .execute(params![
                MessageStatus::of_recipients(&statuses).as_str(),
                at,
                message
            ])?;
    }
    Ok(())
}

/// Formats Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(rcpts: &[&str]) -> EventKind {
        EventKind::Received {
            client_ip: "192.0.2.1".into(),
            helo: Some("client.test".into()),
            tls: None,
            auth_user: None,
            mail_from: "a@sender.test".into(),
            recipients: rcpts.iter().map(|s| s.to_string()).collect(),
            size: 100,
            message_id: Some("<abc@sender.test>".into()),
            subject: Some("hello".into()),
            reply: "250 2.0.0 queued".into(),
        }
    }

    #[test]
    fn status_follows_recipients() {
        let dir = std::env::temp_dir().join(format!("pc-store-{}", std::process::id()));
        let store = Store::open_sqlite(&dir.join("trace.db")).unwrap();
        store.record("Q1", received(&["x@r.test", "y@r.test"]));
        store.record(
            "Q1",
            EventKind::Attempt {
                recipients: vec!["x@r.test".into()],
                host: "mx[127.0.0.1]:25".into(),
                tls: None,
                reply: "250 2.0.0 ok".into(),
                outcome: MessageStatus::Delivered,
            },
        );
        store.record(
            "Q1",
            EventKind::Attempt {
                recipients: vec!["y@r.test".into()],
                host: "mx[127.0.0.1]:25".into(),
                tls: None,
                reply: "451 4.3.0 try later".into(),
                outcome: MessageStatus::Deferred,
            },
        );
        store.flush().unwrap();
        let q = MessageQuery {
            message_id: Some("abc@sender.test".into()),
            with_events: true,
            ..Default::default()
        };
        let found = store.query(&q).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].status, MessageStatus::Deferred);
        assert_eq!(found[0].events.len(), 3);

        store.record(
            "Q1",
            EventKind::Attempt {
                recipients: vec!["y@r.test".into()],
                host: "mx[127.0.0.1]:25".into(),
                tls: None,
                reply: "250 ok".into(),
                outcome: MessageStatus::Delivered,
            },
        );
        store.flush().unwrap();
        let found = store
            .query(&MessageQuery {
                message_id: Some("<abc@sender.test>".into()),
                to: Some("Y@r.test".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(found[0].status, MessageStatus::Delivered);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn rfc3339_formats_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
