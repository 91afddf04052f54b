//! The quarantine's API: find held mail, see one message's verdict and where
//! each recipient's release stands, release and delete.
//!
//! ```text
//! GET    /api/quarantine?status=&category=&symbol=&sender=&recipient=&since=&q=&live=&limit=
//! GET    /api/quarantine/{id}
//! POST   /api/quarantine/{id}/release   {"recipients": [...]}   (body optional: all)
//! POST   /api/quarantine/{id}/delete    {"recipients": [...]}   (body optional: all)
//! DELETE /api/quarantine/{id}
//! POST   /api/quarantine/bulk           {"action": "release"|"delete", "dry_run": true,
//!                                        "filter": {"symbol": "...", "since": "2d", ...}}
//! ```
//!
//! Answers: 200 with what was done; 404 for an unknown id; 409 when nothing
//! chosen can be released or deleted any more (with each recipient's status);
//! 503 when the copy could not be queued (nothing changed, try again).
//! Query parameters and bodies are hostile: parsed into typed filters,
//! bounded, and bound as SQL parameters by the store.

use crate::{error, refuse_remote, App};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_quarantine::{QuarantineError, ReleaseError};
use portcullis_store::{HeldQuery, ReleaseStatus};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Deserialize)]
pub(crate) struct ListParams {
    status: Option<String>,
    category: Option<String>,
    symbol: Option<String>,
    sender: Option<String>,
    recipient: Option<String>,
    since: Option<String>,
    q: Option<String>,
    live: Option<bool>,
    limit: Option<usize>,
}

/// What a bulk action selects: the list's filters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkFilter {
    status: Option<ReleaseStatus>,
    category: Option<String>,
    symbol: Option<String>,
    sender: Option<String>,
    recipient: Option<String>,
    /// A duration back from now, e.g. "2d".
    since: Option<String>,
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkRequest {
    action: portcullis_quarantine::BulkAction,
    #[serde(default)]
    dry_run: bool,
    /// Required, even if empty (`{}`: everything held), so that "everything"
    /// is never the result of a forgotten field.
    filter: BulkFilter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Choice {
    recipients: Option<Vec<String>>,
}

/// Who acts, for the trace and the audit log: the `X-Portcullis-Actor` header
/// (the CLI sends the login name) on top of the peer, both bounded.
fn actor(peer: &SocketAddr, headers: &HeaderMap) -> String {
    let named: String = headers
        .get("x-portcullis-actor")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("api")
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    format!("{named}@{}", peer.ip())
}

/// The recipients a release or delete names in its body; None for all. The
/// error is the reason, for a 400.
fn choice(body: &Bytes) -> Result<Option<Vec<String>>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let c: Choice = serde_json::from_slice(body)
        .map_err(|e| format!("body: {{\"recipients\": [\"address\", ...]}} ({e})"))?;
    if c.recipients.as_ref().is_some_and(|r| r.len() > 10_000) {
        return Err("at most 10,000 recipients".into());
    }
    Ok(c.recipients)
}

fn release_error(e: ReleaseError) -> Response {
    match e {
        ReleaseError::NotFound(_) => error(StatusCode::NOT_FOUND, "no such held message"),
        ReleaseError::NothingToDo { statuses, .. } => {
            let by: Vec<_> = statuses
                .iter()
                .map(|(r, s)| serde_json::json!({ "recipient": r, "status": s }))
                .collect();
            (
                StatusCode::CONFLICT,
                Json(serde_json::json!({ "error": e_text(&statuses), "recipients": by })),
            )
                .into_response()
        }
        ReleaseError::Queue(why) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the copy could not be queued, nothing changed: {why}"),
        ),
        other => error(StatusCode::INTERNAL_SERVER_ERROR, &other.to_string()),
    }
}

fn e_text(statuses: &[(String, ReleaseStatus)]) -> String {
    if statuses.is_empty() {
        "no such recipient in this held message".into()
    } else {
        "nothing left to do: every chosen recipient was already released, deleted or expired".into()
    }
}

