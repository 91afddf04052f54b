//! Sender authentication: SPF (RFC 7208) for the MAIL FROM identity (the HELO
//! identity for the null sender), DKIM (RFC 6376) signatures, ARC (RFC 8617)
//! chains and DMARC (RFC 7489) alignment and policy, all through `mail-auth`
//! with the configured DNS servers. The outcome is both symbols for the verdict
//! and the RFC 8601 `Authentication-Results` field the gateway adds.
//!
//! DMARC policy is honoured as the domain owner asked: a failing message from a
//! `p=reject` domain scores enough to be rejected, `p=quarantine` enough to be
//! held (both weights can be overridden).
//!
//! `Authentication-Results` fields already in a message are hostile claims. Those
//! naming our own authserv-id are forged and removed by the gateway; those of
//! hosts configured as trusted (an upstream relay of the organisation's) are read
//! here for their DMARC result; all others are ignored.
//!
//! Security posture: every DNS answer is hostile and every lookup can hang, so the
//! whole step has a time limit; mail-auth bounds SPF's lookups (RFC 7208 section
//! 4.6.4) and the resolver's timeouts are short. A DNS failure is a temporary
//! error result, never a pass.

use crate::{Category, Envelope, Finding};
use mail_auth::common::verify::VerifySignature;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, MessageAuthenticator,
    SpfResult,
};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How long the whole authentication step may take before it gives up.
const TIME_LIMIT: Duration = Duration::from_secs(15);

/// A resolver for the authentication lookups.
pub struct Authenticator {
    inner: MessageAuthenticator,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

impl Authenticator {
    /// Asks these DNS servers, or the system's when the list is empty.
    pub fn new(servers: &[SocketAddr]) -> Result<Authenticator, String> {
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_secs(3);
        opts.attempts = 2;
        let inner = if servers.is_empty() {
            MessageAuthenticator::new_system_conf()
        } else {
            let name_servers = servers
                .iter()
                .map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                })
                .collect();
            MessageAuthenticator::new(ResolverConfig::from_name_servers(name_servers), opts)
        };
        inner
            .map(|inner| Authenticator { inner })
            .map_err(|e| e.to_string())
    }
}

/// The outcome of authenticating one message.
#[derive(Debug, Clone, Default)]
pub struct AuthReport {
    /// The whole `Authentication-Results:` field, CRLF-terminated.
    pub header: String,
    pub(crate) findings: Vec<Finding>,
    /// What an ARC seal (RFC 8617) of this message needs later, after the
    /// gateway has changed it; `None` when the checks timed out or the
    /// message could not be parsed (such a message is not sealed).
    pub seal: Option<SealInput>,
    /// The domains that authenticated this message: the MAIL FROM domain
    /// when SPF passed, and the `d=` of every DKIM signature that verified,
    /// lower-cased. Who the sending server speaks for, for the sender-server
    /// checks.
    pub passed: Vec<String>,
}

/// What the gateway saw of a message's authentication, kept for sealing it
/// with ARC after changing it: the results that go into the seal's
/// `ARC-Authentication-Results` and the validation of the ARC chain the
/// message arrived with (the seal's `cv=`). It borrows nothing from the
/// message, so it can outlive the received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealInput {
    results: AuthenticationResults<'static>,
    chain: DkimResult,
}

impl SealInput {
    /// The results and the ARC chain validation of the message as received
    /// (`DkimResult::None` when it carried no ARC set). Use
    /// [`interned_authserv_id`] to give `results` its `'static` authserv-id.
    pub fn new(results: AuthenticationResults<'static>, chain: DkimResult) -> SealInput {
        SealInput { results, chain }
    }

    /// The authentication results, as in our `Authentication-Results` field.
    pub fn results(&self) -> &AuthenticationResults<'static> {
        &self.results
    }

    /// How the ARC chain the message arrived with validated: `Pass`, a
    /// failure, or `None` when it had no ARC set.
    pub fn chain(&self) -> &DkimResult {
        &self.chain
    }
}

