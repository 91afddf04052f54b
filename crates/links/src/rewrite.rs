//! Rewriting a message's links: every `http`/`https` URL in an HTML `href`
//! (`<a>`, `<area>`) and in plain text becomes `https://<links.host>/l/<token>`.
//!
//! The message is walked as bytes, following the MIME structure (RFC 2045,
//! RFC 2046) from the `boundary` parameters, so that whatever is not changed
//! stays byte for byte as it was: headers, preambles, epilogues, boundaries,
//! attachments and every part without a link to rewrite. Only the bodies of
//! `text/plain` and `text/html` parts that are not attachments (no
//! `Content-Disposition: attachment`, no file name) are decoded (7bit, 8bit
//! and binary as they are; quoted-printable, RFC 2045 §6.7; base64, RFC 4648
//! §4), changed, and encoded again with their own transfer encoding
//! (quoted-printable lines of at most 76 characters with soft breaks; base64
//! lines of 76 characters), in the message's own line endings. The charset is
//! never converted: URLs are ASCII, the text around them is kept as bytes, so
//! any charset survives; a URL with non-ASCII characters is only taken from a
//! part in UTF-8 (or without a charset), and left as it is otherwise.
//! `multipart/*` parts are walked into; `message/rfc822` parts (a forwarded
//! message) are walked into when they are not attachments and are not
//! themselves encoded (7bit, 8bit, binary), and left as they are otherwise.
//!
//! An `href` is read as a browser reads it (WHATWG URL parsing of the special
//! schemes), since that is the link the click follows: C0
//! controls and spaces at either end are dropped, tabs and line breaks
//! anywhere (`ht&#9;tp:`), the scheme in any case, any number of slashes or
//! backslashes after it (`http:\\x`, `https:/x`, `https:///x`, `https:x`),
//! backslashes in the path read as slashes, white space and controls inside
//! percent-encoded. The token carries that normalised URL. In plain text,
//! `http://` and `https://` URLs are taken, and `www.` names at the start of
//! a word (which mail clients make links of) as `http://www.…`.
//!
//! Links another vendor's link protection wrapped (Microsoft Safe Links,
//! Proofpoint URL Defense, Mimecast: see [`crate::vendors`]) follow
//! [`Rewrite::vendor_links`]. Under [`VendorLinks::Unwrap`] (the default) a
//! link that decodes is replaced by our link carrying the URL it wraps
//! (unwrapped through nested wrappers), so the reader sees one wrapper and
//! our click-time check sees the real destination; one that does not decode
//! (Mimecast) is wrapped as it is. When the decoded URL is one that stays
//! (the link host, a `do_not_rewrite` domain), it is written bare in place
//! of the vendor's link: the operator trusts that domain, and the vendor's
//! wrapper no longer adds anything we rely on. Under [`VendorLinks::Keep`]
//! vendor links are left exactly as they are (counted as kept).
//!
//! Left as they are: anything that is not `http` or `https` (`mailto:`,
//! `tel:`, `cid:`, `data:`, relative links other than scheme-relative
//! `//host` ones, which webmail resolves to `https://host` and so are
//! wrapped as such), links already on the link host (no double wrapping), hosts
//! equal to or under a `do_not_rewrite` domain, and URLs the token cannot
//! carry (over [`MAX_URL_LEN`] bytes): these are counted as kept. In HTML
//! only `href` values are rewritten (the visible text of the link is kept);
//! URLs written in HTML text, `src` and form actions are not.
//!
//! Hostile input: a message over [`MAX_MESSAGE_BYTES`] is refused; MIME nesting
//! deeper than [`MAX_DEPTH`] and parts beyond [`MAX_PARTS`] are left as they
//! are, as are multiparts without a boundary, unknown transfer encodings and
//! base64 that does not decode. Every scan is a single forward pass; vendor
//! links are decoded within the bounds of [`crate::vendors`].

use crate::keys::KeyRing;
use crate::token::{sign, LinkToken, MAX_MESSAGE_LEN, MAX_URL_LEN};
use crate::vendors::{self, VendorLinks};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// The largest message rewritten; larger ones are refused.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// MIME nesting walked into; deeper parts are left as they are.
pub const MAX_DEPTH: usize = 10;
/// MIME parts looked at per message; further parts are left as they are.
pub const MAX_PARTS: usize = 1000;

/// What a rewrite needs: the signing keys, the link host, and what the tokens
/// record.
#[derive(Debug, Clone, Copy)]
pub struct Rewrite<'a> {
    pub keys: &'a KeyRing,
    /// `links.host`: rewritten links are `https://<host>/l/<token>`.
    pub host: &'a str,
    /// The message's trace id (at most 255 bytes).
    pub message: &'a str,
    /// The recipient the links are made for.
    pub recipient: &'a str,
    /// The issue time written in the tokens, Unix seconds.
    pub now: i64,
    /// Domains whose links (and their subdomains') are left as they are.
    pub do_not_rewrite: &'a [String],
    /// What is done with links another vendor's link protection wrapped.
    pub vendor_links: VendorLinks,
}

/// A rewritten message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The message, identical to the input where nothing was rewritten.
    pub message: Vec<u8>,
    /// Links replaced by a token link (vendor links unwrapped into one
    /// included).
    pub rewritten: usize,
    /// `http`/`https` links seen and deliberately left as they are.
    pub kept: usize,
    /// Vendor links replaced by the URL they wrap: in a token link (then
    /// counted in `rewritten` too) or bare, when that URL is one that stays
    /// (a `do_not_rewrite` domain, the link host).
    pub unwrapped: usize,
    /// The distinct original URLs behind the token links, in the order first
    /// met: what the trace records so that "who received this URL" has an
    /// answer.
    pub urls: Vec<String>,
}

/// Why a message is not rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("the message is {size} bytes, over the {limit} bytes links are rewritten in")]
    TooLarge { size: usize, limit: usize },
    #[error("no link key to sign with")]
    NoKey,
    #[error("the trace id is over {MAX_MESSAGE_LEN} bytes")]
    TraceIdTooLong,
}

/// Rewrites the links of `raw` (see the module's notes). Malformed MIME is
/// never an error: what cannot be read is left as it is.
pub fn rewrite(raw: &[u8], ctx: &Rewrite<'_>) -> Result<Rewritten, RewriteError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(RewriteError::TooLarge {
            size: raw.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    let key_id = ctx.keys.newest().ok_or(RewriteError::NoKey)?;
    if ctx.message.len() > MAX_MESSAGE_LEN {
        return Err(RewriteError::TraceIdTooLong);
    }
    let template = LinkToken::new(ctx.keys, "", ctx.message, ctx.recipient, ctx.now)
        .map_err(|_| RewriteError::NoKey)?;
    debug_assert_eq!(template.key_id, key_id);
    let mut walk = Walk {
        ctx,
        host: normal_domain(ctx.host),
        keep: ctx
            .do_not_rewrite
            .iter()
            .map(|d| normal_domain(d))
            .collect(),
        template,
        eol: if line_end_of(raw) == b"\n" {
            b"\n"
        } else {
            b"\r\n"
        },
        parts: 0,
        changed: 0,
        rewritten: 0,
        kept: 0,
        unwrapped: 0,
        urls: Vec::new(),
        seen: std::collections::HashSet::new(),
    };
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 4);
    walk.entity(raw, 0, Kind::Text, &mut out);
    if walk.changed == 0 {
        out.clear();
        out.extend_from_slice(raw);
    }
    Ok(Rewritten {
        message: out,
        rewritten: walk.rewritten,
        kept: walk.kept,
        unwrapped: walk.unwrapped,
        urls: walk.urls,
    })
}

