//! portcullis-scan: the scanner. A raw message and what is known of its arrival go
//! in; a [`Verdict`] comes out: a total score, the named [`Symbol`]s that make it
//! up (each with a weight and a detail a person can read), a [`Category`] and the
//! [`Action`] the configured [`Thresholds`] give that score. The gateway calls it
//! between the end of DATA and the reply; `portcullis scan` calls it on files.
//!
//! Each local check is a small module under `checks/` that looks at the parsed
//! message and reports findings: the GTUBE test string (so that admins and tests
//! can drive every action on purpose), headers and structure, phrases, links,
//! attachments, admin rules and the statistical classifier. The network steps
//! run first, in the gateway, and join their findings to the local ones: sender
//! authentication (`auth`), the virus scanner (`clamd`) and the DNS block and
//! allow lists (`dnsbl`).
//!
//! Standards: RFC 5322 and RFC 2045–2049 (the message and its MIME parts, parsed by
//! `mail-parser`, every charset and transfer encoding decoded before text checks);
//! RFC 7208, 6376, 7489, 8617 and 8601 (`auth`); RFC 5782 (`dnsbl`).
//!
//! Security posture: every byte of the message is hostile. Parsing is bounded by the
//! message size the SMTP layer already enforced; checks search decoded text with
//! linear-time routines and never execute, open or follow anything in the message.
//! A message that cannot be parsed still gets a verdict from the raw bytes. DNS
//! answers are hostile too: each network step has a time budget, and a list's
//! error answers are never read as listings.

pub mod auth;
mod checks;
pub mod clamd;
pub mod config;
pub mod dnsbl;
pub mod envelope;
pub mod verdict;

pub use auth::{AuthReport, SealInput};
pub use config::{ScanConfig, TagConfig};
pub use envelope::Envelope;
pub use verdict::{Action, Category, Symbol, Thresholds, Verdict};

use portcullis_classifier::Model;
use std::borrow::Cow;
use std::sync::{Arc, RwLock};

/// Why a scanner could not be built or a message could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("scan rule {name}: {reason}")]
    BadRule { name: String, reason: String },
    #[error("the DNS resolver for authentication checks: {0}")]
    Dns(String),
    #[error("{0}")]
    Dnsbl(#[from] dnsbl::DnsblError),
    /// The virus scanner could not scan and the policy is to fail closed.
    #[error("{0}")]
    Antivirus(#[from] clamd::ClamdError),
}

/// A finding before weights are applied: the symbol and the kind of threat it
/// points to.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub name: Cow<'static, str>,
    pub default_score: f64,
    pub category: Category,
    pub detail: String,
}

impl Finding {
    pub fn new(
        name: &'static str,
        default_score: f64,
        category: Category,
        detail: impl Into<String>,
    ) -> Finding {
        Finding {
            name: Cow::Borrowed(name),
            default_score,
            category,
            detail: detail.into(),
        }
    }
}

/// What the virus scanner said about one message.
#[derive(Debug, Clone, Default)]
pub struct AntivirusReport {
    pub(crate) finding: Option<Finding>,
}

/// What the DNS lists said about one message (see [`Scanner::dnsbl`]).
#[derive(Debug, Clone, Default)]
pub struct DnsblReport {
    pub(crate) findings: Vec<Finding>,
}

/// What the network steps (DNS for authentication and lists, clamd) found, to
/// join the content checks in the verdict.
#[derive(Debug, Clone, Default)]
pub struct Lookups {
    pub auth: Option<AuthReport>,
    pub antivirus: Option<AntivirusReport>,
    pub dnsbl: Option<DnsblReport>,
}

/// The scanner. Cheap to share between sessions; the classifier model can be
/// replaced while it runs (after `portcullis train`).
#[derive(Debug, Default)]
pub struct Scanner {
    config: ScanConfig,
    rules: checks::CompiledRules,
    model: RwLock<Option<Arc<Model>>>,
    authenticator: Option<auth::Authenticator>,
    dnsbl: Option<dnsbl::Dnsbl>,
}

