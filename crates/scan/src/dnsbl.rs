//! DNS lists (DNSxL, RFC 5782): the reputation of the connecting server's
//! address and of the domains a message names, asked of lists such as
//! Spamhaus ZEN (addresses) and DBL (domains) or an allow list such as DNSWL,
//! through the configured DNS servers. Each list the admin configures under
//! `[[scan.dnsbl.lists]]` adds its own symbol with its own weight (negative for
//! an allow list) when it lists what was asked.
//!
//! A query for the address 192.0.2.1 in `zen.example` is the A record of
//! `1.2.0.192.zen.example` (IPv6: its 32 nibbles reversed); for a domain,
//! `domain.zen.example`. An answer in 127.0.0.0/8 means listed (RFC 5782
//! section 2.3), narrowed to the codes the admin lists when it does. Lists
//! answer errors in the same form, and those must never count as listings:
//! 127.0.0.1 (RFC 5782 section 5 reserves it; URIBL answers it to refused
//! queries), 127.0.0.255 (DNSWL: over the query limit), 127.255.255.0/24
//! (Spamhaus: queries through a public resolver, or over the free quota) and
//! 127.0.1.255 (Spamhaus DBL). Answers outside
//! 127.0.0.0/8 come from a resolver that rewrites NXDOMAIN. Each of these is
//! reported once as `DNSBL_ERROR` (weight 0) naming the list and the answer,
//! so that an admin sees a list that stopped working instead of quietly
//! losing it.
//!
//! Standards: RFC 5782 (DNSxL query and answer forms), RFC 3596 (the IPv6
//! nibble form).
//!
//! Hostile input: the domains come from the message, so at most
//! `max_domains` distinct registrable domains are asked (in the order the
//! message names them), each a name the URL parser accepted; all queries of a
//! message run at once and share one time budget (`timeout_ms`), after which
//! they are abandoned and `DNSBL_TIMEOUT` (weight 0) is recorded. A slow or
//! hostile list can delay a message by that budget, never fail it.

use crate::{Category, Envelope, Finding};
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol as DnsProtocol;
use hickory_resolver::TokioResolver;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `[scan.dnsbl]`: the lists asked and how long a message may wait for them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsblConfig {
    /// The lists; none by default (each list has its own terms of use).
    pub lists: Vec<DnsList>,
    /// How long all the queries of one message may take together.
    pub timeout_ms: u64,
    /// Distinct domains of a message asked of each domain list.
    pub max_domains: usize,
}

impl Default for DnsblConfig {
    fn default() -> Self {
        DnsblConfig {
            lists: Vec::new(),
            timeout_ms: 2000,
            max_domains: 20,
        }
    }
}

/// One `[[scan.dnsbl.lists]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsList {
    /// The list's DNS zone, e.g. "zen.spamhaus.org".
    pub zone: String,
    /// What is looked up in it.
    pub kind: ListKind,
    /// The symbol it adds: `RCVD_IN_…` for address lists, `URIBL_…` for
    /// domain lists (so a re-scan of held mail keeps what the lists said on
    /// arrival).
    pub symbol: String,
    /// Its weight; negative for an allow list.
    pub score: f64,
    /// Only these answers count (e.g. Spamhaus ZEN's 127.0.0.2 to .7 for its
    /// SBL and XBL parts); empty: any answer that is not an error.
    #[serde(default)]
    pub codes: Vec<Ipv4Addr>,
}

/// What a list is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    /// The address of the client that connected to the gateway.
    Ip,
    /// The registrable domains of the From and MAIL FROM addresses and of
    /// every link in the message.
    Domain,
}

/// Why a `[scan.dnsbl]` section was refused.
#[derive(Debug, thiserror::Error)]
pub enum DnsblError {
    #[error("dnsbl list {zone:?}: {reason}")]
    BadList { zone: String, reason: String },
    #[error("the DNS resolver for dnsbl lists: {0}")]
    Resolver(String),
}

