//! Who may use the console and the API: signed-in sessions and API tokens.
//! Only hashes are stored (SHA-256 of the random secret, computed by the
//! caller), so a copy of the store grants nothing; a token is shown once, when
//! it is made.

use crate::trace::{open_connection, rfc3339, Store, StoreError};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

/// A signed-in session, found by the hash of its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub user: String,
    pub role: String,
    /// The token forms and scripts send back on every change (CSRF).
    pub csrf: String,
    pub expires_at: i64,
}

/// An API token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created: String,
    pub last_used: Option<String>,
    pub revoked: bool,
}

impl Store {
    pub fn create_session(
        &self,
        id_hash: &str,
        user: &str,
        role: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let conn = open_connection(&self.path)?;
        let now = crate::now_ms();
        conn.execute("DELETE FROM sessions WHERE expires_at < ?", [now])?;
        conn.execute(
            "INSERT INTO sessions (id_hash, user, role, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            params![id_hash, user, role, csrf, now, expires_at],
        )?;
        Ok(())
    }

    /// The session with this cookie hash, if it exists and has not expired.
    pub fn session(&self, id_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let found = conn
            .prepare_cached(
                "SELECT user, role, csrf, expires_at FROM sessions WHERE id_hash = ? AND expires_at > ?",
            )?
            .query_row(params![id_hash, crate::now_ms()], |row| {
                Ok(SessionRow {
                    user: row.get(0)?,
                    role: row.get(1)?,
                    csrf: row.get(2)?,
                    expires_at: row.get(3)?,
                })
            })
            .optional()?;
        Ok(found)
    }

    pub fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let conn = open_connection(&self.path)?;
        conn.execute("DELETE FROM sessions WHERE id_hash = ?", [id_hash])?;
        Ok(())
    }

    pub fn create_token(
        &self,
        id: &str,
        name: &str,
        role: &str,
        secret_hash: &str,
    ) -> Result<(), StoreError> {
        let conn = open_connection(&self.path)?;
        conn.execute(
            "INSERT INTO api_tokens (id, name, role, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)",
            params![id, name, role, secret_hash, crate::now_ms()],
        )?;
        Ok(())
    }

    /// The name, role and secret hash of a live (not revoked) token; marks it
    /// used.
    pub fn token(&self, id: &str) -> Result<Option<(String, String, String)>, StoreError> {
        let conn = open_connection(&self.path)?;
        let found: Option<(String, String, String)> = conn
            .query_row(
                "SELECT name, role, secret_hash FROM api_tokens WHERE id = ? AND revoked_at IS NULL",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        if found.is_some() {
            conn.execute(
                "UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                params![crate::now_ms(), id],
            )?;
        }
        Ok(found)
    }

    pub fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let conn = open_connection(&self.path)?;
        let mut stmt = conn.prepare(
            "SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY created_at",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(TokenRow {
                id: row.get(0)?,
                name: row.get(1)?,
                role: row.get(2)?,
                created: rfc3339(row.get(3)?),
                last_used: row.get::<_, Option<i64>>(4)?.map(rfc3339),
                revoked: row.get::<_, Option<i64>>(5)?.is_some(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a token; false if there was no live token with this id.
    pub fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let conn = open_connection(&self.path)?;
        let n = conn.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            params![crate::now_ms(), id],
        )?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_tokens_can_be_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("trace.db")).unwrap();
        let now = crate::now_ms();
        store
            .create_session("h1", "alice", "user", "c1", now + 60_000)
            .unwrap();
        store
            .create_session("h2", "bob", "admin", "c2", now - 1)
            .unwrap();
        assert_eq!(
            store.session("h1").unwrap().map(|s| s.user),
            Some("alice".into())
        );
        assert_eq!(store.session("h2").unwrap(), None);
        store.delete_session("h1").unwrap();
        assert_eq!(store.session("h1").unwrap(), None);

        store.create_token("T1", "ci", "admin", "hash").unwrap();
        assert_eq!(
            store.token("T1").unwrap(),
            Some(("ci".into(), "admin".into(), "hash".into()))
        );
        assert!(store.tokens().unwrap()[0].last_used.is_some());
        assert!(store.revoke_token("T1").unwrap());
        assert!(!store.revoke_token("T1").unwrap());
        assert_eq!(store.token("T1").unwrap(), None);
    }
}
