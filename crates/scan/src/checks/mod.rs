//! The checks. Each looks at a [`View`] of the message and returns findings; they
//! run in a fixed order so that a verdict is reproducible.

mod attachments;
mod bayes;
mod gtube;
mod headers;
pub(crate) mod links;
mod phrases;
mod rules;

pub(crate) use rules::CompiledRules;

use crate::{Envelope, Finding, ScanConfig};
use mail_parser::Message;
use portcullis_classifier::Model;

/// What the checks see: the raw bytes, the MIME structure when it parsed, the
/// envelope and the configuration.
pub(crate) struct View<'a> {
    pub raw: &'a [u8],
    pub parsed: Option<&'a Message<'a>>,
    pub envelope: &'a Envelope,
    pub config: &'a ScanConfig,
}

impl<'a> View<'a> {
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

    /// When the message was received, in seconds since the Unix epoch: the
    /// envelope's time in the gateway, else the date of the newest (topmost)
    /// Received header, so that archived mail scans as it did when it arrived.
    /// Time-based checks compare with this, never with the wall clock.
    pub fn received_at(&self) -> Option<i64> {
        if let Some(t) = self.envelope.received_at {
            return Some(t);
        }
        let m = self.parsed?;
        m.headers()
            .iter()
            .filter(|h| h.name.as_str().eq_ignore_ascii_case("Received"))
            .find_map(|h| {
                let raw = m
                    .raw_message()
                    .get(h.offset_start as usize..h.offset_end as usize)?;
                let text = std::str::from_utf8(raw).ok()?;
                let date = text.rsplit_once(';')?.1.trim();
                // The strict parser: a lenient one misreads some old forms by weeks.
                headers::dates::parse(date).ok()
            })
    }
}

/// Compiles the built-in checks' patterns now rather than at first use.
pub(crate) fn compile_builtin() {
    phrases::compile();
}

/// The content checks, in their fixed order.
pub(crate) fn run(view: &View<'_>, rules: &CompiledRules, model: Option<&Model>) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(gtube::check(view));
    findings.extend(headers::check(view));
    findings.extend(phrases::check(view));
    findings.extend(links::check(view));
    findings.extend(attachments::check(view));
    findings.extend(rules.check(view));
    if let Some(model) = model {
        findings.extend(bayes::check(view, model));
    }
    findings
}
