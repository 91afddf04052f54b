//! Links already wrapped by another vendor's link protection: recognised by
//! their host and, where the format allows, decoded back to the URL they
//! stand for, so that the rewriter can put the original in its own token and
//! the reader sees one wrapper, ours, checked at click time by our lists.
//!
//! Formats read:
//!
//! - Microsoft Defender for Office 365 Safe Links: a host under
//!   `safelinks.protection.outlook.com` (also `safelinks.protection.office365.us`
//!   and `safelinks.protection.apps.mil`, the government clouds); the original
//!   is the `url` query parameter, form-encoded (`%XX`, `+` for a space).
//! - Proofpoint URL Defense (`urldefense.proofpoint.com`, `urldefense.com`,
//!   `urldefense.us`), as Proofpoint's published decoder (`urldecoder.py`)
//!   reads it:
//!   - v1, `/v1/url?u=<percent-encoded>&k=…`: `u` up to `&k=`, percent-decoded,
//!     then its HTML character references decoded;
//!   - v2, `/v2/url?u=<encoded>&d=…` (or `&c=`): in `u`, `-` stands for `%`
//!     and `_` for `/`; then as v1;
//!   - v3, `/v3/__<url>__;<base64url>!<…>`: `<url>` up to the first `__;`,
//!     a lost second slash after the scheme put back (`https:/x`), percent-
//!     decoded; then each `*` is replaced by the next character of the
//!     base64url run (decoded as UTF-8, counted in characters, not bytes), and
//!     each `**` followed by one of `A`–`Z`, `a`–`z`, `0`–`9`, `-`, `_` by the
//!     next 2 to 65 characters (`A` = 2, `B` = 3, …, `_` = 65). Substituted
//!     characters are not read again.
//! - Mimecast URL Protect (`protect-<region>.mimecast.com`, hosts under
//!   `mimecastprotect.com`): the path is an opaque id; recognised, never decoded.
//!
//! A decoded URL counts only if it is itself an absolute `http`/`https` URL
//! (as a browser reads it: see [the rewriting](mod@crate::rewrite)); it is unwrapped again
//! when it is itself wrapped (Safe Links around Proofpoint is common), at most
//! [`MAX_NESTING`] times.
//!
//! Hostile input: any text may look like a vendor link. Nothing here panics;
//! URLs over [`MAX_WRAPPED_LEN`] bytes are recognised by their host but not
//! decoded; a decoding that does not come out right (missing markers,
//! base64 or UTF-8 that does not decode, a `*` with no character left for it)
//! gives no URL rather than a guess. Every step is linear in the input.

use crate::rewrite::{url_host, web_url};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::Deserialize;

/// Wrapped URLs longer than this are recognised but not decoded.
pub const MAX_WRAPPED_LEN: usize = 16 * 1024;
/// Wrappers inside wrappers undone, at most.
pub const MAX_NESTING: usize = 4;

/// Whose link protection wrapped a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// Microsoft Defender for Office 365 Safe Links.
    SafeLinks,
    /// Proofpoint URL Defense (v1, v2, v3).
    Proofpoint,
    /// Mimecast URL Protect (opaque: never decoded).
    Mimecast,
}

impl Vendor {
    /// A short name for logs and traces.
    pub fn name(self) -> &'static str {
        match self {
            Vendor::SafeLinks => "safelinks",
            Vendor::Proofpoint => "proofpoint",
            Vendor::Mimecast => "mimecast",
        }
    }
}

/// What the rewriter does with a link another vendor wrapped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VendorLinks {
    /// Leave it exactly as it is (counted as kept).
    Keep,
    /// Replace it with our link carrying the URL it wraps, or with our link
    /// carrying the vendor's link when that cannot be decoded.
    #[default]
    Unwrap,
}

