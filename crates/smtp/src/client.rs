//! The delivery client: one SMTP or LMTP connection to the next hop, reused for
//! several messages. It speaks PIPELINING, STARTTLS, SIZE, 8BITMIME, SMTPUTF8 and DSN
//! when the server offers them, dot-stuffs the message and returns the reply that
//! decided each recipient's fate, so the queue can retry, bounce or finish it.

use crate::reply::Reply;
use crate::session::{Envelope, Recipient, Ret, TlsInfo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Smtp,
    Lmtp,
}

/// STARTTLS towards the next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Never.
    Disabled,
    /// When offered; a failed handshake is retried later in clear text is not
    /// attempted: the attempt fails and is retried (as Postfix's `may`).
    Opportunistic,
    /// Always; a server without STARTTLS gets no mail (Postfix's `encrypt`).
    Required,
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The name we give in EHLO/LHLO.
    pub helo_name: String,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Time for the whole message body and the final reply.
    pub data_timeout: Duration,
    pub tls: TlsMode,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            helo_name: "localhost".into(),
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            tls: TlsMode::Opportunistic,
        }
    }
}

/// A failure that concerns the whole connection, not single recipients. All are
/// temporary: the queue retries them.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection to {0} failed: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("timeout waiting for {0}")]
    Timeout(&'static str),
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
    #[error("server does not offer STARTTLS and TLS is required")]
    TlsRequired,
    #[error("unparseable reply from server: {0}")]
    Protocol(String),
}

/// What happened to each recipient of one message on one connection.
#[derive(Debug, Clone)]
pub struct DeliveryOutcome {
    /// One reply per recipient, in the order given.
    pub replies: Vec<Reply>,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An open connection after EHLO (and STARTTLS), ready for transactions.
pub struct Connection {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    protocol: Protocol,
    config: ClientConfig,
    ext: Extensions,
    /// `host[ip]:port`, for the trace.
    pub remote: String,
    pub tls: Option<TlsInfo>,
    /// The server's greeting, for the trace.
    pub greeting: Reply,
    broken: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Extensions {
    pipelining: bool,
    starttls: bool,
    size: bool,
    eight_bit: bool,
    smtputf8: bool,
    dsn: bool,
}

/// Opens a connection. A greeting or EHLO refusal comes back as `Err(Ok(reply))`
/// so the caller can apply it to every recipient.
pub async fn connect(
    addr: SocketAddr,
    server_name: &str,
    protocol: Protocol,
    config: &ClientConfig,
) -> Result<Connection, Result<Reply, ClientError>> {
    let tcp = match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(Err(ClientError::Timeout("connect"))),
        Ok(Err(e)) => return Err(Err(ClientError::Connect(addr, e))),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let mut conn = Connection {
        stream: Box::new(tcp),
        buf: Vec::with_capacity(4096),
        protocol,
        config: config.clone(),
        ext: Extensions::default(),
        remote: format!("{server_name}[{}]:{}", addr.ip(), addr.port()),
        tls: None,
        greeting: Reply::plain(0, ""),
        broken: false,
    };
    let greeting = conn
        .read_reply(config.command_timeout, "greeting")
        .await
        .map_err(Err)?;
    if greeting.code != 220 {
        let _ = conn.command("QUIT").await;
        return Err(Ok(greeting));
    }
    conn.greeting = greeting;
    conn.hello().await?;
    if conn.ext.starttls && config.tls != TlsMode::Disabled {
        let reply = conn.command("STARTTLS").await.map_err(Err)?;
        if reply.code == 220 {
            conn = conn.start_tls(server_name).await.map_err(Err)?;
            conn.hello().await?;
        } else if config.tls == TlsMode::Required {
            return Err(Err(ClientError::TlsRequired));
        }
    } else if config.tls == TlsMode::Required {
        let _ = conn.command("QUIT").await;
        return Err(Err(ClientError::TlsRequired));
    }
    Ok(conn)
}

impl Connection {
    async fn hello(&mut self) -> Result<(), Result<Reply, ClientError>> {
        let verb = match self.protocol {
            Protocol::Smtp => "EHLO",
            Protocol::Lmtp => "LHLO",
        };
        let name = self.config.helo_name.clone();
        let reply = self.command(&format!("{verb} {name}")).await.map_err(Err)?;
        if reply.code != 250 {
            if self.protocol == Protocol::Lmtp
                || reply.is_permanent() && reply.code != 500 && reply.code != 502
            {
                return Err(Ok(reply));
            }
            // RFC 5321 4.1.1.1: fall back to HELO for servers without EHLO.
            let reply = self.command(&format!("HELO {name}")).await.map_err(Err)?;
            if reply.code != 250 {
                return Err(Ok(reply));
            }
            self.ext = Extensions::default();
            return Ok(());
        }
        let mut ext = Extensions::default();
        for line in reply.text.lines().skip(1) {
            let upper = line.to_ascii_uppercase();
            let word = upper.split_whitespace().next().unwrap_or("");
            match word {
                "PIPELINING" => ext.pipelining = true,
                "STARTTLS" => ext.starttls = true,
                "SIZE" => ext.size = true,
                "8BITMIME" => ext.eight_bit = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "DSN" => ext.dsn = true,
                _ => {}
            }
        }
        self.ext = ext;
        Ok(())
    }