/// The authserv-id as a `&'static str`, leaked once per distinct id.
///
/// `mail_auth::AuthenticationResults` borrows its authserv-id (`&'x str`), and
/// a [`SealInput`] must outlive the call that made it (it travels with the
/// message to the sealing step), so the id must be `'static`. The id comes
/// from configuration, so a process sees one or two distinct ids (one more
/// per reload that changes it): leaking each once, deduplicated here, costs a
/// few bytes for the life of the process, never one leak per message.
pub fn interned_authserv_id(id: &str) -> &'static str {
    static IDS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    // A poisoned lock only means a panic elsewhere mid-insert; the set holds
    // whole entries either way.
    let mut ids = IDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(known) = ids.get(id) {
        return known;
    }
    let leaked: &'static str = Box::leak(id.to_owned().into_boxed_str());
    ids.insert(leaked);
    leaked
}

/// Runs SPF, DKIM, ARC and DMARC for a message that arrived with `envelope`.
pub async fn authenticate(
    auth: &Authenticator,
    authserv_id: &str,
    raw: &[u8],
    envelope: &Envelope,
) -> AuthReport {
    match tokio::time::timeout(TIME_LIMIT, run(auth, authserv_id, raw, envelope)).await {
        Ok(report) => report,
        Err(_) => AuthReport {
            header: format!(
                "Authentication-Results: {authserv_id}; none (authentication timed out)\r\n"
            ),
            findings: vec![Finding::new(
                "AUTH_TIMEOUT",
                0.0,
                Category::Clean,
                format!(
                    "SPF, DKIM and DMARC lookups took longer than {}s",
                    TIME_LIMIT.as_secs()
                ),
            )],
            seal: None,
            passed: Vec::new(),
        },
    }
}