impl Scanner {
    pub fn new(config: ScanConfig) -> Result<Scanner, ScanError> {
        let rules = checks::CompiledRules::compile(&config.rules)?;
        config.dnsbl.validate()?;
        // Built-in patterns compile here (about 10 ms), not in the first SMTP session.
        checks::compile_builtin();
        Ok(Scanner {
            config,
            rules,
            model: RwLock::new(None),
            authenticator: None,
            dnsbl: None,
        })
    }

    /// Turns on SPF, DKIM, ARC and DMARC (when `[scan.auth] enabled`) and the
    /// DNS lists of `[scan.dnsbl]`, asking these DNS servers (the system's when
    /// empty).
    pub fn with_dns(mut self, servers: &[std::net::SocketAddr]) -> Result<Scanner, ScanError> {
        if self.config.auth.enabled {
            self.authenticator = Some(auth::Authenticator::new(servers).map_err(ScanError::Dns)?);
        }
        self.dnsbl = dnsbl::Dnsbl::new(servers, &self.config.dnsbl)?;
        Ok(self)
    }

    /// Asks the DNS lists about a message received from outside: its client's
    /// address and the domains it names. `None` when no list is configured or
    /// the lists do not apply: mail from a logged-in user or a trusted network
    /// is the organisation's own.
    pub async fn dnsbl(&self, raw: &[u8], envelope: &Envelope) -> Option<DnsblReport> {
        let lists = self.dnsbl.as_ref()?;
        if envelope.auth_user.is_some() || envelope.trusted {
            return None;
        }
        let lists_config = &self.config.dnsbl.lists;
        // Reading the domains parses the message: only when a list wants them.
        let domains = if lists_config
            .iter()
            .any(|l| l.kind == dnsbl::ListKind::Domain)
        {
            dnsbl::message_domains(raw, envelope, self.config.dnsbl.max_domains)
        } else {
            Vec::new()
        };
        Some(DnsblReport {
            findings: lists.check(envelope, &domains).await,
        })
    }

    /// Authenticates the sender of a message received from outside. `None` when
    /// the checks are off or do not apply: mail from a logged-in user is the
    /// organisation's own.
    pub async fn authenticate(&self, raw: &[u8], envelope: &Envelope) -> Option<AuthReport> {
        let authenticator = self.authenticator.as_ref()?;
        if envelope.auth_user.is_some() {
            return None;
        }
        let id = self
            .config
            .auth
            .authserv_id
            .as_deref()
            .unwrap_or("localhost");
        Some(auth::authenticate(authenticator, id, raw, envelope).await)
    }

    pub fn config(&self) -> &ScanConfig {
        &self.config
    }

    /// Uses this classifier model from now on (`None`: no classifier).
    pub fn set_model(&self, model: Option<Arc<Model>>) {
        // A poisoned lock only means a panic elsewhere mid-swap; the slot holds a
        // whole Arc either way.
        *self.model.write().unwrap_or_else(|e| e.into_inner()) = model;
    }

    /// Asks clamd about the message, when one is configured. `Ok(None)` when
    /// none is; an error only when clamd failed and `on_failure = "tempfail"`.
    pub async fn antivirus(&self, raw: &[u8]) -> Result<Option<AntivirusReport>, ScanError> {
        let Some(config) = &self.config.clamd else {
            return Ok(None);
        };
        let client = clamd::Clamd::new(config.clone());
        let finding = match client.scan(raw).await {
            Ok(clamd::ClamdVerdict::Clean) => None,
            Ok(clamd::ClamdVerdict::Infected(name)) => Some(Finding::new(
                "CLAMAV_VIRUS",
                100.0,
                Category::Malware,
                format!("ClamAV found {name}"),
            )),
            Err(e) if config.on_failure == clamd::OnFailure::Accept => Some(Finding::new(
                "CLAMAV_UNAVAILABLE",
                0.0,
                Category::Clean,
                format!("not scanned for viruses: {e}"),
            )),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(AntivirusReport { finding }))
    }

