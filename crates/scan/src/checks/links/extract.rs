//! Finding URLs in decoded message text: plain text (`http://`, `https://`,
//! `ftp://`, bare `www.` forms, and defanged `hxxp://` / `example[.]com` forms
//! that are reported as such) and HTML (`href`, `src`, `background`, `action` and
//! `formaction` attributes with their character references decoded, the visible
//! text of each `<a>` element, and URLs written in the visible text).
//!
//! Standards: RFC 3986 (URI syntax) and RFC 3987 (IRIs) for what a URL may contain;
//! the WHATWG HTML standard for tags, attributes, comments and character
//! references (only the handful of named references that matter for URLs, and
//! every numeric one).
//!
//! Hostile input: the text is whatever the sender wrote. Every scan is a single
//! forward pass (memchr and the linear-time `regex` crate, no backtracking), at
//! most [`MAX_LINKS`] URLs are kept, each cut at [`MAX_URL_BYTES`], link text at
//! [`MAX_ANCHOR_TEXT_BYTES`]; unclosed quotes, comments and tags end at the end
//! of the input, as in a browser.

use memchr::{memchr, memmem};
use regex::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

/// URLs kept per message; a message with more is marked truncated.
pub(crate) const MAX_LINKS: usize = 1000;
/// Bytes kept of one URL (the host, which the checks need, comes first).
pub(crate) const MAX_URL_BYTES: usize = 2048;
/// Bytes kept of the visible text of one `<a>` element.
pub(crate) const MAX_ANCHOR_TEXT_BYTES: usize = 512;

/// Where in the message a URL was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// In plain text, or in the visible text of HTML.
    Text,
    /// A link the reader clicks: `href` of `<a>`, `<area>` and the like.
    Href,
    /// Something the client loads by itself: `src`, `background`.
    Src,
    /// Where a form sends what is typed into it: `action`, `formaction`.
    Action,
}

/// One URL as written, before normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawLink {
    pub origin: Origin,
    /// The URL text with HTML character references decoded, at most
    /// [`MAX_URL_BYTES`].
    pub text: String,
    /// For an `<a href>`: its visible text, whitespace collapsed.
    pub anchor: Option<String>,
}

/// The URLs found so far, bounded by [`MAX_LINKS`].
#[derive(Debug, Default)]
pub(crate) struct Collector {
    pub links: Vec<RawLink>,
    /// More URLs were present than were kept.
    pub truncated: bool,
}

impl Collector {
    /// Whether another URL may still be kept.
    pub fn has_room(&self) -> bool {
        self.links.len() < MAX_LINKS
    }

    fn push(&mut self, origin: Origin, text: &str, anchor: Option<String>) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        if !self.has_room() {
            self.truncated = true;
            return;
        }
        self.links.push(RawLink {
            origin,
            text: truncate(text, MAX_URL_BYTES).to_string(),
            anchor,
        });
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A URL in running text: a scheme (also the defanged `hxxp`, `h**p`, `fxp`
/// spellings, `[:]` and backslash separators) or a `www.` host, then everything
/// up to whitespace or a character that cannot be in a URL written in text.
static URL_IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern; the tests compile it.
    Regex::new(
        r#"(?i)(?-u:\b)(?:(?:https?|ftp|hxxps?|hxtps?|h\*\*ps?|h\[tt\]ps?|fxp)(?:://|\[:\]//|\[://\]|:\\\\)|www\d{0,3}(?:\.|\[\.\]))[^\s<>"'`\x00-\x1f\x7f]+"#,
    )
    .expect("constant URL pattern compiles")
});

/// Collects every URL written in plain text.
pub(crate) fn scan_text(text: &str, out: &mut Collector) {
    if !might_hold_url(text.as_bytes()) {
        return;
    }
    for m in URL_IN_TEXT.find_iter(text) {
        if !out.has_room() {
            out.truncated = true;
            return;
        }
        let url = trim_url_end(truncate(m.as_str(), MAX_URL_BYTES));
        // A bare "www." with nothing after it is a word, not a link.
        if url.len() > 4 && !url.eq_ignore_ascii_case("www.") {
            out.push(Origin::Text, url, None);
        }
    }
}

