//! Link checks: every URL of a message is found ([`extract`]), normalised the way
//! a browser would read it ([`normalise`]) and judged: where it really goes
//! against what the reader is shown, against the organisation's own domains and
//! protected brands ([`lookalike`]), and against the admin's block and allow
//! lists (`[scan.links]`). [`message_links`] gives the same URLs to the rest of
//! the product (secure-link rewriting needs exactly this extraction).
//!
//! URLs are taken from every text part, HTML part and text or HTML attachment,
//! and from messages attached as `message/rfc822` (up to [`MAX_NESTING`] deep).
//!
//! Symbols (name, default score, category, what fires it). Each fires at most
//! once per message; its detail names the first piece of evidence and how many
//! more there were.
//!
//! | Symbol | Score | Category | Fires when |
//! | --- | --- | --- | --- |
//! | `LINK_BLOCKLISTED` | 10.0 | Phishing | a URL's host is, or is under, a domain of `[scan.links] block` |
//! | `LINK_TEXT_BRAND_MISMATCH` | 4.0 | Phishing | the visible text of a link is a URL or domain of an own domain or protected brand, and the link goes to another registrable domain (and does not carry a URL of the shown domain along, as tracking redirects do) |
//! | `LINK_TEXT_MISMATCH` | 1.5 | Phishing | the visible text of a link is a URL or domain, and the link goes to another registrable domain that is not the sender's (From or envelope), not a known mailing service's click tracker, and does not carry a URL of the shown domain along |
//! | `LINK_LOOKALIKE_OWN_DOMAIN` | 6.0 | Phishing | a URL's host imitates one of `own_domains` (confusable characters, one typing slip, the name hyphenated into another, or the whole domain in front of another) |
//! | `LINK_LOOKALIKE_BRAND` | 4.0 | Phishing | the same for `brands` and the built-in list of much-impersonated brands (see [`lookalike`]; common-word names such as apple or chase only by confusable characters) |
//! | `LINK_IDN_DECEPTIVE` | 3.0 | Phishing | an internationalised host label mixes scripts, or imitates Latin letters with another script's |
//! | `LINK_IP_OBFUSCATED` | 4.0 | Phishing | a URL's IPv4 host is written as one number, in hex or octal, or shortened |
//! | `LINK_IP_HOST` | 1.5 | Phishing | a URL (link, image or form) points to a public IP address instead of a name |
//! | `LINK_USERINFO_DECEPTION` | 4.0 | Phishing | a URL carries a host name before `@` (`http://paypal.com@evil.test/`), which is not where it goes |
//! | `LINK_HOST_ESCAPED` | 2.0 | Phishing | a URL's host is written with percent-escapes |
//! | `LINK_UNUSUAL_PORT` | 1.0 | Phishing | an HTML link, image or form URL names a port other than its scheme's default (`http://host:8081/`); plain-text URLs are left alone, as technical mail quotes such addresses |
//! | `LINK_SHORTENER` | 0.5 | Spam | a link goes through a URL shortener (built-in list plus `[scan.links] shorteners`), which hides where it goes |
//! | `LINK_DEFANGED` | 0.0 | Clean | a URL is written defanged (`hxxp://`, `example[.]com`); shown for the record, as security notices do this |
//! | `LINK_TOO_MANY` | 0.0 | Clean | the message has more URLs or text than are looked at; those past the limit were not checked |
//!
//! Links to the organisation's own domains, and links under a domain of
//! `[scan.links] allow`, are never flagged (when a host is on both lists, the
//! longer, more specific entry wins). `LINK_IP_HOST` counts only addresses that
//! are reachable on the internet (not private, loopback or documentation ones,
//! which technical mail discusses). `LINK_SHORTENER` counts only links a reader
//! follows, not images.
//!
//! Standards: RFC 3986/3987 and the WHATWG URL standard (URL syntax and how
//! browsers read it), WHATWG HTML (attributes and character references),
//! RFC 5890–5893 and UTS #46 (IDNA), UTS #39 (confusables, mixed scripts),
//! RFC 4291 and RFC 6890 (IP addresses and special-purpose ranges), the Public
//! Suffix List (registrable domains), RFC 5322 and RFC 2045–2049 (the message).
//!
//! Hostile input: all of it. At most [`MAX_TEXT_BYTES`] of decoded text are
//! scanned per message, at most `extract::MAX_LINKS` URLs kept, each at most
//! `extract::MAX_URL_BYTES`; lookalike comparisons run on at most
//! [`MAX_DISTINCT_DOMAINS`] distinct host names, each label cut at 63
//! characters; at most 16 URLs embedded in one redirect are looked at; nesting
//! of attached messages is bounded by [`MAX_NESTING`]. All scanning is
//! linear-time (memchr, the `regex` crate, single-pass hand-written scanners).

pub(crate) mod extract;
mod lookalike;
pub(crate) mod normalise;

