//! What a delivered message carries of its verdict: the X-Spam headers
//! (SpamAssassin's names, which mail servers and clients already filter on), the
//! optional subject prefix and Exchange's spam confidence level. Headers of these
//! names that arrived with the message are removed first: a sender must not be
//! able to pre-mark its own mail as clean for the server downstream.

use portcullis_scan::{Action, TagConfig, Verdict};

/// Header fields we own; incoming copies are dropped.
pub const OWNED_FIELDS: &[&str] = &[
    "X-Spam-Flag",
    "X-Spam-Score",
    "X-Spam-Status",
    "X-Spam-Level",
    "X-Portcullis-Verdict",
    "X-MS-Exchange-Organization-SCL",
];

/// The fields to prepend for this verdict, CRLF-terminated.
pub fn verdict_fields(verdict: &Verdict, required: f64, tag: &TagConfig) -> String {
    let flagged = verdict.action >= Action::Tag;
    let tests: Vec<&str> = verdict.symbols.iter().map(|s| s.name.as_str()).collect();
    let mut out = String::new();
    out.push_str(&format!(
        "X-Spam-Flag: {}\r\n",
        if flagged { "YES" } else { "NO" }
    ));
    out.push_str(&format!("X-Spam-Score: {:.1}\r\n", verdict.score));
    let stars = "*".repeat(verdict.score.clamp(0.0, 50.0) as usize);
    if !stars.is_empty() {
        out.push_str(&format!("X-Spam-Level: {stars}\r\n"));
    }
    out.push_str(&fold(&format!(
        "X-Spam-Status: {}, score={:.1} required={:.1} tests={}",
        if flagged { "Yes" } else { "No" },
        verdict.score,
        required,
        if tests.is_empty() {
            "none".to_string()
        } else {
            tests.join(",")
        }
    )));
    if tag.exchange_scl {
        let scl = match verdict.action {
            Action::Deliver => 1,
            Action::Tag => 6,
            Action::Quarantine | Action::Reject => 9,
        };
        out.push_str(&format!("X-MS-Exchange-Organization-SCL: {scl}\r\n"));
    }
    out
}

/// Folds a long field at commas so no line exceeds 78 characters where possible
/// (RFC 5322 section 2.2.3).
fn fold(field: &str) -> String {
    let mut out = String::with_capacity(field.len() + 8);
    let mut line_len = 0;
    for (i, piece) in field.split_inclusive(',').enumerate() {
        if i > 0 && line_len + piece.len() > 76 {
            out.push_str("\r\n\t");
            line_len = 1;
        }
        out.push_str(piece);
        line_len += piece.len();
    }
    out.push_str("\r\n");
    out
}

