//! The checks. Each looks at a [`View`] of the message and returns findings; they
//! run in a fixed order so that a verdict is reproducible.

mod gtube;

use crate::Finding;
use mail_parser::Message;

/// What the checks see: the raw bytes and, when it parsed, the MIME structure.
pub(crate) struct View<'a> {
    pub raw: &'a [u8],
    pub parsed: Option<&'a Message<'a>>,
}

impl<'a> View<'a> {
    pub fn new(raw: &'a [u8], parsed: Option<&'a Message<'a>>) -> View<'a> {
        View { raw, parsed }
    }

    /// Every text part decoded to UTF-8 (HTML parts as text), in order.
    pub fn texts(&self) -> Vec<std::borrow::Cow<'a, str>> {
        let Some(m) = self.parsed else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for i in 0..m.text_body.len() {
            if let Some(t) = m.body_text(i) {
                out.push(t);
            }
        }
        for i in 0..m.html_body.len() {
            if let Some(t) = m.body_html(i) {
                out.push(t);
            }
        }
        out
    }
}

pub(crate) fn run(view: &View<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(gtube::check(view));
    findings
}