use super::View;
use crate::{Category, Finding};
use extract::{Collector, Origin};
use mail_parser::{Message, PartType};
use normalise::{host_is_under, Host, Ipv4Form, NormUrl};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Decoded text scanned per message, across all parts.
pub(crate) const MAX_TEXT_BYTES: usize = 8 << 20;
/// How deep attached messages are opened.
pub(crate) const MAX_NESTING: usize = 3;
/// Distinct host names compared with the protected domains.
pub(crate) const MAX_DISTINCT_DOMAINS: usize = 200;

/// URL shorteners known without configuration.
const BUILTIN_SHORTENERS: &[&str] = &[
    "bit.ly",
    "bitly.com",
    "tinyurl.com",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "v.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "rb.gy",
    "t.ly",
    "s.id",
    "bl.ink",
    "adf.ly",
    "shorte.st",
    "ouo.io",
    "bc.vc",
    "soo.gd",
    "x.co",
    "tr.im",
    "snipurl.com",
    "snurl.com",
    "cli.gs",
    "u.to",
    "clck.ru",
    "qr.net",
    "2.gy",
    "tinyurl.is",
];

/// Click-tracking domains of mailing services: newsletters sent through them
/// show the destination in the link text while the link goes to the tracker.
const CLICK_TRACKERS: &[&str] = &[
    "sendgrid.net",
    "list-manage.com",
    "mailchimp.com",
    "mcsv.net",
    "rs6.net",
    "exacttarget.com",
    "exct.net",
    "hubspotlinks.com",
    "mailgun.org",
    "sparkpostmail.com",
    "createsend.com",
    "mandrillapp.com",
    "awstrack.me",
    "doubleclick.net",
    "mjt.lu",
    "govdelivery.com",
    "safelinks.protection.outlook.com",
    "urldefense.com",
    "urldefense.proofpoint.com",
    "mimecastprotect.com",
];

/// One URL of a message.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub origin: Origin,
    /// As written (character references decoded), bounded.
    pub written: String,
    /// For an `<a href>`: the visible text.
    pub anchor: Option<String>,
    pub url: NormUrl,
}

/// The URLs of a message.
#[derive(Debug, Default)]
pub(crate) struct Links {
    pub links: Vec<Link>,
    /// The message had more URLs (or text) than are looked at.
    pub truncated: bool,
}

/// Every `http`, `https` and `ftp` URL of a message, normalised, in the order
/// written (text parts, HTML parts and attachments alike). `raw` is used only
/// when the message did not parse.
pub(crate) fn message_links(parsed: Option<&Message<'_>>, raw: &[u8]) -> Links {
    let mut collector = Collector::default();
    let mut budget = MAX_TEXT_BYTES;
    match parsed {
        Some(m) => walk(m, 0, &mut collector, &mut budget),
        None => {
            let text = String::from_utf8_lossy(raw);
            extract::scan_text(extract::truncate(&text, budget), &mut collector);
            budget = budget.saturating_sub(text.len());
        }
    }
    let links = collector
        .links
        .into_iter()
        .filter_map(|raw| {
            let url = normalise::normalise(&raw.text)?;
            Some(Link {
                origin: raw.origin,
                written: raw.text,
                anchor: raw.anchor,
                url,
            })
        })
        .collect();
    Links {
        links,
        truncated: collector.truncated || budget == 0,
    }
}

/// The distinct normalised URLs of a message, in the order first written: what
/// the secure-link rewriting looks for.
pub(crate) fn normalised_urls(parsed: Option<&Message<'_>>, raw: &[u8]) -> Vec<String> {
    let mut seen = HashSet::new();
    message_links(parsed, raw)
        .links
        .into_iter()
        .filter_map(|l| {
            let s = l.url.as_str().to_string();
            seen.insert(s.clone()).then_some(s)
        })
        .collect()
}

/// Scans the text and HTML parts of `m`, then its attached messages.
fn walk(m: &Message<'_>, depth: usize, out: &mut Collector, budget: &mut usize) {
    for part in &m.parts {
        if *budget == 0 || !out.has_room() {
            return;
        }
        match &part.body {
            PartType::Text(t) => {
                let t = extract::truncate(t, *budget);
                *budget -= t.len();
                extract::scan_text(t, out);
            }
            PartType::Html(h) => {
                let h = extract::truncate(h, *budget);
                *budget -= h.len();
                extract::scan_html(h, out);
            }
            PartType::Message(inner) if depth < MAX_NESTING => {
                walk(inner, depth + 1, out, budget);
            }
            _ => {}
        }
    }
}

/// The link symbols, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sym {
    Blocklisted,
    TextBrandMismatch,
    TextMismatch,
    LookalikeOwn,
    LookalikeBrand,
    IdnDeceptive,
    IpObfuscated,
    IpHost,
    UserinfoDeception,
    HostEscaped,
    UnusualPort,
    Shortener,
    Defanged,
    TooMany,
}

const ALL: [Sym; 14] = [
    Sym::Blocklisted,
    Sym::TextBrandMismatch,
    Sym::TextMismatch,
    Sym::LookalikeOwn,
    Sym::LookalikeBrand,
    Sym::IdnDeceptive,
    Sym::IpObfuscated,
    Sym::IpHost,
    Sym::UserinfoDeception,
    Sym::HostEscaped,
    Sym::UnusualPort,
    Sym::Shortener,
    Sym::Defanged,
    Sym::TooMany,
];

