//! portcullis-smtp: the SMTP protocol, and nothing else.
//!
//! It runs inbound server sessions (ESMTP on port 25, submission on 587 with STARTTLS
//! and 465 with implicit TLS) and the client that delivers queued mail to the next
//! hop over SMTP or LMTP. Each received message is handed to a [`Handler`]; this crate
//! knows nothing of scanning, queues or policy.
//!
//! Standards: RFC 5321 (SMTP), RFC 1869/5321 EHLO, RFC 1870 (SIZE), RFC 6152
//! (8BITMIME), RFC 6531 (SMTPUTF8), RFC 2920 (PIPELINING), RFC 2034 and RFC 3463
//! (enhanced status codes), RFC 3207 (STARTTLS), RFC 8314 (implicit TLS), RFC 4954
//! (AUTH) with RFC 4616 (PLAIN) and the LOGIN mechanism, RFC 3461 (DSN parameters),
//! RFC 3030 (CHUNKING/BDAT), RFC 2033 (LMTP, client side).
//!
//! Security posture: every byte from the network is hostile. Command lines are
//! bounded ([`SessionLimits::max_command_line`]); DATA and BDAT are bounded by size,
//! line length and header size while still read to their real end so the session
//! never falls out of step; only `<CR><LF>.<CR><LF>` ends DATA (see [`data`]), so
//! SMTP smuggling cannot start a second message; bytes pipelined behind STARTTLS are
//! discarded (CVE-2011-0411); AUTH is offered and accepted only under TLS; every
//! read has a timeout; repeated protocol errors end the session. Nothing read from
//! the network is unwrapped.

pub mod client;
pub mod data;
mod metrics;
pub mod reply;
pub mod server;
pub mod session;

pub use client::{ClientConfig, ClientError, DeliveryOutcome, Protocol, TlsMode};
pub use data::{BareNewlinePolicy, DataLimits, DataProblem};
pub use reply::Reply;
pub use server::{serve, ConnectionLimits, Listener, ListenerKind};
pub use session::{Envelope, Handler, Recipient, SessionInfo, SessionLimits, TlsInfo};