    async fn start_tls(self, server_name: &str) -> Result<Connection, ClientError> {
        let connector = tokio_rustls::TlsConnector::from(insecure_client_config());
        let name = ServerName::try_from(server_name.to_string())
            .unwrap_or_else(|_| ServerName::try_from("localhost").expect("static name"));
        // The stream is only ever a plain TcpStream at this point; rebuild it
        // through the trait object.
        let Connection {
            stream,
            protocol,
            config,
            remote,
            greeting,
            ..
        } = self;
        let tls = tokio::time::timeout(config.command_timeout, connector.connect(name, stream))
            .await
            .map_err(|_| ClientError::Timeout("TLS handshake"))?
            .map_err(|e| ClientError::Tls(remote.clone(), e.to_string()))?;
        let (_, conn) = tls.get_ref();
        let info = TlsInfo {
            version: match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
                other => format!("{other:?}"),
            },
            cipher: conn
                .negotiated_cipher_suite()
                .and_then(|s| s.suite().as_str())
                .unwrap_or("unknown")
                .to_string(),
        };
        Ok(Connection {
            stream: Box::new(tls),
            buf: Vec::with_capacity(4096),
            protocol,
            config,
            ext: Extensions::default(),
            remote,
            tls: Some(info),
            greeting,
            broken: false,
        })
    }