    /// Scans one raw RFC 5322 message that arrived with `envelope`, without
    /// sender authentication.
    pub fn scan(&self, raw: &[u8], envelope: &Envelope) -> Verdict {
        self.scan_with(raw, envelope, &Lookups::default())
    }

    /// Scans a message with what the network steps found (see
    /// [`Scanner::authenticate`] and [`Scanner::antivirus`]).
    pub fn scan_with(&self, raw: &[u8], envelope: &Envelope, lookups: &Lookups) -> Verdict {
        let mut network = Vec::new();
        if let Some(report) = &lookups.auth {
            network.extend(report.findings.iter().cloned());
        }
        if let Some(f) = lookups.antivirus.as_ref().and_then(|a| a.finding.as_ref()) {
            network.push(f.clone());
        }
        if let Some(report) = &lookups.dnsbl {
            network.extend(report.findings.iter().cloned());
        }
        self.judge(raw, envelope, network)
    }

    /// Judges a held message again with the current rules, weights and model.
    /// What the network said when it arrived is kept from `earlier` (sender
    /// authentication, the DNS lists and the virus scanner): DNS answers and
    /// the client's address belong to that moment, and mail clamd refused
    /// stays refused.
    pub fn rescan(&self, raw: &[u8], envelope: &Envelope, earlier: &Verdict) -> Verdict {
        const NETWORK: [&str; 8] = [
            "SPF_", "DKIM_", "DMARC_", "ARC_", "CLAMAV", "RCVD_IN_", "URIBL_", "DNSBL_",
        ];
        let carried = earlier
            .symbols
            .iter()
            .filter(|s| NETWORK.iter().any(|p| s.name.starts_with(p)))
            // An admin rule may share a prefix; it is judged again, not carried.
            .filter(|s| !self.config.rules.iter().any(|r| r.name == s.name))
            .map(|s| Finding {
                name: Cow::Owned(s.name.clone()),
                default_score: s.score,
                category: s.category,
                detail: s.detail.clone(),
            })
            .collect();
        self.judge(raw, envelope, carried)
    }

    fn judge(&self, raw: &[u8], envelope: &Envelope, network: Vec<Finding>) -> Verdict {
        let parsed = mail_parser::MessageParser::default().parse(raw);
        let view = checks::View {
            raw,
            parsed: parsed.as_ref(),
            envelope,
            config: &self.config,
        };
        let model = self.model.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut findings = network;
        if let Some(m) = parsed.as_ref() {
            findings.extend(auth::trusted_results(
                m,
                &self.config.auth.trusted_authserv_ids,
            ));
        }
        findings.extend(checks::run(&view, &self.rules, model.as_deref()));
        // Mail in our own domain from outside is a forgery unless the domain's
        // own policy vouches for it (a newsletter platform sending as us).
        if findings
            .iter()
            .any(|f| f.name == "DMARC_PASS" || f.name == "UPSTREAM_DMARC_PASS")
        {
            findings.retain(|f| f.name != "FROM_OWN_DOMAIN_UNAUTHENTICATED");
        }
        self.verdict(findings)
    }

    fn verdict(&self, findings: Vec<Finding>) -> Verdict {
        let mut symbols = Vec::with_capacity(findings.len());
        let mut score = 0.0;
        let mut worst: Option<(f64, Category)> = None;
        for f in findings {
            let weight = self
                .config
                .weights
                .get(f.name.as_ref())
                .copied()
                .unwrap_or(f.default_score);
            score += weight;
            if weight > 0.0 && worst.is_none_or(|(w, _)| weight > w) {
                worst = Some((weight, f.category));
            }
            symbols.push(Symbol {
                name: f.name.into_owned(),
                score: weight,
                detail: f.detail,
                category: f.category,
            });
        }
        let action = self.config.thresholds.action_for(score);
        let category = match (action, worst) {
            (Action::Deliver, _) | (_, None) => Category::Clean,
            (_, Some((_, c))) => c,
        };
        Verdict {
            score,
            symbols,
            category,
            action,
        }
    }
}

