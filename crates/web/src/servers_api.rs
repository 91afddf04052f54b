//! The sending servers the gateway recognised, and what administrators do
//! about the out-of-date ones (admin only).
//!
//! ```text
//! GET  /api/servers?status=S&own=true|false   every server with its standing today
//! POST /api/servers/pause  {"key", "days"}    pause enforcement from now (yearly allowance)
//! POST /api/servers/resume {"key"}            end its pauses now
//! POST /api/servers/exempt {"key", "exempt"}  exempt it from enforcement, or end that
//! POST /api/servers/summary                   send the weekly summary now
//! ```
//!
//! The list answers `{"servers": [...], "own_out_of_date": N, "mode":
//! "enforce"|"report", "enabled", "pause_allowance_days"}`; each server is a
//! `portcullis_senders::report::ServerReport` (the store's row with its
//! stage, the next stage and its date, paused or exempt). `own_out_of_date`
//! counts the organisation's own servers that are not current, whatever the
//! filter, for the console's warning. A pause beyond the allowance is 409 with
//! `days_left`; an unknown key is 404. Every change is in the audit log.
//!
//! Hostile input: keys, host names and versions come from mail; keys from the
//! request are bounded and only ever SQL parameters; the console shows every
//! value as text.

use crate::auth::Admin;
use crate::{error, App};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_senders::admin::{self, Change};
use portcullis_senders::report::{self, ServerReport};
use portcullis_senders::stage;
use portcullis_senders::Mode;
use portcullis_store::StoreError;
use serde::Deserialize;

/// The statuses a server can have.
const STATUSES: [&str; 4] = ["current", "outdated", "vulnerable", "unsupported"];
/// The longest key accepted (the store keeps at most 600 bytes).
const MAX_KEY: usize = 600;

#[derive(Debug, Deserialize)]
pub(crate) struct ListParams {
    status: Option<String>,
    own: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    key: String,
    days: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExemptBody {
    key: String,
    exempt: bool,
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Enforce => "enforce",
        Mode::Report => "report",
    }
}

/// A failure of the store or its worker thread as a 500.
fn failed(e: impl std::fmt::Display) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
}

fn schedule(app: &App) -> Result<stage::Schedule, String> {
    app.senders.schedule()
}

fn report_only(app: &App) -> bool {
    app.senders.mode == Mode::Report
}

/// `GET /api/servers`.
pub(crate) async fn list(
    State(app): State<App>,
    _: Admin,
    Query(p): Query<ListParams>,
) -> Response {
    let status = match p.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) if STATUSES.contains(&s) => Some(s.to_string()),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "status: one of current, outdated, vulnerable, unsupported",
            )
        }
        None => None,
    };
    let schedule = match schedule(&app) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let store = app.store.clone();
    let found = tokio::task::spawn_blocking(move || {
        Ok::<_, StoreError>((store.sender_servers(None)?, store.server_pauses(None)?))
    })
    .await;
    let (rows, pauses) = match found {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return failed(e),
        Err(e) => return failed(e),
    };
    let now = portcullis_store::now_ms();
    let own_out_of_date = rows
        .iter()
        .filter(|r| r.own && r.status != "current")
        .count();
    let servers: Vec<ServerReport> =
        report::reports(rows, &pauses, &schedule, report_only(&app), now)
            .into_iter()
            .filter(|r| status.as_deref().is_none_or(|s| r.server.status == s))
            .filter(|r| p.own.is_none_or(|o| r.server.own == o))
            .collect();
    Json(serde_json::json!({
        "servers": servers,
        "own_out_of_date": own_out_of_date,
        "mode": mode_name(app.senders.mode),
        "enabled": app.senders.enabled,
        "pause_allowance_days": app.senders.pause_allowance_days,
    }))
    .into_response()
}

/// The body as `T`, or the 400 that says what is expected.
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes, expected: &str) -> Result<T, String> {
    serde_json::from_slice::<T>(body).map_err(|_| format!("body: {expected}"))
}

fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() || key.len() > MAX_KEY || key.chars().any(char::is_control) {
        Err("key: a server's key as the list gives it, such as bank.example/mx1.bank.example")
    } else {
        Ok(())
    }
}

/// One server's report after a change.
fn one_report(
    store: &portcullis_store::Store,
    key: &str,
    schedule: &stage::Schedule,
    report_only: bool,
) -> Result<Option<ServerReport>, StoreError> {
    let Some(row) = store.sender_server(key)? else {
        return Ok(None);
    };
    let pauses = store.server_pauses(Some(key))?;
    let now = portcullis_store::now_ms();
    Ok(report::reports(vec![row], &pauses, schedule, report_only, now).pop())
}