/// The line ending of the first line: `\n` or `\r\n`.
fn line_end_of(b: &[u8]) -> &'static [u8] {
    match b.iter().position(|&c| c == b'\n') {
        Some(n) if n > 0 && b[n - 1] == b'\r' => b"\r\n",
        Some(_) => b"\n",
        None => b"\r\n",
    }
}

/// A host or domain lower-cased, without a trailing dot.
fn normal_domain(d: &str) -> String {
    d.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The default type of a part without a Content-Type (RFC 2046 §5.1.5).
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Message,
}

struct Walk<'a, 'b> {
    ctx: &'b Rewrite<'a>,
    host: String,
    keep: Vec<String>,
    template: LinkToken,
    eol: &'static [u8],
    parts: usize,
    /// Links replaced by anything: what decides whether a part is written again.
    changed: usize,
    rewritten: usize,
    kept: usize,
    unwrapped: usize,
    urls: Vec<String>,
    seen: std::collections::HashSet<String>,
}

/// The headers of a part that matter here.
#[derive(Default)]
struct Head {
    /// `type/subtype`, lower-cased.
    mime: Option<String>,
    boundary: Option<Vec<u8>>,
    charset: Option<String>,
    encoding: Option<String>,
    attachment: bool,
}

impl Walk<'_, '_> {
    /// Copies or rewrites one entity (headers, blank line, body) into `out`.
    fn entity(&mut self, data: &[u8], depth: usize, kind: Kind, out: &mut Vec<u8>) {
        let Some(body_start) = body_start(data) else {
            out.extend_from_slice(data);
            return;
        };
        let head = parse_head(&data[..body_start]);
        out.extend_from_slice(&data[..body_start]);
        let body = &data[body_start..];
        let mime = head.mime.clone().unwrap_or_else(|| {
            match kind {
                Kind::Text => "text/plain",
                Kind::Message => "message/rfc822",
            }
            .to_string()
        });
        let identity = matches!(
            head.encoding.as_deref(),
            None | Some("7bit" | "8bit" | "binary")
        );
        if let Some(sub) = mime.strip_prefix("multipart/") {
            match &head.boundary {
                Some(b) if depth < MAX_DEPTH => {
                    let kind = if sub == "digest" {
                        Kind::Message
                    } else {
                        Kind::Text
                    };
                    self.multipart(body, b, depth + 1, kind, out);
                }
                _ => out.extend_from_slice(body),
            }
        } else if mime == "message/rfc822" || mime == "message/global" {
            if identity && !head.attachment && depth < MAX_DEPTH {
                self.entity(body, depth + 1, Kind::Text, out);
            } else {
                out.extend_from_slice(body);
            }
        } else if (mime == "text/plain" || mime == "text/html") && !head.attachment {
            self.leaf(body, &head, mime == "text/html", out);
        } else {
            out.extend_from_slice(body);
        }
    }

