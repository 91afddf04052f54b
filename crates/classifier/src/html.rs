//! A small, forgiving HTML scanner for the classifier: it turns an HTML body into
//! the text a reader would see (tags removed, entities decoded, script and style
//! dropped) and reports the markup itself (tag names, chosen attributes and their
//! values, link and image targets) as events, because spam's markup is as telling
//! as its words.
//!
//! Standards: HTML 4.01 / the WHATWG HTML syntax, loosely: tags, attributes with
//! quoted or bare values, comments, character references (named, decimal, hex).
//! No tree is built; malformed markup degrades to text.
//!
//! Hostile input: one forward pass over the bytes with no backtracking beyond the
//! current tag, so time is linear in the input; the visible text written out is
//! capped by the caller's limit; per tag at most [`MAX_ATTRIBUTES`] attributes are
//! reported, and attribute values are reported truncated.

/// Attributes reported per tag; the rest are skipped.
pub(crate) const MAX_ATTRIBUTES: usize = 24;

/// What the scanner found in the markup.
pub(crate) trait Markup {
    /// A start tag; `name` is lowercase ASCII.
    fn tag(&mut self, name: &str);
    /// An attribute of the current start tag; `name` is lowercase ASCII, `value`
    /// is raw (not entity-decoded beyond `&amp;`), possibly empty.
    fn attribute(&mut self, tag: &str, name: &str, value: &str);
    /// A comment.
    fn comment(&mut self);
}

/// Tags that a browser renders as a break between words. Any other tag
/// (including made-up ones, which spam inserts to split words for filters but
/// which browsers ignore) joins the text around it, so "vi<b></b>agra" reads
/// "viagra" as it does on screen.
fn breaks_words(tag: &str) -> bool {
    matches!(
        tag,
        "p" | "br"
            | "div"
            | "td"
            | "th"
            | "tr"
            | "table"
            | "tbody"
            | "thead"
            | "tfoot"
            | "li"
            | "ul"
            | "ol"
            | "dl"
            | "dt"
            | "dd"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "hr"
            | "title"
            | "blockquote"
            | "pre"
            | "center"
            | "form"
            | "body"
            | "html"
            | "head"
            | "option"
            | "select"
            | "textarea"
            | "input"
            | "button"
            | "img"
            | "iframe"
            | "frame"
            | "address"
            | "caption"
            | "meta"
            | "link"
            | "map"
            | "area"
    )
}

/// Appends to `out` the visible text of `html`, at most `limit` bytes, reporting
/// the markup to `sink`.
pub(crate) fn scan(html: &str, limit: usize, out: &mut String, sink: &mut impl Markup) {
    let b = html.as_bytes();
    let mut i = 0;
    let mut text_start = 0;
    while i < b.len() {
        if out.len() >= limit {
            return;
        }
        match b[i] {
            b'<' => {
                push_text(out, &html[text_start..i], limit);
                i = markup(html, i, out, sink);
                text_start = i;
            }
            b'&' => {
                push_text(out, &html[text_start..i], limit);
                i = entity(html, i, out);
                text_start = i;
            }
            _ => i += 1,
        }
    }
    push_text(out, &html[text_start.min(b.len())..], limit);
}

fn push_text(out: &mut String, s: &str, limit: usize) {
    let room = limit.saturating_sub(out.len());
    if s.len() <= room {
        out.push_str(s);
    } else {
        out.push_str(&s[..floor_boundary(s, room)]);
    }
}

