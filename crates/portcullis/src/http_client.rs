//! A minimal HTTP/1.1 client for the tools to reach the running daemon's local API
//! (`queue retry`, `queue delete`). One request per connection, `Connection: close`,
//! bounded response size: the peer is our own daemon on a loopback address.

use anyhow::{Context, Result};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The daemon's HTTP address as seen from this host: a wildcard listener is
/// reached through loopback.
pub fn local(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    }
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Nothing listens: the daemon is not running.
    #[error("the gateway is not running at {0}")]
    NotRunning(SocketAddr),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Sends one request; returns the status code and body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> Result<(u16, String), HttpError> {
    request_json(addr, method, path, None).await
}

/// Sends one request with an optional JSON body, naming the login user who
/// acts (`X-Portcullis-Actor`, for the audit log); returns the status code and
/// body.
pub async fn request_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<(u16, String), HttpError> {
    let addr = local(addr);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let actor: String = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "cli".into())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(32)
        .collect();
    let mut stream = match tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(HttpError::NotRunning(addr))
        }
        Ok(Err(e)) => {
            return Err(anyhow::Error::from(e)
                .context(format!("connecting to {addr}"))
                .into())
        }
        Err(_) => return Err(anyhow::anyhow!("timed out connecting to {addr}").into()),
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Portcullis-Actor: cli:{actor}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        stream.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        (&mut stream)
            .take(16 * 1024 * 1024)
            .read_to_end(&mut buf)
            .await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(std::time::Duration::from_secs(60), exchange)
        .await
        .map_err(|_| anyhow::anyhow!("the gateway at {addr} did not answer"))?
        .with_context(|| format!("talking to {addr}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP status line")?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

/// One POST from a command to the running gateway, waiting for the answer;
/// "not running" becomes an error that says to start it.
pub fn post_blocking(
    addr: SocketAddr,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<(u16, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(request_json(addr, "POST", path, body)) {
        Ok(answer) => Ok(answer),
        Err(HttpError::NotRunning(addr)) => anyhow::bail!(
            "the gateway is not running at {addr}; this needs it (start it with `portcullis serve`)"
        ),
        Err(HttpError::Other(e)) => Err(e),
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dechunks() {
        assert_eq!(
            super::dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }
}
