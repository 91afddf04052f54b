//! portcullis-web: the HTTP listener. Today: `GET /healthz`, `GET /metrics`
//! (Prometheus text format), the trace API (`GET /api/messages`,
//! `GET /api/messages/{id}`) and queue management (`GET /api/queue`,
//! `GET /api/queue/{id}`, `POST /api/queue/{id}/retry`, `POST /api/queue/retry`,
//! `DELETE /api/queue/{id}`) and the quarantine (`quarantine_api`: list, show,
//! release, delete). The links of quarantine digests (`links`: `/q/{token}`,
//! the signed token is the credential) and retention and digest sending for
//! administrators (`digest_api`: extend, pin, send now). The secure links'
//! redirector (`redirect`: `/l/{token}`, checked at click time) and the
//! clicks on a URL for administrators (`GET /api/links/clicks?url=`).
//!
//! Standards: RFC 9110 (HTTP semantics), RFC 8259 (JSON), the Prometheus text
//! exposition format 0.0.4.
//!
//! Security posture: query parameters are hostile: they are parsed into typed
//! filters, bounded (`limit` at most 10,000) and only ever bound as SQL parameters
//! by the store. Every API call is made by an identity (`auth`: an API token,
//! a signed-in session with its CSRF token, or loopback when trusted) whose role
//! allows it: the trace needs helpdesk, the queue admin, and a user sees only
//! held mail for their own addresses. `/healthz` and `/metrics` are open as
//! monitoring expects. No endpoint returns message bodies.

pub mod auth;
mod console;
mod digest_api;
mod links;
mod quarantine_api;
mod redirect;
mod senders_api;
mod servers_api;

pub use auth::{Access, Account, Accounts, LocalAccounts};
use auth::{Admin, Staff};

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis_quarantine::{Quarantine, ReleasePolicy};
use portcullis_queue::Queue;
use portcullis_store::{LinkFilter, MessageQuery, MessageStatus, Store};
use prometheus::{Encoder, IntGauge, TextEncoder};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::sync::watch;

#[derive(Clone)]
struct App {
    store: Store,
    queue: Queue,
    quarantine: Quarantine,
    access: Arc<Access>,
    policy: Arc<ReleasePolicy>,
    digests: portcullis_digest::Digests,
    scanner: Arc<portcullis_scan::Scanner>,
    link_keys: Arc<portcullis_links::KeyRing>,
    click_lists: Arc<portcullis_links::ClickLists>,
    senders: Arc<portcullis_senders::SendersConfig>,
    hostname: Arc<str>,
}

/// What the HTTP listener serves from.
pub struct Services {
    pub store: Store,
    pub queue: Queue,
    pub quarantine: Quarantine,
    pub access: Arc<Access>,
    pub release_policy: ReleasePolicy,
    /// Quarantine digests: their links (`/q/`), sending, retention changes.
    pub digests: portcullis_digest::Digests,
    /// The gateway's scanner, for re-scanning held mail.
    pub scanner: Arc<portcullis_scan::Scanner>,
    /// The secure links' key ring, to verify `/l/` tokens.
    pub link_keys: portcullis_links::KeyRing,
    /// What `/l/` links are judged with at click time.
    pub click_lists: portcullis_links::ClickLists,
    /// `[senders]`: the schedule, mode and pause allowance the sending
    /// servers' page (`/api/servers`) judges and changes servers with.
    pub senders: portcullis_senders::SendersConfig,
    /// The gateway's host name, for the mail it writes itself.
    pub hostname: String,
}

