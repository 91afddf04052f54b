//! The fields RFC 5322 section 3.6 requires or limits: From (and Sender when it
//! names several authors), Date, Message-ID (section 3.6.4), fields allowed at
//! most once, and the recipient fields (To left undisclosed, long lists spread
//! over many domains).
//!
//! Hostile input: field values come from the sender; they are read as bounded
//! strings ([`super::MAX_VALUE`]) in one pass each, and at most
//! [`super::MAX_RECIPIENTS`] To/Cc addresses are looked at.

use super::{domain_of, registrable, shown, unfold, Head, MAX_RECIPIENTS, ONCE};
use crate::{Category, Finding};
use mail_parser::{HeaderName, HeaderValue};

/// `travelled`: the message came over SMTP (an envelope or a trace). Missing
/// fields are only judged then: a bare fragment (a draft, a test, a file
/// without Received fields) gets them from the submission server later.
pub(super) fn check(head: &Head<'_>, travelled: bool, out: &mut Vec<Finding>) {
    from(head, travelled, out);
    if travelled && head.count("Date") == 0 {
        out.push(Finding::new(
            "MISSING_DATE",
            1.0,
            Category::Spam,
            "the message has no Date field, which RFC 5322 requires",
        ));
    }
    message_id(head, travelled, out);
    mime_version(head, out);
    duplicates(head, out);
    recipients(head, out);
}

fn from(head: &Head<'_>, travelled: bool, out: &mut Vec<Finding>) {
    let Some(first) = head.msg.header(HeaderName::From) else {
        if !travelled {
            return;
        }
        out.push(Finding::new(
            "MISSING_FROM",
            1.5,
            Category::Spam,
            "the message has no From field, which RFC 5322 requires",
        ));
        return;
    };
    let addresses: Vec<&str> = match first {
        HeaderValue::Address(a) => a
            .iter()
            .filter_map(|a| a.address.as_deref())
            .filter(|a| domain_of(a).is_some())
            .take(MAX_RECIPIENTS)
            .collect(),
        _ => Vec::new(),
    };
    if addresses.is_empty() {
        let raw = head.msg.header_raw(HeaderName::From).unwrap_or_default();
        out.push(Finding::new(
            "FROM_INVALID",
            1.0,
            Category::Spam,
            format!(
                "the From field \"{}\" holds no address of the form local@domain",
                shown(&unfold(raw.as_bytes()))
            ),
        ));
    } else if addresses.len() > 1 && head.count("Sender") == 0 {
        out.push(Finding::new(
            "FROM_MULTIPLE_NO_SENDER",
            1.0,
            Category::Spam,
            format!(
                "From names {} addresses ({}, ...) and there is no Sender field, which RFC 5322 section 3.6.2 then requires",
                addresses.len(),
                shown(addresses[0])
            ),
        ));
    }
    if head.count("From") > 1 {
        out.push(Finding::new(
            "DUPLICATE_FROM",
            2.0,
            Category::Phishing,
            format!(
                "the message has {} From fields; mail programs and authentication checks may each read a different one",
                head.count("From")
            ),
        ));
    }
}

fn message_id(head: &Head<'_>, travelled: bool, out: &mut Vec<Finding>) {
    let Some(raw) = head.message_id else {
        if !travelled {
            return;
        }
        out.push(Finding::new(
            "MISSING_MESSAGE_ID",
            0.8,
            Category::Spam,
            "the message has no Message-ID field",
        ));
        return;
    };
    let value = unfold(raw);
    if let Err(why) = check_msg_id(&value) {
        out.push(Finding::new(
            "MESSAGE_ID_MALFORMED",
            1.0,
            Category::Spam,
            format!("Message-ID \"{}\" {why}", shown(&value)),
        ));
    }
}

/// Checks one msg-id (RFC 5322 section 3.6.4, obsolete forms of section 4.5.4
/// included): `[CFWS] "<" id-left "@" id-right ">" [CFWS]`.
fn check_msg_id(value: &str) -> Result<(), &'static str> {
    let rest = skip_cfws(value);
    let Some(rest) = rest.strip_prefix('<') else {
        return Err(if value.is_empty() {
            "is empty"
        } else {
            "does not start with '<'"
        });
    };
    // The id ends at the first '>' outside a quoted id-left.
    let bytes = rest.as_bytes();
    let mut quoted = false;
    let mut end = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'>' if !quoted => {
                end = Some(i);
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let Some(end) = end else {
        return Err("has no closing '>'");
    };
    let (id, after) = (&rest[..end], &rest[end + 1..]);
    if !skip_cfws(after).is_empty() {
        return Err("holds more than one id or text after it");
    }
    let Some((left, right)) = id.rsplit_once('@') else {
        return Err("has no '@'");
    };
    if left.is_empty() || right.is_empty() {
        return Err("has an empty side of '@'");
    }
    if !left.starts_with('"') && left.contains(|c: char| c.is_whitespace() || c == '<') {
        return Err("has white space in its left side");
    }
    let literal = right.starts_with('[') && right.ends_with(']');
    if !literal
        && (right.contains(|c: char| c.is_whitespace() || "<>[]\"(),;:\\".contains(c))
            || !right.contains(|c: char| c.is_alphanumeric()))
    {
        return Err("has no valid domain on the right of '@'");
    }
    Ok(())
}