impl Sym {
    fn meta(self) -> (&'static str, f64, Category) {
        match self {
            Sym::Blocklisted => ("LINK_BLOCKLISTED", 10.0, Category::Phishing),
            Sym::TextBrandMismatch => ("LINK_TEXT_BRAND_MISMATCH", 4.0, Category::Phishing),
            Sym::TextMismatch => ("LINK_TEXT_MISMATCH", 1.5, Category::Phishing),
            Sym::LookalikeOwn => ("LINK_LOOKALIKE_OWN_DOMAIN", 6.0, Category::Phishing),
            Sym::LookalikeBrand => ("LINK_LOOKALIKE_BRAND", 4.0, Category::Phishing),
            Sym::IdnDeceptive => ("LINK_IDN_DECEPTIVE", 3.0, Category::Phishing),
            Sym::IpObfuscated => ("LINK_IP_OBFUSCATED", 4.0, Category::Phishing),
            Sym::IpHost => ("LINK_IP_HOST", 1.5, Category::Phishing),
            Sym::UserinfoDeception => ("LINK_USERINFO_DECEPTION", 4.0, Category::Phishing),
            Sym::HostEscaped => ("LINK_HOST_ESCAPED", 2.0, Category::Phishing),
            Sym::UnusualPort => ("LINK_UNUSUAL_PORT", 1.0, Category::Phishing),
            Sym::Shortener => ("LINK_SHORTENER", 0.5, Category::Spam),
            Sym::Defanged => ("LINK_DEFANGED", 0.0, Category::Clean),
            Sym::TooMany => ("LINK_TOO_MANY", 0.0, Category::Clean),
        }
    }
}

/// First evidence and count for each symbol.
#[derive(Default)]
struct Tally {
    hits: [Option<(String, usize)>; ALL.len()],
}

impl Tally {
    fn add(&mut self, sym: Sym, detail: impl FnOnce() -> String) {
        let slot = &mut self.hits[sym as usize];
        match slot {
            Some((_, n)) => *n += 1,
            None => *slot = Some((detail(), 1)),
        }
    }

    fn findings(self) -> Vec<Finding> {
        ALL.iter()
            .zip(self.hits)
            .filter_map(|(&sym, hit)| {
                let (detail, n) = hit?;
                let (name, score, category) = sym.meta();
                // Details quote the message; line breaks and other controls in
                // them must not reach the headers and logs they are shown in.
                let detail: String = detail
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                let detail = if n > 1 {
                    format!("{detail} (and {} more)", n - 1)
                } else {
                    detail
                };
                Some(Finding::new(name, score, category, detail))
            })
            .collect()
    }
}

/// What the lists say about a host.
enum Listed {
    Allowed,
    Blocked(String),
    Neither,
}

/// The configuration and message facts the judgement needs.
struct Context<'a> {
    view: &'a View<'a>,
    /// Registrable domains of the From address and the envelope sender.
    sender_domains: Vec<String>,
    targets: lookalike::Targets,
}

impl<'a> Context<'a> {
    fn new(view: &'a View<'a>) -> Context<'a> {
        let config = view.config;
        let mut sender_domains = Vec::new();
        let from = view
            .parsed
            .and_then(|m| m.from())
            .and_then(|a| a.first())
            .and_then(|a| a.address());
        for address in from.into_iter().chain(view.envelope.mail_from.as_deref()) {
            if let Some((_, domain)) = address.rsplit_once('@') {
                let domain = domain.trim().trim_end_matches('>').to_ascii_lowercase();
                let r = normalise::registrable_domain(&domain).to_string();
                if !r.is_empty() && !sender_domains.contains(&r) {
                    sender_domains.push(r);
                }
            }
        }
        Context {
            view,
            sender_domains,
            targets: lookalike::Targets::new(&config.own_domains, &config.brands),
        }
    }

    /// The block/allow status of `host`; the longest matching entry wins.
    fn listed(&self, host: &str) -> Listed {
        let links = &self.view.config.links;
        let longest = |list: &[String]| {
            list.iter()
                .filter(|d| host_is_under(host, d))
                .map(|d| d.len())
                .max()
        };
        match (longest(&links.allow), longest(&links.block)) {
            (Some(a), Some(b)) if a >= b => Listed::Allowed,
            (Some(_), None) => Listed::Allowed,
            (_, Some(_)) => Listed::Blocked(
                links
                    .block
                    .iter()
                    .filter(|d| host_is_under(host, d))
                    .max_by_key(|d| d.len())
                    .cloned()
                    .unwrap_or_default(),
            ),
            (None, None) => Listed::Neither,
        }
    }

    fn is_own(&self, registrable: &str) -> bool {
        self.targets
            .iter()
            .any(|t| t.own && t.domain == registrable)
    }

    fn is_shortener(&self, host: &str) -> bool {
        BUILTIN_SHORTENERS.iter().any(|d| host_is_under(host, d))
            || self
                .view
                .config
                .links
                .shorteners
                .iter()
                .any(|d| host_is_under(host, d))
    }

    /// The protected domain (own or brand) that `registrable` is, if any.
    fn protected(&self, registrable: &str) -> Option<&lookalike::Target> {
        self.targets.iter().find(|t| t.domain == registrable)
    }
}

