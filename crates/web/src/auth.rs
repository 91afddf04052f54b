//! Who is asking, and what they may do: the identity behind each request to
//! the API and the console.
//!
//! An identity comes from, in this order: an API token
//! (`Authorization: Bearer pct_<id>_<secret>`), a signed-in session (the
//! `portcullis_session` cookie set by `POST /api/login`), or, when
//! `trust_loopback` is on (the default), a client on loopback that is not a
//! browser (no `Origin`, no `Sec-Fetch-Site`), which acts as an administrator
//! (the command line on the gateway's own host; a browser there could be
//! driven by any web page it shows). Anything else is 401. Roles: `admin` (everything), `helpdesk` (everyone's held mail, release
//! all but malware), `user` (only mail held for their own addresses).
//!
//! Accounts come from an [`Accounts`] directory: local accounts with argon2
//! hashes today; an LDAP directory can implement the same trait.
//!
//! Security posture: passwords are verified with argon2 on a blocking thread
//! and never logged; failed sign-ins are limited per client address and per
//! name (5 in 15 minutes, then 429 with Retry-After), and an unknown name costs
//! the same hash as a known one. Session cookies are random 256-bit secrets,
//! `HttpOnly; Secure; SameSite=Strict`; the store keeps only their SHA-256, as
//! for API tokens, compared in constant time. A session's changes (any method
//! but GET) must carry its CSRF token in `X-CSRF-Token`.

use crate::{error, App};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use portcullis_quarantine::Role;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COOKIE: &str = "portcullis_session";
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A person who can sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub role: Role,
    /// The mail addresses whose held mail they see (a user's own mailboxes).
    pub addresses: Vec<String>,
}

/// Where accounts and their passwords live.
pub trait Accounts: Send + Sync {
    /// The account if `password` is right. Slow on purpose (a password hash).
    fn verify(&self, name: &str, password: &str) -> Option<Account>;
    /// The account's current role and addresses (they may change while a
    /// session lasts; a removed account's sessions stop working).
    fn account(&self, name: &str) -> Option<Account>;
}

/// Local accounts: name to argon2 PHC hash, from the configuration.
pub struct LocalAccounts {
    accounts: HashMap<String, (String, Account)>,
}

impl LocalAccounts {
    pub fn new(list: Vec<(Account, String)>) -> LocalAccounts {
        LocalAccounts {
            accounts: list
                .into_iter()
                .map(|(a, hash)| (a.name.to_ascii_lowercase(), (hash, a)))
                .collect(),
        }
    }
}

/// A fixed hash for unknown names, so they cost as much as known ones.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Gf6i4y5tB9m7E2Wb2c6x3kq8mRz9rN1vQ0pL5sT7uY4";

