//! The tokenizer: a parsed message in, the set of its hashed features out.
//!
//! Tokens come from the message's own content, never from what the receiving
//! site added (its Received hops, Delivered-To, mailbox flags): those describe the
//! site, not the sender, and a model that learns them learns how mail was filed.
//! - Headers: Subject words; From, To/Cc, Reply-To and Sender names and domains;
//!   the sending software (X-Mailer, User-Agent, X-MimeOLE); Organization;
//!   Message-ID shape and domain; the Date's zone and its skew from the first
//!   external relay's clock; the list headers; where the message entered the
//!   public mail system (the bottom external Received hop: HELO and reverse-DNS
//!   names, /16 and /24 of the address, HELO or EHLO; the hops above it may be
//!   the site's own); which headers are present at all. Each kind of header has
//!   its own namespace, so "free" in the Subject is not "free" in the body.
//! - Body: the decoded text of every text part (RFC 2045 transfer encodings and
//!   charsets are undone by the parser), HTML parts as the reader sees them
//!   (tags stripped, inline tags joining words as on screen) plus the markup's own
//!   features (tag names, attribute names, colours, fonts, style declarations,
//!   link and image hosts), URL hosts, domains, path words and e-mail domains.
//! - Meta: the MIME structure (types, charsets, transfer encodings, attachment
//!   types and name extensions), size and link counts in logarithmic buckets, the
//!   share of shouted (all-capital) words.
//!
//! Words are lowercased with Unicode's mapping, fullwidth ASCII folded to ASCII,
//! zero-width characters dropped; scripts written without spaces (CJK, Thai...)
//! give one token per character. Long numbers become their shape ("9-999-9999"),
//! money amounts their magnitude ("$" and the count of digits), words longer than
//! 24 characters a "skip" token holding their first character and length band.
//! Word tokens feed orthogonal sparse bigrams (OSB, window 5): each token is
//! paired with each of the 4 before it, the distance kept in the hash.
//!
//! Standards: RFC 5322 (header fields), RFC 2045–2049 (MIME, decoded by
//! `mail-parser`), RFC 3986 (URL authority and path), RFC 5321 (Received trace).
//!
//! Hostile input: every loop is bounded. At most [`MAX_TEXT_BYTES`] of each part's
//! text and [`MAX_TOTAL_TEXT_BYTES`] in all are read, [`MAX_BODY_TOKENS`] body
//! tokens and [`MAX_STRUCTURE_TOKENS`] other tokens are kept (a word token gives
//! at most 5 features), [`MAX_PARTS`] parts, [`MAX_HEADERS`] header fields, [`MAX_HOPS`]
//! Received headers and [`MAX_ADDRESSES`] addresses per field are looked at, and
//! nested messages are entered [`MAX_DEPTH`] levels deep. No token is allocated:
//! each is hashed as it is read.

use crate::hash::{self, namespace, TokenHasher};
use crate::html::{self, floor_boundary, Markup};
use mail_parser::{
    Address, HeaderName, HeaderValue, Host, Message, MessagePart, MimeHeaders, PartType,
};
use std::net::IpAddr;

/// Bytes of one part's text that are read.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Bytes of text read over the whole message.
pub const MAX_TOTAL_TEXT_BYTES: usize = 1024 * 1024;
/// Word tokens kept from the bodies.
pub const MAX_BODY_TOKENS: usize = 1500;
/// Tokens kept from the headers, HTML markup and MIME structure.
pub const MAX_STRUCTURE_TOKENS: usize = 1200;
/// MIME parts looked at, nested messages' included.
pub const MAX_PARTS: usize = 64;
/// Header fields looked at.
pub const MAX_HEADERS: usize = 256;
/// Received headers looked at.
pub const MAX_HOPS: usize = 32;
/// Addresses looked at in one address field.
pub const MAX_ADDRESSES: usize = 32;
/// Levels of attached messages (message/rfc822) entered.
pub const MAX_DEPTH: usize = 2;
/// Tokens taken from one header field.
const MAX_FIELD_TOKENS: usize = 48;
/// Characters beyond which a word is a "skip" token.
const MAX_WORD_CHARS: usize = 24;
/// A whitespace-delimited chunk longer than this is one "blob" token.
const MAX_CHUNK_BYTES: usize = 2048;
/// Path words taken from one URL.
const MAX_URL_WORDS: usize = 6;
/// OSB window: a token is paired with this many tokens before it.
const OSB_WINDOW: usize = 4;

// Namespaces: a token's hash depends on where it was found.
const NS_BODY: u64 = namespace("w");
const NS_SUBJECT: u64 = namespace("s");
const NS_SUBJECT_META: u64 = namespace("s:meta");
const NS_FROM_NAME: u64 = namespace("from:name");
const NS_FROM_ADDR: u64 = namespace("from:addr");
const NS_TO_NAME: u64 = namespace("to:name");
const NS_TO_ADDR: u64 = namespace("to:addr");
const NS_REPLY_TO: u64 = namespace("reply-to");
const NS_SENDER: u64 = namespace("sender");
const NS_MAILER: u64 = namespace("mailer");
const NS_ORG: u64 = namespace("org");
const NS_MSGID: u64 = namespace("msgid");
const NS_DATE: u64 = namespace("date");
const NS_LIST: u64 = namespace("list");
const NS_HEADER_NAME: u64 = namespace("h");
const NS_HEADER_VALUE: u64 = namespace("hv");
const NS_RECEIVED: u64 = namespace("rcvd");
const NS_MIME: u64 = namespace("mime");
const NS_META: u64 = namespace("meta");
const NS_URL: u64 = namespace("url");
const NS_URL_PATH: u64 = namespace("url:path");
const NS_EMAIL: u64 = namespace("email");
const NS_HTML: u64 = namespace("html");
const NS_SHAPE: u64 = namespace("shape");
const NS_SKIP: u64 = namespace("skip");
const NS_MONEY: u64 = namespace("money");
const NS_PUNCT: u64 = namespace("punct");

/// The features of one message: hashed keys without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    pub(crate) keys: Vec<u32>,
    /// `keys[markup_from..]` come only from HTML markup (tags, attributes,
    /// styles), which the model weighs apart (`Settings::markup_weight`).
    pub(crate) markup_from: usize,
}

