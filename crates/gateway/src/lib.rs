//! portcullis-gateway: the path of one message. SMTP sessions call this handler
//! for each recipient and each complete message; it decides relay permission,
//! checks logins, stamps the Received header, scans the message (the verdict
//! then adjusted by the recipients' own sender rules, `sender_rules`), judges
//! the sending server's software (`sending_servers`: out-of-date servers are
//! throttled or blocked on a schedule), and refuses it in the session, holds
//! it in the quarantine, or marks and queues it; it records the trace and
//! chooses the reply.
//!
//! ```text
//! RCPT  -> accepted domain? trusted network? authenticated? -> 250 / 550 5.7.1
//! DATA  -> Received header -> scan -> sender rules -> sending server -> 451/550 4.7.230 (out of date)
//!                                                                     | 550 5.7.1 (reject)
//!                                                                     | quarantine (fsync) -> 250 id
//!                                                                     | marks -> links -> queue (fsync) -> 250 id
//! ```
//!
//! `links` rewrites inbound mail's links into secure links and adds an ARC
//! set after the change (see [`links`]).
//!
//! Standards: RFC 5321 (relay rules, section 3.6 and 7.1; Received, 4.4), RFC 3848
//! (ESMTPS/ESMTPA in Received), RFC 4954 (AUTH outcomes).
//!
//! Security posture: no open relay: a client that is neither in a trusted network
//! nor authenticated reaches only accepted domains. Passwords are checked against
//! argon2 hashes on a blocking thread, never logged; failed logins are counted per
//! client address and lock that address out for a while. Header values copied into
//! the trace are unfolded, stripped of control characters and bounded.

pub mod headers;
pub mod links;
pub mod marks;
mod sender_rules;
pub mod sending_servers;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use ipnet::IpNet;
use portcullis_quarantine::{scanned_event, Held, Quarantine};
use portcullis_queue::Queue;
use portcullis_scan::{Action, AuthReport, Scanner, Verdict};
use portcullis_smtp::session::AuthOutcome;
use portcullis_smtp::{Envelope, Handler, Recipient, Reply, SessionInfo};
use portcullis_store::{EventKind, Store};
use prometheus::{register_histogram, register_int_counter_vec, Histogram, IntCounterVec};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Who may send what, and who may log in.
#[derive(Debug, Clone)]
pub struct Policy {
    pub hostname: String,
    /// Accepted domains, lower case. Mail to them is accepted from anyone.
    pub domains: HashSet<String>,
    /// Accept every domain (the embedded default, for loopback-only use).
    pub accept_all_domains: bool,
    /// Clients here may relay to any domain without AUTH.
    pub trusted_networks: Vec<IpNet>,
    /// Submission users: login name to argon2 PHC hash.
    pub users: HashMap<String, String>,
    /// Failed logins from one address before it is locked out.
    pub max_auth_failures: u32,
    pub auth_lockout: Duration,
    /// Retention of held mail.
    pub quarantine: portcullis_quarantine::QuarantineConfig,
}

impl Policy {
    /// A client in a trusted network (an IPv4-mapped address as IPv4).
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        self.trusted_networks.iter().any(|n| n.contains(&ip))
    }

    /// An address in one of the accepted domains.
    pub fn accepts_domain(&self, address: &str) -> bool {
        if self.accept_all_domains {
            return true;
        }
        let domain = portcullis_queue::route::domain_of(address);
        self.domains.contains(&domain)
    }
}

struct Metrics {
    messages: IntCounterVec,
    data_seconds: Histogram,
    scan_seconds: Histogram,
    verdicts: IntCounterVec,
    dnsbl_problems: IntCounterVec,
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| Metrics {
        messages: register_int_counter_vec!(
            "portcullis_smtp_messages_total",
            "Messages and recipients refused or accepted, by result and reason",
            &["result", "reason"]
        )
        .expect("metric registers once"),
        data_seconds: register_histogram!(
            "portcullis_smtp_data_reply_seconds",
            "Time from the end of DATA to the reply (storage included)",
            vec![
                0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1,
                0.25, 0.5, 1.0
            ]
        )
        .expect("metric registers once"),
        scan_seconds: register_histogram!(
            "portcullis_scan_seconds",
            "Time to scan one message in the SMTP session",
            vec![0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0]
        )
        .expect("metric registers once"),
        verdicts: register_int_counter_vec!(
            "portcullis_scan_verdicts_total",
            "Scanned messages by the action and category of their verdict",
            &["action", "category"]
        )
        .expect("metric registers once"),
        dnsbl_problems: register_int_counter_vec!(
            "portcullis_dnsbl_problems_total",
            "Messages for which a DNS list answered an error form (error) or did not answer (timeout); neither is counted as a listing",
            &["problem"]
        )
        .expect("metric registers once"),
    })
}

