//! portcullis-quarantine: held mail. A message the scanner diverts is accepted
//! (the sender hears 250) and kept here, with its envelope and the verdict that
//! held it, instead of being queued for delivery. Layout under the quarantine
//! folder:
//!
//! ```text
//! <id>.held   "PORTCULLIS-HELD 2\n" + JSON header line + the message, deflated
//!             (version 1 files, with the message as is, are still read)
//! ```
//!
//! The message is stored once, however many recipients it has; the index of
//! held recipients and their release status is in the store (`held`). Like the
//! queue's spool, a held message is written and fsynced (file, then the folder,
//! group-committed) before the 250: the reply is a promise that the mail
//! survives a crash. Compression (deflate, the fast level) keeps a storm of
//! held mail from filling the disk: text mail shrinks to about a third.
//!
//! `release` queues a copy for delivery, exactly once per recipient, and
//! `delete` removes held recipients; both record the trace and the audit log.
//! `bulk` does either to everything a filter selects, with a dry run;
//! `rescan` judges held mail again and releases what now passes.
//!
//! Standards: the stored message is RFC 5322 as received (with our Received
//! header); nothing is rewritten.
//!
//! Security posture: the message and envelope are hostile data, stored and shown
//! as data only. Ids are checked (letters and digits only) before they name a
//! file, so a request cannot reach outside the folder. A file whose length does
//! not match its header is reported as damaged, never half-read; inflating stops
//! at the size the header declares, so a damaged or crafted file cannot expand
//! without bound.

use portcullis_scan::Verdict;
use portcullis_smtp::Envelope;
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod bulk;
mod policy;
mod preview;
mod release;
mod report;
mod rescan;
mod retention;
pub use bulk::{bulk, BulkAction, BulkOutcome};
pub use policy::{Permission, ReleasePolicy, Role, UserRight};
pub use preview::{preview, AttachmentInfo, Preview};
pub use release::{
    decide, delete, recover, release, request, Decision, Prepared, ReleaseError, ReleaseHook,
    Released,
};
pub use report::{learn, Report, ReportError};
pub use rescan::{rescan, scanned_event, RescanOutcome};
pub use retention::QuarantineConfig;

const MAGIC_V1: &[u8] = b"PORTCULLIS-HELD 1\n";
const MAGIC: &[u8] = b"PORTCULLIS-HELD 2\n";

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
    /// When retention lets it be purged (Unix ms); absent in version 1 files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Bytes of the deflated message that follow the header (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<u64>,
}

