//! Sending servers: what each sending organisation's mail servers run, as the
//! gateway recognised it in their `Received` fields (`sender_servers`: one row
//! per organisation and server), since when each has been out of date, and the
//! administrators' exemptions and pauses of the staged enforcement
//! (`sender_pauses`). Rows are written from the `sender_servers` trace events
//! by the writer thread, so the message path never waits for them; the
//! schedule's stage is not stored but computed from these facts and the time
//! (`portcullis_senders::stage`), so it can never go stale.
//!
//! Hostile input: host names, versions and the evidence field come from mail;
//! they are bound as SQL values and bounded in length before they are stored.

use crate::trace::{rfc3339, Store, StoreError};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

/// The longest evidence field kept.
pub const MAX_FIELD: usize = 600;
/// The most servers one message may name.
pub const MAX_SIGHTINGS: usize = 20;

/// One server recognised in one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    /// `<organisation>/<host>`: how the server is known.
    pub key: String,
    pub org: String,
    pub host: String,
    /// One of the organisation's own servers (outbound mail).
    pub own: bool,
    /// It connected to us (its own Received field): what enforcement keys on.
    pub connecting: bool,
    /// `exchange`, `exim`, ...
    pub product: String,
    pub version: String,
    /// The catalogue's name for the release, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// `current`, `outdated`, `vulnerable` or `unsupported`.
    pub status: String,
    /// Why, in a sentence.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended: Option<String>,
    /// The Received field it was recognised in.
    pub field: String,
}

/// A sending server as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerRow {
    pub key: String,
    pub org: String,
    pub host: String,
    pub own: bool,
    pub product: String,
    pub version: String,
    pub release: Option<String>,
    pub status: String,
    pub reason: String,
    pub recommended: Option<String>,
    /// First seen out of date (Unix ms); none while current.
    pub first_detected: Option<i64>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub last_seen_rfc3339: String,
    pub messages: i64,
    /// Messages it delivered to us itself (rather than being a deeper hop).
    pub connections: i64,
    pub exempt: bool,
    pub last_field: String,
    pub last_message: String,
}

/// A server the message path must know about: out of date or exempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFact {
    pub key: String,
    pub first_detected: Option<i64>,
    pub exempt: bool,
}

/// What [`Store::sender_server_facts`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    pub servers: Vec<ServerFact>,
    /// The organisation's own servers that are not current.
    pub own_out_of_date: i64,
}

/// One pause of enforcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PauseRow {
    pub key: String,
    pub from: i64,
    pub until: i64,
    pub actor: String,
}

fn bounded(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

pub(crate) fn note_sightings(
    tx: &rusqlite::Transaction<'_>,
    message: &str,
    sightings: &[Sighting],
    at: i64,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO sender_servers (key, org, host, own, product, version, release, status, \
         reason, recommended, first_detected, first_seen, last_seen, messages, connections, \
         exempt, last_field, last_message) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
         CASE WHEN ?8 = 'current' THEN NULL ELSE ?11 END, ?11, ?11, 1, ?12, 0, ?13, ?14) \
         ON CONFLICT (key) DO UPDATE SET \
         own = max(own, excluded.own), product = excluded.product, version = excluded.version, \
         release = excluded.release, status = excluded.status, reason = excluded.reason, \
         recommended = excluded.recommended, \
         first_detected = CASE WHEN excluded.status = 'current' THEN NULL \
             ELSE coalesce(first_detected, excluded.first_detected) END, \
         last_seen = max(last_seen, excluded.last_seen), messages = messages + 1, \
         connections = connections + excluded.connections, \
         last_field = excluded.last_field, last_message = excluded.last_message",
    )?;
    for s in sightings.iter().take(MAX_SIGHTINGS) {
        stmt.execute(params![
            bounded(&s.key, 600),
            bounded(&s.org, 255),
            bounded(&s.host, 255),
            s.own,
            bounded(&s.product, 32),
            bounded(&s.version, 64),
            s.release.as_deref().map(|r| bounded(r, 200)),
            bounded(&s.status, 16),
            bounded(&s.reason, 1000),
            s.recommended.as_deref().map(|r| bounded(r, 200)),
            at,
            i64::from(s.connecting),
            bounded(&s.field, MAX_FIELD),
            message,
        ])?;
    }
    Ok(())
}

