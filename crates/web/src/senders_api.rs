//! Recipients' own rules about senders: a user allows or blocks a sender for
//! their own addresses (the portal), helpdesk and admins for anyone's.
//!
//! ```text
//! GET  /api/senders                          the viewer's rules (all, for helpdesk and admin)
//! POST /api/senders {"sender", "rule": "allow"|"block"|"none", "recipient"?}
//! ```
//!
//! A user's rule applies to every address they own unless `recipient` names
//! one of them; naming somebody else's is 404. The gateway applies the rules
//! (see the gateway's `sender_rules`): an allow never lets through malware,
//! phishing or a sender that fails authentication.
//!
//! Hostile input: the sender is checked to look like an address (bounded,
//! no spaces or control characters) and is only ever a SQL parameter.

use crate::auth::Identity;
use crate::{error, App};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_quarantine::Role;
use portcullis_store::digest::SenderRule;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Wanted {
    Allow,
    Block,
    /// Remove the rule.
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetRule {
    sender: String,
    rule: Wanted,
    recipient: Option<String>,
}

fn plausible_address(s: &str) -> bool {
    s.len() <= 320
        && s.contains('@')
        && !s.starts_with('@')
        && !s.ends_with('@')
        && s.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '<' && c != '>')
}

pub(crate) async fn list(State(app): State<App>, who: Identity) -> Response {
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || store.sender_rules(None)).await {
        Ok(Ok(mut rules)) => {
            if who.role == Role::User {
                rules.retain(|r| who.owns(&r.recipient));
            }
            Json(serde_json::json!({ "rules": rules })).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub(crate) async fn set(State(app): State<App>, who: Identity, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<SetRule>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "body: {\"sender\": \"address\", \"rule\": \"allow\"|\"block\"|\"none\", \"recipient\": \"address\" (optional)}",
        );
    };
    let sender = req
        .sender
        .trim()
        .trim_matches(['<', '>'])
        .to_ascii_lowercase();
    if !plausible_address(&sender) {
        return error(
            StatusCode::BAD_REQUEST,
            "sender: an address such as news@example.com",
        );
    }
    let recipients: Vec<String> = match (&req.recipient, who.role) {
        (Some(r), Role::User) if !who.owns(r) => {
            return error(
                StatusCode::NOT_FOUND,
                "no such recipient among your addresses",
            )
        }
        (Some(r), _) if plausible_address(r) => vec![r.to_ascii_lowercase()],
        (Some(_), _) => return error(StatusCode::BAD_REQUEST, "recipient: an address"),
        (None, Role::User) if !who.addresses.is_empty() => who
            .addresses
            .iter()
            .map(|a| a.to_ascii_lowercase())
            .collect(),
        (None, _) => return error(StatusCode::BAD_REQUEST, "recipient: say whose rule this is"),
    };
    let (store, actor) = (app.store.clone(), who.actor());
    let rule = req.rule;
    let done = tokio::task::spawn_blocking(move || {
        for r in &recipients {
            match rule {
                Wanted::Allow => {
                    store.set_sender_rule(r, &sender, SenderRule::Allow, &actor)?;
                }
                Wanted::Block => {
                    store.set_sender_rule(r, &sender, SenderRule::Block, &actor)?;
                }
                Wanted::None => {
                    store.remove_sender_rule(r, &sender)?;
                }
            }
        }
        let what = match rule {
            Wanted::Allow => "allow sender",
            Wanted::Block => "block sender",
            Wanted::None => "forget sender rule",
        };
        store.audit(
            &actor,
            what,
            &sender,
            recipients.len(),
            Some(&recipients.join(", ")),
        )?;
        Ok::<_, portcullis_store::StoreError>(recipients)
    })
    .await;
    match done {
        Ok(Ok(recipients)) => Json(serde_json::json!({ "recipients": recipients })).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn senders_must_look_like_addresses() {
        assert!(super::plausible_address("news@example.com"));
        for bad in [
            "",
            "news",
            "@example.com",
            "a b@example.com",
            "a@b\r\n",
            "<a@b>",
        ] {
            assert!(!super::plausible_address(bad), "{bad:?}");
        }
    }
}