/// Builds the router.
pub fn router(services: Services) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/messages", get(messages))
        .route("/api/messages/{id}", get(message))
        .route("/api/queue", get(queue_list))
        .route("/api/queue/retry", post(queue_retry_all))
        .route("/api/queue/{id}", get(queue_show).delete(queue_delete))
        .route("/api/queue/{id}/retry", post(queue_retry))
        .route("/api/quarantine", get(quarantine_api::list))
        .route("/api/quarantine/bulk", post(quarantine_api::bulk))
        .route(
            "/api/quarantine/{id}",
            get(quarantine_api::show).delete(quarantine_api::delete),
        )
        .route(
            "/api/quarantine/{id}/release",
            post(quarantine_api::release),
        )
        .route("/api/quarantine/{id}/delete", post(quarantine_api::delete))
        .route(
            "/api/quarantine/{id}/request",
            post(quarantine_api::request),
        )
        .route(
            "/api/quarantine/{id}/approve",
            post(quarantine_api::approve),
        )
        .route("/api/quarantine/{id}/deny", post(quarantine_api::deny))
        .route("/api/quarantine/{id}/preview", get(quarantine_api::preview))
        .route("/api/quarantine/{id}/report", post(quarantine_api::report))
        .route("/api/quarantine/{id}/extend", post(digest_api::extend))
        .route("/api/quarantine/{id}/pin", post(digest_api::pin))
        .route("/api/digest/send", post(digest_api::send))
        .route("/q/{token}", get(links::show).post(links::press))
        .route(
            "/l/{token}",
            get(redirect::follow).post(redirect::continue_anyway),
        )
        .route("/api/links/clicks", get(link_clicks))
        .route("/api/links/exposure", get(link_exposure))
        .route(
            "/api/senders",
            get(senders_api::list).post(senders_api::set),
        )
        .route("/api/servers", get(servers_api::list))
        .route("/api/servers/pause", post(servers_api::pause))
        .route("/api/servers/resume", post(servers_api::resume))
        .route("/api/servers/exempt", post(servers_api::exempt))
        .route("/api/servers/summary", post(servers_api::summary))
        .route("/api/audit", get(audit_log))
        .route("/api/login", post(auth::login))
        .route("/api/logout", post(auth::logout))
        .route("/api/me", get(auth::me))
        .merge(console::routes())
        .with_state(App {
            store: services.store,
            queue: services.queue,
            quarantine: services.quarantine,
            access: services.access,
            policy: Arc::new(services.release_policy),
            digests: services.digests,
            scanner: services.scanner,
            link_keys: Arc::new(services.link_keys),
            click_lists: Arc::new(services.click_lists),
            senders: Arc::new(services.senders),
            hostname: services.hostname.into(),
        })
}

/// Serves HTTP until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    services: Services,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(services).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = shutdown.wait_for(|s| *s).await;
    })
    .await
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

#[derive(Deserialize)]
struct AuditParams {
    limit: Option<usize>,
}

/// `GET /api/audit?limit=N`: the administrators' actions, newest first
/// (admin only).
async fn audit_log(State(app): State<App>, _: Admin, Query(p): Query<AuditParams>) -> Response {
    let store = app.store.clone();
    let limit = p.limit.unwrap_or(100);
    match tokio::task::spawn_blocking(move || store.audit_log(limit)).await {
        Ok(Ok(entries)) => Json(serde_json::json!({ "audit": entries })).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(Deserialize)]
struct LinkParams {
    url: Option<String>,
    domain: Option<String>,
    limit: Option<usize>,
}

impl LinkParams {
    /// Exactly one of `url` and `domain`, and the limit (at most 1,000).
    fn filter(self) -> Result<(LinkFilter, usize), &'static str> {
        let limit = self
            .limit
            .unwrap_or(portcullis_store::clicks::MAX_CLICKS)
            .min(portcullis_store::clicks::MAX_CLICKS);
        match (
            self.url.filter(|u| !u.is_empty()),
            self.domain.filter(|d| !d.is_empty()),
        ) {
            (Some(url), None) => Ok((LinkFilter::Url(url), limit)),
            (None, Some(domain)) => Ok((LinkFilter::Domain(domain), limit)),
            _ => Err("give either url (an exact URL) or domain (a host and the names under it)"),
        }
    }
}