/// Where a URL's host stands on the `[scan.links]` lists (a domain covers its
/// subdomains; when both lists match, the longer entry wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    Allowed,
    /// Under this entry of the block list.
    Blocked {
        entry: String,
    },
    Unlisted,
}

/// What the link checks say about one URL on its own (see [`check_url`]).
#[derive(Debug, Clone)]
pub struct UrlCheck {
    /// The host as the browser goes to it (ASCII, lower case).
    pub host: String,
    pub listing: Listing,
    pub(crate) findings: Vec<Finding>,
}

impl UrlCheck {
    /// The per-URL link symbols that fire, with the configured weights
    /// (`LINK_BLOCKLISTED` is not among them: see [`UrlCheck::listing`]).
    pub fn symbols(&self, config: &ScanConfig) -> Vec<Symbol> {
        self.findings
            .iter()
            .map(|f| Symbol {
                name: f.name.to_string(),
                score: config
                    .weights
                    .get(f.name.as_ref())
                    .copied()
                    .unwrap_or(f.default_score),
                detail: f.detail.clone(),
                category: f.category,
            })
            .collect()
    }
}

/// Decodes the HTML character references of an attribute value (every
/// numeric one and the named ones that appear in URLs), as the link checks
/// read `href`s; other bytes, in any charset, stay as they are.
pub fn decode_html_references(value: &[u8]) -> Vec<u8> {
    checks::links::extract::decode_entities_bytes(value)
}

/// The attributes of an HTML start tag from `start` (just after its name) to
/// its `>`, as the link checks read them: `each((name start, name end), value
/// start, value end, value closed)` with byte offsets; returns where the tag
/// ends.
pub fn html_attribute_spans(
    b: &[u8],
    start: usize,
    each: impl FnMut((usize, usize), usize, usize, bool),
) -> usize {
    checks::links::extract::attribute_spans(b, start, each)
}

/// Where a URL written in text ends, as the link checks read it: sentence
/// punctuation after it, and closing brackets without an opening one inside
/// it, are not part of it.
pub fn trim_url_end(s: &str) -> &str {
    checks::links::extract::trim_url_end(s)
}

/// Judges one URL out of any message, for the secure links' click-time
/// check: the block and allow lists, and the link checks that look at a URL
/// alone (IP hosts, lookalikes of own domains and brands, deceptive IDN,
/// userinfo, escaped hosts, unusual ports, shorteners), as for a link in HTML.
/// Links to own domains and allow-listed ones yield no symbols. `None` when
/// the URL cannot be read as a web address.
pub fn check_url(config: &ScanConfig, url: &str) -> Option<UrlCheck> {
    checks::links::check_one(config, url)
}

/// The Message-ID of a raw message, without angle brackets, if it has one.
pub fn message_id(raw: &[u8]) -> Option<String> {
    mail_parser::MessageParser::default()
        .parse(raw)
        .and_then(|m| m.message_id().map(str::to_string))
}