pub(crate) fn check(view: &View<'_>) -> Vec<Finding> {
    let links = message_links(view.parsed, view.raw);
    if links.links.is_empty() && !links.truncated {
        return Vec::new();
    }
    let ctx = Context::new(view);
    let mut tally = Tally::default();
    let mut compared: HashSet<String> = HashSet::new();
    for link in &links.links {
        judge(&ctx, link, &mut tally, &mut compared);
    }
    if links.truncated {
        tally.add(Sym::TooMany, || {
            format!(
                "only the first {} URLs and {} MiB of text were checked",
                extract::MAX_LINKS,
                MAX_TEXT_BYTES >> 20
            )
        });
    }
    tally.findings()
}

/// What the checks say about one URL on its own, out of any message: the
/// lists, and the per-URL checks as for a link in HTML (the checks that
/// compare a link with its text or the sender have nothing to compare).
/// `None` when the URL cannot be read as a web address.
pub(crate) fn check_one(config: &crate::ScanConfig, written: &str) -> Option<crate::UrlCheck> {
    let url = normalise::normalise(written)?;
    let envelope = crate::Envelope::default();
    let view = View {
        raw: b"",
        parsed: None,
        envelope: &envelope,
        config,
    };
    let ctx = Context::new(&view);
    let host = url.host.ascii();
    let listing = match ctx.listed(&host) {
        Listed::Allowed => crate::Listing::Allowed,
        Listed::Blocked(entry) => crate::Listing::Blocked { entry },
        Listed::Neither => crate::Listing::Unlisted,
    };
    let link = Link {
        origin: Origin::Href,
        written: extract::truncate(written, 200).to_string(),
        anchor: None,
        url,
    };
    let mut tally = Tally::default();
    judge(&ctx, &link, &mut tally, &mut HashSet::new());
    let findings = tally
        .findings()
        .into_iter()
        .filter(|f| f.name != Sym::Blocklisted.meta().0)
        .collect();
    Some(crate::UrlCheck {
        host,
        listing,
        findings,
    })
}

/// Adds what one link shows to the tally.
fn judge(ctx: &Context<'_>, link: &Link, tally: &mut Tally, compared: &mut HashSet<String>) {
    let url = &link.url;
    let host = url.host.ascii();
    let registrable = url.host.registrable();
    match ctx.listed(&host) {
        Listed::Allowed => return,
        Listed::Blocked(entry) => tally.add(Sym::Blocklisted, || {
            format!("{} is on the block list ({entry})", shown(link))
        }),
        Listed::Neither => {}
    }
    if ctx.is_own(&registrable) {
        return;
    }
    let followed = link.origin != Origin::Src;
    if url.defanged {
        tally.add(Sym::Defanged, || {
            format!("{} is written defanged", shown(link))
        });
    }
    if url.host_escaped {
        tally.add(Sym::HostEscaped, || {
            format!("{} hides its host {host} in percent-escapes", shown(link))
        });
    }
    if let Some(port) = url.url.port().filter(|_| link.origin != Origin::Text) {
        tally.add(Sym::UnusualPort, || {
            format!("{} names the port {port}", shown(link))
        });
    }
    if let Some(info) = &url.userinfo {
        if looks_like_host(info) {
            tally.add(Sym::UserinfoDeception, || {
                format!(
                    "{} shows {info} before '@' but goes to {host}",
                    extract::truncate(&link.written, 200)
                )
            });
        }
    }
    match &url.host {
        Host::Ipv4 { addr, form } => {
            if *form != Ipv4Form::Dotted {
                tally.add(Sym::IpObfuscated, || {
                    format!(
                        "{} writes the address {addr} as {}",
                        extract::truncate(&link.written, 200),
                        form.describe()
                    )
                });
            } else if is_public(IpAddr::V4(*addr)) {
                tally.add(Sym::IpHost, || {
                    format!("{} goes to an IP address", shown(link))
                });
            }
        }
        Host::Ipv6(addr) => {
            if is_public(IpAddr::V6(*addr)) {
                tally.add(Sym::IpHost, || {
                    format!("{} goes to an IP address", shown(link))
                });
            }
        }
        Host::Domain {
            ascii,
            unicode,
            registrable,
        } => {
            if followed && ctx.is_shortener(ascii) {
                tally.add(Sym::Shortener, || {
                    format!("{} goes through the URL shortener {ascii}", shown(link))
                });
            }
            if unicode != ascii {
                if let Some((label, why)) = lookalike::idn_deception(unicode, ascii) {
                    tally.add(Sym::IdnDeceptive, || {
                        format!("the host {unicode} ({ascii}): its label {label} {why}")
                    });
                }
            }
            // Each distinct host is compared once, and only so many of them.
            if compared.len() < MAX_DISTINCT_DOMAINS && compared.insert(ascii.clone()) {
                judge_lookalike(ctx, ascii, unicode, registrable, tally);
            }
        }
    }
    if link.origin == Origin::Href {
        if let Some(anchor) = &link.anchor {
            judge_anchor(ctx, link, anchor, &registrable, tally);
        }
    }
}

