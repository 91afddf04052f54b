//! Header, structure and time checks: is the top-level header block what RFC 5322
//! requires and what real mail software writes, do its dates agree with when the
//! message arrived, does the trace (Received fields, RFC 5321 section 4.4) hang
//! together, and do the From, Reply-To, envelope and HELO identities fit each
//! other and the organisation's own domains.
//!
//! Standards: RFC 5322 (3.3 date-time with the obsolete forms of 4.3 accepted,
//! 3.6 field counts, 3.6.2 From/Sender, 3.6.4 msg-id), RFC 5321 (4.1.1.1 and
//! 4.1.3 HELO and address literals, 4.4 Received, 6.3 hop counting), RFC 2047
//! (decoded display names and subjects, via `mail-parser`), RFC 3848 (ESMTPA in
//! Received marks an authenticated hop), RFC 6532 (UTF-8 header values).
//!
//! Hostile input and its bounds: every header value, the trace and the envelope
//! are attacker-controlled. Every top-level field is looked at, once, by name
//! (the parser has already read them all, so stopping early would only make
//! fields after a flood of filler look missing); at most [`MAX_RECEIVED`]
//! Received fields and [`MAX_RECIPIENTS`] To/Cc addresses are read further, and
//! values longer than [`MAX_VALUE`] bytes are cut before any scan. Every scan is
//! a single hand-written pass or `memchr` (linear time), nothing is compiled per
//! message, and evidence quoted in a detail is stripped of control characters
//! and cut to [`SHOWN`] characters.
//!
//! Time: dates are compared with [`View::received_at`] (the envelope's time in
//! the gateway, else the newest Received date) and with the trace's own dates,
//! never with the wall clock, so archived mail scans as it did when it arrived.
//! Checks that need the envelope (HELO, MAIL FROM, client address, login) skip
//! themselves when a file is scanned.
//!
//! Symbols (default score; what fires it). The figures in brackets are how often
//! each fired on the SpamAssassin training set (2,625 ham / 500 spam); envelope
//! symbols cannot fire there (their figures come from the corpus's Return-Path,
//! as a stand-in for MAIL FROM). Scores: at most 1 for what fires on some ham,
//! 1–2 for what fires on almost no ham, more only for forging our own domain.
//!
//! Structure (RFC 5322 section 3.6). The three `MISSING_*` symbols only judge
//! mail that travelled (an envelope, or at least one Received field): a bare
//! fragment gets these fields from its submission server.
//! - `MISSING_FROM` (1.5): no From field. [0 / 0]
//! - `FROM_INVALID` (1.0): a From field with no usable address
//!   (`local@domain`). [0 / 4]
//! - `FROM_MULTIPLE_NO_SENDER` (1.0): several From addresses and no Sender, which
//!   section 3.6.2 requires. [0 / 2]
//! - `DUPLICATE_FROM` (2.0): more than one From field: receivers disagree on
//!   which one counts, a known way past DMARC and the reader's eye. [0 / 0]
//! - `DUPLICATE_HEADER` (0.5): another field that may occur once (Date, Sender,
//!   Reply-To, To, Cc, Bcc, Message-ID, In-Reply-To, References, Subject) occurs
//!   more than once. [0 / 0]
//! - `MISSING_DATE` (1.0): no Date field. [0 / 0]
//! - `MISSING_MESSAGE_ID` (0.8): no Message-ID field. [0 / 0]
//! - `MESSAGE_ID_MALFORMED` (1.0): a Message-ID that is not `<left@right>`:
//!   no angle brackets, no `@`, an empty side, white space outside a quoted
//!   left side, a right side with no letter or digit, or more than one id.
//!   [0 / 7]
//! - `MIME_VERSION_MISSING` (0.7): a Content-Type other than text/plain without
//!   the MIME-Version field RFC 2045 section 4 requires. [0 / 22]
//! - `UNDISCLOSED_RECIPIENTS` (0.8): the To field says "undisclosed recipients"
//!   or holds no address (an empty group, nothing). [1 / 40]
//! - `MANY_RECIPIENT_DOMAINS` (1.0): To and Cc list at least 8 addresses in at
//!   least 5 different registrable domains (a harvested list; real group mail
//!   clusters in a few domains). [0 / 49]
//! - `FORGED_MUA_OUTLOOK_EXPRESS` (1.5): X-Mailer names Outlook Express 5/6 but
//!   the Message-ID is not of the form it always writes (Hotmail's web mail,
//!   which used the same name, left out). [0 / 60]
//!
//! Subject:
//! - `SUBJECT_PADDED_TOKEN` (1.5): the subject ends with a run of 6 or more
//!   blanks and one short token (a bulk mailer's tracking tag). [0 / 66]
//! - `SUBJECT_ALL_CAPS` (0.8): 10 or more cased letters in 3 or more words, none
//!   lower case (scripts without case never count). [0 / 42]
//! - `SUBJECT_EXCLAMATIONS` (0.5): four or more exclamation marks. [0 / 5]
//! - `SUBJECT_ADV_TAG` (1.0): the subject carries the upper-case "ADV:" label
//!   that some laws required on unsolicited advertising. [0 / 17]
//!
//! Time:
//! - `DATE_INVALID` (1.5): a Date that RFC 5322 (obsolete forms included) cannot
//!   read: no or unknown zone, zone offset beyond ±14 h, impossible day or time,
//!   a four-digit year before 1970, a weekday that does not match the date, or
//!   text that is no date at all. [0 / 112]
//! - `DATE_IN_FUTURE` (1.0): Date more than 3 hours after the message was
//!   received. [2 / 34]
//! - `DATE_IN_PAST` (1.0): Date more than 14 days before the oldest date in the
//!   trace (or, without a trace, before arrival): old mail relayed late keeps a
//!   trace as old as its Date, forged dates do not. [0 / 3]
//!
//! Trace (Received fields, dates read by the same strict parser):
//! - `RECEIVED_DATE_DISORDER` (1.0): a Received field is dated more than 24 hours
//!   after the one above it, that is a hop later in the chain claims to be
//!   earlier: a forged or spliced trace. [0 / 13]
//! - `RECEIVED_HELO_IP_MISMATCH` (1.0): a hop recorded a HELO that is a public IP
//!   address outside the /16 (IPv6: /32) it connected from; hops marked
//!   authenticated (RFC 3848) and the hop the envelope describes are left out.
//!   [1 / 34]
//! - `RECEIVED_TOO_MANY` (0.5): more than 40 Received fields (a loop or a
//!   padded trace; RFC 5321 section 6.3). [0 / 0]
//!
//! Identities (list mail, and "Name via List" rewrites, are left out of the
//! last two):
//! - `FROM_NAME_HAS_OTHER_ADDRESS` (1.5): the From display name contains an
//!   e-mail address in another registrable domain than the real address
//!   ("service@paypal.com" <x@evil.example>). [0 / 0]
//! - `REPLYTO_FREEMAIL_MISMATCH` (1.5): Reply-To is a free-mail address other
//!   than the From address (lists that rewrite From put the poster in
//!   Reply-To, hence the exemption). [0 / 12]
//! - `FROM_NAME_IMPERSONATES_OWN` (2.0): From is outside the own domains but
//!   its display name contains one of them, or an own domain's name (4 letters
//!   or more) together with a staff word ("Example IT Support"). Needs
//!   `own_domains`; with the corpus's own recipient domains configured: [0 / 0].
//!
//! Envelope (gateway only; skipped for a client that logged in or that comes
//! from a loopback, private, shared or link-local address, since the scanner
//! does not see `smtp.trusted_networks`):
//! - `HELO_IP_MISMATCH` (1.0): the HELO is a public IP address (literal or bare)
//!   other than the client's address.
//! - `HELO_BARE_IP` (0.5): the HELO is an IP address without the brackets of an
//!   address literal (RFC 5321 section 4.1.3).
//! - `HELO_NOT_FQDN` (0.5): the HELO is a name without a dot, or one ending in
//!   .local, .localdomain, .localhost, .lan or .internal (RFC 5321 section
//!   4.1.1.1 asks for the fully qualified domain name).
//! - `HELO_CLAIMS_OWN` (1.5): the HELO is one of the own domains, a host in
//!   them, or the gateway's own host name (`auth.authserv_id`, which defaults
//!   to it).
//! - `ENVELOPE_FROM_MISMATCH` (0.3): MAIL FROM is in another registrable domain
//!   than From, and the message is not list mail (weak: bulk senders and their
//!   providers do this all the time today). By Return-Path: [1 / 54].
//! - `FREEMAIL_FROM_FORGED` (1.5), instead of the former when From is a
//!   free-mail address: free-mail providers send their users' mail themselves.
//!   By Return-Path: [0 / 6].
//! - `FROM_OWN_DOMAIN_UNAUTHENTICATED` (2.5): From is in an own domain but the
//!   message came from outside without a login. A forgery unless the domain's
//!   SPF/DKIM pass (the authentication symbols say so; services that send as
//!   the organisation from outside need them to).
//!
//! Not done here: impersonation of the organisation's users by display name
//! needs a user list, which the configuration does not have yet.

