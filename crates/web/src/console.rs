//! The web console: one page for administrators, helpdesk and end users to
//! find held mail, read why it was held, look at a safe preview and release,
//! request, approve, deny, delete or report it.
//!
//! ```text
//! GET /                    303 to /console
//! GET /console, /console/* the page (its paths are the page's own views)
//! GET /console/app.js      the script (an ES module, no framework, no build step)
//! GET /console/app.css     the style sheet
//! ```
//!
//! The files are built into the binary (`console/` beside `src/`). The page
//! has no powers of its own: it signs in with `POST /api/login` and then only
//! calls the JSON API (`quarantine_api`, `auth`) with `fetch`, sending the CSRF
//! token of the sign-in answer with every change, so every rule of who may see
//! and do what is the API's. A user's console therefore lists only their own
//! held mail.
//!
//! Standards: HTML (WHATWG Living Standard), Content Security Policy Level 3,
//! Fetch; the session cookie (RFC 6265) is `auth`'s.
//!
//! Security posture: everything a held message carries (subject, sender,
//! headers, text, links, attachment names) is hostile. The script writes it
//! into the page only as text (`textContent`, never as markup), links are
//! shown as text and never followed, and no image or other resource of a
//! message is loaded. The policy below forbids inline scripts and styles,
//! any other origin, plugins, framing and form posts elsewhere, so that even a
//! mistake in the script cannot run what a message brings. The page is never
//! cached (`no-store`), is not sniffed, sends no referrer and cannot be framed.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/console.js");
const STYLE: &str = include_str!("../console/console.css");

/// The Content-Security-Policy of every console response.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The console's routes; they need no state of their own.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/app.js", get(script))
        .route("/console/app.css", get(style))
        .route("/console/{*view}", get(index))
}

fn with_headers(content_type: &'static str, cache: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    let fixed: [(HeaderName, &'static str); 7] = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, cache),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    r
}

async fn index() -> Response {
    with_headers("text/html; charset=utf-8", "no-store", INDEX)
}

async fn script() -> Response {
    with_headers("text/javascript; charset=utf-8", "no-cache", SCRIPT)
}

async fn style() -> Response {
    with_headers("text/css; charset=utf-8", "no-cache", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_file_carries_the_policy_and_its_type() {
        for (r, kind) in [
            (index().await, "text/html"),
            (script().await, "text/javascript"),
            (style().await, "text/css"),
        ] {
            let h = r.headers();
            assert!(h[header::CONTENT_TYPE].to_str().unwrap().starts_with(kind));
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
            assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        }
        assert_eq!(index().await.headers()[header::CACHE_CONTROL], "no-store");
    }

    #[test]
    fn the_routes_do_not_clash() {
        // axum refuses overlapping routes when the router is built.
        let _ = routes::<()>();
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        // The policy would block them; this says so before a browser does.
        let lower = INDEX.to_ascii_lowercase();
        for tag in lower.match_indices("<script").map(|(i, _)| &lower[i..]) {
            let open = &tag[..tag.find('>').unwrap()];
            assert!(open.contains("src=\"/console/app.js\""), "{open}");
            assert!(tag[open.len() + 1..].starts_with("</script>"));
        }
        assert!(!lower.contains("<style"));
        assert!(!lower.contains(" style="));
        // No inline event handler (` onclick=` and the like).
        for (i, _) in lower.match_indices(" on") {
            let name: String = lower[i + 3..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase())
                .collect();
            assert!(
                !lower[i + 3 + name.len()..].starts_with('='),
                "an inline event handler: on{name}"
            );
        }
        assert!(!SCRIPT.contains("style="));
    }

    #[test]
    fn the_script_never_writes_markup() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "setAttribute('on",
            "setAttribute(\"on",
        ] {
            assert!(!SCRIPT.contains(sink), "console.js uses {sink}");
        }
    }
}