    /// Walks the parts of a multipart body: delimiter lines, preamble and
    /// epilogue are copied as they are.
    fn multipart(
        &mut self,
        body: &[u8],
        boundary: &[u8],
        depth: usize,
        kind: Kind,
        out: &mut Vec<u8>,
    ) {
        let mut copied = 0;
        // Where the current part starts: after a delimiter line.
        let mut part_start: Option<usize> = None;
        let mut closed = false;
        let mut line = 0;
        while line < body.len() {
            let next = body[line..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(body.len(), |n| line + n + 1);
            if let Some(close) = delimiter(&body[line..next], boundary) {
                // The line break before a delimiter belongs to it.
                let mut end = line;
                if end > 0 && body[end - 1] == b'\n' {
                    end -= 1;
                    if end > 0 && body[end - 1] == b'\r' {
                        end -= 1;
                    }
                }
                if let Some(start) = part_start {
                    if end > start {
                        self.part(&body[start..end], depth, kind, out);
                        copied = end;
                    }
                }
                // The preamble (or an empty part), the line break and the
                // delimiter line, as they are.
                out.extend_from_slice(&body[copied..next]);
                copied = next;
                if close {
                    closed = true;
                    break;
                }
                part_start = Some(next);
            }
            line = next;
        }
        // An unclosed last part runs to the end of the body.
        if let Some(start) = part_start {
            if !closed && copied == start && start < body.len() {
                self.part(&body[start..], depth, kind, out);
                copied = body.len();
            }
        }
        out.extend_from_slice(&body[copied..]);
    }

    fn part(&mut self, data: &[u8], depth: usize, kind: Kind, out: &mut Vec<u8>) {
        self.parts += 1;
        if self.parts > MAX_PARTS {
            out.extend_from_slice(data);
        } else {
            self.entity(data, depth, kind, out);
        }
    }

    /// Rewrites a text/plain or text/html body in its transfer encoding.
    fn leaf(&mut self, body: &[u8], head: &Head, html: bool, out: &mut Vec<u8>) {
        let utf8 = matches!(
            head.charset.as_deref(),
            None | Some("utf-8" | "utf8" | "us-ascii")
        );
        let before = self.changed;
        match head.encoding.as_deref() {
            None | Some("7bit" | "8bit" | "binary") => {
                let new = self.text(body, html, utf8);
                if self.changed > before {
                    out.extend_from_slice(&new);
                    return;
                }
            }
            Some("quoted-printable") => {
                let decoded = qp_decode(body);
                let new = self.text(&decoded, html, utf8);
                if self.changed > before {
                    out.extend_from_slice(&qp_encode(&new, self.eol));
                    return;
                }
            }
            Some("base64") => {
                let trailing = body
                    .iter()
                    .rev()
                    .take_while(|c| c.is_ascii_whitespace())
                    .count();
                let (core, tail) = body.split_at(body.len() - trailing);
                if let Some(decoded) = base64_decode(core) {
                    let new = self.text(&decoded, html, utf8);
                    if self.changed > before {
                        out.extend_from_slice(&base64_encode(&new, self.eol));
                        out.extend_from_slice(tail);
                        return;
                    }
                }
            }
            Some(_) => {}
        }
        out.extend_from_slice(body);
    }

    fn text(&mut self, text: &[u8], html: bool, utf8: bool) -> Vec<u8> {
        let edits = if html {
            self.html_edits(text, utf8)
        } else {
            self.text_edits(text, utf8)
        };
        let mut out = Vec::with_capacity(text.len() + edits.len() * 64);
        let mut at = 0;
        for (start, end, link) in edits {
            out.extend_from_slice(&text[at..start]);
            out.extend_from_slice(link.as_bytes());
            at = end;
        }
        out.extend_from_slice(&text[at..]);
        out
    }

    /// What replaces `url` (a [`web_url`]), or `None` (counted as kept) if it
    /// is to stay. `html`: the replacement goes in an attribute value.
    fn link_for(&mut self, url: &str, html: bool) -> Option<String> {
        if let Some((_, decoded)) = vendors::recognise(url) {
            if self.ctx.vendor_links == VendorLinks::Keep {
                self.kept += 1;
                return None;
            }
            if let Some(original) = decoded {
                // A URL that stays is written bare: the vendor's wrapper goes
                // and ours is not wanted.
                if self.stays(&original) {
                    self.unwrapped += 1;
                    self.changed += 1;
                    return Some(bare(&original, html));
                }
                if let Some(link) = self.token_link(&original) {
                    self.unwrapped += 1;
                    return Some(link);
                }
                // Too long for a token: the vendor's link is wrapped instead.
            }
        }
        if self.stays(url) {
            self.kept += 1;
            return None;
        }
        let link = self.token_link(url);
        if link.is_none() {
            self.kept += 1;
        }
        link
    }

    /// Whether `url` is left as it is: on the link host (no double wrapping)
    /// or under a `do_not_rewrite` domain.
    fn stays(&self, url: &str) -> bool {
        let host = url_host(url);
        host == self.host
            || self.keep.iter().any(|d| {
                host == *d
                    || host
                        .strip_suffix(d.as_str())
                        .is_some_and(|sub| sub.ends_with('.'))
            })
    }

    /// Our link for `url`, or `None` if a token cannot carry it (over
    /// [`MAX_URL_LEN`] or the token's other bounds).
    fn token_link(&mut self, url: &str) -> Option<String> {
        if url.len() > MAX_URL_LEN {
            return None;
        }
        let token = LinkToken {
            url: url.to_string(),
            ..self.template.clone()
        };
        let t = sign(self.ctx.keys, &token).ok()?;
        self.rewritten += 1;
        self.changed += 1;
        if self.seen.insert(token.url.clone()) {
            self.urls.push(token.url);
        }
        Some(format!("https://{}/l/{t}", self.host))
    }

    /// Bare http(s) URLs in plain text, and `www.` names that mail clients
    /// make links of (as `http://www.…`): (start, end, new link).
    fn text_edits(&mut self, b: &[u8], utf8: bool) -> Vec<(usize, usize, String)> {
        let mut edits = Vec::new();
        let mut i = 0;
        while let Some((n, www)) = find_link_start(&b[i..]) {
            let start = i + n;
            let run = url_run(&b[start..], utf8);
            let url = portcullis_scan::trim_url_end(run);
            i = start + run.len().max(1);
            let target = if www {
                (url.len() > 4).then(|| format!("http://{url}"))
            } else {
                url.split_once("://")
                    .is_some_and(|(_, r)| !r.is_empty())
                    .then(|| url.to_string())
            };
            if let Some(target) = target.as_deref().and_then(web_url) {
                if let Some(link) = self.link_for(&target, false) {
                    edits.push((start, start + url.len(), link));
                }
            }
        }
        edits
    }

    /// http(s) URLs in the `href` of `<a>` and `<area>`: (start, end, new link)
    /// of the attribute value.
    fn html_edits(&mut self, b: &[u8], utf8: bool) -> Vec<(usize, usize, String)> {
        let mut edits = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let Some(n) = b[i..].iter().position(|&c| c == b'<') else {
                break;
            };
            i += n;
            let rest = &b[i..];
            if rest.starts_with(b"<!--") {
                i = find(&rest[4..], b"-->").map_or(b.len(), |n| i + 4 + n + 3);
                continue;
            }
            if rest.starts_with(b"<!") || rest.starts_with(b"<?") || rest.starts_with(b"</") {
                i = rest
                    .iter()
                    .position(|&c| c == b'>')
                    .map_or(b.len(), |n| i + n + 1);
                continue;
            }
            let name_start = i + 1;
            let name_len = b[name_start..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric())
                .count();
            if name_len == 0 || !b[name_start].is_ascii_alphabetic() {
                i += 1;
                continue;
            }
            let name = &b[name_start..name_start + name_len];
            let linking = name.eq_ignore_ascii_case(b"a") || name.eq_ignore_ascii_case(b"area");
            let mut hrefs = Vec::new();
            i = portcullis_scan::html_attribute_spans(
                b,
                name_start + name_len,
                |attr, start, end, closed| {
                    if linking && closed && b[attr.0..attr.1].eq_ignore_ascii_case(b"href") {
                        hrefs.push((start, end));
                    }
                },
            );
            for (start, end) in hrefs {
                let value = portcullis_scan::decode_html_references(&b[start..end]);
                let text = if value.is_ascii() || utf8 {
                    std::str::from_utf8(&value).ok()
                } else {
                    None
                };
                match text {
                    Some(text) => {
                        // As the browser will read it; not http(s) is left.
                        let Some(url) = web_url(text) else {
                            continue;
                        };
                        if let Some(link) = self.link_for(&url, true) {
                            edits.push((start, end, link));
                        }
                    }
                    // Non-ASCII outside UTF-8: an http(s) URL is kept.
                    None => {
                        if web_url(&String::from_utf8_lossy(&value)).is_some() {
                            self.kept += 1;
                        }
                    }
                }
            }
            for raw_text in [&b"script"[..], b"style"] {
                if name.eq_ignore_ascii_case(raw_text) {
                    i = skip_raw_text(b, i, raw_text);
                }
            }
        }
        edits
    }
}

/// Where the body of an entity starts: after the first empty line.
fn body_start(data: &[u8]) -> Option<usize> {
    let mut line = 0;
    while line < data.len() {
        let rest = &data[line..];
        if rest.starts_with(b"\r\n") {
            return Some(line + 2);
        }
        if rest.starts_with(b"\n") {
            return Some(line + 1);
        }
        line = rest
            .iter()
            .position(|&c| c == b'\n')
            .map_or(data.len(), |n| line + n + 1);
    }
    None
}

/// Whether `line` is a delimiter line of `boundary`, and if so whether it is
/// the closing one (RFC 2046 §5.1.1: `--boundary`, `--` when closing, then
/// only white space).
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (close, rest) = match rest.strip_prefix(b"--") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    rest.iter()
        .all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        .then_some(close)
}

/// The headers of an entity (unfolded; the first of each kept).
fn parse_head(head: &[u8]) -> Head {
    let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
    for line in head.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if matches!(line[0], b' ' | b'\t') {
            if let Some((_, v)) = fields.last_mut() {
                v.push(b' ');
                v.extend_from_slice(line.trim_ascii());
            }
            continue;
        }
        if let Some(colon) = line.iter().position(|&c| c == b':') {
            let name = String::from_utf8_lossy(&line[..colon])
                .trim()
                .to_ascii_lowercase();
            fields.push((name, line[colon + 1..].trim_ascii().to_vec()));
        }
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    let mut head = Head::default();
    if let Some(v) = field("content-type") {
        let (main, params) = parse_params(v);
        if main.contains('/') {
            head.mime = Some(main);
        }
        for (k, v) in params {
            match k.as_str() {
                "boundary" if !v.is_empty() => head.boundary = Some(v),
                "charset" => head.charset = Some(String::from_utf8_lossy(&v).to_ascii_lowercase()),
                k if k.starts_with("name") => head.attachment = true,
                _ => {}
            }
        }
    }
    if let Some(v) = field("content-transfer-encoding") {
        head.encoding = Some(String::from_utf8_lossy(v).trim().to_ascii_lowercase());
    }
    if let Some(v) = field("content-disposition") {
        let (main, params) = parse_params(v);
        if main == "attachment" || params.iter().any(|(k, _)| k.starts_with("filename")) {
            head.attachment = true;
        }
    }
    head
}

