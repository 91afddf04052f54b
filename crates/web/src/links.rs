//! The links in quarantine digests: `GET /q/{token}` shows what the link will
//! do, with one button; `POST /q/{token}` does it and says what happened.
//! Nobody signs in: the signed token is the credential (`portcullis_digest`).
//!
//! A GET never acts: mail scanners and link previewers fetch links, and a
//! release must not happen because one did. Refusals are small pages that
//! say in plain words what happened and what to do: 403 for a link that is
//! not valid (altered, or not ours) or an action no longer allowed, 410 for
//! an expired link, 409 for a link already used or a message no longer held,
//! 404 for a message no longer in the quarantine, 503 when the action could
//! not be done now (the link still works).
//!
//! Every page is sent with a Content-Security-Policy that allows no script,
//! no image and no frame (inline style only), `X-Frame-Options: DENY`,
//! `Referrer-Policy: no-referrer` (the token stays off other sites' logs) and
//! `Cache-Control: no-store`. Subjects and senders are hostile text: escaped.

use crate::App;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use portcullis_digest::{
    html_escape, human_time, one_line, ActOutcome, LinkAction, LinkError, LinkView, TokenError,
};
use portcullis_store::{HeldEntry, ReleaseStatus};

const STYLE: &str = "body{font-family:sans-serif;color:#222;background:#f6f6f6;margin:0}\
main{max-width:36em;margin:2em auto;background:#fff;padding:1.5em 2em;border:1px solid #ddd}\
h1{font-size:1.3em}th{text-align:left;padding-right:1em;vertical-align:top}\
button{font-size:1em;padding:.5em 1.2em}";

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'";

/// A whole page with the security headers.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{t}</title><style>{STYLE}</style></head>\n\
         <body><main><h1>{t}</h1>\n{body}\n</main></body></html>\n",
        t = html_escape(title)
    );
    let mut r = (status, Html(html)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    r
}

pub(crate) fn p(text: &str) -> String {
    format!("<p>{}</p>", html_escape(text))
}

fn status_words(s: ReleaseStatus) -> &'static str {
    match s {
        ReleaseStatus::Held => "still held",
        ReleaseStatus::Requested => "waiting for an administrator to decide on a release request",
        ReleaseStatus::Approved | ReleaseStatus::Releasing => "being released",
        ReleaseStatus::Denied => "held: an administrator denied its release",
        ReleaseStatus::Released | ReleaseStatus::Delivered => "already released",
        ReleaseStatus::Failed => "released, but the mail server refused it",
        ReleaseStatus::Deleted => "deleted by an administrator",
        ReleaseStatus::Expired => "deleted at the end of its retention",
    }
}

/// The page for a link that did nothing.
fn refusal(e: &LinkError, validity_days: u32) -> Response {
    let nothing = "Nothing was changed.";
    match e {
        LinkError::Token(TokenError::Expired) => page(
            StatusCode::GONE,
            "This link has expired",
            &format!(
                "{}{}",
                p(&format!(
                    "The links in a quarantine digest work for {validity_days} days. {nothing}"
                )),
                p("Use the links in your latest digest, or ask your mail administrator to release the message.")
            ),
        ),
        LinkError::Token(_) => page(
            StatusCode::FORBIDDEN,
            "This link is not valid",
            &format!(
                "{}{}",
                p(&format!(
                    "The link is incomplete or was changed, or it was not made by this mail gateway. {nothing}"
                )),
                p("Open it again from the digest (the whole link, in one piece), or ask your mail administrator.")
            ),
        ),
        LinkError::Used => page(
            StatusCode::CONFLICT,
            "This link was already used",
            &format!(
                "{}{}",
                p(&format!("Each link in a digest works once. {nothing}")),
                p("If the message has not arrived, ask your mail administrator.")
            ),
        ),
        LinkError::NotHeld(s) => page(
            StatusCode::CONFLICT,
            "This message is no longer held",
            &p(&format!("The message is {}. {nothing}", status_words(*s))),
        ),
        LinkError::NotFound => page(
            StatusCode::NOT_FOUND,
            "This message is not in the quarantine",
            &p(&format!(
                "It may have been deleted. {nothing} Ask your mail administrator if you need it."
            )),
        ),
        LinkError::NotAllowed => page(
            StatusCode::FORBIDDEN,
            "This action is not allowed",
            &p(&format!(
                "The quarantine's rules for this kind of message changed since the digest was sent. {nothing} Ask your mail administrator."
            )),
        ),
        LinkError::Unavailable(why) => {
            tracing::warn!(error = %why, "a digest link could not act");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again in a few minutes",
                &p(&format!(
                    "The mail gateway could not do this right now. {nothing} The link still works."
                )),
            )
        }
    }
}

