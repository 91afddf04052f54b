//! Normalising a URL as written into the URL a browser would open: defanged
//! spellings restored (`hxxp`, `[.]`), tabs and newlines removed, backslashes
//! read as slashes, percent-escapes in the host decoded, host names lowercased,
//! trailing dots dropped, internationalised names turned into punycode (and
//! back, for display and confusable checks), and IPv4 hosts in any form (dotted,
//! one decimal integer, hex, octal, shortened) read as the address they mean.
//! The userinfo part (`http://paypal.com@evil.test/`) is kept apart, since it is
//! not where the link goes.
//!
//! Standards: the WHATWG URL standard (what browsers do, implemented by the `url`
//! crate), RFC 3986 (URI syntax), RFC 3987 (IRIs), RFC 5890–5893 and UTS #46
//! (IDNA), RFC 4291 (IPv6 text forms), and the Public Suffix List for the
//! registrable domain.
//!
//! Hostile input: the URL text is bounded by the extractor
//! (`extract::MAX_URL_BYTES`); parsing is the `url` crate's single pass; the host
//! inspected here is cut at 255 bytes and userinfo at 256 bytes.

use std::net::{Ipv4Addr, Ipv6Addr};
use url::Url;

/// Longest host name looked at (RFC 1035 allows 253 characters).
const MAX_HOST_BYTES: usize = 255;
/// Bytes of userinfo kept for display.
const MAX_USERINFO_BYTES: usize = 256;

/// How an IPv4 host was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ipv4Form {
    /// `192.168.1.1`
    Dotted,
    /// One decimal number: `3232235777`.
    Integer,
    /// One hex number: `0xc0a80101`.
    Hex,
    /// One octal number: `030052000401`.
    Octal,
    /// Dotted with hex or octal parts, or fewer than four parts
    /// (`0xc0.0250.1.1`, `127.1`).
    Mixed,
}

impl Ipv4Form {
    pub fn describe(self) -> &'static str {
        match self {
            Ipv4Form::Dotted => "dotted decimal",
            Ipv4Form::Integer => "a single decimal number",
            Ipv4Form::Hex => "a single hexadecimal number",
            Ipv4Form::Octal => "a single octal number",
            Ipv4Form::Mixed => "mixed hex, octal or shortened parts",
        }
    }
}

/// Where a link goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    Domain {
        /// Lowercase, punycode (`xn--`) for internationalised labels, no
        /// trailing dot.
        ascii: String,
        /// The same name in Unicode, as a reader sees it.
        unicode: String,
        /// The registrable domain (public suffix plus one label) of `ascii`,
        /// or the whole host when it has no public suffix.
        registrable: String,
    },
    Ipv4 {
        addr: Ipv4Addr,
        form: Ipv4Form,
    },
    Ipv6(Ipv6Addr),
}

impl Host {
    /// The registrable domain, or the address for an IP literal.
    pub fn registrable(&self) -> String {
        match self {
            Host::Domain { registrable, .. } => registrable.clone(),
            Host::Ipv4 { addr, .. } => addr.to_string(),
            Host::Ipv6(a) => format!("[{a}]"),
        }
    }

    /// The host name in ASCII, or the address for an IP literal.
    pub fn ascii(&self) -> String {
        match self {
            Host::Domain { ascii, .. } => ascii.clone(),
            other => other.registrable(),
        }
    }
}

/// A normalised URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NormUrl {
    /// The URL as the browser resolves it.
    pub url: Url,
    pub host: Host,
    /// Written in a defanged form (`hxxp://`, `example[.]com`).
    pub defanged: bool,
    /// The host was written with percent-escapes (`%70aypal.com`).
    pub host_escaped: bool,
    /// The user name and password before `@`, percent-decoded; not where the
    /// link goes, but what a reader may take for the site.
    pub userinfo: Option<String>,
}

impl NormUrl {
    /// The normalised URL text.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }
}

