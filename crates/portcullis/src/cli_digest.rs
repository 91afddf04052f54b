//! `portcullis digest send --now`, and `portcullis quarantine extend|pin`:
//! digests and retention through the running gateway's API. A digest is
//! queued by the gateway's own queue, and the gateway's purge reads the
//! retention these change, so both go through it.

use crate::config::Config;
use crate::http_client;
use anyhow::Result;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum DigestAction {
    /// Send every digest that has something to report. Digests go out at
    /// `[digest] times` by themselves; `--now` sends them at once. Needs the
    /// gateway.
    Send {
        /// At once, rather than at the next configured time.
        #[arg(long)]
        now: bool,
    },
}

pub fn run(config: &Config, action: &DigestAction) -> Result<ExitCode> {
    match action {
        DigestAction::Send { now: false } => {
            let times: Vec<String> = config.digest.times.iter().map(|t| t.to_string()).collect();
            println!(
                "digests go out at {} UTC by themselves; `portcullis digest send --now` sends them at once",
                if times.is_empty() {
                    "no configured time".to_string()
                } else {
                    times.join(", ")
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        DigestAction::Send { now: true } => {
            let (status, body) = call(config, "/api/digest/send", None)?;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if status != 200 {
                eprintln!(
                    "portcullis: digests not sent: {}",
                    v["error"].as_str().unwrap_or(body.trim())
                );
                return Ok(ExitCode::from(3));
            }
            let n = |k: &str| v[k].as_u64().unwrap_or(0);
            println!(
                "queued {} digests listing {} held entries",
                n("digests"),
                n("entries")
            );
            for sent in v["sent"].as_array().into_iter().flatten() {
                println!(
                    "  {} as {}",
                    sent[0].as_str().unwrap_or("?"),
                    sent[1].as_str().unwrap_or("?")
                );
            }
            let failed = v["failed"].as_array().cloned().unwrap_or_default();
            for f in &failed {
                eprintln!(
                    "  not sent to {}: {}",
                    f[0].as_str().unwrap_or("?"),
                    f[1].as_str().unwrap_or("?")
                );
            }
            Ok(if failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
    }
}

/// `portcullis quarantine extend ID --days N`
pub fn extend(config: &Config, id: &str, days: u32, recipients: &[String]) -> Result<ExitCode> {
    let mut body = serde_json::json!({ "days": days });
    if !recipients.is_empty() {
        body["recipients"] = serde_json::json!(recipients);
    }
    change(config, id, "extend", &body)
}

/// `portcullis quarantine pin ID [--off]`
pub fn pin(config: &Config, id: &str, pinned: bool, recipients: &[String]) -> Result<ExitCode> {
    let mut body = serde_json::json!({ "pinned": pinned });
    if !recipients.is_empty() {
        body["recipients"] = serde_json::json!(recipients);
    }
    change(config, id, "pin", &body)
}

fn change(config: &Config, id: &str, what: &str, body: &serde_json::Value) -> Result<ExitCode> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        eprintln!("portcullis: no held message {id}");
        return Ok(ExitCode::from(1));
    }
    let (status, answer) = call(config, &format!("/api/quarantine/{id}/{what}"), Some(body))?;
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
    if status != 200 {
        eprintln!(
            "portcullis: cannot {what} {id}: {}",
            v["error"].as_str().unwrap_or(answer.trim())
        );
        for r in v["recipients"].as_array().into_iter().flatten() {
            eprintln!(
                "  {} is {}",
                r["recipient"].as_str().unwrap_or("?"),
                r["status"].as_str().unwrap_or("?")
            );
        }
        return Ok(ExitCode::from(if status == 404 { 1 } else { 3 }));
    }
    for e in v["entries"].as_array().into_iter().flatten() {
        println!(
            "{id} {:<10} {}  {}",
            e["status"].as_str().unwrap_or("?"),
            e["recipient"].as_str().unwrap_or("?"),
            if e["pinned"].as_bool() == Some(true) {
                "pinned: kept until unpinned".to_string()
            } else {
                format!("kept until {}", e["expires"].as_str().unwrap_or("?"))
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One POST to the running gateway's API.
fn call(config: &Config, path: &str, body: Option<&serde_json::Value>) -> Result<(u16, String)> {
    http_client::post_blocking(config.http.listen, path, body)
}
