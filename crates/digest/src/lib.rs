//! portcullis-digest: telling people about their held mail, and deleting it
//! only after they were told.
//!
//! A digest is a mail to one recipient listing what the quarantine holds for
//! them that no digest listed before, and what will be deleted soon, with a
//! link per action their release policy allows: release (their own copy),
//! request release (an administrator decides), allow the sender. Digests go
//! out at the configured times (`[digest] times`, UTC; daily at 08:00 by
//! default) and only to recipients with something new to report, through the
//! gateway's own durable queue, like any mail (`send`, `schedule`).
//!
//! Retention (`purge`): an entry past its expiry is removed only once a
//! digest has listed it to its recipient as expiring, and listing it so keeps
//! it at least `expiring_window_days` after that digest. With digests off,
//! entries are removed at their expiry. Pinned entries are never removed.
//! Nothing is deleted without having been listed.
//!
//! Modules, one job each: `config` (`[digest]`), `token` (signing and
//! checking links), `compose` (the message), `schedule` (when digests are
//! due), `send` (choosing entries, queueing, marking them listed), `act` (what
//! a link does when its button is pressed), `purge` (retention).
//!
//! Standards: RFC 5322 and MIME (RFC 2045-2049) for the digest, a
//! multipart/alternative of text/plain and text/html; RFC 3834
//! (`Auto-Submitted: auto-generated`, sent from the null reverse-path so it
//! never bounces back); RFC 2104 HMAC with SHA-256 for the links; RFC 4648
//! base64url (no padding) for the tokens.
//!
//! Security posture: a link's token is its only credential; nobody signs in.
//! Tokens are HMAC-SHA256 signed with a 32-byte key kept in the data folder
//! (`digest-link.key`, mode 0600, never logged or shown), checked in constant
//! time before anything in them is believed, and expire
//! (`link_validity_days`). Links that act are single-use: the first use is
//! recorded in the store and a second is refused. A GET never acts, because
//! mail scanners and link previewers fetch links: it shows a confirmation
//! page whose button POSTs. At the press the release policy is checked again,
//! and a link acts only for the one recipient and message it was made for.
//! The subjects and senders of held mail are hostile text: escaped in every
//! HTML part and page, and stripped of control and bidirectional characters
//! everywhere.

pub mod act;
pub mod compose;
pub mod config;
pub mod purge;
pub mod schedule;
pub mod send;
pub mod token;

pub use act::{ActOutcome, LinkError, LinkView};
pub use compose::{html_escape, human_time, one_line};
pub use config::{DigestConfig, DigestTime};
pub use purge::PurgeReport;
pub use send::SendReport;
pub use token::{LinkAction, LinkClaims, LinkKey, TokenError};

use portcullis_quarantine::{Permission, Quarantine, ReleasePolicy, Role};
use portcullis_queue::Queue;
use portcullis_scan::Category;
use portcullis_store::digest::DigestAudience;
use portcullis_store::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) const DAY_MS: i64 = 24 * 3600 * 1000;

/// Why digests could not be made or sent.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the digest: {0}")]
    Compose(#[from] std::io::Error),
    #[error(transparent)]
    Quarantine(#[from] portcullis_quarantine::QuarantineError),
    #[error("a digest worker stopped: {0}")]
    Worker(String),
}

/// What digests are made from besides the store: settings of other sections.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: DigestConfig,
    pub policy: ReleasePolicy,
    /// `server.hostname`.
    pub hostname: String,
    /// Where links point, without a trailing slash (`DigestConfig::base_url`).
    pub base_url: String,
    /// The organisation's own domains, whose recipients get digests; None:
    /// every recipient is ours (no `[[domains]]`, or `*`). Held mail for
    /// anyone else (outbound mail) is for administrators: no digest, and it
    /// goes at its expiry.
    pub own_domains: Option<Vec<String>>,
}

impl Settings {
    /// Who gets digests.
    pub fn audience(&self) -> DigestAudience {
        match (&self.own_domains, self.config.enabled) {
            (_, false) => DigestAudience::Nobody,
            (None, true) => DigestAudience::Everyone,
            (Some(d), true) => DigestAudience::Domains(d.clone()),
        }
    }
}

/// Digests, their links and the purge. Cheap to clone.
#[derive(Clone)]
pub struct Digests {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    key: LinkKey,
    store: Store,
    queue: Queue,
    quarantine: Quarantine,
    /// One digest run at a time (the schedule and `send --now`).
    run: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Digests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Digests")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// Where the link key is kept in a data folder.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("digest-link.key")
}

impl Digests {
    pub fn new(
        settings: Settings,
        key: LinkKey,
        store: Store,
        queue: Queue,
        quarantine: Quarantine,
    ) -> Digests {
        Digests {
            inner: Arc::new(Inner {
                settings,
                key,
                store,
                queue,
                quarantine,
                run: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn config(&self) -> &DigestConfig {
        &self.inner.settings.config
    }

    pub fn policy(&self) -> &ReleasePolicy {
        &self.inner.settings.policy
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// A stored category name as the scanner's category.
pub fn category(name: Option<&str>) -> Option<Category> {
    [
        Category::Clean,
        Category::Spam,
        Category::Phishing,
        Category::Malware,
        Category::Policy,
    ]
    .into_iter()
    .find(|c| Some(c.as_str()) == name)
}

/// What the recipient of a held entry of this category may do with it
/// (an entry without a known category: nothing).
pub fn user_permission(policy: &ReleasePolicy, category_name: Option<&str>) -> Permission {
    match category(category_name) {
        Some(c) => policy.permission(Role::User, c),
        None => Permission::None,
    }
}

/// The actions a digest offers for an entry: release and allow the sender
/// where the recipient may release it, request release where they must ask,
/// none for what only administrators release (malware by default). Entries
/// already requested or denied get none.
pub fn offered_actions(
    policy: &ReleasePolicy,
    entry: &portcullis_store::HeldEntry,
) -> Vec<LinkAction> {
    if entry.status != portcullis_store::ReleaseStatus::Held {
        return Vec::new();
    }
    match user_permission(policy, entry.category.as_deref()) {
        Permission::Release => {
            let mut v = vec![LinkAction::Release];
            if entry.sender.as_deref().is_some_and(|s| !s.is_empty()) {
                v.push(LinkAction::AllowSender);
            }
            v
        }
        Permission::Request => vec![LinkAction::RequestRelease],
        Permission::None => Vec::new(),
    }
}

/// Off the async threads, for the store's blocking calls.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DigestError> + Send + 'static,
) -> Result<T, DigestError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DigestError::Worker(e.to_string()))?
}