/// The header block's end: the offset just after the CRLF CRLF, or the whole
/// message when there is no body.
fn header_end(message: &[u8]) -> usize {
    memchr::memmem::find(message, b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(message.len())
}

/// Whether an incoming field is ours to replace: the verdict marks, and
/// `Authentication-Results` claiming our authserv-id (RFC 8601 section 5: a
/// receiver removes such fields, which only a forger could have written).
pub fn is_owned_field(name: &str, value: &str, authserv_id: &str) -> bool {
    if OWNED_FIELDS.iter().any(|o| o.eq_ignore_ascii_case(name)) {
        return true;
    }
    name.eq_ignore_ascii_case("Authentication-Results")
        && portcullis_scan::auth::authserv_id(value).eq_ignore_ascii_case(authserv_id)
}

/// Rewrites the header block field by field (a field with its folded
/// continuation lines): drops those `drop(name, value)` selects and puts
/// `subject_prefix` in front of the Subject's value. The body is copied untouched.
pub fn rewrite_header(
    message: &[u8],
    drop: &dyn Fn(&str, &str) -> bool,
    subject_prefix: Option<&str>,
) -> Vec<u8> {
    let end = header_end(message);
    let (head, body) = message.split_at(end);
    let mut out = Vec::with_capacity(message.len() + 32);
    let mut prefixed = false;
    // Split the block into whole fields first, so a decision sees the whole value.
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for line in head.split_inclusive(|&b| b == b'\n') {
        let continuation = line.starts_with(b" ") || line.starts_with(b"\t");
        if !continuation && pos > start {
            fields.push(&head[start..pos]);
            start = pos;
        }
        pos += line.len();
    }
    if pos > start {
        fields.push(&head[start..pos]);
    }
    for field in fields {
        let colon = field.iter().position(|&b| b == b':');
        let name = colon.map(|c| &field[..c]).unwrap_or_default();
        let name = std::str::from_utf8(name).unwrap_or_default().trim();
        if !name.is_empty() {
            let value = String::from_utf8_lossy(&field[colon.map_or(0, |c| c + 1)..]);
            if drop(name, &value) {
                continue;
            }
        }
        match (subject_prefix, colon) {
            (Some(prefix), Some(colon)) if !prefixed && name.eq_ignore_ascii_case("Subject") => {
                prefixed = true;
                let value = &field[colon + 1..];
                let value = value.strip_prefix(b" ").unwrap_or(value);
                out.extend_from_slice(b"Subject: ");
                if !value.starts_with(prefix.as_bytes()) {
                    out.extend_from_slice(prefix.as_bytes());
                }
                out.extend_from_slice(value);
            }
            _ => out.extend_from_slice(field),
        }
    }
    if let (Some(prefix), false) = (subject_prefix, prefixed) {
        // No Subject at all: give the reader one that says why it is marked.
        let at = out.len().saturating_sub(2);
        let field = format!("Subject: {}\r\n", prefix.trim_end());
        if out.ends_with(b"\r\n\r\n") {
            out.splice(at..at, field.bytes());
        } else {
            out.extend_from_slice(field.as_bytes());
        }
    }
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_scan::{Category, Symbol};

    fn verdict(score: f64, action: Action) -> Verdict {
        Verdict {
            score,
            symbols: vec![Symbol {
                name: "GTUBE".into(),
                score,
                detail: String::new(),
                category: Category::Spam,
            }],
            category: Category::Spam,
            action,
        }
    }

    #[test]
    fn tagged_mail_says_yes_with_its_tests_and_scl() {
        let tag = TagConfig {
            subject_prefix: None,
            exchange_scl: true,
        };
        let f = verdict_fields(&verdict(6.5, Action::Tag), 5.0, &tag);
        assert!(f.contains("X-Spam-Flag: YES\r\n"), "{f}");
        assert!(
            f.contains("X-Spam-Status: Yes, score=6.5 required=5.0 tests=GTUBE\r\n"),
            "{f}"
        );
        assert!(f.contains("X-MS-Exchange-Organization-SCL: 6\r\n"), "{f}");
        let f = verdict_fields(&verdict(0.0, Action::Deliver), 5.0, &TagConfig::default());
        assert!(
            f.contains("X-Spam-Flag: NO\r\n") && !f.contains("SCL"),
            "{f}"
        );
    }

    #[test]
    fn incoming_marks_are_dropped_and_the_subject_prefixed() {
        let m = b"X-Spam-Flag: NO\r\nSubject: hello\r\nX-Spam-Status: No,\r\n\tscore=-5\r\nTo: b@x\r\n\r\nX-Spam-Flag: body\r\n";
        let ours = |n: &str, v: &str| is_owned_field(n, v, "gw.test");
        let out = rewrite_header(m, &ours, Some("[SPAM] "));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Subject: [SPAM] hello\r\nTo: b@x\r\n\r\nX-Spam-Flag: body\r\n"
        );
        // Never prefixed twice.
        let none = |_: &str, _: &str| false;
        let out = rewrite_header(b"Subject: [SPAM] hi\r\n\r\n", &none, Some("[SPAM] "));
        assert_eq!(out, b"Subject: [SPAM] hi\r\n\r\n");
        // No Subject: one is added.
        let out = rewrite_header(b"To: b@x\r\n\r\nbody", &none, Some("[SPAM] "));
        assert_eq!(out, b"To: b@x\r\nSubject: [SPAM]\r\n\r\nbody");
    }

    #[test]
    fn forged_authentication_results_go_and_others_stay() {
        let m = b"Authentication-Results:\r\n\tgw.test; dmarc=pass\r\nAuthentication-Results: relay.test; spf=fail\r\nFrom: a@x\r\n\r\nhi";
        let ours = |n: &str, v: &str| is_owned_field(n, v, "GW.test");
        let out = rewrite_header(m, &ours, None);
        assert_eq!(
            out,
            b"Authentication-Results: relay.test; spf=fail\r\nFrom: a@x\r\n\r\nhi"
        );
    }
}
