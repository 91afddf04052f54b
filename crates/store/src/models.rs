//! Learned models (the content classifier's) kept in the store, so that every
//! process that opens it, and in cluster mode every node, uses the same one.
//! A model is an opaque blob with the time it was last saved; readers poll that
//! time and reload only when it changed.

use crate::trace::{open_connection, Store, StoreError};
use rusqlite::{params, OptionalExtension};

impl Store {
    /// Saves (replacing) a model. Written directly rather than through the trace
    /// writer: it is rare, and the caller wants to know it is stored.
    pub fn save_model(&self, name: &str, data: &[u8]) -> Result<i64, StoreError> {
        let conn = open_connection(&self.path)?;
        let at = crate::now_ms();
        conn.execute(
            "INSERT OR REPLACE INTO models (name, data, updated_at) VALUES (?, ?, ?)",
            params![name, data, at],
        )?;
        Ok(at)
    }

    /// When a model was last saved, if it exists.
    pub fn model_updated_at(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let found = conn
            .prepare_cached("SELECT updated_at FROM models WHERE name = ?")?
            .query_row([name], |row| row.get(0))
            .optional()?;
        Ok(found)
    }

    /// A model's bytes and the time it was saved.
    pub fn load_model(&self, name: &str) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| StoreError::Corrupt("reader lock poisoned".into()))?;
        let found = conn
            .prepare_cached("SELECT data, updated_at FROM models WHERE name = ?")?
            .query_row([name], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_replaced_and_read_back_with_their_time() {
        let dir = std::env::temp_dir().join(format!("pc-models-{}", std::process::id()));
        let store = Store::open_sqlite(&dir.join("trace.db")).unwrap();
        assert_eq!(store.load_model("bayes").unwrap(), None);
        let first = store.save_model("bayes", b"one").unwrap();
        assert_eq!(store.model_updated_at("bayes").unwrap(), Some(first));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = store.save_model("bayes", b"two").unwrap();
        let (data, at) = store.load_model("bayes").unwrap().unwrap();
        assert_eq!((data.as_slice(), at), (&b"two"[..], second));
        assert!(second > first);
        let _ = std::fs::remove_dir_all(dir);
    }
}