pub(crate) mod dates;
mod envelope;
mod fields;
mod identity;
mod mua;
mod received;
mod subject;

use super::View;
use crate::Finding;
use mail_parser::{HeaderName, HeaderValue, Message};
use std::net::IpAddr;

/// Received fields examined per message.
pub(super) const MAX_RECEIVED: usize = 100;
/// To and Cc addresses examined per message.
pub(super) const MAX_RECIPIENTS: usize = 500;
/// Bytes of one field value examined.
pub(super) const MAX_VALUE: usize = 4096;
/// Characters of evidence quoted in a detail.
pub(super) const SHOWN: usize = 80;

pub(crate) fn check(view: &View<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    envelope::check_helo(view, &mut out);
    let Some(msg) = view.parsed else {
        return out;
    };
    let head = Head::collect(msg);
    let travelled = view.envelope.client_ip.is_some() || head.received_count > 0;
    fields::check(&head, travelled, &mut out);
    subject::check(&head, &mut out);
    dates::check(view, &head, &mut out);
    received::check(view, &head, &mut out);
    identity::check(view, &head, &mut out);
    mua::check(&head, &mut out);
    envelope::check_identities(view, &head, &mut out);
    out
}

/// Fields that RFC 5322 section 3.6 allows at most once, in the order of
/// [`Head::counts`].
const ONCE: [&str; 11] = [
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Subject",
    "Date",
];