fn summary(e: &HeldEntry) -> String {
    let row = |k: &str, v: &str| {
        format!(
            "<tr><th>{}</th><td>{}</td></tr>",
            html_escape(k),
            html_escape(v)
        )
    };
    let sender = e
        .sender
        .as_deref()
        .map(one_line)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "(no sender)".into());
    let subject = e
        .subject
        .as_deref()
        .map(one_line)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "(no subject)".into());
    let expires = if e.pinned {
        "never (kept by an administrator)".to_string()
    } else {
        human_time(e.expires_at)
    };
    format!(
        "<table>{}{}{}{}{}{}</table>",
        row("From", &sender),
        row("Subject", &subject),
        row("To", &one_line(&e.recipient)),
        row("Received", &human_time(e.received_at)),
        row("Held as", &one_line(e.category.as_deref().unwrap_or("-"))),
        row("Deleted", &expires),
    )
}

fn what_it_does(action: LinkAction, e: &HeldEntry) -> (String, &'static str) {
    match action {
        LinkAction::Release => (
            "The message will be delivered to your mailbox. Release it only if you trust it: it was held because it looked dangerous or unwanted.".into(),
            "Release this message",
        ),
        LinkAction::RequestRelease => (
            "An administrator will be asked to release the message to you.".into(),
            "Ask for release",
        ),
        LinkAction::AllowSender => (
            format!(
                "{} will be added to your allowed senders.",
                one_line(e.sender.as_deref().unwrap_or(""))
            ),
            "Allow this sender",
        ),
    }
}

async fn blocking_inspect(app: &App, token: String) -> Result<LinkView, LinkError> {
    let digests = app.digests.clone();
    tokio::task::spawn_blocking(move || digests.inspect(&token))
        .await
        .unwrap_or_else(|e| Err(LinkError::Unavailable(e.to_string())))
}

/// `GET /q/{token}`: what the link will do, and a button. Changes nothing.
pub(crate) async fn show(State(app): State<App>, Path(token): Path<String>) -> Response {
    let validity = app.digests.config().link_validity_days;
    let view = match blocking_inspect(&app, token).await {
        Ok(v) => v,
        Err(e) => return refusal(&e, validity),
    };
    if view.used {
        return refusal(&LinkError::Used, validity);
    }
    if !view.allowed {
        return refusal(&LinkError::NotAllowed, validity);
    }
    if view.claims.action != LinkAction::AllowSender && view.entry.status != ReleaseStatus::Held {
        return refusal(&LinkError::NotHeld(view.entry.status), validity);
    }
    let (explain, button) = what_it_does(view.claims.action, &view.entry);
    page(
        StatusCode::OK,
        view.claims.action.label(),
        &format!(
            "{}\n{}\n<form method=\"post\"><button type=\"submit\">{}</button></form>\n{}",
            summary(&view.entry),
            p(&explain),
            html_escape(button),
            p("This link works once.")
        ),
    )
}

/// `POST /q/{token}`: does what the link says, once.
pub(crate) async fn press(State(app): State<App>, Path(token): Path<String>) -> Response {
    let validity = app.digests.config().link_validity_days;
    match app.digests.act(&token).await {
        Ok((_, ActOutcome::Released { release_id })) => page(
            StatusCode::OK,
            "Released",
            &format!(
                "{}{}",
                p("The message is on its way to your mailbox; it may take a minute to arrive."),
                p(&format!("Reference for your administrator: {release_id}"))
            ),
        ),
        Ok((_, ActOutcome::Requested)) => page(
            StatusCode::OK,
            "Release requested",
            &p("An administrator will look at the message. If they release it, it arrives in your mailbox."),
        ),
        Ok((_, ActOutcome::SenderAllowed { sender, added })) => page(
            StatusCode::OK,
            "Sender allowed",
            &p(&if added {
                format!("{} was added to your allowed senders.", one_line(&sender))
            } else {
                format!("{} was already one of your allowed senders.", one_line(&sender))
            }),
        ),
        Err(e) => refusal(&e, validity),
    }
}
