//! The few header fields the trace keeps (Message-ID, Subject), read from the
//! raw header block without a full MIME parse. Values are unfolded, decoded only
//! as far as UTF-8 allows (RFC 2047 words stay encoded) and bounded in length.

/// Message-ID and Subject of a message, if present.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub message_id: Option<String>,
    pub subject: Option<String>,
}

impl Summary {
    pub fn of(message: &[u8]) -> Summary {
        let end = message
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 2)
            .unwrap_or(message.len().min(256 * 1024));
        let head = String::from_utf8_lossy(&message[..end]);
        let mut out = Summary::default();
        let mut current: Option<(String, String)> = None;
        let finish = |field: Option<(String, String)>, out: &mut Summary| {
            if let Some((name, value)) = field {
                let value: String = value
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(998)
                    .collect();
                match name.to_ascii_lowercase().as_str() {
                    "message-id" if out.message_id.is_none() => {
                        out.message_id = Some(
                            value
                                .trim_start_matches('<')
                                .trim_end_matches('>')
                                .to_string(),
                        )
                    }
                    "subject" if out.subject.is_none() => out.subject = Some(value),
                    _ => {}
                }
            }
        };
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = current.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            finish(current.take(), &mut out);
            if let Some((name, value)) = line.split_once(':') {
                current = Some((name.trim().to_string(), value.trim().to_string()));
            }
        }
        finish(current, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_fields_are_unfolded() {
        let m = b"Subject: hello\r\n  world\r\nMessage-ID: <a@b>\r\n\r\nSubject: body\r\n";
        let s = Summary::of(m);
        assert_eq!(s.subject.as_deref(), Some("hello world"));
        assert_eq!(s.message_id.as_deref(), Some("a@b"));
    }
}