/// What the checks need from the top-level header block, gathered in one pass.
pub(super) struct Head<'m> {
    pub msg: &'m Message<'m>,
    /// How often each field of [`ONCE`] occurs.
    pub counts: [u32; ONCE.len()],
    /// Raw values (folded, undecoded) of the first Date, Message-ID and Subject.
    pub date: Option<&'m [u8]>,
    pub message_id: Option<&'m [u8]>,
    pub subject: Option<&'m [u8]>,
    pub to: Option<&'m [u8]>,
    pub x_mailer: Option<&'m [u8]>,
    pub content_type: Option<&'m [u8]>,
    pub mime_version: bool,
    /// Received fields, newest first, at most [`MAX_RECEIVED`].
    pub received: Vec<Hop>,
    /// Received fields in all, counted past the bound.
    pub received_count: usize,
    /// List or bulk mail (List-*, Mailing-List, Precedence list/bulk/junk).
    pub is_list: bool,
}

/// One Received field, as far as the checks read it.
pub(super) struct Hop {
    /// The date after the last `;`, in seconds since the epoch.
    pub time: Option<i64>,
    /// The HELO as recorded when it was an IP address.
    pub helo_ip: Option<IpAddr>,
    /// The address the hop says it connected from.
    pub from_ip: Option<IpAddr>,
    /// The hop says the client logged in (ESMTPA and kin, RFC 3848).
    pub authenticated: bool,
}

