//! Hostile text in the mail the gateway writes for people (delivery reports,
//! quarantine digests, the sending-servers summary): a subject, an address or
//! a host name from someone else's mail is put on one line, without control or
//! bidirectional-override characters, and bounded, so it cannot forge lines or
//! reorder what the reader sees.

/// `s` on one line: control and bidirectional controls become spaces, runs of
/// spaces one, and at most `max` characters (then `…`).
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_mul(4)));
    let mut count = 0;
    let mut space = false;
    for c in s.chars() {
        let c = if c.is_control() || is_bidi_control(c) {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if space || out.is_empty() {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if count == max {
            out.push('…');
            break;
        }
        out.push(c);
        count += 1;
    }
    out.trim_end().to_string()
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn hostile_text_stays_on_one_bounded_line() {
        assert_eq!(one_line("  a\r\n\tb  \u{202E}c ", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("", 3), "");
    }
}