/// Skips white space and (nested) comments at the start of `s`.
fn skip_cfws(s: &str) -> &str {
    let mut depth = 0u32;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if depth > 0 {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
        } else if c == '(' {
            depth = 1;
        } else if !c.is_whitespace() {
            return &s[i..];
        }
    }
    ""
}

/// RFC 2045 section 4: a message that uses MIME says so. Plain text without
/// MIME-Version is an RFC 822 message and fine.
fn mime_version(head: &Head<'_>, out: &mut Vec<Finding>) {
    let Some(raw) = head.content_type else {
        return;
    };
    let ct = unfold(raw);
    if head.mime_version || ct.is_empty() || ct.to_ascii_lowercase().starts_with("text/plain") {
        return;
    }
    out.push(Finding::new(
        "MIME_VERSION_MISSING",
        0.7,
        Category::Spam,
        format!(
            "the message is \"{}\" but has no MIME-Version field, which RFC 2045 requires",
            shown(&ct)
        ),
    ));
}

fn duplicates(head: &Head<'_>, out: &mut Vec<Finding>) {
    // From has its own symbol; the rest weigh little alone.
    let repeated: Vec<String> = ONCE
        .iter()
        .zip(head.counts)
        .skip(1)
        .filter(|(_, n)| *n > 1)
        .map(|(name, n)| format!("{name} ×{n}"))
        .collect();
    if !repeated.is_empty() {
        out.push(Finding::new(
            "DUPLICATE_HEADER",
            0.5,
            Category::Spam,
            format!(
                "fields RFC 5322 allows once occur more often: {}",
                repeated.join(", ")
            ),
        ));
    }
}

