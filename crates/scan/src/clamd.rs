//! The virus scanner: a real ClamAV daemon, sent each whole message over its
//! INSTREAM protocol (clamd's own MIME, archive and document parsers then open
//! every part). The address is configured; clamd is never started or updated
//! from here.
//!
//! Protocol (clamd(8)): `zINSTREAM\0`, then chunks each prefixed by their length
//! as a 4-byte big-endian integer, then a zero length; the reply is one
//! NUL-terminated line: `stream: OK`, `stream: <name> FOUND` or `... ERROR`.
//!
//! Security posture: the message is hostile but only passed through; clamd's
//! reply is bounded (one line, at most 4 KiB) and every step has a time limit,
//! so a hung or flooded clamd cannot hold a session forever. A clamd that cannot
//! answer is an error the gateway turns into a temporary failure by default
//! (fail closed): mail is never passed as clean because the scanner was down.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Chunk size for INSTREAM; well under clamd's default StreamMaxLength.
const CHUNK: usize = 64 * 1024;
const MAX_REPLY: usize = 4096;

/// `[scan.clamd]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClamdConfig {
    /// `host:port` for TCP, or `unix:/path/to/clamd.ctl`.
    pub address: String,
    /// What to do with mail when clamd cannot scan it: `tempfail` (451 4.7.0,
    /// the sender retries; the default) or `accept` (deliver it unscanned, with
    /// the symbol CLAMAV_UNAVAILABLE recorded).
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Seconds one scan may take, connection included.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    30
}

/// The policy when clamd cannot scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    #[default]
    Tempfail,
    Accept,
}

/// Why clamd could not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClamdError {
    #[error("cannot reach clamd at {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("clamd at {0} failed during the scan: {1}")]
    Io(String, std::io::Error),
    #[error("clamd at {0} did not answer within {1}s")]
    Timeout(String, u64),
    #[error("clamd at {0} reported an error: {1}")]
    Reported(String, String),
}

/// What clamd found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdVerdict {
    Clean,
    /// The signature name, e.g. `Win.Test.EICAR_HDB-1`.
    Infected(String),
}

enum Address {
    Tcp(String),
    Unix(PathBuf),
}

/// A clamd client.
#[derive(Debug, Clone)]
pub struct Clamd {
    config: ClamdConfig,
}

impl Clamd {
    pub fn new(config: ClamdConfig) -> Clamd {
        Clamd { config }
    }

    pub fn config(&self) -> &ClamdConfig {
        &self.config
    }

    fn address(&self) -> Address {
        match self.config.address.strip_prefix("unix:") {
            Some(path) => Address::Unix(PathBuf::from(path)),
            None => Address::Tcp(self.config.address.clone()),
        }
    }

    /// Scans one message.
    pub async fn scan(&self, data: &[u8]) -> Result<ClamdVerdict, ClamdError> {
        let limit = self.config.timeout_seconds;
        let addr = self.config.address.clone();
        match tokio::time::timeout(Duration::from_secs(limit), self.scan_inner(data)).await {
            Ok(result) => result,
            Err(_) => Err(ClamdError::Timeout(addr, limit)),
        }
    }

    async fn scan_inner(&self, data: &[u8]) -> Result<ClamdVerdict, ClamdError> {
        let addr = self.config.address.clone();
        match self.address() {
            Address::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(&a)
                    .await
                    .map_err(|e| ClamdError::Connect(addr.clone(), e))?;
                instream(s, data, &addr).await
            }
            Address::Unix(p) => {
                let s = tokio::net::UnixStream::connect(&p)
                    .await
                    .map_err(|e| ClamdError::Connect(addr.clone(), e))?;
                instream(s, data, &addr).await
            }
        }
    }
}

async fn instream<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    data: &[u8],
    addr: &str,
) -> Result<ClamdVerdict, ClamdError> {
    let io = |e| ClamdError::Io(addr.to_string(), e);
    s.write_all(b"zINSTREAM\0").await.map_err(io)?;
    for chunk in data.chunks(CHUNK) {
        s.write_all(&(chunk.len() as u32).to_be_bytes())
            .await
            .map_err(io)?;
        s.write_all(chunk).await.map_err(io)?;
    }
    s.write_all(&0u32.to_be_bytes()).await.map_err(io)?;
    s.flush().await.map_err(io)?;
    let mut reply = Vec::with_capacity(128);
    let mut buf = [0u8; 512];
    loop {
        let n = s.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if reply.contains(&0) || reply.len() >= MAX_REPLY {
            break;
        }
    }
    parse_reply(&reply, addr)
}

fn parse_reply(reply: &[u8], addr: &str) -> Result<ClamdVerdict, ClamdError> {
    let end = reply.iter().position(|&b| b == 0).unwrap_or(reply.len());
    let line = String::from_utf8_lossy(&reply[..end]);
    let line = line.trim();
    let body = line.strip_prefix("stream:").unwrap_or(line).trim();
    if body == "OK" {
        Ok(ClamdVerdict::Clean)
    } else if let Some(name) = body.strip_suffix(" FOUND") {
        Ok(ClamdVerdict::Infected(name.trim().to_string()))
    } else if body.is_empty() {
        Err(ClamdError::Reported(
            addr.to_string(),
            "the connection closed without an answer".into(),
        ))
    } else {
        Err(ClamdError::Reported(addr.to_string(), body.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read() {
        assert_eq!(
            parse_reply(b"stream: OK\0", "x").unwrap(),
            ClamdVerdict::Clean
        );
        assert_eq!(
            parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\0", "x").unwrap(),
            ClamdVerdict::Infected("Win.Test.EICAR_HDB-1".into())
        );
        assert!(matches!(
            parse_reply(b"INSTREAM size limit exceeded. ERROR\0", "x"),
            Err(ClamdError::Reported(..))
        ));
        assert!(matches!(
            parse_reply(b"", "x"),
            Err(ClamdError::Reported(..))
        ));
    }

    #[tokio::test]
    async fn a_clamd_that_is_not_there_is_an_error_not_a_clean_result() {
        let c = Clamd::new(ClamdConfig {
            address: "127.0.0.1:1".into(),
            on_failure: OnFailure::Tempfail,
            timeout_seconds: 5,
        });
        assert!(matches!(c.scan(b"x").await, Err(ClamdError::Connect(..))));
    }
}
