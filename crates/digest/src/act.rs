//! What a digest link does. [`Digests::inspect`] reads a link without acting
//! (for the confirmation page a GET shows); [`Digests::act`] does what it
//! says, once, for its one recipient: the token is checked, the release
//! policy is asked again (it may have changed since the digest went out),
//! the link's first use is recorded, and only then the action runs. An action
//! that fails for a passing reason (the queue could not take the copy) gives
//! the link back, so it can be tried again.

use crate::token::{verify, LinkAction, LinkClaims, TokenError};
use crate::{blocking, user_permission, DigestError, Digests};
use portcullis_quarantine::{Permission, ReleaseError};
use portcullis_store::digest::SenderRule;
use portcullis_store::{HeldEntry, HeldQuery, ReleaseStatus, StoreError};

/// Why a link did nothing.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("this link was already used")]
    Used,
    #[error("the message is no longer held for you ({})", .0.as_str())]
    NotHeld(ReleaseStatus),
    #[error("the message is no longer in the quarantine")]
    NotFound,
    #[error("this action is no longer allowed for this message")]
    NotAllowed,
    #[error("the action could not be done now: {0}")]
    Unavailable(String),
}

impl From<StoreError> for LinkError {
    fn from(e: StoreError) -> Self {
        LinkError::Unavailable(e.to_string())
    }
}

impl From<DigestError> for LinkError {
    fn from(e: DigestError) -> Self {
        LinkError::Unavailable(e.to_string())
    }
}

/// A link, read without acting.
#[derive(Debug, Clone)]
pub struct LinkView {
    pub claims: LinkClaims,
    pub entry: HeldEntry,
    /// Already used (pressing it again will be refused).
    pub used: bool,
    /// The policy still allows the action.
    pub allowed: bool,
}

/// What a link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActOutcome {
    /// Released to the recipient; the copy's trace id.
    Released { release_id: String },
    /// Release requested from an administrator.
    Requested,
    /// The sender was added to the recipient's allowed senders (false: it
    /// was there already).
    SenderAllowed { sender: String, added: bool },
}

fn allowed(action: LinkAction, permission: Permission) -> bool {
    match action {
        LinkAction::Release | LinkAction::AllowSender => permission == Permission::Release,
        LinkAction::RequestRelease => permission != Permission::None,
    }
}

impl Digests {
    fn claims(&self, token: &str) -> Result<LinkClaims, TokenError> {
        verify(
            &self.inner.key,
            token,
            portcullis_store::now_ms().div_euclid(1000),
        )
    }

    fn entry(&self, claims: &LinkClaims) -> Result<HeldEntry, LinkError> {
        self.inner.store.flush()?;
        self.inner
            .store
            .held(&HeldQuery {
                message: Some(claims.message.clone()),
                recipient: Some(claims.recipient.clone()),
                limit: 1,
                ..HeldQuery::default()
            })?
            .into_iter()
            .next()
            .ok_or(LinkError::NotFound)
    }

    /// Reads a link without acting. Blocking: call off the async threads.
    pub fn inspect(&self, token: &str) -> Result<LinkView, LinkError> {
        let claims = self.claims(token)?;
        let entry = self.entry(&claims)?;
        let used = self.inner.store.link_used(&claims.nonce_text())?;
        let allowed = allowed(
            claims.action,
            user_permission(self.policy(), entry.category.as_deref()),
        );
        Ok(LinkView {
            claims,
            entry,
            used,
            allowed,
        })
    }

    /// Does what the link says, once.
    pub async fn act(&self, token: &str) -> Result<(LinkClaims, ActOutcome), LinkError> {
        let me = self.clone();
        let token = token.to_string();
        let (claims, entry) = blocking(move || {
            let claims = me.claims(&token).map_err(LinkError::from);
            let found = claims.and_then(|c| {
                let e = me.entry(&c)?;
                Ok((c, e))
            });
            Ok(found)
        })
        .await??;
        if !allowed(
            claims.action,
            user_permission(self.policy(), entry.category.as_deref()),
        ) {
            return Err(LinkError::NotAllowed);
        }
        let nonce = claims.nonce_text();
        let store = self.inner.store.clone();
        let (n, keep_until) = (nonce.clone(), claims.expires_at.saturating_mul(1000));
        if !blocking(move || Ok(store.use_link(&n, keep_until)?)).await? {
            return Err(LinkError::Used);
        }
        // Release and request need the entry still held; the release itself
        // is exactly-once whatever races it.
        if claims.action != LinkAction::AllowSender && entry.status != ReleaseStatus::Held {
            return Err(LinkError::NotHeld(entry.status));
        }
        let outcome = self.perform(&claims, &entry).await;
        if let Err(LinkError::Unavailable(_)) = &outcome {
            let store = self.inner.store.clone();
            let _ = blocking(move || Ok(store.unuse_link(&nonce)?)).await;
        }
        outcome.map(|o| (claims, o))
    }

    async fn perform(
        &self,
        claims: &LinkClaims,
        entry: &HeldEntry,
    ) -> Result<ActOutcome, LinkError> {
        let actor = format!("digest link ({})", claims.recipient);
        let release_error = |e: ReleaseError| match e {
            ReleaseError::NotFound(_) => LinkError::NotFound,
            ReleaseError::NothingToDo { statuses, .. } => LinkError::NotHeld(
                statuses
                    .first()
                    .map(|(_, s)| *s)
                    .unwrap_or(ReleaseStatus::Deleted),
            ),
            other => LinkError::Unavailable(other.to_string()),
        };
        match claims.action {
            LinkAction::Release => {
                let released = portcullis_quarantine::release(
                    &self.inner.quarantine,
                    &self.inner.store,
                    &self.inner.queue,
                    &claims.message,
                    Some(vec![entry.recipient.clone()]),
                    &actor,
                )
                .await
                .map_err(release_error)?;
                Ok(ActOutcome::Released {
                    release_id: released.release_id,
                })
            }
            LinkAction::RequestRelease => {
                let (store, id, rcpt) = (
                    self.inner.store.clone(),
                    claims.message.clone(),
                    entry.recipient.clone(),
                );
                blocking(move || {
                    Ok(portcullis_quarantine::request(&store, &id, &rcpt, &actor)
                        .map_err(release_error))
                })
                .await??;
                Ok(ActOutcome::Requested)
            }
            LinkAction::AllowSender => {
                let sender = entry
                    .sender
                    .clone()
                    .filter(|s| !s.is_empty())
                    .ok_or(LinkError::NotAllowed)?;
                let (store, rcpt, s) = (
                    self.inner.store.clone(),
                    entry.recipient.clone(),
                    sender.clone(),
                );
                let added = blocking(move || {
                    let added = store.set_sender_rule(&rcpt, &s, SenderRule::Allow, &actor)?;
                    store.audit(&actor, "allow sender", &rcpt, 1, Some(&s))?;
                    Ok(added)
                })
                .await?;
                Ok(ActOutcome::SenderAllowed { sender, added })
            }
        }
    }
}