async fn run(
    auth: &Authenticator,
    authserv_id: &str,
    raw: &[u8],
    envelope: &Envelope,
) -> AuthReport {
    let a = &auth.inner;
    let mut findings = Vec::new();
    let Some(message) = AuthenticatedMessage::parse(raw) else {
        return AuthReport {
            header: format!("Authentication-Results: {authserv_id}; none\r\n"),
            findings,
            seal: None,
            passed: Vec::new(),
        };
    };
    let helo = envelope.helo.as_deref().unwrap_or("unknown");
    let mail_from = envelope.mail_from.as_deref().unwrap_or("");
    let mail_from_domain = mail_from.rsplit_once('@').map(|(_, d)| d).unwrap_or(helo);
    let mut results = AuthenticationResults::new(interned_authserv_id(authserv_id));

    let dkim = a.verify_dkim(&message).await;
    results = results.with_dkim_results(&dkim, message.from());
    let mut passed: Vec<String> = dkim
        .iter()
        .filter(|d| d.result() == &DkimResult::Pass)
        .filter_map(|d| d.signature().map(|s| s.domain().to_ascii_lowercase()))
        .collect();
    if dkim.iter().any(|d| d.result() == &DkimResult::Pass) {
        let domains: Vec<&str> = dkim
            .iter()
            .filter(|d| d.result() == &DkimResult::Pass)
            .filter_map(|d| d.signature().map(|s| s.domain()))
            .collect();
        findings.push(Finding::new(
            "DKIM_PASS",
            -0.2,
            Category::Clean,
            format!("valid DKIM signature by {}", domains.join(", ")),
        ));
    } else if let Some(failed) = dkim
        .iter()
        .find(|d| matches!(d.result(), DkimResult::Fail(_) | DkimResult::PermError(_)))
    {
        let reason = match failed.result() {
            DkimResult::Fail(e) | DkimResult::PermError(e) => e.to_string(),
            _ => String::new(),
        };
        findings.push(Finding::new(
            "DKIM_FAIL",
            1.0,
            Category::Spam,
            format!(
                "DKIM signature{} does not verify: {reason}",
                failed
                    .signature()
                    .map(|s| format!(" by {}", s.domain()))
                    .unwrap_or_default()
            ),
        ));
    }

    let arc = a.verify_arc(&message).await;
    if let Some(ip) = envelope.client_ip {
        if !matches!(arc.result(), DkimResult::None) {
            results = results.with_arc_result(&arc, ip);
        }
    }
    match arc.result() {
        DkimResult::Pass => findings.push(Finding::new(
            "ARC_PASS",
            -0.1,
            Category::Clean,
            "the ARC chain of the forwarding hosts verifies",
        )),
        DkimResult::Fail(e) | DkimResult::PermError(e) => findings.push(Finding::new(
            "ARC_FAIL",
            0.5,
            Category::Spam,
            format!("the ARC chain does not verify: {e}"),
        )),
        _ => {}
    }

    let spf = match envelope.client_ip {
        Some(ip) => {
            let spf = if mail_from.is_empty() {
                a.verify_spf(mail_auth::spf::verify::SpfParameters::verify_ehlo(
                    ip,
                    helo,
                    authserv_id,
                ))
                .await
            } else {
                a.verify_spf(mail_auth::spf::verify::SpfParameters::verify_mail_from(
                    ip,
                    helo,
                    authserv_id,
                    mail_from,
                ))
                .await
            };
            results = if mail_from.is_empty() {
                results.with_spf_ehlo_result(&spf, ip, helo)
            } else {
                results.with_spf_mailfrom_result(&spf, ip, mail_from, helo)
            };
            let who = format!("{ip} for {mail_from_domain}");
            let finding = match spf.result() {
                SpfResult::Pass => Some((
                    "SPF_PASS",
                    -0.2,
                    Category::Clean,
                    format!("{who}: SPF pass"),
                )),
                SpfResult::Fail => Some((
                    "SPF_FAIL",
                    3.0,
                    Category::Phishing,
                    format!("{who}: SPF fail, the domain does not allow this sender"),
                )),
                SpfResult::SoftFail => Some((
                    "SPF_SOFTFAIL",
                    1.0,
                    Category::Spam,
                    format!("{who}: SPF softfail"),
                )),
                SpfResult::PermError => Some((
                    "SPF_PERMERROR",
                    0.5,
                    Category::Spam,
                    format!("{who}: the SPF record is broken"),
                )),
                SpfResult::TempError => Some((
                    "SPF_TEMPERROR",
                    0.0,
                    Category::Clean,
                    format!("{who}: SPF lookup failed for now"),
                )),
                SpfResult::Neutral | SpfResult::None => None,
            };
            if let Some((name, score, category, detail)) = finding {
                findings.push(Finding::new(name, score, category, detail));
            }
            Some(spf)
        }
        None => None,
    };

    if let Some(spf) = &spf {
        let dmarc = a
            .verify_dmarc(mail_auth::dmarc::verify::DmarcParameters::new(
                &message,
                &dkim,
                mail_from_domain,
                spf,
            ))
            .await;
        // The overall result: pass when SPF or DKIM aligns, fail when the domain
        // publishes a record and neither does (RFC 7489 section 6.6.2).
        let overall = dmarc.result();
        if overall != DmarcResult::None {
            results = results.with_dmarc_result(&dmarc);
        }
        let passed = overall == DmarcResult::Pass;
        let failed = matches!(overall, DmarcResult::Fail(_));
        let domain = dmarc.domain().to_string();
        if passed {
            findings.push(Finding::new(
                "DMARC_PASS",
                -0.5,
                Category::Clean,
                format!("{domain}: DMARC pass (aligned SPF or DKIM)"),
            ));
        } else if failed {
            use mail_auth::dmarc::Policy;
            let (name, score, what) = match dmarc.policy() {
                Policy::Reject => ("DMARC_POLICY_REJECT", 15.0, "asks receivers to reject it"),
                Policy::Quarantine => (
                    "DMARC_POLICY_QUARANTINE",
                    8.0,
                    "asks receivers to quarantine it",
                ),
                _ => ("DMARC_FAIL", 1.5, "publishes p=none"),
            };
            findings.push(Finding::new(
                name,
                score,
                Category::Phishing,
                format!(
                    "the From domain {domain} fails DMARC (neither SPF nor DKIM aligned) and {what}"
                ),
            ));
        }
    }

    if spf.as_ref().is_some_and(|s| s.result() == SpfResult::Pass) {
        passed.push(mail_from_domain.to_ascii_lowercase());
    }
    let header = format!("Authentication-Results: {results}\r\n");
    AuthReport {
        header,
        findings,
        passed,
        seal: Some(SealInput {
            results,
            chain: arc.result().clone(),
        }),
    }
}