/// Normalises one URL as written; `None` when it is not an absolute `http`,
/// `https` or `ftp` URL (relative links, `mailto:`, `cid:` and the like) or
/// does not parse.
pub(crate) fn normalise(written: &str) -> Option<NormUrl> {
    // Browsers drop tabs and newlines anywhere in a URL and trim the ends.
    let mut s: String = written
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let mut defanged = false;
    if let Some(rest) = strip_defanged_scheme(&s) {
        s = rest;
        defanged = true;
    }
    for (from, to) in [("[.]", "."), ("(.)", "."), ("[dot]", "."), ("[:]", ":")] {
        if s.contains(from) {
            s = s.replace(from, to);
            defanged = true;
        }
    }
    let scheme_end = scheme_len(&s);
    if scheme_end.is_none() {
        if s.starts_with("//") || s.starts_with("\\\\") {
            s.insert_str(0, "http:");
        } else if starts_with_www(&s) {
            s.insert_str(0, "http://");
        } else {
            return None;
        }
    }
    let url = Url::parse(&s).ok()?;
    if !matches!(url.scheme(), "http" | "https" | "ftp") {
        return None;
    }
    let written_host = written_host(&s);
    let host_escaped = written_host.contains('%');
    let host = match url.host()? {
        url::Host::Domain(d) => {
            let ascii = d.trim_end_matches('.');
            if ascii.is_empty() {
                return None;
            }
            let unicode = if ascii.contains("xn--") {
                url::quirks::domain_to_unicode(ascii)
            } else {
                ascii.to_string()
            };
            Host::Domain {
                ascii: ascii.to_string(),
                unicode,
                registrable: registrable_domain(ascii).to_string(),
            }
        }
        url::Host::Ipv4(addr) => Host::Ipv4 {
            addr,
            form: ipv4_form(&percent_decode(&written_host)),
        },
        url::Host::Ipv6(a) => Host::Ipv6(a),
    };
    let userinfo = userinfo(&url);
    Some(NormUrl {
        url,
        host,
        defanged,
        host_escaped,
        userinfo,
    })
}

/// Whether `s` starts with a `www.` (or `www2.`) host name and more.
fn starts_with_www(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..3].eq_ignore_ascii_case(b"www") {
        return false;
    }
    let digits = b[3..].iter().take_while(|c| c.is_ascii_digit()).count();
    digits <= 3 && b.get(3 + digits) == Some(&b'.') && b.len() > 4 + digits
}

/// `hxxp://` and its friends spelled as the scheme they stand for.
fn strip_defanged_scheme(s: &str) -> Option<String> {
    const FORMS: [(&str, &str); 9] = [
        ("hxxps", "https"),
        ("hxxp", "http"),
        ("hxtps", "https"),
        ("hxtp", "http"),
        ("h**ps", "https"),
        ("h**p", "http"),
        ("h[tt]ps", "https"),
        ("h[tt]p", "http"),
        ("fxp", "ftp"),
    ];
    for (from, to) in FORMS {
        let Some(head) = s.get(..from.len()) else {
            continue;
        };
        let rest = &s[from.len()..];
        if head.eq_ignore_ascii_case(from) && (rest.starts_with(':') || rest.starts_with("[:]")) {
            return Some(format!("{to}{rest}"));
        }
    }
    None
}

/// The length of a URL scheme at the start of `s` (RFC 3986 section 3.1), if
/// the text starts with one followed by ':'.
fn scheme_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    let n = b
        .iter()
        .take(33)
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        .count();
    (b.get(n) == Some(&b':')).then_some(n)
}

