//! `portcullis quarantine list|show`: the held mail. Reads the quarantine folder
//! directly, so it answers whether or not the gateway runs. Releasing held mail
//! is the release workflow's job; these commands only look.

use crate::config::Config;
use anyhow::{Context, Result};
use portcullis_quarantine::{Held, Quarantine, QuarantineError};
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum QuarantineAction {
    /// Held messages, newest first.
    List {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// One held message: envelope, verdict with every symbol, and its headers.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Print the whole stored message instead (RFC 5322, as it would be
        /// delivered).
        #[arg(long)]
        raw: bool,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub fn run(config: &Config, action: &QuarantineAction) -> Result<ExitCode> {
    let dir = config.quarantine_dir();
    let q = Quarantine::open(&dir)
        .with_context(|| format!("cannot open the quarantine in {}", dir.display()))?;
    match action {
        QuarantineAction::List { format } => {
            let held = q.list()?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&held)?),
                Format::Text => {
                    if held.is_empty() {
                        eprintln!("the quarantine is empty");
                    }
                    for h in &held {
                        println!(
                            "{}  {}  {:>7.2} {:<9} from {} to {}  {}",
                            h.id,
                            portcullis_store::trace::rfc3339(h.received_at),
                            h.verdict.score,
                            h.verdict.category.as_str(),
                            show(&h.envelope.mail_from),
                            recipients(h),
                            h.subject.as_deref().unwrap_or("(no subject)")
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        QuarantineAction::Show { id, format, raw } => {
            let (held, message) = match q.read(id) {
                Ok(found) => found,
                Err(QuarantineError::NotFound(_)) => {
                    eprintln!("portcullis: no held message {id}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            };
            if *raw {
                std::io::stdout().write_all(&message)?;
                return Ok(ExitCode::SUCCESS);
            }
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&held)?),
                Format::Text => print_held(&held, &message),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
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
