//! Who the message says it is from, as a reader sees it: a display name that
//! shows another address than the real one, a Reply-To that sends answers to a
//! free-mail box, and a display name that borrows the organisation's own name
//! from outside.
//!
//! Standards: RFC 5322 sections 3.4 (display names and addresses) and 3.6.2
//! (From, Reply-To); RFC 2047 (encoded display names, decoded by `mail-parser`).
//! Mailing lists that rewrite From for DMARC (RFC 7960 section 4.1.3.1) write
//! "Name via List" and move the poster to Reply-To; such mail is left out.
//!
//! Hostile input: display names and addresses are the sender's; names are
//! bounded by [`super::MAX_VALUE`], at most [`NAME_ADDRESSES`] addresses in a
//! name are looked at, and every search is a single `memchr` pass.

use super::{domain_of, is_freemail, own_domain, registrable, shown, Head, View};
use crate::{Category, Finding};
use mail_parser::{HeaderName, HeaderValue};

/// Addresses inside one display name that are compared.
const NAME_ADDRESSES: usize = 8;

/// Words that make a display name read like the organisation's own staff or
/// systems ("Example IT Support", "Example Mail Admin").
const STAFF_WORDS: &[&str] = &[
    "it",
    "support",
    "helpdesk",
    "help desk",
    "service desk",
    "servicedesk",
    "admin",
    "administrator",
    "administration",
    "security",
    "webmail",
    "mail",
    "email",
    "e-mail",
    "postmaster",
    "mailbox",
    "account",
    "accounts",
    "payroll",
    "hr",
    "human resources",
    "team",
    "sysadmin",
    "notification",
    "notifications",
    "quarantine",
    "password",
    "no-reply",
    "noreply",
    "system",
];

pub(super) fn check(view: &View<'_>, head: &Head<'_>, out: &mut Vec<Finding>) {
    let Some(HeaderValue::Address(from)) = head.msg.header(HeaderName::From) else {
        return;
    };
    let Some((name, address, domain)) = from.iter().find_map(|a| {
        let address = a.address.as_deref()?;
        Some((
            a.name.as_deref().unwrap_or(""),
            address,
            domain_of(address)?,
        ))
    }) else {
        return;
    };
    let name_lower = name.to_lowercase();
    // "Jane Doe via Some List" is a list's rewrite, not a disguise.
    let rewritten = name_lower.contains(" via ") || head.is_list;

    if !name_lower.contains(" via ") {
        other_address_in_name(name, address, &domain, out);
    }
    if !rewritten {
        reply_to(head, address, out);
        impersonates_own(view, name, &name_lower, address, &domain, out);
    }
}

fn other_address_in_name(name: &str, address: &str, domain: &str, out: &mut Vec<Finding>) {
    let real = registrable(domain);
    for shown_address in addresses_in(name).take(NAME_ADDRESSES) {
        let Some(d) = domain_of(shown_address) else {
            continue;
        };
        if registrable(&d) != real {
            out.push(Finding::new(
                "FROM_NAME_HAS_OTHER_ADDRESS",
                1.5,
                Category::Phishing,
                format!(
                    "the From display name shows {} but the message is from {}",
                    shown(shown_address),
                    shown(address)
                ),
            ));
            return;
        }
    }
}

/// Address-like words (`local@domain.tld`) in free text.
fn addresses_in(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-".contains(&b);
    let host = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
    memchr::memchr_iter(b'@', bytes).filter_map(move |at| {
        let start = bytes[..at]
            .iter()
            .rposition(|b| !local(*b))
            .map_or(0, |p| p + 1);
        let end = bytes[at + 1..]
            .iter()
            .position(|b| !host(*b))
            .map_or(bytes.len(), |p| at + 1 + p);
        let host_part = text[at + 1..end].trim_end_matches('.');
        (start < at && host_part.contains('.')).then(|| &text[start..at + 1 + host_part.len()])
    })
}

fn reply_to(head: &Head<'_>, from_address: &str, out: &mut Vec<Finding>) {
    let Some(HeaderValue::Address(reply)) = head.msg.header(HeaderName::ReplyTo) else {
        return;
    };
    let Some((address, domain)) = reply.iter().find_map(|a| {
        let address = a.address.as_deref()?;
        Some((address, domain_of(address)?))
    }) else {
        return;
    };
    if is_freemail(&domain) && !address.eq_ignore_ascii_case(from_address) {
        out.push(Finding::new(
            "REPLYTO_FREEMAIL_MISMATCH",
            1.5,
            Category::Phishing,
            format!(
                "replies go to the free-mail address {} instead of the sender {}",
                shown(address),
                shown(from_address)
            ),
        ));
    }
}

