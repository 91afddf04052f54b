//! One inbound SMTP session: the command loop, the transaction state and the
//! replies. The session hands each complete message to a [`Handler`] and sends back
//! whatever reply the handler chose; it never decides about mail itself.

use crate::data::{BareNewlinePolicy, DataLimits, DataProblem, DataReceiver};
use crate::reply::Reply;
use crate::server::ListenerKind;
use base64::Engine;
use serde::{Deserialize, Serialize};
use smtp_proto::{Error as ProtoError, Request};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// Protocol limits for inbound sessions. All have documented defaults in the
/// configuration; these are the values a session enforces.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Our name: in the greeting, the EHLO reply and Received headers.
    pub hostname: String,
    pub max_message_size: usize,
    pub max_recipients: usize,
    /// Longest line inside a message, in bytes without CRLF.
    pub max_line_length: usize,
    pub max_header_size: usize,
    /// Longest command line; RFC 5321 requires at least 512.
    pub max_command_line: usize,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    /// Protocol errors tolerated before the session is closed with 421.
    pub max_errors: u32,
    pub bare_newlines: BareNewlinePolicy,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            hostname: "localhost".into(),
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 1000,
            max_line_length: 65_536,
            max_header_size: 1024 * 1024,
            max_command_line: 4096,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            max_errors: 10,
            bare_newlines: BareNewlinePolicy::Reject,
        }
    }
}

/// The negotiated TLS parameters, for Received headers and the trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
}

/// What is known about the client of a session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Unique per process; ties log lines of one session together.
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub kind: ListenerKind,
    pub helo: Option<String>,
    /// True after EHLO (rather than HELO): the Received header says ESMTP.
    pub esmtp: bool,
    pub tls: Option<TlsInfo>,
    pub auth_user: Option<String>,
}

/// RFC 3461 NOTIFY, as requested for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
    pub never: bool,
}

impl Notify {
    /// Whether a failure DSN may be sent: RFC 3461 says failure and delay are the
    /// default when NOTIFY was not given.
    pub fn wants_failure(&self, given: bool) -> bool {
        if !given {
            return true;
        }
        !self.never && self.failure
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub address: String,
    /// NOTIFY as given; `None` when the client did not say.
    pub notify: Option<Notify>,
    /// ORCPT, as given (`rfc822;user@example.test`).
    pub orcpt: Option<String>,
}

/// RFC 3461 RET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ret {
    Full,
    Headers,
}

/// The envelope of one transaction: everything but the message itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Reverse path; empty for the null sender `<>`.
    pub mail_from: String,
    pub recipients: Vec<Recipient>,
    pub eight_bit: bool,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    pub envid: Option<String>,
}

/// Result of a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Success,
    Invalid,
    /// Too many failures from this client: the session is closed.
    Locked,
}

/// What the gateway plugs into a session. Every method may refuse with a reply.
pub trait Handler: Send + Sync + 'static {
    /// Checks a user's password. Called only under TLS on submission listeners.
    fn authenticate(
        &self,
        session: &SessionInfo,
        user: &str,
        password: &str,
    ) -> impl Future<Output = AuthOutcome> + Send;

    /// Decides on one recipient; `envelope` holds the sender and the recipients
    /// accepted so far.
    fn rcpt_to(
        &self,
        session: &SessionInfo,
        envelope: &Envelope,
        rcpt: &Recipient,
    ) -> impl Future<Output = Result<(), Reply>> + Send;

    /// Takes a complete message. The reply is sent as is; a 250 is a promise that
    /// the message is safely stored.
    fn data(
        &self,
        session: &SessionInfo,
        envelope: Envelope,
        message: Vec<u8>,
    ) -> impl Future<Output = Reply> + Send;

    /// Told when the session refused a recipient or a message on its own or through
    /// the handler, so the refusal can be traced.
    fn refused(
        &self,
        session: &SessionInfo,
        envelope: &Envelope,
        rcpt: Option<&str>,
        reply: &Reply,
    ) -> impl Future<Output = ()> + Send;
}

