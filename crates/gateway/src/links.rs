//! Secure links on the way in: the links of inbound mail from external senders
//! become `https://<links.host>/l/<token>` (`portcullis_links::rewrite`), and an
//! ARC set (RFC 8617) is added after the change, carrying the authentication
//! results the gateway saw, so that a downstream server that trusts this
//! gateway as a sealer keeps the verdict although the sender's DKIM signature
//! no longer verifies over the changed body.
//!
//! Which mail: only mail whose every recipient is in an accepted domain (mail
//! leaving the organisation is never rewritten), and not mail between the
//! organisation's own senders (clients in trusted networks or logged in)
//! unless `rewrite_internal` is set. Held mail is rewritten when it is
//! released ([`ReleaseLinks`]), not while it is held, so that a re-scan and
//! the preview see the links as they came; its seal then carries the
//! authentication results as checked again at release.
//!
//! Tokens name their recipient (a keyed hash) when the message has one
//! recipient; a message to several recipients is one copy for all, so its
//! tokens carry no recipient and a click is attributed to the message, whose
//! recipients the trace lists.
//!
//! A failure here never loses or holds back mail: a message that cannot be
//! rewritten is delivered as it came, one that cannot be sealed is delivered
//! rewritten without the seal; both are logged and counted.

use portcullis_links::arc::ArcSigner;
use portcullis_links::{KeyRing, LinksConfig, Rewrite, VendorLinks};
use portcullis_scan::SealInput;
use portcullis_store::EventKind;
use prometheus::{register_int_counter_vec, IntCounterVec};
use std::sync::{Arc, OnceLock};

/// Whether one message's links are rewritten, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Inbound mail: rewritten.
    Rewrite,
    /// Between the organisation's own senders and recipients.
    Internal,
    /// At least one recipient outside the accepted domains.
    Outbound,
}

/// Decides the scope: `internal_sender` is a client in a trusted network or a
/// logged-in user; `own` tells whether an address is in an accepted domain.
pub fn scope(
    internal_sender: bool,
    recipients: &[String],
    own: impl Fn(&str) -> bool,
    rewrite_internal: bool,
) -> Scope {
    if !recipients.iter().all(|r| own(r)) {
        Scope::Outbound
    } else if internal_sender && !rewrite_internal {
        Scope::Internal
    } else {
        Scope::Rewrite
    }
}

/// The link rewriting and ARC sealing the gateway applies.
pub struct LinkProtection {
    host: String,
    do_not_rewrite: Vec<String>,
    rewrite_internal: bool,
    vendor_links: VendorLinks,
    keys: KeyRing,
    sealer: Option<ArcSigner>,
}

/// A message whose links were rewritten.
pub struct Protected {
    pub message: Vec<u8>,
    /// What to record in the trace.
    pub event: EventKind,
}

fn counter() -> &'static IntCounterVec {
    static C: OnceLock<IntCounterVec> = OnceLock::new();
    C.get_or_init(|| {
        register_int_counter_vec!(
            "portcullis_links_messages_total",
            "Inbound messages by what link protection did: rewritten, unchanged (no link to rewrite), failed (delivered as it came), unsealed (rewritten, ARC seal failed)",
            &["result"]
        )
        .expect("metric registers once")
    })
}

impl LinkProtection {
    /// From `[links]` (its `host` already checked) with the signing keys and
    /// the ARC sealer; `None` when rewriting is off.
    pub fn new(
        config: &LinksConfig,
        keys: KeyRing,
        sealer: Option<ArcSigner>,
    ) -> Option<Arc<LinkProtection>> {
        if !config.enabled {
            return None;
        }
        Some(Arc::new(LinkProtection {
            host: config.host.clone()?,
            do_not_rewrite: config.do_not_rewrite.clone(),
            rewrite_internal: config.rewrite_internal,
            vendor_links: config.vendor_links,
            keys,
            sealer,
        }))
    }

    pub fn rewrite_internal(&self) -> bool {
        self.rewrite_internal
    }

