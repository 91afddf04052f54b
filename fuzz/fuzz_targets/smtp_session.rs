//! The SMTP server's command loop (RFC 5321 commands, pipelining, DATA, BDAT,
//! AUTH, errors) on any bytes a client sends over a real socket. The server
//! runs once for the whole run with a handler that accepts everything; a panic
//! in its session task aborts the run (libFuzzer's panic hook). Each input is
//! one connection: written whole, then the write half closed, then the
//! replies read until the server closes.
#![no_main]
use portcullis_smtp::session::{AuthOutcome, Envelope, Handler, Recipient, SessionInfo};
use portcullis_smtp::{serve, ConnectionLimits, Listener, ListenerKind, Reply, SessionLimits};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

struct AcceptAll;

impl Handler for AcceptAll {
    async fn authenticate(&self, _: &SessionInfo, _: &str, _: &str) -> AuthOutcome {
        AuthOutcome::Invalid
    }
    async fn rcpt_to(&self, _: &SessionInfo, _: &Envelope, _: &Recipient) -> Result<(), Reply> {
        Ok(())
    }
    async fn data(&self, _: &SessionInfo, _: Envelope, message: Vec<u8>) -> Reply {
        Reply::new(250, "2.0.0", format!("{} bytes", message.len()))
    }
    async fn refused(&self, _: &SessionInfo, _: &Envelope, _: Option<&str>, _: &Reply) {}
}

fn server() -> &'static (Runtime, SocketAddr) {
    static SERVER: OnceLock<(Runtime, SocketAddr)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let rt = Runtime::new().expect("a runtime");
        let addr = rt.block_on(async {
            let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = socket.local_addr().expect("address");
            let limits = SessionLimits {
                hostname: "mx.example.org".into(),
                max_message_size: 64 * 1024,
                max_recipients: 20,
                max_command_line: 512,
                max_line_length: 2048,
                max_header_size: 16 * 1024,
                command_timeout: Duration::from_secs(5),
                data_timeout: Duration::from_secs(5),
                ..SessionLimits::default()
            };
            // Kept for the whole run: dropping the sender would shut the server down.
            let (stop, shutdown) = tokio::sync::watch::channel(false);
            std::mem::forget(stop);
            tokio::spawn(serve(
                vec![Listener {
                    socket,
                    kind: ListenerKind::Mx,
                }],
                Arc::new(AcceptAll),
                Arc::new(limits),
                ConnectionLimits::default(),
                None,
                shutdown,
            ));
            addr
        });
        (rt, addr)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (rt, addr) = server();
    rt.block_on(async {
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        // The server may close first (too many errors); a failed write is fine.
        let _ = conn.write_all(data).await;
        let _ = conn.shutdown().await;
        let mut replies = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut replies)).await;
        assert!(
            read.is_ok(),
            "the server neither answered nor closed within 20 s"
        );
    });
});