impl Features {
    /// How many distinct features the message has.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Extracts the features of a message.
pub fn features(message: &Message<'_>) -> Features {
    let mut x = Extractor::default();
    x.headers(message);
    x.bodies(message, 0);
    x.meta();
    let main = x.out.len();
    x.out.append(&mut x.markup);
    let (keys, markup_from) = distinct_keys(&x.out, main);
    Features { keys, markup_from }
}

/// The distinct keys of `hashes`, in order of first appearance (deterministic,
/// so equal messages give equal features). Duplicates (a message repeats most
/// of its words) are dropped through a small open-addressing set that stays in
/// cache; no sort is needed, since lookups are batched anyway. Also returns how
/// many of the keys come from `hashes[..split]`: they are the first ones.
fn distinct_keys(hashes: &[u64], split: usize) -> (Vec<u32>, usize) {
    let slots = (hashes.len() * 2).next_power_of_two().max(64);
    let shift = 32 - slots.trailing_zeros();
    let mut set = vec![0u32; slots];
    let mut keys = Vec::with_capacity(hashes.len() / 2);
    let mut from_first = 0;
    for (n, &h) in hashes.iter().enumerate() {
        if n == split {
            from_first = keys.len();
        }
        let k = hash::feature_key(h);
        // Keys are never 0 (feature_key), so 0 marks a free slot; the set is at
        // most half full, so the probe ends.
        let mut i = (k >> shift) as usize;
        loop {
            let slot = &mut set[i];
            if *slot == k {
                break;
            }
            if *slot == 0 {
                *slot = k;
                keys.push(k);
                break;
            }
            i = (i + 1) & (slots - 1);
        }
    }
    if split >= hashes.len() {
        from_first = keys.len();
    }
    (keys, from_first)
}

/// The features of a message with readable names, for diagnostics: why did the
/// model judge this message so? Slower than [`features`]; not for the scan path.
pub fn explain(message: &Message<'_>) -> Vec<(u32, String)> {
    let mut x = Extractor {
        names: Some(Vec::new()),
        ..Extractor::default()
    };
    x.headers(message);
    x.bodies(message, 0);
    x.meta();
    let mut named: Vec<(u32, String)> = x
        .names
        .unwrap_or_default()
        .into_iter()
        .map(|(h, n)| (hash::feature_key(h), n))
        .collect();
    named.sort_by_key(|a| a.0);
    named.dedup_by(|a, b| a.0 == b.0);
    named
}

fn lookup(names: &[(u64, String)], h: u64) -> String {
    // Most recent first: the window's tokens were just pushed.
    names
        .iter()
        .rev()
        .find(|(k, _)| *k == h)
        .map_or_else(|| "?".to_string(), |(_, n)| n.clone())
}

fn ns_name(ns: u64) -> &'static str {
    const ALL: &[(u64, &str)] = &[
        (NS_BODY, "w"),
        (NS_SUBJECT, "s"),
        (NS_SUBJECT_META, "s-meta"),
        (NS_FROM_NAME, "from-name"),
        (NS_FROM_ADDR, "from"),
        (NS_TO_NAME, "to-name"),
        (NS_TO_ADDR, "to"),
        (NS_REPLY_TO, "reply-to"),
        (NS_SENDER, "sender"),
        (NS_MAILER, "mailer"),
        (NS_ORG, "org"),
        (NS_MSGID, "msgid"),
        (NS_DATE, "date"),
        (NS_LIST, "list"),
        (NS_HEADER_NAME, "h"),
        (NS_HEADER_VALUE, "hv"),
        (NS_RECEIVED, "rcvd"),
        (NS_MIME, "mime"),
        (NS_META, "meta"),
        (NS_URL, "url"),
        (NS_URL_PATH, "url-path"),
        (NS_EMAIL, "email"),
        (NS_HTML, "html"),
        (NS_SHAPE, "shape"),
        (NS_SKIP, "skip"),
        (NS_MONEY, "money"),
        (NS_PUNCT, "punct"),
    ];
    ALL.iter()
        .find(|(n, _)| *n == ns)
        .map_or("?", |(_, name)| name)
}

/// The previous tokens of the current run of text, newest first, for OSB.
#[derive(Default)]
struct Window {
    prev: [u64; OSB_WINDOW],
    len: usize,
}

#[derive(Default)]
struct Stats {
    words: u32,
    shouted: u32,
    links: u32,
    images: u32,
    html_tags: u32,
    comments: u32,
    text_bytes: usize,
    parts: usize,
    text_parts: u32,
    html_parts: u32,
    attachments: u32,
}

#[derive(Default)]
struct Extractor {
    out: Vec<u64>,
    /// Tokens of HTML markup, kept apart from `out` (see [`Features`]).
    markup: Vec<u64>,
    /// Whether `lone` tokens go to `markup`.
    in_markup: bool,
    window: Window,
    body_tokens: usize,
    structure_tokens: usize,
    /// Tokens left for the field or part being read.
    budget: usize,
    in_body: bool,
    stats: Stats,
    html_text: String,
    /// When explaining: each emitted hash with a readable name.
    names: Option<Vec<(u64, String)>>,
}

/// Which limit a token counts against: words of the text, or the rest
/// (headers, markup, MIME structure).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Region {
    Structure,
    Body,
}

impl Extractor {
    // ----- emitting ----------------------------------------------------------

    /// Starts a run of text (a header field, a part): OSB pairs do not cross runs.
    fn begin(&mut self, region: Region, max_tokens: usize) {
        self.window.len = 0;
        self.in_body = region == Region::Body;
        let left = match region {
            Region::Structure => MAX_STRUCTURE_TOKENS.saturating_sub(self.structure_tokens),
            Region::Body => MAX_BODY_TOKENS.saturating_sub(self.body_tokens),
        };
        self.budget = left.min(max_tokens);
    }

