//! What the SMTP session said against what the message says: the HELO name
//! against the client's address and the organisation's own names, MAIL FROM
//! against From, and From in an own domain arriving from outside without a
//! login. Only the gateway knows these; a scanned file has no envelope and
//! every check here skips itself.
//!
//! Standards: RFC 5321 sections 4.1.1.1 (HELO/EHLO gives the client's fully
//! qualified domain name or an address literal), 4.1.3 (address literals in
//! brackets, `IPv6:` tagged) and 3.3 (MAIL FROM, the null reverse-path);
//! RFC 5322 section 3.6.2 (From).
//!
//! Hostile input: the HELO name and MAIL FROM are the client's words, read once
//! and bounded to [`MAX_HELO`] bytes. Clients that logged in, and clients on
//! loopback, private or link-local addresses (the organisation's own servers),
//! are not judged: the scanner does not see `smtp.trusted_networks`.

use super::{
    canonical_ip, domain_of, is_freemail, is_public, outside_client, own_domain, registrable,
    shown, Head, View,
};
use crate::{Category, Finding};
use mail_parser::{HeaderName, HeaderValue};
use std::net::IpAddr;

/// Longest HELO argument read (a domain name is at most 255 bytes).
const MAX_HELO: usize = 512;

/// Suffixes of names that only mean something inside one network.
const LOCAL_SUFFIXES: &[&str] = &[".local", ".localdomain", ".localhost", ".lan", ".internal"];

pub(super) fn check_helo(view: &View<'_>, out: &mut Vec<Finding>) {
    let (Some(client), Some(helo)) = (outside_client(view), view.envelope.helo.as_deref()) else {
        return;
    };
    let helo = match helo.char_indices().nth(MAX_HELO) {
        Some((cut, _)) => &helo[..cut],
        None => helo,
    }
    .trim();
    if let Some((ip, bracketed)) = helo_address(helo) {
        if !bracketed {
            out.push(Finding::new(
                "HELO_BARE_IP",
                0.5,
                Category::Spam,
                format!(
                    "the client greeted as {}, an IP address without the brackets of an address literal",
                    shown(helo)
                ),
            ));
        }
        if ip != client && is_public(ip) {
            out.push(Finding::new(
                "HELO_IP_MISMATCH",
                1.0,
                Category::Spam,
                format!(
                    "the client at {client} greeted as {}, another public address",
                    shown(helo)
                ),
            ));
        }
        return;
    }
    let name = helo.trim_end_matches('.').to_ascii_lowercase();
    if !name.contains('.') || LOCAL_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        out.push(Finding::new(
            "HELO_NOT_FQDN",
            0.5,
            Category::Spam,
            format!(
                "the client at {client} greeted as \"{}\", not a fully qualified domain name",
                shown(helo)
            ),
        ));
        return;
    }
    let ours = view
        .config
        .auth
        .authserv_id
        .as_deref()
        .is_some_and(|h| h.trim_end_matches('.').eq_ignore_ascii_case(&name));
    if ours || own_domain(&name, &view.config.own_domains).is_some() {
        out.push(Finding::new(
            "HELO_CLAIMS_OWN",
            1.5,
            Category::Spam,
            format!(
                "the client at {client} greeted as {}, {} though it is outside",
                shown(helo),
                if ours {
                    "our own host name"
                } else {
                    "a name in our own domains"
                }
            ),
        ));
    }
}

/// The address in a HELO that is an IP address, and whether it was written as
/// an address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
fn helo_address(helo: &str) -> Option<(IpAddr, bool)> {
    if let Some(inner) = helo.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let inner = match inner.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => &inner[5..],
            _ => inner,
        };
        return inner.parse().ok().map(|ip| (canonical_ip(ip), true));
    }
    helo.parse().ok().map(|ip| (canonical_ip(ip), false))
}

