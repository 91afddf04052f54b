//! Where each recipient's mail goes next: the organisation's own server for an
//! accepted domain, a Maildir (the embedded default), or the internet (MX lookup,
//! RFC 5321 section 5.1) or a smarthost for outbound mail.

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol as DnsProtocol;
use hickory_resolver::TokioResolver;
use portcullis_smtp::Protocol;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// The next hop for a recipient.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// A named server (the internal mail server, a smarthost): `smtp://` or `lmtp://`.
    Server {
        host: String,
        port: u16,
        protocol: Protocol,
    },
    /// A Maildir tree: one Maildir per recipient address below this folder.
    Maildir(PathBuf),
    /// The recipient domain's MX hosts.
    Mx { domain: String },
}

impl Destination {
    /// Parses `smtp://host[:port]`, `lmtp://host[:port]` or `maildir:PATH`.
    pub fn parse(s: &str) -> Result<Destination, String> {
        if let Some(path) = s.strip_prefix("maildir:") {
            let path = path.trim_start_matches("//");
            if path.is_empty() {
                return Err("maildir: needs a folder, e.g. maildir:/var/mail/portcullis".into());
            }
            return Ok(Destination::Maildir(PathBuf::from(path)));
        }
        let (protocol, rest, default_port) = if let Some(r) = s.strip_prefix("smtp://") {
            (Protocol::Smtp, r, 25)
        } else if let Some(r) = s.strip_prefix("lmtp://") {
            (Protocol::Lmtp, r, 24)
        } else {
            return Err(format!(
                "`{s}` is not a destination: use smtp://host[:port], lmtp://host[:port] or maildir:/path"
            ));
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() {
            return Err(format!("`{s}` names no host"));
        }
        let (host, port) = if let Some(stripped) = rest.strip_prefix('[') {
            // [IPv6]:port
            let end = stripped
                .find(']')
                .ok_or_else(|| format!("`{s}`: unclosed [ in address"))?;
            let host = &stripped[..end];
            let port = match stripped[end + 1..].strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("`{s}`: bad port `{p}`"))?,
                None => default_port,
            };
            (host.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("`{s}`: bad port `{p}`"))?,
                ),
                None => (rest.to_string(), default_port),
            }
        };
        Ok(Destination::Server {
            host,
            port,
            protocol,
        })
    }

    /// A short name for logs, metrics and per-destination limits.
    pub fn key(&self) -> String {
        match self {
            Destination::Server {
                host,
                port,
                protocol,
            } => format!(
                "{}://{host}:{port}",
                if *protocol == Protocol::Lmtp {
                    "lmtp"
                } else {
                    "smtp"
                }
            ),
            Destination::Maildir(p) => format!("maildir:{}", p.display()),
            Destination::Mx { domain } => format!("mx:{domain}"),
        }
    }
}

/// Recipient domain to destination.
#[derive(Debug, Clone)]
pub struct Router {
    pub domains: HashMap<String, Destination>,
    /// For `*`: every domain not listed (the embedded default uses a Maildir).
    pub wildcard: Option<Destination>,
    /// Everything else (outbound mail): MX lookup or a smarthost.
    pub outbound: Option<Destination>,
}

impl Router {
    pub fn route(&self, rcpt: &str) -> Destination {
        let domain = domain_of(rcpt);
        if let Some(d) = self.domains.get(&domain) {
            return d.clone();
        }
        if let Some(d) = &self.wildcard {
            return d.clone();
        }
        match &self.outbound {
            Some(d) => d.clone(),
            None => Destination::Mx { domain },
        }
    }
}

/// The lower-cased domain of an address (`postmaster` alone has none).
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default()
}

/// A host to try, in order.
#[derive(Debug, Clone)]
pub struct Hop {
    pub name: String,
    pub addr: SocketAddr,
}

/// Why no hop could be found.
#[derive(Debug, Clone)]
pub enum ResolveFailure {
    /// Retry later (SERVFAIL, timeout).
    Temporary(String),
    /// Bounce (NXDOMAIN, null MX).
    Permanent(String),
}

