//! Listeners: accept connections, enforce connection limits, run TLS handshakes
//! (implicit on 465, STARTTLS elsewhere) and drive one [`Session`] per connection.

use crate::reply::Reply;
use crate::session::{Handler, Io, Session, SessionEnd, SessionInfo, SessionLimits, TlsInfo};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

/// What a listener is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// Port 25: mail from the internet and from trusted networks; AUTH not offered.
    Mx,
    /// Port 587: STARTTLS then AUTH required before MAIL.
    Submission,
    /// Port 465: TLS from the first byte (RFC 8314), AUTH required before MAIL.
    Submissions,
}

impl ListenerKind {
    /// The label in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Mx => "mx",
            ListenerKind::Submission => "submission",
            ListenerKind::Submissions => "submissions",
        }
    }

    pub fn is_submission(self) -> bool {
        matches!(self, ListenerKind::Submission | ListenerKind::Submissions)
    }
}

/// A bound socket and what it serves.
pub struct Listener {
    pub socket: TcpListener,
    pub kind: ListenerKind,
}

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub max_per_ip: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 2000,
            max_per_ip: 50,
        }
    }
}

struct Shared<H> {
    handler: Arc<H>,
    limits: Arc<SessionLimits>,
    tls: Option<TlsAcceptor>,
    conn_limits: ConnectionLimits,
    slots: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    next_id: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

/// Releases a client's per-IP slot when its session ends.
struct IpSlot<'a, H> {
    shared: &'a Shared<H>,
    ip: IpAddr,
}

impl<H> Drop for IpSlot<'_, H> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.shared.per_ip.lock() {
            if let Some(n) = map.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&self.ip);
                }
            }
        }
    }
}

/// Serves all listeners until `shutdown` turns true, then stops accepting, lets the
/// sessions in flight finish (idle ones are told 421) and returns.
pub async fn serve<H: Handler>(
    listeners: Vec<Listener>,
    handler: Arc<H>,
    limits: Arc<SessionLimits>,
    conn_limits: ConnectionLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared {
        handler,
        limits,
        tls: tls.map(TlsAcceptor::from),
        conn_limits,
        slots: Arc::new(Semaphore::new(conn_limits.max_connections)),
        per_ip: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        shutdown: shutdown.clone(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        let shared = shared.clone();
        let mut stop = shutdown.clone();
        tasks.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.socket.accept() => a,
                    _ = stop.wait_for(|s| *s) => break,
                };
                match accepted {
                    Ok((stream, peer)) => {
                        let shared = shared.clone();
                        let kind = listener.kind;
                        tokio::spawn(async move { connection(shared, stream, peer, kind).await });
                    }
                    Err(e) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    // Every session holds a slot; having all of them back means all have ended.
    let all = u32::try_from(conn_limits.max_connections).unwrap_or(u32::MAX);
    let _ = shared.slots.acquire_many(all).await;
}

async fn connection<H: Handler>(
    shared: Arc<Shared<H>>,
    stream: TcpStream,
    peer: SocketAddr,
    kind: ListenerKind,
) {
    let _ = stream.set_nodelay(true);
    let hostname = shared.limits.hostname.clone();
    let counters = &crate::metrics::metrics().connections;
    let Ok(_slot) = shared.slots.clone().try_acquire_owned() else {
        counters
            .with_label_values(&[kind.name(), "refused_total_limit"])
            .inc();
        refuse(
            stream,
            Reply::new(
                421,
                "4.3.2",
                format!("{hostname} Too many connections; try again later"),
            ),
        )
        .await;
        return;
    };
    let ip = peer.ip();
    let admitted = match shared.per_ip.lock() {
        Ok(mut map) => {
            let n = map.entry(ip).or_insert(0);
            if *n >= shared.conn_limits.max_per_ip {
                false
            } else {
                *n += 1;
                true
            }
        }
        Err(_) => return,
    };
    if !admitted {
        counters
            .with_label_values(&[kind.name(), "refused_per_ip_limit"])
            .inc();
        tracing::warn!(peer = %peer, "per-address connection limit reached");
        refuse(
            stream,
            Reply::new(
                421,
                "4.7.0",
                format!("{hostname} Too many connections from your address; try again later"),
            ),
        )
        .await;
        return;
    }
    counters.with_label_values(&[kind.name(), "accepted"]).inc();
    let _active = crate::metrics::ActiveGuard::new(kind.name());
    let _ip_slot = IpSlot {
        shared: &shared,
        ip,
    };
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let info = SessionInfo {
        id: shared.next_id.fetch_add(1, Ordering::Relaxed),
        peer,
        local,
        kind,
        helo: None,
        esmtp: false,
        tls: None,
        auth_user: None,
    };
    tracing::debug!(session = info.id, peer = %peer, ?kind, "connect");
    let id = info.id;
    let end = run(&shared, stream, info, kind).await;
    crate::metrics::metrics()
        .ends
        .with_label_values(&[end.name()])
        .inc();
    tracing::debug!(session = id, peer = %peer, end = ?end, "disconnect");
}

async fn refuse(mut stream: TcpStream, reply: Reply) {
    let mut out = Vec::new();
    reply.write_to(&mut out);
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

async fn run<H: Handler>(
    shared: &Shared<H>,
    stream: TcpStream,
    info: SessionInfo,
    kind: ListenerKind,
) -> SessionEnd {
    let greeting = Reply::plain(220, format!("{} ESMTP Portcullis", shared.limits.hostname));
    let mut session = Session::new(
        &*shared.handler,
        &shared.limits,
        info,
        shared.tls.is_some() && kind != ListenerKind::Submissions,
        shared.shutdown.clone(),
    );
    if kind == ListenerKind::Submissions {
        let Some(acceptor) = shared.tls.as_ref() else {
            tracing::error!("implicit TLS listener without a certificate");
            return SessionEnd::Closed;
        };
        let tls = match handshake(acceptor, stream, shared.limits.command_timeout).await {
            Ok(t) => t,
            Err(e) => return e,
        };
        session.tls_started(tls_info(&tls));
        let mut io = Io::new(tls);
        io.reply(&greeting);
        return session.run(&mut io).await;
    }
    let mut io = Io::new(stream);
    io.reply(&greeting);
    match session.run(&mut io).await {
        SessionEnd::StartTls => {}
        other => return other,
    }
    let Some(acceptor) = shared.tls.as_ref() else {
        return SessionEnd::Closed;
    };
    let tls = match handshake(acceptor, io.stream, shared.limits.command_timeout).await {
        Ok(t) => t,
        Err(e) => return e,
    };
    session.tls_started(tls_info(&tls));
    let mut io = Io::new(tls);
    session.run(&mut io).await
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    acceptor: &TlsAcceptor,
    stream: S,
    timeout: std::time::Duration,
) -> Result<tokio_rustls::server::TlsStream<S>, SessionEnd> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Err(_) => Err(SessionEnd::Timeout),
        Ok(Err(e)) => {
            tracing::info!(error = %e, "TLS handshake failed");
            Err(SessionEnd::Io(e))
        }
        Ok(Ok(s)) => Ok(s),
    }
}

fn tls_info<S>(tls: &tokio_rustls::server::TlsStream<S>) -> TlsInfo {
    let conn = tls.get_ref().1;
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => "unknown".to_string(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| {
            let suite = s.suite();
            suite
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{suite:?}"))
        })
        .unwrap_or_else(|| "unknown".to_string());
    TlsInfo { version, cipher }
}