/// Runs an administrator's change to one server off the async threads and
/// answers with what it did and the server's report after it.
async fn change(
    app: &App,
    key: String,
    apply: impl FnOnce(&portcullis_store::Store, &str) -> Result<Change, StoreError> + Send + 'static,
) -> Response {
    if let Err(why) = check_key(&key) {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let schedule = match schedule(app) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let (store, report_only) = (app.store.clone(), report_only(app));
    let done = tokio::task::spawn_blocking(move || {
        let change = apply(&store, &key)?;
        let report = match change {
            Change::Unknown | Change::OverAllowance(_) => None,
            _ => one_report(&store, &key, &schedule, report_only)?,
        };
        Ok::<_, StoreError>((change, report))
    })
    .await;
    let (change, report) = match done {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return failed(e),
        Err(e) => return failed(e),
    };
    let mut body = match change {
        Change::Unknown => return error(StatusCode::NOT_FOUND, "no such sending server"),
        Change::OverAllowance(left) => return (
            StatusCode::CONFLICT,
            Json(serde_json::json!({
                "error": format!(
                    "that pause is longer than the allowance: {left} {} left in the last 365 days",
                    if left == 1 { "day" } else { "days" }
                ),
                "days_left": left,
            })),
        )
            .into_response(),
        Change::Paused { until } => serde_json::json!({ "paused_until": until }),
        Change::Resumed { ended } => serde_json::json!({ "ended": ended }),
        Change::Exempt(exempt) => serde_json::json!({ "exempt": exempt }),
    };
    match report {
        Some(r) => {
            body["server"] = serde_json::to_value(&r).unwrap_or_default();
            Json(body).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "no such sending server"),
    }
}

/// `POST /api/servers/pause {"key", "days"}`.
pub(crate) async fn pause(State(app): State<App>, Admin(who): Admin, body: Bytes) -> Response {
    let req: PauseBody = match parse(&body, "{\"key\": \"org/host\", \"days\": N}") {
        Ok(r) => r,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    if req.days == 0 || req.days > 366 {
        return error(StatusCode::BAD_REQUEST, "days: 1 to 366");
    }
    let (actor, allowance) = (who.actor(), app.senders.pause_allowance_days);
    change(&app, req.key, move |store, key| {
        admin::pause(
            store,
            key,
            req.days,
            allowance,
            &actor,
            portcullis_store::now_ms(),
        )
    })
    .await
}

/// `POST /api/servers/resume {"key"}`.
pub(crate) async fn resume(State(app): State<App>, Admin(who): Admin, body: Bytes) -> Response {
    let req: KeyBody = match parse(&body, "{\"key\": \"org/host\"}") {
        Ok(r) => r,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    let actor = who.actor();
    change(&app, req.key, move |store, key| {
        admin::resume(store, key, &actor, portcullis_store::now_ms())
    })
    .await
}

/// `POST /api/servers/exempt {"key", "exempt"}`.
pub(crate) async fn exempt(State(app): State<App>, Admin(who): Admin, body: Bytes) -> Response {
    let req: ExemptBody = match parse(&body, "{\"key\": \"org/host\", \"exempt\": true|false}") {
        Ok(r) => r,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    let actor = who.actor();
    change(&app, req.key, move |store, key| {
        admin::exempt(store, key, req.exempt, &actor)
    })
    .await
}

/// `POST /api/servers/summary`: sends the weekly summary now, through the
/// gateway's queue, to `[senders] summary_to`. Answers `{"sent": trace id}`,
/// or `{"sent": null}` when there is nothing to report or nobody to tell.
pub(crate) async fn summary(State(app): State<App>, Admin(who): Admin) -> Response {
    match portcullis_senders::summary::send_now(&app.store, &app.queue, &app.senders, &app.hostname)
        .await
    {
        Ok(sent) => {
            let store = app.store.clone();
            let actor = who.actor();
            let target = sent.clone().unwrap_or_default();
            let _ = tokio::task::spawn_blocking(move || {
                store.audit(&actor, "send sending-servers summary", &target, 1, None)
            })
            .await;
            Json(serde_json::json!({ "sent": sent })).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(check_key("bank.test/ex01.bank.test").is_ok());
        assert!(check_key("(own)/ex02").is_ok());
        for bad in [String::new(), "a\r\nb".into(), "x".repeat(MAX_KEY + 1)] {
            assert!(check_key(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bodies_are_strict() {
        let ok: PauseBody = parse(&Bytes::from_static(b"{\"key\":\"a/b\",\"days\":10}"), "")
            .map_err(|_| ())
            .unwrap();
        assert_eq!((ok.key.as_str(), ok.days), ("a/b", 10));
        assert!(
            parse::<PauseBody>(&Bytes::from_static(b"{\"key\":\"a/b\",\"days\":-1}"), "").is_err()
        );
        assert!(parse::<ExemptBody>(
            &Bytes::from_static(b"{\"key\":\"a/b\",\"exempt\":true,\"x\":1}"),
            ""
        )
        .is_err());
        assert!(parse::<KeyBody>(&Bytes::from_static(b"not json"), "").is_err());
    }
}
