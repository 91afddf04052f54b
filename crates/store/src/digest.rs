//! What digests and retention remember: when each held entry was listed to
//! its recipient (as new, and as expiring), the links of digests that were
//! used (each acts once), each recipient's allowed and blocked senders, and
//! when digests last went out.
//!
//! The purge reads the same columns: with digests on, an entry is removed at
//! its expiry only once a digest has listed it as expiring, and listing it so
//! keeps it for at least the warning window after that digest. Nothing is
//! deleted without having been listed.

use crate::held::{entry, HeldEntry, SELECT};
use crate::trace::{open_connection, rfc3339, Store, StoreError};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

/// The statuses a digest lists: still held, and not on their way out.
const LISTED: &str = "('held', 'requested', 'denied')";
/// The statuses retention may expire (as an administrator may delete).
const EXPIRABLE: &str = "('held', 'requested', 'approved', 'denied')";

const DAY_MS: i64 = 24 * 3600 * 1000;

/// One entry a digest should list, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestCandidate {
    pub entry: HeldEntry,
    /// Never listed to its recipient before.
    pub new: bool,
    /// Expires within the warning window and was not yet listed as expiring.
    pub expiring: bool,
}

/// One entry a digest listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub message: String,
    pub recipient: String,
    /// Listed as expiring (its expiry may be pushed back, see `mark_listed`).
    pub expiring: bool,
}

/// Who gets digests, and so whose held mail must be listed as expiring
/// before the purge may take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestAudience {
    /// Digests are off: entries go at their expiry.
    Nobody,
    Everyone,
    /// Recipients in these domains (the organisation's own); held mail for
    /// others (outbound mail) is for administrators and goes at its expiry.
    Domains(Vec<String>),
}

impl DigestAudience {
    /// A SQL condition true for recipients (in `column`) who get digests,
    /// and its parameters.
    fn sql(&self, column: &str) -> (String, Vec<Value>) {
        match self {
            DigestAudience::Nobody => ("0".into(), Vec::new()),
            DigestAudience::Everyone => ("1".into(), Vec::new()),
            DigestAudience::Domains(d) if d.is_empty() => ("0".into(), Vec::new()),
            DigestAudience::Domains(d) => (
                format!(
                    "lower(substr({column}, instr({column}, '@') + 1)) IN ({})",
                    vec!["?"; d.len()].join(", ")
                ),
                d.iter().map(|x| x.to_ascii_lowercase().into()).collect(),
            ),
        }
    }

    /// Whether `recipient` gets digests.
    pub fn includes(&self, recipient: &str) -> bool {
        match self {
            DigestAudience::Nobody => false,
            DigestAudience::Everyone => true,
            DigestAudience::Domains(d) => recipient
                .rsplit_once('@')
                .is_some_and(|(_, dom)| d.iter().any(|x| x.eq_ignore_ascii_case(dom))),
        }
    }
}

/// A recipient's own rule about a sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderRule {
    Allow,
    Block,
}

impl SenderRule {
    pub fn as_str(self) -> &'static str {
        match self {
            SenderRule::Allow => "allow",
            SenderRule::Block => "block",
        }
    }
}

/// One allowed or blocked sender of one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderEntry {
    pub recipient: String,
    pub sender: String,
    pub rule: SenderRule,
    pub created_at: i64,
    pub created: String,
    pub actor: String,
}