/// The authserv-id of an `Authentication-Results` field value (RFC 8601
/// section 2.2): its first token, before any `;` or comment.
pub fn authserv_id(value: &str) -> &str {
    let v = value.trim_start();
    let end = v
        .find(|c: char| c == ';' || c == '(' || c.is_whitespace())
        .unwrap_or(v.len());
    &v[..end]
}

/// Results written by trusted upstream hosts: their DMARC verdict counts as if
/// ours (an organisation's own relay in front of the gateway hides the client).
pub(crate) fn trusted_results(
    message: &mail_parser::Message<'_>,
    trusted: &[String],
) -> Vec<Finding> {
    if trusted.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for h in message.headers() {
        if !h
            .name
            .as_str()
            .eq_ignore_ascii_case("Authentication-Results")
        {
            continue;
        }
        let Some(raw) = message
            .raw_message()
            .get(h.offset_start as usize..h.offset_end as usize)
        else {
            continue;
        };
        let value = String::from_utf8_lossy(raw);
        let id = authserv_id(&value);
        if !trusted.iter().any(|t| t.eq_ignore_ascii_case(id)) {
            continue;
        }
        let lower = value.to_ascii_lowercase();
        if lower.contains("dmarc=fail") {
            out.push(Finding::new(
                "UPSTREAM_DMARC_FAIL",
                3.0,
                Category::Phishing,
                format!("the trusted host {id} found that the message fails DMARC"),
            ));
        } else if lower.contains("dmarc=pass") {
            out.push(Finding::new(
                "UPSTREAM_DMARC_PASS",
                -0.5,
                Category::Clean,
                format!("the trusted host {id} found that the message passes DMARC"),
            ));
        }
        // The nearest trusted host's results are the ones that count.
        break;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authserv_id_is_leaked_once() {
        let a = interned_authserv_id("intern-test.gw.test");
        let b = interned_authserv_id(&String::from("intern-test.gw.test"));
        assert!(std::ptr::eq(a, b));
        assert_eq!(a, "intern-test.gw.test");
        assert!(!std::ptr::eq(a, interned_authserv_id("other.gw.test")));
    }

    #[tokio::test]
    async fn the_report_keeps_what_a_seal_needs() {
        // No client address, no signatures, no ARC: nothing is looked up.
        let auth = Authenticator::new(&["127.0.0.1:9".parse().unwrap()]).unwrap();
        let raw = b"From: a@x.test\r\nSubject: hi\r\n\r\nhello\r\n";
        let report = authenticate(&auth, "gw.test", raw, &Envelope::default()).await;
        let seal = report.seal.expect("a parsed message can be sealed");
        assert_eq!(seal.chain(), &DkimResult::None);
        assert!(seal.results().to_string().starts_with("gw.test"));
        assert_eq!(
            report.header,
            format!("Authentication-Results: {}\r\n", seal.results())
        );
        let report = authenticate(&auth, "gw.test", b"", &Envelope::default()).await;
        assert!(report.seal.is_none());
    }

    #[test]
    fn authserv_id_is_the_first_token() {
        assert_eq!(authserv_id(" gw.test; spf=pass"), "gw.test");
        assert_eq!(authserv_id("\r\n\tgw.test (comment); none"), "gw.test");
        assert_eq!(authserv_id("gw.test"), "gw.test");
    }

    #[test]
    fn only_trusted_hosts_results_count() {
        let raw = b"Authentication-Results: evil.test; dmarc=pass\r\nAuthentication-Results: relay.corp.test;\r\n dmarc=fail header.from=x.test\r\nFrom: a@x.test\r\n\r\nhi\r\n";
        let m = mail_parser::MessageParser::default()
            .parse(&raw[..])
            .unwrap();
        let f = trusted_results(&m, &["relay.corp.test".into()]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name, "UPSTREAM_DMARC_FAIL");
        assert!(trusted_results(&m, &[]).is_empty());
    }
}