impl Accounts for LocalAccounts {
    fn verify(&self, name: &str, password: &str) -> Option<Account> {
        use argon2::{Argon2, PasswordHash, PasswordVerifier};
        let found = self.accounts.get(&name.to_ascii_lowercase());
        let hash = found.map(|(h, _)| h.as_str()).unwrap_or(DUMMY);
        let ok = PasswordHash::new(hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        match (ok, found) {
            (true, Some((_, account))) => Some(account.clone()),
            _ => None,
        }
    }

    fn account(&self, name: &str) -> Option<Account> {
        self.accounts
            .get(&name.to_ascii_lowercase())
            .map(|(_, a)| a.clone())
    }
}

/// The access settings and state shared by every request.
pub struct Access {
    pub accounts: Arc<dyn Accounts>,
    /// Clients on loopback act as administrators without credentials.
    pub trust_loopback: bool,
    pub session_lifetime: Duration,
    /// Set `Secure` on the session cookie (off only for plain-HTTP test rigs
    /// reached by a name other than localhost).
    pub secure_cookies: bool,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Access {
    pub fn new(accounts: Arc<dyn Accounts>, trust_loopback: bool) -> Access {
        Access {
            accounts,
            trust_loopback,
            session_lifetime: Duration::from_secs(8 * 3600),
            secure_cookies: true,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds to wait if `key` has failed too often lately.
    fn locked_out(&self, key: &str) -> Option<u64> {
        let map = self.failures.lock().ok()?;
        let (n, since) = map.get(key)?;
        let left = FAILURE_WINDOW.checked_sub(since.elapsed())?;
        (*n >= MAX_FAILURES).then(|| left.as_secs().max(1))
    }

    fn failed(&self, key: String) {
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 100_000 {
                map.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
            }
            let e = map.entry(key).or_insert((0, Instant::now()));
            if e.1.elapsed() >= FAILURE_WINDOW {
                *e = (0, Instant::now());
            }
            e.0 += 1;
        }
    }

    fn succeeded(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Loopback,
    Token,
    Session,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    pub addresses: Vec<String>,
    pub via: Via,
    pub peer: IpAddr,
}

impl Identity {
    /// The name for the trace and the audit log.
    pub fn actor(&self) -> String {
        format!("{}@{}", self.name, self.peer)
    }

    /// Whether held mail for `recipient` is this user's own.
    pub fn owns(&self, recipient: &str) -> bool {
        self.addresses
            .iter()
            .any(|a| a.eq_ignore_ascii_case(recipient))
    }

    pub fn at_least(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// Why a request was refused before it was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No or bad credentials.
    Unauthenticated,
    /// A session's change without its CSRF token.
    Csrf,
    /// Signed in, but the role does not allow it.
    Forbidden,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::Unauthenticated => {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    "sign in (POST /api/login) or send an API token (Authorization: Bearer ...)",
                );
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            Denied::Csrf => error(
                StatusCode::FORBIDDEN,
                "missing or wrong X-CSRF-Token (it comes with the sign-in answer)",
            ),
            Denied::Forbidden => error(StatusCode::FORBIDDEN, "your role does not allow this"),
        }
    }
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A random secret, base64url without padding.
pub(crate) fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::Rng::fill(&mut rand::thread_rng(), buf.as_mut_slice());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Makes an API token: the public id, the whole token to hand out once, and
/// the hash to store.
pub fn new_token() -> (String, String, String) {
    let id = random_secret(6).replace(['-', '_'], "x");
    let secret = random_secret(32);
    let hash = sha256_hex(secret.as_bytes());
    (id.clone(), format!("pct_{id}_{secret}"), hash)
}

/// Finds who sent a request. `method` decides whether a session needs its
/// CSRF token.
pub(crate) async fn identify(
    app: &App,
    peer: SocketAddr,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Identity, Denied> {
    let peer_ip = peer.ip().to_canonical();
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|t| t.trim().strip_prefix("pct_"))
            .and_then(|t| t.split_once('_'))
            .ok_or(Denied::Unauthenticated)?;
        let (id, secret) = (token.0.to_string(), token.1.to_string());
        let store = app.store.clone();
        let found = tokio::task::spawn_blocking(move || store.token(&id))
            .await
            .map_err(|_| Denied::Unauthenticated)?
            .map_err(|_| Denied::Unauthenticated)?;
        let (name, role, hash) = found.ok_or(Denied::Unauthenticated)?;
        if !constant_time_eq(&hash, &sha256_hex(secret.as_bytes())) {
            return Err(Denied::Unauthenticated);
        }
        let role = parse_role(&role).ok_or(Denied::Unauthenticated)?;
        return Ok(Identity {
            name: format!("token:{name}"),
            role,
            addresses: Vec::new(),
            via: Via::Token,
            peer: peer_ip,
        });
    }
    if let Some(secret) = cookie(headers) {
        let store = app.store.clone();
        let hash = sha256_hex(secret.as_bytes());
        let row = tokio::task::spawn_blocking(move || store.session(&hash))
            .await
            .map_err(|_| Denied::Unauthenticated)?
            .map_err(|_| Denied::Unauthenticated)?
            .ok_or(Denied::Unauthenticated)?;
        // The directory's current view: a removed account is signed out, a
        // changed role applies at once.
        let account = app
            .access
            .accounts
            .account(&row.user)
            .ok_or(Denied::Unauthenticated)?;
        if method != Method::GET && method != Method::HEAD {
            let sent = headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !constant_time_eq(sent, &row.csrf) {
                return Err(Denied::Csrf);
            }
        }
        return Ok(Identity {
            name: account.name,
            role: account.role,
            addresses: account.addresses,
            via: Via::Session,
            peer: peer_ip,
        });
    }
    // A browser on this host is not the command line: any page it shows could
    // send requests here (cross-site POSTs need no preflight), so a request
    // that carries a browser's Origin or Sec-Fetch-Site must sign in.
    let from_browser =
        headers.contains_key(header::ORIGIN) || headers.contains_key("sec-fetch-site");
    if app.access.trust_loopback && peer_ip.is_loopback() && !from_browser {
        let named: String = headers
            .get("x-portcullis-actor")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("local")
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect();
        return Ok(Identity {
            name: named,
            role: Role::Admin,
            addresses: Vec::new(),
            via: Via::Loopback,
            peer: peer_ip,
        });
    }
    Err(Denied::Unauthenticated)
}

/// The identity as a handler argument: `who: Identity` (anyone signed in or
/// trusted), `Staff(who)` (helpdesk or admin) or `Admin(who)`; a request
/// without one is refused before the handler runs.
impl axum::extract::FromRequestParts<App> for Identity {
    type Rejection = Denied;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &App,
    ) -> Result<Self, Denied> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .ok_or(Denied::Unauthenticated)?;
        identify(app, peer, &parts.method, &parts.headers).await
    }
}

/// Helpdesk or admin.
pub struct Staff(pub Identity);

/// Admin only.
pub struct Admin(pub Identity);

/// The identity of a request whose role is at least `role`.
async fn at_least(
    parts: &mut axum::http::request::Parts,
    app: &App,
    role: Role,
) -> Result<Identity, Denied> {
    use axum::extract::FromRequestParts;
    let who = Identity::from_request_parts(parts, app).await?;
    if who.at_least(role) {
        Ok(who)
    } else {
        Err(Denied::Forbidden)
    }
}

impl axum::extract::FromRequestParts<App> for Staff {
    type Rejection = Denied;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &App,
    ) -> Result<Self, Denied> {
        at_least(parts, app, Role::Helpdesk).await.map(Staff)
    }
}