/// The value before the first `;`, lower-cased, and the parameters
/// (names lower-cased, quoted values unquoted).
fn parse_params(v: &[u8]) -> (String, Vec<(String, Vec<u8>)>) {
    let mut pieces = Vec::new();
    let mut cur = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    for &c in v {
        if quoted {
            if escaped {
                cur.push(c);
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                quoted = false;
            } else {
                cur.push(c);
            }
        } else if c == b'"' {
            quoted = true;
        } else if c == b';' {
            pieces.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    pieces.push(cur);
    let mut it = pieces.into_iter();
    let main = it
        .next()
        .map(|m| String::from_utf8_lossy(m.trim_ascii()).to_ascii_lowercase())
        .unwrap_or_default();
    let params = it
        .filter_map(|p| {
            let eq = p.iter().position(|&c| c == b'=')?;
            let name = String::from_utf8_lossy(p[..eq].trim_ascii()).to_ascii_lowercase();
            Some((name, p[eq + 1..].trim_ascii().to_vec()))
        })
        .collect();
    (main, params)
}

/// An `http`/`https` URL as a browser reads `value` (WHATWG URL parsing of
/// the special schemes): C0 controls and spaces stripped from both ends, tabs
/// and line breaks removed anywhere, the scheme followed by `://` whatever
/// slashes or backslashes (none included) were written, backslashes before
/// the query read as slashes, and white space or control characters left
/// inside percent-encoded (as UTF-8). The scheme keeps its case. `None` for
/// any other scheme or a relative reference. Without this, `http:\\x`,
/// `https:/x` or `\x01http://x` would be left alone by the rewriter and still
/// be followed by the browser, out of reach of the click-time check.
pub(crate) fn web_url(value: &str) -> Option<String> {
    let value = value.trim_matches(|c: char| c <= ' ');
    // Scheme-relative (`//host/path`): webmail, served over https, resolves it
    // to https://host/path, so it is a link to another host like any other.
    let mut lead = value.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r'));
    if matches!(lead.next(), Some('/' | '\\')) && matches!(lead.next(), Some('/' | '\\')) {
        return web_url(&format!("https:{value}"));
    }
    let colon = value.find(':')?;
    let scheme: String = value[..colon]
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let mut out = String::with_capacity(value.len() + 3);
    out.push_str(&scheme);
    out.push_str("://");
    let (mut leading, mut before_query) = (true, true);
    for c in value[colon + 1..].chars() {
        match c {
            '\t' | '\n' | '\r' => continue,
            '/' | '\\' if leading => continue,
            '\\' if before_query => out.push('/'),
            '?' | '#' => {
                before_query = false;
                out.push(c);
            }
            c if c.is_whitespace() || c.is_control() => {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{byte:02X}"));
                }
            }
            c => out.push(c),
        }
        leading = false;
    }
    Some(out)
}

/// A URL written as it is, bare: characters that would end it in an
/// attribute value or in text percent-encoded (a browser encodes them so
/// anyway), and `&` written `&amp;` in HTML.
fn bare(url: &str, html: bool) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '"' | '\'' | '<' | '>' | '`' => out.push_str(&format!("%{:02X}", c as u32)),
            '&' if html => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

/// The host of an absolute URL, lower-cased, without userinfo, port or a
/// trailing dot; backslashes end it, as in a browser.
pub(crate) fn url_host(url: &str) -> String {
    let rest = url.split_once(':').map_or("", |(_, r)| r);
    let rest = rest.trim_start_matches(['/', '\\']);
    let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split_inclusive(']').next().unwrap_or(host_port)
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    normal_domain(host)
}

fn starts_with_ci(b: &[u8], prefix: &[u8]) -> bool {
    b.len() >= prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where the next `http://` or `https://` starting a word is, or the next
/// `www.` and a letter or digit starting one (`true`). A `www.` right after
/// `.`, `@`, `/`, `:`, `-`, `%`, `=` or a non-ASCII byte is part of something
/// else (`mail@www.x`, `ftp://www.x`) and not taken.
fn find_link_start(b: &[u8]) -> Option<(usize, bool)> {
    let mut i = 0;
    while i + 5 <= b.len() {
        let n = b[i..]
            .iter()
            .position(|&c| matches!(c, b'h' | b'H' | b'w' | b'W'))?;
        let at = i + n;
        let rest = &b[at..];
        let before = at.checked_sub(1).map(|p| b[p]);
        let word_start = before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == b'_'));
        if word_start && (starts_with_ci(rest, b"http://") || starts_with_ci(rest, b"https://")) {
            return Some((at, false));
        }
        let www_start = before.is_none_or(|c| {
            !(c.is_ascii_alphanumeric()
                || c >= 0x80
                || matches!(
                    c,
                    b'_' | b'.' | b'@' | b'/' | b'\\' | b':' | b'-' | b'%' | b'='
                ))
        });
        if www_start
            && starts_with_ci(rest, b"www.")
            && rest.get(4).is_some_and(|c| c.is_ascii_alphanumeric())
        {
            return Some((at, true));
        }
        i = at + 1;
    }
    None
}

/// The URL that starts `b`: up to white space or a character that cannot be
/// in a URL written in text. Non-ASCII is taken only in UTF-8 text, up to
/// the first white space character.
fn url_run(b: &[u8], utf8: bool) -> &str {
    let len = b
        .iter()
        .take_while(|&&c| {
            !(c.is_ascii_whitespace()
                || matches!(c, b'<' | b'>' | b'"' | b'\'' | b'`' | 0..=0x1f | 0x7f)
                || (c >= 0x80 && !utf8))
        })
        .count();
    let run = &b[..len];
    let valid = match std::str::from_utf8(run) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&run[..e.valid_up_to()]).unwrap_or(""),
    };
    let end = valid.find(char::is_whitespace).unwrap_or(valid.len());
    &valid[..end]
}

/// Where the raw text of a `<script>` or `<style>` element that starts at
/// `from` ends: just after its end tag, or the end of the input.
fn skip_raw_text(b: &[u8], from: usize, name: &[u8]) -> usize {
    let mut i = from;
    while let Some(n) = find(&b[i..], b"</") {
        let at = i + n + 2;
        if b.get(at..at + name.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(name))
        {
            return b[at..]
                .iter()
                .position(|&c| c == b'>')
                .map_or(b.len(), |m| at + m + 1);
        }
        i = at;
    }
    b.len()
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Quoted-printable decoding (RFC 2045 §6.7): `=XX` escapes and soft line
/// breaks (`=` at the end of a line, white space after it allowed) removed;
/// a malformed `=` is kept; line breaks stay as written.
fn qp_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c != b'=' {
            out.push(c);
            i += 1;
            continue;
        }
        if let (Some(h), Some(l)) = (
            b.get(i + 1).and_then(|&c| hex_value(c)),
            b.get(i + 2).and_then(|&c| hex_value(c)),
        ) {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        let ws = b[i + 1..]
            .iter()
            .take_while(|c| matches!(c, b' ' | b'\t'))
            .count();
        let after = i + 1 + ws;
        if after == b.len() {
            i = after;
        } else if b[after] == b'\n' {
            i = after + 1;
        } else if b[after] == b'\r' && b.get(after + 1) == Some(&b'\n') {
            i = after + 2;
        } else {
            out.push(b'=');
            i += 1;
        }
    }
    out
}

