//! `portcullis quarantine list|show|release|delete`: held mail. `list` and
//! `show` read the store and the quarantine folder directly, so they answer
//! whether or not the gateway runs. `release` and `delete` ask the running
//! gateway (its local API): a release is queued by the gateway's own queue, and
//! one process changes the release status, so a release is never done twice.

use crate::config::Config;
use crate::http_client;
use anyhow::{Context, Result};
use portcullis_quarantine::{Held, Quarantine, QuarantineError};
use portcullis_store::{HeldEntry, HeldQuery, ReleaseStatus, Store};
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum QuarantineAction {
    /// Held recipients, newest first, one line each, with their release status.
    List {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        filter: Filter,
        #[arg(long)]
        recipient: Option<String>,
        /// Only what can still be released or deleted.
        #[arg(long)]
        live: bool,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One held message: envelope, verdict with every symbol, each recipient's
    /// release status, and its headers.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Print the whole stored message instead (RFC 5322, as it would be
        /// delivered).
        #[arg(long)]
        raw: bool,
    },
    /// Release a held message: a copy is queued for delivery to its held
    /// recipients (or only those named with --recipient). Without an ID,
    /// releases everything the filter options select (--all: everything held);
    /// --dry-run only counts. Needs the gateway.
    Release(Change),
    /// Delete a held message for all its recipients (or only those named), or
    /// everything a filter selects, as for release. Needs the gateway.
    Delete(Change),
    /// Judge held mail again with the current rules and model: one message
    /// by ID, or what the filter options select (--all: everything held).
    /// Prints how many now pass; --release releases those. Needs the gateway.
    Rescan {
        id: Option<String>,
        #[command(flatten)]
        filter: Filter,
        #[arg(long)]
        all: bool,
        /// Release the messages that now pass.
        #[arg(long)]
        release: bool,
    },
    /// Keep a held message DAYS longer (from its expiry, or from now when that
    /// is past), for all its recipients still held or those named. A digest
    /// lists it as expiring again before any purge. Needs the gateway.
    Extend {
        id: String,
        #[arg(long)]
        days: u32,
        #[arg(long = "recipient")]
        recipients: Vec<String>,
    },
    /// Pin a held message so that retention never purges it (--off unpins
    /// it). Needs the gateway.
    Pin {
        id: String,
        #[arg(long)]
        off: bool,
        #[arg(long = "recipient")]
        recipients: Vec<String>,
    },
}

/// What `list`, `release` and `delete` select by.
#[derive(clap::Args, Debug, Default)]
pub struct Filter {
    /// held, requested, approved, denied, releasing, released, delivered,
    /// failed, deleted or expired.
    #[arg(long, value_parser = parse_status)]
    status: Option<ReleaseStatus>,
    /// spam, phishing, malware, policy or clean.
    #[arg(long)]
    category: Option<String>,
    /// A symbol (rule) of the verdict, e.g. BAYES_SPAM_99.
    #[arg(long)]
    symbol: Option<String>,
    #[arg(long)]
    sender: Option<String>,
    /// Held in the last period, e.g. 2h or 3d.
    #[arg(long)]
    since: Option<String>,
    /// Words in the subject or sender.
    #[arg(long)]
    text: Option<String>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.category.is_none()
            && self.symbol.is_none()
            && self.sender.is_none()
            && self.since.is_none()
            && self.text.is_none()
    }
}

