//! Phrases of bulk and fraudulent mail in the decoded text: what a sender
//! writes when it does not know the recipient and expects to be called a
//! spammer. Unlike the classifier, these carry over to senders this site never
//! learned, so they back up its less certain opinions (see `docs/symbols.md`):
//!
//! - `BODY_BILL_1618` (3.0): cites "Bill S.1618" (or its "Section 301"), a US
//!   bill of 1998 that never became law, as if it made unsolicited mail legal;
//! - `BODY_NOT_SPAM_CLAIM` (2.0): insists that it is not spam, that the
//!   recipient opted in or that this is a one-time mailing;
//! - `BODY_REMOVAL_INSTRUCTIONS` (1.5): "to be removed, reply with REMOVE in
//!   the subject" instead of a list's unsubscribe link;
//! - `BODY_UNKNOWN_SALUTATION` (1.5): "Dear Friend", "Dear Sir or Madam",
//!   "Dear Valued Customer" and the like opening a line;
//! - `BODY_SALES_PRESSURE` (1.0): "100% free", "risk-free", "no obligation",
//!   "act now", "limited time".
//!
//! Each fired on at most 7 of the 2,625 ham of the corpus's training half and
//! on 3–29% of its spam; none reaches the tag threshold alone.
//!
//! Standards: RFC 2045–2049 (the text parts, every transfer encoding and
//! charset decoded by `mail-parser`; HTML-only mail read as its text).
//!
//! Hostile input: at most [`MAX_PARTS`] text parts and [`MAX_TEXT`] bytes of
//! each are read; the patterns are compiled once by the `regex` crate, whose
//! matching is linear in the input.

use super::links::extract::truncate;
use super::View;
use crate::{Category, Finding};
use regex::Regex;
use std::sync::LazyLock;

/// Text parts read per message.
const MAX_PARTS: usize = 8;
/// Bytes read of each text part: the phrases sit near the top or the foot of
/// a message, and a long one repeats itself.
const MAX_TEXT: usize = 64 * 1024;

struct Phrase {
    symbol: &'static str,
    score: f64,
    what: &'static str,
    pattern: &'static str,
}

const PHRASES: &[Phrase] = &[
    Phrase {
        symbol: "BODY_BILL_1618",
        score: 3.0,
        what: "cites US Bill S.1618, which never became law, to excuse unsolicited mail",
        pattern: r"(?s)bill\s*s\.?\s*1618|1618\s*,?\s*title\s*(iii|3)\b|title\s*(iii|3)\b.{0,100}105th\s+congress|section\s*301.{0,60}(s\.?\s*1618|paragraph\s*\(a\)\s*\(2\)\s*\(c\))",
    },
    Phrase {
        symbol: "BODY_NOT_SPAM_CLAIM",
        score: 2.0,
        what: "insists that it is not spam",
        pattern: r"this\s+(is\s+not|isn.t)\s+(a\s+)?spam|not\s+unsolicited|you\s+(have\s+)?(received|are\s+receiving)\s+this\s+(e-?mail|message)\s+because\s+you\s+(or\s+someone)|you\s+opted[\s-]in|opt[\s-]in\s+list|this\s+is\s+a\s+one[\s-]time\s+(mailing|e-?mail)",
    },
    Phrase {
        symbol: "BODY_REMOVAL_INSTRUCTIONS",
        score: 1.5,
        what: "asks to be answered with \"remove\" to stop it",
        pattern: r"\bto\s+be\s+removed\b|\bremoval\s+instructions|\bremove\s+in\s+the\s+subject|\breply\s+with\s+.?remove\b|\bsend\s+.{0,20}\bremove\b.{0,20}\s+in\s+the\s+subject|\btype\s+.?remove\b|\bsubject\s+line\s+.?remove\b",
    },
    Phrase {
        symbol: "BODY_UNKNOWN_SALUTATION",
        score: 1.5,
        what: "greets a recipient it does not know",
        pattern: r"(?m)^[\s>]*dear\s+(friends?|sir\s*(/|or|and)\s*madam|sir|madam|valued\s+(customer|member)|home\s?owner|business\s+owner|beneficiary|winner|account\s+holder|(grant|opportunit(y|ies))\s+seeker|partner)\b",
    },
    Phrase {
        symbol: "BODY_SALES_PRESSURE",
        score: 1.0,
        what: "presses for a sale",
        pattern: r"100%\s*(free|guaranteed|satisfaction)|\brisk[\s-]free\b|\bno\s+obligation\b|\bact\s+now\b|\border\s+now\b|\blimited\s+time\b",
    },
];