    /// Rewrites `message` (CPU work: call it off the async threads) and seals
    /// it when the authentication results are known; `None` when nothing was
    /// rewritten and the message goes on as it is.
    pub fn protect(
        &self,
        id: &str,
        recipients: &[String],
        message: &[u8],
        seal: Option<&SealInput>,
        now_ms: i64,
    ) -> Option<Protected> {
        // One recipient: the tokens name them; several share one copy.
        let recipient = match recipients {
            [only] => only.as_str(),
            _ => "",
        };
        let rewritten = match portcullis_links::rewrite(
            message,
            &Rewrite {
                keys: &self.keys,
                host: &self.host,
                message: id,
                recipient,
                now: now_ms.div_euclid(1000),
                do_not_rewrite: &self.do_not_rewrite,
                vendor_links: self.vendor_links,
            },
        ) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(id, error = %e, "links not rewritten; delivering the message as it came");
                counter().with_label_values(&["failed"]).inc();
                return None;
            }
        };
        if rewritten.rewritten == 0 && rewritten.unwrapped == 0 {
            counter().with_label_values(&["unchanged"]).inc();
            return None;
        }
        let mut out = rewritten.message;
        let mut arc_sealed = false;
        if let (Some(sealer), Some(input)) = (&self.sealer, seal) {
            match sealer.seal(&out, input) {
                Ok(fields) => {
                    let mut sealed = Vec::with_capacity(fields.len() + out.len());
                    sealed.extend_from_slice(fields.as_bytes());
                    sealed.extend_from_slice(&out);
                    out = sealed;
                    arc_sealed = true;
                }
                Err(e) => {
                    tracing::warn!(id, error = %e, "links rewritten but the ARC seal failed; delivering without it");
                    counter().with_label_values(&["unsealed"]).inc();
                }
            }
        }
        counter().with_label_values(&["rewritten"]).inc();
        let mut urls = rewritten.urls;
        urls.truncate(portcullis_store::clicks::MAX_URLS_PER_MESSAGE);
        Some(Protected {
            message: out,
            event: EventKind::LinksRewritten {
                rewritten: rewritten.rewritten,
                unwrapped: rewritten.unwrapped,
                kept: rewritten.kept,
                urls,
                arc_sealed,
            },
        })
    }
}

/// Link protection for released copies of held mail: the same scope and
/// rewriting as on arrival, with the sender authenticated again (the results
/// of arrival are not kept with held mail) for the ARC seal.
pub struct ReleaseLinks {
    protection: Arc<LinkProtection>,
    scanner: Arc<portcullis_scan::Scanner>,
    policy: crate::Policy,
}

impl ReleaseLinks {
    pub fn new(
        protection: Arc<LinkProtection>,
        scanner: Arc<portcullis_scan::Scanner>,
        policy: crate::Policy,
    ) -> ReleaseLinks {
        ReleaseLinks {
            protection,
            scanner,
            policy,
        }
    }

    async fn prepare_copy(
        &self,
        held: &portcullis_quarantine::Held,
        release_id: &str,
        recipients: &[String],
        message: Vec<u8>,
    ) -> portcullis_quarantine::Prepared {
        let client_ip: Option<std::net::IpAddr> = held.client_ip.parse().ok();
        let internal_sender = client_ip.is_some_and(|ip| self.policy.is_trusted(ip));
        let in_scope = scope(
            internal_sender,
            recipients,
            |r| self.policy.accepts_domain(r),
            self.protection.rewrite_internal(),
        ) == Scope::Rewrite;
        if !in_scope {
            return portcullis_quarantine::Prepared {
                message,
                event: None,
            };
        }
        let envelope = portcullis_scan::Envelope {
            client_ip,
            helo: None,
            mail_from: Some(held.envelope.mail_from.clone()),
            recipients: recipients.to_vec(),
            tls: None,
            auth_user: None,
            trusted: internal_sender,
            received_at: Some(held.received_at.div_euclid(1000)),
        };
        let auth = if internal_sender {
            None
        } else {
            self.scanner.authenticate(&message, &envelope).await
        };
        let (protection, id, rcpts) = (
            self.protection.clone(),
            release_id.to_string(),
            recipients.to_vec(),
        );
        let shared = Arc::new(message);
        let input = shared.clone();
        let done = tokio::task::spawn_blocking(move || {
            let seal = auth.as_ref().and_then(|a| a.seal.as_ref());
            protection.protect(&id, &rcpts, &input, seal, portcullis_store::now_ms())
        })
        .await;
        let (message, event) = match done {
            Ok(Some(p)) => (p.message, Some(p.event)),
            Ok(None) => (
                Arc::try_unwrap(shared).unwrap_or_else(|s| (*s).clone()),
                None,
            ),
            Err(e) => {
                tracing::error!(release_id, error = %e, "link rewriting of a released copy failed; releasing it as it was");
                (
                    Arc::try_unwrap(shared).unwrap_or_else(|s| (*s).clone()),
                    None,
                )
            }
        };
        portcullis_quarantine::Prepared { message, event }
    }
}

impl portcullis_quarantine::ReleaseHook for ReleaseLinks {
    fn prepare<'a>(
        &'a self,
        held: &'a portcullis_quarantine::Held,
        release_id: &'a str,
        recipients: &'a [String],
        message: Vec<u8>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = portcullis_quarantine::Prepared> + Send + 'a>,
    > {
        Box::pin(self.prepare_copy(held, release_id, recipients, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(a: &str) -> bool {
        a.ends_with("@example.org")
    }

    #[test]
    fn only_inbound_mail_is_rewritten() {
        let inside = vec!["a@example.org".to_string(), "b@example.org".to_string()];
        let mixed = vec!["a@example.org".to_string(), "x@else.test".to_string()];
        assert_eq!(scope(false, &inside, own, false), Scope::Rewrite);
        assert_eq!(scope(true, &inside, own, false), Scope::Internal);
        assert_eq!(scope(true, &inside, own, true), Scope::Rewrite);
        assert_eq!(scope(true, &mixed, own, true), Scope::Outbound);
        assert_eq!(scope(false, &mixed, own, false), Scope::Outbound);
    }
}