impl DnsblConfig {
    /// Refuses zones that are not host names and symbols without the prefix
    /// of their kind.
    pub fn validate(&self) -> Result<(), DnsblError> {
        for list in &self.lists {
            let bad = |reason: &str| DnsblError::BadList {
                zone: list.zone.clone(),
                reason: reason.to_string(),
            };
            let zone = list.zone.trim_end_matches('.');
            let host_name = zone.contains('.')
                && zone.len() <= 200
                && zone.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !host_name {
                return Err(bad("the zone is not a DNS name"));
            }
            let prefix = match list.kind {
                ListKind::Ip => "RCVD_IN_",
                ListKind::Domain => "URIBL_",
            };
            let valid_name = list.symbol.len() > prefix.len()
                && list.symbol.starts_with(prefix)
                && list
                    .symbol
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !valid_name {
                return Err(bad(&format!(
                    "the symbol of a {} list starts with {prefix} and has only upper case letters, digits and _",
                    match list.kind {
                        ListKind::Ip => "kind = \"ip\"",
                        ListKind::Domain => "kind = \"domain\"",
                    }
                )));
            }
            if !list.score.is_finite() {
                return Err(bad("the score is not a number"));
            }
            if list.codes.iter().any(|c| c.octets()[0] != 127) {
                return Err(bad("answers that count are in 127.0.0.0/8"));
            }
        }
        Ok(())
    }
}

/// How long an answer is kept. Most answers are NXDOMAIN, which a resolver
/// keeps only as long as the list's SOA says, often not at all: without this
/// every message from the same server asks again. A listing made in the last
/// minute is noticed up to a minute late.
const KEEP: Duration = Duration::from_secs(60);
/// Answers kept at most; past that the store is emptied and fills again.
const KEPT_MAX: usize = 50_000;

/// The lists, the resolver that asks them and the answers of the last minute.
pub(crate) struct Dnsbl {
    resolver: TokioResolver,
    config: DnsblConfig,
    recent: Mutex<HashMap<String, (Instant, Vec<Ipv4Addr>)>>,
}

impl std::fmt::Debug for Dnsbl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dnsbl")
            .field("lists", &self.config.lists.len())
            .finish()
    }
}

/// The A record name for `ip` in `zone` (an IPv4 client seen through an
/// IPv6 socket is asked as IPv4).
pub(crate) fn ip_query(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}.")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(64 + zone.len() + 1);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name.push_str(zone);
            name.push('.');
            name
        }
    }
}

/// What one list's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Listed(Ipv4Addr),
    /// The list (or the resolver) answered with one of its error forms.
    Error(Ipv4Addr),
    NotListed,
}

/// Reads the A records of a query: listed by the first answer that counts,
/// an error when an error form came back and nothing counted.
pub(crate) fn classify(answers: &[Ipv4Addr], codes: &[Ipv4Addr]) -> Answer {
    let mut error = None;
    for &a in answers {
        let o = a.octets();
        let is_error = o[0] != 127
            || a == Ipv4Addr::new(127, 0, 0, 1)
            || a == Ipv4Addr::new(127, 0, 0, 255)
            || (o[1] == 255 && o[2] == 255)
            || (o[1] == 0 && o[2] == 1 && o[3] == 255);
        if is_error {
            error.get_or_insert(a);
        } else if codes.is_empty() || codes.contains(&a) {
            return Answer::Listed(a);
        }
    }
    error.map_or(Answer::NotListed, Answer::Error)
}

impl Dnsbl {
    /// Asks these DNS servers, or the system's when the list is empty. `None`
    /// when no list is configured.
    pub fn new(servers: &[SocketAddr], config: &DnsblConfig) -> Result<Option<Dnsbl>, DnsblError> {
        config.validate()?;
        if config.lists.is_empty() {
            return Ok(None);
        }
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_millis(config.timeout_ms.max(100));
        opts.attempts = 1;
        let resolver = if servers.is_empty() {
            TokioResolver::builder_tokio()
                .map_err(|e| DnsblError::Resolver(e.to_string()))?
                .with_options(opts)
                .build()
        } else {
            let mut rc = ResolverConfig::new();
            for s in servers {
                rc.add_name_server(NameServerConfig::new(*s, DnsProtocol::Udp));
                rc.add_name_server(NameServerConfig::new(*s, DnsProtocol::Tcp));
            }
            TokioResolver::builder_with_config(rc, TokioConnectionProvider::default())
                .with_options(opts)
                .build()
        };
        Ok(Some(Dnsbl {
            resolver,
            config: config.clone(),
            recent: Mutex::new(HashMap::new()),
        }))
    }

