//! portcullis-queue: the durable mail queue of one node.
//!
//! A message accepted by the gateway is written to the spool and fsynced before
//! the sender hears 250 ([`Queue::enqueue`]). Delivery workers then take it to its
//! next hop ([`route`]): the organisation's mail server over SMTP or LMTP, a
//! Maildir, or the internet by MX lookup. Connections are reused, and each
//! destination has its own concurrency limit. Temporary failures (4xx, connection
//! and DNS errors) are retried with exponential backoff; permanent failures (5xx)
//! and messages older than the maximum queue age produce a DSN to the sender
//! ([`dsn`]). Every attempt is written to the trace.
//!
//! Standards: RFC 5321 (retry and MX rules, section 4.5.4 and 5.1), RFC 7505 (null
//! MX), RFC 3461/3464 and RFC 6522 (DSN), RFC 2033 (LMTP).
//!
//! Security posture: spool files are named only by ids this crate generates (a
//! damaged or foreign file is moved aside, never parsed into a path); Maildir
//! folder names are sanitised so an address cannot escape the Maildir root; DSNs
//! are never sent to the null sender, so bounces cannot loop; queue size is
//! bounded by disk, and the delivery concurrency by configuration.

pub mod dirsync;
pub mod dsn;
pub mod id;
pub mod maildir;
pub mod route;
pub mod spool;
pub mod text;

use portcullis_smtp::client::{self, Connection};
use portcullis_smtp::{ClientConfig, Envelope, Recipient, Reply};
use portcullis_store::{now_ms, EventKind, MessageStatus, Store};
use prometheus::{register_histogram_vec, register_int_counter_vec, HistogramVec, IntCounterVec};
use route::{Destination, Dns, Hop, ResolveFailure, Router};
use serde::Serialize;
use spool::{Header, RcptState, Spool, SpoolError, State};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify, Semaphore};

pub use id::new_id;
pub use spool::SpoolError as Error;

/// Queue settings.
#[derive(Clone)]
pub struct QueueConfig {
    pub dir: std::path::PathBuf,
    pub hostname: String,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub max_age: Duration,
    /// Messages being delivered at once.
    pub max_deliveries: usize,
    /// Connections to one destination at once.
    pub per_destination: usize,
    pub client: ClientConfig,
    pub router: Router,
    pub dns: Dns,
    /// The port of MX hosts (25; Postfix's `smtp_tcp_port`).
    pub mx_port: u16,
}

/// `5 days`, `4 hours`, `90 seconds`: for texts people read.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        _ if s >= 86_400 && s.is_multiple_of(86_400) => (s / 86_400, "day"),
        _ if s >= 3600 && s.is_multiple_of(3600) => (s / 3600, "hour"),
        _ if s >= 60 && s.is_multiple_of(60) => (s / 60, "minute"),
        _ => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Retry delay after `attempts` failed attempts: initial × 2^(attempts−1), capped.
pub fn backoff(initial: Duration, max: Duration, attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    initial.saturating_mul(1u32 << exp).min(max)
}

struct Entry {
    received_at: i64,
    next_attempt: i64,
    in_flight: bool,
}

struct Job {
    id: String,
    loaded: Option<(Header, Arc<Vec<u8>>)>,
}

/// One message as `portcullis queue list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueItem {
    pub id: String,
    pub received_at: i64,
    pub mail_from: String,
    pub size: u64,
    pub attempts: u32,
    pub next_attempt: i64,
    pub recipients: Vec<spool::RcptEntry>,
}

/// Queue size and age, for metrics.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct QueueStats {
    pub messages: usize,
    pub oldest_age_seconds: f64,
}

struct Metrics {
    outcomes: IntCounterVec,
    attempt_seconds: HistogramVec,
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| Metrics {
        outcomes: register_int_counter_vec!(
            "portcullis_delivery_outcomes_total",
            "Recipients by delivery attempt outcome (delivered, deferred, bounced)",
            &["outcome"]
        )
        .unwrap_or_else(|_| {
            IntCounterVec::new(
                prometheus::Opts::new("unregistered_outcomes", "-"),
                &["outcome"],
            )
            .expect("static metric")
        }),
        attempt_seconds: register_histogram_vec!(
            "portcullis_delivery_attempt_seconds",
            "Duration of one delivery attempt to one destination",
            &["kind"],
            vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
        )
        .unwrap_or_else(|_| {
            HistogramVec::new(
                prometheus::HistogramOpts::new("unregistered_attempt", "-"),
                &["kind"],
            )
            .expect("static metric")
        }),
    })
}

