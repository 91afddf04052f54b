//! SMTP replies: a three-digit code, an RFC 3463 enhanced status code and a reason a
//! person can act on. Every reply the server sends is one of these.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One SMTP reply. `text` may hold several lines (separated by `\n`); each goes on
/// the wire as its own line with the code and the enhanced status repeated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code (RFC 3463), e.g. `5.7.1`. Empty only for the greeting
    /// and EHLO replies, where RFC 2034 does not use one.
    pub status: String,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, status: &str, text: impl Into<String>) -> Self {
        Reply {
            code,
            status: status.to_string(),
            text: text.into(),
        }
    }

    /// A reply without an enhanced status code (greeting, EHLO, HELO, the DATA 354).
    pub fn plain(code: u16, text: impl Into<String>) -> Self {
        Reply {
            code,
            status: String::new(),
            text: text.into(),
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// Serialises the reply for the wire, CRLF-terminated.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let lines: Vec<&str> = if self.text.is_empty() {
            vec![""]
        } else {
            self.text.split('\n').collect()
        };
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            // Control characters in a reason could break framing; they never reach the wire.
            let line: String = line
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let text = if self.status.is_empty() {
                format!("{}{}{}\r\n", self.code, sep, line)
            } else {
                format!("{}{}{} {}\r\n", self.code, sep, self.status, line)
            };
            out.extend_from_slice(text.as_bytes());
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.status.is_empty() {
            write!(f, "{} {}", self.code, self.text.replace('\n', " / "))
        } else {
            write!(
                f,
                "{} {} {}",
                self.code,
                self.status,
                self.text.replace('\n', " / ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_repeats_code_and_status() {
        let mut out = Vec::new();
        Reply::new(550, "5.7.1", "first\nsecond").write_to(&mut out);
        assert_eq!(out, b"550-5.7.1 first\r\n550 5.7.1 second\r\n");
    }

    #[test]
    fn control_characters_never_reach_the_wire() {
        let mut out = Vec::new();
        Reply::new(250, "2.0.0", "ok\r\n250 injected").write_to(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("\r\n").count(), 2);
        assert!(text.starts_with("250-2.0.0 ok "));
    }
}