fn impersonates_own(
    view: &View<'_>,
    name: &str,
    name_lower: &str,
    address: &str,
    domain: &str,
    out: &mut Vec<Finding>,
) {
    let own = &view.config.own_domains;
    if name.is_empty() || own_domain(domain, own).is_some() {
        return;
    }
    for o in own {
        let o = o.trim_end_matches('.').to_ascii_lowercase();
        if o.is_empty() {
            continue;
        }
        // The organisation's name as people write it: "acme" for acme.co.uk.
        let label = registrable(&o).split('.').next().unwrap_or_default();
        let named = if contains_word(name_lower, &o) {
            true
        } else {
            label.len() >= 4
                && contains_word(name_lower, label)
                && STAFF_WORDS.iter().any(|w| contains_word(name_lower, w))
        };
        if named {
            out.push(Finding::new(
                "FROM_NAME_IMPERSONATES_OWN",
                2.0,
                Category::Phishing,
                format!(
                    "the From display name \"{}\" speaks for our domain {o} but the address {} is outside it",
                    shown(name),
                    shown(address)
                ),
            ));
            return;
        }
    }
}

/// Whether `needle` occurs in `hay` with no letter or digit on either side.
fn contains_word(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let h = hay.as_bytes();
    memchr::memmem::find_iter(h, needle.as_bytes()).any(|i| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::{Envelope, ScanConfig};

    fn acme() -> ScanConfig {
        ScanConfig {
            own_domains: vec!["acmecorp.example".into()],
            ..ScanConfig::default()
        }
    }

    #[test]
    fn an_address_in_the_display_name_that_is_not_the_sender_fires() {
        let raw = with("From:", "From: \"service@paypal.com\" <x@evil.example>");
        let f = run(&raw);
        let hit = f
            .iter()
            .find(|f| f.name == "FROM_NAME_HAS_OTHER_ADDRESS")
            .unwrap();
        assert!(hit.detail.contains("service@paypal.com") && hit.detail.contains("x@evil.example"));
        for fine in [
            "From: \"alice@sender.example\" <alice@sender.example>",
            "From: \"alice@sender.example\" <alice@mail.sender.example>",
            "From: \"bob@other.example via Users\" <users@lists.sender.example>",
            "From: \"Alice @ Home\" <alice@sender.example>",
        ] {
            assert!(
                !fires(&with("From:", fine), "FROM_NAME_HAS_OTHER_ADDRESS"),
                "{fine}"
            );
        }
        let words: Vec<&str> = addresses_in("write to a.b@c.example. or x@y").collect();
        assert_eq!(words, ["a.b@c.example"]);
    }

    #[test]
    fn a_freemail_reply_to_fires() {
        let raw = CLEAN.replacen("To:", "Reply-To: mpeti_ka19@mail.com\r\nTo:", 1);
        let f = run(&raw);
        let hit = f
            .iter()
            .find(|f| f.name == "REPLYTO_FREEMAIL_MISMATCH")
            .unwrap();
        assert!(hit.detail.contains("mpeti_ka19@mail.com"), "{}", hit.detail);
        // The sender's own address, a company address, or a list's rewrite are fine.
        let own = CLEAN.replacen("To:", "Reply-To: Alice <alice@sender.example>\r\nTo:", 1);
        assert!(!fires(&own, "REPLYTO_FREEMAIL_MISMATCH"));
        let list = CLEAN.replacen(
            "To:",
            "Reply-To: poster@gmail.com\r\nList-Id: <users.lists.sender.example>\r\nTo:",
            1,
        );
        assert!(!fires(&list, "REPLYTO_FREEMAIL_MISMATCH"));
    }

    #[test]
    fn display_names_borrowing_our_domain_fire() {
        for from in [
            "From: \"acmecorp.example IT Support\" <helpdesk@evil.example>",
            "From: AcmeCorp Helpdesk <helpdesk@evil.example>",
            "From: \"ACMECORP Mail Admin\" <a@evil.example>",
        ] {
            let f = run_with(&with("From:", from), &Envelope::default(), &acme());
            assert!(names(&f).contains(&"FROM_NAME_IMPERSONATES_OWN"), "{from}");
        }
        for from in [
            // Our own people, partners that mention us in passing, list rewrites.
            "From: \"AcmeCorp Helpdesk\" <helpdesk@acmecorp.example>",
            "From: \"Jane at Acmecorporate\" <jane@partner.example>",
            "From: \"Acmecorp Fan Club\" <club@partner.example>",
            "From: \"helpdesk@acmecorp.example via Users\" <users@lists.example>",
        ] {
            let f = run_with(&with("From:", from), &Envelope::default(), &acme());
            assert!(!names(&f).contains(&"FROM_NAME_IMPERSONATES_OWN"), "{from}");
        }
        // Without own domains configured there is nothing to impersonate.
        let raw = with("From:", "From: \"acmecorp.example IT\" <a@evil.example>");
        assert!(!fires(&raw, "FROM_NAME_IMPERSONATES_OWN"));
    }

    #[test]
    fn words_need_boundaries() {
        assert!(contains_word("acme it support", "it"));
        assert!(!contains_word("acme kit", "it"));
        assert!(contains_word("ärger-acme", "acme"));
        assert!(!contains_word("acmecorp", "acme"));
    }
}
