//! Recognising the sending organisation's mail server software from the
//! message's `Received` trace fields (RFC 5321 §4.4, RFC 5322 §3.6.7).
//!
//! Every SMTP server that accepts a message prepends one `Received` field
//! naming itself after `by`, and many name their software and version in it.
//! The topmost field of a message as it reached us was therefore written by
//! the server that connected to us, about itself; the fields below it were
//! written by earlier hops, and anything below the first hop we cannot vouch
//! for may have been written by anyone.
//!
//! # Formats recognised
//!
//! Each is matched on the field's tokens (words and parenthesised comments,
//! whitespace and folding collapsed, case-insensitive), and only after the
//! `by <host>` clause, as the receiving server writes it:
//!
//! - Exchange 2007 and later ([`Product::Exchange`]):
//!   `with Microsoft SMTP Server [(<tls>)] id <version>`:
//!   `Received: from EX01.corp.example.com (10.0.0.5) by EX02.corp.example.com
//!   (10.0.0.6) with Microsoft SMTP Server (version=TLS1_2,
//!   cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.1.2507.6; Tue, 14 Nov
//!   2023 10:00:00 +0000`, the plain form `with Microsoft SMTP Server id
//!   14.3.389.1` (Exchange 2010), and Exchange 2007's `with Microsoft SMTP
//!   Server (TLS) id 8.1.436.0`; also the submission hop `with mapi id
//!   14.03.0319.002` written by a mailbox server. The version needs at least
//!   three parts.
//! - Exchange Online: the same format, written by hosts under `outlook.com`,
//!   `office365.com` (and the sovereign `outlook.cn`, `office365.us`), or
//!   carrying a `15.20` (or later 15.x) build, a line only the cloud runs:
//!   `by DS0PR12MB8765.namprd12.prod.outlook.com (2603:10b6:8:14e::6) with
//!   Microsoft SMTP Server (version=TLS1_2, cipher=...) id 15.20.7316.21`.
//!   Such evidence has [`Evidence::cloud`] set: it is Microsoft's service,
//!   never an on-premises server, and must never be enforced against.
//! - IIS SMTP / Exchange 2000-2003 ([`Product::IisSmtp`]):
//!   `Received: from mx1.eudoramail.com ([210.214.94.112]) by mail.orc3.com
//!   with Microsoft SMTPSVC(5.0.2195.5329); Thu, 5 Sep 2002 00:40:47 -0700`.
//! - Exim ([`Product::Exim`]): a comment `(Exim <version>...)` after `by`:
//!   `Received: from [192.0.2.1] (helo=x) by mail.example.org with esmtpsa
//!   (TLS1.3) tls TLS_AES_256_GCM_SHA384 (Exim 4.96) (envelope-from
//!   <a@example.org>) id 1rAbCd-000123-4x; ...`, older `(Exim 4.90_1)`,
//!   `(Exim 3.35 #1 (Debian))`, `(Exim 3.31-VA-mm2 #1 (Debian))`: the version
//!   is the dotted numeric prefix (`4.90`, `3.31`).
//! - Sendmail ([`Product::Sendmail`]): a comment `(<version>/<config>)`
//!   immediately after the `by` host and followed by `with` or `id`:
//!   `Received: from host.example.com (host.example.com [192.0.2.1]) by
//!   mail.example.org (8.15.2/8.15.2) with ESMTP id x1ABCdef012345; ...`,
//!   `(8.12.8/8.12.8/Submit)`, `(8.11.6/8.11.6/EGWN)`, Sun's `(8.9.3+Sun/8.9.1)`.
//!   The first number is the sendmail version and must be `8.<n>.<n>` (the
//!   only Sendmail line in use since 1993); the second (the configuration's
//!   version) is ignored. Look-alikes are refused: `(Switch-2.2.4/Switch-2.2.4)`,
//!   `(SGI-8.9.3/8.9.3)`, `(8.12.3 da nor stuldap/8.12.3)`, `(5.5.5/5.5.5)`.
//! - Postfix ([`Product::Postfix`]) writes no version: `by mail.example.org
//!   (Postfix) with ESMTPS id 4Yx...` or `(Postfix, from userid 1000)`. Since
//!   [`Software`] needs a version, these are reported apart, in
//!   [`Identification::unversioned`], never as [`Evidence`].
//!
//! # Which fields count (the security boundary)
//!
//! Every `Received` field is written by whoever handled the message before
//! us, and any of them may be forged. The rules, as [`identify`] applies them:
//!
//! 1. The topmost field is [`Hop::Connecting`] only if its `by` host equals
//!    the connecting server's name as the gateway knows it (`connecting_host`,
//!    compared case-insensitively, trailing dot ignored). Then it is that
//!    server's own statement about itself, and enforcement against it only
//!    hurts the server that wrote it. Otherwise (no known name, or another
//!    name) the topmost field is ambiguous and counts as [`Hop::Outside`],
//!    and so does every field below it.
//! 2. Walking down from the topmost field, each deeper field is
//!    [`Hop::Inside`] while its `by` host has the same organisational domain
//!    (public suffix list, [`organisation`]) as `connecting_host`; the first
//!    field that leaves the organisation (or names no host, or an IP literal)
//!    ends the walk, and it and everything below are [`Hop::Outside`].
//! 3. Exchange Online hops are reported with `cloud: true` wherever they are;
//!    they are never an on-premises server.
//!
//! A sender can write anything below its own hop. Whatever it writes is
//! either outside (the walk has already left, or leaves at that field), or
//! claims a `by` host in the connecting server's own organisation, that is,
//! only ever implicates the organisation that is actually connecting (the
//! spammer's own). A spammer at `mx.spam.test` writing `by mail.bank.test
//! ... id 8.1.436.0` below its own field produces outside evidence, never an
//! inside one for `bank.test`.
//!
//! # Bounds
//!
//! All input is hostile. At most [`MAX_HEADER_BYTES`] of the message are
//! read, at most [`MAX_FIELDS`] `Received` fields (the topmost ones), each at
//! most [`MAX_FIELD_BYTES`] once unfolded (longer ones are cut); bytes that
//! are not UTF-8 are replaced. Work is linear in the bytes read; nothing here
//! panics on any input.

use crate::software::{Product, Software, Version};
use std::net::IpAddr;

