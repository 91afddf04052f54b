//! Sending digests: choose per recipient the live entries no digest listed
//! yet and those expiring within the window not yet listed as expiring, queue
//! one mail per recipient through the gateway's queue (so it is retried and
//! traced like any mail), then mark the entries listed. A digest that could
//! not be queued marks nothing: its entries are in the next one.
//!
//! The schedule runs [`Digests::send_now`] at each configured time; the time
//! of the last run is kept in the store, so a stop over a digest time costs
//! one late digest, not a lost or a doubled one.

use crate::compose::{self, DigestItem};
use crate::schedule;
use crate::token::{sign, LinkClaims};
use crate::{blocking, offered_actions, DigestError, Digests};
use portcullis_smtp::{Envelope, Recipient};
use portcullis_store::digest::{DigestCandidate, Listed};
use portcullis_store::EventKind;
use tokio::sync::watch;

/// Entries one digest lists at most; the rest wait for the next one (the
/// expiring first, so the purge waits for them).
pub const MAX_PER_DIGEST: usize = 500;
/// Entries one run looks at.
const MAX_CANDIDATES: usize = 200_000;

/// What a run sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SendReport {
    /// Digests queued.
    pub digests: usize,
    /// Entries they list.
    pub entries: usize,
    /// Who got one, with its trace id.
    pub sent: Vec<(String, String)>,
    /// Recipients whose digest could not be queued, and why.
    pub failed: Vec<(String, String)>,
}

impl Digests {
    /// Sends every digest that has something to report, now.
    pub async fn send_now(&self) -> Result<SendReport, DigestError> {
        let _one_at_a_time = self.inner.run.lock().await;
        let now = portcullis_store::now_ms();
        let window = self.config().expiring_window_ms();
        let store = self.inner.store.clone();
        let audience = self.inner.settings.audience();
        let candidates = blocking(move || {
            store.flush()?;
            Ok(store.digest_candidates(now + window, MAX_CANDIDATES, &audience)?)
        })
        .await?;
        let mut report = SendReport::default();
        for group in by_recipient(candidates) {
            let recipient = group[0].entry.recipient.clone();
            match self.send_one(&recipient, group, now).await {
                Ok((id, n)) => {
                    report.digests += 1;
                    report.entries += n;
                    report.sent.push((recipient, id));
                }
                Err(e) => {
                    tracing::error!(recipient = %recipient, error = %e, "digest not sent; its entries stay for the next one");
                    report.failed.push((recipient, e.to_string()));
                }
            }
        }
        if report.digests > 0 || !report.failed.is_empty() {
            tracing::info!(
                digests = report.digests,
                entries = report.entries,
                failed = report.failed.len(),
                "quarantine digests queued"
            );
        }
        Ok(report)
    }