    /// Takes one token from the budget; false when it is spent.
    #[inline]
    fn spend(&mut self) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        if self.in_body {
            self.body_tokens += 1;
        } else {
            self.structure_tokens += 1;
        }
        true
    }

    /// A token that takes part in OSB pairs with its neighbours. `label` names
    /// it for [`explain`]; it is only called when explaining.
    #[inline]
    fn word_token(&mut self, h: u64, label: impl FnOnce() -> String) {
        if !self.spend() {
            return;
        }
        self.out.push(h);
        if let Some(names) = &mut self.names {
            names.push((h, label()));
        }
        let w = &mut self.window;
        for d in 0..w.len {
            let p = hash::pair(w.prev[d], h, d as u64 + 1);
            self.out.push(p);
            if let Some(names) = &mut self.names {
                let first = lookup(names, w.prev[d]);
                let second = lookup(names, h);
                names.push((p, format!("{first} <{}> {second}", d + 1)));
            }
        }
        w.prev.copy_within(0..OSB_WINDOW - 1, 1);
        w.prev[0] = h;
        w.len = (w.len + 1).min(OSB_WINDOW);
    }

    /// A token that stands alone (no pairs).
    #[inline]
    fn lone(&mut self, h: u64, label: impl FnOnce() -> String) {
        if self.spend() {
            if self.in_markup {
                self.markup.push(h);
            } else {
                self.out.push(h);
            }
            if let Some(names) = &mut self.names {
                names.push((h, label()));
            }
        }
    }

    fn lone_str(&mut self, ns: u64, s: &str) {
        self.lone(hash::token(ns, s), || format!("{}:{s}", ns_name(ns)));
    }

    /// A token made of a name and a value, e.g. ("tz", "+0100").
    fn lone_kv(&mut self, ns: u64, key: &str, value: &str) {
        let mut h = TokenHasher::new(ns);
        let key = &key[..floor_boundary(key, 48)];
        let value = &value[..floor_boundary(value, 48)];
        h.lower_str(key);
        h.byte(0);
        h.lower_str(value);
        self.lone(h.finish(), || format!("{}:{key}={value}", ns_name(ns)));
    }

    // ----- words ---------------------------------------------------------------

    /// Tokenizes free text as words (with OSB pairs), URLs and e-mail addresses.
    fn text(&mut self, text: &str, ns: u64) {
        let text = &text[..floor_boundary(text, MAX_TEXT_BYTES)];
        for chunk in text.split(char::is_whitespace) {
            if self.budget == 0 {
                return;
            }
            if chunk.is_empty() {
                continue;
            }
            if chunk.len() > MAX_CHUNK_BYTES {
                let h = hash::token(NS_SKIP, "blob");
                self.word_token(h, || "skip:blob".into());
                continue;
            }
            self.chunk(chunk, ns);
        }
    }

    fn chunk(&mut self, chunk: &str, ns: u64) {
        // One pass over the bytes says which of the slower checks apply.
        let (mut colon, mut at, mut bangs, mut dot) = (false, false, false, false);
        let mut prev = 0u8;
        for &b in chunk.as_bytes() {
            match b {
                b':' => colon = true,
                b'@' => at = true,
                b'!' if prev == b'!' => bangs = true,
                b'.' => dot = true,
                _ => {}
            }
            prev = b;
        }
        if colon || dot {
            if let Some(p) = find_url(chunk) {
                self.words(&chunk[..p], ns);
                let rest = &chunk[p..];
                let end = rest
                    .find(['<', '>', '"', '\'', '(', ')', '[', ']', '{', '}'])
                    .unwrap_or(rest.len());
                self.url(&rest[..end], true);
                self.words(&rest[end..], ns);
                return;
            }
        }
        if at && dot {
            if let Some(at) = chunk.find('@') {
                let trim = |c: char| !(c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'));
                let local = chunk[..at].trim_start_matches(trim);
                let domain = chunk[at + 1..].trim_end_matches(trim);
                if !local.is_empty() && domain.contains('.') && !domain.contains('@') {
                    self.email(domain);
                    return;
                }
            }
        }
        if bangs {
            self.word_token(hash::token(NS_PUNCT, "!!"), || "punct:!!".into());
        }
        self.words(chunk, ns);
    }

    /// Splits a chunk into words and tokenizes each.
    fn words(&mut self, chunk: &str, ns: u64) {
        let mut start: Option<usize> = None;
        for (i, c) in chunk.char_indices() {
            let c = fold(c);
            if is_word_char(c) {
                if unspaced(c) {
                    if let Some(s) = start.take() {
                        self.word(&chunk[s..i], ns);
                    }
                    let mut h = TokenHasher::new(ns);
                    h.lower_char(c);
                    self.word_token(h.finish(), || format!("{}:{c}", ns_name(ns)));
                } else if start.is_none() {
                    start = Some(i);
                }
            } else if let Some(s) = start.take() {
                self.word(&chunk[s..i], ns);
            }
        }
        if let Some(s) = start {
            self.word(&chunk[s..], ns);
        }
    }

    /// Tokenizes one word (already split from its neighbours).
    fn word(&mut self, w: &str, ns: u64) {
        let w = w.trim_matches(|c: char| matches!(c, '\'' | '’' | '-' | '.' | '_' | ','));
        let w = w.trim_end_matches('$');
        if w.is_empty() {
            return;
        }
        let (mut chars, mut alpha, mut digit, mut upper, mut comma) = (0usize, 0, 0, 0, false);
        for c in w.chars() {
            if invisible(c) {
                continue;
            }
            chars += 1;
            if c.is_alphabetic() {
                alpha += 1;
                if c.is_uppercase() {
                    upper += 1;
                }
            } else if c.is_numeric() {
                digit += 1;
            } else if c == ',' {
                comma = true;
            }
        }
        if comma && alpha > 0 {
            // Words glued by a comma ("one,two"); numbers keep theirs ("1,000").
            // The parts hold no comma, so this recurses once.
            for part in w.split(',') {
                self.word(part, ns);
            }
            return;
        }
        if alpha == 0 && digit == 0 {
            if chars >= 2 {
                let p = &w[..floor_boundary(w, 8)];
                self.word_token(hash::token(NS_PUNCT, p), || format!("punct:{p}"));
            }
            return;
        }
        if ns == NS_BODY {
            self.stats.words += 1;
            if alpha >= 3 && upper == alpha {
                self.stats.shouted += 1;
            }
        }
        if w.starts_with('$') && digit > 0 && alpha == 0 {
            let mut h = TokenHasher::new(NS_MONEY);
            h.byte(b'$');
            h.byte(digit.min(9) as u8);
            self.word_token(h.finish(), || format!("money:{}", digit.min(9)));
            return;
        }
        if digit > 0 && digit * 2 >= chars && chars > 4 {
            let mut h = TokenHasher::new(NS_SHAPE);
            for c in w.chars().filter(|c| !invisible(*c)).take(MAX_WORD_CHARS) {
                h.byte(if c.is_numeric() {
                    b'9'
                } else if c.is_alphabetic() {
                    b'a'
                } else if c.is_ascii() {
                    c as u8
                } else {
                    b'~'
                });
            }
            self.word_token(h.finish(), || format!("shape:{w}"));
            return;
        }
        if chars > MAX_WORD_CHARS {
            let mut h = TokenHasher::new(NS_SKIP);
            if let Some(c) = w.chars().next() {
                h.lower_char(if c.is_numeric() { '9' } else { c });
            }
            h.byte((chars / 8).min(16) as u8);
            self.word_token(h.finish(), || format!("skip:{w}"));
            return;
        }
        if chars < 2 {
            return;
        }
        let mut h = TokenHasher::new(ns);
        for c in w.chars() {
            if !invisible(c) {
                h.lower_char(fold(c));
            }
        }
        self.word_token(h.finish(), || format!("{}:{w}", ns_name(ns)));
    }

    // ----- links and addresses -------------------------------------------------

    /// Tokenizes a URL: its host and domain (an OSB token when `in_text`, so
    /// "click here <link>" pairs up), scheme oddities and path words.
    fn url(&mut self, url: &str, in_text: bool) {
        self.stats.links += 1;
        let url = url.trim();
        let (scheme, rest) = match url.find("://") {
            Some(p) if p <= 10 => (&url[..p], &url[p + 3..]),
            _ => {
                if let Some(addr) = strip_prefix_ignore_case(url, "mailto:") {
                    if let Some((_, domain)) = addr.split_once('@') {
                        let end = domain.find(['?', '>', '&']).unwrap_or(domain.len());
                        self.email(&domain[..end]);
                    }
                    return;
                }
                ("", url)
            }
        };
        if !scheme.is_empty()
            && !scheme.eq_ignore_ascii_case("http")
            && !scheme.eq_ignore_ascii_case("https")
        {
            self.lone_kv(NS_URL, "scheme", scheme);
        }
        let auth_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
        let mut host = &rest[..auth_end];
        let path = &rest[auth_end..];
        if let Some(p) = host.rfind('@') {
            // user@host: a classic way to dress one host as another.
            self.lone_str(NS_URL, "userinfo");
            host = &host[p + 1..];
        }
        if let Some((h, port)) = host.rsplit_once(':') {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                self.lone_str(NS_URL, "port");
                host = h;
            }
        }
        let host = host.trim_end_matches('.');
        if host.is_empty() {
            return;
        }
        if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') || host.starts_with('[') {
            self.lone_str(NS_URL, "ip-host");
            if in_text {
                self.word_token(hash::token(NS_URL, "ip-host"), || "url:ip-host".into());
            }
        } else {
            let domain = registered_domain(host);
            let dh = hash::token(NS_URL, domain);
            if in_text {
                self.word_token(dh, || format!("url:{domain}"));
            } else {
                self.lone(dh, || format!("url:{domain}"));
            }
            if domain.len() != host.len() {
                self.lone_kv(NS_URL, "host", host);
            }
            if host.contains("xn--") || !host.is_ascii() {
                self.lone_str(NS_URL, "idn");
            }
            if host.contains('%') {
                self.lone_str(NS_URL, "escaped-host");
            }
        }
        if path.contains('?') {
            self.lone_str(NS_URL, "query");
        }
        let path = &path[..floor_boundary(path, 512)];
        let mut taken = 0;
        for w in path.split(|c: char| !c.is_alphanumeric()) {
            if taken >= MAX_URL_WORDS {
                break;
            }
            let n = w.len();
            if n < 2 {
                continue;
            }
            taken += 1;
            if n > 20 || w.bytes().filter(u8::is_ascii_digit).count() * 2 > n {
                self.lone_kv(NS_URL_PATH, "long", "");
            } else {
                self.lone_str(NS_URL_PATH, w);
            }
        }
        let last = path.split(['?', '#']).next().unwrap_or("");
        if let Some((_, ext)) = last.rsplit_once('.') {
            if (2..=5).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
                self.lone_kv(NS_URL, "ext", ext);
            }
        }
    }

    fn email(&mut self, domain: &str) {
        let domain = domain.trim_end_matches('.');
        let reg = registered_domain(domain);
        self.word_token(hash::token(NS_EMAIL, reg), || format!("email:{reg}"));
        if reg.len() != domain.len() {
            self.lone_kv(NS_EMAIL, "host", domain);
        }
    }

    // ----- headers -------------------------------------------------------------

    fn headers(&mut self, m: &Message<'_>) {
        let mut received = Vec::new();
        let mut seen_date = false;
        let mut seen_msgid = false;
        let mut seen_to = false;
        let mut from_domain = None;
        for header in m.headers().iter().take(MAX_HEADERS) {
            let name = header.name();
            let value = header.value();
            match &header.name {
                HeaderName::Received => {
                    if let Some(r) = value.as_received() {
                        if received.len() < MAX_HOPS {
                            received.push(r);
                        }
                    }
                    continue;
                }
                HeaderName::Subject => {
                    self.begin(Region::Structure, MAX_FIELD_TOKENS);
                    if let Some(s) = value.as_text() {
                        self.text(s, NS_SUBJECT);
                        self.subject_meta(s, raw_header(m, header).unwrap_or(""));
                    }
                }
                HeaderName::From => {
                    self.begin(Region::Structure, MAX_FIELD_TOKENS);
                    if let Some(a) = value.as_address() {
                        from_domain = a.first().and_then(|a| a.address()).and_then(domain_of);
                        self.addresses(a, NS_FROM_NAME, NS_FROM_ADDR, true);
                    }
                }
                HeaderName::To | HeaderName::Cc => {
                    seen_to = true;
                    self.begin(Region::Structure, MAX_FIELD_TOKENS);
                    if let Some(a) = value.as_address() {
                        let n = a.iter().take(MAX_ADDRESSES + 1).count();
                        self.lone_kv(NS_TO_ADDR, "count", bucket_small(n));
                        self.addresses(a, NS_TO_NAME, NS_TO_ADDR, false);
                    } else {
                        self.lone_kv(NS_TO_ADDR, "unparsed", "");
                    }
                }
                HeaderName::ReplyTo => {
                    self.begin(Region::Structure, MAX_FIELD_TOKENS);
                    if let Some(a) = value.as_address() {
                        self.addresses(a, NS_REPLY_TO, NS_REPLY_TO, false);
                        let rt = a.first().and_then(|a| a.address()).and_then(domain_of);
                        if rt.is_some() && rt == from_domain {
                            self.lone_str(NS_REPLY_TO, "same-domain-as-from");
                        }
                    }
                }
                HeaderName::Sender => {
                    self.begin(Region::Structure, MAX_FIELD_TOKENS);
                    if let Some(a) = value.as_address() {
                        self.addresses(a, NS_SENDER, NS_SENDER, false);
                    }
                }
                HeaderName::MessageId => {
                    seen_msgid = true;
                    self.begin(Region::Structure, MAX_FIELD_TOKENS);
                    if let Some(id) = text_of(value) {
                        self.message_id(id, from_domain);
                    }
                }
                HeaderName::Date => {
                    seen_date = true;
                    self.begin(Region::Structure, MAX_FIELD_TOKENS);
                    if let Some(d) = value.as_datetime() {
                        let tz = format_tz(d);
                        self.lone_kv(NS_DATE, "tz", tz.as_str());
                    } else {
                        self.lone_str(NS_DATE, "unparsed");
                    }
                }
                HeaderName::ListId => {
                    self.begin(Region::Structure, MAX_FIELD_TOKENS);
                    if let Some(raw) = raw_header(m, header) {
                        let id = raw.rsplit_once('<').map_or(raw, |(_, id)| id);
                        let id = id.trim().trim_end_matches('>');
                        self.lone_kv(NS_LIST, "id", id);
                    }
                }
                _ => {}
            }
            if local_header(name) {
                continue;
            }
            self.begin(Region::Structure, MAX_FIELD_TOKENS);
            self.lone_str(NS_HEADER_NAME, name);
            let mut buf = [0u8; 32];
            let lname = lowercase_into(name, &mut buf);
            match lname {
                "x-mailer" | "user-agent" | "x-newsreader" | "x-mimeole" => {
                    if let Some(t) = text_of(value) {
                        self.text(t, NS_MAILER);
                    }
                }
                "organization" | "organisation" => {
                    if let Some(t) = text_of(value) {
                        self.text(t, NS_ORG);
                    }
                }
                "precedence"
                | "x-priority"
                | "x-msmail-priority"
                | "importance"
                | "priority"
                | "mime-version"
                | "content-transfer-encoding"
                | "x-mailman-version"
                | "auto-submitted"
                | "content-class" => {
                    if let Some(t) = text_of(value).or_else(|| raw_header(m, header)) {
                        self.lone_kv(NS_HEADER_VALUE, lname, t.trim());
                    }
                }
                "list-unsubscribe" | "list-subscribe" | "list-post" | "list-help" => {
                    if let Some(raw) = raw_header(m, header) {
                        self.list_links(raw);
                    }
                }
                _ => {}
            }
        }
        self.begin(Region::Structure, MAX_FIELD_TOKENS);
        if !seen_date {
            self.lone_str(NS_HEADER_NAME, "missing:date");
        }
        if !seen_msgid {
            self.lone_str(NS_HEADER_NAME, "missing:message-id");
        }
        if !seen_to {
            self.lone_str(NS_HEADER_NAME, "missing:to");
        }
        self.received(&received, m.date());
    }

    fn subject_meta(&mut self, s: &str, raw: &str) {
        let (mut letters, mut upper) = (0usize, 0usize);
        for c in s.chars().take(1000) {
            if c.is_alphabetic() {
                letters += 1;
                if c.is_uppercase() {
                    upper += 1;
                }
            }
        }
        if letters >= 6 && upper * 10 >= letters * 7 {
            self.lone_str(NS_SUBJECT_META, "shouted");
        }
        if s.contains('!') {
            self.lone_str(NS_SUBJECT_META, "exclamation");
        }
        if s.contains('$') {
            self.lone_str(NS_SUBJECT_META, "dollar");
        }
        if raw.contains("=?") {
            self.lone_str(NS_SUBJECT_META, "encoded");
        }
        let lower_start = s.trim_start().get(..4).map(str::to_ascii_lowercase);
        if let Some(p) = lower_start {
            if p.starts_with("re:")
                || p.starts_with("fw:")
                || p.starts_with("fwd:")
                || p.starts_with("aw:")
            {
                self.lone_str(NS_SUBJECT_META, "reply");
            }
        }
        if s.trim().is_empty() {
            self.lone_str(NS_SUBJECT_META, "empty");
        }
        // Trailing spaces and long runs of spaces pad subjects to defeat checksums.
        if s.ends_with(' ') || s.contains("   ") {
            self.lone_str(NS_SUBJECT_META, "padded");
        }
        self.lone_kv(
            NS_SUBJECT_META,
            "length",
            bucket_log(s.chars().take(1000).count()),
        );
    }

    fn addresses(&mut self, a: &Address<'_>, ns_names: u64, ns_addr: u64, local_parts: bool) {
        for addr in a.iter().take(MAX_ADDRESSES) {
            if let Some(name) = addr.name() {
                self.window.len = 0;
                self.text(&name[..floor_boundary(name, 256)], ns_names);
                if name.contains('@') {
                    self.lone_kv(ns_addr, "name-has-address", "");
                }
            }
            let Some(address) = addr.address() else {
                self.lone_kv(ns_addr, "no-address", "");
                continue;
            };
            let Some((local, domain)) = address.rsplit_once('@') else {
                self.lone_kv(ns_addr, "no-domain", "");
                continue;
            };
            let domain = domain.trim_end_matches('.');
            let reg = registered_domain(domain);
            self.lone_kv(ns_addr, "domain", reg);
            if reg.len() != domain.len() {
                self.lone_kv(ns_addr, "host", domain);
            }
            if local_parts {
                let digits = local.bytes().filter(u8::is_ascii_digit).count();
                if local.len() > 16 || digits >= 3 {
                    let mut h = TokenHasher::new(ns_addr);
                    for b in local.bytes().take(24) {
                        h.byte(if b.is_ascii_digit() {
                            b'9'
                        } else if b.is_ascii_alphabetic() {
                            b'a'
                        } else {
                            b
                        });
                    }
                    self.lone(h.finish(), || {
                        format!("{}:local-shape:{local}", ns_name(ns_addr))
                    });
                } else {
                    self.lone_kv(ns_addr, "local", local);
                }
            }
        }
    }

    fn message_id(&mut self, id: &str, from_domain: Option<&str>) {
        let id = id.trim_matches(|c| c == '<' || c == '>');
        let Some((local, domain)) = id.rsplit_once('@') else {
            self.lone_str(NS_MSGID, "no-at");
            return;
        };
        let reg = registered_domain(domain);
        self.lone_kv(NS_MSGID, "domain", reg);
        if from_domain.is_some_and(|f| registered_domain(f).eq_ignore_ascii_case(reg)) {
            self.lone_str(NS_MSGID, "from-domain");
        }
        // The shape of the local part names the software that made it: runs of
        // digits become '9', of letters 'a', punctuation stays.
        let mut h = TokenHasher::new(NS_MSGID);
        let mut last = 0u8;
        let mut symbols = 0;
        for b in local.bytes() {
            let class = if b.is_ascii_digit() {
                b'9'
            } else if b.is_ascii_alphabetic() {
                b'a'
            } else {
                b
            };
            if class != last {
                h.byte(class);
                last = class;
                symbols += 1;
                if symbols >= 16 {
                    break;
                }
            }
        }
        self.lone(h.finish(), || format!("msgid:shape:{local}"));
    }

    fn list_links(&mut self, raw: &str) {
        for part in raw.split(',').take(4) {
            let p = part.trim().trim_start_matches('<').trim_end_matches('>');
            if let Some(addr) = strip_prefix_ignore_case(p, "mailto:") {
                if let Some((_, d)) = addr.split_once('@') {
                    let d = &d[..d.find('?').unwrap_or(d.len())];
                    self.lone_kv(NS_LIST, "mail", registered_domain(d));
                }
            } else if let Some(rest) = p.split_once("://").map(|(_, r)| r) {
                let host = &rest[..rest.find(['/', '?', ':']).unwrap_or(rest.len())];
                self.lone_kv(NS_LIST, "web", registered_domain(host));
            }
        }
    }

    /// Where the message came from. Only the bottom (earliest) hop that is not
    /// inside a host or a private network is tokenized: the client that first
    /// handed the message to a public relay, its HELO and reverse-DNS names,
    /// address /16 and /24 and whether it said HELO or EHLO. The hops above it
    /// may be the receiving site's own relays (its MX forwarding to its mail
    /// store), which a gateway never sees at scan time and which only teach the
    /// model how the site filed its mail. The topmost external hop's clock gives
    /// the skew of the Date header.
    fn received(
        &mut self,
        hops: &[&mail_parser::Received<'_>],
        date: Option<&mail_parser::DateTime>,
    ) {
        self.begin(Region::Structure, 32);
        let mut external = hops.iter().copied().filter(|r| !internal_hop(r));
        let top = external.next();
        let origin = external.next_back().or(top);
        if let (Some(top), Some(date)) = (top, date) {
            if let Some(arrived) = top.date() {
                let skew = arrived.to_timestamp() - date.to_timestamp();
                let band = match skew {
                    s if s < -86_400 => "future-day",
                    s if s < -3_600 => "future-hours",
                    s if s < 6 * 3_600 => "normal",
                    s if s < 2 * 86_400 => "late",
                    _ => "stale",
                };
                self.lone_kv(NS_RECEIVED, "date-skew", band);
            }
        }
        // No token says "no external hop": at scan time a message straight from
        // its sender has none, while the same message learned from a mailbox has
        // the gateway's own; the absence would read as the site's own mail.
        let Some(r) = origin else {
            return;
        };
        if let Some(Host::Name(helo)) = r.helo().or(r.from()) {
            self.host(helo);
        }
        if let Some(rdns) = r.from_iprev() {
            self.host(rdns);
        } else {
            self.lone_str(NS_RECEIVED, "no-rdns");
        }
        if let Some(IpAddr::V4(ip)) = r.from_ip() {
            let o = ip.octets();
            let mut h = TokenHasher::new(NS_RECEIVED);
            h.bytes(&o[..2]);
            self.lone(h.finish(), || format!("rcvd:ip:{}.{}", o[0], o[1]));
            h.byte(o[2]);
            self.lone(h.finish(), || format!("rcvd:ip:{}.{}.{}", o[0], o[1], o[2]));
        }
        if let Some(with) = r.with() {
            self.lone_kv(NS_RECEIVED, "with", with.as_str());
        }
    }

    fn host(&mut self, host: &str) {
        let host = host.trim_end_matches('.');
        if host.is_empty() {
            return;
        }
        let reg = registered_domain(host);
        self.lone_kv(NS_RECEIVED, "domain", reg);
        if !host.contains('.') {
            self.lone_str(NS_RECEIVED, "bare-name");
        }
    }

    // ----- bodies ----------------------------------------------------------------

    fn bodies(&mut self, m: &Message<'_>, depth: usize) {
        for part in &m.parts {
            // One budget over every level, so nesting cannot multiply it.
            if self.stats.parts >= MAX_PARTS {
                return;
            }
            self.stats.parts += 1;
            self.begin(Region::Structure, 16);
            self.mime(part);
            match &part.body {
                PartType::Text(t) => {
                    if looks_like_html(t) {
                        self.stats.html_parts += 1;
                        self.html(t);
                    } else {
                        self.stats.text_parts += 1;
                        self.body_text(t);
                    }
                }
                PartType::Html(h) => {
                    self.stats.html_parts += 1;
                    self.html(h);
                }
                PartType::Binary(b) | PartType::InlineBinary(b) => {
                    self.stats.attachments += 1;
                    self.begin(Region::Structure, 8);
                    self.lone_kv(NS_MIME, "attachment-size", bucket_log(b.len() / 1024));
                }
                PartType::Message(inner) => {
                    self.stats.attachments += 1;
                    if depth < MAX_DEPTH {
                        self.begin(Region::Body, MAX_FIELD_TOKENS);
                        if let Some(s) = inner.subject() {
                            self.text(s, NS_SUBJECT);
                        }
                        self.bodies(inner, depth + 1);
                    }
                }
                PartType::Multipart(_) => {}
            }
        }
    }

    fn mime(&mut self, part: &MessagePart<'_>) {
        if let Some(ct) = part.content_type() {
            let sub = ct.subtype().unwrap_or("");
            let mut h = TokenHasher::new(NS_MIME);
            h.lower_str(&ct.ctype()[..floor_boundary(ct.ctype(), 32)]);
            h.byte(b'/');
            h.lower_str(&sub[..floor_boundary(sub, 32)]);
            self.lone(h.finish(), || format!("mime:{}/{sub}", ct.ctype()));
            if let Some(cs) = ct.attribute("charset") {
                self.lone_kv(NS_MIME, "charset", cs);
            }
            if let Some(b) = ct.attribute("boundary") {
                // The boundary's shape names the software that wrote it.
                let mut h = TokenHasher::new(NS_MIME);
                h.byte(b'b');
                let mut last = 0u8;
                for c in b.bytes().take(64) {
                    let class = if c.is_ascii_digit() {
                        b'9'
                    } else if c.is_ascii_alphabetic() {
                        b'a'
                    } else {
                        c
                    };
                    if class != last {
                        h.byte(class);
                        last = class;
                    }
                }
                self.lone(h.finish(), || format!("mime:boundary:{b}"));
            }
        } else {
            self.lone_str(NS_MIME, "no-content-type");
        }
        if let Some(cte) = part.content_transfer_encoding() {
            self.lone_kv(NS_MIME, "cte", cte.trim());
        }
        if part.is_encoding_problem {
            self.lone_str(NS_MIME, "encoding-problem");
        }
        if let Some(name) = part.attachment_name() {
            if let Some((_, ext)) = name.rsplit_once('.') {
                self.lone_kv(NS_MIME, "ext", &ext[..floor_boundary(ext, 8)]);
            }
        }
        if let Some(d) = part.content_disposition() {
            self.lone_kv(NS_MIME, "disposition", d.ctype());
        }
    }

    fn body_text(&mut self, t: &str) {
        let room = MAX_TOTAL_TEXT_BYTES.saturating_sub(self.stats.text_bytes);
        let t = &t[..floor_boundary(t, room.min(MAX_TEXT_BYTES))];
        self.stats.text_bytes += t.len();
        self.begin(Region::Body, usize::MAX);
        self.text(t, NS_BODY);
    }

    fn html(&mut self, h: &str) {
        let room = MAX_TOTAL_TEXT_BYTES.saturating_sub(self.stats.text_bytes);
        let h = &h[..floor_boundary(h, room.min(MAX_TEXT_BYTES))];
        self.stats.text_bytes += h.len();
        let mut visible = std::mem::take(&mut self.html_text);
        visible.clear();
        self.begin(Region::Structure, 600);
        html::scan(h, MAX_TEXT_BYTES, &mut visible, self);
        self.begin(Region::Body, usize::MAX);
        self.text(&visible, NS_BODY);
        self.html_text = visible;
    }

    fn meta(&mut self) {
        self.begin(Region::Structure, 32);
        let s = std::mem::take(&mut self.stats);
        self.lone_kv(NS_META, "words", bucket_log(s.words as usize));
        if s.words >= 10 {
            let band = match s.shouted * 100 / s.words {
                0 => "0",
                1..=4 => "low",
                5..=19 => "some",
                _ => "many",
            };
            self.lone_kv(NS_META, "shouted", band);
        }
        self.lone_kv(NS_META, "links", bucket_log(s.links as usize));
        self.lone_kv(NS_META, "images", bucket_small(s.images as usize));
        self.lone_kv(NS_META, "comments", bucket_small(s.comments as usize));
        self.lone_kv(NS_META, "html-tags", bucket_log(s.html_tags as usize));
        self.lone_kv(NS_META, "attachments", bucket_small(s.attachments as usize));
        let shape = match (s.text_parts > 0, s.html_parts > 0) {
            (true, true) => "text+html",
            (true, false) => "text",
            (false, true) => "html-only",
            (false, false) => "no-text",
        };
        self.lone_kv(NS_META, "body", shape);
    }
}

