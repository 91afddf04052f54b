//! The secure links' redirector: `GET /l/{token}` checks the link's signature,
//! judges its URL with today's lists and checks (`portcullis_links::judge`)
//! and redirects, warns or refuses. `POST /l/{token}` with `confirm=yes` goes
//! on past a warning. Nobody signs in: the signed token is what the link is.
//!
//! - A token that does not verify (altered, forged, a retired key, garbage):
//!   400, a page saying the link is not valid. Never a redirect, and nothing
//!   of what the token claims is shown: the link host is not an open
//!   redirector.
//! - Allow: 302 to the URL, with `Cache-Control: no-store` (the verdict is
//!   made again on each click) and `Referrer-Policy: no-referrer`.
//! - Block: 403, a page naming the host and the reason, with no link to it.
//! - Warn: 200, a page showing the URL as text, the reason and a Continue
//!   button that POSTs; a GET never goes on, as link previewers fetch links.
//!
//! Every click (and every Continue) is recorded in the trace of the message
//! the link was in, as a `clicked` event: URL, verdict, the recipient's keyed
//! hash, the client's address. Pages carry the same security headers as the
//! digest links' pages. URLs and reasons are hostile text: escaped.

use crate::links::{p, page};
use crate::App;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use portcullis_digest::html_escape;
use portcullis_links::{token, ClickVerdict, LinkToken};
use portcullis_store::EventKind;
use serde::Deserialize;
use std::net::SocketAddr;

/// The 400 page: the same whatever was wrong with the token.
fn not_valid() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This link is not valid",
        &format!(
            "{}{}",
            p("The link is incomplete or was changed, or it was not made by this mail gateway, so it does not lead anywhere."),
            p("Open it again from the message (the whole link, in one piece), or ask your mail administrator.")
        ),
    )
}

/// 302 to `url`, which the token carried (an absolute http or https URL
/// without spaces or control characters, so a valid header value).
fn redirect(url: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(url) else {
        return not_valid();
    };
    let mut r = StatusCode::FOUND.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, location);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn blocked(host: &str, reason: &str) -> Response {
    page(
        StatusCode::FORBIDDEN,
        "This link is blocked",
        &format!(
            "{}{}{}",
            p(&format!(
                "The link goes to {host}, which this mail gateway blocks."
            )),
            p(&format!("Reason: {reason}")),
            p("If you need this site for your work, ask your mail administrator.")
        ),
    )
}

/// The page's policy, but its form may lead anywhere on the web: browsers
/// apply `form-action` to the redirect that answers the Continue button.
const WARNING_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'";

fn warning(url: &str, reason: &str) -> Response {
    let mut r = page(
        StatusCode::OK,
        "This link may not be safe",
        &format!(
            "{}\n<p><code style=\"word-break:break-all\">{}</code></p>\n{}\n{}\n\
             <form method=\"post\"><input type=\"hidden\" name=\"confirm\" value=\"yes\">\
             <button type=\"submit\">Continue</button></form>",
            p("The link goes to this address:"),
            html_escape(url),
            p(&format!("Why it looks risky: {reason}")),
            p("Go on only if you expected this link and trust where it goes. If in doubt, close this page and ask your mail administrator.")
        ),
    );
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(WARNING_CSP),
    );
    r
}

fn verify(app: &App, text: &str) -> Option<LinkToken> {
    token::verify(&app.link_keys, text).ok()
}

fn record(app: &App, t: &LinkToken, verdict: &str, peer: SocketAddr) {
    app.store.record(
        &t.message,
        EventKind::Clicked {
            url: t.url.clone(),
            verdict: verdict.to_string(),
            recipient_hash: t
                .recipient_hash
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            client_ip: peer.ip().to_string(),
        },
    );
}

/// `GET /l/{token}`: redirect, warn or refuse.
pub(crate) async fn follow(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(text): Path<String>,
) -> Response {
    let Some(t) = verify(&app, &text) else {
        return not_valid();
    };
    let verdict = portcullis_links::judge(&t.url, &app.click_lists);
    record(&app, &t, verdict.name(), peer);
    match verdict {
        ClickVerdict::Allow => redirect(&t.url),
        ClickVerdict::Warn { reason } => warning(&t.url, &reason),
        ClickVerdict::Block { host, reason } => blocked(&host, &reason),
    }
}

#[derive(Deserialize)]
pub(crate) struct Confirm {
    confirm: Option<String>,
}

/// `POST /l/{token}` with `confirm=yes`: goes on past a warning. A block
/// stays a block; without the confirmation the warning is shown again.
pub(crate) async fn continue_anyway(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(text): Path<String>,
    form: Result<Form<Confirm>, FormRejection>,
) -> Response {
    let Some(t) = verify(&app, &text) else {
        return not_valid();
    };
    let confirmed = form.is_ok_and(|Form(c)| c.confirm.as_deref() == Some("yes"));
    match portcullis_links::judge(&t.url, &app.click_lists) {
        ClickVerdict::Allow => {
            record(&app, &t, "allow", peer);
            redirect(&t.url)
        }
        ClickVerdict::Warn { .. } if confirmed => {
            record(&app, &t, "continued", peer);
            redirect(&t.url)
        }
        ClickVerdict::Warn { reason } => warning(&t.url, &reason),
        ClickVerdict::Block { host, reason } => {
            record(&app, &t, "block", peer);
            blocked(&host, &reason)
        }
    }
}