/// Quoted-printable encoding: lines of at most 76 characters (soft breaks
/// written with `eol`), line breaks in the text kept as they are, white
/// space before a line break and any byte that is not printable ASCII
/// escaped.
fn qp_encode(b: &[u8], eol: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(b.len() + b.len() / 8);
    let mut line = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let break_len = match (c, b.get(i + 1)) {
            (b'\r', Some(b'\n')) => 2,
            (b'\n', _) => 1,
            _ => 0,
        };
        if break_len > 0 {
            out.extend_from_slice(&b[i..i + break_len]);
            line = 0;
            i += break_len;
            continue;
        }
        let at_line_end = match b.get(i + 1) {
            None | Some(b'\n') => true,
            Some(b'\r') => b.get(i + 2) == Some(&b'\n'),
            _ => false,
        };
        let literal =
            (c == b' ' || c == b'\t') && !at_line_end || (33..=126).contains(&c) && c != b'=';
        let width = if literal { 1 } else { 3 };
        // 75 characters and the `=` of a soft break; the last character of a
        // line may take the 76th column.
        let limit = if at_line_end { 76 } else { 75 };
        if line + width > limit {
            out.push(b'=');
            out.extend_from_slice(eol);
            line = 0;
        }
        if literal {
            out.push(c);
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
        }
        line += width;
        i += 1;
    }
    out
}

/// Base64 as mail writes it, leniently: white space anywhere, padding or not.
fn base64_decode(b: &[u8]) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let compact: Vec<u8> = b
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    LENIENT.decode(compact).ok()
}