impl Markup for Extractor {
    fn tag(&mut self, name: &str) {
        self.stats.html_tags += 1;
        if name == "img" {
            self.stats.images += 1;
        }
        self.in_markup = true;
        self.lone_kv(NS_HTML, "tag", name);
        self.in_markup = false;
    }

    fn attribute(&mut self, tag: &str, name: &str, value: &str) {
        let mut h = TokenHasher::new(NS_HTML);
        h.bytes(tag.as_bytes());
        h.byte(b'.');
        h.bytes(name.as_bytes());
        let tag_attr = h;
        self.in_markup = true;
        self.lone(tag_attr.finish(), || format!("html:{tag}.{name}"));
        match name {
            "href" | "src" | "action" | "background" | "lowsrc" => {
                // Link and image hosts are not markup: they weigh in full.
                self.in_markup = false;
                self.url(&value[..floor_boundary(value, 2048)], false);
            }
            "color" | "bgcolor" | "face" | "size" | "align" | "border" | "type" | "target"
            | "http-equiv" | "width" | "height" | "valign" | "cellpadding" | "cellspacing" => {
                let mut h = tag_attr;
                h.byte(b'=');
                h.lower_str(value[..floor_boundary(value, 32)].trim());
                self.lone(h.finish(), || format!("html:{tag}.{name}={value}"));
            }
            "style" => {
                for decl in value.split(';').take(16) {
                    let Some((prop, v)) = decl.split_once(':') else {
                        continue;
                    };
                    let prop = prop.trim();
                    let v = v.trim();
                    self.lone_kv(NS_HTML, prop, "");
                    self.lone_kv(NS_HTML, prop, v);
                }
            }
            _ => {}
        }
        self.in_markup = false;
    }