/// The largest char boundary of `s` at or below `at`.
pub(crate) fn floor_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut at = at;
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Position just after the first occurrence of `needle` (ASCII, matched without
/// regard to case) at or after `from`, or the end of `hay`.
fn skip_past(hay: &[u8], from: usize, needle: &[u8]) -> usize {
    let n = needle.len();
    let mut i = from;
    while i + n <= hay.len() {
        if hay[i..i + n].eq_ignore_ascii_case(needle) {
            return i + n;
        }
        i += 1;
    }
    hay.len()
}

/// Handles the markup starting with `<` at `start`; returns where text resumes.
fn markup(html: &str, start: usize, out: &mut String, sink: &mut impl Markup) -> usize {
    let b = html.as_bytes();
    let next = b.get(start + 1).copied().unwrap_or(0);
    if b[start..].starts_with(b"<!--") {
        sink.comment();
        return skip_past(b, start + 4, b"-->");
    }
    if next == b'!' || next == b'?' {
        return skip_past(b, start + 2, b">");
    }
    let (closing, name_start) = if next == b'/' {
        (true, start + 2)
    } else {
        (false, start + 1)
    };
    if !b.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
        // A lone '<' in text.
        out.push('<');
        return start + 1;
    }
    let mut name_buf = [0u8; 16];
    let mut name_len = 0;
    let mut i = name_start;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-' || b[i] == b':') {
        if name_len < name_buf.len() {
            name_buf[name_len] = b[i].to_ascii_lowercase();
            name_len += 1;
        }
        i += 1;
    }
    // ASCII by construction, so this cannot fail; an empty name is harmless.
    let name = std::str::from_utf8(&name_buf[..name_len]).unwrap_or("");
    if !closing {
        sink.tag(name);
    }
    let end = attributes(html, i, name, closing, out, sink);
    if breaks_words(name) {
        out.push(' ');
    }
    if !closing && (name == "script" || name == "style") {
        // Their content is not shown; skip to the matching end tag.
        let close: &[u8] = if name == "script" {
            b"</script"
        } else {
            b"</style"
        };
        let after = skip_past(b, end, close);
        return skip_past(b, after, b">");
    }
    end
}

/// Reads the attributes of a tag from `i` up to and including its `>`; returns
/// the position after it.
fn attributes(
    html: &str,
    mut i: usize,
    tag: &str,
    closing: bool,
    out: &mut String,
    sink: &mut impl Markup,
) -> usize {
    let b = html.as_bytes();
    let mut reported = 0;
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
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name_end = i;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = "";
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let v_start = i + 1;
                let v_end = b[v_start..]
                    .iter()
                    .position(|&c| c == q)
                    .map_or(b.len(), |p| v_start + p);
                value = &html[v_start..v_end];
                i = (v_end + 1).min(b.len());
            } else {
                let v_start = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = &html[v_start..i];
            }
        }
        if name_end == name_start {
            // A stray character such as '"'; step over it so the loop advances.
            i = i.max(name_start + 1);
            continue;
        }
        if closing || reported >= MAX_ATTRIBUTES {
            continue;
        }
        reported += 1;
        let mut attr_buf = [0u8; 24];
        let raw_name = &b[name_start..name_end];
        let n = raw_name.len().min(attr_buf.len());
        for (d, s) in attr_buf.iter_mut().zip(&raw_name[..n]) {
            *d = s.to_ascii_lowercase();
        }
        if let Ok(attr) = std::str::from_utf8(&attr_buf[..n]) {
            if tag == "img" && attr == "alt" {
                // Alt text stands in for the image; readers of text mail see it.
                out.push(' ');
                out.push_str(&value[..floor_boundary(value, 256)]);
                out.push(' ');
            }
            sink.attribute(tag, attr, value);
        }
    }
}

