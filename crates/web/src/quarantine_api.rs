//! The quarantine's API: find held mail, see one message's verdict and where
//! each recipient's release stands, release and delete.
//!
//! ```text
//! GET    /api/quarantine?status=&category=&symbol=&sender=&recipient=&since=&q=&live=&limit=
//! GET    /api/quarantine/{id}
//! POST   /api/quarantine/{id}/release   {"recipients": [...], "allow_sender": bool}   (body optional: all)
//! POST   /api/quarantine/{id}/delete    {"recipients": [...]}   (body optional: all)
//! DELETE /api/quarantine/{id}
//! POST   /api/quarantine/bulk           {"action": "release"|"delete"|"rescan", "dry_run": true,
//!                                        "release": true (rescan: release what passes),
//!                                        "filter": {"symbol": "...", "since": "2d", ...}}
//! ```
//!
//! GET    /api/quarantine/{id}/preview   text, links as text, attachments' facts
//! POST   /api/quarantine/{id}/report    {"as": "ham"|"spam"}    teaches the classifier
//! POST   /api/quarantine/{id}/request   {"recipients": [...]}   a user asks for release
//! POST   /api/quarantine/{id}/approve   {"recipients": [...]}   and an administrator decides
//! POST   /api/quarantine/{id}/deny      {"recipients": [...]}
//!
//! Answers: 200 with what was done; 404 for an unknown id, or one held for
//! somebody else (a user never learns that it exists); 403 when the role or
//! the category's release policy does not allow the action (with what is
//! allowed instead); 409 when nothing chosen can be changed any more (with
//! each recipient's status); 503 when the copy could not be queued (nothing
//! changed, try again).
//!
//! Roles: a `user` sees and acts on entries for their own addresses only, and
//! releases or requests as `[quarantine.release_policy]` says per category;
//! `helpdesk` sees everything and releases, approves and denies all but
//! malware; `admin` does everything, and alone deletes and acts in bulk.
//! Query parameters and bodies are hostile: parsed into typed filters,
//! bounded, and bound as SQL parameters by the store.

use crate::auth::{Admin, Identity, Staff};
use crate::{error, App};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_quarantine::{Decision, Permission, QuarantineError, ReleaseError, Role};
use portcullis_scan::Category;
use portcullis_store::digest::SenderRule;
use portcullis_store::{HeldEntry, HeldQuery, ReleaseStatus};
use serde::Deserialize;

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
    /// One held message.
    message: Option<String>,
    status: Option<ReleaseStatus>,
    category: Option<String>,
    symbol: Option<String>,
    sender: Option<String>,
    recipient: Option<String>,
    /// A duration back from now, e.g. "2d".
    since: Option<String>,
    text: Option<String>,
}

/// What a bulk request does to the selected held mail.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BulkKind {
    Release,
    Delete,
    /// Judge again with the current checks; with `release`, release what passes.
    Rescan,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkRequest {
    action: BulkKind,
    #[serde(default)]
    dry_run: bool,
    /// With `rescan`: release what now passes.
    #[serde(default)]
    release: bool,
    /// Required, even if empty (`{}`: everything held), so that "everything"
    /// is never the result of a forgotten field.
    filter: BulkFilter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Choice {
    recipients: Option<Vec<String>>,
    /// With a release: the released recipients allow this sender from now on.
    #[serde(default)]
    allow_sender: bool,
}

/// What a change's body says: the recipients (None for all) and whether the
/// sender is to be allowed. The error is the reason, for a 400.
fn parse_choice(body: &Bytes) -> Result<Choice, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Choice::default());
    }
    let c: Choice = serde_json::from_slice(body).map_err(|e| {
        format!("body: {{\"recipients\": [\"address\", ...], \"allow_sender\": bool}} ({e})")
    })?;
    if c.recipients.as_ref().is_some_and(|r| r.len() > 10_000) {
        return Err("at most 10,000 recipients".into());
    }
    Ok(c)
}

