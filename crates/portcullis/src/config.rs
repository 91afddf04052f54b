//! The configuration file: TOML, every key optional, every section documented in
//! `config/portcullis.example.toml`. Values are checked while they are parsed (an
//! address, a network, a destination, a duration each has its own type), so a bad
//! file fails with the TOML parser's message, which names the key, the line and the
//! column. Unknown keys are errors too: a misspelt `trusted_network` must not
//! silently leave the relay rules at their defaults.

use ipnet::IpNet;
use portcullis_quarantine::Role;
use portcullis_queue::route::Destination;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: Server,
    pub smtp: Smtp,
    pub http: Http,
    pub domains: Vec<Domain>,
    pub queue: QueueSection,
    pub dns: DnsSection,
    pub relay: Relay,
    pub auth: Auth,
    pub users: Vec<User>,
    /// `[scan]`: thresholds, weights, rules and the checks' settings.
    pub scan: portcullis_scan::ScanConfig,
    /// `[quarantine]`: how long held mail is kept.
    pub quarantine: portcullis_quarantine::QuarantineConfig,
    /// `[digest]`: mail to each recipient about their held mail.
    pub digest: portcullis_digest::DigestConfig,
    /// `[links]`: secure links (the link host and the rewriting's settings).
    pub links: portcullis_links::LinksConfig,
    /// `[senders]`: recognising sending servers' software and the staged
    /// enforcement against out-of-date ones.
    pub senders: portcullis_senders::SendersConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Our name in the banner, EHLO, Received headers and DSNs.
    pub hostname: String,
    pub data_dir: PathBuf,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            hostname: default_hostname(),
            data_dir: PathBuf::from("./portcullis-data"),
        }
    }
}

fn default_hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// How a message with a bare CR or LF is handled.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BareNewlines {
    #[default]
    Reject,
    Normalise,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    /// MX listeners (port 25 in production).
    pub listen: Vec<SocketAddr>,
    /// Submission with STARTTLS (port 587).
    pub submission: Vec<SocketAddr>,
    /// Submission with implicit TLS (port 465).
    pub submissions: Vec<SocketAddr>,
    /// Clients here may relay to any domain without AUTH.
    pub trusted_networks: Vec<IpNet>,
    pub tls_certificate: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub max_message_size: usize,
    pub max_recipients: usize,
    pub max_line_length: usize,
    pub max_header_size: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub command_timeout: ConfigDuration,
    pub data_timeout: ConfigDuration,
    pub max_errors: u32,
    pub bare_newlines: BareNewlines,
}

impl Default for Smtp {
    fn default() -> Self {
        let limits = portcullis_smtp::SessionLimits::default();
        let conns = portcullis_smtp::ConnectionLimits::default();
        Smtp {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2525))],
            submission: Vec::new(),
            submissions: Vec::new(),
            trusted_networks: vec![
                "127.0.0.0/8".parse().expect("literal"),
                "::1/128".parse().expect("literal"),
            ],
            tls_certificate: None,
            tls_key: None,
            max_message_size: limits.max_message_size,
            max_recipients: limits.max_recipients,
            max_line_length: limits.max_line_length,
            max_header_size: limits.max_header_size,
            max_connections: conns.max_connections,
            max_connections_per_ip: conns.max_per_ip,
            command_timeout: ConfigDuration(limits.command_timeout),
            data_timeout: ConfigDuration(limits.data_timeout),
            max_errors: limits.max_errors,
            bare_newlines: BareNewlines::Reject,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    pub listen: SocketAddr,
    /// Clients on loopback act as administrators without signing in (the
    /// command line on this host). Turn off when other local users exist.
    pub trust_loopback: bool,
    /// Mark the session cookie `Secure` (browsers then send it only over
    /// HTTPS, or to localhost and 127.0.0.1).
    pub secure_cookies: bool,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            listen: SocketAddr::from(([127, 0, 0, 1], 8025)),
            trust_loopback: true,
            secure_cookies: true,
        }
    }
}

/// An accepted domain and where its mail goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// A domain name, or `*` for every domain not listed.
    pub name: DomainName,
    /// `smtp://host:port`, `lmtp://host:port` or `maildir:/path`. Without it the
    /// domain's mail goes to a Maildir under the data folder.
    pub deliver_to: Option<ConfigDestination>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSection {
    /// First retry after a temporary failure; doubles each time up to `retry_max`.
    pub retry_initial: ConfigDuration,
    pub retry_max: ConfigDuration,
    /// Past this age a message is returned to its sender.
    pub max_age: ConfigDuration,
    pub max_deliveries: usize,
    pub per_destination: usize,
    /// TLS when delivering: `opportunistic`, `required` or `disabled`.
    pub delivery_tls: DeliveryTls,
    pub connect_timeout: ConfigDuration,
    /// The port MX hosts are reached on (as Postfix's `smtp_tcp_port`).
    pub mx_port: u16,
}