/// Counts and logs a DNS list that answered an error or nothing. A list that
/// refuses the resolver does so for every message: the log says it at most
/// once a minute, the metric counts every message.
fn note_dnsbl_problems(verdict: &Verdict) {
    static LAST_LOGGED: Mutex<Option<Instant>> = Mutex::new(None);
    for symbol in &verdict.symbols {
        let problem = match symbol.name.as_str() {
            "DNSBL_ERROR" => "error",
            "DNSBL_TIMEOUT" => "timeout",
            _ => continue,
        };
        metrics().dnsbl_problems.with_label_values(&[problem]).inc();
        let mut last = LAST_LOGGED.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            *last = Some(Instant::now());
            tracing::warn!(detail = %symbol.detail, "a DNS list did not answer usably");
        }
    }
}

/// The handler the SMTP sessions call.
pub struct Gateway {
    policy: Policy,
    queue: Queue,
    store: Store,
    scanner: Arc<Scanner>,
    quarantine: Quarantine,
    sender_rules: sender_rules::SenderRules,
    /// Link rewriting and ARC sealing; `None` when `[links]` is off.
    links: Option<Arc<links::LinkProtection>>,
    /// Sender-server checks; `None` when `[senders]` is off.
    servers: Option<Arc<sending_servers::SendingServers>>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Gateway {
    pub fn new(
        policy: Policy,
        queue: Queue,
        store: Store,
        scanner: Arc<Scanner>,
        quarantine: Quarantine,
        links: Option<Arc<links::LinkProtection>>,
        servers: Option<Arc<sending_servers::SendingServers>>,
    ) -> Arc<Gateway> {
        Arc::new(Gateway {
            policy,
            queue,
            sender_rules: sender_rules::SenderRules::new(store.clone()),
            store,
            scanner,
            quarantine,
            links,
            servers,
            failures: Mutex::new(HashMap::new()),
        })
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.policy.is_trusted(ip)
    }

    fn accepts_domain(&self, address: &str) -> bool {
        self.policy.accepts_domain(address)
    }

    /// What released copies of held mail go through: link rewriting and the
    /// ARC seal, as on arrival; `None` when `[links]` is off.
    pub fn release_hook(&self) -> Option<Arc<dyn portcullis_quarantine::ReleaseHook>> {
        let protection = self.links.clone()?;
        Some(Arc::new(links::ReleaseLinks::new(
            protection,
            self.scanner.clone(),
            self.policy.clone(),
        )))
    }

    fn locked_out(&self, ip: IpAddr) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&ip) {
            Some((n, since)) if since.elapsed() < self.policy.auth_lockout => {
                *n >= self.policy.max_auth_failures
            }
            Some(_) => {
                map.remove(&ip);
                false
            }
            None => false,
        }
    }

    fn note_failure(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.policy.auth_lockout {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
        entry.1 = Instant::now();
    }

    /// The trace event of a message refused in the session.
    fn rejected_event(
        session: &SessionInfo,
        mail_from: String,
        recipients: Vec<String>,
        reply: String,
    ) -> EventKind {
        EventKind::Rejected {
            client_ip: session.peer.ip().to_string(),
            helo: session.helo.clone(),
            tls: Self::tls_text(session),
            auth_user: session.auth_user.clone(),
            mail_from,
            recipients,
            reply,
        }
    }

    fn tls_text(session: &SessionInfo) -> Option<String> {
        session
            .tls
            .as_ref()
            .map(|t| format!("{} {}", t.version, t.cipher))
    }
}

