//! What is known of a message's arrival besides its bytes. The gateway fills every
//! field; a message scanned from a file has none, and checks that need a field
//! skip themselves rather than guess.

use std::net::IpAddr;

/// The SMTP envelope and session facts for one message.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    pub client_ip: Option<IpAddr>,
    /// The EHLO/HELO name the client gave.
    pub helo: Option<String>,
    /// MAIL FROM; `Some("")` is the null sender, `None` means unknown (a file).
    pub mail_from: Option<String>,
    pub recipients: Vec<String>,
    /// TLS version and cipher when the session was encrypted.
    pub tls: Option<String>,
    /// The submission user when the client logged in.
    pub auth_user: Option<String>,
    /// The client is in the gateway's trusted networks (the organisation's own
    /// servers): checks aimed at outside senders skip it.
    pub trusted: bool,
    /// When the message was received, in seconds since the Unix epoch. `None` for a
    /// file: the checks then use the newest Received header's date.
    pub received_at: Option<i64>,
}
