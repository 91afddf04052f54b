//! The clicks on secure links, read back from the trace's `clicked` events:
//! who clicked a URL, when, from which message, and what the click-time check
//! said. So that when a URL turns out to be bad, administrators can see who
//! followed it.

use crate::trace::{Store, StoreError};
use serde::Serialize;

/// The most clicks [`Store::clicks`] returns.
pub const MAX_CLICKS: usize = 1000;

/// One click on a secure link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Click {
    /// The trace id of the message the link was in.
    pub message: String,
    /// Unix ms.
    pub at: i64,
    pub at_rfc3339: String,
    /// The keyed hash of the recipient the link was made for, in hex.
    pub recipient_hash: String,
    /// `allow`, `warn`, `block` or `continued`.
    pub verdict: String,
    pub client_ip: String,
}

impl Store {
    /// The clicks on links to exactly `url`, newest first, at most `limit`
    /// (itself at most [`MAX_CLICKS`]).
    pub fn clicks(&self, url: &str, limit: usize) -> Result<Vec<Click>, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let mut stmt = conn.prepare_cached(
            "SELECT message, at, \
             coalesce(json_extract(detail, '$.recipient_hash'), ''), \
             coalesce(json_extract(detail, '$.verdict'), ''), \
             coalesce(json_extract(detail, '$.client_ip'), '') \
             FROM events WHERE kind = 'clicked' AND json_extract(detail, '$.url') = ?1 \
             ORDER BY at DESC, seq DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            rusqlite::params![url, limit.min(MAX_CLICKS) as i64],
            |row| {
                let at: i64 = row.get(1)?;
                Ok(Click {
                    message: row.get(0)?,
                    at,
                    at_rfc3339: crate::trace::rfc3339(at),
                    recipient_hash: row.get(2)?,
                    verdict: row.get(3)?,
                    client_ip: row.get(4)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::store;
    use crate::trace::EventKind;

    fn click(url: &str, verdict: &str, hash: &str) -> EventKind {
        EventKind::Clicked {
            url: url.into(),
            verdict: verdict.into(),
            recipient_hash: hash.into(),
            client_ip: "192.0.2.9".into(),
        }
    }

    #[test]
    fn clicks_on_a_url_are_listed_newest_first_and_bounded() {
        let (_dir, store) = store();
        store.record("M1", click("https://evil.example/a", "allow", "aa"));
        store.record("M2", click("https://evil.example/a", "block", "bb"));
        store.record("M2", click("https://other.example/", "allow", "bb"));
        store.flush().unwrap();
        let found = store.clicks("https://evil.example/a", 10).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].message.as_str(), found[0].verdict.as_str()),
            ("M2", "block")
        );
        assert_eq!(found[1].recipient_hash, "aa");
        assert_eq!(found[1].client_ip, "192.0.2.9");
        assert!(found[0].at_rfc3339.ends_with('Z'));
        assert_eq!(store.clicks("https://evil.example/a", 1).unwrap().len(), 1);
        assert!(store
            .clicks("https://evil.example/", 10)
            .unwrap()
            .is_empty());
        // A URL with SQL in it is only ever a value.
        assert!(store.clicks("' OR 1=1 --", 10).unwrap().is_empty());
    }
}