/// Flags a host that imitates an own domain or a protected brand.
fn judge_lookalike(
    ctx: &Context<'_>,
    ascii: &str,
    unicode: &str,
    registrable: &str,
    tally: &mut Tally,
) {
    let unicode_registrable = if registrable.contains("xn--") {
        url::quirks::domain_to_unicode(registrable)
    } else {
        registrable.to_string()
    };
    let Some((target, how)) =
        lookalike::lookalike(ascii, registrable, &unicode_registrable, &ctx.targets)
    else {
        return;
    };
    let sym = if target.own {
        Sym::LookalikeOwn
    } else {
        Sym::LookalikeBrand
    };
    tally.add(sym, || {
        format!(
            "the host {unicode} imitates {} ({})",
            target.domain,
            how.describe()
        )
    });
}

/// Compares the domain a link's visible text shows with where it goes.
fn judge_anchor(
    ctx: &Context<'_>,
    link: &Link,
    anchor: &str,
    registrable: &str,
    tally: &mut Tally,
) {
    let Some(shown_url) = anchor_url(anchor) else {
        return;
    };
    let shown_registrable = shown_url.host.registrable();
    if shown_registrable == registrable {
        return;
    }
    let shown_host = match &shown_url.host {
        Host::Domain { unicode, .. } => unicode.clone(),
        other => other.ascii(),
    };
    let detail = || {
        format!(
            "the link text shows {shown_host} but the link goes to {}",
            link.url.host.ascii()
        )
    };
    // A tracking redirect that carries the shown destination along still
    // ends where the text says.
    if redirects_to(&link.url, &shown_registrable) {
        return;
    }
    if let Some(target) = ctx.protected(&shown_registrable) {
        // Only the protected domain's own hosts may stand behind its name.
        if !host_is_under(&link.url.host.ascii(), &target.domain) {
            tally.add(Sym::TextBrandMismatch, detail);
        }
        return;
    }
    if ctx.sender_domains.iter().any(|d| d == registrable)
        || CLICK_TRACKERS
            .iter()
            .any(|d| host_is_under(&link.url.host.ascii(), d))
    {
        return;
    }
    tally.add(Sym::TextMismatch, detail);
}

/// The URL that link text shows, when the text is itself a URL or a bare domain
/// name with a known public suffix (and not prose that merely mentions one).
fn anchor_url(anchor: &str) -> Option<NormUrl> {
    let t = anchor.trim_matches(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '<' | '>' | '[' | ']' | '(' | ')' | '"' | '\'' | '.' | ',' | ':' | ';'
            )
    });
    if t.is_empty() || t.contains(char::is_whitespace) || t.contains('@') {
        return None;
    }
    if let Some(url) = normalise::normalise(t) {
        return Some(url);
    }
    // A bare host name: letters, digits, '-' and dots, ending in a public suffix
    // that exists, e.g. "paypal.com" or "paypal.com/signin".
    let host_part = t.split(['/', '?', '#']).next().unwrap_or(t);
    let host_part = host_part.split(':').next().unwrap_or(host_part);
    if !host_part.contains('.')
        || !host_part
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
    {
        return None;
    }
    let ascii = url::quirks::domain_to_ascii(host_part);
    let suffix = psl::suffix(ascii.as_bytes())?;
    if !suffix.is_known() || suffix.as_bytes().len() + 1 >= ascii.len() {
        return None;
    }
    normalise::normalise(&format!("http://{t}"))
}

/// URLs embedded in a redirect's path or query that are looked at.
const MAX_EMBEDDED_URLS: usize = 16;

/// Whether `url` carries a URL to `registrable` in its path or query (as
/// tracking redirects do: `?u=http%3A%2F%2Fwww.example.com%2F`).
fn redirects_to(url: &NormUrl, registrable: &str) -> bool {
    let tail = &url.url[url::Position::AfterPort..];
    if !tail.contains("://") && !tail.contains("%3A") && !tail.contains("%3a") {
        return false;
    }
    let decoded = normalise::percent_decode(tail);
    decoded
        .match_indices("://")
        .take(MAX_EMBEDDED_URLS)
        .any(|(i, _)| {
            let rest = &decoded[i + 3..];
            let end = rest
                .find(['/', '\\', '?', '&', '#', ':', '"', '\'', ' '])
                .unwrap_or(rest.len());
            let host = rest[..end].rsplit('@').next().unwrap_or("");
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            !host.is_empty() && normalise::registrable_domain(&host) == registrable
        })
}

/// How a link is shown in a detail: as written, bounded.
fn shown(link: &Link) -> &str {
    extract::truncate(&link.written, 200)
}