pub(crate) async fn list(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(app): State<App>,
    Query(p): Query<ListParams>,
) -> Response {
    if let Some(r) = refuse_remote(&peer) {
        return r;
    }
    let since_ms = match crate::since_ms(p.since.as_deref()) {
        Ok(s) => s,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let status = match p.status.as_deref().map(ReleaseStatus::parse) {
        Some(None) => {
            let names: Vec<_> = ReleaseStatus::ALL.iter().map(|s| s.as_str()).collect();
            return error(
                StatusCode::BAD_REQUEST,
                &format!("status: one of {}", names.join(", ")),
            );
        }
        Some(s) => s,
        None => None,
    };
    let q = HeldQuery {
        status,
        live: p.live.unwrap_or(false),
        category: p.category,
        symbol: p.symbol,
        sender: p.sender,
        recipient: p.recipient,
        since_ms,
        text: p.q,
        limit: p.limit.unwrap_or(100),
        ..HeldQuery::default()
    };
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || store.held(&q)).await {
        Ok(Ok(found)) => Json(serde_json::json!({ "entries": found })).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub(crate) async fn show(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(app): State<App>,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = refuse_remote(&peer) {
        return r;
    }
    let (store, q) = (app.store.clone(), app.quarantine.clone());
    let found = tokio::task::spawn_blocking(move || {
        let entries = store.held_message(&id).map_err(|e| e.to_string())?;
        let held = match q.header(&id) {
            Ok(h) => Some(h),
            Err(QuarantineError::NotFound(_)) => None,
            Err(e) => return Err(e.to_string()),
        };
        Ok::<_, String>((entries, held))
    })
    .await;
    match found {
        Ok(Ok((entries, held))) if !entries.is_empty() || held.is_some() => {
            Json(serde_json::json!({ "entries": entries, "held": held })).into_response()
        }
        Ok(Ok(_)) => error(StatusCode::NOT_FOUND, "no such held message"),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub(crate) async fn release(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = refuse_remote(&peer) {
        return r;
    }
    let recipients = match choice(&body) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    let who = actor(&peer, &headers);
    match portcullis_quarantine::release(
        &app.quarantine,
        &app.store,
        &app.queue,
        &id,
        recipients,
        &who,
    )
    .await
    {
        Ok(done) => Json(done).into_response(),
        Err(e) => release_error(e),
    }
}

pub(crate) async fn bulk(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = refuse_remote(&peer) {
        return r;
    }
    let req: BulkRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "body: {{\"action\": \"release\"|\"delete\", \"dry_run\": bool, \"filter\": {{...}}}} ({e})"
                ),
            )
        }
    };
    let since_ms = match crate::since_ms(req.filter.since.as_deref()) {
        Ok(s) => s,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let f = req.filter;
    let filter = HeldQuery {
        status: f.status,
        category: f.category,
        symbol: f.symbol,
        sender: f.sender,
        recipient: f.recipient,
        since_ms,
        text: f.text,
        ..HeldQuery::default()
    };
    let who = actor(&peer, &headers);
    match portcullis_quarantine::bulk(
        &app.quarantine,
        &app.store,
        &app.queue,
        filter,
        req.action,
        req.dry_run,
        &who,
    )
    .await
    {
        Ok(outcome) => Json(outcome).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub(crate) async fn delete(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = refuse_remote(&peer) {
        return r;
    }
    let recipients = match choice(&body) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    let who = actor(&peer, &headers);
    let (q, store) = (app.quarantine.clone(), app.store.clone());
    let done = tokio::task::spawn_blocking(move || {
        portcullis_quarantine::delete(&q, &store, &id, recipients.as_deref(), &who)
    })
    .await;
    match done {
        Ok(Ok(deleted)) => Json(serde_json::json!({ "deleted": deleted })).into_response(),
        Ok(Err(e)) => release_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_names_recipients_or_is_empty_for_all() {
        assert_eq!(choice(&Bytes::from_static(b" \r\n")), Ok(None));
        assert_eq!(
            choice(&Bytes::from_static(br#"{"recipients": ["a@example.org"]}"#)),
            Ok(Some(vec!["a@example.org".to_string()]))
        );
        assert!(choice(&Bytes::from_static(br#"{"recipient": "a"}"#)).is_err());
        assert!(choice(&Bytes::from_static(b"\xff\xfe")).is_err());
    }
}
