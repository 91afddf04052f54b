//! portcullis-quarantine: held mail. A message the scanner diverts is accepted
//! (the sender hears 250) and kept here, with its envelope and the verdict that
//! held it, instead of being queued for delivery. Layout under the quarantine
//! folder:
//!
//! ```text
//! <id>.held   "PORTCULLIS-HELD 1\n" + JSON header line + raw message bytes
//! ```
//!
//! Like the queue's spool, a held message is written and fsynced (file, then the
//! folder, group-committed) before the 250: the reply is a promise that the mail
//! survives a crash. The release workflow, digests and retention build on this.
//!
//! Standards: the stored message is RFC 5322 as received (with our Received
//! header); nothing is rewritten.
//!
//! Security posture: the message and envelope are hostile data, stored and shown
//! as data only. Ids are checked (letters and digits only) before they name a
//! file, so a request cannot reach outside the folder. A file whose length does
//! not match its header is reported as damaged, never half-read.

use portcullis_scan::Verdict;
use portcullis_smtp::Envelope;
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8] = b"PORTCULLIS-HELD 1\n";

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("quarantine I/O on {0}: {1}")]
    Io(String, std::io::Error),
    #[error("held message {0} is damaged: {1}")]
    Damaged(String, String),
    #[error("no held message {0}")]
    NotFound(String),
}

/// What is kept in front of each held message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Held {
    pub id: String,
    /// Unix milliseconds.
    pub received_at: i64,
    pub client_ip: String,
    pub envelope: Envelope,
    pub size: u64,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub verdict: Verdict,
}

/// The quarantine folder. Cheap to clone.
#[derive(Clone)]
pub struct Quarantine {
    dir: PathBuf,
    dir_sync: Arc<portcullis_queue::dirsync::DirSync>,
}

impl std::fmt::Debug for Quarantine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quarantine")
            .field("dir", &self.dir)
            .finish()
    }
}

fn io(path: &Path, e: std::io::Error) -> QuarantineError {
    QuarantineError::Io(path.display().to_string(), e)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Quarantine {
    pub fn open(dir: &Path) -> Result<Quarantine, QuarantineError> {
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        Ok(Quarantine {
            dir: dir.to_path_buf(),
            dir_sync: Arc::new(portcullis_queue::dirsync::DirSync::new(dir.to_path_buf())),
        })
    }

    fn path(&self, id: &str) -> Result<PathBuf, QuarantineError> {
        if !valid_id(id) {
            return Err(QuarantineError::NotFound(id.to_string()));
        }
        Ok(self.dir.join(format!("{id}.held")))
    }

    /// Holds a message durably: when this returns Ok, the file and its name are
    /// on stable storage.
    pub fn hold(&self, held: &Held, message: &[u8]) -> Result<(), QuarantineError> {
        let path = self.path(&held.id)?;
        let mut json = serde_json::to_vec(held)
            .map_err(|e| QuarantineError::Damaged(held.id.clone(), e.to_string()))?;
        json.push(b'\n');
        let mut buf = Vec::with_capacity(MAGIC.len() + json.len() + message.len());
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&json);
        buf.extend_from_slice(message);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        f.write_all(&buf).map_err(|e| io(&path, e))?;
        f.sync_all().map_err(|e| io(&path, e))?;
        self.dir_sync.sync().map_err(|e| io(&self.dir, e))
    }

    /// [`Quarantine::hold`] off the async threads (it waits for the disk).
    pub async fn hold_async(
        &self,
        held: Held,
        message: Arc<Vec<u8>>,
    ) -> Result<(), QuarantineError> {
        let q = self.clone();
        tokio::task::spawn_blocking(move || q.hold(&held, &message))
            .await
            .map_err(|e| {
                QuarantineError::Io(
                    "quarantine writer".into(),
                    std::io::Error::other(e.to_string()),
                )
            })?
    }

    /// Reads a held message and its header.
    pub fn read(&self, id: &str) -> Result<(Held, Vec<u8>), QuarantineError> {
        let path = self.path(id)?;
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(QuarantineError::NotFound(id.to_string()))
            }
            Err(e) => return Err(io(&path, e)),
        };
        parse(id, &data)
    }

    /// Every held message's header, newest first. Damaged files are logged and
    /// skipped, so one bad file does not hide the others.
    pub fn list(&self) -> Result<Vec<Held>, QuarantineError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))? {
            let entry = entry.map_err(|e| io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".held")) else {
                continue;
            };
            match self.read(id) {
                Ok((held, _)) => out.push(held),
                Err(e) => tracing::warn!(id, error = %e, "skipping a damaged quarantine file"),
            }
        }
        out.sort_by(|a, b| b.received_at.cmp(&a.received_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }
}

fn parse(id: &str, data: &[u8]) -> Result<(Held, Vec<u8>), QuarantineError> {
    let damaged = |why: &str| QuarantineError::Damaged(id.to_string(), why.to_string());
    let rest = data
        .strip_prefix(MAGIC)
        .ok_or_else(|| damaged("bad magic"))?;
    let nl = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| damaged("no header line"))?;
    let held: Held =
        serde_json::from_slice(&rest[..nl]).map_err(|e| damaged(&format!("header: {e}")))?;
    let message = &rest[nl + 1..];
    if message.len() as u64 != held.size {
        return Err(damaged(&format!(
            "{} bytes stored, header says {}",
            message.len(),
            held.size
        )));
    }
    Ok((held, message.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_scan::{Action, Category};

    fn held(id: &str, at: i64, size: u64) -> Held {
        Held {
            id: id.into(),
            received_at: at,
            client_ip: "192.0.2.1".into(),
            envelope: Envelope {
                mail_from: "a@sender.test".into(),
                recipients: vec![],
                eight_bit: false,
                smtputf8: false,
                ret: None,
                envid: None,
            },
            size,
            message_id: None,
            subject: Some("hello".into()),
            verdict: Verdict {
                score: 9.0,
                symbols: vec![],
                category: Category::Spam,
                action: Action::Quarantine,
            },
        }
    }

    #[test]
    fn held_messages_read_back_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let q = Quarantine::open(dir.path()).unwrap();
        q.hold(&held("A1", 1, 5), b"hello").unwrap();
        q.hold(&held("B2", 2, 3), b"abc").unwrap();
        let list = q.list().unwrap();
        assert_eq!(
            list.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            ["B2", "A1"]
        );
        let (h, m) = q.read("A1").unwrap();
        assert_eq!(
            (h.verdict.action, m.as_slice()),
            (Action::Quarantine, &b"hello"[..])
        );
        assert!(matches!(q.read("ZZ"), Err(QuarantineError::NotFound(_))));
        // A name that would leave the folder is refused, not opened.
        assert!(matches!(q.read("../x"), Err(QuarantineError::NotFound(_))));
    }

    #[test]
    fn a_truncated_file_is_damaged_and_skipped_in_lists() {
        let dir = tempfile::tempdir().unwrap();
        let q = Quarantine::open(dir.path()).unwrap();
        q.hold(&held("A1", 1, 5), b"hello").unwrap();
        q.hold(&held("B2", 2, 5), b"world").unwrap();
        let p = dir.path().join("B2.held");
        let data = fs::read(&p).unwrap();
        fs::write(&p, &data[..data.len() - 2]).unwrap();
        assert!(matches!(q.read("B2"), Err(QuarantineError::Damaged(..))));
        assert_eq!(q.list().unwrap().len(), 1);
    }
}