/// The queue. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    config: QueueConfig,
    spool: Spool,
    store: Store,
    entries: Mutex<HashMap<String, Entry>>,
    dispatch: mpsc::UnboundedSender<Job>,
    dispatch_rx: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    wake: Notify,
    dest_limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    pool: Mutex<HashMap<String, Vec<(Instant, Connection)>>>,
}

/// The outcome for one recipient of one attempt.
#[derive(Debug, Clone)]
struct Outcome {
    state: RcptState,
    /// `4xx`/`5xx`/`2xx` reply or an error text.
    text: String,
    status: String,
    remote: Option<String>,
    tls: Option<String>,
}

impl Outcome {
    fn from_reply(reply: &Reply, remote: &str, tls: Option<String>) -> Outcome {
        let state = if reply.is_positive() {
            RcptState::Delivered
        } else if reply.is_permanent() {
            RcptState::Failed
        } else {
            RcptState::Pending
        };
        Outcome {
            state,
            text: reply.to_string(),
            status: dsn::status_of(&reply.status, reply.code),
            remote: Some(remote.to_string()),
            tls,
        }
    }

    fn temporary(text: String) -> Outcome {
        Outcome {
            state: RcptState::Pending,
            text,
            status: "4.4.1".into(),
            remote: None,
            tls: None,
        }
    }

    fn permanent(text: String, status: &str) -> Outcome {
        Outcome {
            state: RcptState::Failed,
            text,
            status: status.into(),
            remote: None,
            tls: None,
        }
    }
}

impl Queue {
    /// Opens the spool and loads what is in it; call [`Queue::start`] to deliver.
    pub fn open(config: QueueConfig, store: Store) -> Result<Queue, SpoolError> {
        let spool = Spool::open(&config.dir)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = Queue {
            inner: Arc::new(Inner {
                config,
                spool,
                store,
                entries: Mutex::new(HashMap::new()),
                dispatch: tx,
                dispatch_rx: Mutex::new(Some(rx)),
                wake: Notify::new(),
                dest_limits: Mutex::new(HashMap::new()),
                pool: Mutex::new(HashMap::new()),
            }),
        };
        let mut recovered = 0;
        for id in queue.inner.spool.scan()? {
            match queue.inner.spool.read(&id) {
                Ok((header, _)) => {
                    queue.complete_trace(&header);
                    let state = queue.inner.spool.read_state(&header);
                    queue.lock_entries().insert(
                        id,
                        Entry {
                            received_at: header.received_at,
                            next_attempt: state.next_attempt,
                            in_flight: false,
                        },
                    );
                    recovered += 1;
                }
                Err(e) => {
                    // Only a message whose write never completed looks like this,
                    // and such a message was never acknowledged.
                    tracing::warn!(
                        id = %id,
                        error = %e,
                        "incomplete spool file from an interrupted write (never acknowledged to its sender) moved to corrupt/"
                    );
                    queue.inner.spool.quarantine_damaged(&id);
                }
            }
        }
        if recovered > 0 {
            tracing::info!(messages = recovered, "queue recovered from spool");
        }
        Ok(queue)
    }