    fn comment(&mut self) {
        self.stats.comments += 1;
    }
}

// ----- helpers -------------------------------------------------------------------

/// Headers written by the receiving side (delivery, mailbox software, filters):
/// they describe the site, not the message, and are not tokenized.
fn local_header(name: &str) -> bool {
    let n = name.as_bytes();
    let starts = |p: &str| n.len() >= p.len() && n[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    [
        "received",
        "return-path",
        "delivered-to",
        "x-original-to",
        "envelope-to",
        "x-envelope-to",
        "x-rcpt-to",
        "x-real-to",
        "delivery-date",
        "status",
        "x-status",
        "x-keywords",
        "x-uid",
        "x-uidl",
        "content-length",
        "lines",
        "x-spam-",
        "x-mozilla-",
        "x-evolution",
        "x-imap",
        "x-dspam",
        "x-bogosity",
        "x-virus-status",
        "x-portcullis",
        "authentication-results",
        "arc-",
        "x-ms-exchange-organization",
        "x-gm-",
    ]
    .iter()
    .any(|p| {
        if p.ends_with('-') {
            starts(p)
        } else {
            name.eq_ignore_ascii_case(p)
        }
    })
}

/// A hop that is inside the receiving site: loopback or private addresses, a
/// host talking to itself, a local mail fetcher.
fn internal_hop(r: &mail_parser::Received<'_>) -> bool {
    let local_name = |h: Option<&Host<'_>>| match h {
        Some(Host::Name(n)) => {
            let n = n.to_ascii_lowercase();
            n == "localhost" || n.starts_with("localhost.") || n.ends_with("@localhost")
        }
        Some(Host::IpAddr(ip)) => private_ip(ip),
        None => false,
    };
    if local_name(r.by()) || local_name(r.from()) || local_name(r.helo()) {
        return true;
    }
    r.from_ip().is_some_and(|ip| private_ip(&ip))
}