/// Base64 in lines of 76 characters separated by `eol` (none after the last).
fn base64_encode(b: &[u8], eol: &[u8]) -> Vec<u8> {
    let text = STANDARD.encode(b);
    let mut out = Vec::with_capacity(text.len() + text.len() / 76 * eol.len());
    for (n, chunk) in text.as_bytes().chunks(76).enumerate() {
        if n > 0 {
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::verify;

    const HOST: &str = "links.example.test";

    fn rw(raw: &[u8], ring: &KeyRing, keep: &[String]) -> Rewritten {
        rw_with(raw, ring, keep, VendorLinks::Unwrap)
    }

    #[test]
    fn the_distinct_original_urls_are_listed_once_in_order() {
        let ring = KeyRing::generate();
        let raw = b"Content-Type: text/plain\r\n\r\nhttps://b.test/ then https://a.test/x and https://b.test/ again\r\n";
        let r = rw(raw, &ring, &[]);
        assert_eq!(r.rewritten, 3);
        assert_eq!(r.urls, ["https://b.test/", "https://a.test/x"]);
        assert!(rw(b"Subject: none\r\n\r\nno links\r\n", &ring, &[])
            .urls
            .is_empty());
    }

    /// The URLs carried by the token links in `text`, in order.
    fn unwrap_links(ring: &KeyRing, text: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(text);
        let prefix = format!("https://{HOST}/l/");
        text.match_indices(&prefix)
            .map(|(at, _)| {
                let tail = &text[at + prefix.len()..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                    .unwrap_or(tail.len());
                let t = verify(ring, &tail[..end]).unwrap();
                assert!(t.is_for(ring, "alice@example.test"));
                t.url
            })
            .collect()
    }

    #[test]
    fn plain_text_urls_are_rewritten_and_punctuation_stays() {
        let ring = KeyRing::generate();
        let raw = b"From: a@example.net\r\nSubject: hi\r\n\r\nSee https://a.example.net/x?y=1. And (http://b.example.net/p), <HTTP://C.example.net/>\r\nnot xhttp://d.example.net/ nor ftp://e.example.net/\r\n";
        let r = rw(raw, &ring, &[]);
        assert_eq!(r.rewritten, 3);
        assert_eq!(r.kept, 0);
        assert_eq!(
            unwrap_links(&ring, &r.message),
            [
                "https://a.example.net/x?y=1",
                "http://b.example.net/p",
                "HTTP://C.example.net/"
            ]
        );
        let text = String::from_utf8(r.message).unwrap();
        assert!(text.starts_with(
            "From: a@example.net\r\nSubject: hi\r\n\r\nSee https://links.example.test/l/"
        ));
        assert!(text.contains(". And (https://links.example.test/l/"));
        assert!(text.contains("), <https://links.example.test/l/"));
        assert!(text.contains(">\r\nnot xhttp://d.example.net/ nor ftp://e.example.net/\r\n"));
    }

    #[test]
    fn a_message_without_links_is_returned_as_it_is() {
        let ring = KeyRing::generate();
        let raw = b"Subject: x\n\nhello\n";
        let r = rw(raw, &ring, &[]);
        assert_eq!(
            (r.message.as_slice(), r.rewritten, r.kept),
            (&raw[..], 0, 0)
        );
    }

    #[test]
    fn html_in_quoted_printable_with_a_soft_break_inside_the_url() {
        let ring = KeyRing::generate();
        let body = "<p>Caf=C3=A9</p><a href=3D\"https://shop.example.net/very/long/path/that/is/=\r\nbroken?a=3D1&amp;b=3D2\">Visit the shop</a> <a href=3D'mailto:x@example.net'>m</a>\r\n";
        let raw = format!(
            "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"BB\"\r\n\r\npreamble\r\n--BB\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{body}\r\n--BB--\r\nepilogue\r\n"
        );
        let r = rw(raw.as_bytes(), &ring, &[]);
        assert_eq!((r.rewritten, r.kept), (1, 0));
        let out = String::from_utf8(r.message.clone()).unwrap();
        let (head, rest) = out.split_once("quoted-printable\r\n\r\n").unwrap();
        assert!(raw.starts_with(head));
        let (new_body, tail) = rest.split_once("\r\n--BB--").unwrap();
        assert_eq!(tail, "\r\nepilogue\r\n");
        assert!(new_body.lines().all(|l| l.len() <= 76), "{new_body}");
        let decoded = String::from_utf8(qp_decode(new_body.as_bytes())).unwrap();
        assert!(decoded.starts_with("<p>Café</p><a href=\"https://links.example.test/l/"));
        assert!(decoded.ends_with("\">Visit the shop</a> <a href='mailto:x@example.net'>m</a>\r\n"));
        assert_eq!(
            unwrap_links(&ring, decoded.as_bytes()),
            ["https://shop.example.net/very/long/path/that/is/broken?a=1&b=2"]
        );
        // mail-parser reads the result.
        let m = mail_parser::MessageParser::default()
            .parse(&r.message)
            .unwrap();
        assert!(m.body_html(0).unwrap().contains("Visit the shop"));
    }

    #[test]
    fn base64_html_is_encoded_again_in_76_column_lines() {
        let ring = KeyRing::generate();
        let html = format!(
            "<html><body>{}<a href=\"http://x.example.net/a\">x</a></body></html>\r\n",
            "Lorem ipsum dolor sit amet. ".repeat(20)
        );
        let b64 = String::from_utf8(base64_encode(html.as_bytes(), b"\r\n")).unwrap();
        let raw = format!(
            "Subject: x\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
        );
        let r = rw(raw.as_bytes(), &ring, &[]);
        assert_eq!(r.rewritten, 1);
        let out = String::from_utf8(r.message).unwrap();
        let body = out.split_once("\r\n\r\n").unwrap().1;
        assert!(body.ends_with("\r\n") && !body.ends_with("\r\n\r\n"));
        let lines: Vec<&str> = body.trim_end().split("\r\n").collect();
        assert!(lines[..lines.len() - 1].iter().all(|l| l.len() == 76));
        let decoded = base64_decode(body.as_bytes()).unwrap();
        assert_eq!(unwrap_links(&ring, &decoded), ["http://x.example.net/a"]);
        assert!(String::from_utf8(decoded)
            .unwrap()
            .contains(">x</a></body>"));
    }

    #[test]
    fn bytes_around_links_keep_their_charset() {
        let ring = KeyRing::generate();
        // ISO-8859-1 "café" and "naïve", 8bit, around a link.
        let mut raw = b"Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9 http://a.example.net/\xe9t\xe9 na\xefve\r\n".to_vec();
        let r = rw(&raw, &ring, &[]);
        assert_eq!(r.rewritten, 1);
        assert_eq!(unwrap_links(&ring, &r.message), ["http://a.example.net/"]);
        assert!(r.message.starts_with(b"Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9 https://links."));
        assert!(r.message.ends_with(b"\xe9t\xe9 na\xefve\r\n"));
        // UTF-8: an IRI is taken whole, up to the (non-breaking) space.
        raw = "Subject: x\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n→ http://a.example.net/été\u{a0}naïve ✓\r\n".as_bytes().to_vec();
        let r = rw(&raw, &ring, &[]);
        assert_eq!(
            unwrap_links(&ring, &r.message),
            ["http://a.example.net/été"]
        );
        let text = String::from_utf8(r.message).unwrap();
        assert!(text.contains("\r\n\r\n→ https://links.example.test/l/"));
        assert!(text.ends_with("\u{a0}naïve ✓\r\n"));
    }

    #[test]
    fn non_http_links_are_untouched() {
        let ring = KeyRing::generate();
        let html = "<a href=\"mailto:a@example.net\">m</a><a href='tel:+331234'>t</a><img src=\"cid:img1\"><a href=\"data:text/html,hi\">d</a><a href=\"/relative\">r</a><a href=\"#top\">x</a><img src=\"http://img.example.net/p.png\">";
        let raw = format!(
            "Subject: x\r\nContent-Type: text/html\r\n\r\n{html}\r\nmailto:b@example.net\r\n"
        );
        let r = rw(raw.as_bytes(), &ring, &[]);
        assert_eq!((r.rewritten, r.kept), (0, 0));
        assert_eq!(r.message, raw.as_bytes());
    }

    #[test]
    fn links_on_the_link_host_and_kept_domains_are_not_rewritten() {
        let ring = KeyRing::generate();
        let keep = vec![
            "intranet.example.org".to_string(),
            "Partner.Example.".to_string(),
        ];
        let raw = "Subject: x\r\nContent-Type: text/html\r\n\r\n\
            <a href=\"https://LINKS.example.test./l/AAAA\">a</a>\
            <a href=\"https://x@links.example.test:443/l/BBBB\">b</a>\
            <a href=\"https://intranet.example.org/\">c</a>\
            <a href=\"http://wiki.intranet.example.org/p\">d</a>\
            <a href=\"http://partner.example/\">e</a>\
            <a href=\"http://notintranet.example.org/\">f</a>\
            <area href=\"https://links.example.test.evil.example/\">\r\n";
        let r = rw(raw.as_bytes(), &ring, &keep);
        assert_eq!((r.rewritten, r.kept), (2, 5));
        assert_eq!(
            unwrap_links(&ring, &r.message),
            [
                "http://notintranet.example.org/",
                "https://links.example.test.evil.example/"
            ]
        );
        // Rewriting twice wraps nothing twice.
        let again = rw(&r.message, &ring, &keep);
        assert_eq!((again.rewritten, again.kept), (0, 7));
        assert_eq!(again.message, r.message);
    }

    #[test]
    fn overlong_urls_are_kept() {
        let ring = KeyRing::generate();
        let long = format!("https://a.example.net/{}", "x".repeat(MAX_URL_LEN));
        let raw = format!("Subject: x\r\n\r\n{long} http://b.example.net/\r\n");
        let r = rw(raw.as_bytes(), &ring, &[]);
        assert_eq!((r.rewritten, r.kept), (1, 1));
        assert!(String::from_utf8(r.message).unwrap().contains(&long));
    }

    #[test]
    fn attachments_are_untouched_byte_for_byte() {
        let ring = KeyRing::generate();
        let att1 = "Content-Type: text/plain; name=\"links.txt\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nhttp://a.example.net/ =\r\nsoft";
        let att2 = "Content-Type: text/html\r\nContent-Disposition: attachment\r\n\r\n<a href=\"http://b.example.net/\">b</a>";
        let att3 = "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naHR0cDovL2MuZXhhbXBsZS5uZXQv";
        let raw = format!(
            "Subject: x\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nhttp://d.example.net/\r\n--m\r\n{att1}\r\n--m\r\n{att2}\r\n--m\r\n{att3}\r\n--m--\r\n"
        );
        let r = rw(raw.as_bytes(), &ring, &[]);
        assert_eq!(r.rewritten, 1);
        let out = String::from_utf8(r.message).unwrap();
        for att in [att1, att2, att3] {
            assert!(out.contains(&format!("--m\r\n{att}\r\n--m")), "{att}");
        }
        assert_eq!(
            unwrap_links(&ring, out.as_bytes()),
            ["http://d.example.net/"]
        );
    }

    #[test]
    fn nested_multiparts_and_forwarded_messages_are_walked() {
        let ring = KeyRing::generate();
        let raw = "Subject: x\nContent-Type: multipart/mixed; boundary=\"outer\"\n\n--outer\nContent-Type: multipart/alternative; boundary=inner\n\n--inner\n\nhttp://a.example.net/\n--inner\nContent-Type: text/html\n\n<a href=http://b.example.net/>b</a>\n--inner--\n--outer\nContent-Type: message/rfc822\n\nSubject: fwd\n\nhttp://c.example.net/\n--outer--\n";
        let r = rw(raw.as_bytes(), &ring, &[]);
        assert_eq!(
            unwrap_links(&ring, &r.message),
            [
                "http://a.example.net/",
                "http://b.example.net/",
                "http://c.example.net/"
            ]
        );
        let out = String::from_utf8(r.message).unwrap();
        assert!(!out.contains('\r'));
        assert!(out.contains(
            "\n--inner--\n--outer\nContent-Type: message/rfc822\n\nSubject: fwd\n\nhttps://"
        ));
    }

    #[test]
    fn malformed_mime_does_not_panic_and_is_left_as_it_is() {
        let ring = KeyRing::generate();
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"no header end".to_vec(),
            b"Content-Type: multipart/mixed\r\n\r\nhttp://a.example.net/\r\n".to_vec(),
            b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n".to_vec(),
            b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--b\r\n\r\nhttp://a.example.net/\r\n".to_vec(),
            b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64 http://a.example.net/".to_vec(),
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nhttp://a.example.net/".to_vec(),
            b"Content-Type: text/html\r\n\r\n<a href=\"http://a.example.net/".to_vec(),
            b"Content-Type: text/html\r\n\r\n<a href=".to_vec(),
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=".to_vec(),
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n--b--".to_vec(),
            b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nhttp://a.example.net/".to_vec(),
        ];
        for raw in &cases {
            let r = rw(raw, &ring, &[]);
            assert_eq!(&r.message, raw, "{}", String::from_utf8_lossy(raw));
            assert_eq!(r.rewritten, 0);
        }
        // Deep nesting stops at MAX_DEPTH, leaving the rest as it is.
        let mut deep = String::from("http://a.example.net/\r\n");
        for n in 0..50 {
            deep = format!("Content-Type: multipart/mixed; boundary=b{n}\r\n\r\n--b{n}\r\n{deep}\r\n--b{n}--\r\n");
        }
        let r = rw(deep.as_bytes(), &ring, &[]);
        assert_eq!(r.message, deep.as_bytes());
        // An unclosed multipart: the last part runs to the end.
        let raw =
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nhttp://a.example.net/";
        assert_eq!(rw(raw, &ring, &[]).rewritten, 1);
        // Hostile bytes of every kind never panic.
        let mut x: u32 = 1;
        for _ in 0..2000 {
            let mut junk = b"Content-Type: multipart/mixed; boundary=q\r\n\r\n".to_vec();
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let alphabet = b"-q\r\n=<>\"'ah:/tp&#;x\xc3\xa9 ";
                junk.push(alphabet[x as usize % alphabet.len()]);
            }
            let _ = rw(&junk, &ring, &[]);
        }
    }

    #[test]
    fn refusals() {
        let ring = KeyRing::generate();
        let ctx = |keys| Rewrite {
            keys,
            host: HOST,
            message: "m",
            recipient: "r@example.test",
            now: 0,
            do_not_rewrite: &[],
            vendor_links: VendorLinks::Unwrap,
        };
        let big = vec![b'a'; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            rewrite(&big, &ctx(&ring)),
            Err(RewriteError::TooLarge { .. })
        ));
        assert_eq!(
            rewrite(b"x", &ctx(&KeyRing::default())),
            Err(RewriteError::NoKey)
        );
    }

    #[test]
    fn href_forms_a_browser_follows_are_wrapped() {
        let ring = KeyRing::generate();
        let cases = [
            ("http:\\\\evil.test\\x", "http://evil.test/x"),
            ("https:/evil.test/a", "https://evil.test/a"),
            ("https:///evil.test/a", "https://evil.test/a"),
            ("https:evil.test/a", "https://evil.test/a"),
            ("HTTP://EVIL.test/A", "HTTP://EVIL.test/A"),
            ("hTtPs://evil.test/", "hTtPs://evil.test/"),
            (" \u{1}http://evil.test/a\u{1f} ", "http://evil.test/a"),
            ("&#1;http://evil.test/a&#31;", "http://evil.test/a"),
            ("ht&#9;tp://evil.test/a", "http://evil.test/a"),
            ("ht\ntp://ev\r\nil.test/\ta", "http://evil.test/a"),
            ("http://evil.test/a b", "http://evil.test/a%20b"),
            ("http://evil.test/a\u{1}b", "http://evil.test/a%01b"),
            ("http://evil.test/p\\q?x=\\y", "http://evil.test/p/q?x=\\y"),
            ("//evil.test/a", "https://evil.test/a"),
            ("\\\\evil.test\\a", "https://evil.test/a"),
            (" /\t/evil.test/", "https://evil.test/"),
        ];
        for (href, want) in cases {
            let raw = format!("Content-Type: text/html\r\n\r\n<a href=\"{href}\">x</a>\r\n");
            let r = rw(raw.as_bytes(), &ring, &[]);
            assert_eq!(
                (r.rewritten, r.kept, unwrap_links(&ring, &r.message)),
                (1, 0, vec![want.to_string()]),
                "{href:?}"
            );
        }
    }

    fn rw_with(raw: &[u8], ring: &KeyRing, keep: &[String], policy: VendorLinks) -> Rewritten {
        rewrite(
            raw,
            &Rewrite {
                keys: ring,
                host: HOST,
                message: "D2107H64DXJG0000",
                recipient: "alice@example.test",
                now: 1_795_000_000,
                do_not_rewrite: keep,
                vendor_links: policy,
            },
        )
        .unwrap()
    }

    /// Safe Links around Proofpoint v2 around `https://www.example.test/login?a=1&b=2`.
    const SAFE_PROOFPOINT: &str = "https://nam12.safelinks.protection.outlook.com/?url=https%3A%2F%2Furldefense.proofpoint.com%2Fv2%2Furl%3Fu%3Dhttps-3A__www.example.test_login-3Fa-3D1-26b-3D2%26d%3DDwMFaQ%26c%3Dx%26r%3Dy%26m%3Dz%26s%3Dw%26e%3D&data=05%7C01%7Cbob%40example.test%7C0%7C0&sdata=Ab%2BC&reserved=0";
    const MIMECAST: &str = "https://protect-eu.mimecast.com/s/AbCdEfGhIjKl?domain=example.test";

    #[test]
    fn vendor_links_are_unwrapped_into_ours() {
        let ring = KeyRing::generate();
        let html = SAFE_PROOFPOINT.replace('&', "&amp;");
        let raw = format!(
            "Content-Type: text/html\r\n\r\n<a href=\"{html}\">x</a> <a href='https://urldefense.com/v3/__https://google.com:443/search?q=a*test&amp;gs=ps__;Kw!-612Flbf0JvQ3kNJkRi5Jg!Ue6t$'>y</a>\r\n"
        );
        let r = rw(raw.as_bytes(), &ring, &[]);
        assert_eq!((r.rewritten, r.kept, r.unwrapped), (2, 0, 2));
        assert_eq!(
            unwrap_links(&ring, &r.message),
            [
                "https://www.example.test/login?a=1&b=2",
                "https://google.com:443/search?q=a+test&gs=ps"
            ]
        );
        let out = String::from_utf8(r.message.clone()).unwrap();
        assert!(!out.contains("safelinks") && !out.contains("urldefense"));
        // Nothing is wrapped again.
        let again = rw(&r.message, &ring, &[]);
        assert_eq!((again.rewritten, again.kept, again.unwrapped), (0, 2, 0));
        // Under Keep they stay exactly as they are.
        let k = rw_with(raw.as_bytes(), &ring, &[], VendorLinks::Keep);
        assert_eq!((k.rewritten, k.kept, k.unwrapped), (0, 2, 0));
        assert_eq!(k.message, raw.as_bytes());
    }

    #[test]
    fn mimecast_links_are_wrapped_as_they_are_or_kept() {
        let ring = KeyRing::generate();
        let raw = format!(
            "Content-Type: text/html\r\n\r\n<a href=\"{}\">x</a>\r\n",
            MIMECAST.replace('&', "&amp;")
        );
        let r = rw_with(raw.as_bytes(), &ring, &[], VendorLinks::Unwrap);
        assert_eq!((r.rewritten, r.kept, r.unwrapped), (1, 0, 0));
        assert_eq!(unwrap_links(&ring, &r.message), [MIMECAST]);
        let k = rw_with(raw.as_bytes(), &ring, &[], VendorLinks::Keep);
        assert_eq!((k.rewritten, k.kept, k.unwrapped), (0, 1, 0));
        assert_eq!(k.message, raw.as_bytes());
        // Safe Links around Mimecast: our link carries the Mimecast one.
        let safe = format!(
            "https://eur01.safelinks.protection.outlook.com/?url={}&amp;data=1",
            MIMECAST
                .replace(':', "%3A")
                .replace('/', "%2F")
                .replace('?', "%3F")
                .replace('=', "%3D")
        );
        let raw = format!("Content-Type: text/html\r\n\r\n<a href=\"{safe}\">x</a>\r\n");
        let r = rw(raw.as_bytes(), &ring, &[]);
        assert_eq!((r.rewritten, r.kept, r.unwrapped), (1, 0, 1));
        assert_eq!(unwrap_links(&ring, &r.message), [MIMECAST]);
    }

    #[test]
    fn a_safe_link_in_quoted_printable_html() {
        let ring = KeyRing::generate();
        let html = format!(
            "<p>Caf=C3=A9</p><a href=3D\"{}\">Sign in</a>\r\n",
            SAFE_PROOFPOINT.replace('&', "&amp;").replace('=', "=3D")
        );
        // Soft breaks every 70 characters, inside the link too.
        let mut body = String::new();
        let mut line = 0;
        for c in html.chars() {
            if line >= 70 && c != '\r' && c != '\n' && !body.ends_with('=') && !body.ends_with("=3")
            {
                body.push_str("=\r\n");
                line = 0;
            }
            body.push(c);
            line += 1;
        }
        let raw = format!(
            "Subject: x\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{body}"
        );
        assert_eq!(qp_decode(body.as_bytes()), qp_decode(html.as_bytes()));
        let r = rw(raw.as_bytes(), &ring, &[]);
        assert_eq!((r.rewritten, r.kept, r.unwrapped), (1, 0, 1));
        let out = String::from_utf8(r.message).unwrap();
        let new_body = out.split_once("\r\n\r\n").unwrap().1;
        assert!(new_body.lines().all(|l| l.len() <= 76), "{new_body}");
        let decoded = String::from_utf8(qp_decode(new_body.as_bytes())).unwrap();
        assert!(decoded.starts_with("<p>Café</p><a href=\"https://links.example.test/l/"));
        assert_eq!(
            unwrap_links(&ring, decoded.as_bytes()),
            ["https://www.example.test/login?a=1&b=2"]
        );
    }

    #[test]
    fn unwrapped_urls_that_stay_are_written_bare() {
        let ring = KeyRing::generate();
        let keep = vec!["example.test".to_string()];
        let ours = "https://links.example.test/l/AAAA";
        let safe = |url: &str| {
            format!(
                "https://eur01.safelinks.protection.outlook.com/?url={}&amp;data=1",
                url.bytes()
                    .map(|c| if c.is_ascii_alphanumeric() {
                        (c as char).to_string()
                    } else {
                        format!("%{c:02X}")
                    })
                    .collect::<String>()
            )
        };
        let raw = format!(
            "Content-Type: text/html\r\n\r\n<a href=\"{}\">a</a><a href={}>b</a>\r\n",
            safe("https://intranet.example.test/a?x=1&y=\"2\"<>"),
            safe(ours),
        );
        let r = rw(raw.as_bytes(), &ring, &keep);
        assert_eq!((r.rewritten, r.kept, r.unwrapped), (0, 0, 2));
        let out = String::from_utf8(r.message.clone()).unwrap();
        assert!(
            out.contains(
                "<a href=\"https://intranet.example.test/a?x=1&amp;y=%222%22%3C%3E\">a</a>"
            ),
            "{out}"
        );
        assert!(out.contains(&format!("<a href={ours}>b</a>")), "{out}");
        // In plain text, bare too.
        let text = format!(
            "Subject: x\r\n\r\nsee {} now\r\n",
            safe("https://intranet.example.test/a?x=1&y=2").replace("&amp;", "&")
        );
        let r = rw(text.as_bytes(), &ring, &keep);
        assert_eq!((r.rewritten, r.kept, r.unwrapped), (0, 0, 1));
        assert!(r
            .message
            .ends_with(b"\r\n\r\nsee https://intranet.example.test/a?x=1&y=2 now\r\n"));
        // Under Keep, nothing changes.
        let k = rw_with(raw.as_bytes(), &ring, &keep, VendorLinks::Keep);
        assert_eq!(
            (k.rewritten, k.kept, k.unwrapped, k.message),
            (0, 2, 0, raw.into_bytes())
        );
    }

    #[test]
    fn vendor_links_in_plain_text() {
        let ring = KeyRing::generate();
        let raw = format!("Subject: x\r\n\r\nGo to {SAFE_PROOFPOINT}.\r\nOr {MIMECAST}\r\n");
        let r = rw(raw.as_bytes(), &ring, &[]);
        assert_eq!((r.rewritten, r.kept, r.unwrapped), (2, 0, 1));
        assert_eq!(
            unwrap_links(&ring, &r.message),
            ["https://www.example.test/login?a=1&b=2", MIMECAST]
        );
        assert!(String::from_utf8(r.message)
            .unwrap()
            .contains(".\r\nOr https://links."));
    }

    #[test]
    fn www_names_in_plain_text_are_wrapped_as_http() {
        let ring = KeyRing::generate();
        let raw = b"Subject: x\r\n\r\nSee www.example.test/a?b=1. (WWW.Example.test) <www.x.test>\r\nnot mail@www.example.test, ftp://www.y.test/, a.www.z.test, awww.q.test, www. or www.-x\r\nhttp://www.dup.test/ once\r\n";
        let r = rw(raw, &ring, &[]);
        assert_eq!(
            unwrap_links(&ring, &r.message),
            [
                "http://www.example.test/a?b=1",
                "http://WWW.Example.test",
                "http://www.x.test",
                "http://www.dup.test/"
            ]
        );
        let text = String::from_utf8(r.message.clone()).unwrap();
        assert!(text.contains("\r\nnot mail@www.example.test, ftp://www.y.test/, a.www.z.test, awww.q.test, www. or www.-x\r\n"));
        assert!(text.contains(". (https://links.example.test/l/"));
        // Idempotent.
        assert_eq!(rw(&r.message, &ring, &[]).rewritten, 0);
        // HTML text is not linked.
        let html = b"Content-Type: text/html\r\n\r\n<p>www.example.test</p>\r\n";
        assert_eq!(rw(html, &ring, &[]).message, html);
    }

    #[test]
    fn quoted_printable_round_trips() {
        let text = "a line with trailing space \r\n= and tab\t\r\nnon-ascii é and a very long line that goes on and on and on past the seventy-six column limit of quoted-printable encoding\nlf only\r\n";
        let enc = qp_encode(text.as_bytes(), b"\r\n");
        assert!(enc.split(|&c| c == b'\n').all(|l| l.len() <= 77));
        assert_eq!(qp_decode(&enc), text.as_bytes());
    }
}