    /// False once the connection can no longer be used for another message.
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    /// Sends one message to `rcpts`. Returns one reply per recipient; an error
    /// means the connection failed and the outcome of every recipient is unknown.
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        rcpts: &[&Recipient],
        message: &[u8],
    ) -> Result<DeliveryOutcome, ClientError> {
        let result = self.transaction(envelope, rcpts, message).await;
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    async fn transaction(
        &mut self,
        envelope: &Envelope,
        rcpts: &[&Recipient],
        message: &[u8],
    ) -> Result<DeliveryOutcome, ClientError> {
        let mut mail = format!("MAIL FROM:<{}>", envelope.mail_from);
        if self.ext.size {
            mail.push_str(&format!(" SIZE={}", message.len()));
        }
        if self.ext.eight_bit && envelope.eight_bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if self.ext.smtputf8 && envelope.smtputf8 {
            mail.push_str(" SMTPUTF8");
        }
        if self.ext.dsn {
            match envelope.ret {
                Some(Ret::Full) => mail.push_str(" RET=FULL"),
                Some(Ret::Headers) => mail.push_str(" RET=HDRS"),
                None => {}
            }
            if let Some(envid) = &envelope.envid {
                mail.push_str(&format!(" ENVID={}", xtext(envid)));
            }
        }
        let rcpt_lines: Vec<String> = rcpts
            .iter()
            .map(|r| {
                let mut line = format!("RCPT TO:<{}>", r.address);
                if self.ext.dsn {
                    if let Some(n) = r.notify {
                        let mut parts = Vec::new();
                        if n.never {
                            parts.push("NEVER");
                        } else {
                            if n.success {
                                parts.push("SUCCESS");
                            }
                            if n.failure {
                                parts.push("FAILURE");
                            }
                            if n.delay {
                                parts.push("DELAY");
                            }
                        }
                        if !parts.is_empty() {
                            line.push_str(&format!(" NOTIFY={}", parts.join(",")));
                        }
                    }
                    if let Some(orcpt) = &r.orcpt {
                        line.push_str(&format!(" ORCPT=rfc822;{}", xtext(orcpt)));
                    }
                }
                line
            })
            .collect();

        let timeout = self.config.command_timeout;
        let (mail_reply, rcpt_replies, data_reply) = if self.ext.pipelining {
            let mut out = String::new();
            out.push_str(&mail);
            out.push_str("\r\n");
            for l in &rcpt_lines {
                out.push_str(l);
                out.push_str("\r\n");
            }
            out.push_str("DATA\r\n");
            self.write(out.as_bytes()).await?;
            let mail_reply = self.read_reply(timeout, "MAIL reply").await?;
            let mut rcpt_replies = Vec::with_capacity(rcpts.len());
            for _ in rcpts {
                rcpt_replies.push(self.read_reply(timeout, "RCPT reply").await?);
            }
            let data_reply = self.read_reply(timeout, "DATA reply").await?;
            (mail_reply, rcpt_replies, Some(data_reply))
        } else {
            let mail_reply = self.command(&mail).await?;
            if !mail_reply.is_positive() {
                (mail_reply, Vec::new(), None)
            } else {
                let mut rcpt_replies = Vec::with_capacity(rcpts.len());
                for l in &rcpt_lines {
                    rcpt_replies.push(self.command(l).await?);
                }
                let data_reply = if rcpt_replies.iter().any(|r| r.is_positive()) {
                    Some(self.command("DATA").await?)
                } else {
                    None
                };
                (mail_reply, rcpt_replies, data_reply)
            }
        };

        if !mail_reply.is_positive() {
            if data_reply.as_ref().is_some_and(|r| r.code == 354) {
                // A pipelining server that still said 354: end the empty transaction.
                self.write(b".\r\n").await?;
                let _ = self.read_reply(timeout, "end of data").await?;
            }
            let _ = self.command("RSET").await;
            return Ok(DeliveryOutcome {
                replies: vec![mail_reply; rcpts.len()],
            });
        }
        let accepted: Vec<usize> = rcpt_replies
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_positive())
            .map(|(i, _)| i)
            .collect();
        let mut replies = rcpt_replies;
        let data_reply = match data_reply {
            Some(r) => r,
            None => {
                let _ = self.command("RSET").await;
                return Ok(DeliveryOutcome { replies });
            }
        };
        if data_reply.code != 354 {
            for &i in &accepted {
                replies[i] = data_reply.clone();
            }
            if !accepted.is_empty() {
                let _ = self.command("RSET").await;
            }
            return Ok(DeliveryOutcome { replies });
        }
        self.write_message(message).await?;
        if accepted.is_empty() {
            // Nothing will be delivered; read and ignore the reply.
            let _ = self
                .read_reply(self.config.data_timeout, "end of data")
                .await?;
            return Ok(DeliveryOutcome { replies });
        }
        match self.protocol {
            Protocol::Smtp => {
                let reply = self
                    .read_reply(self.config.data_timeout, "end of data")
                    .await?;
                for &i in &accepted {
                    replies[i] = reply.clone();
                }
            }
            Protocol::Lmtp => {
                // RFC 2033: one reply per accepted recipient, in order.
                for &i in &accepted {
                    replies[i] = self
                        .read_reply(self.config.data_timeout, "LMTP reply")
                        .await?;
                }
            }
        }
        Ok(DeliveryOutcome { replies })
    }

