//! `portcullis trace`: "where is my mail?" in one command. Reads the trace store
//! directly (SQLite allows readers beside the running daemon), so it answers even
//! when the gateway is stopped.

use crate::config::Config;
use anyhow::{Context, Result};
use portcullis_store::{MessageQuery, MessageStatus, MessageTrace, Store};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// The gateway's queue id (as in the 250 reply).
    #[arg(long)]
    id: Option<String>,
    /// The Message-ID header, with or without angle brackets.
    #[arg(long)]
    message_id: Option<String>,
    /// Envelope sender (exact address).
    #[arg(long)]
    from: Option<String>,
    /// A recipient (exact address).
    #[arg(long)]
    to: Option<String>,
    /// Only messages received within this time back from now: 30m, 2h, 7d.
    #[arg(long, value_parser = parse_since)]
    since: Option<std::time::Duration>,
    /// queued, deferred, delivered, bounced, rejected, deleted or quarantined.
    #[arg(long, value_parser = parse_status)]
    status: Option<MessageStatus>,
    /// At most this many messages, newest first.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

fn parse_since(s: &str) -> Result<std::time::Duration, String> {
    portcullis_web::parse_duration(s)
        .ok_or_else(|| format!("`{s}` is not a duration; write it like 30m, 2h or 7d"))
}

fn parse_status(s: &str) -> Result<MessageStatus, String> {
    MessageStatus::parse(s).ok_or_else(|| {
        "one of queued, deferred, delivered, bounced, rejected, deleted, quarantined".into()
    })
}

pub fn run(config: &Config, args: &TraceArgs) -> Result<ExitCode> {
    let path = config.store_path();
    anyhow::ensure!(
        path.exists(),
        "no trace store at {} (has the gateway run with this configuration?)",
        path.display()
    );
    let store =
        Store::open_sqlite(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let query = MessageQuery {
        id: args.id.clone(),
        message_id: args.message_id.clone(),
        from: args.from.clone(),
        to: args.to.clone(),
        since_ms: args
            .since
            .map(|d| portcullis_store::now_ms() - d.as_millis() as i64),
        status: args.status,
        limit: args.limit.max(1),
        with_events: true,
    };
    let found = store.query(&query)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&found)?),
        Format::Text => print_text(&found),
    }
    // Like grep: 1 when nothing matched, so scripts can tell.
    Ok(if found.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_text(found: &[MessageTrace]) {
    if found.is_empty() {
        eprintln!("no message matches");
    }
    for m in found {
        println!(
            "{}  {}  {}",
            m.id,
            m.received,
            m.status.as_str().to_uppercase()
        );
        println!(
            "  from {} ({}{})",
            show(&m.mail_from),
            m.client_ip.as_deref().unwrap_or("?"),
            m.tls
                .as_deref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default()
        );
        if let Some(s) = &m.subject {
            println!("  subject: {s}");
        }
        if let Some(id) = &m.message_id {
            println!("  message-id: {id}");
        }
        if let Some(r) = &m.reason {
            println!("  refused: {r}");
        }
        if let (Some(score), Some(action)) = (m.score, &m.action) {
            println!(
                "  verdict: {action} ({}), score {score:.2}",
                m.category.as_deref().unwrap_or("?")
            );
        }
        for r in &m.recipients {
            println!(
                "  to {}: {}{}",
                r.address,
                r.status.as_str(),
                r.reply
                    .as_deref()
                    .map(|x| format!(" - {x}"))
                    .unwrap_or_default()
            );
        }
        for e in &m.events {
            let kind = e.kind.get("kind").and_then(|k| k.as_str()).unwrap_or("?");
            if kind == "scanned" {
                print_scanned(&e.at_rfc3339, &e.kind);
                continue;
            }
            let detail = e.kind.as_object().map(|o| {
                o.iter()
                    .filter(|(k, v)| *k != "kind" && !v.is_null())
                    .map(|(k, v)| {
                        format!(
                            "{k}={}",
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            });
            println!(
                "    {}  {kind}  {}",
                e.at_rfc3339,
                detail.unwrap_or_default()
            );
        }
        println!();
    }
}

/// A scan event: the verdict, then one line per symbol, as SpamAssassin's report.
fn print_scanned(at: &str, e: &serde_json::Value) {
    let get = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("?");
    println!(
        "    {at}  scanned  action={} category={} score={:.2} ({} us)",
        get("action"),
        get("category"),
        e.get("score").and_then(|v| v.as_f64()).unwrap_or(0.0),
        e.get("elapsed_us").and_then(|v| v.as_u64()).unwrap_or(0)
    );
    for s in e
        .get("symbols")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        println!(
            "      {:>8.2} {:<28} {}",
            s.get("score").and_then(|v| v.as_f64()).unwrap_or(0.0),
            s.get("name").and_then(|v| v.as_str()).unwrap_or("?"),
            s.get("detail").and_then(|v| v.as_str()).unwrap_or("")
        );
    }
}

fn show(addr: &str) -> &str {
    if addr.is_empty() {
        "<>"
    } else {
        addr
    }
}