/// DNS for delivery. The servers are configurable so tests use a local one.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// `servers` empty: the system's resolv.conf.
    pub fn new(servers: &[SocketAddr]) -> Result<Dns, String> {
        let mut opts = ResolverOpts::default();
        opts.timeout = std::time::Duration::from_secs(5);
        opts.attempts = 2;
        let resolver = if servers.is_empty() {
            match TokioResolver::builder_tokio() {
                Ok(b) => b.with_options(opts).build(),
                Err(e) => {
                    return Err(format!(
                        "cannot read the system resolver configuration: {e}"
                    ))
                }
            }
        } else {
            let mut config = ResolverConfig::new();
            for s in servers {
                config.add_name_server(NameServerConfig::new(*s, DnsProtocol::Udp));
                config.add_name_server(NameServerConfig::new(*s, DnsProtocol::Tcp));
            }
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(opts)
                .build()
        };
        Ok(Dns { resolver })
    }

    /// Addresses of a host name (or the literal itself).
    pub async fn addresses(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, ResolveFailure> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        match self
            .resolver
            .lookup_ip(format!("{}.", host.trim_end_matches('.')))
            .await
        {
            Ok(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(ip, port)).collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Err(
                ResolveFailure::Permanent(format!("host {host} not found in DNS")),
            ),
            Err(e) => Err(ResolveFailure::Temporary(format!(
                "DNS lookup for {host} failed: {e}"
            ))),
        }
    }

    /// The hops for a domain by MX preference (RFC 5321 5.1), with the implicit MX
    /// (the domain's own address) when it has no MX, and RFC 7505 null MX honoured.
    /// `port` is 25 except where a test or an unusual network says otherwise.
    pub async fn mx_hops(&self, domain: &str, port: u16) -> Result<Vec<Hop>, ResolveFailure> {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        let mut names: Vec<(u16, String)> = match self.resolver.mx_lookup(fqdn).await {
            Ok(mx) => mx
                .iter()
                .map(|r| {
                    (
                        r.preference(),
                        r.exchange().to_utf8().trim_end_matches('.').to_string(),
                    )
                })
                .collect(),
            Err(e) if e.is_nx_domain() => {
                return Err(ResolveFailure::Permanent(format!(
                    "domain {domain} does not exist"
                )))
            }
            Err(e) if e.is_no_records_found() => vec![(0, domain.to_string())],
            Err(e) => {
                return Err(ResolveFailure::Temporary(format!(
                    "MX lookup for {domain} failed: {e}"
                )))
            }
        };
        if names.len() == 1 && (names[0].1.is_empty() || names[0].1 == ".") {
            return Err(ResolveFailure::Permanent(format!(
                "domain {domain} does not accept mail (null MX, RFC 7505)"
            )));
        }
        names.sort_by_key(|(p, _)| *p);
        let mut hops = Vec::new();
        let mut last_error = None;
        for (_, name) in names {
            match self.addresses(&name, port).await {
                Ok(addrs) => hops.extend(addrs.into_iter().map(|addr| Hop {
                    name: name.clone(),
                    addr,
                })),
                Err(e) => last_error = Some(e),
            }
        }
        if hops.is_empty() {
            return Err(match last_error {
                Some(ResolveFailure::Permanent(m)) => ResolveFailure::Permanent(m),
                Some(ResolveFailure::Temporary(m)) => ResolveFailure::Temporary(m),
                None => ResolveFailure::Temporary(format!("no usable MX host for {domain}")),
            });
        }
        Ok(hops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        assert_eq!(
            Destination::parse("smtp://10.0.0.5:25").unwrap(),
            Destination::Server {
                host: "10.0.0.5".into(),
                port: 25,
                protocol: Protocol::Smtp
            }
        );
        assert_eq!(
            Destination::parse("lmtp://[::1]").unwrap(),
            Destination::Server {
                host: "::1".into(),
                port: 24,
                protocol: Protocol::Lmtp
            }
        );
        assert!(Destination::parse("http://x").is_err());
        assert!(Destination::parse("smtp://x:notaport").is_err());
        assert_eq!(
            Destination::parse("maildir:/tmp/m").unwrap(),
            Destination::Maildir("/tmp/m".into())
        );
    }

    #[test]
    fn routing_prefers_exact_domain_then_wildcard_then_outbound() {
        let mut r = Router {
            domains: HashMap::new(),
            wildcard: None,
            outbound: None,
        };
        r.domains.insert(
            "example.test".into(),
            Destination::parse("smtp://10.0.0.5").unwrap(),
        );
        assert_eq!(r.route("a@EXAMPLE.test").key(), "smtp://10.0.0.5:25");
        assert_eq!(r.route("a@other.test").key(), "mx:other.test");
        r.wildcard = Some(Destination::Maildir("/m".into()));
        assert_eq!(r.route("a@other.test").key(), "maildir:/m");
    }
}