impl<'m> Head<'m> {
    pub fn collect(msg: &'m Message<'m>) -> Head<'m> {
        let raw = msg.raw_message();
        let mut head = Head {
            msg,
            counts: [0; ONCE.len()],
            date: None,
            message_id: None,
            subject: None,
            to: None,
            x_mailer: None,
            content_type: None,
            mime_version: false,
            received: Vec::new(),
            received_count: 0,
            is_list: false,
        };
        for h in msg.headers() {
            let value = raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            let value = &value[..value.len().min(MAX_VALUE)];
            let slot = match &h.name {
                HeaderName::From => Some(0),
                HeaderName::Sender => Some(1),
                HeaderName::ReplyTo => Some(2),
                HeaderName::To => Some(3),
                HeaderName::Cc => Some(4),
                HeaderName::Bcc => Some(5),
                HeaderName::MessageId => Some(6),
                HeaderName::InReplyTo => Some(7),
                HeaderName::References => Some(8),
                HeaderName::Subject => Some(9),
                HeaderName::Date => Some(10),
                _ => None,
            };
            if let Some(i) = slot {
                head.counts[i] += 1;
            }
            match &h.name {
                HeaderName::Date if head.date.is_none() => head.date = Some(value),
                HeaderName::MessageId if head.message_id.is_none() => head.message_id = Some(value),
                HeaderName::Subject if head.subject.is_none() => head.subject = Some(value),
                HeaderName::To if head.to.is_none() => head.to = Some(value),
                HeaderName::ContentType if head.content_type.is_none() => {
                    head.content_type = Some(value)
                }
                HeaderName::MimeVersion => head.mime_version = true,
                HeaderName::Received => {
                    head.received_count += 1;
                    if head.received.len() < MAX_RECEIVED {
                        head.received.push(Hop::read(value, &h.value));
                    }
                }
                HeaderName::ListId
                | HeaderName::ListPost
                | HeaderName::ListUnsubscribe
                | HeaderName::ListHelp
                | HeaderName::ListSubscribe => head.is_list = true,
                HeaderName::Other(name) => {
                    if name.eq_ignore_ascii_case("X-Mailer") {
                        head.x_mailer.get_or_insert(value);
                    } else if name.eq_ignore_ascii_case("Mailing-List")
                        || name.eq_ignore_ascii_case("X-Mailing-List")
                    {
                        head.is_list = true;
                    } else if name.eq_ignore_ascii_case("Precedence") {
                        let v = unfold(value).to_ascii_lowercase();
                        if ["list", "bulk", "junk"].iter().any(|p| v.contains(p)) {
                            head.is_list = true;
                        }
                    }
                }
                _ => {}
            }
        }
        head
    }

    pub fn count(&self, name: &str) -> u32 {
        ONCE.iter()
            .position(|n| *n == name)
            .map_or(0, |i| self.counts[i])
    }
}

impl Hop {
    fn read(raw: &[u8], parsed: &HeaderValue<'_>) -> Hop {
        let text = unfold(raw);
        // The strict parser: a lenient one misreads odd forms (asctime) by weeks.
        let time = text
            .rsplit_once(';')
            .and_then(|(_, d)| dates::parse(d.trim()).ok());
        let (mut helo_ip, mut from_ip, mut authenticated) = (None, None, false);
        if let HeaderValue::Received(r) = parsed {
            use mail_parser::{Host, Protocol};
            helo_ip = match (&r.from, &r.helo) {
                (Some(Host::IpAddr(ip)), _) | (_, Some(Host::IpAddr(ip))) => Some(*ip),
                _ => None,
            };
            from_ip = r.from_ip;
            authenticated = matches!(
                r.with,
                Some(
                    Protocol::ESMTPA
                        | Protocol::ESMTPSA
                        | Protocol::LMTPA
                        | Protocol::LMTPSA
                        | Protocol::UTF8SMTPA
                        | Protocol::UTF8SMTPSA
                        | Protocol::UTF8LMTPA
                        | Protocol::UTF8LMTPSA
                )
            );
        }
        Hop {
            time,
            helo_ip: helo_ip.map(canonical_ip),
            from_ip: from_ip.map(canonical_ip),
            authenticated,
        }
    }
}

/// A raw field value as text: line breaks and the blanks after them become one
/// space (so a fold never looks like padding), invalid UTF-8 is replaced, and
/// the ends are trimmed.
pub(super) fn unfold(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(MAX_VALUE)];
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' || c == '\n' {
            while matches!(chars.peek(), Some('\r' | '\n' | ' ' | '\t')) {
                chars.next();
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// Evidence for a detail: control characters dropped, cut to [`SHOWN`] chars.
pub(super) fn shown(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(SHOWN).collect();
    if s.chars().filter(|c| !c.is_control()).nth(SHOWN).is_some() {
        out.push('…');
    }
    out
}

/// The domain of an address, lower case, without a trailing dot or bracket.
pub(super) fn domain_of(address: &str) -> Option<String> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    let domain = domain.trim_end_matches(['>', '.']).trim();
    if local.is_empty() || domain.is_empty() || domain.contains(char::is_whitespace) {
        return None;
    }
    Some(domain.to_ascii_lowercase())
}