    /// Re-records a message's reception when the trace lost it in a crash (the
    /// trace is written asynchronously; the spool is the record of truth).
    fn complete_trace(&self, header: &Header) {
        let Some(event) = &header.reception else {
            return;
        };
        match self.inner.store.contains(&header.id) {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(id = %header.id, "trace lacked this queued message; restored from the spool");
                self.inner.store.record(&header.id, event.clone());
            }
            Err(e) => tracing::warn!(id = %header.id, error = %e, "cannot check the trace"),
        }
    }

    fn lock_entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn spool(&self) -> &Spool {
        &self.inner.spool
    }

    /// Starts the delivery workers and the retry timer.
    pub fn start(&self) {
        let Some(mut rx) = self
            .inner
            .dispatch_rx
            .lock()
            .ok()
            .and_then(|mut r| r.take())
        else {
            return;
        };
        let q = self.clone();
        tokio::spawn(async move {
            let limit = Arc::new(Semaphore::new(q.inner.config.max_deliveries.max(1)));
            while let Some(job) = rx.recv().await {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let q = q.clone();
                tokio::spawn(async move {
                    q.deliver(job).await;
                    drop(permit);
                });
            }
        });
        let q = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = q.inner.wake.notified() => {}
                }
                q.dispatch_due();
            }
        });
    }

    fn dispatch_due(&self) {
        let now = now_ms();
        let due: Vec<String> = {
            let mut entries = self.lock_entries();
            entries
                .iter_mut()
                .filter(|(_, e)| !e.in_flight && e.next_attempt <= now)
                .map(|(id, e)| {
                    e.in_flight = true;
                    id.clone()
                })
                .collect()
        };
        for id in due {
            let _ = self.inner.dispatch.send(Job { id, loaded: None });
        }
    }

    /// Stores a message durably and schedules its delivery. When this returns Ok
    /// the message survives a crash: only then may the sender be told 250.
    ///
    /// `reception` is the trace's `received` event; it is recorded once the message
    /// is on disk, and kept in the spool header for recovery.
    pub async fn enqueue(
        &self,
        id: String,
        envelope: Envelope,
        message: Vec<u8>,
        reception: EventKind,
    ) -> Result<String, SpoolError> {
        let header = Header {
            id: id.clone(),
            received_at: now_ms(),
            size: message.len() as u64,
            envelope,
            reception: Some(reception),
        };
        let spool = self.inner.spool.clone();
        let message = Arc::new(message);
        let (h, m) = (header.clone(), message.clone());
        tokio::task::spawn_blocking(move || spool.write(&h, &m))
            .await
            .map_err(|e| {
                SpoolError::Io("spool writer".into(), std::io::Error::other(e.to_string()))
            })??;
        if let Some(event) = header.reception.clone() {
            self.inner.store.record(&id, event);
        }
        self.lock_entries().insert(
            id.clone(),
            Entry {
                received_at: header.received_at,
                next_attempt: header.received_at,
                in_flight: true,
            },
        );
        let _ = self.inner.dispatch.send(Job {
            id: id.clone(),
            loaded: Some((header, message)),
        });
        Ok(id)
    }

    /// Messages in the queue, oldest first.
    pub fn list(&self) -> Vec<QueueItem> {
        let mut ids: Vec<String> = self.lock_entries().keys().cloned().collect();
        ids.sort();
        ids.iter().filter_map(|id| self.item(id).ok()).collect()
    }

    /// One message's queue entry.
    pub fn item(&self, id: &str) -> Result<QueueItem, SpoolError> {
        item_from_spool(&self.inner.spool, id)
    }

    pub fn stats(&self) -> QueueStats {
        let entries = self.lock_entries();
        let now = now_ms();
        let oldest = entries.values().map(|e| e.received_at).min().unwrap_or(now);
        QueueStats {
            messages: entries.len(),
            oldest_age_seconds: (now - oldest).max(0) as f64 / 1000.0,
        }
    }

    /// Schedules an immediate attempt for one message (or all with `None`).
    /// Returns how many messages were rescheduled.
    pub fn retry(&self, id: Option<&str>) -> usize {
        let mut n = 0;
        {
            let mut entries = self.lock_entries();
            for (eid, e) in entries.iter_mut() {
                if id.is_none_or(|i| i == eid) {
                    e.next_attempt = 0;
                    n += 1;
                    if id.is_some() {
                        self.inner.store.record(eid, EventKind::RetryRequested);
                    }
                }
            }
        }
        self.inner.wake.notify_one();
        n
    }

    /// Removes a message from the queue without delivering it (no DSN).
    pub fn delete(&self, id: &str) -> Result<(), SpoolError> {
        if !id::is_valid(id) {
            return Err(SpoolError::NotFound(id.to_string()));
        }
        let item = self.item(id)?;
        self.inner.spool.remove(id)?;
        self.lock_entries().remove(id);
        let recipients = item
            .recipients
            .iter()
            .filter(|r| r.state == RcptState::Pending)
            .map(|r| r.address.clone())
            .collect();
        self.inner
            .store
            .record(id, EventKind::Deleted { recipients });
        tracing::info!(id, "deleted from the queue by an administrator");
        Ok(())
    }

    async fn deliver(&self, job: Job) {
        let id = job.id;
        let (header, body) = match job.loaded {
            Some(l) => l,
            None => {
                let spool = self.inner.spool.clone();
                let read_id = id.clone();
                match tokio::task::spawn_blocking(move || spool.read(&read_id)).await {
                    Ok(Ok((h, b))) => (h, Arc::new(b)),
                    Ok(Err(SpoolError::NotFound(_))) => {
                        self.lock_entries().remove(&id);
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::error!(id = %id, error = %e, "cannot read queued message; will retry");
                        self.reschedule(&id, now_ms() + 60_000);
                        return;
                    }
                    Err(_) => return,
                }
            }
        };
        let mut state = self.inner.spool.read_state(&header);
        state.attempts += 1;

        // Group pending recipients by destination, keeping their envelope entries.
        let mut groups: Vec<(Destination, Vec<usize>)> = Vec::new();
        for (i, r) in state.recipients.iter().enumerate() {
            if r.state != RcptState::Pending {
                continue;
            }
            let dest = self.inner.config.router.route(&r.address);
            match groups.iter_mut().find(|(d, _)| *d == dest) {
                Some((_, v)) => v.push(i),
                None => groups.push((dest, vec![i])),
            }
        }
        let mut failures = Vec::new();
        for (dest, idxs) in groups {
            let rcpts: Vec<Recipient> = idxs
                .iter()
                .map(|&i| {
                    let addr = &state.recipients[i].address;
                    header
                        .envelope
                        .recipients
                        .iter()
                        .find(|r| &r.address == addr)
                        .cloned()
                        .unwrap_or(Recipient {
                            address: addr.clone(),
                            notify: None,
                            orcpt: None,
                        })
                })
                .collect();
            let started = Instant::now();
            let outcomes = self.attempt(&dest, &header, &body, &rcpts).await;
            metrics()
                .attempt_seconds
                .with_label_values(&[match dest {
                    Destination::Maildir(_) => "maildir",
                    Destination::Mx { .. } => "mx",
                    Destination::Server { .. } => "server",
                }])
                .observe(started.elapsed().as_secs_f64());
            self.record_attempt(&id, &rcpts, &outcomes);
            for (&i, (rcpt, outcome)) in idxs.iter().zip(rcpts.iter().zip(outcomes)) {
                let entry = &mut state.recipients[i];
                entry.state = outcome.state;
                entry.last = Some(outcome.text.clone());
                if outcome.state == RcptState::Failed {
                    failures.push((rcpt.clone(), outcome));
                }
            }
        }

        let now = now_ms();
        let pending: Vec<usize> = state
            .recipients
            .iter()
            .enumerate()
            .filter(|(_, r)| r.state == RcptState::Pending)
            .map(|(i, _)| i)
            .collect();
        let age = Duration::from_millis((now - header.received_at).max(0) as u64);
        if !pending.is_empty() && age >= self.inner.config.max_age {
            let mut expired = Vec::new();
            for i in pending.iter().copied() {
                let entry = &mut state.recipients[i];
                let last = entry
                    .last
                    .clone()
                    .unwrap_or_else(|| "no attempt succeeded".into());
                let reason = format!(
                    "message expired after {} in the queue; last error: {last}",
                    human_duration(self.inner.config.max_age)
                );
                entry.state = RcptState::Failed;
                entry.last = Some(reason.clone());
                expired.push(entry.address.clone());
                let rcpt = header
                    .envelope
                    .recipients
                    .iter()
                    .find(|r| r.address == entry.address)
                    .cloned()
                    .unwrap_or(Recipient {
                        address: entry.address.clone(),
                        notify: None,
                        orcpt: None,
                    });
                failures.push((rcpt, Outcome::permanent(reason, "4.4.7")));
            }
            self.inner.store.record(
                &id,
                EventKind::Expired {
                    recipients: expired,
                    reason: "maximum queue age reached".into(),
                },
            );
        }
        if !failures.is_empty() {
            self.bounce(&header, &body, &failures).await;
        }
        let still_pending = state.pending().count();
        if still_pending == 0 {
            let spool = self.inner.spool.clone();
            let rid = id.clone();
            let _ = tokio::task::spawn_blocking(move || spool.remove(&rid)).await;
            self.lock_entries().remove(&id);
        } else {
            let delay = backoff(
                self.inner.config.retry_initial,
                self.inner.config.retry_max,
                state.attempts,
            );
            state.next_attempt = now + delay.as_millis() as i64;
            if let Err(e) = self.inner.spool.write_state(&id, &state) {
                tracing::warn!(id = %id, error = %e, "cannot save delivery state");
            }
            self.reschedule(&id, state.next_attempt);
        }
    }

    fn reschedule(&self, id: &str, at: i64) {
        if let Some(e) = self.lock_entries().get_mut(id) {
            e.next_attempt = at;
            e.in_flight = false;
        }
    }

    fn record_attempt(&self, id: &str, rcpts: &[Recipient], outcomes: &[Outcome]) {
        // One trace event per distinct answer.
        let mut groups: Vec<(&Outcome, Vec<String>)> = Vec::new();
        for (r, o) in rcpts.iter().zip(outcomes) {
            match groups
                .iter_mut()
                .find(|(g, _)| g.text == o.text && g.state == o.state && g.remote == o.remote)
            {
                Some((_, v)) => v.push(r.address.clone()),
                None => groups.push((o, vec![r.address.clone()])),
            }
        }
        for (o, recipients) in groups {
            let outcome = match o.state {
                RcptState::Delivered => MessageStatus::Delivered,
                RcptState::Failed => MessageStatus::Bounced,
                RcptState::Pending => MessageStatus::Deferred,
            };
            metrics()
                .outcomes
                .with_label_values(&[outcome.as_str()])
                .inc_by(recipients.len() as u64);
            let level_info = o.state == RcptState::Delivered;
            if level_info {
                tracing::info!(id, to = ?recipients, relay = o.remote.as_deref().unwrap_or("-"), reply = %o.text, "delivered");
            } else {
                tracing::warn!(id, to = ?recipients, relay = o.remote.as_deref().unwrap_or("-"), reply = %o.text, status = outcome.as_str(), "not delivered");
            }
            self.inner.store.record(
                id,
                EventKind::Attempt {
                    recipients,
                    host: o.remote.clone().unwrap_or_else(|| "-".into()),
                    tls: o.tls.clone(),
                    reply: o.text.clone(),
                    outcome,
                },
            );
        }
    }

    /// Sends one DSN for the failed recipients that asked for one.
    async fn bounce(&self, header: &Header, body: &[u8], failures: &[(Recipient, Outcome)]) {
        let notify_given = |r: &Recipient| r.notify.is_some();
        let wanted: Vec<dsn::Failure> = failures
            .iter()
            .filter(|(r, _)| r.notify.unwrap_or_default().wants_failure(notify_given(r)))
            .map(|(r, o)| dsn::Failure {
                address: r.address.clone(),
                orcpt: r.orcpt.clone(),
                status: o.status.clone(),
                remote: o.remote.clone(),
                diagnostic: o.text.clone(),
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        if header.envelope.mail_from.is_empty() {
            tracing::warn!(id = %header.id, "not bouncing a message from the null sender");
            return;
        }
        let dsn_id = new_id();
        let message = dsn::build(
            &self.inner.config.hostname,
            &dsn_id,
            header,
            body,
            &wanted,
            now_ms(),
        );
        let envelope = Envelope {
            mail_from: String::new(),
            recipients: vec![Recipient {
                address: header.envelope.mail_from.clone(),
                notify: None,
                orcpt: None,
            }],
            eight_bit: header.envelope.eight_bit,
            smtputf8: header.envelope.smtputf8,
            ret: None,
            envid: None,
        };
        let size = message.len() as u64;
        let reception = EventKind::Received {
            client_ip: "local".into(),
            helo: None,
            tls: None,
            auth_user: None,
            mail_from: String::new(),
            recipients: vec![header.envelope.mail_from.clone()],
            size,
            message_id: Some(format!("{dsn_id}@{}", self.inner.config.hostname)),
            subject: Some("Undelivered Mail Returned to Sender".into()),
            reply: format!("delivery status notification for {}", header.id),
        };
        match self
            .enqueue(dsn_id.clone(), envelope, message, reception)
            .await
        {
            Ok(_) => {
                self.inner.store.record(
                    &header.id,
                    EventKind::DsnQueued {
                        dsn_id,
                        recipients: wanted.iter().map(|f| f.address.clone()).collect(),
                    },
                );
            }
            Err(e) => tracing::error!(id = %header.id, error = %e, "cannot queue the DSN"),
        }
    }

    fn dest_limit(&self, key: &str) -> Arc<Semaphore> {
        let mut map = self
            .inner
            .dest_limits
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(key.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.config.per_destination.max(1))))
            .clone()
    }

    async fn attempt(
        &self,
        dest: &Destination,
        header: &Header,
        body: &[u8],
        rcpts: &[Recipient],
    ) -> Vec<Outcome> {
        let cfg = &self.inner.config;
        let (hops, protocol) = match dest {
            Destination::Maildir(root) => {
                let mut out = Vec::with_capacity(rcpts.len());
                for r in rcpts {
                    let root = root.clone();
                    let (addr, from, id, host) = (
                        r.address.clone(),
                        header.envelope.mail_from.clone(),
                        header.id.clone(),
                        cfg.hostname.clone(),
                    );
                    let body = body.to_vec();
                    let res = tokio::task::spawn_blocking(move || {
                        maildir::deliver(&root, &addr, &from, &id, &host, &body)
                    })
                    .await;
                    out.push(match res {
                        Ok(Ok(path)) => Outcome {
                            state: RcptState::Delivered,
                            text: format!("250 2.0.0 delivered to Maildir {}", path.display()),
                            status: "2.0.0".into(),
                            remote: Some("maildir".into()),
                            tls: None,
                        },
                        Ok(Err(e)) => Outcome::temporary(format!("Maildir delivery failed: {e}")),
                        Err(e) => Outcome::temporary(format!("Maildir delivery failed: {e}")),
                    });
                }
                return out;
            }
            Destination::Server {
                host,
                port,
                protocol,
            } => match cfg.dns.addresses(host, *port).await {
                Ok(addrs) => (
                    addrs
                        .into_iter()
                        .map(|addr| Hop {
                            name: host.clone(),
                            addr,
                        })
                        .collect::<Vec<_>>(),
                    *protocol,
                ),
                Err(e) => return resolve_failure(e, rcpts.len()),
            },
            Destination::Mx { domain } => match cfg.dns.mx_hops(domain, cfg.mx_port).await {
                Ok(h) => (h, portcullis_smtp::Protocol::Smtp),
                Err(e) => return resolve_failure(e, rcpts.len()),
            },
        };
        let limit = self.dest_limit(&dest.key());
        let Ok(_permit) = limit.acquire_owned().await else {
            return vec![Outcome::temporary("queue shutting down".into()); rcpts.len()];
        };
        let refs: Vec<&Recipient> = rcpts.iter().collect();
        let mut last = Outcome::temporary(format!("no host for {} answered", dest.key()));
        for hop in &hops {
            // A pooled connection may have been closed by the server meanwhile:
            // on failure, try once more on a fresh one.
            for fresh in [false, true] {
                let pooled = if fresh {
                    None
                } else {
                    self.take_pooled(protocol, hop.addr)
                };
                let reused = pooled.is_some();
                let mut conn = match pooled {
                    Some(c) => c,
                    None => match client::connect(hop.addr, &hop.name, protocol, &cfg.client).await
                    {
                        Ok(c) => c,
                        Err(Ok(reply)) => {
                            // Greeting or EHLO refused: try the next host.
                            last = Outcome::from_reply(
                                &reply,
                                &format!("{}[{}]", hop.name, hop.addr.ip()),
                                None,
                            );
                            if reply.is_positive() {
                                last.state = RcptState::Pending;
                            }
                            break;
                        }
                        Err(Err(e)) => {
                            last = Outcome::temporary(e.to_string());
                            break;
                        }
                    },
                };
                let tls = conn
                    .tls
                    .as_ref()
                    .map(|t| format!("{} {}", t.version, t.cipher));
                match conn.send(&header.envelope, &refs, body).await {
                    Ok(outcome) => {
                        let remote = conn.remote.clone();
                        if conn.is_usable() {
                            self.put_pooled(protocol, hop.addr, conn);
                        }
                        return outcome
                            .replies
                            .iter()
                            .map(|r| Outcome::from_reply(r, &remote, tls.clone()))
                            .collect();
                    }
                    Err(e) => {
                        last = Outcome::temporary(format!("{}: {e}", conn.remote));
                        if !reused {
                            break;
                        }
                    }
                }
            }
        }
        vec![last; rcpts.len()]
    }

    fn pool_key(protocol: portcullis_smtp::Protocol, addr: SocketAddr) -> String {
        format!("{protocol:?}|{addr}")
    }

    fn take_pooled(
        &self,
        protocol: portcullis_smtp::Protocol,
        addr: SocketAddr,
    ) -> Option<Connection> {
        let mut pool = self.inner.pool.lock().unwrap_or_else(|p| p.into_inner());
        let list = pool.get_mut(&Self::pool_key(protocol, addr))?;
        while let Some((since, conn)) = list.pop() {
            // Servers drop idle clients (Postfix after 300 s); stay well inside that.
            if since.elapsed() < Duration::from_secs(10) {
                return Some(conn);
            }
        }
        None
    }

    fn put_pooled(&self, protocol: portcullis_smtp::Protocol, addr: SocketAddr, conn: Connection) {
        let mut pool = self.inner.pool.lock().unwrap_or_else(|p| p.into_inner());
        let list = pool.entry(Self::pool_key(protocol, addr)).or_default();
        if list.len() < self.inner.config.per_destination {
            list.push((Instant::now(), conn));
        }
    }
}

