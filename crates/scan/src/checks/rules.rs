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

#[cfg(test)]
mod tests {
    use crate::config::{RuleConfig, RulePart};
    use crate::{Category, Envelope, ScanConfig, ScanError, Scanner};

    fn rule(name: &str, part: RulePart, header: Option<&str>, pattern: &str) -> RuleConfig {
        RuleConfig {
            name: name.into(),
            part,
            header: header.map(str::to_string),
            pattern: pattern.into(),
            score: 6.0,
            category: Category::Phishing,
            detail: None,
        }
    }

    fn scanner(rules: Vec<RuleConfig>) -> Result<Scanner, ScanError> {
        Scanner::new(ScanConfig {
            rules,
            ..ScanConfig::default()
        })
    }

    const MSG: &[u8] =
        b"From: Accounts <ap@vendor.test>\r\nSubject: =?utf-8?q?Overdue_invoice?=\r\n\
        Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        UGxlYXNlIHdpcmUgdGhlIHBheW1lbnQgdG9kYXku\r\n";

    #[test]
    fn header_and_body_rules_match_decoded_text() {
        let s = scanner(vec![
            rule(
                "OVERDUE",
                RulePart::Header,
                Some("subject"),
                "(?i)overdue invoice",
            ),
            // The body is base64 for "Please wire the payment today."
            rule("WIRE_REQUEST", RulePart::Body, None, r"wire the payment"),
            rule("NOT_THERE", RulePart::Body, None, "gift cards"),
        ])
        .unwrap();
        let v = s.scan(MSG, &Envelope::default());
        let names: Vec<&str> = v.symbols.iter().map(|s| s.name.as_str()).collect();
        assert!(
            names.contains(&"OVERDUE") && names.contains(&"WIRE_REQUEST"),
            "{names:?}"
        );
        assert!(!names.contains(&"NOT_THERE"));
        assert_eq!(v.category, Category::Phishing);
        let detail = &v
            .symbols
            .iter()
            .find(|s| s.name == "OVERDUE")
            .unwrap()
            .detail;
        assert!(
            detail.contains("Subject") || detail.contains("subject"),
            "{detail}"
        );
    }

    #[test]
    fn bad_rules_are_configuration_errors() {
        let bad_name = scanner(vec![rule("lower", RulePart::Body, None, "x")]);
        assert!(matches!(bad_name, Err(ScanError::BadRule { .. })));
        let no_header = scanner(vec![rule("NO_HEADER", RulePart::Header, None, "x")]);
        assert!(matches!(no_header, Err(ScanError::BadRule { .. })));
        let bad_regex = scanner(vec![rule("BAD_RE", RulePart::Body, None, "(unclosed")]);
        assert!(matches!(bad_regex, Err(ScanError::BadRule { .. })));
    }
}