/// RFC 3848 protocol name for the Received header.
fn with_protocol(session: &SessionInfo) -> &'static str {
    match (
        session.esmtp,
        session.tls.is_some(),
        session.auth_user.is_some(),
    ) {
        (false, _, _) => "SMTP",
        (true, false, false) => "ESMTP",
        (true, true, false) => "ESMTPS",
        (true, false, true) => "ESMTPA",
        (true, true, true) => "ESMTPSA",
    }
}

/// The Received header we prepend (RFC 5321 4.4), with the TLS details.
pub fn received_header(
    session: &SessionInfo,
    hostname: &str,
    id: &str,
    envelope: &Envelope,
    now_ms: i64,
) -> String {
    let helo = session.helo.as_deref().unwrap_or("unknown");
    let mut h = format!(
        "Received: from {helo} ([{}])\r\n\tby {hostname} (Portcullis) with {} id {id}",
        session.peer.ip(),
        with_protocol(session)
    );
    if let Some(tls) = &session.tls {
        h.push_str(&format!(
            "\r\n\t(version={} cipher={})",
            tls.version, tls.cipher
        ));
    }
    if envelope.recipients.len() == 1 {
        h.push_str(&format!("\r\n\tfor <{}>", envelope.recipients[0].address));
    }
    h.push_str(&format!(
        "; {}\r\n",
        portcullis_queue::dsn::rfc5322_date(now_ms)
    ));
    h
}

impl Gateway {
    /// Authenticates the sender (DNS), then scans the stamped message off the
    /// async threads (scanning is CPU work). Hands the bytes back with the
    /// verdict, the time it took and the sender's authentication (the
    /// Authentication-Results field to add, and what an ARC seal needs).
    async fn scan(
        &self,
        session: &SessionInfo,
        envelope: &Envelope,
        stamped: Vec<u8>,
        now_ms: i64,
    ) -> Result<(Vec<u8>, Verdict, u64, Option<AuthReport>), portcullis_scan::ScanError> {
        let scan_envelope = portcullis_scan::Envelope {
            client_ip: Some(session.peer.ip()),
            helo: session.helo.clone(),
            mail_from: Some(envelope.mail_from.clone()),
            recipients: envelope
                .recipients
                .iter()
                .map(|r| r.address.clone())
                .collect(),
            tls: Self::tls_text(session),
            auth_user: session.auth_user.clone(),
            trusted: self.is_trusted(session.peer.ip()),
            received_at: Some(now_ms.div_euclid(1000)),
        };
        let scanner = self.scanner.clone();
        let started = Instant::now();
        // Clients in trusted networks are the organisation's own servers: their
        // mail is not checked against the sender domain's published policy.
        let trusted = scan_envelope.trusted;
        let (auth, antivirus, dnsbl) = tokio::join!(
            async {
                if trusted {
                    None
                } else {
                    self.scanner.authenticate(&stamped, &scan_envelope).await
                }
            },
            self.scanner.antivirus(&stamped),
            self.scanner.dnsbl(&stamped, &scan_envelope)
        );
        let lookups = portcullis_scan::Lookups {
            auth,
            antivirus: antivirus?,
            dnsbl,
        };
        let auth = lookups.auth.clone();
        // Shared with the scanning thread so that the bytes survive a scanner panic.
        let shared = Arc::new(stamped);
        let for_scan = shared.clone();
        let result = tokio::task::spawn_blocking(move || {
            scanner.scan_with(&for_scan, &scan_envelope, &lookups)
        })
        .await;
        let stamped = Arc::try_unwrap(shared).unwrap_or_else(|still| (*still).clone());
        let verdict = match result {
            Ok(v) => v,
            // The scanner panicked on this message: it cannot be judged, so it is
            // held for a person rather than delivered unscanned or lost.
            Err(e) => {
                tracing::error!(error = %e, "the scanner failed on a message; holding it");
                Verdict {
                    score: 0.0,
                    symbols: vec![portcullis_scan::Symbol {
                        name: "SCAN_FAILED".into(),
                        score: 0.0,
                        detail: "the scanner failed on this message".into(),
                        category: portcullis_scan::Category::Policy,
                    }],
                    category: portcullis_scan::Category::Policy,
                    action: Action::Quarantine,
                }
            }
        };
        let elapsed = started.elapsed();
        note_dnsbl_problems(&verdict);
        metrics().scan_seconds.observe(elapsed.as_secs_f64());
        metrics()
            .verdicts
            .with_label_values(&[verdict.action.as_str(), verdict.category.as_str()])
            .inc();
        Ok((stamped, verdict, elapsed.as_micros() as u64, auth))
    }
}