/// The recipients a change names in its body; None for all.
fn choice(body: &Bytes) -> Result<Option<Vec<String>>, String> {
    parse_choice(body).map(|c| c.recipients)
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

/// The verdict category of an entry; an unknown one is treated as the most
/// guarded (malware).
fn category(e: &HeldEntry) -> Category {
    e.category
        .as_deref()
        .and_then(|c| serde_json::from_value(serde_json::Value::String(c.to_string())).ok())
        .unwrap_or(Category::Malware)
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such held message")
}

/// The entries of `id` this identity may see: all for helpdesk and admin,
/// their own for a user. Empty means 404; the error is for a 500.
async fn visible(app: &App, who: &Identity, id: &str) -> Result<Vec<HeldEntry>, String> {
    let (store, owned_id) = (app.store.clone(), id.to_string());
    let entries = match tokio::task::spawn_blocking(move || store.held_message(&owned_id)).await {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(e) => return Err(e.to_string()),
    };
    Ok(if who.role == Role::User {
        entries
            .into_iter()
            .filter(|e| who.owns(&e.recipient))
            .collect()
    } else {
        entries
    })
}

/// The entries an action names (all visible ones when `recipients` is None);
/// None when it names one that is not visible (a 404, so nothing is revealed).
fn chosen(visible: Vec<HeldEntry>, recipients: &Option<Vec<String>>) -> Option<Vec<HeldEntry>> {
    let Some(list) = recipients else {
        return Some(visible);
    };
    list.iter()
        .map(|r| {
            visible
                .iter()
                .find(|e| e.recipient.eq_ignore_ascii_case(r))
                .cloned()
        })
        .collect()
}

fn policy_refusal(permission: Permission, id: &str) -> Response {
    let why = match permission {
        Permission::Request => format!(
            "this category needs an administrator's approval: ask with POST /api/quarantine/{id}/request"
        ),
        _ => "this category can only be released by an administrator".to_string(),
    };
    error(StatusCode::FORBIDDEN, &why)
}

pub(crate) async fn list(
    State(app): State<App>,
    who: Identity,
    Query(p): Query<ListParams>,
) -> Response {
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
        owners: (who.role == Role::User).then(|| who.addresses.clone()),
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
    State(app): State<App>,
    who: Identity,
    Path(id): Path<String>,
) -> Response {
    let entries = match visible(&app, &who, &id).await {
        Ok(e) => e,
        Err(why) => return error(StatusCode::INTERNAL_SERVER_ERROR, &why),
    };
    if who.role == Role::User && entries.is_empty() {
        return not_found();
    }
    let q = app.quarantine.clone();
    let owned_id = id.clone();
    let held = match tokio::task::spawn_blocking(move || q.header(&owned_id)).await {
        Ok(Ok(mut h)) => {
            // A user learns nothing of the other recipients.
            if who.role == Role::User {
                h.envelope.recipients.retain(|r| who.owns(&r.address));
            }
            Some(h)
        }
        Ok(Err(QuarantineError::NotFound(_))) => None,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    if entries.is_empty() && held.is_none() {
        return not_found();
    }
    let permissions: Vec<_> = entries
        .iter()
        .map(|e| {
            let allowed = match app.policy.permission(who.role, category(e)) {
                Permission::Release => "release",
                Permission::Request => "request",
                Permission::None => "none",
            };
            serde_json::json!({ "recipient": e.recipient, "may": allowed })
        })
        .collect();
    Json(serde_json::json!({ "entries": entries, "held": held, "permissions": permissions }))
        .into_response()
}

pub(crate) async fn release(
    State(app): State<App>,
    who: Identity,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Choice {
        recipients,
        allow_sender,
    } = match parse_choice(&body) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    let seen = match visible(&app, &who, &id).await {
        Ok(e) => e,
        Err(why) => return error(StatusCode::INTERNAL_SERVER_ERROR, &why),
    };
    if who.role == Role::User && seen.is_empty() {
        return not_found();
    }
    let sender = seen.first().and_then(|e| e.sender.clone());
    let Some(picked) = chosen(seen, &recipients) else {
        return not_found();
    };
    for e in &picked {
        let p = app.policy.permission(who.role, category(e));
        if p != Permission::Release {
            return policy_refusal(p, &id);
        }
    }
    // A user's "all" is all of their own, never the other recipients.
    let recipients = if who.role == Role::User {
        Some(picked.into_iter().map(|e| e.recipient).collect())
    } else {
        recipients
    };
    let done = match portcullis_quarantine::release(
        &app.quarantine,
        &app.store,
        &app.queue,
        &id,
        recipients,
        &who.actor(),
    )
    .await
    {
        Ok(done) => done,
        Err(e) => return release_error(e),
    };
    let mut allowed = Vec::new();
    if let (true, Some(sender)) = (allow_sender, sender.filter(|s| !s.is_empty())) {
        let (store, rcpts, actor) = (app.store.clone(), done.recipients.clone(), who.actor());
        let s2 = sender.clone();
        let set = tokio::task::spawn_blocking(move || {
            for r in &rcpts {
                store.set_sender_rule(r, &s2, SenderRule::Allow, &actor)?;
            }
            store.audit(&actor, "allow sender", &s2, rcpts.len(), None)
        })
        .await;
        if !matches!(set, Ok(Ok(()))) {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "released, but the sender could not be allowed",
            );
        }
        allowed.push(sender);
    }
    Json(serde_json::json!({
        "release_id": done.release_id,
        "recipients": done.recipients,
        "allowed_senders": allowed,
    }))
    .into_response()
}

/// `GET /api/quarantine/{id}/preview`: the message as text, its links as
/// text and its attachments' facts, for whoever may see the entry.
pub(crate) async fn preview(
    State(app): State<App>,
    who: Identity,
    Path(id): Path<String>,
) -> Response {
    match visible(&app, &who, &id).await {
        Ok(e) if e.is_empty() => return not_found(),
        Ok(_) => {}
        Err(why) => return error(StatusCode::INTERNAL_SERVER_ERROR, &why),
    }
    let q = app.quarantine.clone();
    match tokio::task::spawn_blocking(move || {
        q.read(&id).map(|(_, m)| portcullis_quarantine::preview(&m))
    })
    .await
    {
        Ok(Ok(p)) => Json(p).into_response(),
        Ok(Err(QuarantineError::NotFound(_))) => error(
            StatusCode::NOT_FOUND,
            "the stored message is gone (deleted or expired)",
        ),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportRequest {
    #[serde(rename = "as")]
    class: portcullis_quarantine::Report,
}

/// `POST /api/quarantine/{id}/report {"as": "ham"|"spam"}`: teaches the
/// classifier (helpdesk and admin only; helpdesk not for malware).
pub(crate) async fn report(
    State(app): State<App>,
    Staff(who): Staff,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(req) = serde_json::from_slice::<ReportRequest>(&body) else {
        return error(StatusCode::BAD_REQUEST, "body: {\"as\": \"ham\"|\"spam\"}");
    };
    let seen = match visible(&app, &who, &id).await {
        Ok(e) if e.is_empty() => return not_found(),
        Ok(e) => e,
        Err(why) => return error(StatusCode::INTERNAL_SERVER_ERROR, &why),
    };
    if seen
        .iter()
        .any(|e| app.policy.permission(who.role, category(e)) == Permission::None)
    {
        return policy_refusal(Permission::None, &id);
    }
    let (q, store, actor) = (app.quarantine.clone(), app.store.clone(), who.actor());
    let learned = tokio::task::spawn_blocking(move || {
        let (_, message) = q.read(&id).map_err(|e| e.to_string())?;
        portcullis_quarantine::learn(&store, &id, &message, req.class, &actor)
            .map_err(|e| e.to_string())
    })
    .await;
    match learned {
        Ok(Ok((spam, ham))) => Json(serde_json::json!({
            "learned": req.class,
            "model": { "spam": spam, "ham": ham },
        }))
        .into_response(),
        Ok(Err(why)) => error(StatusCode::UNPROCESSABLE_ENTITY, &why),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `POST /api/quarantine/{id}/request`: a user asks for release of their own
/// copies; an administrator or helpdesk then approves or denies.
pub(crate) async fn request(
    State(app): State<App>,
    who: Identity,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let recipients = match choice(&body) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    let seen = match visible(&app, &who, &id).await {
        Ok(e) => e,
        Err(why) => return error(StatusCode::INTERNAL_SERVER_ERROR, &why),
    };
    let Some(picked) = chosen(seen, &recipients).filter(|p| !p.is_empty()) else {
        return not_found();
    };
    for e in &picked {
        if app.policy.permission(who.role, category(e)) == Permission::None {
            return policy_refusal(Permission::None, &id);
        }
    }
    let (store, actor) = (app.store.clone(), who.actor());
    let owned_id = id.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut requested = Vec::new();
        for e in picked {
            match portcullis_quarantine::request(&store, &owned_id, &e.recipient, &actor) {
                Ok(()) => requested.push(e.recipient),
                Err(ReleaseError::NothingToDo { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(requested)
    })
    .await;
    match done {
        Ok(Ok(requested)) if !requested.is_empty() => {
            Json(serde_json::json!({ "requested": requested })).into_response()
        }
        Ok(Ok(_)) => error(
            StatusCode::CONFLICT,
            "nothing to request: every chosen copy was already requested, released or deleted",
        ),
        Ok(Err(e)) => release_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn decide(app: App, who: Identity, id: String, body: Bytes, decision: Decision) -> Response {
    let recipients = match choice(&body) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    let seen = match visible(&app, &who, &id).await {
        Ok(e) => e,
        Err(why) => return error(StatusCode::INTERNAL_SERVER_ERROR, &why),
    };
    let Some(picked) = chosen(seen, &recipients) else {
        return not_found();
    };
    for e in &picked {
        let p = app.policy.permission(who.role, category(e));
        if p != Permission::Release {
            return policy_refusal(p, &id);
        }
    }
    match portcullis_quarantine::decide(
        &app.quarantine,
        &app.store,
        &app.queue,
        &id,
        recipients,
        decision,
        &who.actor(),
    )
    .await
    {
        Ok((decided, released)) => Json(serde_json::json!({
            "decided": decided,
            "decision": decision,
            "released": released,
        }))
        .into_response(),
        Err(e) => release_error(e),
    }
}

pub(crate) async fn approve(
    State(app): State<App>,
    Staff(who): Staff,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    decide(app, who, id, body, Decision::Approve).await
}

pub(crate) async fn deny(
    State(app): State<App>,
    Staff(who): Staff,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    decide(app, who, id, body, Decision::Deny).await
}

pub(crate) async fn bulk(State(app): State<App>, Admin(who): Admin, body: Bytes) -> Response {
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
        message: f.message,
        status: f.status,
        category: f.category,
        symbol: f.symbol,
        sender: f.sender,
        recipient: f.recipient,
        since_ms,
        text: f.text,
        ..HeldQuery::default()
    };
    let action = match req.action {
        BulkKind::Release => portcullis_quarantine::BulkAction::Release,
        BulkKind::Delete => portcullis_quarantine::BulkAction::Delete,
        BulkKind::Rescan => {
            return match portcullis_quarantine::rescan(
                &app.quarantine,
                &app.store,
                &app.queue,
                app.scanner.clone(),
                filter,
                req.release,
                req.dry_run,
                &who.actor(),
            )
            .await
            {
                Ok(outcome) => Json(outcome).into_response(),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
    };
    match portcullis_quarantine::bulk(
        &app.quarantine,
        &app.store,
        &app.queue,
        filter,
        action,
        req.dry_run,
        &who.actor(),
    )
    .await
    {
        Ok(outcome) => Json(outcome).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub(crate) async fn delete(
    State(app): State<App>,
    Admin(who): Admin,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let recipients = match choice(&body) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    let (q, store, actor) = (app.quarantine.clone(), app.store.clone(), who.actor());
    let done = tokio::task::spawn_blocking(move || {
        portcullis_quarantine::delete(&q, &store, &id, recipients.as_deref(), &actor)
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