/// Whether `url` is a link wrapped by a known vendor: the outermost vendor and,
/// when it can be decoded, the original URL (unwrapped through nested
/// wrappers, at most [`MAX_NESTING`] levels; a wrapper inside that cannot be
/// decoded, such as Mimecast's, is the result). `None` for any other URL.
pub fn recognise(url: &str) -> Option<(Vendor, Option<String>)> {
    let url = web_url(url)?;
    let (vendor, mut decoded) = recognise_one(&url)?;
    for _ in 1..MAX_NESTING {
        let Some(inner) = decoded.as_deref() else {
            break;
        };
        match recognise_one(inner) {
            Some((_, Some(next))) => decoded = Some(next),
            _ => break,
        }
    }
    Some((vendor, decoded))
}

/// One level: `url` is already a normalised web URL.
fn recognise_one(url: &str) -> Option<(Vendor, Option<String>)> {
    let host = url_host(url);
    let vendor = vendor_of(&host)?;
    if url.len() > MAX_WRAPPED_LEN {
        return Some((vendor, None));
    }
    // What follows the authority: `scheme://` is there, as `web_url` writes it.
    let after_scheme = url.split_once("://").map_or("", |(_, r)| r);
    let tail = after_scheme
        .find(['/', '?', '#'])
        .map_or("", |n| &after_scheme[n..]);
    let decoded = match vendor {
        Vendor::SafeLinks => safelinks(tail),
        Vendor::Proofpoint => proofpoint(tail),
        Vendor::Mimecast => None,
    };
    Some((vendor, decoded.and_then(|d| web_url(&d))))
}

/// The vendor whose link-protection host `host` (lower-cased) is.
fn vendor_of(host: &str) -> Option<Vendor> {
    let under = |domain: &str| {
        host == domain
            || host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.ends_with('.'))
    };
    if [
        "safelinks.protection.outlook.com",
        "safelinks.protection.office365.us",
        "safelinks.protection.apps.mil",
    ]
    .into_iter()
    .any(under)
    {
        return Some(Vendor::SafeLinks);
    }
    if matches!(
        host,
        "urldefense.proofpoint.com" | "urldefense.com" | "urldefense.us"
    ) {
        return Some(Vendor::Proofpoint);
    }
    let mimecast = host
        .strip_suffix(".mimecast.com")
        .is_some_and(|l| l == "protect" || l.starts_with("protect-") && !l.contains('.'));
    if mimecast || under("mimecastprotect.com") {
        return Some(Vendor::Mimecast);
    }
    None
}

/// The query of `tail` (path, query, fragment): after `?`, before `#`.
fn query(tail: &str) -> Option<&str> {
    let q = &tail[tail.find('?')? + 1..];
    Some(q.split('#').next().unwrap_or(q))
}

/// Safe Links: the `url` parameter, form-decoded.
fn safelinks(tail: &str) -> Option<String> {
    let value = query(tail)?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.eq_ignore_ascii_case("url").then_some(v)
    })?;
    let plus_as_space = value.replace('+', " ");
    String::from_utf8(percent_decode(plus_as_space.as_bytes())).ok()
}

/// Proofpoint URL Defense, by the version in the path.
fn proofpoint(tail: &str) -> Option<String> {
    if let Some(rest) = tail.strip_prefix("/v3/__") {
        return proofpoint_v3(rest);
    }
    let (v2, rest) = if let Some(rest) = tail.strip_prefix("/v2/url?") {
        (true, rest)
    } else {
        (false, tail.strip_prefix("/v1/url?")?)
    };
    // `u` starts the query or follows an `&`.
    let start = if rest.starts_with("u=") {
        2
    } else {
        rest.find("&u=")? + 3
    };
    let value = &rest[start..];
    // Up to the next parameter the reference decoder looks for (`&amp;` as
    // plain text writes it in HTML source).
    let ends: &[&str] = if v2 {
        &["&d=", "&c=", "&amp;d=", "&amp;c="]
    } else {
        &["&k=", "&amp;k="]
    };
    let end = ends.iter().filter_map(|e| value.find(e)).min()?;
    let value = &value[..end];
    let encoded = if v2 {
        value.replace('-', "%").replace('_', "/")
    } else {
        value.to_string()
    };
    let decoded = percent_decode(encoded.as_bytes());
    String::from_utf8(portcullis_scan::decode_html_references(&decoded)).ok()
}

