//! Retention and digests for administrators:
//!
//! ```text
//! POST /api/quarantine/{id}/extend   {"days": N, "recipients": [...]}   keep N days longer
//! POST /api/quarantine/{id}/pin      {"pinned": true|false, "recipients": [...]}
//! POST /api/digest/send              send every digest with something to report, now
//! ```
//!
//! `recipients` is optional (all of the message's live entries). Extending
//! counts from the entry's expiry, or from now when that is past; pinned
//! entries are never purged. After either, the entry is listed as expiring
//! again before any purge. Answers: 200 with the entries; 400 for a bad body;
//! 404 for an unknown id; 409 when no entry chosen is live any more (with
//! each recipient's status); for `send`, 409 when digests are off.
//! Administrators only; each change is in the audit log.

use crate::auth::Admin;
use crate::{error, App};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Extend {
    days: u32,
    recipients: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pin {
    #[serde(default = "yes")]
    pinned: bool,
    recipients: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

/// A JSON body; an empty body is `{}`. The error is for a 400.
fn body<T: serde::de::DeserializeOwned>(b: &Bytes) -> Result<T, String> {
    let text: &[u8] = if b.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        b
    };
    serde_json::from_slice(text).map_err(|e| format!("body: {e}"))
}

/// Runs one change of retention and answers with the message's entries.
async fn change(
    app: &App,
    id: String,
    what: &'static str,
    detail: String,
    actor: String,
    f: impl FnOnce(&portcullis_store::Store) -> Result<usize, portcullis_store::StoreError>
        + Send
        + 'static,
) -> Response {
    let store = app.store.clone();
    let done = tokio::task::spawn_blocking(move || {
        store.flush()?;
        let n = f(&store)?;
        if n > 0 {
            store.audit(&actor, what, &id, n, Some(&detail))?;
        }
        Ok::<_, portcullis_store::StoreError>((n, store.held_message(&id)?))
    })
    .await;
    match done {
        Ok(Ok((_, entries))) if entries.is_empty() => {
            error(StatusCode::NOT_FOUND, "no such held message")
        }
        Ok(Ok((0, entries))) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({
                "error": "no chosen recipient of this message is still held",
                "recipients": entries
                    .iter()
                    .map(|e| serde_json::json!({ "recipient": e.recipient, "status": e.status }))
                    .collect::<Vec<_>>(),
            })),
        )
            .into_response(),
        Ok(Ok((n, entries))) => {
            Json(serde_json::json!({ "changed": n, "entries": entries })).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub(crate) async fn extend(
    State(app): State<App>,
    Admin(who): Admin,
    Path(id): Path<String>,
    raw: Bytes,
) -> Response {
    let req: Extend = match body(&raw) {
        Ok(r) => r,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    if !(1..=3650).contains(&req.days) {
        return error(
            StatusCode::BAD_REQUEST,
            "days: a number of days from 1 to 3650",
        );
    }
    let days = req.days;
    change(
        &app,
        id.clone(),
        "extend",
        format!("{days} days"),
        who.actor(),
        move |s| s.extend_held(&id, req.recipients.as_deref(), days),
    )
    .await
}

pub(crate) async fn pin(
    State(app): State<App>,
    Admin(who): Admin,
    Path(id): Path<String>,
    raw: Bytes,
) -> Response {
    let req: Pin = match body(&raw) {
        Ok(r) => r,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    let what = if req.pinned { "pin" } else { "unpin" };
    change(
        &app,
        id.clone(),
        what,
        what.to_string(),
        who.actor(),
        move |s| s.pin_held(&id, req.recipients.as_deref(), req.pinned),
    )
    .await
}

pub(crate) async fn send(State(app): State<App>, _: Admin) -> Response {
    if !app.digests.config().enabled {
        return error(
            StatusCode::CONFLICT,
            "digests are off ([digest] enabled = false)",
        );
    }
    match app.digests.send_now().await {
        Ok(report) => Json(report).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
