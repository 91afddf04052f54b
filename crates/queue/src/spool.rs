//! The spool: one file per message, written and fsynced (file and folder) before
//! the sender hears 250, plus a small state file per message that records which
//! recipients are done. Layout under the queue folder:
//!
//! ```text
//! <id>.msg    "PORTCULLIS-QUEUE 1\n" + JSON header line + raw message bytes
//! <id>.state  JSON delivery state, replaced atomically (write + rename)
//! corrupt/    files that failed validation at start (never acknowledged)
//! ```
//!
//! A crash while writing leaves a short `.msg` file; its length does not match the
//! header, so recovery moves it to `corrupt/`: it was never acknowledged. A lost
//! state update means a recipient may be delivered twice, never lost.

use portcullis_smtp::Envelope;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8] = b"PORTCULLIS-QUEUE 1\n";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool I/O on {0}: {1}")]
    Io(String, std::io::Error),
    #[error("spool file {0} is damaged: {1}")]
    Damaged(String, String),
    #[error("no such queue entry: {0}")]
    NotFound(String),
}

/// The header stored in front of each message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub id: String,
    pub received_at: i64,
    pub envelope: Envelope,
    pub size: u64,
    /// The trace's `received` event, kept with the message so that a trace that
    /// lost its last events in a crash is completed at the next start.
    #[serde(default)]
    pub reception: Option<portcullis_store::EventKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RcptState {
    Pending,
    Delivered,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RcptEntry {
    pub address: String,
    pub state: RcptState,
    /// The last reply or error that concerned this recipient.
    pub last: Option<String>,
}

/// Delivery state of one message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub attempts: u32,
    pub next_attempt: i64,
    pub recipients: Vec<RcptEntry>,
}

impl State {
    pub fn fresh(header: &Header) -> State {
        State {
            attempts: 0,
            next_attempt: header.received_at,
            recipients: header
                .envelope
                .recipients
                .iter()
                .map(|r| RcptEntry {
                    address: r.address.clone(),
                    state: RcptState::Pending,
                    last: None,
                })
                .collect(),
        }
    }

    pub fn pending(&self) -> impl Iterator<Item = &RcptEntry> {
        self.recipients
            .iter()
            .filter(|r| r.state == RcptState::Pending)
    }
}

#[derive(Clone)]
pub struct Spool {
    dir: PathBuf,
    dir_sync: std::sync::Arc<crate::dirsync::DirSync>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("dir", &self.dir).finish()
    }
}

fn io(path: &Path, e: std::io::Error) -> SpoolError {
    SpoolError::Io(path.display().to_string(), e)
}