/// A message refused after it was scanned, and what its trace records.
struct Refused {
    mail_from: String,
    recipients: Vec<String>,
    reply: Reply,
    scanned: EventKind,
    servers_event: Option<EventKind>,
}

impl Gateway {
    /// Records a message refused after the scan (the reply, the verdict, the
    /// sending servers) and hands back the reply.
    fn refuse_after_scan(
        &self,
        session: &SessionInfo,
        id: &str,
        r: Refused,
        started: Instant,
    ) -> Reply {
        self.store.record(
            id,
            Self::rejected_event(session, r.mail_from, r.recipients, r.reply.to_string()),
        );
        self.store.record(id, r.scanned);
        if let Some(event) = r.servers_event {
            self.store.record(id, event);
        }
        metrics()
            .data_seconds
            .observe(started.elapsed().as_secs_f64());
        r.reply
    }

    /// Rewrites the links of inbound mail and seals it (see [`links`]), off
    /// the async threads; mail out of scope comes back as it was.
    async fn protect_links(
        &self,
        session: &SessionInfo,
        id: &str,
        recipients: &[String],
        message: Vec<u8>,
        auth: Option<AuthReport>,
        now_ms: i64,
    ) -> (Vec<u8>, Option<EventKind>) {
        let Some(protection) = self.links.clone() else {
            return (message, None);
        };
        let internal_sender = session.auth_user.is_some() || self.is_trusted(session.peer.ip());
        let scope = links::scope(
            internal_sender,
            recipients,
            |r| self.accepts_domain(r),
            protection.rewrite_internal(),
        );
        if scope != links::Scope::Rewrite {
            return (message, None);
        }
        let id = id.to_string();
        let recipients = recipients.to_vec();
        // The bytes are shared so that a panic in the rewriter cannot lose them.
        let shared = Arc::new(message);
        let input = shared.clone();
        let done = tokio::task::spawn_blocking(move || {
            let seal = auth.as_ref().and_then(|a| a.seal.as_ref());
            protection.protect(&id, &recipients, &input, seal, now_ms)
        })
        .await;
        match done {
            Ok(Some(p)) => (p.message, Some(p.event)),
            Ok(None) => (
                Arc::try_unwrap(shared).unwrap_or_else(|s| (*s).clone()),
                None,
            ),
            Err(e) => {
                tracing::error!(error = %e, "link rewriting failed; delivering the message as it came");
                (
                    Arc::try_unwrap(shared).unwrap_or_else(|s| (*s).clone()),
                    None,
                )
            }
        }
    }

    /// A scan that could not be done (clamd down with `on_failure = "tempfail"`):
    /// the sender is told to retry later, and the trace and metrics say why.
    fn scan_unavailable(
        &self,
        session: &SessionInfo,
        envelope: &Envelope,
        id: &str,
        error: portcullis_scan::ScanError,
        started: Instant,
    ) -> Reply {
        tracing::error!(id, error = %error, "message not scanned; client told to retry");
        metrics()
            .messages
            .with_label_values(&["refused", "scanner_unavailable"])
            .inc();
        let reply = Reply::new(
            451,
            "4.7.0",
            format!(
                "Temporary problem: the message could not be scanned for viruses; please try again later (trace id {id})"
            ),
        );
        let recipients = envelope
            .recipients
            .iter()
            .map(|r| r.address.clone())
            .collect();
        self.store.record(
            id,
            Self::rejected_event(
                session,
                envelope.mail_from.clone(),
                recipients,
                format!("{reply} [{error}]"),
            ),
        );
        metrics()
            .data_seconds
            .observe(started.elapsed().as_secs_f64());
        reply
    }
}