/// The distinct URLs of a raw message (text, HTML `href`/`src` and
/// attachments), normalised as the link checks see them, in the order first
/// written: for previews of held mail and for link rewriting.
pub fn message_urls(raw: &[u8]) -> Vec<String> {
    let parsed = mail_parser::MessageParser::default().parse(raw);
    checks::links::normalised_urls(parsed.as_ref(), raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(raw: &[u8]) -> Verdict {
        Scanner::default().scan(raw, &Envelope::default())
    }

    const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

    #[test]
    fn a_rescan_keeps_what_the_network_said_and_judges_the_rest_again() {
        let symbol = |name: &str, score: f64| Symbol {
            name: name.into(),
            score,
            detail: "on arrival".into(),
            category: Category::Spam,
        };
        let earlier = Verdict {
            score: 20.0,
            symbols: vec![
                symbol("RCVD_IN_ZEN", 6.0),
                symbol("URIBL_DBL", 4.0),
                symbol("SPF_FAIL", 3.0),
                symbol("SUBJECT_ALL_CAPS", 7.0),
            ],
            category: Category::Spam,
            action: Action::Quarantine,
        };
        let v = Scanner::default().rescan(
            b"From: a@x.test\r\nSubject: hi\r\n\r\nhello\r\n",
            &Envelope::default(),
            &earlier,
        );
        let names: Vec<&str> = v.symbols.iter().map(|s| s.name.as_str()).collect();
        // The lists' and SPF's answers stay; the subject check no longer fires.
        assert_eq!(names, ["RCVD_IN_ZEN", "URIBL_DBL", "SPF_FAIL"]);
        assert_eq!(v.score, 13.0);

        // An admin rule named like a network symbol is judged again, not
        // carried: it is not counted twice, and no longer fires here.
        let with_rule = Scanner::new(ScanConfig {
            rules: vec![config::RuleConfig {
                name: "URIBL_DBL".into(),
                part: config::RulePart::Body,
                header: None,
                pattern: "never here".into(),
                score: 4.0,
                category: Category::Spam,
                detail: None,
            }],
            ..ScanConfig::default()
        })
        .expect("scanner");
        let v = with_rule.rescan(
            b"From: a@x.test\r\nSubject: hi\r\n\r\nhello\r\n",
            &Envelope::default(),
            &earlier,
        );
        let names: Vec<&str> = v.symbols.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["RCVD_IN_ZEN", "SPF_FAIL"]);
    }

    #[test]
    fn a_plain_message_is_delivered_clean() {
        let v = scan(b"From: a@x.test\r\nSubject: hi\r\n\r\nhello\r\n");
        assert_eq!(v.action, Action::Deliver);
        assert_eq!(v.category, Category::Clean);
        assert!(v.symbols.is_empty());
    }

    #[test]
    fn gtube_drives_a_reject_as_spam() {
        let raw = format!("From: a@x.test\r\nSubject: test\r\n\r\n{GTUBE}\r\n");
        let v = scan(raw.as_bytes());
        assert_eq!(v.score, 1000.0);
        assert_eq!(v.category, Category::Spam);
        assert_eq!(v.action, Action::Reject);
        assert_eq!(v.symbols[0].name, "GTUBE");
    }

    #[test]
    fn gtube_is_found_through_base64_and_quoted_printable() {
        // "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X" in base64.
        let b64 = "WEpTKkM0SkRCUUFETjEuTlNCTjMqMklETkVOKkdUVUJFLVNUQU5EQVJELUFOVEktVUJFLVRFU1QtRU1BSUwqQy4zNFg=";
        let raw = format!(
            "From: a@x.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
             Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
        );
        assert_eq!(scan(raw.as_bytes()).action, Action::Reject);
        let qp = GTUBE.replace('=', "=3D").replacen("GTUBE", "GT=\r\nUBE", 1);
        let raw = format!(
            "From: a@x.test\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{qp}\r\n"
        );
        assert_eq!(scan(raw.as_bytes()).action, Action::Reject);
    }

    #[test]
    fn weights_and_thresholds_come_from_configuration() {
        let raw = format!("Subject: x\r\n\r\n{GTUBE}\r\n");
        let mut config = ScanConfig::default();
        config.weights.insert("GTUBE".into(), 6.0);
        let v = Scanner::new(config.clone())
            .unwrap()
            .scan(raw.as_bytes(), &Envelope::default());
        assert_eq!((v.score, v.action), (6.0, Action::Tag));
        config.thresholds.tag = 7.0;
        let v = Scanner::new(config)
            .unwrap()
            .scan(raw.as_bytes(), &Envelope::default());
        assert_eq!((v.action, v.category), (Action::Deliver, Category::Clean));
    }

    #[test]
    fn garbage_still_gets_a_verdict() {
        let v = scan(&[0xff, 0xfe, 0x00, b'\n', b'\r']);
        assert_eq!(v.action, Action::Deliver);
    }
}