    /// Ends the session politely.
    pub async fn quit(mut self) {
        if !self.broken {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.command("QUIT")).await;
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        match tokio::time::timeout(self.config.command_timeout, async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        })
        .await
        {
            Err(_) => Err(ClientError::Timeout("write")),
            Ok(r) => Ok(r?),
        }
    }

    async fn write_message(&mut self, message: &[u8]) -> Result<(), ClientError> {
        let stuffed = dot_stuff(message);
        let timeout = self.config.data_timeout;
        match tokio::time::timeout(timeout, async {
            self.stream.write_all(&stuffed).await?;
            self.stream.flush().await
        })
        .await
        {
            Err(_) => Err(ClientError::Timeout("message body")),
            Ok(r) => Ok(r?),
        }
    }

    async fn command(&mut self, line: &str) -> Result<Reply, ClientError> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.write(&bytes).await?;
        self.read_reply(self.config.command_timeout, "reply").await
    }

    async fn read_reply(
        &mut self,
        timeout: Duration,
        what: &'static str,
    ) -> Result<Reply, ClientError> {
        let mut lines: Vec<String> = Vec::new();
        let code;
        loop {
            let line = self.read_line(timeout, what).await?;
            let line = line.trim_end_matches(['\r', '\n']);
            if line.len() < 3 || !line.is_char_boundary(3) {
                return Err(ClientError::Protocol(line.chars().take(80).collect()));
            }
            let c: u16 = line[..3]
                .parse()
                .map_err(|_| ClientError::Protocol(line.chars().take(80).collect()))?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if !more {
                code = c;
                break;
            }
            if lines.len() > 100 {
                return Err(ClientError::Protocol("reply has too many lines".into()));
            }
        }
        // Split off an RFC 3463 status from the first line when present.
        let (status, first) = split_status(&lines[0]);
        let mut text = first.to_string();
        for l in &lines[1..] {
            text.push('\n');
            let (_, rest) = split_status(l);
            text.push_str(if status.is_empty() { l } else { rest });
        }
        Ok(Reply {
            code,
            status: status.to_string(),
            text,
        })
    }

    async fn read_line(
        &mut self,
        timeout: Duration,
        what: &'static str,
    ) -> Result<String, ClientError> {
        loop {
            if let Some(nl) = memchr::memchr(b'\n', &self.buf) {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buf.len() > 8192 {
                return Err(ClientError::Protocol("reply line too long".into()));
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(timeout, self.stream.read(&mut chunk))
                .await
                .map_err(|_| ClientError::Timeout(what))??;
            if n == 0 {
                return Err(ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("server closed the connection while we waited for the {what}"),
                )));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn split_status(line: &str) -> (&str, &str) {
    let word = line.split(' ').next().unwrap_or("");
    let parts: Vec<&str> = word.split('.').collect();
    if parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        (word, line[word.len()..].trim_start())
    } else {
        ("", line)
    }
}

/// RFC 5321 4.5.2: a line that starts with a dot gets another one; the message is
/// closed with CRLF . CRLF (adding a final CRLF when the content lacks one).
/// RFC 3461 section 4: xtext, for ORCPT and ENVID values.
fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 8);
    let mut line_start = true;
    let mut rest = message;
    while !rest.is_empty() {
        if line_start && rest[0] == b'.' {
            out.push(b'.');
        }
        match memchr::memchr(b'\n', rest) {
            Some(nl) => {
                out.extend_from_slice(&rest[..=nl]);
                rest = &rest[nl + 1..];
                line_start = true;
            }
            None => {
                out.extend_from_slice(rest);
                rest = &[];
                line_start = false;
            }
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Opportunistic TLS between MTAs does not verify certificates (RFC 7435); the
/// alternative is clear text, which is worse. It still checks that the server
/// holds the key of the certificate it showed. Also what `portcullis probe
/// --insecure` uses.
pub fn insecure_client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.dangerous()
                        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
                        .with_no_client_auth()
                });
            match config {
                Ok(c) => Arc::new(c),
                Err(e) => panic!("rustls ring provider has no TLS versions: {e}"),
            }
        })
        .clone()
}

#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(dot_stuff(b".a\r\nb\r\n.\r\n"), b"..a\r\nb\r\n..\r\n.\r\n");
        assert_eq!(dot_stuff(b"no newline"), b"no newline\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
    }

    #[test]
    fn status_is_split_from_reply_text() {
        assert_eq!(split_status("2.0.0 Ok: queued"), ("2.0.0", "Ok: queued"));
        assert_eq!(
            split_status("mx.example.test ready"),
            ("", "mx.example.test ready")
        );
        assert_eq!(split_status("5.7.1"), ("5.7.1", ""));
    }
}

#[cfg(test)]
mod xtext_tests {
    #[test]
    fn xtext_escapes_plus_equals_and_controls() {
        assert_eq!(super::xtext("a+b=c d@x"), "a+2Bb+3Dc+20d@x");
    }
}
