//! Sender-server checks in the message path: the sending organisation's
//! server software is recognised in the message's `Received` fields
//! (`portcullis_senders::identify`), judged against the version catalogue, and
//! the server that connected is staged by the schedule: reported, throttled
//! (`451 4.7.230`) or blocked (`550 5.7.230`), with a reply that names the
//! product, the build, why it is out of date and what to install.
//!
//! Whose evidence counts: the topmost `Received` field is the connecting
//! server's own, and it is attributed to that server only when the server's
//! name (its HELO) belongs to an organisation that authenticated the message
//! (SPF for MAIL FROM, or a DKIM signature, in the same organisational
//! domain). A spammer can write any header, but cannot make its mail pass SPF
//! or DKIM for a bank's domain, so it cannot get the bank's server throttled.
//! Unattributed evidence is recorded in the verdict and never enforced. Mail
//! from our own servers (trusted networks, logged-in users) is inspected the
//! same way and recorded as theirs, never enforced: it feeds the warnings
//! about the organisation's own servers.
//!
//! The servers' facts (first detected, exemptions, pauses) are read from the
//! store at most every two seconds, not per message; sightings are written by
//! the store's writer thread. The share of a throttled server's messages that
//! is deferred is counted here, per server, from the start of the process.

use portcullis_scan::{Category, Symbol};
use portcullis_senders::catalog::{Catalog, Classification, Date};
use portcullis_senders::identify::{self, Evidence};
use portcullis_senders::stage::{self, Decision, Facts, Pause, Schedule, Standing};
use portcullis_senders::{Mode, SendersConfig};
use portcullis_smtp::Reply;
use portcullis_store::servers::Sighting;
use portcullis_store::{EventKind, Store};
use prometheus::{register_int_counter_vec, register_int_gauge, IntCounterVec, IntGauge};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const REFRESH: Duration = Duration::from_secs(2);

/// The catalogue's judgement of the connecting server, and what was done.
pub struct Judgement {
    /// For the trace: every attributed server and the decision.
    pub event: Option<EventKind>,
    /// A symbol for the verdict saying what was recognised, where.
    pub symbol: Option<Symbol>,
    /// The reply when the message is deferred or refused.
    pub refusal: Option<Reply>,
}

struct Metrics {
    decisions: IntCounterVec,
    own_out_of_date: IntGauge,
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| Metrics {
        decisions: register_int_counter_vec!(
            "portcullis_sender_servers_decisions_total",
            "Messages from recognised sending servers by the staged enforcement's decision and the server's status",
            &["decision", "status"]
        )
        .expect("metric registers once"),
        own_out_of_date: register_int_gauge!(
            "portcullis_own_servers_out_of_date",
            "The organisation's own mail servers whose software is out of date (outdated, vulnerable or unsupported)"
        )
        .expect("metric registers once"),
    })
}

type FactsMap = HashMap<String, Facts>;

pub struct SendingServers {
    catalog: Arc<Catalog>,
    schedule: Schedule,
    report_only: bool,
    more_url: Option<String>,
    store: Store,
    cache: Mutex<(Option<Instant>, Arc<FactsMap>)>,
    counters: Mutex<HashMap<String, u64>>,
}

/// Who sent the message, as the session knows it.
pub struct Origin<'a> {
    /// The client's HELO name.
    pub helo: Option<&'a str>,
    /// A client in a trusted network or a logged-in user: our own server.
    pub own: bool,
    /// Domains that authenticated the message (SPF-passing MAIL FROM, DKIM `d=`).
    pub authenticated: &'a [String],
}

impl SendingServers {
    /// `None` when `[senders] enabled = false`.
    pub fn new(
        config: &SendersConfig,
        catalog: Arc<Catalog>,
        store: Store,
    ) -> Result<Option<Arc<SendingServers>>, String> {
        if !config.enabled {
            return Ok(None);
        }
        Ok(Some(Arc::new(SendingServers {
            catalog,
            schedule: config.schedule()?,
            report_only: config.mode == Mode::Report,
            more_url: config.more_url.clone(),
            store,
            cache: Mutex::new((None, Arc::new(HashMap::new()))),
            counters: Mutex::new(HashMap::new()),
        })))
    }