impl Store {
    fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        f(&conn)
    }

    /// Entries a digest should list: live ones never listed, and ones that
    /// expire before `expiring_before` (Unix ms), are not pinned, and were not
    /// yet listed as expiring; only for recipients in `audience`. By recipient
    /// (without case), expiring first, then newest first; at most `limit`.
    pub fn digest_candidates(
        &self,
        expiring_before: i64,
        limit: usize,
        audience: &DigestAudience,
    ) -> Result<Vec<DigestCandidate>, StoreError> {
        let select = SELECT.replacen(
            " FROM held h",
            ", h.listed_at, h.expiring_listed_at FROM held h",
            1,
        );
        let (told, mut args) = audience.sql("h.recipient");
        let sql = format!(
            "{select} WHERE h.status IN {LISTED} AND {told} AND (h.listed_at IS NULL OR \
             (h.pinned = 0 AND h.expiring_listed_at IS NULL AND h.expires_at <= ?)) \
             ORDER BY lower(h.recipient), \
             (h.pinned = 0 AND h.expiring_listed_at IS NULL AND h.expires_at <= ?) DESC, \
             h.received_at DESC, h.message LIMIT ?"
        );
        args.extend([
            expiring_before.into(),
            expiring_before.into(),
            (limit as i64).into(),
        ]);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), |row| {
                let e = entry(row)?;
                let listed_at: Option<i64> = row.get(15)?;
                let expiring_listed_at: Option<i64> = row.get(16)?;
                let expiring =
                    !e.pinned && expiring_listed_at.is_none() && e.expires_at <= expiring_before;
                Ok(DigestCandidate {
                    new: listed_at.is_none(),
                    expiring,
                    entry: e,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Records that a digest sent at `at` listed these entries. An entry
    /// listed as expiring is kept at least `keep_ms` after `at`: its expiry
    /// moves to `at + keep_ms` when it was sooner (or already past), so the
    /// recipient always has the warning window to act.
    pub fn mark_listed(&self, listed: &[Listed], at: i64, keep_ms: i64) -> Result<(), StoreError> {
        let mut conn = open_connection(&self.path)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for l in listed {
            tx.prepare_cached(
                "UPDATE held SET listed_at = coalesce(listed_at, ?) WHERE message = ? AND recipient = ?",
            )?
            .execute(params![at, l.message, l.recipient])?;
            if l.expiring {
                tx.prepare_cached(
                    "UPDATE held SET expiring_listed_at = ?1, expires_at = max(expires_at, ?1 + ?2) \
                     WHERE message = ?3 AND recipient = ?4",
                )?
                .execute(params![at, keep_ms, l.message, l.recipient])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Entries whose retention is over at `now`: live, not pinned, past
    /// their expiry and, for recipients in `audience` (who get digests),
    /// listed as expiring by a digest. (message, recipient), at most `limit`.
    pub fn expired_held(
        &self,
        now: i64,
        audience: &DigestAudience,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let (told, mut args) = audience.sql("recipient");
        let sql = format!(
            "SELECT message, recipient FROM held WHERE status IN {EXPIRABLE} AND expires_at <= ? \
             AND pinned = 0 AND (expiring_listed_at IS NOT NULL OR NOT {told}) \
             ORDER BY message, recipient LIMIT ?"
        );
        args.insert(0, now.into());
        args.push((limit as i64).into());
        let conn = open_connection(&self.path)?;
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args.iter()), |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Expires the chosen entries of a held message, each only if it is still
    /// what [`Store::expired_held`] selects at `now` (an administrator may
    /// have pinned or extended it meanwhile). Returns the recipients expired.
    pub fn expire_held(
        &self,
        message: &str,
        recipients: &[String],
        now: i64,
        audience: &DigestAudience,
    ) -> Result<Vec<String>, StoreError> {
        let (told, told_args) = audience.sql("recipient");
        let sql = format!(
            "UPDATE held SET status = 'expired', prev_status = status, updated_at = ? \
             WHERE message = ? AND recipient = ? AND status IN {EXPIRABLE} \
             AND expires_at <= ? AND pinned = 0 \
             AND (expiring_listed_at IS NOT NULL OR NOT {told})"
        );
        let mut conn = open_connection(&self.path)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut expired = Vec::new();
        {
            let mut stmt = tx.prepare(&sql)?;
            for r in recipients {
                let mut args: Vec<Value> = vec![
                    now.into(),
                    message.to_string().into(),
                    r.clone().into(),
                    now.into(),
                ];
                args.extend(told_args.iter().cloned());
                if stmt.execute(params_from_iter(args.iter()))? == 1 {
                    expired.push(r.clone());
                }
            }
        }
        tx.commit()?;
        Ok(expired)
    }

    /// Keeps the live entries of a held message (only `recipients`, when
    /// given) `days` longer: from their expiry, or from now when that is
    /// past. They will be listed as expiring again before the purge.
    /// Returns how many entries changed.
    pub fn extend_held(
        &self,
        message: &str,
        recipients: Option<&[String]>,
        days: u32,
    ) -> Result<usize, StoreError> {
        let now = crate::now_ms();
        let add = i64::from(days) * DAY_MS;
        self.change_live(
            message,
            recipients,
            &format!(
                "UPDATE held SET expires_at = max(expires_at, {now}) + {add}, \
                 expiring_listed_at = NULL"
            ),
        )
    }

    /// Pins (kept until unpinned, never purged) or unpins the live entries
    /// of a held message. Either way they are listed as expiring again before
    /// any purge. Returns how many entries changed.
    pub fn pin_held(
        &self,
        message: &str,
        recipients: Option<&[String]>,
        pinned: bool,
    ) -> Result<usize, StoreError> {
        self.change_live(
            message,
            recipients,
            &format!(
                "UPDATE held SET pinned = {}, expiring_listed_at = NULL",
                pinned as i64
            ),
        )
    }

    /// Runs `update` (an UPDATE of `held` with its SET clause and no
    /// parameters) on the live entries of a message, for all or some
    /// recipients.
    fn change_live(
        &self,
        message: &str,
        recipients: Option<&[String]>,
        update: &str,
    ) -> Result<usize, StoreError> {
        let mut conn = open_connection(&self.path)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let live = format!("{update} WHERE message = ? AND status IN {EXPIRABLE}");
        let mut changed = 0;
        match recipients {
            None => changed += tx.execute(&live, [message])?,
            Some(list) => {
                let one = format!("{live} AND recipient = ? COLLATE NOCASE");
                for r in list {
                    changed += tx.execute(&one, params![message, r])?;
                }
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Records the first use of a link (its nonce). False when it was used
    /// before: a link that acts works once. `expires_at` (Unix ms) is when the
    /// record may be forgotten (the link is refused as expired by then).
    pub fn use_link(&self, nonce: &str, expires_at: i64) -> Result<bool, StoreError> {
        let conn = open_connection(&self.path)?;
        let n = conn.execute(
            "INSERT OR IGNORE INTO digest_links_used (nonce, used_at, expires_at) VALUES (?, ?, ?)",
            params![nonce, crate::now_ms(), expires_at],
        )?;
        Ok(n == 1)
    }

    /// Takes back the use of a link whose action could not be done (it
    /// failed for a reason that may pass), so that it can be tried again.
    pub fn unuse_link(&self, nonce: &str) -> Result<(), StoreError> {
        let conn = open_connection(&self.path)?;
        conn.execute("DELETE FROM digest_links_used WHERE nonce = ?", [nonce])?;
        Ok(())
    }

    /// Whether a link was used.
    pub fn link_used(&self, nonce: &str) -> Result<bool, StoreError> {
        let conn = open_connection(&self.path)?;
        let found = conn
            .query_row(
                "SELECT 1 FROM digest_links_used WHERE nonce = ?",
                [nonce],
                |_| Ok(()),
            )
            .optional()?;
        Ok(found.is_some())
    }

    /// Forgets used links that expired before `before` (Unix ms).
    pub fn forget_used_links(&self, before: i64) -> Result<usize, StoreError> {
        let conn = open_connection(&self.path)?;
        Ok(conn.execute(
            "DELETE FROM digest_links_used WHERE expires_at < ?",
            [before],
        )?)
    }

    /// Sets a recipient's rule about a sender (replacing an earlier one).
    /// Returns false when that very rule was already there.
    pub fn set_sender_rule(
        &self,
        recipient: &str,
        sender: &str,
        rule: SenderRule,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let conn = open_connection(&self.path)?;
        let n = conn.execute(
            "INSERT INTO sender_rules (recipient, sender, rule, created_at, actor) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (recipient, sender) DO UPDATE SET rule = excluded.rule, \
             created_at = excluded.created_at, actor = excluded.actor WHERE rule <> excluded.rule",
            params![recipient, sender, rule.as_str(), crate::now_ms(), actor],
        )?;
        Ok(n == 1)
    }

    /// Removes a recipient's rule about a sender; false if there was none.
    pub fn remove_sender_rule(&self, recipient: &str, sender: &str) -> Result<bool, StoreError> {
        let conn = open_connection(&self.path)?;
        let n = conn.execute(
            "DELETE FROM sender_rules WHERE recipient = ? AND sender = ?",
            params![recipient, sender],
        )?;
        Ok(n > 0)
    }

    /// The allowed and blocked senders of one recipient (all when None).
    pub fn sender_rules(&self, recipient: Option<&str>) -> Result<Vec<SenderEntry>, StoreError> {
        let conn = open_connection(&self.path)?;
        let mut stmt = conn.prepare(
            "SELECT recipient, sender, rule, created_at, actor FROM sender_rules \
             WHERE ?1 IS NULL OR recipient = ?1 ORDER BY recipient, sender",
        )?;
        let rows = stmt.query_map([recipient], |row| {
            let rule: String = row.get(2)?;
            let created_at: i64 = row.get(3)?;
            Ok(SenderEntry {
                recipient: row.get(0)?,
                sender: row.get(1)?,
                rule: if rule == "block" {
                    SenderRule::Block
                } else {
                    SenderRule::Allow
                },
                created_at,
                created: rfc3339(created_at),
                actor: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When digests last went out (the scheduled time they were for).
    pub fn digest_last_run(&self) -> Result<Option<i64>, StoreError> {
        let conn = open_connection(&self.path)?;
        Ok(conn
            .query_row(
                "SELECT value FROM digest_state WHERE name = 'last_run'",
                [],
                |row| row.get(0),
            )
            .optional()?)
    }

    pub fn set_digest_last_run(&self, at: i64) -> Result<(), StoreError> {
        let conn = open_connection(&self.path)?;
        conn.execute(
            "INSERT INTO digest_state (name, value) VALUES ('last_run', ?) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            [at],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ReleaseStatus;

    const ALL: DigestAudience = DigestAudience::Everyone;

    use crate::testing::store;

    fn hold(store: &Store, id: &str, rcpts: &[&str], expires_at: i64) {
        crate::testing::hold(store, id, rcpts, "RULE", expires_at);
    }

    fn keys(c: &[DigestCandidate]) -> Vec<(String, String, bool, bool)> {
        c.iter()
            .map(|c| {
                (
                    c.entry.message.clone(),
                    c.entry.recipient.clone(),
                    c.new,
                    c.expiring,
                )
            })
            .collect()
    }

    fn listed(c: &[DigestCandidate]) -> Vec<Listed> {
        c.iter()
            .map(|c| Listed {
                message: c.entry.message.clone(),
                recipient: c.entry.recipient.clone(),
                expiring: c.expiring,
            })
            .collect()
    }

    #[test]
    fn an_entry_is_listed_once_as_new_and_once_as_expiring() {
        let (_d, store) = store();
        let day = DAY_MS;
        hold(&store, "A1", &["b@example.org", "a@example.org"], 30 * day);
        hold(&store, "A2", &["a@example.org"], 2 * day);
        let now = day;
        let first = store
            .digest_candidates(now + 3 * day, 100, &DigestAudience::Everyone)
            .unwrap();
        assert_eq!(
            keys(&first),
            [
                ("A2".into(), "a@example.org".into(), true, true),
                ("A1".into(), "a@example.org".into(), true, false),
                ("A1".into(), "b@example.org".into(), true, false),
            ]
        );
        store.mark_listed(&listed(&first), now, 3 * day).unwrap();
        assert!(store
            .digest_candidates(now + 3 * day, 100, &DigestAudience::Everyone)
            .unwrap()
            .is_empty());
        // Listed as expiring: kept at least the window after the digest.
        let a2 = store.held_message("A2").unwrap();
        assert_eq!(a2[0].expires_at, now + 3 * day);
        // A1 comes back once, as expiring, when its time is near.
        let later = store
            .digest_candidates(31 * day, 100, &DigestAudience::Everyone)
            .unwrap();
        assert_eq!(
            keys(&later),
            [
                ("A1".into(), "a@example.org".into(), false, true),
                ("A1".into(), "b@example.org".into(), false, true),
            ]
        );
    }

    #[test]
    fn the_purge_takes_only_entries_listed_as_expiring_unless_digests_are_off() {
        let (_d, store) = store();
        hold(&store, "A1", &["a@example.org"], 1_000);
        hold(&store, "A2", &["a@example.org"], 1_000);
        assert!(store.expired_held(5_000, &ALL, 100).unwrap().is_empty());
        assert_eq!(
            store
                .expired_held(5_000, &DigestAudience::Nobody, 100)
                .unwrap()
                .len(),
            2
        );
        let c = store
            .digest_candidates(10_000, 100, &DigestAudience::Everyone)
            .unwrap();
        store
            .mark_listed(&listed(&c[..1]), 5_000, 3 * DAY_MS)
            .unwrap();
        // Listed, but its expiry moved: not yet.
        assert!(store.expired_held(5_000, &ALL, 100).unwrap().is_empty());
        let listed_one = c[0].entry.message.clone();
        assert_eq!(
            store.expired_held(5_000 + 3 * DAY_MS, &ALL, 100).unwrap(),
            [(listed_one.clone(), "a@example.org".to_string())]
        );
        let other = c[1].entry.message.clone();
        let rcpt = ["a@example.org".to_string()];
        // Expiring checks the rule again: the unlisted one stays.
        assert!(store
            .expire_held(&other, &rcpt, 5_000 + 3 * DAY_MS, &ALL)
            .unwrap()
            .is_empty());
        // Pinned entries are never purged; extending needs a new warning.
        assert_eq!(store.pin_held(&listed_one, None, true).unwrap(), 1);
        assert!(store
            .expired_held(5_000 + 3 * DAY_MS, &ALL, 100)
            .unwrap()
            .is_empty());
        assert!(store
            .expired_held(i64::MAX / 2, &DigestAudience::Nobody, 100)
            .unwrap()
            .iter()
            .all(|(m, _)| *m != listed_one));
        store.pin_held(&listed_one, None, false).unwrap();
        assert!(store
            .expired_held(5_000 + 3 * DAY_MS, &ALL, 100)
            .unwrap()
            .is_empty());
        let before = store.held_message(&listed_one).unwrap()[0].expires_at;
        assert_eq!(
            store
                .extend_held(&listed_one, Some(&["A@example.org".into()]), 2)
                .unwrap(),
            1
        );
        let after = store.held_message(&listed_one).unwrap()[0].expires_at;
        assert!(after >= crate::now_ms() + 2 * DAY_MS - 1000 && after > before);
        // Released or deleted entries are no longer changed.
        store
            .transition_held(
                &listed_one,
                None,
                &[ReleaseStatus::Held],
                ReleaseStatus::Deleted,
                None,
            )
            .unwrap();
        assert_eq!(store.extend_held(&listed_one, None, 2).unwrap(), 0);
    }

    #[test]
    fn only_own_domains_get_digests_and_others_held_mail_goes_at_its_expiry() {
        let (_d, store) = store();
        hold(&store, "A1", &["a@Example.org"], 1_000);
        hold(&store, "A2", &["x@outside.test"], 1_000);
        let own = DigestAudience::Domains(vec!["EXAMPLE.org".into()]);
        assert!(own.includes("b@example.ORG") && !own.includes("x@outside.test"));
        let c = store.digest_candidates(10_000, 100, &own).unwrap();
        assert_eq!(
            keys(&c),
            [("A1".into(), "a@Example.org".into(), true, true)]
        );
        assert_eq!(
            store.expired_held(5_000, &own, 100).unwrap(),
            [("A2".to_string(), "x@outside.test".to_string())]
        );
        assert!(store
            .digest_candidates(10_000, 100, &DigestAudience::Nobody)
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .expire_held("A2", &["x@outside.test".into()], 5_000, &own)
                .unwrap(),
            ["x@outside.test"]
        );
    }

    #[test]
    fn a_link_is_used_once() {
        let (_d, store) = store();
        assert!(!store.link_used("n1").unwrap());
        assert!(store.use_link("n1", 10).unwrap());
        assert!(!store.use_link("n1", 10).unwrap());
        assert!(store.link_used("n1").unwrap());
        store.unuse_link("n1").unwrap();
        assert!(store.use_link("n1", 10).unwrap());
        assert_eq!(store.forget_used_links(11).unwrap(), 1);
    }

    #[test]
    fn sender_rules_are_per_recipient_and_replace_each_other() {
        let (_d, store) = store();
        assert!(store
            .set_sender_rule("a@example.org", "x@sender.test", SenderRule::Allow, "t")
            .unwrap());
        assert!(!store
            .set_sender_rule("A@example.org", "X@sender.test", SenderRule::Allow, "t")
            .unwrap());
        assert!(store
            .set_sender_rule("a@example.org", "x@sender.test", SenderRule::Block, "t")
            .unwrap());
        let rules = store.sender_rules(Some("a@EXAMPLE.org")).unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].rule, SenderRule::Block);
        assert!(store
            .sender_rules(Some("b@example.org"))
            .unwrap()
            .is_empty());
        assert_eq!(store.digest_last_run().unwrap(), None);
        store.set_digest_last_run(42).unwrap();
        store.set_digest_last_run(43).unwrap();
        assert_eq!(store.digest_last_run().unwrap(), Some(43));
    }
}