impl Spool {
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        fs::create_dir_all(dir.join("corrupt")).map_err(|e| io(dir, e))?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            dir_sync: std::sync::Arc::new(crate::dirsync::DirSync::new(dir.to_path_buf())),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn msg_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.msg"))
    }

    fn state_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.state"))
    }

    /// Writes a message durably: when this returns Ok, the file and its name are on
    /// stable storage.
    pub fn write(&self, header: &Header, message: &[u8]) -> Result<(), SpoolError> {
        let path = self.msg_path(&header.id);
        let mut json = serde_json::to_vec(header)
            .map_err(|e| SpoolError::Damaged(header.id.clone(), e.to_string()))?;
        json.push(b'\n');
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        let mut buf = Vec::with_capacity(MAGIC.len() + json.len() + message.len());
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&json);
        buf.extend_from_slice(message);
        f.write_all(&buf).map_err(|e| io(&path, e))?;
        f.sync_all().map_err(|e| io(&path, e))?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<(), SpoolError> {
        self.dir_sync.sync().map_err(|e| io(&self.dir, e))
    }

    /// Reads a message's header and bytes, validating its length.
    pub fn read(&self, id: &str) -> Result<(Header, Vec<u8>), SpoolError> {
        let path = self.msg_path(id);
        let mut data = Vec::new();
        File::open(&path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    SpoolError::NotFound(id.to_string())
                } else {
                    io(&path, e)
                }
            })?
            .read_to_end(&mut data)
            .map_err(|e| io(&path, e))?;
        parse(id, data)
    }

    pub fn read_state(&self, header: &Header) -> State {
        let path = self.state_path(&header.id);
        match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<State>(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(id = %header.id, error = %e, "damaged state file; retrying all pending recipients");
                    State::fresh(header)
                }
            },
            Err(_) => State::fresh(header),
        }
    }

    /// Replaces the state file atomically. Not fsynced: losing it only repeats
    /// deliveries.
    pub fn write_state(&self, id: &str, state: &State) -> Result<(), SpoolError> {
        let path = self.state_path(id);
        let tmp = self.dir.join(format!("{id}.state.tmp"));
        let bytes = serde_json::to_vec(state)
            .map_err(|e| SpoolError::Damaged(id.to_string(), e.to_string()))?;
        fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }

    /// Removes a finished message.
    pub fn remove(&self, id: &str) -> Result<(), SpoolError> {
        let _ = fs::remove_file(self.state_path(id));
        let path = self.msg_path(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(SpoolError::NotFound(id.to_string()))
            }
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Ids of every message in the spool, oldest first; damaged files are moved
    /// aside to `corrupt/` and logged.
    pub fn scan(&self) -> Result<Vec<String>, SpoolError> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))? {
            let entry = entry.map_err(|e| io(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".msg") {
                if crate::id::is_valid(id) {
                    ids.push(id.to_string());
                }
            } else if name.ends_with(".state.tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Moves a damaged message out of the way.
    pub fn quarantine_damaged(&self, id: &str) {
        let from = self.msg_path(id);
        let to = self.dir.join("corrupt").join(format!("{id}.msg"));
        if let Err(e) = fs::rename(&from, &to) {
            tracing::error!(id, error = %e, "cannot move damaged spool file aside");
        }
        let _ = fs::remove_file(self.state_path(id));
    }
}

fn parse(id: &str, data: Vec<u8>) -> Result<(Header, Vec<u8>), SpoolError> {
    let damaged = |why: &str| SpoolError::Damaged(id.to_string(), why.to_string());
    if !data.starts_with(MAGIC) {
        return Err(damaged("missing magic line"));
    }
    let rest = &data[MAGIC.len()..];
    let nl = rest
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| damaged("missing header line"))?;
    let header: Header =
        serde_json::from_slice(&rest[..nl]).map_err(|e| damaged(&e.to_string()))?;
    let body = &rest[nl + 1..];
    if body.len() as u64 != header.size {
        return Err(damaged(&format!(
            "truncated: {} of {} bytes",
            body.len(),
            header.size
        )));
    }
    if header.id != id {
        return Err(damaged("id does not match file name"));
    }
    let body = body.to_vec();
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_smtp::Recipient;

    fn header(id: &str, size: u64) -> Header {
        Header {
            reception: None,
            id: id.into(),
            received_at: 1,
            envelope: Envelope {
                mail_from: "a@b.test".into(),
                recipients: vec![Recipient {
                    address: "c@d.test".into(),
                    notify: None,
                    orcpt: None,
                }],
                eight_bit: false,
                smtputf8: false,
                ret: None,
                envid: None,
            },
            size,
        }
    }

    #[test]
    fn write_read_and_detect_truncation() {
        let dir = std::env::temp_dir().join(format!("pc-spool-{}", std::process::id()));
        let spool = Spool::open(&dir).unwrap();
        let id = crate::id::new_id();
        spool.write(&header(&id, 5), b"hello").unwrap();
        let (h, body) = spool.read(&id).unwrap();
        assert_eq!(h.envelope.mail_from, "a@b.test");
        assert_eq!(body, b"hello");
        assert_eq!(spool.scan().unwrap(), vec![id.clone()]);

        // Simulate a crash mid-write: the file is shorter than its header says.
        let path = dir.join(format!("{id}.msg"));
        let data = std::fs::read(&path).unwrap();
        std::fs::write(&path, &data[..data.len() - 2]).unwrap();
        assert!(matches!(spool.read(&id), Err(SpoolError::Damaged(..))));
        spool.quarantine_damaged(&id);
        assert!(spool.scan().unwrap().is_empty());
        std::fs::remove_dir_all(dir).ok();
    }
}