fn private_ip(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
    }
}

/// `s` lowercased in `buf` when it is ASCII and fits, else "" (no header this
/// applies to is longer).
fn lowercase_into<'b>(s: &str, buf: &'b mut [u8; 32]) -> &'b str {
    if s.len() > buf.len() || !s.is_ascii() {
        return "";
    }
    let out = &mut buf[..s.len()];
    out.copy_from_slice(s.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).unwrap_or("")
}

fn raw_header<'m>(m: &'m Message<'_>, header: &mail_parser::Header<'_>) -> Option<&'m str> {
    let raw = m
        .raw_message()
        .get(header.offset_start as usize..header.offset_end as usize)?;
    std::str::from_utf8(raw).ok().map(str::trim)
}

fn text_of<'v>(value: &'v HeaderValue<'_>) -> Option<&'v str> {
    match value {
        HeaderValue::Text(t) => Some(t.as_ref()),
        HeaderValue::TextList(l) => l.first().map(|t| t.as_ref()),
        _ => None,
    }
}

fn domain_of(address: &str) -> Option<&str> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('.'))
}

/// The registered part of a host name, roughly: the last two labels, or three
/// when the second-level label is a short public suffix ("co.uk", "com.au").
/// (A full public-suffix list would be exact; this is close enough for tokens.)
fn registered_domain(host: &str) -> &str {
    let host = host.trim_end_matches('.');
    let mut dots = host.rmatch_indices('.').map(|(i, _)| i);
    let Some(last) = dots.next() else {
        return host;
    };
    let Some(second) = dots.next() else {
        return host;
    };
    let sld = &host[second + 1..last];
    let tld = &host[last + 1..];
    if tld.len() == 2 && (sld.len() <= 3 || matches!(sld, "gouv" | "govt")) {
        match dots.next() {
            Some(third) => &host[third + 1..],
            None => host,
        }
    } else {
        &host[second + 1..]
    }
}