/// A quick test, much cheaper than starting the regex on each small text node of
/// HTML: whether `b` has a `:` followed by `/`, `\\` or `]` (every scheme form)
/// or a `www`.
fn might_hold_url(b: &[u8]) -> bool {
    let colon = memchr::memchr_iter(b':', b)
        .any(|i| matches!(b.get(i + 1), Some(b'/' | b'\\' | b']' | b'[')));
    colon
        || memchr::memchr2_iter(b'w', b'W', b).any(|i| {
            b.get(i..i + 3)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"www"))
        })
}

/// Drops what text puts after a URL: sentence punctuation, and closing brackets
/// that have no opening one inside the URL. Brackets are counted once, so the
/// cost is linear in the URL's length.
pub(crate) fn trim_url_end(s: &str) -> &str {
    let count = |c: char| s.bytes().filter(|&b| b == c as u8).count();
    // (opening, closing) counts of (), [] and {}.
    let mut pairs = [
        (count('('), count(')')),
        (count('['), count(']')),
        (count('{'), count('}')),
    ];
    let mut end = s.len();
    while let Some(last) = s[..end].chars().next_back() {
        let drop = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '*' | '\'' | '"' | '\\' => true,
            ')' | ']' | '}' => {
                let pair = &mut pairs[match last {
                    ')' => 0,
                    ']' => 1,
                    _ => 2,
                }];
                let unbalanced = pair.0 < pair.1;
                if unbalanced {
                    pair.1 -= 1;
                }
                unbalanced
            }
            _ => false,
        };
        if !drop {
            break;
        }
        end -= last.len_utf8();
    }
    &s[..end]
}