/// Proofpoint v3: `rest` follows `/v3/__`.
fn proofpoint_v3(rest: &str) -> Option<String> {
    // `<url>__;` with at least one character of URL, then the run up to `!`.
    let first = rest.chars().next()?.len_utf8();
    let sep = rest[first..].find("__;")? + first;
    let url = &rest[..sep];
    let after = &rest[sep + 3..];
    let run = &after[..after.find('!')?];
    let url = restore_second_slash(url);
    let url = String::from_utf8(percent_decode(url.as_bytes())).ok()?;
    const RUN: GeneralPurpose = GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let bytes = RUN.decode(run.trim_end_matches('=')).ok()?;
    let chars: Vec<char> = String::from_utf8(bytes).ok()?.chars().collect();
    let mut next = chars.into_iter();
    let mut out = String::with_capacity(url.len() + 16);
    let mut it = url.chars();
    while let Some(c) = it.next() {
        if c != '*' {
            out.push(c);
            continue;
        }
        // `**` and a length character; a `*` before the last character, or
        // a lone one, stands for one character.
        let mut ahead = it.clone();
        let run_len = match (ahead.next(), ahead.next()) {
            (Some('*'), Some(l)) => Some(run_length(l)?),
            _ => None,
        };
        match run_len {
            Some(n) => {
                it = ahead;
                for _ in 0..n {
                    out.push(next.next()?);
                }
            }
            None => out.push(next.next()?),
        }
    }
    Some(out)
}

/// The characters a `**` run stands for, by its length character.
fn run_length(c: char) -> Option<usize> {
    let n = match c {
        'A'..='Z' => c as usize - 'A' as usize,
        'a'..='z' => 26 + c as usize - 'a' as usize,
        '0'..='9' => 52 + c as usize - '0' as usize,
        '-' => 62,
        '_' => 63,
        _ => return None,
    };
    Some(n + 2)
}