/// `GET /api/links/clicks?url=URL|domain=D&limit=N`: who clicked secure links
/// to this URL or domain, newest first, at most 1,000 (admin only).
async fn link_clicks(State(app): State<App>, _: Admin, Query(p): Query<LinkParams>) -> Response {
    let (filter, limit) = match p.filter() {
        Ok(f) => f,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || store.clicks(&filter, limit)).await {
        Ok(Ok(clicks)) => Json(serde_json::json!({ "clicks": clicks })).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `GET /api/links/exposure?url=URL|domain=D&limit=N`: the messages that
/// carried this URL (or any on the domain) behind a secure link, with their
/// recipients, and the clicks on it: what an administrator needs when a URL
/// turns bad (admin only).
async fn link_exposure(State(app): State<App>, _: Admin, Query(p): Query<LinkParams>) -> Response {
    let (filter, limit) = match p.filter() {
        Ok(f) => f,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let store = app.store.clone();
    let found = tokio::task::spawn_blocking(move || {
        Ok::<_, portcullis_store::StoreError>((
            store.link_deliveries(&filter, limit)?,
            store.clicks(&filter, limit)?,
        ))
    })
    .await;
    match found {
        Ok(Ok((received, clicks))) => {
            let recipients: std::collections::BTreeSet<&str> = received
                .iter()
                .flat_map(|d| d.recipients.iter().map(String::as_str))
                .collect();
            Json(serde_json::json!({
                "recipients": recipients,
                "messages": received,
                "clicks": clicks,
            }))
            .into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn healthz(State(app): State<App>) -> Response {
    let stats = app.queue.stats();
    Json(serde_json::json!({
        "status": "ok",
        "queue": { "messages": stats.messages, "oldest_age_seconds": stats.oldest_age_seconds },
    }))
    .into_response()
}

fn gauges() -> &'static (IntGauge, prometheus::Gauge) {
    static G: OnceLock<(IntGauge, prometheus::Gauge)> = OnceLock::new();
    G.get_or_init(|| {
        let size =
            prometheus::register_int_gauge!("portcullis_queue_messages", "Messages in the queue")
                .expect("metric registers once");
        let age = prometheus::register_gauge!(
            "portcullis_queue_oldest_age_seconds",
            "Age of the oldest message in the queue"
        )
        .expect("metric registers once");
        (size, age)
    })
}

async fn metrics(State(app): State<App>) -> Response {
    let stats = app.queue.stats();
    let (size, age) = gauges();
    size.set(stats.messages as i64);
    age.set(stats.oldest_age_seconds);
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&prometheus::gather(), &mut out) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Query parameters of `GET /api/messages`.
#[derive(Debug, Deserialize)]
struct MessagesParams {
    id: Option<String>,
    message_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// A duration back from now: `30m`, `2h`, `7d`.
    since: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    events: Option<bool>,
}

/// Parses `90s`, `30m`, `2h`, `7d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        "w" => n.checked_mul(7 * 86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

/// A `since` parameter (a duration back from now) as Unix ms; the error is the
/// reason for a 400.
fn since_ms(since: Option<&str>) -> Result<Option<i64>, &'static str> {
    match since.map(parse_duration) {
        Some(None) => Err("since: use a duration such as 30m, 2h or 7d"),
        Some(Some(d)) => Ok(Some(portcullis_store::now_ms() - d.as_millis() as i64)),
        None => Ok(None),
    }
}

async fn messages(State(app): State<App>, _: Staff, Query(p): Query<MessagesParams>) -> Response {
    let since_ms = match since_ms(p.since.as_deref()) {
        Ok(s) => s,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let status = match p.status.as_deref().map(MessageStatus::parse) {
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "status: one of queued, deferred, delivered, bounced, rejected, deleted",
            )
        }
        Some(s) => s,
        None => None,
    };
    let q = MessageQuery {
        id: p.id,
        message_id: p.message_id,
        from: p.from,
        to: p.to,
        since_ms,
        status,
        limit: p.limit.unwrap_or(100).min(10_000),
        with_events: p.events.unwrap_or(true),
    };
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || store.query(&q)).await {
        Ok(Ok(found)) => Json(serde_json::json!({ "messages": found })).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn message(State(app): State<App>, _: Staff, Path(id): Path<String>) -> Response {
    let store = app.store.clone();
    let q = MessageQuery {
        id: Some(id),
        limit: 1,
        with_events: true,
        ..Default::default()
    };
    match tokio::task::spawn_blocking(move || store.query(&q)).await {
        Ok(Ok(mut found)) if !found.is_empty() => Json(found.remove(0)).into_response(),
        Ok(Ok(_)) => error(StatusCode::NOT_FOUND, "no such message"),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn queue_list(State(app): State<App>, _: Admin) -> Response {
    let queue = app.queue.clone();
    match tokio::task::spawn_blocking(move || queue.list()).await {
        Ok(items) => Json(serde_json::json!({ "messages": items })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn queue_show(State(app): State<App>, _: Admin, Path(id): Path<String>) -> Response {
    match app.queue.item(&id) {
        Ok(item) => Json(item).into_response(),
        Err(_) => error(StatusCode::NOT_FOUND, "no such message in the queue"),
    }
}

async fn queue_retry(State(app): State<App>, _: Admin, Path(id): Path<String>) -> Response {
    match app.queue.retry(Some(&id)) {
        0 => error(StatusCode::NOT_FOUND, "no such message in the queue"),
        n => Json(serde_json::json!({ "rescheduled": n })).into_response(),
    }
}

async fn queue_retry_all(State(app): State<App>, _: Admin) -> Response {
    Json(serde_json::json!({ "rescheduled": app.queue.retry(None) })).into_response()
}

async fn queue_delete(State(app): State<App>, _: Admin, Path(id): Path<String>) -> Response {
    match app.queue.delete(&id) {
        Ok(()) => Json(serde_json::json!({ "deleted": id })).into_response(),
        Err(portcullis_queue::Error::NotFound(_)) => {
            error(StatusCode::NOT_FOUND, "no such message in the queue")
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(
            parse_duration("90"),
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("30m"),
            Some(std::time::Duration::from_secs(1800))
        );
        assert_eq!(
            parse_duration("2d"),
            Some(std::time::Duration::from_secs(172_800))
        );
        assert_eq!(parse_duration("2x"), None);
        assert_eq!(parse_duration("m"), None);
    }
}