/// Records in the trace and the quarantine's index any held message they do
/// not know: a crash between the quarantine's fsync and the trace write leaves
/// the mail held (it was acknowledged) but invisible to "where is my mail" and
/// to the release workflow; so does a store from before the index existed. Run
/// at start. Returns how many were recorded.
pub fn complete_quarantine_trace(quarantine: &Quarantine, store: &Store) -> usize {
    let held = match quarantine.list() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot list the quarantine to check the trace");
            return 0;
        }
    };
    let mut recorded = 0;
    for h in held {
        let (known, indexed) = match (store.contains(&h.id), store.is_indexed_held(&h.id)) {
            (Ok(k), Ok(i)) => (k, i),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(id = %h.id, error = %e, "cannot check the trace for a held message");
                continue;
            }
        };
        if known && indexed {
            continue;
        }
        let recipients: Vec<String> = h
            .envelope
            .recipients
            .iter()
            .map(|r| r.address.clone())
            .collect();
        if !known {
            store.record(
                &h.id,
                EventKind::Received {
                    client_ip: h.client_ip.clone(),
                    helo: None,
                    tls: None,
                    auth_user: None,
                    mail_from: h.envelope.mail_from.clone(),
                    recipients: recipients.clone(),
                    size: h.size,
                    message_id: h.message_id.clone(),
                    subject: h.subject.clone(),
                    reply: format!("250 2.0.0 Ok: queued as {}", h.id),
                },
            );
        }
        store.record(&h.id, scanned_event(&h.verdict, 0));
        store.record(
            &h.id,
            EventKind::Quarantined {
                recipients,
                reason: main_reason(&h.verdict),
                expires_at: h.expires_at,
            },
        );
        if known {
            tracing::info!(id = %h.id, "held message added to the quarantine index");
        } else {
            tracing::warn!(id = %h.id, "held message was missing from the trace; recorded again");
        }
        recorded += 1;
    }
    recorded
}

/// The detail of the symbol that weighed most: what a person reads first.
fn main_reason(verdict: &Verdict) -> String {
    verdict
        .symbols
        .iter()
        .filter(|s| s.score > 0.0)
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .map(|s| format!("{}: {}", s.name, s.detail))
        .unwrap_or_else(|| "policy".into())
}

/// 550 5.7.1 with the category, the main reason and the trace id, so that the
/// sender's admin can act and ours can find it (RFC 3463: 5.7.1, delivery not
/// authorised, message refused).
fn reject_reply(verdict: &Verdict, id: &str) -> Reply {
    let mut reason = main_reason(verdict);
    if reason.len() > 300 {
        let mut cut = 300;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push_str("...");
    }
    Reply::new(
        550,
        "5.7.1",
        format!(
            "Message rejected as {} ({reason}; score {:.1}); trace id {id}",
            verdict.category.as_str(),
            verdict.score
        ),
    )
}

impl Handler for Gateway {
    async fn authenticate(&self, session: &SessionInfo, user: &str, password: &str) -> AuthOutcome {
        let ip = session.peer.ip();
        if self.locked_out(ip) {
            tracing::warn!(peer = %ip, "login refused: address locked out after failed logins");
            return AuthOutcome::Locked;
        }
        let hash = self.policy.users.get(user).cloned();
        let password = password.to_string();
        // Verify even for unknown users so timing does not reveal which exist.
        let ok = tokio::task::spawn_blocking(move || {
            const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Gf6i4y5tB9m7E2Wb2c6x3kq8mRz9rN1vQ0pL5sT7uY4";
            let phc = hash.as_deref().unwrap_or(DUMMY);
            match PasswordHash::new(phc) {
                Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && hash.is_some(),
                Err(_) => false,
            }
        })
        .await
        .unwrap_or(false);
        if ok {
            AuthOutcome::Success
        } else {
            self.note_failure(ip);
            metrics()
                .messages
                .with_label_values(&["refused", "auth_failed"])
                .inc();
            if self.locked_out(ip) {
                AuthOutcome::Locked
            } else {
                AuthOutcome::Invalid
            }
        }
    }

