//! Builds one digest: an RFC 5322 message, MIME multipart/alternative
//! (RFC 2045-2049) with a plain-text and an HTML part saying the same.
//!
//! Every subject and sender shown comes from held mail, most of it spam:
//! hostile text. In the HTML part it is escaped (`&`, `<`, `>`, `"`, `'`); in
//! both parts control characters and bidirectional overrides are replaced, so
//! a subject cannot start a new line that looks like ours, or reverse the
//! text around it, and it is shortened to a bounded length.

use crate::token::LinkAction;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::MessageBuilder;
use portcullis_store::{HeldEntry, ReleaseStatus};
use std::fmt::Write;

/// Characters of a subject or sender shown at most.
const MAX_SHOWN: usize = 160;

/// One entry of a digest with the links its recipient may use.
#[derive(Debug, Clone)]
pub struct DigestItem {
    pub entry: HeldEntry,
    /// Listed because it expires soon.
    pub expiring: bool,
    /// Each action the policy allows, with its link.
    pub links: Vec<(LinkAction, String)>,
}

/// Who a digest is from and to, and when.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Our host name (Message-ID).
    pub hostname: String,
    /// The From address.
    pub from: String,
    pub recipient: String,
    /// Unix ms.
    pub now: i64,
    /// Its own id (the trace id it is queued under).
    pub id: String,
    /// Days the links work.
    pub link_validity_days: u32,
    /// Entries held for this recipient that did not fit in this digest
    /// (they are in the next one).
    pub more: usize,
}