/// The most `Received` fields read, from the top.
pub const MAX_FIELDS: usize = 100;
/// The most bytes of one unfolded `Received` field kept (the rest is cut).
pub const MAX_FIELD_BYTES: usize = 8 * 1024;
/// The most bytes of the message scanned for header fields.
pub const MAX_HEADER_BYTES: usize = 1024 * 1024;
/// The most characters of a field kept in [`Evidence::field`].
pub const TRACE_CHARS: usize = 500;
/// The longest host name accepted after `from` or `by`.
const MAX_HOST_LEN: usize = 255;

/// Organisational domains of Exchange Online's servers.
const CLOUD_ORGANISATIONS: [&str; 4] =
    ["outlook.com", "office365.com", "outlook.cn", "office365.us"];

/// Which hop wrote the field, for whether it may count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hop {
    /// The topmost field, written by the server that connected to us.
    Connecting,
    /// A deeper field by a host of the connecting server's organisation.
    Inside,
    /// Any other field: another organisation, or ambiguous. Never enforced.
    Outside,
}

/// One Received field that names its server's software.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub software: Software,
    /// 0 = the topmost Received field of the message as it reached us.
    pub index: usize,
    pub hop: Hop,
    /// As written after `by`, lower-cased, trailing dot removed.
    pub by_host: Option<String>,
    /// As written after `from`, lower-cased, trailing dot removed.
    pub from_host: Option<String>,
    /// An Exchange Online hop: Microsoft's service, never an on-premises
    /// server; never to be enforced against.
    pub cloud: bool,
    /// The unfolded field (without `Received:`), whitespace collapsed, cut to
    /// [`TRACE_CHARS`] characters, for the trace.
    pub field: String,
}

/// A Received field that names its server's product but no version
/// (Postfix's `(Postfix)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unversioned {
    pub product: Product,
    pub index: usize,
    pub hop: Hop,
    pub by_host: Option<String>,
}

/// What a message's trace fields say about the software of the servers that
/// handled it, sorted by whether it may count (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identification {
    /// From the topmost field, when its `by` host is the server that
    /// connected.
    pub connecting: Option<Evidence>,
    /// Deeper fields by hosts of the same organisation as the connecting
    /// server, topmost first.
    pub inside: Vec<Evidence>,
    /// How many fields with software evidence count for nothing (other
    /// organisations, ambiguous); equals `outside_evidence.len()`.
    pub outside: usize,
    /// Those fields, for reports only.
    pub outside_evidence: Vec<Evidence>,
    /// Fields naming a product without a version (Postfix), any hop.
    pub unversioned: Vec<Unversioned>,
    /// How many Received fields were read (at most [`MAX_FIELDS`]).
    pub fields: usize,
}

/// Reads the `Received` fields of `message` (the message as it reached us:
/// headers first, CRLF or LF, folded fields) and sorts the software evidence
/// they carry by hop. `connecting_host` is the name of the server that
/// connected (its HELO name when confirmed, else `None`: then nothing is
/// connecting or inside).
pub fn identify(message: &[u8], connecting_host: Option<&str>) -> Identification {
    let connecting = connecting_host.and_then(normalise_host);
    let connecting_org = connecting.as_deref().and_then(organisation);
    let mut result = Identification::default();
    // Whether the walk down from the top is still inside the connecting
    // server's organisation.
    let mut inside = false;
    for (index, raw) in received_fields(message).iter().enumerate() {
        result.fields = index + 1;
        let text = String::from_utf8_lossy(raw);
        let tokens = tokenize(&text, true);
        let parsed = parse_field(&tokens);
        let hop = if index == 0 {
            let is_connecting = match (&connecting, &parsed.by_host) {
                (Some(c), Some(b)) => c == b,
                _ => false,
            };
            inside = is_connecting;
            if is_connecting {
                Hop::Connecting
            } else {
                Hop::Outside
            }
        } else {
            if inside {
                let org = parsed.by_host.as_deref().and_then(organisation);
                inside = org.is_some() && org == connecting_org;
            }
            if inside {
                Hop::Inside
            } else {
                Hop::Outside
            }
        };
        match parsed.found {
            Some(Found::Versioned(software)) => {
                let cloud = is_cloud(&software, parsed.by_host.as_deref());
                let evidence = Evidence {
                    software,
                    index,
                    hop,
                    by_host: parsed.by_host,
                    from_host: parsed.from_host,
                    cloud,
                    field: trace_text(&text),
                };
                match hop {
                    Hop::Connecting => result.connecting = Some(evidence),
                    Hop::Inside => result.inside.push(evidence),
                    Hop::Outside => {
                        result.outside += 1;
                        result.outside_evidence.push(evidence);
                    }
                }
            }
            Some(Found::Unversioned(product)) => result.unversioned.push(Unversioned {
                product,
                index,
                hop,
                by_host: parsed.by_host,
            }),
            None => {}
        }
    }
    result
}

/// The `by` host of the topmost `Received` field (lower-cased, trailing dot
/// removed), for tools that replay stored mail with no SMTP session and so
/// must assume it was the connecting server.
pub fn topmost_by_host(message: &[u8]) -> Option<String> {
    let fields = received_fields_limited(message, 1);
    let raw = fields.first()?;
    let text = String::from_utf8_lossy(raw);
    parse_field(&tokenize(&text, true)).by_host
}

/// Finds the software named in any header text or fragment, leniently (no
/// `by` clause needed): `Microsoft SMTP Server id 15.1.2507.6`,
/// `Microsoft SMTPSVC(6.0.3790.4675)`, `Exim 4.96`, `(Exim 4.96)`,
/// `(8.15.2/8.15.2)`, `8.15.2/8.15.2`, `with mapi id 14.03.0319.002`. The
/// first match in the text wins. Products without a version (Postfix) give
/// `None`. At most [`MAX_FIELD_BYTES`] of `text` are read.
pub fn recognise_text(text: &str) -> Option<Software> {
    let text = cut(text, MAX_FIELD_BYTES);
    let tokens = tokenize(text, false);
    (0..tokens.len()).find_map(|i| match_lenient(&tokens, i))
}