impl axum::extract::FromRequestParts<App> for Admin {
    type Rejection = Denied;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &App,
    ) -> Result<Self, Denied> {
        at_least(parts, app, Role::Admin).await.map(Admin)
    }
}

pub fn parse_role(s: &str) -> Option<Role> {
    match s {
        "admin" => Some(Role::Admin),
        "helpdesk" => Some(Role::Helpdesk),
        "user" => Some(Role::User),
        _ => None,
    }
}

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::Helpdesk => "helpdesk",
        Role::User => "user",
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    name: String,
    password: String,
}

/// `POST /api/login {"name", "password"}`: a session cookie and its CSRF token.
pub(crate) async fn login(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(app): State<App>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(login) = serde_json::from_slice::<Login>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "body: {\"name\": \"...\", \"password\": \"...\"}",
        );
    };
    if login.name.len() > 256 || login.password.len() > 1024 {
        return error(StatusCode::BAD_REQUEST, "name or password too long");
    }
    let by_ip = format!("ip:{}", peer.ip().to_canonical());
    let by_name = format!("name:{}", login.name.to_ascii_lowercase());
    if let Some(wait) = app
        .access
        .locked_out(&by_ip)
        .or_else(|| app.access.locked_out(&by_name))
    {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many failed sign-ins; try again in {wait} s"),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let accounts = app.access.accounts.clone();
    let (name, password) = (login.name.clone(), login.password);
    let verified = tokio::task::spawn_blocking(move || accounts.verify(&name, &password))
        .await
        .ok()
        .flatten();
    let Some(account) = verified else {
        app.access.failed(by_ip);
        app.access.failed(by_name);
        tracing::warn!(name = %login.name, peer = %peer.ip(), "failed sign-in to the console");
        return error(StatusCode::UNAUTHORIZED, "wrong name or password");
    };
    app.access.succeeded(&by_name);
    let secret = random_secret(32);
    let csrf = random_secret(24);
    let lifetime = app.access.session_lifetime;
    let expires_at = portcullis_store::now_ms() + lifetime.as_millis() as i64;
    let (store, hash, user, role, c) = (
        app.store.clone(),
        sha256_hex(secret.as_bytes()),
        account.name.clone(),
        role_name(account.role),
        csrf.clone(),
    );
    let stored = tokio::task::spawn_blocking(move || {
        store.create_session(&hash, &user, role, &c, expires_at)
    })
    .await;
    if !matches!(stored, Ok(Ok(()))) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the session could not be stored",
        );
    }
    tracing::info!(name = %account.name, peer = %peer.ip(), "signed in to the console");
    let secure = if app.access.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let set = format!(
        "{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        lifetime.as_secs()
    );
    let mut r = Json(serde_json::json!({
        "name": account.name,
        "role": role_name(account.role),
        "addresses": account.addresses,
        "csrf": csrf,
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&set) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /api/logout`: ends the session.
pub(crate) async fn logout(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if let Err(d) = identify(&app, peer, &method, &headers).await {
        return d.into_response();
    }
    if let Some(secret) = cookie(&headers) {
        let store = app.store.clone();
        let hash = sha256_hex(secret.as_bytes());
        let _ = tokio::task::spawn_blocking(move || store.delete_session(&hash)).await;
    }
    let mut r = Json(serde_json::json!({ "signed_out": true })).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "portcullis_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

/// `GET /api/me`: who the request is from.
pub(crate) async fn me(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match identify(&app, peer, &method, &headers).await {
        Ok(id) => Json(serde_json::json!({
            "name": id.name,
            "role": role_name(id.role),
            "addresses": id.addresses,
        }))
        .into_response(),
        Err(d) => d.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> LocalAccounts {
        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        let hash = argon2::Argon2::default()
            .hash_password(b"s3cret", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        LocalAccounts::new(vec![(
            Account {
                name: "Alice@Example.test".into(),
                role: Role::User,
                addresses: vec!["alice@example.test".into()],
            },
            hash,
        )])
    }

    #[test]
    fn local_accounts_verify_passwords_and_names_without_case() {
        let a = accounts();
        assert!(a.verify("alice@example.test", "s3cret").is_some());
        assert!(a.verify("alice@example.test", "wrong").is_none());
        assert!(a.verify("nobody@example.test", "s3cret").is_none());
        assert_eq!(
            a.account("ALICE@example.test").map(|a| a.role),
            Some(Role::User)
        );
    }

    #[test]
    fn the_hash_for_unknown_names_is_a_real_one() {
        // Otherwise an unknown name would answer faster than a known one.
        assert!(argon2::PasswordHash::new(DUMMY).is_ok());
    }

    #[test]
    fn failures_lock_out_after_five_in_the_window() {
        let access = Access::new(Arc::new(accounts()), true);
        for _ in 0..4 {
            access.failed("ip:192.0.2.1".into());
        }
        assert_eq!(access.locked_out("ip:192.0.2.1"), None);
        access.failed("ip:192.0.2.1".into());
        assert!(access.locked_out("ip:192.0.2.1").is_some_and(|s| s > 800));
        access.succeeded("ip:192.0.2.1");
        assert_eq!(access.locked_out("ip:192.0.2.1"), None);
    }

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (id, token, hash) = new_token();
        let (id2, token2, _) = new_token();
        assert_ne!((id.clone(), token.clone()), (id2, token2));
        let secret = token.strip_prefix(&format!("pct_{id}_")).unwrap();
        assert_eq!(hash, sha256_hex(secret.as_bytes()));
        assert!(!id.contains('_'));
    }
}