/// Why a session ended.
#[derive(Debug)]
pub enum SessionEnd {
    Quit,
    Closed,
    Timeout,
    TooManyErrors,
    Shutdown,
    Locked,
    Io(std::io::Error),
    /// The client asked for STARTTLS and got `220`: the caller performs the handshake.
    StartTls,
}

impl SessionEnd {
    /// The label in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            SessionEnd::Quit => "quit",
            SessionEnd::Closed => "closed",
            SessionEnd::Timeout => "timeout",
            SessionEnd::TooManyErrors => "too_many_errors",
            SessionEnd::Shutdown => "shutdown",
            SessionEnd::Locked => "auth_locked",
            SessionEnd::Io(_) => "io_error",
            SessionEnd::StartTls => "starttls",
        }
    }
}

/// Buffered I/O with replies collected until the next read, so pipelined
/// commands get their replies in one write (RFC 2920).
pub(crate) struct Io<S> {
    pub stream: S,
    buf: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Io<S> {
    pub fn new(stream: S) -> Self {
        Io {
            stream,
            buf: Vec::with_capacity(8192),
            pos: 0,
            out: Vec::with_capacity(1024),
        }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub fn reply(&mut self, reply: &Reply) {
        reply.write_to(&mut self.out);
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Flushes replies, then reads more input. Returns false at end of stream.
    async fn fill(
        &mut self,
        timeout: Duration,
        shutdown: Option<&mut watch::Receiver<bool>>,
    ) -> Result<bool, SessionEnd> {
        self.flush().await.map_err(SessionEnd::Io)?;
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        let read = match shutdown {
            Some(shutdown) => tokio::select! {
                r = tokio::time::timeout(timeout, self.stream.read(&mut chunk)) => r,
                _ = shutdown.wait_for(|stop| *stop) => return Err(SessionEnd::Shutdown),
            },
            None => tokio::time::timeout(timeout, self.stream.read(&mut chunk)).await,
        };
        match read {
            Err(_) => Err(SessionEnd::Timeout),
            Ok(Err(e)) => Err(SessionEnd::Io(e)),
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
        }
    }

    /// Drops whatever the client sent ahead, returning how many bytes that was.
    pub fn discard_input(&mut self) -> usize {
        let n = self.buf.len() - self.pos;
        self.buf.clear();
        self.pos = 0;
        n
    }
}

/// One command line, or the news that it was too long.
enum Line {
    Command(Vec<u8>),
    TooLong,
}

pub(crate) struct Session<'h, H: Handler> {
    pub handler: &'h H,
    pub limits: &'h SessionLimits,
    pub info: SessionInfo,
    /// STARTTLS is offered when the listener has a certificate and TLS is not active.
    pub tls_available: bool,
    pub shutdown: watch::Receiver<bool>,
    envelope: Option<Envelope>,
    /// BDAT chunks collected so far.
    bdat: Option<Vec<u8>>,
    bdat_failed: Option<Reply>,
    errors: u32,
}

impl<'h, H: Handler> Session<'h, H> {
    pub fn new(
        handler: &'h H,
        limits: &'h SessionLimits,
        info: SessionInfo,
        tls_available: bool,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Session {
            handler,
            limits,
            info,
            tls_available,
            shutdown,
            envelope: None,
            bdat: None,
            bdat_failed: None,
            errors: 0,
        }
    }

    /// After a STARTTLS handshake: RFC 3207 says the client starts afresh.
    pub fn tls_started(&mut self, tls: TlsInfo) {
        self.info.tls = Some(tls);
        self.info.helo = None;
        self.info.esmtp = false;
        self.tls_available = false;
        self.reset();
    }

    fn reset(&mut self) {
        self.envelope = None;
        self.bdat = None;
        self.bdat_failed = None;
    }

    async fn read_line<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        io: &mut Io<S>,
    ) -> Result<Line, SessionEnd> {
        let max = self.limits.max_command_line;
        let mut too_long = false;
        loop {
            if let Some(nl) = memchr::memchr(b'\n', io.pending()) {
                let start = io.pos;
                io.pos += nl + 1;
                if too_long || nl + 1 > max {
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Command(io.buf[start..io.pos].to_vec()));
            }
            if io.pending().len() > max {
                // Drop the overlong line's head and keep reading to its end.
                too_long = true;
                io.pos = io.buf.len();
            }
            if !io
                .fill(self.limits.command_timeout, Some(&mut self.shutdown))
                .await?
            {
                return Err(SessionEnd::Closed);
            }
        }
    }

    fn error(&mut self) -> Result<(), SessionEnd> {
        self.errors += 1;
        if self.errors > self.limits.max_errors {
            Err(SessionEnd::TooManyErrors)
        } else {
            Ok(())
        }
    }

    /// Runs the command loop until the session ends or asks for TLS.
    pub async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        io: &mut Io<S>,
    ) -> SessionEnd {
        let end = self.command_loop(io).await;
        let farewell = match &end {
            SessionEnd::Timeout => Some(Reply::new(
                421,
                "4.4.2",
                format!(
                    "{} Timeout waiting for your command, closing",
                    self.limits.hostname
                ),
            )),
            SessionEnd::TooManyErrors => Some(Reply::new(
                421,
                "4.7.0",
                format!(
                    "{} Too many errors in this session, closing",
                    self.limits.hostname
                ),
            )),
            SessionEnd::Shutdown => Some(Reply::new(
                421,
                "4.3.2",
                format!(
                    "{} Service shutting down, please try again later",
                    self.limits.hostname
                ),
            )),
            SessionEnd::Locked => Some(Reply::new(
                421,
                "4.7.0",
                "Too many failed logins from your address; try again later",
            )),
            _ => None,
        };
        if let Some(reply) = farewell {
            io.reply(&reply);
        }
        let _ = io.flush().await;
        end
    }