impl Default for QueueSection {
    fn default() -> Self {
        QueueSection {
            retry_initial: ConfigDuration(Duration::from_secs(300)),
            retry_max: ConfigDuration(Duration::from_secs(4000)),
            max_age: ConfigDuration(Duration::from_secs(5 * 86_400)),
            max_deliveries: 100,
            per_destination: 20,
            delivery_tls: DeliveryTls::Opportunistic,
            connect_timeout: ConfigDuration(Duration::from_secs(30)),
            mx_port: 25,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryTls {
    #[default]
    Opportunistic,
    Required,
    Disabled,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSection {
    /// Resolvers to ask (with port); empty means the system's.
    pub servers: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Relay {
    /// Deliver all outbound mail through this server instead of by MX lookup.
    pub smarthost: Option<ConfigDestination>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// Failed logins from one address before it is locked out.
    pub max_failures: u32,
    pub lockout: ConfigDuration,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            max_failures: 5,
            lockout: ConfigDuration(Duration::from_secs(900)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    /// An argon2 PHC string, as `portcullis hash-password` prints.
    pub password_hash: PasswordHash,
    /// In the console and the API: `user` (their own held mail), `helpdesk`
    /// or `admin`.
    #[serde(default = "default_role")]
    pub role: Role,
    /// The mail addresses whose held mail the user sees; by default the name,
    /// when it is an address.
    #[serde(default)]
    pub addresses: Vec<String>,
}

fn default_role() -> Role {
    Role::User
}

impl User {
    /// The account the console and the API know.
    pub fn account(&self) -> portcullis_web::Account {
        let addresses = if self.addresses.is_empty() && self.name.contains('@') {
            vec![self.name.clone()]
        } else {
            self.addresses.clone()
        };
        portcullis_web::Account {
            name: self.name.clone(),
            role: self.role,
            addresses,
        }
    }
}

/// A duration written `30s`, `5m`, `2h`, `5d` or `1w`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub struct ConfigDuration(pub Duration);

impl TryFrom<String> for ConfigDuration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        portcullis_web::parse_duration(&s)
            .filter(|d| !d.is_zero())
            .map(ConfigDuration)
            .ok_or_else(|| format!("`{s}` is not a duration; write it like 30s, 5m, 2h or 5d"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct ConfigDestination(pub Destination);

impl TryFrom<String> for ConfigDestination {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Destination::parse(&s).map(ConfigDestination)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
#[serde(try_from = "String")]
pub struct DomainName(pub String);

impl TryFrom<String> for DomainName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if d == "*" || (d.len() <= 253 && d.split('.').all(label_ok)) {
            Ok(DomainName(d))
        } else {
            Err(format!("`{s}` is not a domain name (or `*`)"))
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct PasswordHash(pub String);

impl TryFrom<String> for PasswordHash {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match argon2::PasswordHash::new(&s) {
            Ok(h) if h.algorithm.as_str().starts_with("argon2") => Ok(PasswordHash(s)),
            _ => Err("not an argon2 hash; make one with `portcullis hash-password`".into()),
        }
    }
}

impl Config {
    /// Reads and checks a file; `None` gives the embedded defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        config.check()?;
        Ok(config)
    }

    /// The scanner's settings with what other sections imply: the accepted
    /// domains are the organisation's own, and the host name is our authserv-id
    /// unless one is configured.
    pub fn scan_config(&self) -> portcullis_scan::ScanConfig {
        let mut scan = self.scan.clone();
        for d in &self.domains {
            if d.name.0 != "*" && !scan.own_domains.contains(&d.name.0) {
                scan.own_domains.push(d.name.0.clone());
            }
        }
        if scan.auth.authserv_id.is_none() {
            scan.auth.authserv_id = Some(self.server.hostname.clone());
        }
        scan
    }

    /// Rules that span keys.
    fn check(&self) -> Result<(), String> {
        portcullis_scan::Scanner::new(self.scan_config()).map_err(|e| format!("scan: {e}"))?;
        self.quarantine.validate()?;
        self.digest.validate()?;
        self.links.validate()?;
        self.senders.validate()?;
        if self.smtp.tls_certificate.is_some() != self.smtp.tls_key.is_some() {
            return Err("smtp.tls_certificate and smtp.tls_key must be given together".into());
        }
        if self.smtp.listen.is_empty()
            && self.smtp.submission.is_empty()
            && self.smtp.submissions.is_empty()
        {
            return Err("smtp.listen: at least one SMTP listener is needed".into());
        }
        let mut seen = std::collections::HashSet::new();
        for d in &self.domains {
            if !seen.insert(&d.name) {
                return Err(format!("domains: `{}` is listed twice", d.name.0));
            }
        }
        if self.smtp.max_line_length < 998 {
            return Err("smtp.max_line_length: must be at least 998 (RFC 5321, 4.5.3.1.6)".into());
        }
        Ok(())
    }

    /// The data folder's layout.
    /// Where held mail is kept.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.server.data_dir.join("quarantine")
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.server.data_dir.join("queue")
    }
    pub fn store_path(&self) -> PathBuf {
        self.server.data_dir.join("trace.sqlite")
    }
    pub fn maildir(&self) -> PathBuf {
        self.server.data_dir.join("maildir")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_embedded_promise() {
        let c = Config::parse("").expect("empty file is valid");
        assert_eq!(
            c.smtp.listen,
            vec!["127.0.0.1:2525".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            c.http.listen,
            "127.0.0.1:8025".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(c.server.data_dir, PathBuf::from("./portcullis-data"));
        assert_eq!(c.queue.max_age.0, Duration::from_secs(5 * 86_400));
        assert!(c.domains.is_empty());
    }

    #[test]
    fn the_issue_example_parses() {
        let c = Config::parse(
            r#"
[server]
hostname = "gw.example.test"
data_dir = "/var/lib/portcullis"
[smtp]
listen = ["0.0.0.0:25"]
trusted_networks = ["10.0.0.0/8"]
[http]
listen = "127.0.0.1:8025"
[[domains]]
name = "Example.TEST"
deliver_to = "smtp://10.0.0.5:25"
"#,
        )
        .expect("valid");
        assert_eq!(c.server.hostname, "gw.example.test");
        assert_eq!(c.domains[0].name.0, "example.test");
        assert!(matches!(
            c.domains[0].deliver_to,
            Some(ConfigDestination(Destination::Server { port: 25, .. }))
        ));
        assert_eq!(
            c.smtp.trusted_networks,
            vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]
        );
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = Config::parse(
            "[smtp]\nlisten = [\"0.0.0.0:25\"]\ntrusted_networks = [\"10.0.0.0/33\"]\n",
        )
        .unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("trusted_networks"), "{e}");

        let e = Config::parse("[[domains]]\nname = \"example.test\"\ndeliver_to = \"ftp://x\"\n")
            .unwrap_err();
        assert!(e.contains("line 3") && e.contains("deliver_to"), "{e}");

        let e = Config::parse("[smtp]\ntrusted_network = []\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("trusted_network"), "{e}");

        let e = Config::parse("[queue]\nmax_age = \"five days\"\n").unwrap_err();
        assert!(e.contains("max_age") && e.contains("line 2"), "{e}");

        let e = Config::parse("[[users]]\nname = \"a\"\npassword_hash = \"secret\"\n").unwrap_err();
        assert!(e.contains("password_hash") && e.contains("argon2"), "{e}");
    }

    #[test]
    fn the_documented_example_is_valid() {
        let c = Config::parse(include_str!("../../../config/portcullis.example.toml"))
            .expect("example parses");
        assert_eq!(c.domains.len(), 1);
        assert_eq!(c.queue.retry_max.0, Duration::from_secs(4000));
    }

    #[test]
    fn cross_key_rules() {
        // A scan rule that does not compile is a configuration error at start.
        let e = Config::parse(
            "[[scan.rules]]\nname = \"BAD\"\npart = \"body\"\npattern = \"(\"\nscore = 1.0\n",
        )
        .unwrap_err();
        assert!(e.contains("scan rule BAD"), "{e}");
        assert!(Config::parse("[smtp]\ntls_key = \"/k\"\n")
            .unwrap_err()
            .contains("tls_certificate"));
        assert!(Config::parse("[smtp]\nlisten = []\n")
            .unwrap_err()
            .contains("listener"));
        assert!(
            Config::parse("[[domains]]\nname = \"a.test\"\n[[domains]]\nname = \"A.test\"\n")
                .unwrap_err()
                .contains("twice")
        );
    }
}