    async fn rcpt_to(
        &self,
        session: &SessionInfo,
        _envelope: &Envelope,
        rcpt: &Recipient,
    ) -> Result<(), Reply> {
        if self.accepts_domain(&rcpt.address) {
            return Ok(());
        }
        if session.auth_user.is_some() || self.is_trusted(session.peer.ip()) {
            return Ok(());
        }
        metrics()
            .messages
            .with_label_values(&["refused", "relay_denied"])
            .inc();
        let domain = portcullis_queue::route::domain_of(&rcpt.address);
        Err(Reply::new(
            550,
            "5.7.1",
            format!(
                "Relaying denied: this server does not accept mail for {}; log in on the submission port to send to other domains",
                if domain.is_empty() { "that address" } else { &domain }
            ),
        ))
    }

    async fn data(&self, session: &SessionInfo, envelope: Envelope, message: Vec<u8>) -> Reply {
        let started = Instant::now();
        let id = portcullis_queue::new_id();
        let now = portcullis_store::now_ms();
        let fields = headers::Summary::of(&message);
        let received = received_header(session, &self.policy.hostname, &id, &envelope, now);
        let mut stamped = Vec::with_capacity(received.len() + message.len());
        stamped.extend_from_slice(received.as_bytes());
        stamped.extend_from_slice(&message);
        drop(message);

        let (stamped, mut verdict, scan_us, auth) =
            match self.scan(session, &envelope, stamped, now).await {
                Ok(scanned) => scanned,
                Err(e) => return self.scan_unavailable(session, &envelope, &id, e, started),
            };
        let recipients: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| r.address.clone())
            .collect();
        self.sender_rules
            .apply(&envelope.mail_from, &recipients, &mut verdict)
            .await;
        let judgement = match &self.servers {
            Some(servers) => {
                let origin = sending_servers::Origin {
                    helo: session.helo.as_deref(),
                    own: session.auth_user.is_some() || self.is_trusted(session.peer.ip()),
                    authenticated: auth.as_ref().map(|a| a.passed.as_slice()).unwrap_or(&[]),
                };
                let as_received = stamped.get(received.len()..).unwrap_or_default();
                Some(servers.judge(as_received, &origin, &id, now).await)
            }
            None => None,
        };
        let (servers_event, refusal) = match judgement {
            Some(j) => {
                verdict.symbols.extend(j.symbol);
                (j.event, j.refusal)
            }
            None => (None, None),
        };
        let mail_from = envelope.mail_from.clone();
        let scanned = scanned_event(&verdict, scan_us);

        if let Some(reply) = refusal {
            tracing::info!(id = %id, from = %mail_from, to = ?recipients, peer = %session.peer.ip(), reply = %reply, "refused: out-of-date sending server");
            metrics()
                .messages
                .with_label_values(&[
                    "refused",
                    if reply.code >= 500 {
                        "server_blocked"
                    } else {
                        "server_throttled"
                    },
                ])
                .inc();
            return self.refuse_after_scan(
                session,
                &id,
                Refused {
                    mail_from,
                    recipients,
                    reply,
                    scanned,
                    servers_event,
                },
                started,
            );
        }

        if verdict.action == Action::Reject {
            let reply = reject_reply(&verdict, &id);
            tracing::info!(id = %id, from = %mail_from, to = ?recipients, peer = %session.peer.ip(), score = verdict.score, category = ?verdict.category, "rejected by the scanner");
            metrics()
                .messages
                .with_label_values(&["refused", "scan_reject"])
                .inc();
            return self.refuse_after_scan(
                session,
                &id,
                Refused {
                    mail_from,
                    recipients,
                    reply,
                    scanned,
                    servers_event,
                },
                started,
            );
        }

