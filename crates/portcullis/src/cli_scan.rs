//! `portcullis scan PATH...`: scans raw RFC 5322 messages (files, or folders of
//! them, recursively) with the configured scanner and prints one verdict per
//! message, as JSON lines or as a report for a person. A leading mbox `From ` line
//! is skipped. Unreadable files are reported and make the exit status 1; the other
//! files are still scanned.

use crate::config::Config;
use anyhow::Result;
use portcullis_scan::{Envelope, Scanner};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Message files or folders of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Jsonl,
}

pub fn run(config: &Config, args: &ScanArgs) -> Result<ExitCode> {
    let scanner = Scanner::new(config.scan_config())?;
    // The trained classifier, when this configuration's store has one.
    if config.store_path().exists() {
        let store = portcullis_store::Store::open_sqlite(&config.store_path())?;
        if let Some((model, _)) = crate::model::load(&store)? {
            scanner.set_model(Some(std::sync::Arc::new(model)));
        }
    }
    let mut files = Vec::new();
    for p in &args.paths {
        collect(p, &mut files);
    }
    let mut failed = false;
    for path in files {
        let raw = match std::fs::read(&path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("portcullis: cannot read {}: {e}", path.display());
                failed = true;
                continue;
            }
        };
        let message = strip_mbox_from(&raw);
        let started = std::time::Instant::now();
        let verdict = scanner.scan(message, &Envelope::default());
        let elapsed_us = started.elapsed().as_micros() as u64;
        let message_id = portcullis_scan::message_id(message);
        match args.format {
            Format::Jsonl => {
                let line = serde_json::json!({
                    "path": path.display().to_string(),
                    "message_id": message_id,
                    "score": verdict.score,
                    "category": verdict.category,
                    "action": verdict.action,
                    "symbols": verdict.symbols,
                    "elapsed_us": elapsed_us,
                });
                println!("{line}");
            }
            Format::Text => {
                println!("{}", path.display());
                println!(
                    "  message-id: {}",
                    message_id.as_deref().unwrap_or("(none)")
                );
                println!(
                    "  score {:.2}  category {}  action {}  ({elapsed_us} us)",
                    verdict.score,
                    name(&verdict.category),
                    name(&verdict.action)
                );
                for s in &verdict.symbols {
                    println!("  {:>8.2} {:<24} {}", s.score, s.name, s.detail);
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The serialised (lower-case) name of an enum value.
fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Files under `path` in a stable order; hidden files are skipped in folders.
pub fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for e in entries {
            if e.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
            {
                collect(&e, out);
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
}

/// Skips an mbox `From ` separator line if the file starts with one.
pub fn strip_mbox_from(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        match memchr_newline(raw) {
            Some(i) => &raw[i + 1..],
            None => raw,
        }
    } else {
        raw
    }
}

fn memchr_newline(raw: &[u8]) -> Option<usize> {
    raw.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    #[test]
    fn mbox_from_line_is_skipped() {
        assert_eq!(
            super::strip_mbox_from(b"From a@b Mon Jan 1\nSubject: x\n"),
            b"Subject: x\n"
        );
        assert_eq!(super::strip_mbox_from(b"From: a@b\n"), b"From: a@b\n");
    }
}