fn resolve_failure(e: ResolveFailure, n: usize) -> Vec<Outcome> {
    let o = match e {
        ResolveFailure::Temporary(m) => Outcome::temporary(m),
        ResolveFailure::Permanent(m) => Outcome::permanent(m, "5.1.2"),
    };
    vec![o; n]
}

/// Reads one queue entry straight from a spool folder (for the CLI, which works
/// whether or not the gateway runs).
pub fn item_from_spool(spool: &Spool, id: &str) -> Result<QueueItem, SpoolError> {
    if !id::is_valid(id) {
        return Err(SpoolError::NotFound(id.to_string()));
    }
    let (header, _) = spool.read(id)?;
    let state: State = spool.read_state(&header);
    Ok(QueueItem {
        id: header.id.clone(),
        received_at: header.received_at,
        mail_from: header.envelope.mail_from.clone(),
        size: header.size,
        attempts: state.attempts,
        next_attempt: state.next_attempt,
        recipients: state.recipients,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_naturally() {
        use super::human_duration as h;
        use std::time::Duration as D;
        assert_eq!(h(D::from_secs(5 * 86_400)), "5 days");
        assert_eq!(h(D::from_secs(3600)), "1 hour");
        assert_eq!(h(D::from_secs(90)), "90 seconds");
    }

    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let i = Duration::from_secs(300);
        let m = Duration::from_secs(3600);
        assert_eq!(backoff(i, m, 1), Duration::from_secs(300));
        assert_eq!(backoff(i, m, 2), Duration::from_secs(600));
        assert_eq!(backoff(i, m, 3), Duration::from_secs(1200));
        assert_eq!(backoff(i, m, 5), Duration::from_secs(3600));
        assert_eq!(backoff(i, m, 500), Duration::from_secs(3600));
    }
}
