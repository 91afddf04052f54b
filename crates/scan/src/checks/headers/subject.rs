//! Subject oddities that bulk mailers leave and people do not: a tracking tag
//! pushed to the end by a run of blanks, shouting in capitals, strings of
//! exclamation marks, and the "ADV:" label for advertising. Each fired on no
//! message of the ham training set.
//!
//! Standards: RFC 5322 section 3.6.5 (Subject), RFC 2047 (encoded words, decoded
//! by `mail-parser` for the letter checks; the padding check reads the raw field
//! so that encoding cannot hide it and folding cannot fake it).
//!
//! Hostile input: the subject is read once, bounded by [`super::MAX_VALUE`].

use super::{shown, unfold, Head};
use crate::{Category, Finding};

pub(super) fn check(head: &Head<'_>, out: &mut Vec<Finding>) {
    if let Some(raw) = head.subject {
        let text = unfold(raw);
        if let Some(token) = padded_token(&text) {
            out.push(Finding::new(
                "SUBJECT_PADDED_TOKEN",
                1.5,
                Category::Spam,
                format!(
                    "the subject ends in a run of blanks and the tag \"{}\", as bulk mailers track their lists",
                    shown(token)
                ),
            ));
        }
        if has_adv_tag(&text) {
            out.push(Finding::new(
                "SUBJECT_ADV_TAG",
                1.0,
                Category::Spam,
                format!(
                    "the subject \"{}\" is labelled as advertising",
                    shown(&text)
                ),
            ));
        }
    }
    let Some(decoded) = head.msg.subject() else {
        return;
    };
    if is_shouting(decoded) {
        out.push(Finding::new(
            "SUBJECT_ALL_CAPS",
            0.8,
            Category::Spam,
            format!("the subject \"{}\" is all in capitals", shown(decoded)),
        ));
    }
    let bangs = decoded.bytes().filter(|b| *b == b'!').count();
    if bangs >= 4 {
        out.push(Finding::new(
            "SUBJECT_EXCLAMATIONS",
            0.5,
            Category::Spam,
            format!("the subject has {bangs} exclamation marks"),
        ));
    }
}

/// The trailing token when the subject is `text`, 6 or more blanks, then one
/// token of at most 20 characters.
fn padded_token(s: &str) -> Option<&str> {
    let s = s.trim_end();
    let start = s.rfind([' ', '\t'])? + 1;
    let token = &s[start..];
    let before = &s[..start];
    let body = before.trim_end_matches([' ', '\t']);
    let blanks = before.len() - body.len();
    (blanks >= 6 && !body.is_empty() && token.chars().count() <= 20).then_some(token)
}

/// 10 or more cased letters in 3 or more words, none of them lower case.
/// Scripts without case (Chinese, Japanese, ...) neither count nor shout.
fn is_shouting(s: &str) -> bool {
    let mut letters = 0;
    let mut words = 0;
    let mut in_word = 0;
    for c in s.chars() {
        if c.is_lowercase() {
            return false;
        }
        if c.is_uppercase() {
            letters += 1;
            in_word += 1;
        } else {
            if in_word >= 2 {
                words += 1;
            }
            in_word = 0;
        }
    }
    if in_word >= 2 {
        words += 1;
    }
    letters >= 10 && words >= 3
}

/// "ADV:" (or "ADV :") as an upper-case word, as US state laws asked of
/// unsolicited advertising.
fn has_adv_tag(s: &str) -> bool {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&b[from..], b"ADV").map(|i| i + from) {
        from = i + 3;
        let word_start = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let rest = s[i + 3..].trim_start_matches(' ');
        if word_start && rest.starts_with(':') {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn subject(s: &str) -> Vec<String> {
        names(&run(&with("Subject:", &format!("Subject: {s}"))))
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_tracking_tag_after_padding_fires() {
        let f = subject("Guaranteed to lose 10-12 lbs in 30 days                          11.150");
        assert!(f.contains(&"SUBJECT_PADDED_TOKEN".to_string()));
        assert_eq!(
            padded_token("The DEBT-$AVER Program              SKYXTGM"),
            Some("SKYXTGM")
        );
        assert_eq!(padded_token("Minutes of Tuesday's meeting"), None);
        assert_eq!(padded_token("Re: budget  2003"), None);
    }

    #[test]
    fn a_folded_subject_is_not_padding() {
        let raw = with(
            "Subject:",
            "Subject: Re: [zzzzteana] a long thread title that mail software folded\r\n        onto a second line",
        );
        assert!(!fires(&raw, "SUBJECT_PADDED_TOKEN"));
    }

    #[test]
    fn shouting_fires_and_acronyms_do_not() {
        assert!(subject("LOWEST MORTGAGE RATES EVER").contains(&"SUBJECT_ALL_CAPS".to_string()));
        assert!(!subject("NASA and the ESA sign MOU").contains(&"SUBJECT_ALL_CAPS".to_string()));
        assert!(!subject("RE: FYI").contains(&"SUBJECT_ALL_CAPS".to_string()));
        assert!(is_shouting("ÜBER ALLES: JETZT KAUFEN!"));
        assert!(!is_shouting(
            "日本語の件名（サブジェクト）\u{3000}スパムメールではありません！"
        ));
    }

    #[test]
    fn exclamation_marks_fire_from_four() {
        assert!(subject("Incredible Pictures!!!!").contains(&"SUBJECT_EXCLAMATIONS".to_string()));
        assert!(
            !subject("The Cafe is back online!!!").contains(&"SUBJECT_EXCLAMATIONS".to_string())
        );
    }

    #[test]
    fn the_adv_label_fires() {
        assert!(
            subject("ADV: Lowest life insurance rates").contains(&"SUBJECT_ADV_TAG".to_string())
        );
        // Lower case "adv:" is ordinary prose ("re: adv: question").
        assert!(!has_adv_tag("[list] adv: offer"));
        assert!(has_adv_tag("Re: ADV : offer"));
        assert!(!has_adv_tag("ADVICE: read this"));
        assert!(!has_adv_tag("Our BADV: x"));
    }
}