/// The registrable domain (public suffix plus one label) of a lower-case name,
/// or the name itself when the suffix list does not know it.
pub(super) fn registrable(domain: &str) -> &str {
    psl::domain_str(domain).unwrap_or(domain)
}

/// Whether `domain` (lower case) is `own` or a host under it.
pub(super) fn within(domain: &str, own: &str) -> bool {
    let own = own.trim_end_matches('.');
    domain.len() >= own.len()
        && domain[domain.len() - own.len()..].eq_ignore_ascii_case(own)
        && (domain.len() == own.len() || domain.as_bytes()[domain.len() - own.len() - 1] == b'.')
}

/// The own domain that `domain` is or is under, if any.
pub(super) fn own_domain<'c>(domain: &str, own: &'c [String]) -> Option<&'c str> {
    own.iter()
        .map(String::as_str)
        .find(|o| !o.is_empty() && within(domain, o))
}

/// Free-mail providers: anyone can open an address there, so an address at one
/// says nothing about the organisation it claims to speak for.
const FREEMAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "msn.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "yahoo.com",
    "ymail.com",
    "rocketmail.com",
    "mail.com",
    "email.com",
    "usa.com",
    "gmx.com",
    "gmx.net",
    "gmx.de",
    "web.de",
    "yandex.ru",
    "yandex.com",
    "mail.ru",
    "inbox.ru",
    "bk.ru",
    "list.ru",
    "rambler.ru",
    "protonmail.com",
    "proton.me",
    "tutanota.com",
    "zoho.com",
    "qq.com",
    "163.com",
    "126.com",
    "sina.com",
    "rediffmail.com",
    "excite.com",
    "juno.com",
    "netzero.net",
    "lycos.com",
    "usa.net",
    "hushmail.com",
    "inbox.com",
    "fastmail.com",
    "naver.com",
    "hanmail.net",
    "libero.it",
    "laposte.net",
    "arabia.com",
    "netscape.net",
    "aim.com",
];

/// Providers whose free-mail service runs under many country domains
/// (yahoo.co.uk, hotmail.fr, ...): matched on the registrable domain's label.
const FREEMAIL_LABELS: &[&str] = &[
    "yahoo", "hotmail", "outlook", "live", "gmx", "yandex", "aol",
];

/// Whether a lower-case domain belongs to a free-mail provider.
pub(super) fn is_freemail(domain: &str) -> bool {
    let reg = registrable(domain);
    FREEMAIL.contains(&reg)
        || reg
            .split_once('.')
            .is_some_and(|(label, _)| FREEMAIL_LABELS.contains(&label))
}