    async fn command_loop<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        io: &mut Io<S>,
    ) -> SessionEnd {
        loop {
            let line = match self.read_line(io).await {
                Ok(Line::Command(l)) => l,
                Ok(Line::TooLong) => {
                    io.reply(&Reply::new(500, "5.5.2", "Line too long"));
                    if let Err(e) = self.error() {
                        return e;
                    }
                    continue;
                }
                Err(e) => return e,
            };
            match self.command(io, &line).await {
                Ok(()) => {}
                Err(end) => return end,
            }
        }
    }

    async fn command<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        io: &mut Io<S>,
        line: &[u8],
    ) -> Result<(), SessionEnd> {
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r,
            Err(e) => {
                let reply = match e {
                    ProtoError::UnknownCommand => Reply::new(500, "5.5.1", "Unknown command"),
                    ProtoError::InvalidSenderAddress => {
                        Reply::new(501, "5.1.7", "Bad sender address syntax")
                    }
                    ProtoError::InvalidRecipientAddress => {
                        Reply::new(501, "5.1.3", "Bad recipient address syntax")
                    }
                    ProtoError::SyntaxError { syntax } => {
                        Reply::new(501, "5.5.4", format!("Syntax: {syntax}"))
                    }
                    ProtoError::InvalidParameter { param } => {
                        Reply::new(501, "5.5.4", format!("Invalid parameter {param}"))
                    }
                    ProtoError::UnsupportedParameter { param } => Reply::new(
                        555,
                        "5.5.4",
                        format!(
                            "Unsupported parameter {}",
                            param.chars().take(64).collect::<String>()
                        ),
                    ),
                    _ => Reply::new(500, "5.5.2", "Syntax error"),
                };
                io.reply(&reply);
                return self.error();
            }
        };
        // A BDAT transfer may only be followed by more BDAT, RSET or QUIT.
        if self.bdat.is_some()
            && !matches!(
                request,
                Request::Bdat { .. } | Request::Rset | Request::Quit | Request::Noop { .. }
            )
        {
            io.reply(&Reply::new(
                503,
                "5.5.1",
                "BDAT transfer in progress: send BDAT, RSET or QUIT",
            ));
            return self.error();
        }
        match request {
            Request::Ehlo { host } => {
                self.reset();
                self.info.helo = Some(clean(&host));
                self.info.esmtp = true;
                let reply = Reply::plain(250, self.ehlo_lines());
                io.reply(&reply);
            }
            Request::Helo { host } => {
                self.reset();
                self.info.helo = Some(clean(&host));
                self.info.esmtp = false;
                io.reply(&Reply::plain(250, self.limits.hostname.clone()));
            }
            Request::Lhlo { .. } => {
                io.reply(&Reply::new(
                    500,
                    "5.5.1",
                    "This is an SMTP server, not LMTP",
                ));
                return self.error();
            }
            Request::Mail { from } => return self.mail(io, from).await,
            Request::Rcpt { to } => return self.rcpt(io, to).await,
            Request::Data => return self.data(io).await,
            Request::Bdat {
                chunk_size,
                is_last,
            } => return self.bdat(io, chunk_size, is_last).await,
            Request::Rset => {
                self.reset();
                io.reply(&Reply::new(250, "2.0.0", "Reset OK"));
            }
            Request::Noop { .. } => io.reply(&Reply::new(250, "2.0.0", "OK")),
            Request::Vrfy { .. } => io.reply(&Reply::new(
                252,
                "2.5.2",
                "Cannot verify the user, but will accept the message and attempt delivery",
            )),
            Request::Expn { .. } => io.reply(&Reply::new(502, "5.5.1", "EXPN is not available")),
            Request::Help { .. } => io.reply(&Reply::new(
                214,
                "2.0.0",
                "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY QUIT STARTTLS AUTH",
            )),
            Request::Quit => {
                io.reply(&Reply::new(
                    221,
                    "2.0.0",
                    format!("{} closing connection", self.limits.hostname),
                ));
                return Err(SessionEnd::Quit);
            }
            Request::StartTls => {
                if self.info.tls.is_some() {
                    io.reply(&Reply::new(503, "5.5.1", "TLS is already active"));
                    return self.error();
                }
                if !self.tls_available {
                    io.reply(&Reply::new(502, "5.5.1", "STARTTLS is not available here"));
                    return self.error();
                }
                io.reply(&Reply::new(220, "2.0.0", "Ready to start TLS"));
                if let Err(e) = io.flush().await {
                    return Err(SessionEnd::Io(e));
                }
                // CVE-2011-0411: anything pipelined behind STARTTLS was sent in clear
                // text and must never be taken as a command of the TLS session.
                let dropped = io.discard_input();
                if dropped > 0 {
                    tracing::warn!(
                        session = self.info.id,
                        peer = %self.info.peer,
                        bytes = dropped,
                        "discarded plaintext pipelined after STARTTLS"
                    );
                }
                return Err(SessionEnd::StartTls);
            }
            Request::Auth {
                mechanism,
                initial_response,
            } => return self.auth(io, mechanism, &initial_response).await,
            Request::Etrn { .. } | Request::Atrn { .. } | Request::Burl { .. } => {
                io.reply(&Reply::new(502, "5.5.1", "Command not implemented"));
                return self.error();
            }
        }
        Ok(())
    }

    fn auth_offered(&self) -> bool {
        self.info.kind.is_submission() && self.info.tls.is_some() && self.info.auth_user.is_none()
    }

    fn ehlo_lines(&self) -> String {
        let mut lines = vec![
            format!("{} Hello {}", self.limits.hostname, self.info.peer.ip()),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.limits.max_message_size),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "DSN".to_string(),
            "CHUNKING".to_string(),
        ];
        if self.tls_available && self.info.tls.is_none() {
            lines.push("STARTTLS".to_string());
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        lines.join("\n")
    }

    async fn mail<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        io: &mut Io<S>,
        from: smtp_proto::MailFrom<std::borrow::Cow<'_, str>>,
    ) -> Result<(), SessionEnd> {
        if self.info.helo.is_none() {
            io.reply(&Reply::new(503, "5.5.1", "Say EHLO first"));
            return self.error();
        }
        if self.envelope.is_some() {
            io.reply(&Reply::new(
                503,
                "5.5.1",
                "Sender already given; send RSET to start over",
            ));
            return self.error();
        }
        if self.info.kind.is_submission() && self.info.auth_user.is_none() {
            io.reply(&Reply::new(
                530,
                "5.7.0",
                "Authentication required: log in (AUTH) before sending on this port",
            ));
            return self.error();
        }
        if from.size > self.limits.max_message_size {
            io.reply(&Reply::new(
                552,
                "5.3.4",
                format!(
                    "Message size {} exceeds the limit of {} bytes",
                    from.size, self.limits.max_message_size
                ),
            ));
            return Ok(());
        }
        let ret = if from.flags & smtp_proto::MAIL_RET_FULL != 0 {
            Some(Ret::Full)
        } else if from.flags & smtp_proto::MAIL_RET_HDRS != 0 {
            Some(Ret::Headers)
        } else {
            None
        };
        self.envelope = Some(Envelope {
            mail_from: clean(&from.address),
            recipients: Vec::new(),
            eight_bit: from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0,
            smtputf8: from.flags & smtp_proto::MAIL_SMTPUTF8 != 0,
            ret,
            envid: from.env_id.as_deref().map(clean),
        });
        io.reply(&Reply::new(250, "2.1.0", "Sender OK"));
        Ok(())
    }

    async fn rcpt<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        io: &mut Io<S>,
        to: smtp_proto::RcptTo<std::borrow::Cow<'_, str>>,
    ) -> Result<(), SessionEnd> {
        let Some(envelope) = self.envelope.as_ref() else {
            io.reply(&Reply::new(503, "5.5.1", "Send MAIL FROM first"));
            return self.error();
        };
        let notify = if to.flags
            & (smtp_proto::RCPT_NOTIFY_SUCCESS
                | smtp_proto::RCPT_NOTIFY_FAILURE
                | smtp_proto::RCPT_NOTIFY_DELAY
                | smtp_proto::RCPT_NOTIFY_NEVER)
            != 0
        {
            Some(Notify {
                success: to.flags & smtp_proto::RCPT_NOTIFY_SUCCESS != 0,
                failure: to.flags & smtp_proto::RCPT_NOTIFY_FAILURE != 0,
                delay: to.flags & smtp_proto::RCPT_NOTIFY_DELAY != 0,
                never: to.flags & smtp_proto::RCPT_NOTIFY_NEVER != 0,
            })
        } else {
            None
        };
        let rcpt = Recipient {
            address: clean(&to.address),
            notify,
            orcpt: to.orcpt.as_deref().map(clean),
        };
        if rcpt.address.is_empty() {
            io.reply(&Reply::new(501, "5.1.3", "Empty recipient address"));
            return self.error();
        }
        if envelope.recipients.len() >= self.limits.max_recipients {
            let reply = Reply::new(
                452,
                "4.5.3",
                format!(
                    "Too many recipients: at most {} per message; send the rest in another message",
                    self.limits.max_recipients
                ),
            );
            self.handler
                .refused(&self.info, envelope, Some(&rcpt.address), &reply)
                .await;
            io.reply(&reply);
            return Ok(());
        }
        match self.handler.rcpt_to(&self.info, envelope, &rcpt).await {
            Ok(()) => {
                if let Some(env) = self.envelope.as_mut() {
                    env.recipients.push(rcpt);
                }
                io.reply(&Reply::new(250, "2.1.5", "Recipient OK"));
                Ok(())
            }
            Err(reply) => {
                self.handler
                    .refused(&self.info, envelope, Some(&rcpt.address), &reply)
                    .await;
                io.reply(&reply);
                if reply.is_permanent() {
                    self.error()
                } else {
                    Ok(())
                }
            }
        }
    }

    fn ready_for_content(&self) -> Result<(), Reply> {
        match &self.envelope {
            None => Err(Reply::new(503, "5.5.1", "Send MAIL FROM first")),
            Some(e) if e.recipients.is_empty() => {
                Err(Reply::new(554, "5.5.1", "No valid recipients"))
            }
            Some(_) => Ok(()),
        }
    }

    async fn data<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        io: &mut Io<S>,
    ) -> Result<(), SessionEnd> {
        if let Err(reply) = self.ready_for_content() {
            io.reply(&reply);
            return self.error();
        }
        io.reply(&Reply::plain(354, "End data with <CR><LF>.<CR><LF>"));
        let mut rx = DataReceiver::new(self.data_limits());
        loop {
            if let Some(used) = rx.feed(io.pending()) {
                io.pos += used;
                break;
            }
            io.pos = io.buf.len();
            // A shutdown lets the message in flight arrive: no shutdown signal here.
            match io.fill(self.limits.data_timeout, None).await {
                Ok(true) => {}
                // The client went away mid-message: nothing was promised, nothing kept.
                Ok(false) => return Err(SessionEnd::Closed),
                Err(e) => return Err(e),
            }
        }
        let size = rx.size();
        let message = rx.finish();
        let envelope = self.envelope.take().unwrap_or_else(unreachable_envelope);
        self.deliver(io, envelope, message, size).await;
        Ok(())
    }

    fn data_limits(&self) -> DataLimits {
        DataLimits {
            max_size: self.limits.max_message_size,
            max_line_length: self.limits.max_line_length,
            max_header_size: self.limits.max_header_size,
            bare_newlines: self.limits.bare_newlines,
        }
    }

    /// Hands a received message (or the problem with it) on and queues the reply.
    async fn deliver<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        io: &mut Io<S>,
        envelope: Envelope,
        message: Result<Vec<u8>, DataProblem>,
        size: usize,
    ) {
        let reply = match message {
            Ok(message) => self.handler.data(&self.info, envelope, message).await,
            Err(problem) => {
                let reply = problem_reply(problem, size, self.limits);
                self.handler
                    .refused(&self.info, &envelope, None, &reply)
                    .await;
                reply
            }
        };
        io.reply(&reply);
    }

    async fn bdat<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        io: &mut Io<S>,
        chunk_size: usize,
        is_last: bool,
    ) -> Result<(), SessionEnd> {
        // The chunk is read even when it will be refused, to stay in step.
        let refusal = self.ready_for_content().err();
        let mut left = chunk_size;
        let collected = self.bdat.get_or_insert_with(Vec::new);
        let keep = refusal.is_none()
            && self.bdat_failed.is_none()
            && collected.len().saturating_add(chunk_size) <= self.limits.max_message_size;
        loop {
            let take = left.min(io.pending().len());
            if keep {
                if let Some(buf) = self.bdat.as_mut() {
                    buf.extend_from_slice(&io.pending()[..take]);
                }
            }
            io.pos += take;
            left -= take;
            if left == 0 {
                break;
            }
            match io.fill(self.limits.data_timeout, None).await {
                Ok(true) => {}
                Ok(false) => return Err(SessionEnd::Closed),
                Err(e) => return Err(e),
            }
        }
        if let Some(reply) = refusal {
            self.bdat = None;
            io.reply(&reply);
            return self.error();
        }
        if !keep && self.bdat_failed.is_none() {
            self.bdat_failed = Some(problem_reply(
                DataProblem::TooLarge,
                self.bdat.as_ref().map_or(0, |b| b.len()) + chunk_size,
                self.limits,
            ));
            self.bdat = Some(Vec::new());
        }
        if !is_last {
            io.reply(&Reply::new(
                250,
                "2.0.0",
                format!("{chunk_size} bytes received"),
            ));
            return Ok(());
        }
        let collected = self.bdat.take().unwrap_or_default();
        let envelope = self.envelope.take().unwrap_or_else(unreachable_envelope);
        if let Some(reply) = self.bdat_failed.take() {
            self.handler
                .refused(&self.info, &envelope, None, &reply)
                .await;
            io.reply(&reply);
            return Ok(());
        }
        // BDAT content is framed by length, but it may later travel in DATA, where
        // bare line endings would be dangerous: apply the same rules as to DATA.
        let size = collected.len();
        let message = check_binary(&collected, self.data_limits());
        self.deliver(io, envelope, message, size).await;
        Ok(())
    }

    async fn auth<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        io: &mut Io<S>,
        mechanism: u64,
        initial: &str,
    ) -> Result<(), SessionEnd> {
        if !self.info.kind.is_submission() {
            io.reply(&Reply::new(
                503,
                "5.5.1",
                "AUTH is not offered on this port; use the submission port",
            ));
            return self.error();
        }
        if self.info.tls.is_none() {
            io.reply(&Reply::new(
                538,
                "5.7.11",
                "Encryption required: send STARTTLS before AUTH",
            ));
            return self.error();
        }
        if self.info.auth_user.is_some() {
            io.reply(&Reply::new(503, "5.5.1", "Already authenticated"));
            return self.error();
        }
        if self.envelope.is_some() {
            io.reply(&Reply::new(
                503,
                "5.5.1",
                "AUTH is not allowed during a mail transaction",
            ));
            return self.error();
        }
        let credentials = if mechanism == smtp_proto::AUTH_PLAIN {
            let response = if initial.is_empty() {
                io.reply(&Reply::plain(334, ""));
                match self.auth_response(io).await? {
                    Some(r) => r,
                    None => return Ok(()),
                }
            } else if initial == "=" {
                Vec::new()
            } else {
                match decode_b64(initial) {
                    Some(r) => r,
                    None => {
                        io.reply(&Reply::new(501, "5.5.2", "Invalid base64 in AUTH"));
                        return self.error();
                    }
                }
            };
            parse_plain(&response)
        } else if mechanism == smtp_proto::AUTH_LOGIN {
            let user = if initial.is_empty() {
                io.reply(&Reply::plain(334, "VXNlcm5hbWU6"));
                match self.auth_response(io).await? {
                    Some(r) => r,
                    None => return Ok(()),
                }
            } else {
                match decode_b64(initial) {
                    Some(r) => r,
                    None => {
                        io.reply(&Reply::new(501, "5.5.2", "Invalid base64 in AUTH"));
                        return self.error();
                    }
                }
            };
            io.reply(&Reply::plain(334, "UGFzc3dvcmQ6"));
            let pass = match self.auth_response(io).await? {
                Some(r) => r,
                None => return Ok(()),
            };
            match (String::from_utf8(user), String::from_utf8(pass)) {
                (Ok(u), Ok(p)) => Some((u, p)),
                _ => None,
            }
        } else {
            io.reply(&Reply::new(
                504,
                "5.5.4",
                "Unsupported mechanism; use PLAIN or LOGIN",
            ));
            return self.error();
        };
        let Some((user, password)) = credentials else {
            io.reply(&Reply::new(501, "5.5.2", "Malformed AUTH response"));
            return self.error();
        };
        match self
            .handler
            .authenticate(&self.info, &user, &password)
            .await
        {
            AuthOutcome::Success => {
                tracing::info!(session = self.info.id, peer = %self.info.peer, user = %user, "authenticated");
                self.info.auth_user = Some(user);
                io.reply(&Reply::new(235, "2.7.0", "Authentication successful"));
                Ok(())
            }
            AuthOutcome::Invalid => {
                tracing::warn!(session = self.info.id, peer = %self.info.peer, user = %clean(&user), "authentication failed");
                io.reply(&Reply::new(
                    535,
                    "5.7.8",
                    "Authentication credentials invalid",
                ));
                self.error()
            }
            AuthOutcome::Locked => Err(SessionEnd::Locked),
        }
    }

    /// Reads one line of an AUTH exchange; `None` when the client cancelled with `*`.
    async fn auth_response<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        io: &mut Io<S>,
    ) -> Result<Option<Vec<u8>>, SessionEnd> {
        let line = match self.read_line(io).await? {
            Line::Command(l) => l,
            Line::TooLong => {
                io.reply(&Reply::new(
                    500,
                    "5.5.6",
                    "Authentication exchange line too long",
                ));
                self.error()?;
                return Ok(None);
            }
        };
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text == "*" {
            io.reply(&Reply::new(501, "5.7.0", "Authentication cancelled"));
            return Ok(None);
        }
        match decode_b64(text) {
            Some(bytes) => Ok(Some(bytes)),
            None => {
                io.reply(&Reply::new(501, "5.5.2", "Invalid base64 in AUTH"));
                self.error()?;
                Ok(None)
            }
        }
    }
}