/// The organisational domain of `host` (the registrable domain under the
/// public suffix list, as DMARC uses), lower-cased; `None` for IP literals,
/// single labels, public suffixes themselves and names that are not host
/// names.
pub fn organisation(host: &str) -> Option<String> {
    let host = normalise_host(host)?;
    if host.starts_with('[') || host.parse::<IpAddr>().is_ok() || !host.contains('.') {
        return None;
    }
    psl::domain_str(&host).map(str::to_owned)
}

// ---------------------------------------------------------------------------
// Header fields

/// The unfolded values (after `Received:`) of the topmost `Received` fields.
fn received_fields(message: &[u8]) -> Vec<Vec<u8>> {
    received_fields_limited(message, MAX_FIELDS)
}

fn received_fields_limited(message: &[u8], limit: usize) -> Vec<Vec<u8>> {
    let message = &message[..message.len().min(MAX_HEADER_BYTES)];
    let mut fields: Vec<Vec<u8>> = Vec::new();
    // The Received field being unfolded, if the current field is one.
    let mut current: Option<Vec<u8>> = None;
    for (n, line) in message.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // the end of the header section
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(field) = current.as_mut() {
                push_bounded(field, line);
            }
            continue;
        }
        if let Some(field) = current.take() {
            fields.push(field);
            if fields.len() >= limit {
                return fields;
            }
        }
        if n == 0 && line.starts_with(b"From ") {
            continue; // an mbox separator line
        }
        if let Some(value) = received_value(line) {
            let mut field = Vec::with_capacity(value.len().min(MAX_FIELD_BYTES));
            push_bounded(&mut field, value);
            current = Some(field);
        }
    }
    if let Some(field) = current {
        if fields.len() < limit {
            fields.push(field);
        }
    }
    fields
}

/// The value of a `Received:` field line (RFC 5322's obsolete syntax allows
/// white space before the colon).
fn received_value(line: &[u8]) -> Option<&[u8]> {
    const NAME: &[u8] = b"received";
    let head = line.get(..NAME.len())?;
    if !head.eq_ignore_ascii_case(NAME) {
        return None;
    }
    let rest = &line[NAME.len()..];
    let skip = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    rest[skip..].strip_prefix(b":")
}

