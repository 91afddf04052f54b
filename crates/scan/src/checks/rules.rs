//! Admin rules (`[[scan.rules]]`): a regular expression over one header field or
//! the decoded text of the body, adding a named symbol with the admin's score.
//! Patterns are compiled once, by the `regex` crate, whose matching is linear in
//! the input: a hostile message cannot make a rule slow.

use super::View;
use crate::config::{RuleConfig, RulePart};
use crate::{Finding, ScanError};
use regex::Regex;

/// Compiled admin rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledRules {
    rules: Vec<(RuleConfig, Regex)>,
}

impl CompiledRules {
    pub fn compile(configs: &[RuleConfig]) -> Result<CompiledRules, ScanError> {
        let mut rules = Vec::with_capacity(configs.len());
        for c in configs {
            let valid_name = !c.name.is_empty()
                && c.name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !valid_name {
                return Err(ScanError::BadRule {
                    name: c.name.clone(),
                    reason: "names use upper case letters, digits and _".into(),
                });
            }
            if c.part == RulePart::Header && c.header.is_none() {
                return Err(ScanError::BadRule {
                    name: c.name.clone(),
                    reason: "a header rule names its header with `header = \"...\"`".into(),
                });
            }
            let re = regex::RegexBuilder::new(&c.pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| ScanError::BadRule {
                    name: c.name.clone(),
                    reason: e.to_string(),
                })?;
            rules.push((c.clone(), re));
        }
        Ok(CompiledRules { rules })
    }

    pub fn check(&self, view: &View<'_>) -> Vec<Finding> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        let texts = view.texts();
        let mut out = Vec::new();
        for (c, re) in &self.rules {
            let hit = match c.part {
                RulePart::Body => texts.iter().any(|t| re.is_match(t)),
                RulePart::Header => {
                    let name = c.header.as_deref().unwrap_or_default();
                    view.parsed.is_some_and(|m| {
                        m.header_values(name)
                            .any(|v| header_text(v).is_some_and(|t| re.is_match(&t)))
                    })
                }
            };
            if hit {
                let detail = c.detail.clone().unwrap_or_else(|| match c.part {
                    RulePart::Body => format!("the body matches /{}/", c.pattern),
                    RulePart::Header => format!(
                        "the {} header matches /{}/",
                        c.header.as_deref().unwrap_or_default(),
                        c.pattern
                    ),
                });
                out.push(Finding {
                    name: c.name.clone().into(),
                    default_score: c.score,
                    category: c.category,
                    detail,
                });
            }
        }
        out
    }
}

/// A header value as text: decoded words decoded, addresses as `Name <addr>`.
fn header_text(v: &mail_parser::HeaderValue<'_>) -> Option<String> {
    use mail_parser::HeaderValue;
    match v {
        HeaderValue::Text(t) => Some(t.to_string()),
        HeaderValue::TextList(l) => Some(l.join(", ")),
        HeaderValue::Address(a) => Some(
            a.iter()
                .map(|a| match (&a.name, &a.address) {
                    (Some(n), Some(ad)) => format!("{n} <{ad}>"),
                    (None, Some(ad)) => ad.to_string(),
                    (Some(n), None) => n.to_string(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        HeaderValue::DateTime(d) => Some(d.to_rfc822()),
        HeaderValue::ContentType(ct) => Some(match &ct.c_subtype {
            Some(s) => format!("{}/{}", ct.c_type, s),
            None => ct.c_type.to_string(),
        }),
        _ => None,
    }
}