fn unreachable_envelope() -> Envelope {
    // ready_for_content() checked that a transaction exists; an empty envelope
    // is the harmless answer should that ever change.
    Envelope {
        mail_from: String::new(),
        recipients: Vec::new(),
        eight_bit: false,
        smtputf8: false,
        ret: None,
        envid: None,
    }
}

fn problem_reply(problem: DataProblem, size: usize, limits: &SessionLimits) -> Reply {
    match problem {
        DataProblem::TooLarge => Reply::new(
            552,
            "5.3.4",
            format!(
                "Message too big: {size} bytes or more, the limit is {} bytes",
                limits.max_message_size
            ),
        ),
        DataProblem::LineTooLong => Reply::new(
            554,
            "5.6.0",
            format!(
                "Message refused: a line is longer than {} bytes; wrap lines or use an encoding such as quoted-printable",
                limits.max_line_length
            ),
        ),
        DataProblem::HeaderTooLarge => Reply::new(
            552,
            "5.3.4",
            format!(
                "Message header too big: the limit is {} bytes",
                limits.max_header_size
            ),
        ),
        DataProblem::BareNewline => Reply::new(
            550,
            "5.5.2",
            "Message refused: bare <CR> or <LF> line ending; lines must end in <CR><LF> (RFC 5321 section 2.3.8)",
        ),
    }
}