    /// The servers' facts, read again when the copy is older than [`REFRESH`].
    async fn facts(&self) -> Arc<FactsMap> {
        let (fresh, facts) = match self.cache.lock() {
            Ok(c) => (c.0.is_some_and(|at| at.elapsed() < REFRESH), c.1.clone()),
            Err(_) => return Arc::new(HashMap::new()),
        };
        if fresh {
            return facts;
        }
        let store = self.store.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            Ok::<_, portcullis_store::StoreError>((
                store.sender_server_facts()?,
                store.server_pauses(None)?,
            ))
        })
        .await;
        let facts = match loaded {
            Ok(Ok((facts, pauses))) => {
                let own_out_of_date = facts.own_out_of_date;
                let mut map: FactsMap = facts
                    .servers
                    .into_iter()
                    .map(|s| {
                        (
                            s.key,
                            Facts {
                                first_detected: s.first_detected,
                                exempt: s.exempt,
                                pauses: Vec::new(),
                            },
                        )
                    })
                    .collect();
                for p in pauses {
                    if let Some(f) = map.get_mut(&p.key) {
                        f.pauses.push(Pause {
                            from: p.from,
                            until: p.until,
                        });
                    }
                }
                metrics().own_out_of_date.set(own_out_of_date);
                Arc::new(map)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the sending servers; keeping the last copy");
                facts
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the sending servers; keeping the last copy");
                facts
            }
        };
        if let Ok(mut c) = self.cache.lock() {
            *c = (Some(Instant::now()), facts.clone());
        }
        facts
    }

    /// Recognises the servers in `message` (as it reached us) and decides
    /// what happens to it. `id` is the trace id, for the reply.
    pub async fn judge(
        &self,
        message: &[u8],
        origin: &Origin<'_>,
        id: &str,
        now_ms: i64,
    ) -> Judgement {
        let helo = origin
            .helo
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase());
        let helo_org = helo.as_deref().and_then(identify::organisation);
        // The connecting server is known by its HELO name only when its
        // organisation is one that authenticated the message (or it is ours).
        let attributed = helo_org.as_ref().is_some_and(|org| {
            origin.own
                || origin
                    .authenticated
                    .iter()
                    .filter_map(|d| identify::organisation(d))
                    .any(|o| &o == org)
        });
        // A trusted client's HELO is believed as it is (internal servers often
        // greet with a bare name such as EX01).
        let connecting_host = if attributed || origin.own {
            helo.as_deref()
        } else {
            None
        };
        let found = identify::identify(message, connecting_host);
        if found.connecting.is_none() && found.inside.is_empty() && found.outside == 0 {
            return Judgement {
                event: None,
                symbol: None,
                refusal: None,
            };
        }
        // Also keeps the own-servers gauge current.
        let facts = self.facts().await;
        let today = Date::from_unix_secs(now_ms.div_euclid(1000));
        let org = helo_org.clone().unwrap_or_else(|| {
            if origin.own {
                "(own)".into()
            } else {
                String::new()
            }
        });

        let mut sightings = Vec::new();
        let mut described = Vec::new();
        let mut decision = Decision::Accept;
        let mut stage_text = None;
        let mut refusal = None;
        if let Some(ev) = &found.connecting {
            let class = self.catalog.classify(&ev.software, today);
            if !ev.cloud {
                let host = ev.by_host.clone().unwrap_or_default();
                let key = format!("{org}/{host}");
                described.push(describe(&host, ev, &class));
                if !origin.own && class.status.is_enforced() {
                    let f = facts.get(&key).cloned().unwrap_or(Facts {
                        first_detected: Some(now_ms),
                        ..Facts::default()
                    });
                    if let Some(standing) = stage::standing(&f, &self.schedule, now_ms) {
                        let n = self.next_count(&key);
                        decision = stage::decide(standing.effective(), n, self.report_only);
                        stage_text = Some(stage_label(&standing, self.report_only));
                        refusal = self.reply(decision, &host, ev, &class, &standing, id);
                    }
                }
                metrics()
                    .decisions
                    .with_label_values(&[decision.as_str(), class.status.as_str()])
                    .inc();
                sightings.push(sighting(&key, &org, &host, origin.own, true, ev, &class));
            }
        }
        for ev in &found.inside {
            if ev.cloud {
                continue;
            }
            let class = self.catalog.classify(&ev.software, today);
            let host = ev.by_host.clone().unwrap_or_default();
            let key = format!("{org}/{host}");
            described.push(describe(&host, ev, &class));
            sightings.push(sighting(&key, &org, &host, origin.own, false, ev, &class));
        }
        let symbol = if described.is_empty() && found.outside == 0 {
            None
        } else {
            let mut detail = described.join("; ");
            if found.outside > 0 {
                if !detail.is_empty() {
                    detail.push_str("; ");
                }
                detail.push_str(&format!(
                    "{} more Received field(s) name server software but are not the connecting server's organisation's (not acted on)",
                    found.outside
                ));
            }
            Some(Symbol {
                name: "SENDER_SERVER".into(),
                score: 0.0,
                detail,
                category: Category::Clean,
            })
        };
        let event = (!sightings.is_empty()).then(|| EventKind::SenderServers {
            servers: sightings,
            decision: decision.as_str().into(),
            stage: stage_text,
        });
        Judgement {
            event,
            symbol,
            refusal,
        }
    }

    fn next_count(&self, key: &str) -> u64 {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: one counter per out-of-date connecting server.
        if c.len() > 100_000 {
            c.clear();
        }
        let n = c.entry(key.to_string()).or_insert(0);
        let this = *n;
        *n += 1;
        this
    }

    fn reply(
        &self,
        decision: Decision,
        host: &str,
        ev: &Evidence,
        class: &Classification,
        standing: &Standing,
        id: &str,
    ) -> Option<Reply> {
        let what = format!(
            "{host} runs {} {}{}: {}",
            ev.software.product,
            ev.software.version,
            class
                .release
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            class.reason
        );
        let fix = class
            .recommended
            .as_deref()
            .map(|r| format!(" Install {r}."))
            .unwrap_or_default();
        let more = self
            .more_url
            .as_deref()
            .or(class.more.as_deref())
            .map(|u| format!(" See {u}"))
            .unwrap_or_default();
        let (code, enhanced, verb) = match decision {
            Decision::Accept => return None,
            Decision::Defer => (451, "4.7.230", "Throttled, try again later"),
            Decision::Reject => (550, "5.7.230", "Blocked"),
        };
        let since = portcullis_store::trace::rfc3339(standing.since);
        let mut text = format!(
            "{verb}: {what}.{fix}{more} (out-of-date server policy since {}; trace id {id})",
            &since[..10]
        );
        // One reply line stays well under the 512-octet limit (RFC 5321 4.5.3.1.5).
        if text.len() > 440 {
            let mut cut = 440;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        Some(Reply::new(code, enhanced, text))
    }
}

fn stage_label(standing: &Standing, report_only: bool) -> String {
    let mut s = standing.action.describe();
    if standing.exempt {
        s.push_str(" (exempt)");
    } else if standing.paused_until.is_some() {
        s.push_str(" (paused)");
    } else if report_only {
        s.push_str(" (report-only mode)");
    }
    s
}

fn describe(host: &str, ev: &Evidence, class: &Classification) -> String {
    format!(
        "{host} runs {} {} ({}), from Received field {}",
        ev.software.product,
        ev.software.version,
        class.status.as_str(),
        ev.index + 1
    )
}

fn sighting(
    key: &str,
    org: &str,
    host: &str,
    own: bool,
    connecting: bool,
    ev: &Evidence,
    class: &Classification,
) -> Sighting {
    Sighting {
        key: key.to_string(),
        org: org.to_string(),
        host: host.to_string(),
        own,
        connecting,
        product: ev.software.product.key().into(),
        version: ev.software.version.to_string(),
        release: class.release.clone(),
        status: class.status.as_str().into(),
        reason: class.reason.clone(),
        recommended: class.recommended.clone(),
        field: ev.field.clone(),
    }
}