fn strip_prefix_ignore_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Where a URL starts in a chunk of text, if one does.
fn find_url(chunk: &str) -> Option<usize> {
    if let Some(p) = chunk.find("://") {
        let scheme_start = chunk[..p]
            .char_indices()
            .rev()
            .find(|&(_, c)| !c.is_ascii_alphabetic())
            .map_or(0, |(i, c)| i + c.len_utf8());
        if p > scheme_start {
            return Some(scheme_start);
        }
    }
    let trimmed = chunk.trim_start_matches(|c: char| !c.is_alphanumeric());
    let off = chunk.len() - trimmed.len();
    strip_prefix_ignore_case(trimmed, "www.")
        .filter(|rest| rest.contains('.'))
        .map(|_| off)
}

fn looks_like_html(t: &str) -> bool {
    const TAGS: [&[u8]; 8] = [
        b"html", b"body", b"table", b"font", b"p>", b"br>", b"div", b"a href",
    ];
    let b = &t.as_bytes()[..t.len().min(2048)];
    b.iter().enumerate().any(|(i, &c)| {
        c == b'<'
            && TAGS.iter().any(|tag| {
                b.get(i + 1..i + 1 + tag.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(tag))
            })
    })
}

#[inline]
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(c, '\'' | '’' | '-' | '.' | '_' | '$' | '%' | ',')
        || invisible(c)
}

/// Characters that render as nothing; spam puts them inside words.
#[inline]
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}' | '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}'
    )
}

/// Fullwidth ASCII (U+FF01–FF5E) folded to ASCII.
#[inline]
fn fold(c: char) -> char {
    if ('\u{ff01}'..='\u{ff5e}').contains(&c) {
        char::from_u32(c as u32 - 0xfee0).unwrap_or(c)
    } else {
        c
    }
}

/// Scripts written without spaces between words: each character is a token.
#[inline]
fn unspaced(c: char) -> bool {
    matches!(c,
        '\u{0e00}'..='\u{0eff}'     // Thai, Lao
        | '\u{1000}'..='\u{109f}'   // Myanmar
        | '\u{1780}'..='\u{17ff}'   // Khmer
        | '\u{3040}'..='\u{30ff}'   // Hiragana, Katakana
        | '\u{3400}'..='\u{4dbf}'   // CJK extension A
        | '\u{4e00}'..='\u{9fff}'   // CJK unified ideographs
        | '\u{f900}'..='\u{faff}'   // CJK compatibility ideographs
        | '\u{20000}'..='\u{2ffff}' // CJK extensions B onwards
    )
}

fn bucket_small(n: usize) -> &'static str {
    match n {
        0 => "0",
        1 => "1",
        2 => "2",
        3..=5 => "3-5",
        6..=10 => "6-10",
        11..=30 => "11-30",
        _ => "more",
    }
}

fn bucket_log(n: usize) -> &'static str {
    const NAMES: [&str; 12] = [
        "0", "1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128-255", "256-511",
        "512-1023", "1024+",
    ];
    let i = if n == 0 {
        0
    } else {
        (usize::BITS - n.leading_zeros()) as usize
    };
    NAMES[i.min(NAMES.len() - 1)]
}

