//! Secure links: inbound mail's links rewritten to `https://<links.host>/l/<token>`
//! and checked again when they are clicked. The parts: the signed token a
//! rewritten link carries ([`token`]) and the key ring that signs and verifies
//! it, kept in the data folder ([`keys`]); the `[links]` section
//! ([`LinksConfig`]); the rewriting of a message's links ([`rewrite()`]), which
//! recognises and unwraps other vendors' wrapped links ([`vendors`]); the ARC
//! seal added after the change ([`arc::ArcSigner`]), since rewriting breaks the
//! sender's DKIM signature and an ARC set carries what the gateway saw before
//! it; and the click-time check of a link's URL ([`click::judge`]), which the
//! HTTP listener's redirector (`/l/<token>`) applies. The gateway decides which
//! mail is rewritten (`portcullis_gateway::links`).
//!
//! Standards: RFC 2104 (HMAC, with SHA-256), RFC 4648 §5 (base64url, no padding)
//! for the token's text, RFC 3986 for the URLs it carries (absolute `http` and
//! `https` only; non-ASCII, as in an IRI, is kept as UTF-8), RFC 8617 (ARC,
//! `rsa-sha256` only) and RFC 6376 §3.6.1 (the key record published for it).
//!
//! Security posture: the token is the only thing a clicker sends, so it is
//! treated as hostile. Its length is checked before it is decoded
//! ([`token::MAX_TOKEN_LEN`]), its tag is checked in constant time before any
//! field in it is believed, and a forged or altered token yields an error and
//! no URL: the link host must never become an open redirector. A token is
//! signed, not encrypted: whoever holds the link can read the URL and the trace
//! id in it (the recipient appears only as a keyed hash). Keys are 32 random
//! bytes in files of mode 0600; they are never printed or logged, and
//! `Debug` shows only their ids. The ARC key is RSA-2048 in a PEM file of mode
//! 0600, likewise never printed or logged; the message it seals is hostile,
//! and one that cannot be parsed gets an error, not a seal.

pub mod arc;
pub mod click;
pub mod config;
pub mod keys;
pub mod rewrite;
pub mod token;
pub mod vendors;

pub use arc::{ArcError, ArcSigner, DnsRecord};
pub use click::{judge, ClickLists, ClickVerdict};
pub use config::LinksConfig;
pub use keys::{KeyError, KeyRing};
pub use rewrite::{rewrite, Rewrite, RewriteError, Rewritten};
pub use token::{sign, verify, LinkToken, TokenError};
pub use vendors::{recognise, Vendor, VendorLinks};