/// The quarantine folder. Cheap to clone.
#[derive(Clone)]
pub struct Quarantine {
    dir: PathBuf,
    dir_sync: Arc<portcullis_queue::dirsync::DirSync>,
    /// What a released copy goes through before it is queued, shared by every
    /// clone (set once at start, after the parts it needs exist).
    release_hook: Arc<std::sync::OnceLock<Arc<dyn release::ReleaseHook>>>,
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
            release_hook: Arc::new(std::sync::OnceLock::new()),
        })
    }

    /// Sets what every released copy goes through before it is queued (the
    /// gateway rewrites its links); for this handle and all its clones. Only
    /// the first call has an effect.
    pub fn set_release_hook(&self, hook: Arc<dyn release::ReleaseHook>) {
        let _ = self.release_hook.set(hook);
    }

    pub(crate) fn release_hook(&self) -> Option<&Arc<dyn release::ReleaseHook>> {
        self.release_hook.get()
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
        let packed = deflate(message).map_err(|e| io(&path, e))?;
        let mut header = held.clone();
        header.size = message.len() as u64;
        header.stored = Some(packed.len() as u64);
        let mut json = serde_json::to_vec(&header)
            .map_err(|e| QuarantineError::Damaged(held.id.clone(), e.to_string()))?;
        json.push(b'\n');
        let mut buf = Vec::with_capacity(MAGIC.len() + json.len() + packed.len());
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&json);
        buf.extend_from_slice(&packed);
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
        let data = self.read_file(id)?;
        let (held, body) = split(id, &data)?;
        Ok((held.clone(), body.message(id, &held)?))
    }

    /// Reads only the header of a held message (the message is not inflated).
    pub fn header(&self, id: &str) -> Result<Held, QuarantineError> {
        let data = self.read_file(id)?;
        Ok(split(id, &data)?.0)
    }

    fn read_file(&self, id: &str) -> Result<Vec<u8>, QuarantineError> {
        let path = self.path(id)?;
        match fs::read(&path) {
            Ok(d) => Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(QuarantineError::NotFound(id.to_string()))
            }
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Removes a held message for good (its recipients were all deleted or
    /// expired). Removing one that is already gone is not an error.
    pub fn remove(&self, id: &str) -> Result<(), QuarantineError> {
        let path = self.path(id)?;
        match fs::remove_file(&path) {
            Ok(()) => self.dir_sync.sync().map_err(|e| io(&self.dir, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path, e)),
        }
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
            match self.header(id) {
                Ok(held) => out.push(held),
                Err(e) => tracing::warn!(id, error = %e, "skipping a damaged quarantine file"),
            }
        }
        out.sort_by(|a, b| b.received_at.cmp(&a.received_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }
}

fn deflate(message: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(message.len() / 2 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(message)?;
    enc.finish()
}

/// The stored message after the header, as it is on disk.
enum Body<'a> {
    Plain(&'a [u8]),
    Deflated(&'a [u8]),
}

impl Body<'_> {
    /// The message, checked against the header's sizes. Inflating reads at
    /// most one byte past the declared size, so a crafted file cannot expand
    /// without bound.
    fn message(&self, id: &str, held: &Held) -> Result<Vec<u8>, QuarantineError> {
        let damaged = |why: String| QuarantineError::Damaged(id.to_string(), why);
        let message = match self {
            Body::Plain(m) => m.to_vec(),
            Body::Deflated(packed) => {
                use std::io::Read;
                let mut out = Vec::with_capacity(held.size.min(64 << 20) as usize);
                flate2::read::DeflateDecoder::new(*packed)
                    .take(held.size + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| damaged(format!("inflate: {e}")))?;
                out
            }
        };
        if message.len() as u64 != held.size {
            return Err(damaged(format!(
                "{} bytes stored, header says {}",
                message.len(),
                held.size
            )));
        }
        Ok(message)
    }
}

/// Splits a held file into its header and stored body, checking the framing.
fn split<'a>(id: &str, data: &'a [u8]) -> Result<(Held, Body<'a>), QuarantineError> {
    let damaged = |why: &str| QuarantineError::Damaged(id.to_string(), why.to_string());
    let (rest, deflated) = if let Some(rest) = data.strip_prefix(MAGIC) {
        (rest, true)
    } else if let Some(rest) = data.strip_prefix(MAGIC_V1) {
        (rest, false)
    } else {
        return Err(damaged("bad magic"));
    };
    let nl = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| damaged("no header line"))?;
    let held: Held =
        serde_json::from_slice(&rest[..nl]).map_err(|e| damaged(&format!("header: {e}")))?;
    let body = &rest[nl + 1..];
    let expected = if deflated {
        held.stored
    } else {
        Some(held.size)
    };
    if Some(body.len() as u64) != expected {
        return Err(damaged(&format!(
            "{} bytes stored, header says {expected:?}",
            body.len()
        )));
    }
    Ok((
        held,
        if deflated {
            Body::Deflated(body)
        } else {
            Body::Plain(body)
        },
    ))
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
            expires_at: None,
            stored: None,
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

    #[test]
    fn messages_are_stored_deflated_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let q = Quarantine::open(dir.path()).unwrap();
        let message = "Subject: x\r\n\r\n".to_string() + &"the same line again\r\n".repeat(500);
        q.hold(&held("A1", 1, 0), message.as_bytes()).unwrap();
        let on_disk = fs::metadata(dir.path().join("A1.held")).unwrap().len();
        assert!(
            on_disk < message.len() as u64 / 4,
            "{on_disk} bytes on disk"
        );
        let (h, m) = q.read("A1").unwrap();
        assert_eq!((h.size, m), (message.len() as u64, message.into_bytes()));
    }

    #[test]
    fn version_1_files_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let q = Quarantine::open(dir.path()).unwrap();
        let mut data = MAGIC_V1.to_vec();
        data.extend(serde_json::to_vec(&held("A1", 1, 5)).unwrap());
        data.extend(b"\nhello");
        fs::write(dir.path().join("A1.held"), data).unwrap();
        assert_eq!(q.read("A1").unwrap().1, b"hello");
    }

    #[test]
    fn a_header_that_understates_the_size_stops_inflating() {
        let dir = tempfile::tempdir().unwrap();
        let q = Quarantine::open(dir.path()).unwrap();
        let packed = deflate(&[b'a'; 100_000]).unwrap();
        let mut header = held("A1", 1, 10);
        header.stored = Some(packed.len() as u64);
        let mut data = MAGIC.to_vec();
        data.extend(serde_json::to_vec(&header).unwrap());
        data.push(b'\n');
        data.extend(&packed);
        fs::write(dir.path().join("A1.held"), data).unwrap();
        match q.read("A1") {
            Err(QuarantineError::Damaged(_, why)) => assert!(why.contains("11 bytes"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