pub(super) fn check_identities(view: &View<'_>, head: &Head<'_>, out: &mut Vec<Finding>) {
    let Some(client) = outside_client(view) else {
        return;
    };
    let Some(HeaderValue::Address(from)) = head.msg.header(HeaderName::From) else {
        return;
    };
    let Some((address, domain)) = from.iter().find_map(|a| {
        let address = a.address.as_deref()?;
        Some((address, domain_of(address)?))
    }) else {
        return;
    };
    if let Some(own) = own_domain(&domain, &view.config.own_domains) {
        out.push(Finding::new(
            "FROM_OWN_DOMAIN_UNAUTHENTICATED",
            2.5,
            Category::Phishing,
            format!(
                "From {} is in our domain {own}, but the message came from {client} outside without a login; a forgery unless the domain's SPF or DKIM passed",
                shown(address)
            ),
        ));
    }
    let Some(mail_from) = view.envelope.mail_from.as_deref() else {
        return;
    };
    let Some(envelope_domain) = domain_of(mail_from) else {
        return; // the null sender (bounces) or no domain
    };
    if head.is_list || registrable(&envelope_domain) == registrable(&domain) {
        return;
    }
    if is_freemail(&domain) {
        out.push(Finding::new(
            "FREEMAIL_FROM_FORGED",
            1.5,
            Category::Spam,
            format!(
                "From {} is a free-mail address but the envelope sender is {}; free-mail providers send their users' mail themselves",
                shown(address),
                shown(mail_from)
            ),
        ));
    } else {
        out.push(Finding::new(
            "ENVELOPE_FROM_MISMATCH",
            0.3,
            Category::Spam,
            format!(
                "the envelope sender {} is in another domain than From {}",
                shown(mail_from),
                shown(address)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::Envelope;

    fn outside(helo: &str) -> Envelope {
        Envelope {
            client_ip: Some("203.0.113.5".parse().unwrap()),
            helo: Some(helo.into()),
            mail_from: Some("bounce@sender.example".into()),
            received_at: Some(1_030_016_190),
            ..Envelope::default()
        }
    }

    fn gateway(raw: &str, env: &Envelope) -> Vec<String> {
        let mut config = own_config();
        config.auth.authserv_id = Some("mx.org.example".into());
        names(&run_with(raw, env, &config))
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn helo_anomalies_fire() {
        let cases = [
            ("200.161.16.132", vec!["HELO_BARE_IP", "HELO_IP_MISMATCH"]),
            ("203.0.113.5", vec!["HELO_BARE_IP"]),
            ("[200.161.16.132]", vec!["HELO_IP_MISMATCH"]),
            // Documentation addresses are not public: no claim to judge.
            ("[198.51.100.9]", vec![]),
            ("[IPv6:2001:4860::1]", vec!["HELO_IP_MISMATCH"]),
            ("dd_it7", vec!["HELO_NOT_FQDN"]),
            ("exch01.corp.local", vec!["HELO_NOT_FQDN"]),
            ("org.example", vec!["HELO_CLAIMS_OWN"]),
            ("mail.org.example", vec!["HELO_CLAIMS_OWN"]),
            ("MX.ORG.EXAMPLE.", vec!["HELO_CLAIMS_OWN"]),
        ];
        for (helo, want) in cases {
            let got = gateway(CLEAN, &outside(helo));
            assert_eq!(got, want, "HELO {helo}");
        }
    }

    #[test]
    fn good_helos_and_trusted_clients_do_not_fire() {
        for helo in [
            "mail.sender.example",
            "[203.0.113.5]",
            "[192.168.1.2]",
            "notorg.example",
        ] {
            assert!(gateway(CLEAN, &outside(helo)).is_empty(), "HELO {helo}");
        }
        // Our own servers and logged-in users say what they like.
        let mut lan = outside("exch01");
        lan.client_ip = Some("10.0.0.3".parse().unwrap());
        assert!(gateway(CLEAN, &lan).is_empty());
        let mut user = outside("laptop");
        user.auth_user = Some("bob".into());
        assert!(gateway(CLEAN, &user).is_empty());
        // A file has no envelope.
        assert!(gateway(CLEAN, &Envelope::default()).is_empty());
    }

    #[test]
    fn our_domain_in_from_from_outside_fires() {
        let raw = with("From:", "From: CEO <ceo@org.example>");
        let mut env = outside("mail.sender.example");
        env.mail_from = Some("ceo@org.example".into());
        assert_eq!(gateway(&raw, &env), ["FROM_OWN_DOMAIN_UNAUTHENTICATED"]);
        env.auth_user = Some("ceo".into());
        assert!(gateway(&raw, &env).is_empty());
    }

    #[test]
    fn envelope_and_from_mismatches_fire() {
        let mut env = outside("mail.sender.example");
        env.mail_from = Some("x@bulk-sender.example".into());
        assert_eq!(gateway(CLEAN, &env), ["ENVELOPE_FROM_MISMATCH"]);
        let raw = with("From:", "From: jaqwill <jaqwill@msn.com>");
        assert_eq!(gateway(&raw, &env), ["FREEMAIL_FROM_FORGED"]);
        // The null sender, the same organisation and list mail are fine.
        env.mail_from = Some(String::new());
        assert!(gateway(&raw, &env).is_empty());
        env.mail_from = Some("bounces+123@em.sender.example".into());
        assert!(gateway(CLEAN, &env).is_empty());
        env.mail_from = Some("list-bounces@lists.example".into());
        let list = raw.replacen("To:", "List-Id: <users.lists.example>\r\nTo:", 1);
        assert!(gateway(&list, &env).is_empty());
    }
}