        let tag = &self.scanner.config().tag;
        let prefix = match verdict.action {
            Action::Tag => tag.subject_prefix.as_deref(),
            _ => None,
        };
        let authserv_id = self
            .scanner
            .config()
            .auth
            .authserv_id
            .as_deref()
            .unwrap_or(&self.policy.hostname);
        let ours = |name: &str, value: &str| marks::is_owned_field(name, value, authserv_id);
        let mut marked = auth
            .as_ref()
            .map(|a| a.header.clone())
            .unwrap_or_default()
            .into_bytes();
        marked.extend_from_slice(
            marks::verdict_fields(&verdict, self.scanner.config().thresholds.tag, tag).as_bytes(),
        );
        marked.extend_from_slice(&marks::rewrite_header(&stamped, &ours, prefix));
        drop(stamped);
        let (marked, links_event) = if verdict.action == Action::Quarantine {
            (marked, None)
        } else {
            self.protect_links(session, &id, &recipients, marked, auth, now)
                .await
        };

        let size = marked.len() as u64;
        let reply = Reply::new(250, "2.0.0", format!("Ok: queued as {id}"));
        let reception = EventKind::Received {
            client_ip: session.peer.ip().to_string(),
            helo: session.helo.clone(),
            tls: Self::tls_text(session),
            auth_user: session.auth_user.clone(),
            mail_from: mail_from.clone(),
            recipients: recipients.clone(),
            size,
            message_id: fields.message_id.clone(),
            subject: fields.subject.clone(),
            reply: reply.to_string(),
        };

        let stored = if verdict.action == Action::Quarantine {
            let held = Held {
                id: id.clone(),
                received_at: now,
                client_ip: session.peer.ip().to_string(),
                envelope,
                size,
                message_id: fields.message_id,
                subject: fields.subject,
                verdict: verdict.clone(),
                expires_at: Some(self.policy.quarantine.expires_at(now, verdict.category)),
                stored: None,
            };
            let expires_at = held.expires_at;
            match self.quarantine.hold_async(held, Arc::new(marked)).await {
                Ok(()) => {
                    self.store.record(&id, reception);
                    self.store.record(&id, scanned);
                    self.store.record(
                        &id,
                        EventKind::Quarantined {
                            recipients: recipients.clone(),
                            reason: main_reason(&verdict),
                            expires_at,
                        },
                    );
                    Ok("quarantined")
                }
                Err(e) => Err(e.to_string()),
            }
        } else {
            match self
                .queue
                .enqueue(id.clone(), envelope, marked, reception)
                .await
            {
                Ok(_) => {
                    self.store.record(&id, scanned);
                    if let Some(event) = links_event {
                        self.store.record(&id, event);
                    }
                    Ok(if verdict.action == Action::Tag {
                        "tagged"
                    } else {
                        "queued"
                    })
                }
                Err(e) => Err(e.to_string()),
            }
        };
        if let (Ok(_), Some(event)) = (&stored, servers_event) {
            self.store.record(&id, event);
        }
        let reply = match stored {
            Ok(how) => {
                metrics()
                    .messages
                    .with_label_values(&["accepted", how])
                    .inc();
                tracing::info!(id = %id, from = %mail_from, to = ?recipients, size, peer = %session.peer.ip(), score = verdict.score, action = how, "accepted");
                reply
            }
            Err(e) => {
                tracing::error!(id = %id, error = %e, "cannot store message; client told to retry");
                metrics()
                    .messages
                    .with_label_values(&["refused", "storage_error"])
                    .inc();
                Reply::new(
                    451,
                    "4.3.0",
                    "Temporary local problem storing your message; please try again later",
                )
            }
        };
        metrics()
            .data_seconds
            .observe(started.elapsed().as_secs_f64());
        reply
    }

    async fn refused(
        &self,
        session: &SessionInfo,
        envelope: &Envelope,
        rcpt: Option<&str>,
        reply: &Reply,
    ) {
        let id = portcullis_queue::new_id();
        let recipients = match rcpt {
            Some(r) => vec![r.to_string()],
            None => envelope
                .recipients
                .iter()
                .map(|r| r.address.clone())
                .collect(),
        };
        if rcpt.is_none() {
            metrics()
                .messages
                .with_label_values(&["refused", "content"])
                .inc();
        }
        tracing::info!(peer = %session.peer.ip(), from = %envelope.mail_from, to = ?recipients, reply = %reply, "refused");
        self.store.record(
            &id,
            Self::rejected_event(
                session,
                envelope.mail_from.clone(),
                recipients,
                reply.to_string(),
            ),
        );
    }
}
