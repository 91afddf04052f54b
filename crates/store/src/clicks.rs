//! Secure links in the trace: which messages carried a URL behind their
//! secure links (from the `links_rewritten` events the gateway records) and
//! every click on one (the redirector's `clicked` events), each indexed by URL
//! and by host. So that when a URL or a domain turns bad, administrators can
//! list who received it and who followed it.
//!
//! Hostile input: URLs come from mail and from clickers. They are only ever
//! bound as SQL values; the host is taken from the URL's text without
//! resolving anything, and per-message URL lists are bounded.

use crate::trace::{Store, StoreError, TraceEvent};
use serde::Serialize;

/// The most clicks or deliveries a query returns.
pub const MAX_CLICKS: usize = 1000;
/// The most distinct URLs recorded for one message.
pub const MAX_URLS_PER_MESSAGE: usize = 500;

/// Which links a query is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkFilter {
    /// Exactly this URL.
    Url(String),
    /// Any URL on this host or under it (`example.test` also matches
    /// `www.example.test`).
    Domain(String),
}

/// One click on a secure link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Click {
    /// The trace id of the message the link was in.
    pub message: String,
    pub url: String,
    /// Unix ms.
    pub at: i64,
    pub at_rfc3339: String,
    /// The keyed hash of the recipient the link was made for, in hex.
    pub recipient_hash: String,
    /// `allow`, `warn`, `block` or `continued`.
    pub verdict: String,
    pub client_ip: String,
}

/// A message that carried a URL behind a secure link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkDelivery {
    pub message: String,
    pub url: String,
    /// When the link was rewritten (Unix ms).
    pub at: i64,
    pub at_rfc3339: String,
    pub mail_from: String,
    pub subject: Option<String>,
    /// The message's recipients, who received the link.
    pub recipients: Vec<String>,
}