/// IPv4-mapped IPv6 addresses as IPv4, so that one host compares equal.
pub(super) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Addresses that never reach us over the internet: loopback, private,
/// link-local, shared (CGNAT), unique-local, unspecified.
pub(super) fn is_internal(ip: IpAddr) -> bool {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// A globally routable unicast address: not internal, multicast, broadcast,
/// documentation or reserved.
pub(super) fn is_public(ip: IpAddr) -> bool {
    if is_internal(ip) {
        return false;
    }
    match canonical_ip(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            !(v6.is_multicast() || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

/// The client's address when the message came from outside: known, not
/// internal, not in the trusted networks, and the client did not log in.
/// `None` for files and for clients the organisation vouches for.
pub(super) fn outside_client(view: &View<'_>) -> Option<IpAddr> {
    let env = view.envelope;
    let ip = env.client_ip?;
    (env.auth_user.is_none() && !env.trusted && !is_internal(ip)).then_some(canonical_ip(ip))
}

#[cfg(test)]
pub(super) mod testing {
    //! Builds a [`View`] for the submodules' tests.

    use super::super::View;
    use crate::{Envelope, Finding, ScanConfig};

    /// A well-formed message as mail software writes it today; tests change it
    /// one field at a time.
    pub const CLEAN: &str =
        "Received: from mail.sender.example (mail.sender.example [203.0.113.5])\r\n\
        \tby mx.org.example (Postfix) with ESMTPS id 4A1B2C3D\r\n\
        \tfor <bob@org.example>; Thu, 22 Aug 2002 12:36:30 +0100\r\n\
        From: Alice Example <alice@sender.example>\r\n\
        To: Bob <bob@org.example>\r\n\
        Subject: Minutes of Tuesday's meeting\r\n\
        Date: Thu, 22 Aug 2002 07:36:16 -0400\r\n\
        Message-ID: <20020822113616.GA1234@mail.sender.example>\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=us-ascii\r\n\
        \r\n\
        Hello Bob, the minutes are below.\r\n";

    /// Replaces the first line that starts with `field` (e.g. "Date:") by
    /// `line`, or removes it when `line` is empty.
    pub fn with(field: &str, line: &str) -> String {
        let mut out = String::new();
        let mut done = false;
        for l in CLEAN.split_inclusive("\r\n") {
            if !done && l.starts_with(field) {
                done = true;
                if !line.is_empty() {
                    out.push_str(line);
                    out.push_str("\r\n");
                }
            } else {
                out.push_str(l);
            }
        }
        assert!(done, "{field} is not in the clean message");
        out
    }

    pub fn own_config() -> ScanConfig {
        ScanConfig {
            own_domains: vec!["org.example".into()],
            ..ScanConfig::default()
        }
    }

    pub fn run_with(raw: &str, envelope: &Envelope, config: &ScanConfig) -> Vec<Finding> {
        let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes());
        let view = View {
            raw: raw.as_bytes(),
            parsed: parsed.as_ref(),
            envelope,
            config,
        };
        super::check(&view)
    }

    pub fn run(raw: &str) -> Vec<Finding> {
        run_with(raw, &Envelope::default(), &ScanConfig::default())
    }

    pub fn names(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.name.as_ref()).collect()
    }

    pub fn fires(raw: &str, name: &str) -> bool {
        names(&run(raw)).contains(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn a_clean_message_fires_nothing() {
        assert_eq!(names(&run(CLEAN)), Vec::<&str>::new());
    }

    #[test]
    fn a_clean_message_from_outside_fires_nothing_in_the_gateway() {
        let env = crate::Envelope {
            client_ip: Some("203.0.113.5".parse().unwrap()),
            helo: Some("mail.sender.example".into()),
            mail_from: Some("bounce@sender.example".into()),
            recipients: vec!["bob@org.example".into()],
            received_at: Some(1_030_016_190),
            ..Default::default()
        };
        assert_eq!(
            names(&run_with(CLEAN, &env, &own_config())),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn folds_become_one_space() {
        assert_eq!(unfold(b" a\r\n        b\r\n"), "a b");
        assert_eq!(unfold(b"a\n\tb"), "a b");
    }

    #[test]
    fn evidence_is_cut_and_cleaned() {
        let long = "x".repeat(200);
        assert_eq!(shown(&long).chars().count(), SHOWN + 1);
        assert_eq!(shown("a\u{7}b"), "ab");
    }

    #[test]
    fn domains_compare_by_registrable_part() {
        assert_eq!(registrable("mail.example.co.uk"), "example.co.uk");
        assert!(within("mx.org.example", "org.example"));
        assert!(within("org.example", "org.example"));
        assert!(!within("evilorg.example", "org.example"));
        assert!(is_freemail("yahoo.co.uk"));
        assert!(is_freemail("mail.ru"));
        assert!(!is_freemail("example.com"));
        assert_eq!(domain_of("Bob@Example.COM").as_deref(), Some("example.com"));
        assert_eq!(domain_of("nobody"), None);
    }

    #[test]
    fn addresses_are_classified() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(is_internal(ip("10.1.2.3")));
        assert!(is_internal(ip("::ffff:192.168.1.1")));
        assert!(is_internal(ip("fd00::1")));
        assert!(!is_internal(ip("8.8.8.8")));
        assert!(is_public(ip("8.8.8.8")));
        assert!(!is_public(ip("224.0.0.1")));
        assert!(!is_public(ip("2001:db8::1")));
    }

    #[test]
    fn many_fields_stay_bounded_and_the_fields_after_them_are_seen() {
        let mut raw = String::new();
        for i in 0..5000 {
            raw.push_str(&format!(
                "Received: from h{i} by x; Thu, 22 Aug 2002 12:00:00 +0000\r\n"
            ));
        }
        raw.push_str(CLEAN);
        let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes());
        let head = Head::collect(parsed.as_ref().unwrap());
        assert_eq!(head.received.len(), MAX_RECEIVED);
        assert_eq!(head.received_count, 5001, "5,000 and CLEAN's own");
        assert!(head.date.is_some() && head.message_id.is_some());
        assert_eq!(head.count("From"), 1);
    }
}