#[derive(clap::Args, Debug)]
pub struct Change {
    /// The held message; leave it out to act on what the filter selects.
    id: Option<String>,
    /// With an ID: only these recipients. Without: only this recipient's mail.
    #[arg(long = "recipient")]
    recipients: Vec<String>,
    #[command(flatten)]
    filter: Filter,
    /// Without an ID and filter: everything held.
    #[arg(long)]
    all: bool,
    /// Count what would be done, change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

fn parse_status(s: &str) -> Result<ReleaseStatus, String> {
    ReleaseStatus::parse(s).ok_or_else(|| {
        let names: Vec<_> = ReleaseStatus::ALL.iter().map(|s| s.as_str()).collect();
        format!("one of {}", names.join(", "))
    })
}

pub fn run(config: &Config, action: &QuarantineAction) -> Result<ExitCode> {
    match action {
        QuarantineAction::List {
            format,
            filter,
            recipient,
            live,
            limit,
        } => {
            let since_ms = match &filter.since {
                Some(s) => Some(
                    portcullis_store::now_ms()
                        - portcullis_web::parse_duration(s)
                            .context("--since: use a duration such as 30m, 2h or 7d")?
                            .as_millis() as i64,
                ),
                None => None,
            };
            let q = HeldQuery {
                status: filter.status,
                live: *live,
                category: filter.category.clone(),
                symbol: filter.symbol.clone(),
                sender: filter.sender.clone(),
                recipient: recipient.clone(),
                since_ms,
                text: filter.text.clone(),
                limit: *limit,
                ..HeldQuery::default()
            };
            let entries = match open_store(config)? {
                Some(store) => store.held(&q)?,
                None => Vec::new(),
            };
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
                Format::Text => {
                    if entries.is_empty() {
                        eprintln!("no held mail matches");
                    }
                    for e in &entries {
                        print_entry(e);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        QuarantineAction::Show { id, format, raw } => {
            let q = open_quarantine(config)?;
            let entries = match open_store(config)? {
                Some(store) => store.held_message(id)?,
                None => Vec::new(),
            };
            let (held, message) = match q.read(id) {
                Ok((h, m)) => (Some(h), Some(m)),
                Err(QuarantineError::NotFound(_)) if !entries.is_empty() => (None, None),
                Err(QuarantineError::NotFound(_)) => {
                    eprintln!("portcullis: no held message {id}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            };
            if *raw {
                let Some(message) = message else {
                    eprintln!(
                        "portcullis: the stored message {id} was removed (deleted or expired)"
                    );
                    return Ok(ExitCode::from(1));
                };
                std::io::stdout().write_all(&message)?;
                return Ok(ExitCode::SUCCESS);
            }
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "held": held, "entries": entries })
                    )?
                ),
                Format::Text => {
                    if let (Some(h), Some(m)) = (&held, &message) {
                        print_held(h, m);
                    }
                    println!("recipients:");
                    for e in &entries {
                        println!(
                            "  {:<10} {}{}",
                            e.status.as_str(),
                            e.recipient,
                            e.release_id
                                .as_deref()
                                .map(|r| format!("  (released as {r})"))
                                .unwrap_or_default()
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        QuarantineAction::Release(change) => change_held(config, "release", change),
        QuarantineAction::Rescan {
            id,
            filter,
            all,
            release,
        } => rescan(config, id.as_deref(), filter, *all, *release),
        QuarantineAction::Delete(change) => change_held(config, "delete", change),
        QuarantineAction::Extend {
            id,
            days,
            recipients,
        } => crate::cli_digest::extend(config, id, *days, recipients),
        QuarantineAction::Pin {
            id,
            off,
            recipients,
        } => crate::cli_digest::pin(config, id, !*off, recipients),
    }
}

fn open_quarantine(config: &Config) -> Result<Quarantine> {
    let dir = config.quarantine_dir();
    Quarantine::open(&dir)
        .with_context(|| format!("cannot open the quarantine in {}", dir.display()))
}

/// The store, if this configuration has one yet.
fn open_store(config: &Config) -> Result<Option<Store>> {
    let path = config.store_path();
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(Store::open_sqlite(&path).with_context(|| {
        format!("cannot open the store {}", path.display())
    })?))
}

/// Release or delete one message, or in bulk, through the running gateway.
fn change_held(config: &Config, action: &str, change: &Change) -> Result<ExitCode> {
    match (&change.id, change.filter.is_empty(), change.all) {
        (Some(id), true, false) if !change.dry_run => {
            ask_gateway(config, action, id, &change.recipients)
        }
        (Some(_), true, false) => {
            anyhow::bail!("--dry-run counts what filter options select; leave out the ID")
        }
        (Some(_), _, _) => anyhow::bail!(
            "name one held message, or select by filter options without an ID; not both"
        ),
        (None, true, false) if change.recipients.is_empty() => anyhow::bail!(
            "name a held message, or select by filter options (--symbol, --since, ...); --all for everything held"
        ),
        (None, _, _) => bulk(config, action, change),
    }
}

fn rescan(
    config: &Config,
    id: Option<&str>,
    f: &Filter,
    all: bool,
    release: bool,
) -> Result<ExitCode> {
    if id.is_none() && f.is_empty() && !all {
        anyhow::bail!(
            "name a held message, or select by filter options; --all for everything held"
        );
    }
    let body = serde_json::json!({
        "action": "rescan",
        "release": release,
        "filter": {
            "message": id,
            "status": f.status,
            "category": f.category,
            "symbol": f.symbol,
            "sender": f.sender,
            "since": f.since,
            "text": f.text,
        },
    });
    let (status, answer) = call(config, "/api/quarantine/bulk", Some(&body))?;
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
    if status != 200 {
        eprintln!(
            "portcullis: cannot rescan: {}",
            v["error"].as_str().unwrap_or(answer.trim())
        );
        return Ok(ExitCode::from(3));
    }
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    println!(
        "rescanned {} held messages: {} now pass{}",
        n("scanned"),
        n("passing"),
        if release {
            format!("; released {} recipients", n("released"))
        } else {
            " (nothing released; --release releases them)".into()
        }
    );
    let failed = v["failed"].as_object().cloned().unwrap_or_default();
    for (id, why) in &failed {
        eprintln!("  {id}: {}", why.as_str().unwrap_or("?"));
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn bulk(config: &Config, action: &str, change: &Change) -> Result<ExitCode> {
    if change.recipients.len() > 1 {
        anyhow::bail!("without an ID, --recipient selects one recipient's mail; give it once");
    }
    let f = &change.filter;
    let body = serde_json::json!({
        "action": action,
        "dry_run": change.dry_run,
        "filter": {
            "status": f.status,
            "category": f.category,
            "symbol": f.symbol,
            "sender": f.sender,
            "recipient": change.recipients.first(),
            "since": f.since,
            "text": f.text,
        },
    });
    let (status, answer) = call(config, "/api/quarantine/bulk", Some(&body))?;
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
    if status != 200 {
        eprintln!(
            "portcullis: cannot {action}: {}",
            v["error"].as_str().unwrap_or(answer.trim())
        );
        return Ok(ExitCode::from(3));
    }
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    if change.dry_run {
        println!(
            "would {action} {} recipients of {} held messages (dry run, nothing changed)",
            n("recipients"),
            n("messages")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if action == "release" {
        "released"
    } else {
        "deleted"
    };
    println!(
        "{verb} {} recipients of {} held messages selected; {} skipped (already done by someone else)",
        n("done"),
        n("messages"),
        n("skipped")
    );
    let failed = v["failed"].as_object().cloned().unwrap_or_default();
    for (id, why) in &failed {
        eprintln!("  {id}: {}", why.as_str().unwrap_or("?"));
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// One POST to the running gateway's API.
fn call(config: &Config, path: &str, body: Option<&serde_json::Value>) -> Result<(u16, String)> {
    http_client::post_blocking(config.http.listen, path, body)
}

/// Release or delete one message through the running gateway's API.
fn ask_gateway(config: &Config, action: &str, id: &str, recipients: &[String]) -> Result<ExitCode> {
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) || id.is_empty() {
        eprintln!("portcullis: no held message {id}");
        return Ok(ExitCode::from(1));
    }
    let body = (!recipients.is_empty()).then(|| serde_json::json!({ "recipients": recipients }));
    let path = format!("/api/quarantine/{id}/{action}");
    match call(config, &path, body.as_ref())? {
        (200, body) => {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            match action {
                "release" => println!(
                    "released {id} to {} as {}",
                    list_of(&v["recipients"]),
                    v["release_id"].as_str().unwrap_or("?")
                ),
                _ => println!("deleted {id} for {}", list_of(&v["deleted"])),
            }
            Ok(ExitCode::SUCCESS)
        }
        (status, body) => {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let why = v["error"].as_str().unwrap_or(body.trim());
            eprintln!("portcullis: cannot {action} {id}: {why}");
            if let Some(rcpts) = v["recipients"].as_array() {
                for r in rcpts {
                    eprintln!(
                        "  {} is {}",
                        r["recipient"].as_str().unwrap_or("?"),
                        r["status"].as_str().unwrap_or("?")
                    );
                }
            }
            Ok(ExitCode::from(if status == 404 { 1 } else { 3 }))
        }
    }
}

fn list_of(v: &serde_json::Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn print_entry(e: &HeldEntry) {
    println!(
        "{}  {}  {:<10} {:>7.2} {:<9} from {} to {}  {}",
        e.message,
        e.received,
        e.status.as_str(),
        e.score.unwrap_or(0.0),
        e.category.as_deref().unwrap_or("-"),
        show(e.sender.as_deref().unwrap_or("")),
        e.recipient,
        e.subject.as_deref().unwrap_or("(no subject)")
    );
}

fn print_held(h: &Held, message: &[u8]) {
    println!(
        "{}  held since {}",
        h.id,
        portcullis_store::trace::rfc3339(h.received_at)
    );
    println!("  from {} ({})", show(&h.envelope.mail_from), h.client_ip);
    println!("  to {}", recipients(h));
    if let Some(s) = &h.subject {
        println!("  subject: {s}");
    }
    if let Some(m) = &h.message_id {
        println!("  message-id: {m}");
    }
    println!(
        "  verdict: {} ({}), score {:.2}",
        h.verdict.action.as_str(),
        h.verdict.category.as_str(),
        h.verdict.score
    );
    for s in &h.verdict.symbols {
        println!("    {:>8.2} {:<28} {}", s.score, s.name, s.detail);
    }
    println!("  size: {} bytes", h.size);
    println!();
    let end = memchr::memmem::find(message, b"\r\n\r\n").unwrap_or(message.len());
    println!("{}", String::from_utf8_lossy(&message[..end]));
}

fn recipients(h: &Held) -> String {
    h.envelope
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn show(addr: &str) -> &str {
    if addr.is_empty() {
        "<>"
    } else {
        addr
    }
}
