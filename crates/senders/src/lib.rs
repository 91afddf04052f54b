//! Sender-server enforcement: which software, at which version, the sending
//! organisation's mail servers run, what that version is worth, and the
//! staged response to servers that are out of date: report, then throttle
//! (451 4.7.x), then block (550 5.7.x), as Exchange Online does for
//! on-premises Exchange, for any software whose version can be recognised.
//!
//! - [`identify`]: the evidence sending servers write, read from a message's
//!   `Received` header fields (RFC 5321 §4.4): Exchange's `with Microsoft SMTP
//!   Server ... id 15.x.y.z`, `Microsoft SMTPSVC(...)`, Exim's `(Exim 4.xx)`,
//!   Sendmail's `(8.x.y/8.x.y)`; which hop wrote it decides whether it counts.
//! - [`catalog`]: the version catalogue (a data file shipped in
//!   `crates/senders/catalog/`, replaceable and extendable by admins): release
//!   names, dates, support status, CVEs and the recommended build.
//! - [`stage`]: the schedule: from the day a server is first seen out of
//!   date, report, throttle a growing share, block; pauses and exemptions.
//! - [`software`]: the shared vocabulary (product, version, status).
//! - [`admin`]: pausing, resuming and exempting a server, for the CLI and
//!   the API alike.
//! - [`config`]: the `[senders]` section; [`site_catalog`]: the catalogue
//!   with the administrator's imports, kept in the data folder.
//! - [`report`]: each known server with its standing today, for the list,
//!   the console and the weekly summary ([`summary`]).
//!
//! Standards: RFC 5321 §4.4 (trace fields), RFC 3463 (enhanced status codes
//! of the replies the gateway gives).
//!
//! Security posture: every `Received` field is written by whoever sent the
//! message and may be forged. Only the field added by the server that
//! actually connected (the topmost one, whose `by` names the host that
//! greeted us) can lead to enforcement, and only for that server's own state,
//! keyed on its verified identity; everything deeper is reported, never
//! enforced. Header parsing is bounded (fields, bytes per field) and never
//! panics; catalogue files are checked when loaded and a bad one is refused
//! with the line at fault.

pub mod admin;
pub mod catalog;
pub mod config;
pub mod identify;
pub mod report;
pub mod site_catalog;
pub mod software;
pub mod stage;
pub mod summary;

pub use config::{Mode, SendersConfig};
pub use software::{Product, Software, Status, Version};
