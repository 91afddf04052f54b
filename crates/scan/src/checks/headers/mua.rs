//! Mail programs that are not what they claim. Outlook Express (Windows, 5.x
//! and 6.x) always wrote its own Message-ID of one fixed form; a message whose
//! X-Mailer names it but whose Message-ID a relay had to add (or that has none)
//! came from a bulk tool wearing its name. Hotmail's web mail, which also
//! signed as Outlook Express, is left out.
//!
//! Standards: RFC 5322 section 3.6.4 (Message-ID); X-Mailer is a common
//! non-standard field.
//!
//! Hostile input: both values are the sender's, bounded by
//! [`super::MAX_VALUE`], and compared by prefix and a fixed-length scan.

use super::{shown, unfold, Head};
use crate::{Category, Finding};

pub(super) fn check(head: &Head<'_>, out: &mut Vec<Finding>) {
    let Some(raw) = head.x_mailer else {
        return;
    };
    let mailer = unfold(raw);
    if !(mailer.starts_with("Microsoft Outlook Express 5.")
        || mailer.starts_with("Microsoft Outlook Express 6."))
    {
        return;
    }
    let id = head.message_id.map(unfold).unwrap_or_default();
    let lower = id.to_ascii_lowercase();
    if lower.ends_with("@hotmail.com>") || lower.ends_with("@msn.com>") || is_oe_id(&id) {
        return;
    }
    out.push(Finding::new(
        "FORGED_MUA_OUTLOOK_EXPRESS",
        1.5,
        Category::Spam,
        format!(
            "X-Mailer says \"{}\" but the Message-ID \"{}\" is not one it writes",
            shown(&mailer),
            shown(&id)
        ),
    ));
}

/// Outlook Express's form: `<` 12 hex `$` 8 hex `$` 8 hex `@`.
fn is_oe_id(id: &str) -> bool {
    let b = id.trim().as_bytes();
    let hex = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|s| s.iter().all(u8::is_ascii_hexdigit))
    };
    b.first() == Some(&b'<')
        && hex(1..13)
        && b.get(13) == Some(&b'$')
        && hex(14..22)
        && b.get(22) == Some(&b'$')
        && hex(23..31)
        && b.get(31) == Some(&b'@')
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn oe(id: &str) -> String {
        with("Message-ID:", &format!("Message-ID: {id}")).replacen(
            "MIME-Version:",
            "X-Mailer: Microsoft Outlook Express 6.00.2600.0000\r\nMIME-Version:",
            1,
        )
    }

    #[test]
    fn outlook_express_with_a_relays_message_id_fires() {
        let f = run(&oe("<200208221955.UAA06531@webnote.example>"));
        let hit = f
            .iter()
            .find(|f| f.name == "FORGED_MUA_OUTLOOK_EXPRESS")
            .unwrap();
        assert!(hit.detail.contains("UAA06531"), "{}", hit.detail);
    }

    #[test]
    fn real_outlook_express_and_hotmail_do_not_fire() {
        assert!(is_oe_id("<001d01c24a3e$5f2e0a00$0200a8c0@JMHALL>"));
        assert!(!is_oe_id("<001d01c24a3e$5f2e0a00$0200a8c@JMHALL>"));
        assert!(!fires(
            &oe("<001d01c24a3e$5f2e0a00$0200a8c0@JMHALL>"),
            "FORGED_MUA_OUTLOOK_EXPRESS"
        ));
        assert!(!fires(
            &oe("<DAV32l8aii08N8yxdZj00009342@hotmail.com>"),
            "FORGED_MUA_OUTLOOK_EXPRESS"
        ));
        // Other mail programs write what they like.
        let raw = CLEAN.replacen(
            "MIME-Version:",
            "X-Mailer: Microsoft Outlook Express Macintosh Edition - 4.5 (0410)\r\nMIME-Version:",
            1,
        );
        assert!(!fires(&raw, "FORGED_MUA_OUTLOOK_EXPRESS"));
    }
}
