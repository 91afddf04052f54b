//! A safe preview of a held message for the console: its header fields, its
//! text (the plain part, or the HTML part read as text), its links as text,
//! and its attachments by name, type, size and SHA-256. Nothing of the message
//! is ever rendered as markup: no HTML, no remote images, no clickable links.
//!
//! Hostile input: the message is attacker-written. Every part of the preview
//! is bounded (fields, text, links, attachments), so a huge or crafted message
//! gives a truncated preview, flagged as such, never an unbounded answer.

use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;

const MAX_FIELDS: usize = 200;
const MAX_FIELD_CHARS: usize = 2_000;
const MAX_TEXT_BYTES: usize = 256 * 1024;
const MAX_LINKS: usize = 500;
const MAX_ATTACHMENTS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentInfo {
    pub name: Option<String>,
    pub content_type: String,
    pub size: usize,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    /// Header fields as written (name, value), top to bottom.
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub links: Vec<String>,
    pub attachments: Vec<AttachmentInfo>,
    /// Something was cut to stay within the bounds.
    pub truncated: bool,
}

fn clip(s: &str, max: usize, truncated: &mut bool) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    *truncated = true;
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The preview of a raw message.
pub fn preview(raw: &[u8]) -> Preview {
    let mut truncated = false;
    let Some(message) = MessageParser::default().parse(raw) else {
        // Not a message at all: its bytes as text, bounded.
        let text = clip(
            &String::from_utf8_lossy(raw),
            MAX_TEXT_BYTES,
            &mut truncated,
        );
        return Preview {
            headers: Vec::new(),
            text,
            links: Vec::new(),
            attachments: Vec::new(),
            truncated,
        };
    };
    let mut headers = Vec::new();
    for h in message.headers() {
        if headers.len() == MAX_FIELDS {
            truncated = true;
            break;
        }
        let start = h.offset_start() as usize;
        let end = (h.offset_end() as usize).min(raw.len());
        let value = raw
            .get(start..end)
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        // Unfolded, as a person reads it.
        let value = value.replace("\r\n", "").replace('\n', "");
        headers.push((
            clip(h.name(), 200, &mut truncated),
            clip(value.trim(), MAX_FIELD_CHARS, &mut truncated),
        ));
    }
    let text = message
        .body_text(0)
        .map(|t| clip(&t, MAX_TEXT_BYTES, &mut truncated))
        .unwrap_or_default();
    let mut links = portcullis_scan::message_urls(raw);
    if links.len() > MAX_LINKS {
        links.truncate(MAX_LINKS);
        truncated = true;
    }
    let mut attachments = Vec::new();
    for part in message.attachments() {
        if attachments.len() == MAX_ATTACHMENTS {
            truncated = true;
            break;
        }
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let contents = part.contents();
        attachments.push(AttachmentInfo {
            name: part.attachment_name().map(|n| clip(n, 500, &mut truncated)),
            content_type: clip(&content_type, 200, &mut truncated),
            size: contents.len(),
            sha256: sha256_hex(contents),
        });
    }
    Preview {
        headers,
        text,
        links,
        attachments,
        truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "From: Bank <it@bank.example>\r\nTo: a@example.org\r\n\
        Subject: =?utf-8?q?Verify_<script>?=\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/html\r\n\r\n\
        <p>Click <a href=\"https://evil.example/login\">here</a> <img src=\"https://track.example/p.gif\"></p>\r\n\
        --b\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\n\
        Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";

    #[test]
    fn a_preview_is_text_links_and_attachment_facts() {
        let p = preview(MESSAGE.as_bytes());
        assert!(p
            .headers
            .iter()
            .any(|(n, v)| n == "Subject" && v.contains("Verify")));
        assert!(
            p.text.contains("Click") && !p.text.contains("<a "),
            "{}",
            p.text
        );
        assert!(
            p.links
                .iter()
                .any(|l| l.starts_with("https://evil.example/login")),
            "{:?}",
            p.links
        );
        assert_eq!(p.attachments.len(), 1);
        let a = &p.attachments[0];
        assert_eq!(
            (a.name.as_deref(), a.content_type.as_str(), a.size),
            (Some("invoice.pdf"), "application/pdf", 9)
        );
        assert_eq!(a.sha256, sha256_hex(b"%PDF-1.4\n"));
        assert!(!p.truncated);
    }

    #[test]
    fn a_huge_text_is_cut_and_flagged() {
        let body = "word ".repeat(100_000);
        let raw = format!("Subject: big\r\n\r\n{body}");
        let p = preview(raw.as_bytes());
        assert!(p.truncated);
        assert!(p.text.len() <= MAX_TEXT_BYTES);
    }
}