fn recipients(head: &Head<'_>, out: &mut Vec<Finding>) {
    if let Some(raw) = head.to {
        let text = unfold(raw);
        let lower = text.to_ascii_lowercase();
        let addresses = match head.msg.header(HeaderName::To) {
            Some(HeaderValue::Address(a)) => a.iter().filter(|a| a.address.is_some()).count(),
            _ => 0,
        };
        if lower.contains("undisclosed") || addresses == 0 {
            out.push(Finding::new(
                "UNDISCLOSED_RECIPIENTS",
                0.8,
                Category::Spam,
                format!("the To field \"{}\" names no recipient", shown(&text)),
            ));
        }
    }
    // Distinct registrable domains over To and Cc.
    let mut total = 0usize;
    let mut domains: Vec<String> = Vec::new();
    for h in head.msg.headers() {
        if total >= MAX_RECIPIENTS {
            break;
        }
        if !matches!(h.name, HeaderName::To | HeaderName::Cc) {
            continue;
        }
        let HeaderValue::Address(list) = &h.value else {
            continue;
        };
        for a in list.iter() {
            if total >= MAX_RECIPIENTS {
                break;
            }
            let Some(d) = a.address.as_deref().and_then(domain_of) else {
                continue;
            };
            total += 1;
            let reg = registrable(&d);
            if !domains.iter().any(|x| x == reg) {
                domains.push(reg.to_string());
            }
        }
    }
    if total >= 8 && domains.len() >= 5 {
        out.push(Finding::new(
            "MANY_RECIPIENT_DOMAINS",
            1.0,
            Category::Spam,
            format!(
                "To and Cc list {total} addresses in {} different domains ({}, ...)",
                domains.len(),
                shown(&domains[..3].join(", "))
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn missing_required_fields_fire() {
        assert!(fires(&with("From:", ""), "MISSING_FROM"));
        assert!(fires(&with("Date:", ""), "MISSING_DATE"));
        assert!(fires(&with("Message-ID:", ""), "MISSING_MESSAGE_ID"));
        let found = run(CLEAN);
        let clean = names(&found);
        for s in ["MISSING_FROM", "MISSING_DATE", "MISSING_MESSAGE_ID"] {
            assert!(!clean.contains(&s));
        }
        // A fragment that never travelled (no trace, no envelope) is not judged.
        assert!(run("Subject: a draft\r\n\r\ntext\r\n").is_empty());
        let env = crate::Envelope {
            client_ip: Some("203.0.113.5".parse().unwrap()),
            ..Default::default()
        };
        let f = run_with(
            "Subject: x\r\n\r\ntext\r\n",
            &env,
            &crate::ScanConfig::default(),
        );
        assert_eq!(
            names(&f),
            ["MISSING_FROM", "MISSING_DATE", "MISSING_MESSAGE_ID"]
        );
    }

    #[test]
    fn fields_after_a_flood_of_filler_are_not_missing() {
        let filler: String = (0..1500).map(|i| format!("X-Filler-{i}: x\r\n")).collect();
        let env = crate::Envelope {
            client_ip: Some("203.0.113.5".parse().unwrap()),
            ..Default::default()
        };
        let f = run_with(
            &format!("{filler}{CLEAN}"),
            &env,
            &crate::ScanConfig::default(),
        );
        let found = names(&f);
        for s in ["MISSING_FROM", "MISSING_DATE", "MISSING_MESSAGE_ID"] {
            assert!(!found.contains(&s), "{found:?}");
        }
    }

    #[test]
    fn a_from_without_address_fires() {
        let f = run(&with("From:", "From: Mail Delivery Subsystem"));
        let hit = f.iter().find(|f| f.name == "FROM_INVALID").unwrap();
        assert!(
            hit.detail.contains("Mail Delivery Subsystem"),
            "{}",
            hit.detail
        );
        assert!(!fires(
            &with("From:", "From: \"Doe, Jane\" <jane@sender.example>"),
            "FROM_INVALID"
        ));
    }

    #[test]
    fn several_authors_need_a_sender() {
        let two = with("From:", "From: a@sender.example, b@sender.example");
        assert!(fires(&two, "FROM_MULTIPLE_NO_SENDER"));
        let with_sender = two.replacen("To:", "Sender: a@sender.example\r\nTo:", 1);
        assert!(!fires(&with_sender, "FROM_MULTIPLE_NO_SENDER"));
    }

    #[test]
    fn duplicate_fields_fire() {
        let two_from = CLEAN.replacen("To:", "From: ceo@org.example\r\nTo:", 1);
        let f = run(&two_from);
        assert!(names(&f).contains(&"DUPLICATE_FROM"));
        assert!(!names(&f).contains(&"DUPLICATE_HEADER"));
        let two_subjects = CLEAN.replacen("To:", "Subject: again\r\nTo:", 1);
        let f = run(&two_subjects);
        let hit = f.iter().find(|f| f.name == "DUPLICATE_HEADER").unwrap();
        assert!(hit.detail.contains("Subject ×2"), "{}", hit.detail);
        // Received, Comments and the like may repeat.
        let two_received = CLEAN.replacen(
            "From:",
            "Received: from a by b; Thu, 22 Aug 2002 12:36:20 +0100\r\nFrom:",
            1,
        );
        assert!(!fires(&two_received, "DUPLICATE_HEADER"));
    }

    #[test]
    fn message_ids_are_judged_by_their_form() {
        for bad in [
            "<00004ee7187c$00004968$00001798@        .>",
            "<3D43A52A003DE1A8>",
            "3D43A52A003DE1A8@host.example",
            "<a@b.example> <c@d.example>",
            "<@host.example>",
            "<a b@host.example>",
            "",
        ] {
            assert!(check_msg_id(bad).is_err(), "{bad:?} passed");
            let raw = with("Message-ID:", &format!("Message-ID: {bad}"));
            assert!(fires(&raw, "MESSAGE_ID_MALFORMED"), "{bad:?}");
        }
        for good in [
            "<20020822113616.GA1234@mail.sender.example>",
            "<\"020828081752Z.WT24519.  6*/PN=Robin.Hill\"@mail.example>",
            "<3D43A52A003DE1A8@occmta11a.terra.com.mx> (added by postmaster@x.example)",
            "<a@[192.0.2.1]>",
            " <a.b@host>",
        ] {
            assert_eq!(check_msg_id(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn mime_without_mime_version_fires() {
        let html = with("MIME-Version:", "").replace("text/plain", "text/html");
        let f = run(&html);
        let hit = f.iter().find(|f| f.name == "MIME_VERSION_MISSING").unwrap();
        assert!(hit.detail.contains("text/html"), "{}", hit.detail);
        assert!(!fires(&with("MIME-Version:", ""), "MIME_VERSION_MISSING"));
        assert!(!fires(
            &CLEAN.replace("text/plain", "text/html"),
            "MIME_VERSION_MISSING"
        ));
    }

    #[test]
    fn undisclosed_recipients_fire() {
        for to in [
            "To: undisclosed-recipients:;",
            "To: Undisclosed.Recipients@mx.org.example",
            "To: recipient list not shown: ;",
        ] {
            assert!(fires(&with("To:", to), "UNDISCLOSED_RECIPIENTS"), "{to}");
        }
        assert!(!fires(
            &with("To:", "To: team: bob@org.example, eve@org.example;"),
            "UNDISCLOSED_RECIPIENTS"
        ));
    }

    #[test]
    fn recipients_scattered_over_many_domains_fire() {
        let spread: Vec<String> = (0..8).map(|i| format!("u{i}@d{}.example", i % 5)).collect();
        let raw = with("To:", &format!("To: {}", spread.join(",\r\n\t")));
        let f = run(&raw);
        let hit = f
            .iter()
            .find(|f| f.name == "MANY_RECIPIENT_DOMAINS")
            .unwrap();
        assert!(hit.detail.contains("8 addresses in 5"), "{}", hit.detail);
        // A large meeting inside two organisations is fine.
        let team: Vec<String> = (0..20)
            .map(|i| format!("u{i}@d{}.example", i % 2))
            .collect();
        let raw = with("To:", &format!("To: {}", team.join(", ")));
        assert!(!fires(&raw, "MANY_RECIPIENT_DOMAINS"));
    }
}