/// The host as written: after the scheme and slashes, before the path, without
/// userinfo and port, lowercased, at most [`MAX_HOST_BYTES`].
fn written_host(s: &str) -> String {
    let after_scheme = scheme_len(s).map_or(s, |n| &s[n + 1..]);
    let authority_start = after_scheme.trim_start_matches(['/', '\\']);
    let end = authority_start
        .find(['/', '\\', '?', '#'])
        .unwrap_or(authority_start.len());
    let authority = &authority_start[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.find(']').map_or(host_port, |n| &host_port[..=n])
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    super::extract::truncate(host, MAX_HOST_BYTES).to_ascii_lowercase()
}

/// Percent-decodes escapes (invalid UTF-8 becomes U+FFFD); other bytes stay
/// as written.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How an IPv4 host was written (`host` as written, lowercased and decoded).
fn ipv4_form(host: &str) -> Ipv4Form {
    let host = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<&str> = host.split('.').collect();
    let kind = |p: &str| -> u8 {
        if p.starts_with("0x") {
            b'x'
        } else if p.len() > 1 && p.starts_with('0') {
            b'o'
        } else {
            b'd'
        }
    };
    match parts.as_slice() {
        [one] => match kind(one) {
            b'x' => Ipv4Form::Hex,
            b'o' => Ipv4Form::Octal,
            _ => Ipv4Form::Integer,
        },
        [_, _, _, _] if parts.iter().all(|p| kind(p) == b'd') => Ipv4Form::Dotted,
        _ => Ipv4Form::Mixed,
    }
}

/// The userinfo of `url`, percent-decoded, if any.
fn userinfo(url: &Url) -> Option<String> {
    let user = url.username();
    let password = url.password();
    if user.is_empty() && password.is_none() {
        return None;
    }
    let mut info = percent_decode(user);
    if let Some(p) = password {
        info.push(':');
        info.push_str(&percent_decode(p));
    }
    Some(super::extract::truncate(&info, MAX_USERINFO_BYTES).to_string())
}

/// The registrable domain of a lowercase ASCII host name by the Public Suffix
/// List: `www.example.co.uk` -> `example.co.uk`; a name that is itself a
/// suffix, or has none, is returned whole.
pub(crate) fn registrable_domain(host: &str) -> &str {
    psl::domain_str(host).unwrap_or(host)
}

/// The labels of `domain` before its public suffix, e.g. `paypal` for
/// `www.paypal.co.uk` when given `paypal.co.uk`.
pub(crate) fn registrable_label(registrable: &str) -> &str {
    registrable.split('.').next().unwrap_or(registrable)
}

/// Whether the ASCII host `host` is `domain` or one of its subdomains; `domain`
/// may be written in any case, with a trailing dot, or in Unicode.
pub(crate) fn host_is_under(host: &str, domain: &str) -> bool {
    let domain = domain.trim().trim_end_matches('.');
    if domain.is_empty() {
        return false;
    }
    if !domain.is_ascii() {
        let ascii = url::quirks::domain_to_ascii(domain);
        return !ascii.is_empty() && host_is_under(host, &ascii);
    }
    let domain = domain.strip_prefix("*.").unwrap_or(domain);
    if host.len() < domain.len() {
        return false;
    }
    let (head, tail) = host.split_at(host.len() - domain.len());
    tail.eq_ignore_ascii_case(domain) && (head.is_empty() || head.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> NormUrl {
        normalise(s).unwrap_or_else(|| panic!("{s} should normalise"))
    }

    fn v4(s: &str) -> (Ipv4Addr, Ipv4Form) {
        match n(s).host {
            Host::Ipv4 { addr, form } => (addr, form),
            other => panic!("{s}: not an IPv4 host: {other:?}"),
        }
    }

    #[test]
    fn every_ipv4_form_means_the_same_address() {
        let a = Ipv4Addr::new(192, 168, 1, 1);
        assert_eq!(v4("http://192.168.1.1/"), (a, Ipv4Form::Dotted));
        assert_eq!(v4("http://3232235777/"), (a, Ipv4Form::Integer));
        assert_eq!(v4("http://0xC0A80101/x"), (a, Ipv4Form::Hex));
        assert_eq!(v4("http://030052000401/"), (a, Ipv4Form::Octal));
        assert_eq!(v4("http://0xc0.0250.1.1/"), (a, Ipv4Form::Mixed));
        assert_eq!(v4("http://192.168.257/"), (a, Ipv4Form::Mixed));
        assert_eq!(v4("http://user@192.168.1.1:8080/"), (a, Ipv4Form::Dotted));
        assert_eq!(v4("http://%31%39%32.168.1.1/"), (a, Ipv4Form::Dotted));
        assert!(n("http://%31%39%32.168.1.1/").host_escaped);
    }

    #[test]
    fn ipv6_literals_are_read() {
        let u = n("http://[2001:DB8::1]:8080/a");
        assert_eq!(u.host, Host::Ipv6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.as_str(), "http://[2001:db8::1]:8080/a");
    }

    #[test]
    fn punycode_and_unicode_hosts_meet_in_the_middle() {
        // "bücher.example" both ways.
        for s in ["http://BÜCHER.example/", "http://xn--bcher-kva.example/"] {
            match n(s).host {
                Host::Domain {
                    ascii,
                    unicode,
                    registrable,
                } => {
                    assert_eq!(ascii, "xn--bcher-kva.example");
                    assert_eq!(unicode, "bücher.example");
                    assert_eq!(registrable, "xn--bcher-kva.example");
                }
                other => panic!("{other:?}"),
            }
        }
        // Cyrillic "а" in paypal: the reader sees paypal.com.
        match n("https://p\u{430}ypal.com/").host {
            Host::Domain { ascii, unicode, .. } => {
                assert!(ascii.starts_with("xn--"), "{ascii}");
                assert_eq!(unicode, "p\u{430}ypal.com");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn percent_escapes_case_and_trailing_dots_in_the_host_are_normalised() {
        let u = n("HTTP://%70ay%50al.COM./a%20b");
        assert!(u.host_escaped);
        assert_eq!(u.host.ascii(), "paypal.com");
        assert_eq!(u.host.registrable(), "paypal.com");
        assert_eq!(u.as_str(), "http://paypal.com./a%20b");
    }

    #[test]
    fn userinfo_is_not_the_host() {
        let u = n("http://paypal.com@evil.test/login");
        assert_eq!(u.host.ascii(), "evil.test");
        assert_eq!(u.userinfo.as_deref(), Some("paypal.com"));
        let u = n("http://www.paypal.com%2Fsignin:pw@198.51.100.7/");
        assert_eq!(u.userinfo.as_deref(), Some("www.paypal.com/signin:pw"));
        assert_eq!(n("http://example.com/").userinfo, None);
    }

    #[test]
    fn backslashes_defanging_and_bare_www_are_read_as_a_browser_would() {
        assert_eq!(n("http:\\\\evil.test\\x").host.ascii(), "evil.test");
        assert_eq!(n("\\\\evil.test/x").host.ascii(), "evil.test");
        let u = n("hxxps[:]//evil[.]test/a");
        assert!(u.defanged);
        assert_eq!(u.as_str(), "https://evil.test/a");
        assert_eq!(
            n("WWW.Example.ORG/path").as_str(),
            "http://www.example.org/path"
        );
        assert_eq!(n("//cdn.example.net/x").host.ascii(), "cdn.example.net");
        assert!(!n("http://example.com/").defanged);
    }

    #[test]
    fn non_web_and_relative_links_are_not_urls() {
        for s in [
            "mailto:a@b.test",
            "cid:part1",
            "javascript:alert(1)",
            "/path",
            "page.html",
            "",
            "http://",
            "www.",
            "wwwx.example",
            "쇼핑호스트란?",
            "ww\u{e9}.example",
        ] {
            assert!(normalise(s).is_none(), "{s}");
        }
    }

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        assert_eq!(registrable_domain("www.example.co.uk"), "example.co.uk");
        assert_eq!(registrable_domain("a.b.example.com"), "example.com");
        assert_eq!(registrable_domain("evil.test"), "evil.test");
        assert_eq!(registrable_domain("com"), "com");
        assert_eq!(registrable_label("example.co.uk"), "example");
    }

    #[test]
    fn domain_lists_cover_subdomains_only_at_a_dot() {
        assert!(host_is_under("mail.example.com", "example.com"));
        assert!(host_is_under("example.com", "Example.COM."));
        assert!(!host_is_under("badexample.com", "example.com"));
        assert!(!host_is_under("example.com", ""));
        assert!(host_is_under("xn--bcher-kva.example", "bücher.example"));
    }
}