/// Whether userinfo reads as a host name: `paypal.com`, `www.bank.test/login`
/// (a `www.` name or one ending in a known public suffix), and not a user name
/// such as `john.smith`.
fn looks_like_host(info: &str) -> bool {
    // What a reader takes for the site: the name the userinfo starts with.
    let end = info
        .find(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or(info.len());
    let host = info[..end].trim_end_matches('.').to_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || !l.chars().all(|c| c.is_alphanumeric() || c == '-'))
    {
        return false;
    }
    if labels[0] == "www" {
        return true;
    }
    let ascii = url::quirks::domain_to_ascii(&host);
    psl::suffix(ascii.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes().len() < ascii.len())
}

/// Whether an address is reachable on the internet (not private, loopback,
/// link-local, documentation or otherwise special, RFC 6890).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [o0, o1, ..] = a.octets();
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_documentation()
                || a.is_multicast()
                || o0 == 0
                || o0 >= 240
                || (o0 == 100 && (64..128).contains(&o1))
                || (o0 == 198 && (o1 == 18 || o1 == 19))
                || a == Ipv4Addr::new(192, 0, 0, 1))
        }
        IpAddr::V6(a) => {
            let s0 = a.segments()[0];
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s0 & 0xfe00) == 0xfc00
                || (s0 & 0xffc0) == 0xfe80
                || s0 == 0x2001 && a.segments()[1] == 0x0db8
                || a.to_ipv4_mapped()
                    .is_some_and(|v4| !is_public(IpAddr::V4(v4)))
                || a == Ipv6Addr::UNSPECIFIED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LinkConfig;
    use crate::{Envelope, ScanConfig};

    /// The link findings for a raw message, as (name, detail).
    fn findings_with(raw: &str, config: &ScanConfig, envelope: &Envelope) -> Vec<(String, String)> {
        let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes());
        let view = View {
            raw: raw.as_bytes(),
            parsed: parsed.as_ref(),
            envelope,
            config,
        };
        check(&view)
            .into_iter()
            .map(|f| (f.name.into_owned(), f.detail))
            .collect()
    }

    fn findings(raw: &str) -> Vec<(String, String)> {
        findings_with(raw, &ScanConfig::default(), &Envelope::default())
    }

    fn names(found: &[(String, String)]) -> Vec<&str> {
        found.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn html(from: &str, body: &str) -> String {
        format!(
            "From: {from}\r\nTo: you@example.net\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>{body}</body></html>\r\n"
        )
    }

    fn text(from: &str, body: &str) -> String {
        format!("From: {from}\r\nTo: you@example.net\r\nSubject: s\r\n\r\n{body}\r\n")
    }

    #[test]
    fn every_symbol_has_a_stable_upper_snake_name_and_a_sane_score() {
        for sym in ALL {
            let (name, score, _) = sym.meta();
            assert!(name.starts_with("LINK_"), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{name}"
            );
            assert!((0.0..=10.0).contains(&score), "{name}");
            assert_eq!(ALL[sym as usize], sym);
        }
    }

    #[test]
    fn a_brand_shown_in_link_text_over_a_lookalike_link_is_phishing() {
        let found = findings(&html(
            "PayPal <service@paypal.com>",
            "<p>Your account is limited.</p>\
             <a href=\"http://paypa1-secure.test/login\">https://www.paypal.com/signin</a>",
        ));
        assert_eq!(
            names(&found),
            ["LINK_TEXT_BRAND_MISMATCH", "LINK_LOOKALIKE_BRAND"]
        );
        assert_eq!(
            found[0].1,
            "the link text shows www.paypal.com but the link goes to paypa1-secure.test"
        );
        assert!(
            found[1]
                .1
                .contains("paypa1-secure.test imitates paypal.com"),
            "{}",
            found[1].1
        );
        // A tracker that carries the brand's own URL along ends at the brand.
        let tracked = "<a href=\"http://t.esp.test/c?u=https%3A%2F%2Fwww.paypal.com%2Fhelp\">\
                       www.paypal.com/help</a>";
        assert!(findings(&html("a@b.test", tracked)).is_empty());
        // Naming the brand in the query is not carrying it along.
        let named = "<a href=\"http://evil.test/?r=paypal.com\">www.paypal.com</a>";
        assert_eq!(
            names(&findings(&html("a@b.test", named))),
            ["LINK_TEXT_BRAND_MISMATCH"]
        );
    }

    #[test]
    fn link_text_showing_another_domain_is_a_mismatch() {
        let found = findings(&html(
            "Bank <alerts@bank-mail.test>",
            "Sign in at <a href=\"http://203.0.113.9.nip.test/x\">www.first-national-bank.com</a>",
        ));
        assert_eq!(names(&found), ["LINK_TEXT_MISMATCH"]);
        assert!(found[0].1.contains("shows www.first-national-bank.com"));
        // Prose in the link text is not a claim about where it goes.
        let found = findings(&html(
            "a@b.test",
            "<a href=\"http://evil.test/\">Read about example.com here</a>\
             <a href=\"http://evil.test/\">click here</a>",
        ));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_newsletter_with_tracking_links_adds_nothing() {
        let body = "<table><tr><td><img src=\"http://img.shop.test/logo.gif\" width=1 height=1>\
            <a href=\"http://click.shop.test/t?id=19&amp;u=4\">www.partner-site.com/sale</a><br>\
            <a href=\"http://links.esp.test/r?dest=http%3A%2F%2Fwww.nytimes.com%2F2002%2Fa.html\">\
            http://www.nytimes.com/2002/a.html</a><br>\
            <a href=\"http://u123.ct.sendgrid.net/ls/click?upn=abc\">www.example-store.com</a>\
            <a href=\"http://click.shop.test/unsub?u=4\">Unsubscribe</a>\
            <a href=\"http://tinyurl.test.example/\">more</a></td></tr></table>\
            <p>Visit http://www.shop.test/ or write to help@shop.test.</p>";
        let raw = html("Shop News <news@shop.test>", body);
        assert!(findings(&raw).is_empty(), "{:?}", findings(&raw));
    }

    #[test]
    fn links_to_the_senders_and_own_domains_are_not_flagged() {
        let config = ScanConfig {
            own_domains: vec!["example.org".into()],
            ..ScanConfig::default()
        };
        let raw = html(
            "IT <it@example.org>",
            "<a href=\"https://portal.example.org/login\">www.example.com/portal</a>\
             <a href=\"http://10.0.0.5/wiki\">wiki</a> <a href=\"https://bit.example.org/\">x</a>",
        );
        let found = findings_with(&raw, &config, &Envelope::default());
        assert!(found.is_empty(), "{found:?}");
        let raw = html(
            "Shop <news@shop.test>",
            "<a href=\"https://www.shop.test/a\">www.shop.test/a</a>\
             <a href=\"https://track.shop.test/c?1\">http://www.othersite.com/</a>",
        );
        assert!(findings(&raw).is_empty());
    }

    #[test]
    fn ip_hosts_are_flagged_and_obfuscated_forms_more_so() {
        let found = findings(&text(
            "a@b.test",
            "Go to http://61.145.116.189/user/index.htm now or http://3232235777/ or \
             http://0x3d.0x91.0x74.0xbd/ - our LAN box http://192.168.1.20/ is fine",
        ));
        assert_eq!(names(&found), ["LINK_IP_OBFUSCATED", "LINK_IP_HOST"]);
        assert!(found[0]
            .1
            .contains("192.168.1.1 as a single decimal number (and 1 more)"));
        assert_eq!(
            found[1].1,
            "http://61.145.116.189/user/index.htm goes to an IP address"
        );
        assert!(findings(&text(
            "a@b.test",
            "see http://127.0.0.1:8080/ and http://[::1]/"
        ))
        .is_empty());
        assert_eq!(
            names(&findings(&text("a@b.test", "http://[2a00:1450::1]/x"))),
            ["LINK_IP_HOST"]
        );
    }

    #[test]
    fn a_host_name_before_the_at_sign_is_deception() {
        let found = findings(&text(
            "a@b.test",
            "Log in: http://www.paypal.com%2Fsignin@61.145.116.189/ or http://paypal.com@evil.test/",
        ));
        assert_eq!(names(&found), ["LINK_IP_HOST", "LINK_USERINFO_DECEPTION"]);
        assert!(found[1]
            .1
            .contains("shows www.paypal.com/signin before '@'"));
        // A user name is not a host.
        let found = findings(&text(
            "a@b.test",
            "ftp://john.smith:pw@ftp.example.com/pub/",
        ));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn html_links_to_unusual_ports_are_noted_but_not_plain_text_ones() {
        let found = findings(&html(
            "a@b.test",
            "<a href=\"http://shop.test:8081/login\">x</a> <a href=\"https://a.test:443/\">y</a>",
        ));
        assert_eq!(names(&found), ["LINK_UNUSUAL_PORT"]);
        assert_eq!(
            found[0].1,
            "http://shop.test:8081/login names the port 8081"
        );
        let found = findings(&text(
            "a@b.test",
            "my test server: http://devbox.example.net:8080/",
        ));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn details_carry_no_line_breaks_from_the_message() {
        let found = findings(&html(
            "a@b.test",
            "<a href=\"http://www.paypal.com%0d%0aX-Injected:%20yes@61.145.116.189/\">x</a>",
        ));
        assert_eq!(names(&found), ["LINK_IP_HOST", "LINK_USERINFO_DECEPTION"]);
        for (_, detail) in &found {
            assert!(!detail.contains(['\r', '\n']), "{detail:?}");
        }
        assert!(
            found[1].1.contains("www.paypal.com  X-Injected: yes"),
            "{}",
            found[1].1
        );
    }

    #[test]
    fn escaped_hosts_shorteners_and_defanged_urls_are_noted() {
        let config = ScanConfig {
            links: LinkConfig {
                shorteners: vec!["sho.rt".into()],
                ..LinkConfig::default()
            },
            ..ScanConfig::default()
        };
        let found = findings_with(
            &html(
                "a@b.test",
                "<a href=\"http://w%77w.evil.test/\">x</a> <a href=\"https://bit.ly/3xYz\">y</a>\
                 <a href=\"https://sho.rt/a\">z</a> <img src=\"https://bit.ly/img\">\
                 <p>IOC: hxxp://bad[.]test/payload</p>",
            ),
            &config,
            &Envelope::default(),
        );
        assert_eq!(
            names(&found),
            ["LINK_HOST_ESCAPED", "LINK_SHORTENER", "LINK_DEFANGED"]
        );
        assert!(found[0].1.contains("hides its host www.evil.test"));
        assert!(
            found[1].1.ends_with("bit.ly (and 1 more)"),
            "{}",
            found[1].1
        );
    }

    #[test]
    fn deceptive_idn_and_lookalikes_of_own_domains_are_caught() {
        let config = ScanConfig {
            own_domains: vec!["example.org".into()],
            ..ScanConfig::default()
        };
        let found = findings_with(
            &text(
                "a@b.test",
                "http://xn--pypal-4ve.com/ and https://examp1e.org/reset and http://bücher.example/",
            ),
            &config,
            &Envelope::default(),
        );
        assert_eq!(
            names(&found),
            [
                "LINK_LOOKALIKE_OWN_DOMAIN",
                "LINK_LOOKALIKE_BRAND",
                "LINK_IDN_DECEPTIVE"
            ]
        );
        assert!(found[0].1.contains("examp1e.org imitates example.org"));
        assert!(found[1].1.contains("p\u{430}ypal.com imitates paypal.com"));
        assert!(found[2].1.contains("mixes scripts"));
    }

    #[test]
    fn block_and_allow_lists_decide_with_the_longest_entry_winning() {
        let config = ScanConfig {
            links: LinkConfig {
                block: vec!["evil.test".into(), "bad.good.test".into()],
                allow: vec!["good.test".into(), "ok.evil.test".into()],
                ..LinkConfig::default()
            },
            ..ScanConfig::default()
        };
        let found = findings_with(
            &text(
                "a@b.test",
                "http://www.evil.test/a http://ok.evil.test/b http://x.bad.good.test/ \
                 http://paypal.com@www.good.test/ http://3232235777.good.test/",
            ),
            &config,
            &Envelope::default(),
        );
        assert_eq!(names(&found), ["LINK_BLOCKLISTED"]);
        assert_eq!(
            found[0].1,
            "http://www.evil.test/a is on the block list (evil.test) (and 1 more)"
        );
    }

    #[test]
    fn urls_are_found_in_attachments_and_attached_messages() {
        let raw = "From: a@b.test\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nsee the attachments\r\n\
            --b\r\nContent-Type: text/plain; name=\"notes.txt\"\r\n\
            Content-Disposition: attachment; filename=\"notes.txt\"\r\n\
            Content-Transfer-Encoding: base64\r\n\r\n\
            aHR0cDovL2F0dGFjaGVkLnRlc3QvdHh0\r\n\
            --b\r\nContent-Type: text/html; name=\"page.html\"\r\n\
            Content-Disposition: attachment; filename=\"page.html\"\r\n\r\n\
            <form action=\"https://harvest.test/post\"><a href='http://a.test/?x=1&amp;y=2'>go</a></form>\r\n\
            --b\r\nContent-Type: message/rfc822\r\n\r\n\
            From: c@d.test\r\nSubject: fwd\r\n\r\nhttp://inner.test/deep\r\n\
            --b--\r\n";
        let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes());
        let links = message_links(parsed.as_ref(), raw.as_bytes());
        let got: Vec<(Origin, &str)> = links
            .links
            .iter()
            .map(|l| (l.origin, l.url.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Origin::Text, "http://attached.test/txt"),
                (Origin::Action, "https://harvest.test/post"),
                (Origin::Href, "http://a.test/?x=1&y=2"),
                (Origin::Text, "http://inner.test/deep"),
            ]
        );
        assert!(!links.truncated);
    }

    #[test]
    fn normalised_urls_are_distinct_and_work_without_a_parse() {
        let raw = b"not a parsed message http://A.test/x HTTP://a.TEST/x http://b.test/";
        assert_eq!(
            normalised_urls(None, raw),
            ["http://a.test/x", "http://b.test/"]
        );
    }

    #[test]
    fn a_message_with_too_many_urls_says_so() {
        let body = "http://a.test/ ".repeat(extract::MAX_LINKS + 1);
        let found = findings(&text("a@b.test", &body));
        assert_eq!(names(&found), ["LINK_TOO_MANY"]);
    }

    #[test]
    fn old_plain_text_mailing_list_mail_adds_nothing() {
        let raw = text(
            "Someone <someone@lists.example.net>",
            "On Mon, 2 Sep 2002, a wrote:\r\n> see http://www.spamassassin.org/tests.html\r\n\r\n\
             The patch is at ftp://ftp.example.net/pub/patch-2.4.diff (mirror:\r\n\
             http://mirror.example.org/~user/patch.diff). Docs: www.example.com/docs.\r\n\
             --\r\nhttps://lists.example.net/mailman/listinfo/list\r\n",
        );
        assert!(findings(&raw).is_empty());
    }
}