/// Decodes HTML character references: every numeric one and the named ones that
/// appear in URLs and link text. Unknown or malformed references stay as written.
pub(crate) fn decode_entities(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    let Some(first) = memchr(b'&', b) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..first]);
    let mut i = first;
    while i < b.len() {
        if b[i] != b'&' {
            let next = memchr(b'&', &b[i..]).map_or(b.len(), |n| i + n);
            out.push_str(&s[i..next]);
            i = next;
            continue;
        }
        match parse_reference(&b[i + 1..]) {
            Some((c, used)) => {
                out.push(c);
                i += 1 + used;
            }
            None => {
                out.push('&');
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// [`decode_entities`] over bytes in any charset (an attribute value as it
/// stands in a part): references become UTF-8, every other byte stays.
pub(crate) fn decode_entities_bytes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'&' {
            if let Some((c, used)) = parse_reference(&b[i + 1..]) {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += 1 + used;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Parses one character reference after its `&`: the character and the bytes
/// used (the `;` included when present).
fn parse_reference(b: &[u8]) -> Option<(char, usize)> {
    if b.first() == Some(&b'#') {
        let (hex, start) = match b.get(1) {
            Some(b'x' | b'X') => (true, 2),
            _ => (false, 1),
        };
        let digits = b[start..]
            .iter()
            .take(9)
            .take_while(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                }
            })
            .count();
        if digits == 0 || digits > 8 {
            return None;
        }
        let text = std::str::from_utf8(&b[start..start + digits]).ok()?;
        let n = u32::from_str_radix(text, if hex { 16 } else { 10 }).ok()?;
        // As browsers do: NUL, surrogates and out-of-range become U+FFFD.
        let c = char::from_u32(n)
            .filter(|&c| c != '\0')
            .unwrap_or('\u{fffd}');
        let mut used = start + digits;
        if b.get(used) == Some(&b';') {
            used += 1;
        }
        return Some((c, used));
    }
    let name_len = b
        .iter()
        .take(9)
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    if b.get(name_len) != Some(&b';') {
        return None;
    }
    let c = match &b[..name_len] {
        b"amp" | b"AMP" => '&',
        b"lt" | b"LT" => '<',
        b"gt" | b"GT" => '>',
        b"quot" | b"QUOT" => '"',
        b"apos" => '\'',
        b"nbsp" => '\u{a0}',
        b"colon" => ':',
        b"sol" => '/',
        b"bsol" => '\\',
        b"period" => '.',
        b"commat" => '@',
        b"quest" => '?',
        b"equals" => '=',
        b"num" => '#',
        b"percnt" => '%',
        b"lpar" => '(',
        b"rpar" => ')',
        b"shy" => '\u{ad}',
        _ => return None,
    };
    Some((c, name_len + 1))
}

/// Collects the URLs of an HTML document: link, resource and form attributes,
/// the visible text of links, and URLs written in the visible text.
pub(crate) fn scan_html(html: &str, out: &mut Collector) {
    let b = html.as_bytes();
    let mut i = 0;
    // The <a href> being read, and its visible text so far.
    let mut anchor: Option<(String, String)> = None;
    while i < b.len() {
        let lt = memchr(b'<', &b[i..]).map_or(b.len(), |n| i + n);
        if lt > i {
            let text = decode_entities(&html[i..lt]);
            if let Some((_, visible)) = anchor.as_mut() {
                push_collapsed(visible, &text);
            }
            scan_text(&text, out);
        }
        if lt >= b.len() {
            break;
        }
        i = lt;
        let rest = &b[i..];
        if rest.starts_with(b"<!--") {
            i = memmem::find(&rest[4..], b"-->").map_or(b.len(), |n| i + 4 + n + 3);
            continue;
        }
        if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            i = memchr(b'>', rest).map_or(b.len(), |n| i + n + 1);
            continue;
        }
        let closing = rest.get(1) == Some(&b'/');
        let name_start = i + 1 + usize::from(closing);
        let name_len = b[name_start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if name_len == 0 || !b[name_start].is_ascii_alphabetic() {
            // A lone '<' is text; the next round reads what follows it.
            if let Some((_, visible)) = anchor.as_mut() {
                push_collapsed(visible, "<");
            }
            i += 1;
            continue;
        }
        let name = &html[name_start..name_start + name_len];
        if closing {
            if name.eq_ignore_ascii_case("a") {
                finish_anchor(&mut anchor, out);
            }
            i = memchr(b'>', &b[name_start..]).map_or(b.len(), |n| name_start + n + 1);
            continue;
        }
        let is_a = name.eq_ignore_ascii_case("a");
        if is_a {
            // An <a> inside an <a> closes the first, as in a browser.
            finish_anchor(&mut anchor, out);
        }
        let mut href_of_a = None;
        i = read_attributes(html, name_start + name_len, |attr, value| {
            let origin = if attr.eq_ignore_ascii_case("href") {
                Origin::Href
            } else if attr.eq_ignore_ascii_case("src") || attr.eq_ignore_ascii_case("background") {
                Origin::Src
            } else if attr.eq_ignore_ascii_case("action") || attr.eq_ignore_ascii_case("formaction")
            {
                Origin::Action
            } else {
                return;
            };
            let value = decode_entities(value);
            if is_a && origin == Origin::Href && href_of_a.is_none() {
                href_of_a = Some(truncate(value.trim(), MAX_URL_BYTES).to_string());
            } else {
                out.push(origin, &value, None);
            }
        });
        if let Some(href) = href_of_a {
            anchor = Some((href, String::new()));
        }
        // Script and style text is not shown; only its own end tag ends it.
        for raw_text in ["script", "style"] {
            if name.eq_ignore_ascii_case(raw_text) {
                i = skip_raw_text(b, i, raw_text);
            }
        }
    }
    finish_anchor(&mut anchor, out);
}

/// Where the raw text of a `<script>` or `<style>` element that starts at
/// `from` ends: just after its end tag, or the end of the input.
fn skip_raw_text(b: &[u8], from: usize, name: &str) -> usize {
    let mut i = from;
    while let Some(n) = memmem::find(&b[i..], b"</") {
        let at = i + n + 2;
        let matches = b
            .get(at..at + name.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(name.as_bytes()));
        if matches {
            return memchr(b'>', &b[at..]).map_or(b.len(), |m| at + m + 1);
        }
        i = at;
    }
    b.len()
}

/// Records a finished `<a href>` with its visible text.
fn finish_anchor(anchor: &mut Option<(String, String)>, out: &mut Collector) {
    if let Some((href, text)) = anchor.take() {
        let text = text.trim();
        let text = (!text.is_empty()).then(|| text.to_string());
        out.push(Origin::Href, &href, text);
    }
}

/// Appends `text` to link text with runs of whitespace made one space, up to
/// [`MAX_ANCHOR_TEXT_BYTES`].
fn push_collapsed(visible: &mut String, text: &str) {
    for c in text.chars() {
        if visible.len() + c.len_utf8() > MAX_ANCHOR_TEXT_BYTES {
            return;
        }
        // Soft hyphens and zero-width characters are invisible in a link.
        if matches!(
            c,
            '\u{ad}' | '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}'
        ) {
            continue;
        }
        if c.is_whitespace() {
            if !visible.is_empty() && !visible.ends_with(' ') {
                visible.push(' ');
            }
        } else {
            visible.push(c);
        }
    }
}

/// Reads the attributes of a start tag from `start` (just after its name) to
/// its `>`, calling `each(name, raw value)`; returns where the tag ends.
fn read_attributes(html: &str, start: usize, mut each: impl FnMut(&str, &str)) -> usize {
    // Every span starts and ends at an ASCII byte or the end, so slicing the
    // text there is always on a character boundary.
    attribute_spans(html.as_bytes(), start, |(n0, n1), v0, v1, _| {
        each(&html[n0..n1], &html[v0..v1])
    })
}

/// Reads the attributes of a start tag from `start` (just after its name) to
/// its `>`, calling `each((name start, name end), value start, value end,
/// value closed)` with byte offsets; returns where the tag ends. The link
/// checks and the link rewriter read tags through this one function, so they
/// see the same `href`s.
pub(crate) fn attribute_spans(
    b: &[u8],
    start: usize,
    mut each: impl FnMut((usize, usize), usize, usize, bool),
) -> usize {
    let mut i = start;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return b.len();
        }
        if b[i] == b'>' {
            return i + 1;
        }
        let name_start = i;
        while i < b.len() && !matches!(b[i], b'=' | b'>' | b'/') && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        // A quote or '<' in a name still advances, so the loop always moves on.
        if i == name_start {
            i += 1;
            continue;
        }
        let name = (name_start, i);
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let Some(&q) = b.get(i) else {
            return b.len();
        };
        if q == b'"' || q == b'\'' {
            let value_start = i + 1;
            match memchr(q, &b[value_start..]) {
                Some(n) => {
                    each(name, value_start, value_start + n, true);
                    i = value_start + n + 1;
                }
                None => {
                    each(name, value_start, b.len(), false);
                    return b.len();
                }
            }
        } else {
            let value_start = i;
            while i < b.len() && b[i] != b'>' && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            each(name, value_start, i, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_links(s: &str) -> Vec<String> {
        let mut c = Collector::default();
        scan_text(s, &mut c);
        c.links.into_iter().map(|l| l.text).collect()
    }

    fn html_links(s: &str) -> Vec<RawLink> {
        let mut c = Collector::default();
        scan_html(s, &mut c);
        c.links
    }

    #[test]
    fn plain_text_urls_of_each_form_are_found_and_trimmed() {
        let found = text_links(
            "See http://example.com/a?b=c, or (https://x.test/path_(1)) and \
             www.example.org. Also FTP://ftp.example.net/pub/ and <URL:http://z.test/>.",
        );
        assert_eq!(
            found,
            [
                "http://example.com/a?b=c",
                "https://x.test/path_(1)",
                "www.example.org",
                "FTP://ftp.example.net/pub/",
                "http://z.test/",
            ]
        );
    }

    #[test]
    fn defanged_urls_are_found() {
        let found =
            text_links("bad: hxxp://evil[.]test/x and hxxps[:]//e.test and http:\\\\b.test");
        assert_eq!(
            found,
            [
                "hxxp://evil[.]test/x",
                "hxxps[:]//e.test",
                "http:\\\\b.test"
            ]
        );
    }

    #[test]
    fn words_are_not_urls() {
        assert!(text_links("the www. prefix, a file.txt, mailto:a@b.test and httpx").is_empty());
    }

    #[test]
    fn html_attributes_are_found_with_entities_decoded() {
        let links = html_links(
            "<html><body background=http://bg.test/b.gif>\
             <a HREF = \"http://a.test/?x=1&amp;y=2\">Click <b>here</b>\n now</a>\
             <img src='https://img.test/p.png' alt=\"a > b\">\
             <form action=\"http&#58;//form.test/post\"><input formaction=&#x68;ttp://f2.test/></form>\
             </body></html>",
        );
        let got: Vec<(Origin, &str, Option<&str>)> = links
            .iter()
            .map(|l| (l.origin, l.text.as_str(), l.anchor.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Origin::Src, "http://bg.test/b.gif", None),
                (
                    Origin::Href,
                    "http://a.test/?x=1&y=2",
                    Some("Click here now")
                ),
                (Origin::Src, "https://img.test/p.png", None),
                (Origin::Action, "http://form.test/post", None),
                (Origin::Action, "http://f2.test/", None),
            ]
        );
    }

    #[test]
    fn visible_link_text_that_is_a_url_is_kept_and_also_found_as_text() {
        let links = html_links("<p><a href=\"http://evil.test/\">https://www.paypal.com/</a></p>");
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].origin, Origin::Text);
        assert_eq!(links[0].text, "https://www.paypal.com/");
        assert_eq!(links[1].origin, Origin::Href);
        assert_eq!(links[1].text, "http://evil.test/");
        assert_eq!(links[1].anchor.as_deref(), Some("https://www.paypal.com/"));
    }

    #[test]
    fn comments_scripts_and_unclosed_anchors_are_handled() {
        let links = html_links(
            "<!-- <a href=http://hidden.test/>x</a> --><script>var u='<a href=\"http://js.test/\">';</script>\
             <a href=http://one.test/>one<a href=http://two.test/>two",
        );
        let got: Vec<(&str, Option<&str>)> = links
            .iter()
            .map(|l| (l.text.as_str(), l.anchor.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("http://one.test/", Some("one")),
                ("http://two.test/", Some("two"))
            ]
        );
    }

    #[test]
    fn entities_decode_numeric_and_named_and_leave_unknown_alone() {
        assert_eq!(
            decode_entities("a&amp;b&#65;&#x42;&lt;&bogus;&#0;&"),
            "a&bAB<&bogus;\u{fffd}&"
        );
        assert!(matches!(decode_entities("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn the_number_of_urls_is_bounded() {
        let text = "http://a.test/ ".repeat(MAX_LINKS + 10);
        let mut c = Collector::default();
        scan_text(&text, &mut c);
        assert_eq!(c.links.len(), MAX_LINKS);
        assert!(c.truncated);
        let long = format!("http://a.test/{}", "x".repeat(3 * MAX_URL_BYTES));
        assert_eq!(text_links(&long)[0].len(), MAX_URL_BYTES);
        // Brackets at the end are trimmed in linear time, balanced ones kept.
        let brackets = format!("http://a.test/({}", ")".repeat(1 << 20));
        assert_eq!(text_links(&brackets), ["http://a.test/()"]);
    }

    #[test]
    fn large_hostile_inputs_are_scanned_in_one_pass() {
        // Each would take minutes if any step were quadratic.
        let many_anchors = "<a href=http://x.test/>".repeat(50_000);
        let c = {
            let mut c = Collector::default();
            scan_html(&many_anchors, &mut c);
            c
        };
        assert_eq!(c.links.len(), MAX_LINKS);
        assert!(c.truncated);
        let script = format!(
            "<script>{}</script><a href=http://after.test/>x</a>",
            "<a".repeat(200_000)
        );
        assert_eq!(html_links(&script).len(), 1);
        let open_quote = format!("<a href=\"{}", "x".repeat(1 << 20));
        assert_eq!(html_links(&open_quote).len(), 1);
        let one_token = format!("http://{}", "http://a".repeat(100_000));
        assert_eq!(text_links(&one_token).len(), 1);
        let entities = "&amp;".repeat(200_000);
        assert_eq!(decode_entities(&entities).len(), 200_000);
    }

    #[test]
    fn any_slice_of_multilingual_text_is_safe() {
        let s =
            "쇼핑 <a href=\"http://例え.jp/パス?q=ü\">www.bücher.example/ü</a> hxxp://é[.]test \
                 <img src=ｈｔｔｐ://ｅｘａｍｐｌｅ.com> &#x1F600; www2.x.test/…";
        let idx: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
        for &a in &idx {
            for &b in idx.iter().filter(|&&b| b >= a) {
                let part = &s[a..b];
                let _ = html_links(part);
                let _ = text_links(part);
                let _ = super::super::normalise::normalise(part);
            }
        }
    }

    #[test]
    fn hostile_markup_ends_without_panicking() {
        for s in [
            "<",
            "<a",
            "<a href",
            "<a href=",
            "<a href=\"",
            "<!--",
            "</",
            "<a href=x>&#",
            "<<<>>>",
            "<a\u{e9} href=x>",
        ] {
            let _ = html_links(s);
        }
        assert_eq!(html_links("<a href=\"http://q.test/").len(), 1);
    }
}