/// Applies the DATA rules to BDAT content (no dot-stuffing there).
fn check_binary(message: &[u8], limits: DataLimits) -> Result<Vec<u8>, DataProblem> {
    let mut rx = DataReceiver::new(limits);
    rx.set_transparent();
    rx.feed(message);
    rx.feed(b"\r\n");
    let mut out = rx.finish()?;
    // The receiver closed the content with the CRLF we added; remove it again.
    out.truncate(out.len().saturating_sub(2));
    Ok(out)
}

/// Makes client-supplied text safe for logs and headers: no control characters,
/// bounded length.
pub fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(512).collect()
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()
}

/// RFC 4616: `[authzid] NUL authcid NUL passwd`.
fn parse_plain(bytes: &[u8]) -> Option<(String, String)> {
    let mut parts = bytes.split(|b| *b == 0);
    let _authz = parts.next()?;
    let user = parts.next()?;
    let pass = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    Some((
        String::from_utf8(user.to_vec()).ok()?,
        String::from_utf8(pass.to_vec()).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_needs_three_parts() {
        assert_eq!(
            parse_plain(b"\0alice\0secret"),
            Some(("alice".into(), "secret".into()))
        );
        assert_eq!(parse_plain(b"alice\0secret"), None);
        assert_eq!(parse_plain(b"a\0b\0c\0d"), None);
    }

    #[test]
    fn binary_content_follows_the_data_rules() {
        let limits = DataLimits {
            max_size: 1000,
            max_line_length: 100,
            max_header_size: 1000,
            bare_newlines: BareNewlinePolicy::Reject,
        };
        assert_eq!(
            check_binary(b"Subject: a\r\n\r\n.x\r\n", limits).unwrap(),
            b"Subject: a\r\n\r\n.x\r\n"
        );
        assert_eq!(
            check_binary(b"Subject: a\r\n\r\nx\n.\nMAIL FROM:<a@b>\r\n", limits),
            Err(DataProblem::BareNewline)
        );
    }
}