/// The lower-cased host of an absolute URL, as written (no port, no user
/// information, no trailing dot); empty when there is none.
pub fn host_of(url: &str) -> String {
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => return String::new(),
    };
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = if host.starts_with('[') {
        host.split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or("").to_string()
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The SQL condition and value of a filter on a table with `url` and `host`.
fn condition(filter: &LinkFilter) -> (&'static str, String, String) {
    match filter {
        LinkFilter::Url(u) => ("url = ?1", u.clone(), String::new()),
        LinkFilter::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            // The host itself or any name under it; `?2` is `%.<domain>`.
            (
                "(host = ?1 OR host LIKE ?2 ESCAPE '\\')",
                d.clone(),
                format!("%.{}", escape_like(&d)),
            )
        }
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub(crate) fn index_click(
    tx: &rusqlite::Transaction<'_>,
    e: &TraceEvent,
    url: &str,
    verdict: &str,
    recipient_hash: &str,
    client_ip: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO link_clicks (url, host, message, at, verdict, recipient_hash, client_ip) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(rusqlite::params![
        url,
        host_of(url),
        e.message,
        e.at,
        verdict,
        recipient_hash,
        client_ip
    ])?;
    Ok(())
}

pub(crate) fn index_urls(
    tx: &rusqlite::Transaction<'_>,
    message: &str,
    urls: &[String],
    at: i64,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO link_urls (url, host, message, at) VALUES (?, ?, ?, ?)",
    )?;
    for url in urls.iter().take(MAX_URLS_PER_MESSAGE) {
        stmt.execute(rusqlite::params![url, host_of(url), message, at])?;
    }
    Ok(())
}

impl Store {
    /// The clicks on links the filter matches, newest first, at most `limit`
    /// (itself at most [`MAX_CLICKS`]).
    pub fn clicks(&self, filter: &LinkFilter, limit: usize) -> Result<Vec<Click>, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let (cond, a, b) = condition(filter);
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT message, url, at, recipient_hash, verdict, client_ip FROM link_clicks \
             WHERE {cond} AND ?2 = ?2 ORDER BY at DESC, seq DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            rusqlite::params![a, b, limit.min(MAX_CLICKS) as i64],
            |row| {
                let at: i64 = row.get(2)?;
                Ok(Click {
                    message: row.get(0)?,
                    url: row.get(1)?,
                    at,
                    at_rfc3339: crate::trace::rfc3339(at),
                    recipient_hash: row.get(3)?,
                    verdict: row.get(4)?,
                    client_ip: row.get(5)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The messages that carried a URL the filter matches behind a secure
    /// link, newest first, at most `limit` (itself at most [`MAX_CLICKS`]),
    /// each with its recipients.
    pub fn link_deliveries(
        &self,
        filter: &LinkFilter,
        limit: usize,
    ) -> Result<Vec<LinkDelivery>, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let (cond, a, b) = condition(filter);
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT l.message, l.url, l.at, coalesce(m.mail_from, ''), m.subject, \
             (SELECT group_concat(address, char(10)) FROM recipients r WHERE r.message = l.message) \
             FROM link_urls l LEFT JOIN messages m ON m.id = l.message \
             WHERE {cond} AND ?2 = ?2 ORDER BY l.at DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            rusqlite::params![a, b, limit.min(MAX_CLICKS) as i64],
            |row| {
                let at: i64 = row.get(2)?;
                let recipients: Option<String> = row.get(5)?;
                Ok(LinkDelivery {
                    message: row.get(0)?,
                    url: row.get(1)?,
                    at,
                    at_rfc3339: crate::trace::rfc3339(at),
                    mail_from: row.get(3)?,
                    subject: row.get(4)?,
                    recipients: recipients
                        .map(|r| r.split('\n').map(str::to_string).collect())
                        .unwrap_or_default(),
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::{host_of, LinkFilter};
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

    fn url(u: &str) -> LinkFilter {
        LinkFilter::Url(u.into())
    }

    #[test]
    fn clicks_on_a_url_are_listed_newest_first_and_bounded() {
        let (_dir, store) = store();
        store.record("M1", click("https://evil.example/a", "allow", "aa"));
        store.record("M2", click("https://evil.example/a", "block", "bb"));
        store.record("M2", click("https://other.example/", "allow", "bb"));
        store.flush().unwrap();
        let found = store.clicks(&url("https://evil.example/a"), 10).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].message.as_str(), found[0].verdict.as_str()),
            ("M2", "block")
        );
        assert_eq!(found[1].recipient_hash, "aa");
        assert_eq!(found[1].client_ip, "192.0.2.9");
        assert!(found[0].at_rfc3339.ends_with('Z'));
        assert_eq!(
            store
                .clicks(&url("https://evil.example/a"), 1)
                .unwrap()
                .len(),
            1
        );
        assert!(store
            .clicks(&url("https://evil.example/"), 10)
            .unwrap()
            .is_empty());
        // A URL with SQL in it is only ever a value.
        assert!(store.clicks(&url("' OR 1=1 --"), 10).unwrap().is_empty());
    }

    #[test]
    fn clicks_and_deliveries_are_found_by_domain_and_subdomain_only() {
        let (_dir, store) = store();
        crate::testing::hold(&store, "M1", &["a@example.org", "b@example.org"], "X", 0);
        store.record(
            "M1",
            EventKind::LinksRewritten {
                rewritten: 3,
                unwrapped: 0,
                kept: 1,
                urls: vec![
                    "https://login.evil.example/x".into(),
                    "https://evil.example.net/".into(),
                ],
                arc_sealed: true,
            },
        );
        store.record("M1", click("https://login.evil.example/x", "allow", "aa"));
        store.record("M1", click("https://notevil.example/", "allow", "aa"));
        store.flush().unwrap();
        let domain = LinkFilter::Domain("Evil.Example".into());
        let clicks = store.clicks(&domain, 10).unwrap();
        assert_eq!(clicks.len(), 1, "{clicks:?}");
        assert_eq!(clicks[0].url, "https://login.evil.example/x");
        let got = store.link_deliveries(&domain, 10).unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].message, "M1");
        assert_eq!(got[0].mail_from, "spammer@example.net");
        let mut rcpts = got[0].recipients.clone();
        rcpts.sort();
        assert_eq!(rcpts, ["a@example.org", "b@example.org"]);
        assert_eq!(
            store
                .link_deliveries(&url("https://evil.example.net/"), 10)
                .unwrap()
                .len(),
            1
        );
        // LIKE's wildcards in a domain are only characters.
        assert!(store
            .link_deliveries(&LinkFilter::Domain("%".into()), 10)
            .unwrap()
            .is_empty());
        assert!(store
            .link_deliveries(&LinkFilter::Domain("_vil.example".into()), 10)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_host_is_read_from_the_url_text() {
        assert_eq!(
            host_of("https://User:pw@WWW.Example.test.:8443/p?q#f"),
            "www.example.test"
        );
        assert_eq!(host_of("http://[2001:db8::1]:80/"), "[2001:db8::1]");
        assert_eq!(host_of("http://a.test\\b"), "a.test");
        assert_eq!(host_of("mailto:x@y.test"), "");
    }
}