fn format_tz(d: &mail_parser::DateTime) -> String {
    format!(
        "{}{:02}{:02}",
        if d.tz_before_gmt { '-' } else { '+' },
        d.tz_hour,
        d.tz_minute
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn parse(raw: &[u8]) -> Message<'_> {
        mail_parser::MessageParser::default()
            .parse(raw)
            .expect("test message parses")
    }

    /// The readable names of a message's features.
    fn names(raw: &str) -> Vec<String> {
        explain(&parse(raw.as_bytes()))
            .into_iter()
            .map(|(_, n)| n)
            .collect()
    }

    fn has(names: &[String], name: &str) -> bool {
        names.iter().any(|n| n == name)
    }

    #[test]
    fn html_is_read_as_shown_and_its_markup_kept_as_features() {
        let n = names(
            "From: a@x.test\r\nContent-Type: text/html\r\n\r\n\
             <html><head><script>var hidden = 1;</script></head><body>\
             <font color=\"#FF0000\">Cheap vi<b></b>agra</font> \
             <a href=\"http://www.pills.example.com/buy?id=1\">order</a></body></html>\r\n",
        );
        assert!(has(&n, "w:Cheap"), "{n:?}");
        assert!(has(&n, "w:viagra"), "inline tags join the word: {n:?}");
        assert!(has(&n, "w:order"));
        assert!(
            !n.iter().any(|x| x.contains("hidden")),
            "script is not text"
        );
        assert!(has(&n, "html:tag=font"));
        assert!(has(&n, "html:font.color=#FF0000"));
        assert!(has(&n, "url:example.com"), "link domain: {n:?}");
        assert!(has(&n, "url:host=www.pills.example.com"));
        assert!(has(&n, "url:query"));
        assert!(has(&n, "meta:body=html-only"));
        // Words pair up across the markup as the reader sees them.
        assert!(has(&n, "w:Cheap <1> w:viagra"), "{n:?}");
    }

    #[test]
    fn markup_features_come_last_and_only_they() {
        let raw = "From: a@x.test\r\nSubject: Offer\r\nContent-Type: text/html\r\n\r\n\
             <html><body bgcolor=\"#FFFFFF\"><table width=600><tr><td style=\"color: red\">\
             <font face=\"Arial\">Cheap pills</font> \
             <a href=\"http://www.pills.example.com/buy\">order</a></td></tr></table>\
             </body></html>\r\n";
        let m = parse(raw.as_bytes());
        let f = features(&m);
        assert!(f.markup_from < f.keys.len(), "markup keys were kept apart");
        let named: std::collections::HashMap<u32, String> = explain(&m).into_iter().collect();
        for (i, k) in f.keys.iter().enumerate() {
            let name = &named[k];
            assert_eq!(
                i >= f.markup_from,
                name.starts_with("html:"),
                "{name} at {i}, markup from {}",
                f.markup_from
            );
        }
        // Link hosts inside markup are not markup.
        assert!(f.keys[..f.markup_from]
            .iter()
            .any(|k| named[k] == "url:host=www.pills.example.com"));
        // A message without HTML has no markup keys.
        let plain = parse(b"From: a@x.test\r\nSubject: Hi\r\n\r\nplain words here\r\n");
        let f = features(&plain);
        assert_eq!(f.markup_from, f.keys.len());
    }

    #[test]
    fn base64_and_quoted_printable_text_is_decoded_first() {
        // "Refinance your mortgage today" in base64.
        let n = names(
            "From: a@x.test\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nUmVmaW5hbmNlIHlvdXIgbW9ydGdhZ2UgdG9kYXk=\r\n",
        );
        assert!(has(&n, "w:Refinance") && has(&n, "w:mortgage"), "{n:?}");
        assert!(!n.iter().any(|x| x.contains("UmVm")));
        assert!(has(&n, "mime:cte=base64"));
        // A soft line break inside a word, and an encoded e-acute.
        let n = names(
            "From: a@x.test\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\nunbeliev=\r\nable caf=E9 offer\r\n",
        );
        assert!(has(&n, "w:unbelievable") && has(&n, "w:café"), "{n:?}");
    }

    #[test]
    fn words_are_unicode_aware() {
        let a = features(&parse(
            "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nÉTÉ FREE\r\n".as_bytes(),
        ));
        // Lowercase, and fullwidth letters folded to ASCII, give the same features.
        let b = features(&parse(
            "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nété ＦＲＥＥ\r\n"
                .as_bytes(),
        ));
        assert_eq!(a, b);
        let n = names(
            "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             免费发票 fr\u{200b}ee\r\n",
        );
        // Han is written without spaces: one token per character, pairs between.
        assert!(has(&n, "w:免") && has(&n, "w:票"), "{n:?}");
        assert!(has(&n, "w:免 <1> w:费"));
        // A zero-width space inside a word does not split it.
        assert!(
            n.iter().any(|x| x.starts_with("w:fr") && x.ends_with("ee")),
            "{n:?}"
        );
        assert!(!has(&n, "w:fr"));
    }

    #[test]
    fn numbers_money_and_long_words_become_shapes() {
        let n = names(
            "Subject: x\r\n\r\nCall 1-800-555-0199 to win $1,000,000 in 2002 \
             aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
        assert!(has(&n, "shape:1-800-555-0199"), "{n:?}");
        assert!(has(&n, "money:7"), "{n:?}");
        assert!(has(&n, "w:2002"));
        assert!(n.iter().any(|x| x.starts_with("skip:")));
    }

    #[test]
    fn the_sites_own_trace_and_delivery_headers_are_not_tokens() {
        let raw = "Return-Path: <x@spam.test>\r\n\
            Delivered-To: user@site.test\r\n\
            Received: from localhost (localhost [127.0.0.1]) by store.site.test; Thu, 22 Aug 2002 12:00:00 +0000\r\n\
            Received: from mx.site.test (mx.site.test [192.0.2.10]) by store.site.test with ESMTP; Thu, 22 Aug 2002 12:00:00 +0000\r\n\
            Received: from bot.spam.test (bot.spam.test [198.51.100.7]) by mx.site.test with SMTP; Thu, 22 Aug 2002 11:59:00 +0000\r\n\
            From: x@spam.test\r\nDate: Thu, 22 Aug 2002 11:58:00 +0000\r\nSubject: hi\r\n\r\nhello there\r\n";
        let n = names(raw);
        // The origin: the bottom external hop.
        assert!(has(&n, "rcvd:domain=spam.test"), "{n:?}");
        assert!(has(&n, "rcvd:ip:198.51.100"));
        assert!(has(&n, "rcvd:with=SMTP"));
        assert!(has(&n, "rcvd:date-skew=normal"));
        // Not the site's relays, nor its delivery headers.
        assert!(!n.iter().any(|x| x.contains("site.test")), "{n:?}");
        assert!(!n.iter().any(|x| x.contains("192.0.2")));
        assert!(!has(&n, "h:Delivered-To") && !has(&n, "h:Return-Path"));
    }

    #[test]
    fn header_fields_have_their_own_namespaces() {
        let n = names(
            "From: \"Free Offers\" <promo123456@mailer.deals.example.co.uk>\r\n\
             To: a@x.test, b@y.test\r\nSubject: FREE OFFER!!!\r\n\
             X-Mailer: Mass Mailer 3.1\r\nMessage-ID: <12345.abc@deals.example.co.uk>\r\n\r\nfree\r\n",
        );
        for expected in [
            "from-name:Free",
            "from:domain=example.co.uk",
            "from:host=mailer.deals.example.co.uk",
            "to:count=2",
            "s:FREE",
            "s-meta:shouted",
            "s-meta:exclamation",
            "mailer:Mass",
            "msgid:domain=example.co.uk",
            "msgid:from-domain",
            "w:free",
            "h:X-Mailer",
        ] {
            assert!(has(&n, expected), "{expected} missing from {n:?}");
        }
        // The Subject's "free" and the body's "free" are different features.
        let subject = hash::token(NS_SUBJECT, "free");
        let body = hash::token(NS_BODY, "free");
        assert_ne!(hash::feature_key(subject), hash::feature_key(body));
    }

    #[test]
    fn a_hostile_ten_megabyte_word_stays_bounded_and_fast() {
        let mut raw = b"From: a@x.test\r\nSubject: x\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
        raw.extend_from_slice(b"\r\n");
        let message = parse(&raw);
        let start = Instant::now();
        let f = features(&message);
        // One "blob" token stands for the word; the rest are header features.
        assert!(f.len() < 64, "{} features", f.len());
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn token_count_is_bounded_however_many_words_a_message_has() {
        let mut raw = String::from("From: a@x.test\r\nSubject: x\r\n\r\n");
        for mut i in 0..200_000u32 {
            // Distinct words of letters only ("baaa", "caaa"...).
            for _ in 0..4 {
                raw.push(char::from(b'a' + (i % 26) as u8));
                i /= 26;
            }
            raw.push(' ');
        }
        let f = features(&parse(raw.as_bytes()));
        let bound = MAX_BODY_TOKENS * (1 + OSB_WINDOW) + MAX_STRUCTURE_TOKENS;
        assert!(f.len() <= bound, "{} > {bound}", f.len());
        assert!(
            f.len() >= MAX_BODY_TOKENS,
            "the budget is used: {}",
            f.len()
        );
    }

    #[test]
    fn nested_messages_share_one_part_budget() {
        let inner = "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n";
        let mut raw =
            String::from("From: a@x.test\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
        for _ in 0..500 {
            raw.push_str("--b\r\n");
            raw.push_str(inner);
        }
        raw.push_str("--b--\r\n");
        let message = parse(raw.as_bytes());
        let mut x = Extractor::default();
        x.bodies(&message, 0);
        assert_eq!(x.stats.parts, MAX_PARTS);
    }

    #[test]
    fn registered_domains_keep_country_second_levels() {
        assert_eq!(registered_domain("a.b.example.com"), "example.com");
        assert_eq!(registered_domain("www.bbc.co.uk"), "bbc.co.uk");
        assert_eq!(registered_domain("example.com."), "example.com");
        assert_eq!(registered_domain("localhost"), "localhost");
    }
}
