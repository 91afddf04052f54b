//! Secure links: inbound mail's links rewritten to `https://<links.host>/l/<token>`
//! and checked again when they are clicked. This crate has the part that exists
//! so far: the signed token that a rewritten link carries ([`token`]), the key
//! ring that signs and verifies it, kept in the data folder ([`keys`]), the
//! `[links]` configuration section ([`LinksConfig`]), and the rewriting of a
//! message's links ([`rewrite()`]), which the gateway does not call yet, and
//! the click-time check of a link's URL ([`click::judge`]), which the HTTP
//! listener's redirector (`/l/<token>`) applies. Applying the rewriting to mail
//! is to come.
//!
//! Standards: RFC 2104 (HMAC, with SHA-256), RFC 4648 §5 (base64url, no padding)
//! for the token's text, RFC 3986 for the URLs it carries (absolute `http` and
//! `https` only; non-ASCII, as in an IRI, is kept as UTF-8).
//!
//! Security posture: the token is the only thing a clicker sends, so it is
//! treated as hostile. Its length is checked before it is decoded
//! ([`token::MAX_TOKEN_LEN`]), its tag is checked in constant time before any
//! field in it is believed, and a forged or altered token yields an error and
//! no URL: the link host must never become an open redirector. A token is
//! signed, not encrypted: whoever holds the link can read the URL and the trace
//! id in it (the recipient appears only as a keyed hash). Keys are 32 random
//! bytes in files of mode 0600; they are never printed or logged, and
//! `Debug` shows only their ids.

pub mod click;
pub mod config;
pub mod keys;
pub mod rewrite;
pub mod token;

pub use click::{judge, ClickLists, ClickVerdict};
pub use config::LinksConfig;
pub use keys::{KeyError, KeyRing};
pub use rewrite::{rewrite, Rewrite, RewriteError, Rewritten};
pub use token::{sign, verify, LinkToken, TokenError};
