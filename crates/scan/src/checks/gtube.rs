//! GTUBE, the Generic Test for Unsolicited Bulk Email: a fixed string that marks a
//! message as spam on purpose, so that admins and tests can drive every action.
//! Found in the raw bytes or in any decoded text part (base64, quoted-printable).

use super::View;
use crate::{Category, Finding};

const GTUBE: &[u8] = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

pub(crate) fn check(view: &View<'_>) -> Option<Finding> {
    let found = memchr::memmem::find(view.raw, GTUBE).is_some()
        || view
            .texts()
            .iter()
            .any(|t| memchr::memmem::find(t.as_bytes(), GTUBE).is_some());
    found.then(|| {
        Finding::new(
            "GTUBE",
            1000.0,
            Category::Spam,
            "the GTUBE anti-spam test string is in the message",
        )
    })
}