/// `scheme:/x…` as `scheme://x…` (v3 links sometimes lose a slash).
fn restore_second_slash(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once(":/") {
        let scheme_ok = !scheme.is_empty()
            && scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-'));
        let mut r = rest.chars();
        let single = r.next().is_some_and(|c| c != '/') && r.next().is_some();
        if scheme_ok && single {
            return format!("{scheme}://{rest}");
        }
    }
    url.to_string()
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits stays.
fn percent_decode(b: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn decoded(url: &str) -> Option<(Vendor, Option<String>)> {
        recognise(url)
    }

    fn unwrapped(url: &str) -> String {
        match recognise(url) {
            Some((_, Some(u))) => u,
            other => panic!("{url}: {other:?}"),
        }
    }

    /// Percent-encoding of everything but unreserved characters, as Safe
    /// Links writes its `url` parameter.
    fn pct(s: &str) -> String {
        s.bytes()
            .map(|c| {
                if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                    (c as char).to_string()
                } else {
                    format!("%{c:02X}")
                }
            })
            .collect()
    }

    /// A Proofpoint v3 link for `url`, with the characters in `replace`
    /// replaced (runs of 2 to 65 written `**X`), as Proofpoint writes them.
    fn v3(url: &str, replace: &str) -> String {
        let chars: Vec<char> = url.chars().collect();
        let (mut body, mut run) = (String::new(), String::new());
        let mut i = 0;
        while i < chars.len() {
            let n = chars[i..]
                .iter()
                .take_while(|c| replace.contains(**c))
                .count()
                .min(65);
            match n {
                0 => body.push(chars[i]),
                1 => body.push('*'),
                _ => {
                    let code =
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[n - 2];
                    body.push_str("**");
                    body.push(code as char);
                }
            }
            run.extend(&chars[i..i + n]);
            i += n.max(1);
        }
        format!(
            "https://urldefense.com/v3/__{body}__;{}!!AbCdEf!GhIjKl$",
            URL_SAFE_NO_PAD.encode(run.as_bytes())
        )
    }

    #[test]
    fn safe_links_are_decoded() {
        let u = "https://nam02.safelinks.protection.outlook.com/?url=https%3A%2F%2Fwww.example.test%2Fa%2Fb%3Fx%3D1%26y%3D2&data=05%7C01%7Cbob%40example.test%7C0f5c%7C0%7C0%7C6378%7CUnknown&sdata=AbCd%2BEf%3D&reserved=0";
        assert_eq!(
            decoded(u),
            Some((
                Vendor::SafeLinks,
                Some("https://www.example.test/a/b?x=1&y=2".into())
            ))
        );
        // Government clouds, upper case, `+` as a space (encoded again).
        assert_eq!(
            unwrapped("HTTPS://GCC02.SafeLinks.Protection.Office365.US/?data=x&URL=http%3a%2f%2fa.example.test%2fq%3fs%3da+b"),
            "http://a.example.test/q?s=a%20b"
        );
        assert_eq!(
            unwrapped(
                "https://x.safelinks.protection.apps.mil/?url=http%3A%2F%2Fb.example.test%2F"
            ),
            "http://b.example.test/"
        );
        // No `url`, or one that is not a web URL: recognised, not decoded.
        for u in [
            "https://eur01.safelinks.protection.outlook.com/?data=x",
            "https://eur01.safelinks.protection.outlook.com/",
            "https://eur01.safelinks.protection.outlook.com/?url=mailto%3Aa%40example.test",
            "https://eur01.safelinks.protection.outlook.com/?url=%2Frelative",
            "https://eur01.safelinks.protection.outlook.com/?url=http%3A%2F%2F%FF.example.test",
        ] {
            assert_eq!(decoded(u), Some((Vendor::SafeLinks, None)), "{u}");
        }
        // Lookalike hosts are not Safe Links.
        for u in [
            "https://safelinks.protection.outlook.com.evil.test/?url=http%3A%2F%2Fa.test",
            "https://xsafelinks.protection.outlook.com/?url=http%3A%2F%2Fa.test",
            "mailto:x@nam02.safelinks.protection.outlook.com",
        ] {
            assert_eq!(decoded(u), None, "{u}");
        }
    }

    #[test]
    fn proofpoint_v1_and_v2_as_documented() {
        // The examples of Proofpoint's decoder and its URL decode API.
        assert_eq!(
            decoded("https://urldefense.proofpoint.com/v2/url?u=http-3A__links.mkt3337.com_ctt-3Fkn-3D3-26ms-3DMzQ3OTg3MDQS1-26r-3DMzkxNzk3NDkwMDA0S0-26b-3D0-26j-3DMTMwMjA1ODYzNQS2-26mt-3D1-26rt-3D0&d=DwMFaQ&c=Vxt5e0Osvvt2gflwSlsJ5DmPGcPvTRKLJyp031rXjhg&r=MujLDFBJstxoxZI_GKbsW7wxGM7nnIK__qZvVy6j9Wc&m=QJGhloAyfD0UZ6n8r6y9dF-khNKqvRAIWDRU_K65xPI&s=ew-rOtBFjiX1Hgv71XQJ5BEgl9TPaoWRm_Xp9Nuo8bk&e="),
            Some((
                Vendor::Proofpoint,
                Some("http://links.mkt3337.com/ctt?kn=3&ms=MzQ3OTg3MDQS1&r=MzkxNzk3NDkwMDA0S0&b=0&j=MTMwMjA1ODYzNQS2&mt=1&rt=0".into())
            ))
        );
        let v1 = "https://urldefense.proofpoint.com/v1/url?u=http://www.bouncycastle.org/&k=oIvRg1%2BdGAgOoM1BIlLLqw%3D%3D%0A&r=IKM5u8%2B%2F%2Fi8EBhWOS%2BqGbTqCC%2BrMqWI%2FVfEAEsQO%2F0Y%3D%0A&m=Ww6iaHO73mDQpPQwOwfLfN8WMapqHyvtu8jM8SjqmVQ%3D%0A&s=d3583cfa53dade97025bc6274c6c8951dc29fe0f38830cf8e5a447723b9f1c9a";
        assert_eq!(unwrapped(v1), "http://www.bouncycastle.org/");
        // As plain text shows the HTML source: `&amp;k=`.
        assert_eq!(
            unwrapped(&v1.replace("&k=", "&amp;k=")),
            "http://www.bouncycastle.org/"
        );
        // v2 with `&c=` first, HTML references inside, `_` for `/`.
        assert_eq!(
            unwrapped("https://urldefense.proofpoint.com/v2/url?u=https-3A__a.example.test_p-3Fx-3D1-26amp-3By-3D2&c=x&d=y"),
            "https://a.example.test/p?x=1&y=2"
        );
        // Without the closing parameter, or without `u`: not decoded.
        for u in [
            "https://urldefense.proofpoint.com/v2/url?u=http-3A__a.example.test_",
            "https://urldefense.proofpoint.com/v2/url?d=x&c=y",
            "https://urldefense.proofpoint.com/v1/url?u=http://a.example.test/",
            "https://urldefense.proofpoint.com/v9/url?u=http://a.example.test/&k=1",
            "https://urldefense.proofpoint.com/",
        ] {
            assert_eq!(decoded(u), Some((Vendor::Proofpoint, None)), "{u}");
        }
    }

    #[test]
    fn proofpoint_v3_as_documented() {
        // Proofpoint's own example: `Kw` is `+`.
        let u = "https://urldefense.com/v3/__https://google.com:443/search?q=a*test&gs=ps__;Kw!-612Flbf0JvQ3kNJkRi5Jg!Ue6tQudNKaShHg93trcdjqDP8se2ySE65jyCIe2K1D_uNjZ1Lnf6YLQERujngZv9UWf66ujQIQ$";
        assert_eq!(
            decoded(u),
            Some((
                Vendor::Proofpoint,
                Some("https://google.com:443/search?q=a+test&gs=ps".into())
            ))
        );
        assert_eq!(
            unwrapped(&u.replace("urldefense.com", "urldefense.us")),
            "https://google.com:443/search?q=a+test&gs=ps"
        );
        // From Proofpoint's decode API: `JSM` is `%#`.
        assert_eq!(
            unwrapped("https://urldefense.com/v3/__https://firebasestorage.googleapis.com/v0/b/x.appspot.com/o/owa*2Findex.html?alt=media&token=0249*vicky@example.test__;JSM!!Fjc1LPEtn8I!xxxxx$"),
            "https://firebasestorage.googleapis.com/v0/b/x.appspot.com/o/owa%2Findex.html?alt=media&token=0249#vicky@example.test"
        );
        // Nothing replaced: an empty run.
        assert_eq!(
            unwrapped("https://urldefense.com/v3/__https://lore.kernel.org/all/20231001111313.77586-1-x@example.test__;!!ACWV5N9M2RV99hQ!MOnoujF4Plf$"),
            "https://lore.kernel.org/all/20231001111313.77586-1-x@example.test"
        );
        // The lost second slash.
        assert_eq!(
            unwrapped("https://urldefense.com/v3/__https:/a.example.test/x__;!!x$"),
            "https://a.example.test/x"
        );
    }

    #[test]
    fn proofpoint_v3_runs_and_characters() {
        let cases = [
            ("https://a.example.test/?q=a+b&r=%20#top", "+%#"),
            // Runs of every length code, and characters beyond ASCII
            // counted as characters.
            ("https://a.example.test/x%%y", "%"),
            (
                "https://a.example.test/é€😀é€😀/?a=[1]{2}|^~%20",
                "é€😀[]{}|^~%",
            ),
        ];
        for (url, replace) in cases {
            let w = v3(url, replace);
            assert_eq!(unwrapped(&w), url, "{w}");
        }
        for n in 2..=65 {
            let url = format!("https://a.example.test/{}z", "+".repeat(n));
            let w = v3(&url, "+");
            assert!(w.contains("**"), "{w}");
            assert_eq!(unwrapped(&w), url, "{n}");
        }
        // 66 in a row: a run of 65 and one more.
        let url = format!("https://a.example.test/{}", "+".repeat(66));
        let w = v3(&url, "+");
        assert!(w.contains("**_*__;"), "{w}");
        assert_eq!(unwrapped(&w), url);
        // Too few characters in the run, a bad length code, bad base64,
        // invalid UTF-8, no `__;`, no `!`: not decoded.
        for u in [
            "https://urldefense.com/v3/__https://a.example.test/**C__;Kw!!x$",
            "https://urldefense.com/v3/__https://a.example.test/*x*__;Kw!!x$",
            "https://urldefense.com/v3/__https://a.example.test/**!x__;KysrKysr!!x$",
            "https://urldefense.com/v3/__https://a.example.test/*__;K$w!!x$",
            "https://urldefense.com/v3/__https://a.example.test/*__;_w!!x$",
            "https://urldefense.com/v3/__https://a.example.test/",
            "https://urldefense.com/v3/__https://a.example.test/__;",
            "https://urldefense.com/v3/____;!!",
        ] {
            assert_eq!(decoded(u), Some((Vendor::Proofpoint, None)), "{u}");
        }
        // `**` at the very end stands for two single characters.
        assert_eq!(
            unwrapped("https://urldefense.com/v3/__https://a.example.test/x**__;Kys!!x$"),
            "https://a.example.test/x++"
        );
    }

    #[test]
    fn mimecast_is_recognised_and_never_decoded() {
        for u in [
            "https://protect-eu.mimecast.com/s/AbCdEfGhIjKlMnOpQr?domain=example.test",
            "https://protect-us.mimecast.com/s/x",
            "https://protect.mimecast.com/s/x",
            "https://url.uk.m.mimecastprotect.com/s/AbCd?domain=example.test",
        ] {
            assert_eq!(decoded(u), Some((Vendor::Mimecast, None)), "{u}");
        }
        for u in [
            "https://www.mimecast.com/",
            "https://x.protect-eu.mimecast.com/s/x",
            "https://mimecastprotect.com.evil.test/s/x",
        ] {
            assert_eq!(decoded(u), None, "{u}");
        }
    }

    #[test]
    fn nested_wrappers_are_undone_a_bounded_number_of_times() {
        let pp = "https://urldefense.proofpoint.com/v2/url?u=https-3A__www.example.test_login-3Fa-3D1&d=DwMFaQ&c=x&r=y&m=z&s=w&e=";
        let safe = format!(
            "https://nam12.safelinks.protection.outlook.com/?url={}&data=05%7C01&sdata=x&reserved=0",
            pct(pp)
        );
        assert_eq!(
            decoded(&safe),
            Some((
                Vendor::SafeLinks,
                Some("https://www.example.test/login?a=1".into())
            ))
        );
        // Seen in the wild: Safe Links around Proofpoint v3.
        assert_eq!(
            unwrapped("https://nam12.safelinks.protection.outlook.com/?url=https%3A%2F%2Furldefense.com%2Fv3%2F__http%3A%2F%2Fsites.computer.org%2Fdebull%2Fbull_issues.html__%3B!!OToaGQ!7W9jIklmmV17ZZ9Go5i6foqOOILxtAEH5DD2aBvA2_ghSzJbPIROMONSwOafiqU46w%24&data=05%7C01%7Cx&reserved=0"),
            "http://sites.computer.org/debull/bull_issues.html"
        );
        // Safe Links around Mimecast: the Mimecast link.
        let mc = "https://protect-eu.mimecast.com/s/AbCd?domain=example.test";
        assert_eq!(
            unwrapped(&format!(
                "https://eur01.safelinks.protection.outlook.com/?url={}",
                pct(mc)
            )),
            mc
        );
        // Deeper than MAX_NESTING: what the last level undone gives.
        let mut url = "https://deep.example.test/".to_string();
        for _ in 0..MAX_NESTING + 2 {
            url = format!(
                "https://eur01.safelinks.protection.outlook.com/?url={}",
                pct(&url)
            );
        }
        let (vendor, inner) = recognise(&url).unwrap();
        assert_eq!(vendor, Vendor::SafeLinks);
        let inner = inner.unwrap();
        assert_eq!(
            recognise(&inner),
            Some((Vendor::SafeLinks, Some("https://deep.example.test/".into())))
        );
    }

    #[test]
    fn other_urls_are_not_recognised() {
        for u in [
            "https://www.example.test/?url=http%3A%2F%2Fa.test",
            "https://urldefense.com.evil.test/v3/__http://a.test__;!!",
            "http://",
            "",
            "ftp://urldefense.com/v3/__http://a.test__;!!",
        ] {
            assert_eq!(recognise(u), None, "{u}");
        }
    }

    #[test]
    fn over_long_wrapped_urls_are_recognised_only() {
        let long = format!(
            "https://eur01.safelinks.protection.outlook.com/?url=http%3A%2F%2Fa.test%2F{}",
            "x".repeat(MAX_WRAPPED_LEN)
        );
        assert_eq!(recognise(&long), Some((Vendor::SafeLinks, None)));
    }

    #[test]
    fn the_policy_reads_from_configuration() {
        #[derive(Deserialize)]
        struct C {
            #[serde(default)]
            v: VendorLinks,
        }
        let read = |s: &str| toml::from_str::<C>(s).map(|c| c.v);
        assert_eq!(read("v = \"keep\"").unwrap(), VendorLinks::Keep);
        assert_eq!(read("v = \"unwrap\"").unwrap(), VendorLinks::Unwrap);
        assert_eq!(read("").unwrap(), VendorLinks::Unwrap);
        assert!(read("v = \"Keep\"").is_err());
    }

    #[test]
    fn hostile_and_truncated_input_never_panics() {
        let seeds = [
            "https://urldefense.com/v3/__https://google.com:443/search?q=a*test&gs=ps__;Kw!-612Flbf0JvQ3kNJkRi5Jg!Ue6tQ$",
            "https://urldefense.com/v3/__https://a.example.test/**B*é**__;w6nDqcOpw6k!!x$",
            "https://urldefense.proofpoint.com/v2/url?u=http-3A__a.example.test_-C3-A9-26&d=1&c=2",
            "https://urldefense.proofpoint.com/v1/url?u=http%3A%2F%2Fa.test%2F%E2%82&k=1",
            "https://nam02.safelinks.protection.outlook.com/?url=https%3A%2F%2Furldefense.com%2Fv3%2F__http%3A%2F%2Fa.test__%3B!!x&data=1",
            "https://protect-eu.mimecast.com/s/x",
        ];
        let alphabet: Vec<char> = "*_-;!%2F3A:/?&=u#\\\t é€😀Kwx".chars().collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut step = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for seed in seeds {
            // Every prefix (on character boundaries).
            for (n, _) in seed.char_indices() {
                let _ = recognise(&seed[..n]);
            }
            // Random edits.
            for _ in 0..3000 {
                let mut chars: Vec<char> = seed.chars().collect();
                for _ in 0..1 + step() % 6 {
                    let at = (step() as usize) % (chars.len() + 1);
                    let c = alphabet[(step() as usize) % alphabet.len()];
                    match step() % 3 {
                        0 if at < chars.len() => chars[at] = c,
                        1 if at < chars.len() => {
                            chars.remove(at);
                        }
                        _ => chars.insert(at, c),
                    }
                }
                let s: String = chars.into_iter().collect();
                if let Some((_, Some(d))) = recognise(&s) {
                    // A decoded URL is always a web URL.
                    assert!(web_url(&d).is_some(), "{s} -> {d}");
                }
            }
        }
        // Random bytes after a vendor prefix.
        for prefix in [
            "https://urldefense.com/v3/__",
            "https://urldefense.proofpoint.com/v2/url?u=",
            "https://a.safelinks.protection.outlook.com/?url=",
        ] {
            for _ in 0..3000 {
                let len = (step() % 80) as usize;
                let tail: String = (0..len)
                    .map(|_| alphabet[(step() as usize) % alphabet.len()])
                    .collect();
                let _ = recognise(&format!("{prefix}{tail}"));
            }
        }
    }
}