    /// Asks every list about the client and `domains` (registrable, lower
    /// case, at most `max_domains` are used) at once, within the time budget.
    pub async fn check(&self, envelope: &Envelope, domains: &[String]) -> Vec<Finding> {
        let lists = &self.config.lists;
        let mut results = Vec::new();
        let mut to_ask = Vec::new();
        {
            let now = Instant::now();
            let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            for (n, list) in lists.iter().enumerate() {
                let zone = list.zone.trim_end_matches('.');
                let names: Vec<(String, String)> = match list.kind {
                    ListKind::Ip => envelope
                        .client_ip
                        .map(|ip| ip.to_canonical())
                        .map(|ip| (ip.to_string(), ip_query(ip, zone)))
                        .into_iter()
                        .collect(),
                    ListKind::Domain => domains
                        .iter()
                        .take(self.config.max_domains)
                        .map(|d| (d.clone(), format!("{d}.{zone}.")))
                        .collect(),
                };
                for (asked, name) in names {
                    match recent.get(&name) {
                        Some((at, answers)) if now.duration_since(*at) < KEEP => {
                            results.push((n, asked, Some(answers.clone())));
                        }
                        _ => to_ask.push((n, asked, name)),
                    }
                }
            }
        }

        let mut queries = tokio::task::JoinSet::new();
        let mut outstanding = vec![0usize; lists.len()];
        for (n, asked, name) in to_ask {
            outstanding[n] += 1;
            let resolver = self.resolver.clone();
            queries.spawn(async move {
                // NXDOMAIN is the usual "not listed"; other failures
                // (timeout, SERVFAIL, REFUSED) are no answer at all.
                let answers: Option<Vec<Ipv4Addr>> = match resolver.ipv4_lookup(&name).await {
                    Ok(lookup) => Some(lookup.iter().map(|a| a.0).collect()),
                    Err(e) if e.is_nx_domain() || e.is_no_records_found() => Some(Vec::new()),
                    Err(_) => None,
                };
                (n, asked, name, answers)
            });
        }
        let mut fresh = Vec::new();
        let budget = Duration::from_millis(self.config.timeout_ms);
        let _ = tokio::time::timeout(budget, async {
            while let Some(done) = queries.join_next().await {
                let Ok((n, asked, name, answers)) = done else {
                    continue;
                };
                if let Some(a) = &answers {
                    outstanding[n] -= 1;
                    fresh.push((name, a.clone()));
                }
                results.push((n, asked, answers));
            }
        })
        .await;
        queries.abort_all();
        if !fresh.is_empty() {
            let now = Instant::now();
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() + fresh.len() > KEPT_MAX {
                recent.clear();
            }
            for (name, answers) in fresh {
                recent.insert(name, (now, answers));
            }
        }
        // The same order whatever the network's: by list, then by what was asked.
        results.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));

        let mut out = Vec::new();
        let mut errors = BTreeSet::new();
        let mut fired = vec![false; self.config.lists.len()];
        for (n, asked, answers) in &results {
            let list = &self.config.lists[*n];
            let Some(answers) = answers else { continue };
            match classify(answers, &list.codes) {
                Answer::Listed(code) if !fired[*n] => {
                    fired[*n] = true;
                    out.push(Finding {
                        name: list.symbol.clone().into(),
                        default_score: list.score,
                        category: if list.score < 0.0 {
                            Category::Clean
                        } else {
                            Category::Spam
                        },
                        detail: format!("{} lists {asked} ({code})", list.zone),
                    });
                }
                Answer::Error(code) => {
                    errors.insert(format!("{} answered {code}", list.zone));
                }
                _ => {}
            }
        }
        if !errors.is_empty() {
            out.push(Finding::new(
                "DNSBL_ERROR",
                0.0,
                Category::Clean,
                format!(
                    "not counted, an error form rather than a listing (refused query, public resolver or quota?): {}",
                    errors.into_iter().collect::<Vec<_>>().join("; ")
                ),
            ));
        }
        // A list is unanswered when any of its queries failed or is still out.
        let zones: BTreeSet<&str> = (0..lists.len())
            .filter(|&n| outstanding[n] > 0)
            .map(|n| lists[n].zone.as_str())
            .collect();
        if !zones.is_empty() {
            out.push(Finding::new(
                "DNSBL_TIMEOUT",
                0.0,
                Category::Clean,
                format!(
                    "not counted, no answer within {} ms or a failed query: {}",
                    self.config.timeout_ms,
                    zones.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        out
    }
}

/// The registrable domains a message names, in order, without repeats: the
/// MAIL FROM and From domains, then every link's host.
pub(crate) fn message_domains(raw: &[u8], envelope: &Envelope, max: usize) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut add = |host: &str| {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() || host.parse::<IpAddr>().is_ok() || !host.contains('.') {
            return;
        }
        let domain = psl::domain_str(&host).unwrap_or(&host).to_string();
        if out.len() < max && seen.insert(domain.clone()) {
            out.push(domain);
        }
    };
    if let Some((_, d)) = envelope
        .mail_from
        .as_deref()
        .and_then(|m| m.rsplit_once('@'))
    {
        add(d);
    }
    let parsed = mail_parser::MessageParser::default().parse(raw);
    if let Some(from) = parsed
        .as_ref()
        .and_then(|m| m.from())
        .and_then(|f| f.first())
        .and_then(|a| a.address())
    {
        if let Some((_, d)) = from.rsplit_once('@') {
            add(d);
        }
    }
    for u in crate::checks::links::normalised_urls(parsed.as_ref(), raw) {
        if let Ok(url) = url::Url::parse(&u) {
            if let Some(url::Host::Domain(h)) = url.host() {
                add(h);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_asked_reversed() {
        assert_eq!(
            ip_query("192.0.2.1".parse().unwrap(), "zen.example."),
            "1.2.0.192.zen.example."
        );
        assert_eq!(
            ip_query("::ffff:192.0.2.1".parse().unwrap(), "zen.example"),
            "1.2.0.192.zen.example."
        );
        // RFC 5782 section 2.4's example.
        assert_eq!(
            ip_query("2001:db8:1:2:3:4:567:89ab".parse().unwrap(), "ugly.example"),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example."
        );
    }

    #[test]
    fn error_forms_never_count_as_listings() {
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            classify(&[a("127.0.0.2")], &[]),
            Answer::Listed(a("127.0.0.2"))
        );
        assert_eq!(classify(&[], &[]), Answer::NotListed);
        for error in [
            "127.255.255.254",
            "127.255.255.252",
            "127.0.0.1",
            "127.0.0.255",
            "127.0.1.255",
            "10.0.0.1",
        ] {
            assert_eq!(
                classify(&[a(error)], &[]),
                Answer::Error(a(error)),
                "{error}"
            );
        }
        // An error beside a real listing: the listing counts.
        assert_eq!(
            classify(&[a("127.255.255.254"), a("127.0.0.4")], &[]),
            Answer::Listed(a("127.0.0.4"))
        );
        // Codes narrow what counts; an answer outside them is not a listing.
        assert_eq!(
            classify(&[a("127.0.0.11")], &[a("127.0.0.2")]),
            Answer::NotListed
        );
        assert_eq!(
            classify(&[a("127.0.0.2")], &[a("127.0.0.2")]),
            Answer::Listed(a("127.0.0.2"))
        );
    }

    fn list(zone: &str, kind: ListKind, symbol: &str) -> DnsList {
        DnsList {
            zone: zone.into(),
            kind,
            symbol: symbol.into(),
            score: 5.0,
            codes: Vec::new(),
        }
    }

    #[test]
    fn configuration_mistakes_are_refused() {
        let ok = DnsblConfig {
            lists: vec![
                list("zen.spamhaus.org", ListKind::Ip, "RCVD_IN_ZEN"),
                list("dbl.spamhaus.org.", ListKind::Domain, "URIBL_DBL"),
            ],
            ..DnsblConfig::default()
        };
        assert!(ok.validate().is_ok());
        for (l, why) in [
            (list("zen", ListKind::Ip, "RCVD_IN_ZEN"), "not a DNS name"),
            (
                list("zen..org", ListKind::Ip, "RCVD_IN_ZEN"),
                "not a DNS name",
            ),
            (list("zen.spamhaus.org", ListKind::Ip, "ZEN"), "RCVD_IN_"),
            (
                list("dbl.spamhaus.org", ListKind::Domain, "RCVD_IN_DBL"),
                "URIBL_",
            ),
            (
                list("dbl.spamhaus.org", ListKind::Domain, "URIBL_dbl"),
                "URIBL_",
            ),
        ] {
            let config = DnsblConfig {
                lists: vec![l],
                ..DnsblConfig::default()
            };
            let e = config.validate().expect_err(why).to_string();
            assert!(e.contains(why), "{e}");
        }
        let mut wrong_code = list("zen.spamhaus.org", ListKind::Ip, "RCVD_IN_ZEN");
        wrong_code.codes = vec![Ipv4Addr::new(10, 0, 0, 2)];
        let config = DnsblConfig {
            lists: vec![wrong_code],
            ..DnsblConfig::default()
        };
        assert!(config.validate().is_err());
    }

    #[tokio::test]
    async fn a_list_that_never_answers_costs_the_budget_and_is_recorded() {
        // A DNS server that reads queries and never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let config = DnsblConfig {
            lists: vec![list("zen.spamhaus.org", ListKind::Ip, "RCVD_IN_ZEN")],
            timeout_ms: 300,
            ..DnsblConfig::default()
        };
        let dnsbl = Dnsbl::new(&[silent.local_addr().expect("addr")], &config)
            .expect("resolver")
            .expect("a list is configured");
        let envelope = Envelope {
            client_ip: Some("192.0.2.1".parse().unwrap()),
            ..Envelope::default()
        };
        let found = dnsbl.check(&envelope, &[]).await;
        let names: Vec<&str> = found.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(names, ["DNSBL_TIMEOUT"]);
        assert_eq!(found[0].default_score, 0.0);
    }

    #[tokio::test]
    async fn an_answer_is_kept_for_the_next_message() {
        use hickory_resolver::proto::op::{Message, ResponseCode};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        // A DNS server that answers NXDOMAIN to everything and counts questions.
        let server = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = server.local_addr().expect("addr");
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((len, from)) = server.recv_from(&mut buf) {
                let Ok(query) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut reply =
                    Message::error_msg(query.id(), query.op_code(), ResponseCode::NXDomain);
                reply.add_queries(query.queries().to_vec());
                if let Ok(bytes) = reply.to_vec() {
                    let _ = server.send_to(&bytes, from);
                }
            }
        });
        let config = DnsblConfig {
            lists: vec![list("zen.spamhaus.org", ListKind::Ip, "RCVD_IN_ZEN")],
            ..DnsblConfig::default()
        };
        let dnsbl = Dnsbl::new(&[addr], &config)
            .expect("resolver")
            .expect("a list is configured");
        let envelope = Envelope {
            client_ip: Some("192.0.2.1".parse().unwrap()),
            ..Envelope::default()
        };
        for _ in 0..3 {
            assert!(dnsbl.check(&envelope, &[]).await.is_empty());
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn no_list_means_no_resolver() {
        assert!(Dnsbl::new(&[], &DnsblConfig::default())
            .expect("valid")
            .is_none());
    }

    #[test]
    fn a_message_names_its_sender_and_link_domains_once_each() {
        let raw = b"From: News <news@mail.shop.example>\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n\
            <a href=\"https://www.shop.example/a\">a</a> <a href=\"http://track.evil.example/b\">b</a>\r\n\
            <a href=\"http://192.0.2.7/c\">c</a> https://cdn.evil.example/d\r\n";
        let envelope = Envelope {
            mail_from: Some("bounce@esp.example".into()),
            ..Envelope::default()
        };
        assert_eq!(
            message_domains(raw, &envelope, 20),
            ["esp.example", "shop.example", "evil.example"]
        );
        assert_eq!(
            message_domains(raw, &envelope, 2),
            ["esp.example", "shop.example"]
        );
    }
}