fn push_bounded(field: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_FIELD_BYTES.saturating_sub(field.len());
    if room > 0 {
        // Unfolding keeps the continuation line's leading white space;
        // separate it from the previous line in case a server folded
        // without any.
        if !field.is_empty() {
            field.push(b' ');
        }
        field.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn trace_text(text: &str) -> String {
    let mut out = String::new();
    for (n, word) in text.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() > TRACE_CHARS {
            break;
        }
    }
    match out.char_indices().nth(TRACE_CHARS) {
        Some((end, _)) => {
            out.truncate(end);
            out.push('…');
            out
        }
        None => out,
    }
}

fn normalise_host(host: &str) -> Option<String> {
    let host = host.trim().trim_end_matches('.');
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

fn is_cloud(software: &Software, by_host: Option<&str>) -> bool {
    if software.product != Product::Exchange {
        return false;
    }
    let parts = software.version.parts();
    let cloud_build = parts.first() == Some(&15) && parts.get(1).is_some_and(|&m| m >= 20);
    let cloud_host = by_host
        .and_then(organisation)
        .is_some_and(|org| CLOUD_ORGANISATIONS.contains(&org.as_str()));
    cloud_build || cloud_host
}

// ---------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// A run of characters other than white space and parentheses.
    Word(&'a str),
    /// The inside of a (possibly nested) parenthesised comment.
    Comment(&'a str),
}

impl Token<'_> {
    fn is_word(&self, keyword: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

/// Splits a field value into words and comments. With `stop_at_date`, stops
/// at the first `;` outside comments (the date-time follows it); otherwise a
/// `;` is white space.
fn tokenize(text: &str, stop_at_date: bool) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b';' if stop_at_date => break,
            b' ' | b'\t' | b'\r' | b'\n' | b';' | b')' => i += 1,
            b'(' => {
                let start = i + 1;
                let mut depth = 1usize;
                let mut j = start;
                while j < bytes.len() {
                    match bytes[j] {
                        b'\\' => j += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                let end = j.min(bytes.len());
                // Only ASCII bytes end a comment, so these are boundaries.
                tokens.push(Token::Comment(text.get(start..end).unwrap_or("").trim()));
                i = end + 1;
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b';')
                {
                    i += 1;
                }
                tokens.push(Token::Word(text.get(start..i).unwrap_or("")));
            }
        }
    }
    tokens
}

// ---------------------------------------------------------------------------
// Recognition

enum Found {
    Versioned(Software),
    Unversioned(Product),
}

struct Parsed {
    by_host: Option<String>,
    from_host: Option<String>,
    found: Option<Found>,
}

fn host_word(token: Option<&Token<'_>>) -> Option<String> {
    match token {
        Some(Token::Word(w)) => normalise_host(w),
        _ => None,
    }
}

/// Reads one field's `from` and `by` hosts and the software its `by` server
/// names, strictly: only in the forms servers write, after `by <host>`.
fn parse_field(tokens: &[Token<'_>]) -> Parsed {
    let from_host = match tokens.first() {
        Some(t) if t.is_word("from") => host_word(tokens.get(1)),
        _ => None,
    };
    let by = tokens.iter().position(|t| t.is_word("by"));
    let by_host = by.and_then(|b| host_word(tokens.get(b + 1)));
    let found = match (by, &by_host) {
        (Some(b), Some(_)) => match_after_by(tokens, b + 1),
        _ => None,
    };
    Parsed {
        by_host,
        from_host,
        found,
    }
}

/// `host` is the index of the `by` host's token.
fn match_after_by(tokens: &[Token<'_>], host: usize) -> Option<Found> {
    // Sendmail and Postfix: a comment right after the host.
    if let Some(Token::Comment(c)) = tokens.get(host + 1) {
        let next_ok = match tokens.get(host + 2) {
            None => true,
            Some(t) => t.is_word("with") || t.is_word("id"),
        };
        if next_ok {
            if let Some(version) = sendmail_version(c) {
                return Some(Found::Versioned(Software {
                    product: Product::Sendmail,
                    version,
                }));
            }
        }
        if is_postfix(c) {
            return Some(Found::Unversioned(Product::Postfix));
        }
    }
    (host + 1..tokens.len()).find_map(|i| {
        let t = &tokens[i..];
        if let Some(software) = match_microsoft(t, true) {
            return Some(Found::Versioned(software));
        }
        match t.first() {
            Some(Token::Comment(c)) => exim_comment(c).map(Found::Versioned),
            _ => None,
        }
    })
}

fn is_postfix(comment: &str) -> bool {
    comment.eq_ignore_ascii_case("postfix")
        || comment
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("postfix,"))
}

/// Exchange's and IIS's forms starting at `t[0]`; with `strict`, `t[0]` must
/// be `with`.
fn match_microsoft(t: &[Token<'_>], strict: bool) -> Option<Software> {
    let t = match t.first() {
        Some(first) if first.is_word("with") => &t[1..],
        _ if strict => return None,
        _ => t,
    };
    let word = |i: usize, k: &str| t.get(i).is_some_and(|x| x.is_word(k));
    if word(0, "mapi") && word(1, "id") {
        return exchange(t.get(2));
    }
    if !word(0, "microsoft") {
        return None;
    }
    if word(1, "smtpsvc") {
        let version = match t.get(2) {
            Some(Token::Comment(c)) => dotted(c, 3)?,
            _ => return None,
        };
        return Some(Software {
            product: Product::IisSmtp,
            version,
        });
    }
    if word(1, "smtp") && word(2, "server") {
        let id = if matches!(t.get(3), Some(Token::Comment(_))) {
            4
        } else {
            3
        };
        if word(id, "id") {
            return exchange(t.get(id + 1));
        }
    }
    None
}

fn exchange(token: Option<&Token<'_>>) -> Option<Software> {
    match token {
        Some(Token::Word(w)) => Some(Software {
            product: Product::Exchange,
            version: dotted(w.trim_end_matches([';', ',']), 3)?,
        }),
        _ => None,
    }
}

/// A dotted numeric version of at least `min_parts` parts.
fn dotted(text: &str, min_parts: usize) -> Option<Version> {
    let version = Version::parse(text.trim())?;
    (version.parts().len() >= min_parts).then_some(version)
}

/// `Exim 4.96`, `Exim 4.90_1`, `Exim 3.35 #1 (Debian)`, `Exim 3.31-VA-mm2`:
/// the dotted numeric prefix, at least two parts.
fn exim_comment(comment: &str) -> Option<Software> {
    let head = comment.get(..5)?;
    if !head.eq_ignore_ascii_case("exim ") {
        return None;
    }
    exim_version(comment.get(5..)?.trim_start())
}

fn exim_version(text: &str) -> Option<Software> {
    let numeric = text
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let rest = &text[numeric..];
    if !(rest.is_empty() || rest.starts_with([' ', '_', '-', '+', ','])) {
        return None;
    }
    Some(Software {
        product: Product::Exim,
        version: dotted(text[..numeric].trim_end_matches('.'), 2)?,
    })
}

/// `8.15.2/8.15.2`, `8.12.8/8.12.8/Submit`, `8.9.3+Sun/8.9.1`,
/// `8.12.1+UW01.12/8.12.1+UW02.06`: the sendmail version `8.<n>.<n>` (with
/// an optional `+<vendor patch>`) before the first `/`, a non-empty
/// configuration version after it. Versions that are not exactly a release
/// are refused: betas (`8.12.0.Beta19`), lettered builds (`8.9.1a`,
/// `8.6.12h2`, `8.8.8pmg`), HP-UX's `8.9.3 (PHNE_18546)`, four-part
/// `8.6.8.1`.
fn sendmail_version(comment: &str) -> Option<Version> {
    let (version, config) = comment.split_once('/')?;
    if config.trim().is_empty() {
        return None;
    }
    let version = match version.split_once('+') {
        Some((v, vendor)) => {
            if vendor.is_empty()
                || !vendor
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.')
            {
                return None;
            }
            v
        }
        None => version,
    };
    let parsed = Version::parse(version)?;
    (parsed.parts().len() == 3 && parsed.parts()[0] == 8).then_some(parsed)
}

/// The lenient forms [`recognise_text`] accepts, starting at `tokens[i]`.
fn match_lenient(tokens: &[Token<'_>], i: usize) -> Option<Software> {
    let t = &tokens[i..];
    if let Some(software) = match_microsoft(t, false) {
        return Some(software);
    }
    match t.first()? {
        Token::Comment(c) => exim_comment(c).or_else(|| {
            sendmail_version(c).map(|version| Software {
                product: Product::Sendmail,
                version,
            })
        }),
        Token::Word(w) => {
            if w.eq_ignore_ascii_case("exim") {
                if let Some(Token::Word(v)) = t.get(1) {
                    return exim_version(v);
                }
                return None;
            }
            // `SMTPSVC(…)` written without `Microsoft`.
            if w.eq_ignore_ascii_case("smtpsvc") {
                if let Some(Token::Comment(c)) = t.get(1) {
                    return Some(Software {
                        product: Product::IisSmtp,
                        version: dotted(c, 3)?,
                    });
                }
                return None;
            }
            sendmail_version(w).map(|version| Software {
                product: Product::Sendmail,
                version,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("test version")
    }

    fn sw(product: Product, version: &str) -> Software {
        Software {
            product,
            version: v(version),
        }
    }

    /// The software of a single field, read as the connecting server's.
    fn one(field: &str) -> Option<Software> {
        let message = format!("{field}\r\nSubject: x\r\n\r\nbody\r\n");
        let host = topmost_by_host(message.as_bytes());
        identify(message.as_bytes(), host.as_deref())
            .connecting
            .map(|e| e.software)
    }

    #[test]
    fn exchange_formats() {
        let cases = [
            (
                "Received: from EX01.corp.example.com (10.0.0.5) by EX02.corp.example.com (10.0.0.6) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.1.2507.6; Tue, 14 Nov 2023 10:00:00 +0000",
                "15.1.2507.6",
            ),
            (
                "Received: from dggpeml500017.china.huawei.com (7.185.36.243) by\r\n dggemv711-chm.china.huawei.com (10.1.198.66) with Microsoft SMTP Server\r\n (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) id\r\n 15.1.2176.2; Thu, 3 Jun 2021 22:09:37 +0800",
                "15.1.2176.2",
            ),
            (
                "Received: from rico-code.amd.com (10.34.1.3) by SATLEXCHOV01.amd.com\r\n (10.181.40.71) with Microsoft SMTP Server id 14.3.389.1; Wed, 28 Aug 2019\r\n 06:00:29 -0500",
                "14.3.389.1",
            ),
            (
                "Received: from mail.example.com (192.0.2.1) by EXCH07.example.com (192.0.2.2) with Microsoft SMTP Server (TLS) id 8.1.436.0; Mon, 1 Jun 2009 10:00:00 +0200",
                "8.1.436.0",
            ),
            (
                "Received: from CAS22.d.ethz.ch (172.31.51.112) by gws00.d.ethz.ch\n (129.132.178.237) with Microsoft SMTP Server (TLS) id 8.2.254.0; Tue, 19 Oct\n 2010 11:50:44 +0200",
                "8.2.254.0",
            ),
            (
                "RECEIVED: FROM [127.0.0.1] (10.174.177.71) BY KWEPEMG500008.CHINA.HUAWEI.COM\n\t(7.202.181.45)   WITH   MICROSOFT SMTP SERVER (VERSION=TLS1_2,\n\tCIPHER=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) ID 15.2.1544.11; Thu, 13 Feb\n 2025 21:20:21 +0800",
                "15.2.1544.11",
            ),
            (
                "Received: from EXMBX01.corp.example.com ([fe80::1]) by EXMBX01.corp.example.com ([fe80::1%12]) with mapi id 14.03.0319.002; Wed, 9 Jun 2021 09:37:39 +0000",
                "14.3.319.2",
            ),
        ];
        for (field, version) in cases {
            assert_eq!(one(field), Some(sw(Product::Exchange, version)), "{field}");
        }
        // Not an Exchange version: too short, not numeric, or no `id`.
        for field in [
            "Received: from a (1.2.3.4) by b.example.com with Microsoft SMTP Server id 15; x",
            "Received: from a (1.2.3.4) by b.example.com with Microsoft SMTP Server id AB12CD; x",
            "Received: from a (1.2.3.4) by b.example.com with Microsoft SMTP Server; x",
            "Received: from a by b.example.com with ESMTP id 15.1.2507.6; x",
        ] {
            assert_eq!(one(field), None, "{field}");
        }
    }

    #[test]
    fn exchange_online_is_cloud() {
        let message = b"Received: from BN9PR12MB5273.namprd12.prod.outlook.com (2603:10b6:408:11e::22)\r\n by PH0PR12MB5678.namprd12.prod.outlook.com (2603:10b6:510:14e::22)\r\n with Microsoft SMTP Server (version=TLS1_2,\r\n cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.8632.29; Mon, 14 Apr\r\n 2025 12:06:04 +0000\r\nReceived: from MN1PEPF0000ECDB.namprd02.prod.outlook.com\r\n (2a01:111:f403:f902::2) by BL6PEPF0001640F.outlook.office365.com\r\n (2603:1036:903:4::a) with Microsoft SMTP Server (version=TLS1_2,\r\n cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7292.34 via Frontend\r\n Transport; Sat, 24 Feb 2024 06:39:55 +0000\r\nReceived: from ca-mkp.mkp.ca.oracle.com (138.3.201.9) by SN4PR0401CA0014.namprd04.prod.outlook.com (2603:10b6:803:21::24) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.4500.14 via Frontend Transport; Tue, 14 Sep 2021 03:44:12 +0000\r\n\r\n";
        let id = identify(message, Some("PH0PR12MB5678.namprd12.prod.outlook.com."));
        let top = id.connecting.expect("connecting");
        assert!(top.cloud);
        assert_eq!(top.software, sw(Product::Exchange, "15.20.8632.29"));
        assert_eq!(
            top.by_host.as_deref(),
            Some("ph0pr12mb5678.namprd12.prod.outlook.com")
        );
        // office365.com is another organisation than outlook.com: the walk
        // stops there; every hop is still marked cloud.
        assert!(id.inside.is_empty());
        assert_eq!(id.outside, 2);
        assert!(id.outside_evidence.iter().all(|e| e.cloud));
        // A 15.1 build written by an outlook.com host is cloud too.
        let old = b"Received: from a.eurprd04.prod.outlook.com (10.0.0.1) by b.eurprd04.prod.outlook.com (10.0.0.2) with Microsoft SMTP Server (TLS) id 15.1.1101.15 via Frontend Transport; x\n\n";
        let id = identify(old, Some("b.eurprd04.prod.outlook.com"));
        assert!(id.connecting.expect("connecting").cloud);
        // An on-premises build is not.
        let onprem = b"Received: from a.corp.example (10.0.0.1) by b.corp.example (10.0.0.2) with Microsoft SMTP Server id 15.2.1544.11; x\n\n";
        let id = identify(onprem, Some("b.corp.example"));
        assert!(!id.connecting.expect("connecting").cloud);
    }

    #[test]
    fn iis_smtp_formats() {
        let cases = [
            (
                "Received: from mail.example.com ([192.0.2.1]) by server.example.com with Microsoft SMTPSVC(6.0.3790.4675); Mon, 1 Jan 2007 10:00:00 +0000",
                "6.0.3790.4675",
            ),
            (
                "Received: from mx1.eudoramail.com ([210.214.94.112]) by mail.orc3.com with\n    Microsoft SMTPSVC(5.0.2195.5329); Thu, 5 Sep 2002 00:40:47 -0700",
                "5.0.2195.5329",
            ),
            (
                "Received: from mx.terra.es ([213.98.99.221] RDNS failed) by\r\n    host1.andst.com with Microsoft SMTPSVC(6.0.3663.0); Tue, 24 Sep 2002\r\n    22:06:18 +0900",
                "6.0.3663.0",
            ),
            (
                "Received: from smcjednt.saudi-maritime.com ([213.238.2.116]) by\n    tsvm13.saudionline.com.sa  with Microsoft SMTPSVC(5.5.1875.185.18);\n    Sun, 1 Sep 2002 23:32:42 +0300",
                "5.5.1875.185.18",
            ),
            (
                "received:from qvp0078 ([169.254.6.7]) by EMAIL.QVES.COM WITH MICROSOFT SMTPSVC(5.0.2195.3779);\n\t Tue, 27 Aug 2002 05:13:34 -0600",
                "5.0.2195.3779",
            ),
            (
                "Received: from dd1.caveonetworks.com ([12.108.191.236]) by caexch01.caveonetworks.com over TLS secured channel with Microsoft SMTPSVC(6.0.3790.4675);\n\t Tue, 22 Feb 2011 12:58:17 -0800",
                "6.0.3790.4675",
            ),
        ];
        for (field, version) in cases {
            assert_eq!(one(field), Some(sw(Product::IisSmtp, version)), "{field}");
        }
    }

    #[test]
    fn exim_formats() {
        let cases = [
            (
                "Received: from [192.0.2.1] (helo=x) by mail.example.org with esmtpsa (TLS1.3) tls TLS_AES_256_GCM_SHA384 (Exim 4.96) (envelope-from <a@example.org>) id 1rAbCd-000123-4x; Tue, 14 Nov 2023 10:00:00 +0000",
                "4.96",
            ),
            (
                "Received: from ch-vpn.virtuozzo.com ([130.117.225.6] helo=iris.sw.ru)\n by relay.virtuozzo.com with esmtp (Exim 4.96)\n (envelope-from <den@openvz.org>) id 1qLPc1-00HTc0-2U;\n Mon, 17 Jul 2023 16:55:39 +0200",
                "4.96",
            ),
            (
                "Received: from m.example.net ([130.117.225.111])\n by eggs.gnu.org with esmtps (TLS1.2:ECDHE_RSA_AES_256_GCM_SHA384:256)\n (Exim 4.90_1) (envelope-from <den@openvz.org>)\n id 1qLPdd-0003kY-WC; Mon, 17 Jul 2023 10:55:53 -0400",
                "4.90",
            ),
            (
                "Received: from mfe by pty.whiteo.stw.pengutronix.de with local (Exim 4.98.2)\n\t(envelope-from <mfe@pengutronix.de>)\n\tid 1w18WL-0000000HJee-2IC1;\n\tFri, 13 Mar 2026 20:50:05 +0100",
                "4.98.2",
            ),
            (
                "Received: from localhost ([127.0.0.1] helo=example.com) by usw-sf-list1.sourceforge.net with esmtp (Exim 3.31-VA-mm2 #1 (Debian)) id 17hsof-00042r-00; Thu, 22 Aug 2002 07:20:05 -0700",
                "3.31",
            ),
            (
                "Received: from host ([10.0.0.1])\r\n\tby mail.example.co.uk with esmtp (Exim 3.35 #1 (Debian))\r\n\tid 17kAbc-0001xY-00; Wed, 28 Aug 2002 12:00:00 +0100",
                "3.35",
            ),
            (
                "Received: from host BY MX.EXAMPLE.ORG WITH ESMTP (EXIM 4.22) ID 1A2b3C-0004dE-00; x",
                "4.22",
            ),
        ];
        for (field, version) in cases {
            assert_eq!(one(field), Some(sw(Product::Exim, version)), "{field}");
        }
        for field in [
            "Received: from a by b.example with esmtp (Eximious 4.96) id x; y",
            "Received: from a by b.example with esmtp (Exim four) id x; y",
            // Before `by`, a comment is the sender's, not the server's.
            "Received: from a (Exim 4.96) by b.example with esmtp id x; y",
        ] {
            assert_eq!(one(field), None, "{field}");
        }
    }

    #[test]
    fn sendmail_formats() {
        let cases = [
            (
                "Received: from host.example.com (host.example.com [192.0.2.1]) by mail.example.org (8.15.2/8.15.2) with ESMTP id x1ABCdef012345; Tue, 14 Nov 2023 10:00:00 +0000",
                "8.15.2",
            ),
            (
                "Received: (from user@localhost)\n\tby host.example.org (8.12.8/8.12.8/Submit) id h1ABcd012345;\n\tMon, 3 Mar 2003 10:00:00 -0500",
                "8.12.8",
            ),
            (
                "Received: from exchdb01.mips.com (exchhub01.mips.com [192.168.36.84])\r\n        by dns1.mips.com (8.13.8/8.13.8) with ESMTP id pAM3TKmS016666;\r\n        Mon, 21 Nov 2011 19:29:20 -0800",
                "8.13.8",
            ),
            (
                "Received: from lelv0265.itg.ti.com ([10.180.67.224])\n        by fllv0015.ext.ti.com (8.15.2/8.15.2) with ESMTP id 058MlPaE050473;\n        Mon, 8 Jun 2020 17:47:25 -0500",
                "8.15.2",
            ),
            (
                "Received: from example.com (h.example.com [10.0.0.1])\n\tby dogma.slashnull.org (8.11.6/8.11.6) with ESMTP id g7MHR0Z08457\n\tfor <jm@jmason.org>; Thu, 22 Aug 2002 18:27:00 +0100",
                "8.11.6",
            ),
            (
                "Received: from a.example.de (a.example.de [10.1.1.1]) by mail.example.de (8.9.3/8.9.3/SuSE Linux 8.9.3-0.1) with ESMTP id LAA01234; x",
                "8.9.3",
            ),
            (
                "Received: from x (x [10.0.0.2]) by mailhost.example.edu (8.9.3+Sun/8.9.1) with ESMTP id AAA1; x",
                "8.9.3",
            ),
            (
                "Received: (from daemon@localhost) by docserver.cac.washington.edu (8.12.1+UW01.12/8.12.1+UW02.06) id g773nxYZ005355 for fork <fork@xent.com>; Tue, 6 Aug 2002 20:49:59 -0700",
                "8.12.1",
            ),
            ("received: FROM A BY B.EXAMPLE.NET (8.11.6/8.11.6/EGWN) WITH ESMTP ID G7M; x", "8.11.6"),
        ];
        for (field, version) in cases {
            assert_eq!(one(field), Some(sw(Product::Sendmail, version)), "{field}");
        }
        for field in [
            "Received: from a (a [10.0.0.1]) by b.example.com (Switch-2.2.4/Switch-2.2.4) with ESMTP id g7SJuAm18267; x",
            "Received: from a (a [10.0.0.1]) by b.example.com (SGI-8.9.3/8.9.3) with ESMTP id x; y",
            "Received: from a (a [10.0.0.1]) by b.example.com (8.12.3 da nor stuldap/8.12.3) with ESMTP id x; y",
            "Received: from a (a [10.0.0.1]) by smtp02do.de.uu.net (5.5.5/5.5.5) with ESMTP id BAA25012; y",
            "Received: from a (a [10.0.0.1]) by b.example.com (8.15.2/) with ESMTP id x; y",
            "Received: from a (a [10.0.0.1]) by sm10.texas.rr.com (8.12.0.Beta16/8.12.0.Beta16) with ESMTP id g6PE6jJv027115; y",
            "Received: from a ([218.29.21.108]) by public.ayptt.ha.cn (8.9.1a/8.9.1) with SMTP id RAA03790; y",
            "Received: from a ([137.71.42.101]) by nwd2mhb1.analog.com with ESMTP (8.9.3 (PHNE_18979)/8.7.1) id LAA14172; y",
            // Not right after the host, or not followed by `with`/`id`.
            "Received: from a (8.15.2/8.15.2) by b.example.com with ESMTP id x; y",
            "Received: from a by b.example.com with ESMTP (8.15.2/8.15.2) id x; y",
            "Received: from a by b.example.com (8.15.2/8.15.2) for <x@y>; y",
        ] {
            assert_eq!(one(field), None, "{field}");
        }
    }

    #[test]
    fn postfix_is_unversioned() {
        let message = b"Received: from kwepemg500008.china.huawei.com (unknown [7.202.181.45])\n\tby mail.maildlp.com (Postfix) with ESMTPS id AEB6B1400D2;\n\tThu, 13 Feb 2025 21:20:22 +0800 (CST)\nReceived: by x.maildlp.com (Postfix, from userid 1000)\n\tid 1234; x\n\n";
        let id = identify(message, Some("mail.maildlp.com"));
        assert!(id.connecting.is_none());
        assert_eq!(id.outside, 0);
        assert_eq!(id.unversioned.len(), 2);
        assert_eq!(id.unversioned[0].product, Product::Postfix);
        assert_eq!(id.unversioned[0].hop, Hop::Connecting);
        assert_eq!(id.unversioned[1].hop, Hop::Inside);
        assert_eq!(
            recognise_text("by mail.example.org (Postfix) with ESMTPS id x"),
            None
        );
    }

    #[test]
    fn forged_deep_field_is_outside() {
        let message = b"Received: from [203.0.113.9] (helo=bank.test) by mx.spam.test with esmtp (Exim 4.96) id 1abc-000001-00; Tue, 14 Nov 2023 10:00:00 +0000\r\nReceived: from ex01.bank.test (10.0.0.5) by mail.bank.test (10.0.0.6)\r\n with Microsoft SMTP Server (TLS) id 8.1.436.0; Tue, 14 Nov 2023 09:59:00 +0000\r\nFrom: security@bank.test\r\n\r\nbody";
        let id = identify(message, Some("mx.spam.test"));
        let top = id.connecting.expect("the spammer's own hop");
        assert_eq!(top.software, sw(Product::Exim, "4.96"));
        assert!(id.inside.is_empty());
        assert_eq!(id.outside, 1);
        let forged = &id.outside_evidence[0];
        assert_eq!(forged.hop, Hop::Outside);
        assert_eq!(forged.by_host.as_deref(), Some("mail.bank.test"));
        assert_eq!(forged.software, sw(Product::Exchange, "8.1.436.0"));
        // A deeper field back in the spammer's organisation after leaving
        // it stays outside.
        let message = b"Received: from a by mx.spam.test (8.15.2/8.15.2) with ESMTP id 1; x\nReceived: from b by mail.bank.test (8.11.6/8.11.6) with ESMTP id 2; x\nReceived: from c by relay.spam.test (8.9.3/8.9.3) with ESMTP id 3; x\n\n";
        let id = identify(message, Some("mx.spam.test"));
        assert!(id.connecting.is_some());
        assert!(id.inside.is_empty());
        assert_eq!(id.outside, 2);
    }

    #[test]
    fn hybrid_chain_gives_connecting_and_inside() {
        // Mailbox server -> Edge server -> us; the Edge server connected.
        let message = "Received: from MBX01.corp.contoso.example (10.0.0.5) by\r\n EDGE01.contoso.example (10.0.1.6) with Microsoft SMTP Server\r\n (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id\r\n 15.2.1544.11; Tue, 14 Nov 2023 10:00:02 +0000\r\nReceived: from MBX01.corp.contoso.example (10.0.0.5) by\r\n MBX01.corp.contoso.example (10.0.0.5) with Microsoft SMTP Server\r\n (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id\r\n 15.1.2507.6; Tue, 14 Nov 2023 10:00:01 +0000\r\nReceived: from MBX01.corp.contoso.example ([fe80::1]) by\r\n MBX01.corp.contoso.example ([fe80::1%12]) with mapi id 15.1.2507.006; Tue,\r\n 14 Nov 2023 10:00:00 +0000\r\nFrom: a@contoso.example\r\n\r\n";
        let id = identify(message.as_bytes(), Some("edge01.CONTOSO.example."));
        let edge = id.connecting.expect("edge");
        assert_eq!(edge.hop, Hop::Connecting);
        assert_eq!(edge.index, 0);
        assert_eq!(edge.by_host.as_deref(), Some("edge01.contoso.example"));
        assert_eq!(
            edge.from_host.as_deref(),
            Some("mbx01.corp.contoso.example")
        );
        assert_eq!(edge.software, sw(Product::Exchange, "15.2.1544.11"));
        assert!(!edge.cloud);
        assert_eq!(id.inside.len(), 2);
        assert_eq!(
            id.inside[1].by_host.as_deref(),
            Some("mbx01.corp.contoso.example")
        );
        assert_eq!(id.inside[1].software, sw(Product::Exchange, "15.1.2507.6"));
        assert!(id.inside.iter().all(|e| e.hop == Hop::Inside && !e.cloud));
        assert_eq!(id.outside, 0);
        assert_eq!(id.fields, 3);
    }

    #[test]
    fn topmost_field_of_another_host_is_not_connecting() {
        let message = b"Received: from a (a [10.0.0.1]) by mx.example.org (8.15.2/8.15.2) with ESMTP id 1; x\nReceived: from b by relay.example.org (8.15.2/8.15.2) with ESMTP id 2; x\n\n";
        for host in [
            Some("other.example.org"),
            None,
            Some(""),
            Some("[192.0.2.1]"),
        ] {
            let id = identify(message, host);
            assert!(id.connecting.is_none(), "{host:?}");
            assert!(id.inside.is_empty(), "{host:?}");
            assert_eq!(id.outside, 2, "{host:?}");
            assert!(id.outside_evidence.iter().all(|e| e.hop == Hop::Outside));
        }
        let id = identify(message, Some("MX.example.org"));
        assert!(id.connecting.is_some());
        assert_eq!(id.inside.len(), 1);
    }

    #[test]
    fn headers_end_at_the_blank_line() {
        let message =
            b"Subject: x\n\nReceived: from a by b.example (8.15.2/8.15.2) with ESMTP id 1; x\n";
        let id = identify(message, Some("b.example"));
        assert_eq!(id.fields, 0);
        assert!(id.connecting.is_none());
        // An mbox `From ` line before the header is skipped.
        let message = b"From a@b Mon Sep  2 12:19:25 2002\nReceived: from a by b.example (8.15.2/8.15.2) with ESMTP id 1; x\n\n";
        assert!(identify(message, Some("b.example")).connecting.is_some());
    }

    #[test]
    fn recognise_text_fragments() {
        let cases = [
            ("Microsoft SMTP Server id 15.1.2507.6", sw(Product::Exchange, "15.1.2507.6")),
            (
                "with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.1.2507.6; Tue",
                sw(Product::Exchange, "15.1.2507.6"),
            ),
            ("Microsoft SMTPSVC(6.0.3790.4675)", sw(Product::IisSmtp, "6.0.3790.4675")),
            ("SMTPSVC(6.0.3790.4675)", sw(Product::IisSmtp, "6.0.3790.4675")),
            ("Exim 4.96", sw(Product::Exim, "4.96")),
            ("(Exim 4.96)", sw(Product::Exim, "4.96")),
            ("exim 4.90_1", sw(Product::Exim, "4.90")),
            ("(8.15.2/8.15.2)", sw(Product::Sendmail, "8.15.2")),
            ("8.15.2/8.15.2", sw(Product::Sendmail, "8.15.2")),
            ("with mapi id 14.03.0319.002", sw(Product::Exchange, "14.3.319.2")),
        ];
        for (text, expected) in cases {
            assert_eq!(recognise_text(text), Some(expected), "{text}");
        }
        for text in [
            "",
            "Exim",
            "Microsoft SMTP Server",
            "(Switch-2.2.4/Switch-2.2.4)",
            "Postfix",
            "((((",
            "))))",
        ] {
            assert_eq!(recognise_text(text), None, "{text}");
        }
    }

    #[test]
    fn organisations() {
        assert_eq!(
            organisation("MX1.Mail.Example.CO.UK.").as_deref(),
            Some("example.co.uk")
        );
        assert_eq!(
            organisation("a.b.prod.outlook.com").as_deref(),
            Some("outlook.com")
        );
        assert_eq!(organisation("mail.bank.test").as_deref(), Some("bank.test"));
        for host in [
            "localhost",
            "192.0.2.1",
            "[192.0.2.1]",
            "2001:db8::1",
            "co.uk",
            "",
            ".",
        ] {
            assert_eq!(organisation(host), None, "{host}");
        }
    }

    #[test]
    fn trace_is_bounded() {
        let long = format!(
            "Received: from a by b.example (8.15.2/8.15.2) with ESMTP id 1 {}; x\n\n",
            "y ".repeat(5000)
        );
        let id = identify(long.as_bytes(), Some("b.example"));
        let e = id.connecting.expect("connecting");
        assert!(e.field.chars().count() <= TRACE_CHARS + 1);
        assert!(e.field.starts_with("from a by b.example (8.15.2/8.15.2)"));
    }

    #[test]
    fn hostile_input_is_bounded() {
        use std::time::{Duration, Instant};
        let start = Instant::now();

        // A 1 MiB header block in one field, and one of garbage.
        let mut big = b"Received: from a by b.example with esmtp".to_vec();
        big.extend(std::iter::repeat_n(b'(', 512 * 1024));
        big.extend(std::iter::repeat_n(b'x', 512 * 1024));
        big.extend_from_slice(b"\n\n");
        let id = identify(&big, Some("b.example"));
        assert_eq!(id.fields, 1);
        let mut folded = b"Received: from a by b.example".to_vec();
        for _ in 0..100_000 {
            folded.extend_from_slice(b"\r\n (Exim 4.96) (");
        }
        let _ = identify(&folded, Some("b.example"));

        // 10,000 Received fields: only MAX_FIELDS are read.
        let mut many = Vec::new();
        for i in 0..10_000 {
            many.extend_from_slice(
                format!("Received: from h{i} by h{i}.example.org (8.15.2/8.15.2) with ESMTP id {i}; x\r\n")
                    .as_bytes(),
            );
        }
        many.extend_from_slice(b"\r\n");
        let id = identify(&many, Some("h0.example.org"));
        assert_eq!(id.fields, MAX_FIELDS);
        assert_eq!(id.inside.len(), MAX_FIELDS - 1);

        // Random and non-UTF-8 bytes.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200 {
            let mut bytes = Vec::with_capacity(4096);
            if round % 2 == 0 {
                bytes.extend_from_slice(b"Received: from \xff\xfe by b.example (8.\xc3\x28/");
            }
            for _ in 0..4096 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let b = (seed >> 24) as u8;
                // Plenty of the bytes the parser cares about.
                let b = match b % 8 {
                    0 => b"()\n \t;/\\"[(b as usize / 8) % 8],
                    _ => b,
                };
                bytes.push(b);
            }
            let _ = identify(&bytes, Some("b.example"));
            let _ = identify(&bytes, None);
            let _ = recognise_text(&String::from_utf8_lossy(&bytes));
            let _ = topmost_by_host(&bytes);
        }
        let _ = identify(b"", None);
        let _ = identify(b"Received:", Some(""));
        let _ = identify(b"Received: by", Some("."));
        let _ = recognise_text(&"(".repeat(1 << 20));

        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
    }
}