/// Decodes the character reference at `start` (which holds '&') into `out`;
/// returns where text resumes. Unknown references are kept as written.
fn entity(html: &str, start: usize, out: &mut String) -> usize {
    let b = html.as_bytes();
    let mut i = start + 1;
    if b.get(i) == Some(&b'#') {
        i += 1;
        let hex = matches!(b.get(i), Some(b'x' | b'X'));
        if hex {
            i += 1;
        }
        let digits_start = i;
        while i < b.len() && i - digits_start < 8 && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        let digits = &html[digits_start..i];
        let code = if hex {
            u32::from_str_radix(digits, 16).ok()
        } else {
            digits.parse::<u32>().ok()
        };
        if b.get(i) == Some(&b';') {
            i += 1;
        }
        match code.and_then(char::from_u32) {
            Some(c) if !c.is_control() => out.push(c),
            _ => out.push(' '),
        }
        return i;
    }
    let name_start = i;
    while i < b.len() && i - name_start < 10 && b[i].is_ascii_alphanumeric() {
        i += 1;
    }
    let name = &html[name_start..i];
    let decoded = match name {
        "nbsp" | "ensp" | "emsp" | "thinsp" => Some(' '),
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "copy" => Some('©'),
        "reg" => Some('®'),
        "trade" => Some('™'),
        "euro" => Some('€'),
        "pound" => Some('£'),
        "mdash" | "ndash" | "middot" | "bull" => Some(' '),
        "eacute" => Some('é'),
        "egrave" => Some('è'),
        "aacute" => Some('á'),
        "agrave" => Some('à'),
        "ouml" => Some('ö'),
        "uuml" => Some('ü'),
        "auml" => Some('ä'),
        "szlig" => Some('ß'),
        "ntilde" => Some('ñ'),
        "ccedil" => Some('ç'),
        _ => None,
    };
    match decoded {
        Some(c) => {
            out.push(c);
            if b.get(i) == Some(&b';') {
                i += 1;
            }
            i
        }
        None => {
            out.push('&');
            start + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Seen {
        tags: Vec<String>,
        attrs: Vec<(String, String, String)>,
        comments: usize,
    }

    impl Markup for Seen {
        fn tag(&mut self, name: &str) {
            self.tags.push(name.to_string());
        }
        fn attribute(&mut self, tag: &str, name: &str, value: &str) {
            self.attrs
                .push((tag.to_string(), name.to_string(), value.to_string()));
        }
        fn comment(&mut self) {
            self.comments += 1;
        }
    }

    fn run(html: &str) -> (String, Seen) {
        let mut out = String::new();
        let mut seen = Seen::default();
        scan(html, 1 << 20, &mut out, &mut seen);
        (out, seen)
    }

    #[test]
    fn visible_text_drops_markup_script_and_style() {
        let (text, seen) = run(
            "<HTML><head><style>p{color:red}</style><script>var x='<p>hidden';</script></head>\
             <BODY><P>Hello <b>big</b>&nbsp;world&amp;co &#233;t&#xE9;</p><!-- note --></body></HTML>",
        );
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(words, ["Hello", "big", "world&co", "été"]);
        assert!(!text.contains("hidden") && !text.contains("color"));
        assert_eq!(
            seen.tags,
            ["html", "head", "style", "script", "body", "p", "b"]
        );
        assert_eq!(seen.comments, 1);
    }

    #[test]
    fn inline_and_made_up_tags_do_not_split_words() {
        let (text, _) = run("<p>vi<b></b>a<xyz>gr</xyz>a</p><p>next</p>");
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(words, ["viagra", "next"]);
    }

    #[test]
    fn attributes_are_reported_with_quoted_and_bare_values() {
        let (_, seen) = run(
            "<a HREF=\"http://x.test/a?b=1\" target=_blank>go</a><font color='#FF0000' size=+2>\
             <img src=http://img.test/p.gif alt=\"Buy now\">",
        );
        assert_eq!(
            seen.attrs,
            [
                ("a".into(), "href".into(), "http://x.test/a?b=1".into()),
                ("a".into(), "target".into(), "_blank".into()),
                ("font".into(), "color".into(), "#FF0000".into()),
                ("font".into(), "size".into(), "+2".into()),
                ("img".into(), "src".into(), "http://img.test/p.gif".into()),
                ("img".into(), "alt".into(), "Buy now".into()),
            ]
        );
    }

    #[test]
    fn broken_markup_ends_without_panic_and_text_is_capped() {
        for html in [
            "<",
            "<a href=\"unterminated",
            "&#",
            "&#x110000;",
            "<!--",
            "a<b c=",
            "<p",
        ] {
            run(html);
        }
        let mut out = String::new();
        let long = "é".repeat(10_000);
        scan(&long, 101, &mut out, &mut Seen::default());
        assert!(out.len() <= 101 && out.len() >= 99);
        let many_attrs = format!("<p {}>", "a=1 ".repeat(1000));
        let (_, seen) = run(&many_attrs);
        assert_eq!(seen.attrs.len(), MAX_ATTRIBUTES);
    }
}