const COLUMNS: &str = "key, org, host, own, product, version, release, status, reason, \
     recommended, first_detected, first_seen, last_seen, messages, connections, exempt, \
     last_field, last_message";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ServerRow> {
    let last_seen: i64 = r.get(12)?;
    Ok(ServerRow {
        key: r.get(0)?,
        org: r.get(1)?,
        host: r.get(2)?,
        own: r.get(3)?,
        product: r.get(4)?,
        version: r.get(5)?,
        release: r.get(6)?,
        status: r.get(7)?,
        reason: r.get(8)?,
        recommended: r.get(9)?,
        first_detected: r.get(10)?,
        first_seen: r.get(11)?,
        last_seen,
        last_seen_rfc3339: rfc3339(last_seen),
        messages: r.get(13)?,
        connections: r.get(14)?,
        exempt: r.get(15)?,
        last_field: r.get(16)?,
        last_message: r.get(17)?,
    })
}

impl Store {
    /// Every known sending server (optionally only those in `status`), worst
    /// and longest out of date first.
    pub fn sender_servers(&self, status: Option<&str>) -> Result<Vec<ServerRow>, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM sender_servers WHERE ?1 IS NULL OR status = ?1 \
             ORDER BY first_detected IS NULL, first_detected, key"
        ))?;
        let rows = stmt.query_map([status], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// What the message path needs, without every row: the servers that are
    /// out of date or exempt (key, first detected, exempt), and how many of
    /// the organisation's own servers are out of date.
    pub fn sender_server_facts(&self) -> Result<ServerFacts, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let mut stmt = conn.prepare_cached(
            "SELECT key, first_detected, exempt FROM sender_servers \
             WHERE first_detected IS NOT NULL OR exempt = 1",
        )?;
        let servers = stmt
            .query_map([], |r| {
                Ok(ServerFact {
                    key: r.get(0)?,
                    first_detected: r.get(1)?,
                    exempt: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let own: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM sender_servers WHERE own = 1 AND status <> 'current'",
            )?
            .query_row([], |r| r.get(0))?;
        Ok(ServerFacts {
            servers,
            own_out_of_date: own,
        })
    }

    /// One server by its key.
    pub fn sender_server(&self, key: &str) -> Result<Option<ServerRow>, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let found = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM sender_servers WHERE key = ?"
            ))?
            .query_row([key], row)
            .optional()?;
        Ok(found)
    }

    /// Exempts a server from enforcement, or ends its exemption. False when
    /// the store does not know the server.
    pub fn set_server_exempt(&self, key: &str, exempt: bool) -> Result<bool, StoreError> {
        let conn = crate::trace::open_connection(&self.path)?;
        Ok(conn.execute(
            "UPDATE sender_servers SET exempt = ? WHERE key = ?",
            params![exempt, key],
        )? == 1)
    }

    /// Records a pause of enforcement for a server.
    pub fn add_server_pause(
        &self,
        key: &str,
        from: i64,
        until: i64,
        actor: &str,
    ) -> Result<(), StoreError> {
        let conn = crate::trace::open_connection(&self.path)?;
        conn.execute(
            "INSERT INTO sender_pauses (key, from_ms, until_ms, actor, created_at) VALUES (?, ?, ?, ?, ?)",
            params![key, from, until, actor, crate::now_ms()],
        )?;
        Ok(())
    }

    /// Ends a server's pauses now (those still running or to come).
    pub fn end_server_pauses(&self, key: &str, now: i64) -> Result<usize, StoreError> {
        let conn = crate::trace::open_connection(&self.path)?;
        let ended = conn.execute(
            "UPDATE sender_pauses SET until_ms = max(from_ms, ?2) WHERE key = ?1 AND until_ms > ?2",
            params![key, now],
        )?;
        Ok(ended)
    }

    /// The pauses of one server, or of all when `key` is None.
    pub fn server_pauses(&self, key: Option<&str>) -> Result<Vec<PauseRow>, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let mut stmt = conn.prepare_cached(
            "SELECT key, from_ms, until_ms, actor FROM sender_pauses \
             WHERE ?1 IS NULL OR key = ?1 ORDER BY key, from_ms",
        )?;
        let rows = stmt.query_map([key], |r| {
            Ok(PauseRow {
                key: r.get(0)?,
                from: r.get(1)?,
                until: r.get(2)?,
                actor: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::store;
    use crate::trace::EventKind;

    fn sighting(key: &str, status: &str, connecting: bool) -> Sighting {
        Sighting {
            key: key.into(),
            org: "bank.test".into(),
            host: key.split('/').nth(1).unwrap_or("").into(),
            own: false,
            connecting,
            product: "exchange".into(),
            version: "15.1.2507.6".into(),
            release: Some("Exchange Server 2016 CU23".into()),
            status: status.into(),
            reason: "end of support".into(),
            recommended: None,
            field: "Received: from a by ex01.bank.test with Microsoft SMTP Server id 15.1.2507.6"
                .into(),
        }
    }

    fn seen(store: &Store, id: &str, sightings: Vec<Sighting>) {
        store.record(
            id,
            EventKind::SenderServers {
                servers: sightings,
                decision: "accept".into(),
                stage: None,
            },
        );
    }

    #[test]
    fn sightings_keep_the_first_detection_until_the_server_is_current() {
        let (_dir, store) = store();
        let key = "bank.test/ex01.bank.test";
        seen(&store, "M1", vec![sighting(key, "unsupported", true)]);
        store.flush().unwrap();
        let first = store.sender_server(key).unwrap().unwrap();
        let detected = first.first_detected.expect("detected");
        assert_eq!((first.messages, first.connections), (1, 1));
        seen(&store, "M2", vec![sighting(key, "unsupported", false)]);
        store.flush().unwrap();
        let second = store.sender_server(key).unwrap().unwrap();
        assert_eq!(second.first_detected, Some(detected));
        assert_eq!((second.messages, second.connections), (2, 1));
        assert_eq!(second.last_message, "M2");
        // Updated: the schedule starts again if it falls behind later.
        seen(&store, "M3", vec![sighting(key, "current", true)]);
        store.flush().unwrap();
        assert_eq!(
            store.sender_server(key).unwrap().unwrap().first_detected,
            None
        );
        assert_eq!(store.sender_servers(Some("current")).unwrap().len(), 1);
        assert!(store
            .sender_servers(Some("unsupported"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn exemptions_and_pauses_are_kept() {
        let (_dir, store) = store();
        let key = "bank.test/ex01.bank.test";
        assert!(
            !store.set_server_exempt(key, true).unwrap(),
            "unknown server"
        );
        seen(&store, "M1", vec![sighting(key, "outdated", true)]);
        store.flush().unwrap();
        assert!(store.set_server_exempt(key, true).unwrap());
        assert!(store.sender_server(key).unwrap().unwrap().exempt);
        let facts = store.sender_server_facts().unwrap();
        assert_eq!(facts.servers.len(), 1);
        assert_eq!(
            (facts.servers[0].key.as_str(), facts.servers[0].exempt),
            (key, true)
        );
        assert_eq!(facts.own_out_of_date, 0);
        store.add_server_pause(key, 100, 500, "admin").unwrap();
        store
            .add_server_pause("other/x", 100, 500, "admin")
            .unwrap();
        assert_eq!(store.server_pauses(Some(key)).unwrap().len(), 1);
        assert_eq!(store.server_pauses(None).unwrap().len(), 2);
        assert_eq!(store.end_server_pauses(key, 200).unwrap(), 1);
        assert_eq!(store.server_pauses(Some(key)).unwrap()[0].until, 200);
    }
}