    /// Composes, queues and marks one recipient's digest. Returns its trace
    /// id and how many entries it lists.
    async fn send_one(
        &self,
        recipient: &str,
        mut group: Vec<DigestCandidate>,
        now: i64,
    ) -> Result<(String, usize), DigestError> {
        let more = group.len().saturating_sub(MAX_PER_DIGEST);
        group.truncate(MAX_PER_DIGEST);
        let settings = &self.inner.settings;
        let link_expiry =
            now.div_euclid(1000) + i64::from(settings.config.link_validity_days) * 86_400;
        let items: Vec<DigestItem> = group
            .iter()
            .map(|c| DigestItem {
                entry: c.entry.clone(),
                expiring: c.expiring,
                links: offered_actions(&settings.policy, &c.entry)
                    .into_iter()
                    .map(|action| {
                        let claims = LinkClaims::new(
                            action,
                            &c.entry.message,
                            &c.entry.recipient,
                            link_expiry,
                        );
                        let token = sign(&self.inner.key, &claims);
                        (action, format!("{}/q/{token}", settings.base_url))
                    })
                    .collect(),
            })
            .collect();
        let id = portcullis_queue::id::new_id();
        let composed = compose::compose(
            &compose::Envelope {
                hostname: settings.hostname.clone(),
                from: settings.config.from_address(&settings.hostname),
                recipient: recipient.to_string(),
                now,
                id: id.clone(),
                link_validity_days: settings.config.link_validity_days,
                more,
            },
            &items,
        )?;
        let envelope = Envelope {
            // RFC 3834: from the null reverse-path; a digest never bounces.
            mail_from: String::new(),
            recipients: vec![Recipient {
                address: recipient.to_string(),
                notify: None,
                orcpt: None,
            }],
            eight_bit: false,
            smtputf8: !recipient.is_ascii(),
            ret: None,
            envid: None,
        };
        let reception = EventKind::Received {
            client_ip: "local".into(),
            helo: None,
            tls: None,
            auth_user: None,
            mail_from: String::new(),
            recipients: vec![recipient.to_string()],
            size: composed.message.len() as u64,
            message_id: Some(composed.message_id.clone()),
            subject: Some(composed.subject.clone()),
            reply: format!(
                "quarantine digest for {recipient}: {} held entries listed",
                items.len()
            ),
        };
        self.inner
            .queue
            .enqueue(id.clone(), envelope, composed.message, reception)
            .await
            .map_err(|e| DigestError::Worker(format!("queue: {e}")))?;
        let listed: Vec<Listed> = group
            .iter()
            .map(|c| Listed {
                message: c.entry.message.clone(),
                recipient: c.entry.recipient.clone(),
                expiring: c.expiring,
            })
            .collect();
        let n = listed.len();
        let store = self.inner.store.clone();
        let keep = settings.config.expiring_window_ms();
        blocking(move || Ok(store.mark_listed(&listed, now, keep)?)).await?;
        Ok((id, n))
    }

    /// Sends digests at the configured times until `stop`. The first start
    /// sends nothing at once: it remembers now as the last run.
    pub async fn run_schedule(self, mut stop: watch::Receiver<bool>) {
        if !self.config().enabled {
            tracing::warn!("digests are off ([digest] enabled = false): held mail is purged at its expiry without anyone being told");
            return;
        }
        let times = self.config().times.clone();
        let store = self.inner.store.clone();
        let mut last = match blocking(move || {
            Ok(match store.digest_last_run()? {
                Some(t) => t,
                None => {
                    let now = portcullis_store::now_ms();
                    store.set_digest_last_run(now)?;
                    now
                }
            })
        })
        .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot read when digests last went out; digests are not scheduled");
                return;
            }
        };
        loop {
            let now = portcullis_store::now_ms();
            if let Some(slot) = schedule::due_slot(&times, last, now) {
                if let Err(e) = self.send_now().await {
                    tracing::error!(error = %e, "digest run failed; its entries wait for the next one");
                }
                last = slot;
                let store = self.inner.store.clone();
                if let Err(e) = blocking(move || Ok(store.set_digest_last_run(slot)?)).await {
                    tracing::error!(error = %e, "cannot record the digest run");
                }
                continue;
            }
            // Wake at the next time, and at least each minute (the clock may
            // be set meanwhile).
            let wait = schedule::next_slot(&times, now)
                .map(|s| (s - now).clamp(0, 60_000))
                .unwrap_or(60_000);
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(wait as u64 + 5)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// Candidates (ordered by recipient) in groups of one recipient each, the
/// address compared without case.
fn by_recipient(candidates: Vec<DigestCandidate>) -> Vec<Vec<DigestCandidate>> {
    let mut groups: Vec<Vec<DigestCandidate>> = Vec::new();
    for c in candidates {
        match groups.last_mut() {
            Some(g)
                if g[0]
                    .entry
                    .recipient
                    .eq_ignore_ascii_case(&c.entry.recipient) =>
            {
                g.push(c)
            }
            _ => groups.push(vec![c]),
        }
    }
    groups
}