/// The patterns, compiled once (see [`compile`]). They are written in lower case and
/// run over text lower-cased once (ASCII only: the phrases are English), with
/// ASCII word boundaries: so every one starts from a literal the regex engine
/// can search for, and runs in its fast automaton whatever script the text is
/// in (a Unicode `\b` or `(?i)` made the five cost about 100 µs a message,
/// this about 30). They are constants: a failure to compile is caught by the
/// tests, and a pattern that failed would only be skipped.
static COMPILED: LazyLock<Vec<Option<Regex>>> = LazyLock::new(|| {
    PHRASES
        .iter()
        .map(|p| Regex::new(&p.pattern.replace(r"\b", r"(?-u:\b)")).ok())
        .collect()
});

/// Compiles the patterns (the scanner does it once, when it is built).
pub(super) fn compile() {
    LazyLock::force(&COMPILED);
}

pub(super) fn check(view: &View<'_>) -> Vec<Finding> {
    let Some(m) = view.parsed else {
        return Vec::new();
    };
    let texts: Vec<String> = (0..m.text_body.len().min(MAX_PARTS))
        .filter_map(|i| m.body_text(i))
        .map(|t| truncate(&t, MAX_TEXT).to_ascii_lowercase())
        .collect();
    let mut out = Vec::new();
    for (phrase, re) in PHRASES.iter().zip(COMPILED.iter()) {
        let Some(re) = re else { continue };
        let found = texts.iter().find_map(|t| re.find(t));
        if let Some(found) = found {
            out.push(Finding::new(
                phrase.symbol,
                phrase.score,
                Category::Spam,
                format!(
                    "the text {}: \"{}\"",
                    phrase.what,
                    super::headers::shown(
                        &found
                            .as_str()
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{COMPILED, PHRASES};
    use crate::{Envelope, ScanConfig, Scanner};

    fn symbols(body: &str, content_type: &str) -> Vec<String> {
        let raw = format!(
            "From: a@example.com\r\nTo: b@example.org\r\nSubject: hello\r\nDate: Mon, 2 Sep 2024 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n{body}"
        );
        let scanner = Scanner::new(ScanConfig::default()).expect("scanner");
        let verdict = scanner.scan(raw.as_bytes(), &Envelope::default());
        verdict
            .symbols
            .iter()
            .map(|s| s.name.to_string())
            .filter(|n| n.starts_with("BODY_"))
            .collect()
    }

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(COMPILED.len(), PHRASES.len());
        assert!(COMPILED.iter().all(Option::is_some));
    }

    #[test]
    fn bulk_phrases_are_found_in_plain_text() {
        let s = symbols(
            "Dear Friend,\r\nThis is not spam: you opted in.\r\nThis message is sent in compliance of the new e-mail bill: SECTION 301. Per Section 301, Paragraph (a)(2)(C) of S. 1618.\r\nTo be removed, reply with REMOVE in the subject.\r\nAct now, 100% guaranteed!\r\n",
            "text/plain; charset=us-ascii",
        );
        assert_eq!(
            s,
            [
                "BODY_BILL_1618",
                "BODY_NOT_SPAM_CLAIM",
                "BODY_REMOVAL_INSTRUCTIONS",
                "BODY_UNKNOWN_SALUTATION",
                "BODY_SALES_PRESSURE"
            ]
        );
    }

    #[test]
    fn phrases_split_by_markup_or_encoding_are_found() {
        // HTML-only mail is read as its text; quoted-printable is decoded first.
        let s = symbols(
            "<p>Dear <b>Friend</b>,</p><p>this is a one-=\r\ntime mailing</p>",
            "text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable",
        );
        assert!(s.contains(&"BODY_UNKNOWN_SALUTATION".to_string()), "{s:?}");
        assert!(s.contains(&"BODY_NOT_SPAM_CLAIM".to_string()), "{s:?}");
    }

    #[test]
    fn phrases_are_found_among_other_scripts() {
        let s = symbols(
            "Très chère amie,\r\nDEAR FRIEND — ¡ACT NOW!\r\n",
            "text/plain; charset=utf-8",
        );
        assert_eq!(s, ["BODY_UNKNOWN_SALUTATION", "BODY_SALES_PRESSURE"]);
    }

    #[test]
    fn ordinary_mail_has_none() {
        let s = symbols(
            "Dear Anna,\r\nthe minutes are attached; to remove the old draft from the share, ask IT.\r\nThe section 301 of the contract is unchanged.\r\n",
            "text/plain; charset=us-ascii",
        );
        assert!(s.is_empty(), "{s:?}");
    }

    #[test]
    fn only_the_head_of_a_huge_part_is_read() {
        let mut body = "word ".repeat(20_000);
        body.push_str("Dear Friend, act now\r\n");
        assert!(symbols(&body, "text/plain; charset=us-ascii").is_empty());
    }
}