/// A built digest.
#[derive(Debug, Clone)]
pub struct Composed {
    pub subject: String,
    pub message_id: String,
    pub message: Vec<u8>,
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Hostile text made safe to show on one line, at most `MAX_SHOWN`
/// characters (see [`portcullis_queue::text::one_line`]).
pub fn one_line(s: &str) -> String {
    portcullis_queue::text::one_line(s, MAX_SHOWN)
}

/// `2024-05-01 08:12 UTC`
pub fn human_time(ms: i64) -> String {
    let t = portcullis_store::trace::rfc3339(ms);
    format!("{} {} UTC", &t[..10], &t[11..16])
}

fn status_note(s: ReleaseStatus) -> Option<&'static str> {
    match s {
        ReleaseStatus::Requested => Some("release requested; an administrator will decide"),
        ReleaseStatus::Denied => Some("release denied by an administrator"),
        _ => None,
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The digest's subject line.
pub fn subject(items: &[DigestItem], more: usize) -> String {
    let total = items.len() + more;
    let expiring = items.iter().filter(|i| i.expiring).count();
    let mut s = format!(
        "Quarantine digest: {} held for you",
        plural(total, "message", "messages")
    );
    if expiring > 0 {
        let _ = write!(s, ", {expiring} to be deleted soon");
    }
    s
}

/// Builds the digest for one recipient.
pub fn compose(env: &Envelope, items: &[DigestItem]) -> std::io::Result<Composed> {
    let subject = subject(items, env.more);
    let message_id = format!("{}.digest@{}", env.id, env.hostname);
    let text = text_part(env, items);
    let html = html_part(env, items, &subject);
    let message = MessageBuilder::new()
        .from(Address::new_address(
            Some("Portcullis quarantine"),
            env.from.clone(),
        ))
        .to(Address::new_address(None::<&str>, env.recipient.clone()))
        .subject(subject.clone())
        .date(Date::new(env.now.div_euclid(1000)))
        .message_id(MessageId::new(message_id.clone()))
        // RFC 3834: made by a machine; auto-responders must not answer it.
        .header("Auto-Submitted", Raw::new("auto-generated"))
        .header("X-Auto-Response-Suppress", Raw::new("All"))
        .text_body(text)
        .html_body(html)
        .write_to_vec()?;
    Ok(Composed {
        subject,
        message_id,
        message,
    })
}

fn intro(env: &Envelope, items: &[DigestItem]) -> Vec<String> {
    let expiring = items.iter().filter(|i| i.expiring).count();
    let mut lines = vec![format!(
        "Mail to {} was held in quarantine because it looked like spam, phishing or malware.",
        one_line(&env.recipient)
    )];
    if expiring > 0 {
        lines.push(format!(
            "{} will be deleted soon: act before the date shown if you want it.",
            plural(expiring, "message", "messages")
        ));
    }
    lines.push(format!(
        "The links below work for {} and each works once. Pressing one asks you to confirm first.",
        plural(env.link_validity_days as usize, "day", "days")
    ));
    lines
}

fn sections(items: &[DigestItem]) -> [(&'static str, Vec<&DigestItem>); 2] {
    [
        (
            "To be deleted soon",
            items.iter().filter(|i| i.expiring).collect(),
        ),
        ("Newly held", items.iter().filter(|i| !i.expiring).collect()),
    ]
}

fn text_part(env: &Envelope, items: &[DigestItem]) -> String {
    let mut t = String::new();
    for line in intro(env, items) {
        let _ = writeln!(t, "{line}");
    }
    for (title, list) in sections(items) {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(t, "\n{title}\n{}", "=".repeat(title.len()));
        for (n, item) in list.iter().enumerate() {
            let e = &item.entry;
            let _ = writeln!(t, "\n{}. From:     {}", n + 1, sender(e));
            let _ = writeln!(t, "   Subject:  {}", subject_of(e));
            let _ = writeln!(t, "   Received: {}", human_time(e.received_at));
            let _ = writeln!(t, "   Category: {}", category(e));
            let _ = writeln!(t, "   Deleted:  {}", expiry(e));
            if let Some(note) = status_note(e.status) {
                let _ = writeln!(t, "   Status:   {note}");
            }
            for (action, url) in &item.links {
                let _ = writeln!(t, "   {}: {url}", action.label());
            }
            if item.links.is_empty() && status_note(e.status).is_none() {
                let _ = writeln!(t, "   Only an administrator can release this message.");
            }
        }
    }
    if env.more > 0 {
        let _ = writeln!(
            t,
            "\n{} more will be listed in the next digest.",
            plural(env.more, "message", "messages")
        );
    }
    let _ = writeln!(
        t,
        "\n-- \nSent by the mail gateway {} because mail to you was held.",
        env.hostname
    );
    t
}

fn html_part(env: &Envelope, items: &[DigestItem], subject: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:sans-serif;color:#222;max-width:46em\">\n",
        html_escape(subject)
    );
    for line in intro(env, items) {
        let _ = writeln!(h, "<p>{}</p>", html_escape(&line));
    }
    for (title, list) in sections(items) {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(
            h,
            "<h2 style=\"font-size:1.1em\">{}</h2>",
            html_escape(title)
        );
        for item in list {
            let e = &item.entry;
            let _ = writeln!(
                h,
                "<div style=\"border:1px solid #ccc;padding:.5em;margin:.5em 0\">\n\
                 <div><b>From:</b> {}</div>\n<div><b>Subject:</b> {}</div>\n\
                 <div style=\"color:#555\">Received {} &middot; {} &middot; deleted {}</div>",
                html_escape(&sender(e)),
                html_escape(&subject_of(e)),
                html_escape(&human_time(e.received_at)),
                html_escape(&category(e)),
                html_escape(&expiry(e)),
            );
            if let Some(note) = status_note(e.status) {
                let _ = writeln!(h, "<div><i>{}</i></div>", html_escape(note));
            }
            if !item.links.is_empty() {
                let links: Vec<String> = item
                    .links
                    .iter()
                    .map(|(action, url)| {
                        format!(
                            "<a href=\"{}\" style=\"margin-right:1em\">{}</a>",
                            html_escape(url),
                            html_escape(action.label())
                        )
                    })
                    .collect();
                let _ = writeln!(h, "<div style=\"margin-top:.3em\">{}</div>", links.join(""));
            } else if status_note(e.status).is_none() {
                let _ = writeln!(
                    h,
                    "<div><i>Only an administrator can release this message.</i></div>"
                );
            }
            h.push_str("</div>\n");
        }
    }
    if env.more > 0 {
        let _ = writeln!(
            h,
            "<p>{} more will be listed in the next digest.</p>",
            plural(env.more, "message", "messages")
        );
    }
    let _ = write!(
        h,
        "<p style=\"color:#777;font-size:.9em\">Sent by the mail gateway {} because mail to you was held.</p>\n</body></html>\n",
        html_escape(&env.hostname)
    );
    h
}

fn sender(e: &HeldEntry) -> String {
    match e.sender.as_deref().map(one_line) {
        Some(s) if !s.is_empty() => s,
        _ => "(no sender: a bounce or notification)".into(),
    }
}

fn subject_of(e: &HeldEntry) -> String {
    match e.subject.as_deref().map(one_line) {
        Some(s) if !s.is_empty() => s,
        _ => "(no subject)".into(),
    }
}

fn category(e: &HeldEntry) -> String {
    one_line(e.category.as_deref().unwrap_or("held"))
}

fn expiry(e: &HeldEntry) -> String {
    if e.pinned {
        "never (kept by an administrator)".into()
    } else {
        human_time(e.expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(subject: &str, sender: &str) -> HeldEntry {
        HeldEntry {
            message: "D2107H64DXJG0000".into(),
            recipient: "alice@example.test".into(),
            status: ReleaseStatus::Held,
            received_at: 1_704_844_800_000,
            received: String::new(),
            sender: Some(sender.into()),
            subject: Some(subject.into()),
            category: Some("spam".into()),
            score: Some(9.0),
            size: Some(100),
            reason: None,
            expires_at: 1_704_844_800_000 + 3 * crate::DAY_MS,
            expires: String::new(),
            pinned: false,
            release_id: None,
            updated_at: 0,
        }
    }

    fn env() -> Envelope {
        Envelope {
            hostname: "gw.example.test".into(),
            from: "postmaster@gw.example.test".into(),
            recipient: "alice@example.test".into(),
            now: 1_704_900_000_000,
            id: "D2107H64DXJG0001".into(),
            link_validity_days: 7,
            more: 0,
        }
    }

    fn parse(m: &[u8]) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(m).unwrap()
    }

    #[test]
    fn a_digest_is_multipart_alternative_with_our_headers() {
        let items = vec![
            DigestItem {
                entry: entry("Cheap watches", "spam@sender.test"),
                expiring: true,
                links: vec![
                    (LinkAction::Release, "http://gw:8025/q/AAA".into()),
                    (LinkAction::AllowSender, "http://gw:8025/q/BBB".into()),
                ],
            },
            DigestItem {
                entry: entry("Invoice für Grüße", "phish@sender.test"),
                expiring: false,
                links: vec![],
            },
        ];
        let c = compose(&env(), &items).unwrap();
        let raw = String::from_utf8_lossy(&c.message).to_string();
        assert!(raw.contains("Auto-Submitted: auto-generated\r\n"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        // 7-bit on the wire, whatever the subjects: any server takes it.
        assert!(c.message.is_ascii(), "{raw}");
        let m = parse(&c.message);
        assert_eq!(
            m.subject(),
            Some("Quarantine digest: 2 messages held for you, 1 to be deleted soon")
        );
        assert_eq!(
            m.message_id(),
            Some("D2107H64DXJG0001.digest@gw.example.test")
        );
        let from = m.from().and_then(|a| a.first()).unwrap();
        assert_eq!(from.address(), Some("postmaster@gw.example.test"));
        assert_eq!(from.name(), Some("Portcullis quarantine"));
        assert!(m.date().is_some());
        let text = m.body_text(0).unwrap();
        let html = m.body_html(0).unwrap();
        for part in [&text, &html] {
            assert!(part.contains("http://gw:8025/q/AAA"), "{part}");
            assert!(part.contains("http://gw:8025/q/BBB"), "{part}");
            assert!(part.contains("Cheap watches") && part.contains("Invoice für Grüße"));
            assert!(part.contains("Only an administrator can release"));
        }
        assert!(text.find("To be deleted soon") < text.find("Newly held"));
    }

    #[test]
    fn hostile_subjects_and_senders_are_escaped_and_kept_on_one_line() {
        let items = [DigestItem {
            entry: entry(
                "<script>alert(1)</script>\"><img src=x onerror=alert(2)>",
                "\"><svg onload=alert(3)>@evil.test",
            ),
            expiring: false,
            links: vec![],
        }];
        let mut e = items[0].entry.clone();
        e.subject = Some("Hi\r\nRelease: http://evil.test/\u{202E}gpj.exe".into());
        let items = [
            items[0].clone(),
            DigestItem {
                entry: e,
                expiring: false,
                links: vec![],
            },
        ];
        let c = compose(&env(), &items).unwrap();
        let m = parse(&c.message);
        let html = m.body_html(0).unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<svg"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x"));
        let text = m.body_text(0).unwrap();
        assert!(!text.contains('\u{202E}'));
        // The injected line stays inside the subject's line.
        assert!(
            text.lines()
                .any(|l| l.contains("Subject:  Hi Release: http://evil.test/ gpj.exe")),
            "{text}"
        );
        assert!(!text.lines().any(|l| l.starts_with("Release:")));
    }

    #[test]
    fn long_and_odd_text_is_bounded() {
        assert_eq!(one_line("  a\t\tb\n c  "), "a b c");
        let long = "x".repeat(1000);
        assert_eq!(one_line(&long).chars().count(), MAX_SHOWN + 1);
        assert_eq!(html_escape("a&<>\"'"), "a&amp;&lt;&gt;&quot;&#39;");
        assert_eq!(human_time(1_704_844_800_000), "2024-01-10 00:00 UTC");
    }
}
