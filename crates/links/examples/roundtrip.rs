//! Rewrites the links of every message with an HTML part in a corpus and
//! checks the result: it still parses; every http(s) URL the scanner finds in
//! it is either a token link whose token verifies and carries one of the
//! original message's URLs (and not another token link), or a URL of the
//! original message left as it was; every original URL is still there or
//! carried by a token; the other URLs (mailto:, tel:, cid:, data:, ...) are
//! unchanged. A link another vendor wrapped (Safe Links, Proofpoint) counts
//! as there when the URL it wraps is, in a token or bare (for a
//! `do_not_rewrite` domain). Prints the counts, the mean time of a rewrite,
//! and, for scale, the mean time of the scanner's local checks (default
//! settings, no model, no DNS or antivirus) over the same messages, and of
//! the ARC seal (RSA-2048, two signatures) of each rewritten message.
//!
//! cargo run --release -p portcullis-links --example roundtrip -- ~/.cache/portcullis-corpus

use portcullis_links::token::{token_in, verify};
use portcullis_links::{recognise, rewrite, KeyRing, Rewrite, VendorLinks};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HOST: &str = "links.example.test";

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn has_html(raw: &[u8]) -> bool {
    mail_parser::MessageParser::default()
        .parse(raw)
        .is_some_and(|m| {
            m.parts
                .iter()
                .any(|p| matches!(p.body, mail_parser::PartType::Html(_)))
        })
}

/// A URL as the scanner normalises it: the one URL of a one-link message.
fn normalised(url: &str) -> Option<String> {
    let escaped = url.replace('&', "&amp;").replace('"', "&quot;");
    let raw = format!("Content-Type: text/html\r\n\r\n<a href=\"{escaped}\">x</a>\r\n");
    portcullis_scan::message_urls(raw.as_bytes())
        .into_iter()
        .next()
}

fn is_web(url: &str) -> bool {
    let l = url.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

fn check(
    ring: &KeyRing,
    original: &[u8],
    new: &[u8],
    unreadable: &mut usize,
) -> Result<(), String> {
    mail_parser::MessageParser::default()
        .parse(new)
        .ok_or("the result does not parse")?;
    let before = portcullis_scan::message_urls(original);
    let after = portcullis_scan::message_urls(new);
    let before_set: BTreeSet<&str> = before.iter().map(String::as_str).collect();
    // The URLs the vendor links of the original wrap, as the scanner reads
    // them, and the vendor link each stands for.
    let wrapped: BTreeMap<String, String> = before
        .iter()
        .filter_map(|u| {
            let (_, decoded) = recognise(u)?;
            Some((normalised(&decoded?)?, u.clone()))
        })
        .collect();
    let mut present: BTreeSet<String> = BTreeSet::new();
    let link_prefix = format!("https://{HOST}/l/");
    for url in after.iter().filter(|u| is_web(u)) {
        if url.starts_with(&link_prefix) {
            let t = verify(ring, token_in(url)).map_err(|e| format!("{url}: {e}"))?;
            if t.url.to_ascii_lowercase().contains(&format!("://{HOST}")) {
                return Err(format!("double-wrapped: {}", t.url));
            }
            // A URL the scanner cannot read (such as `http://209.163187.54/`)
            // is in neither list.
            let Some(n) = normalised(&t.url) else {
                *unreadable += 1;
                continue;
            };
            if before_set.contains(n.as_str()) {
                present.insert(n);
            } else if let Some(vendor_link) = wrapped.get(&n) {
                present.insert(vendor_link.clone());
            } else {
                return Err(format!("token carries a URL not in the original: {n}"));
            }
        } else if before_set.contains(url.as_str()) {
            present.insert(url.clone());
        } else if let Some(vendor_link) = wrapped.get(url) {
            // Unwrapped and written bare (a do_not_rewrite domain).
            present.insert(vendor_link.clone());
        } else {
            return Err(format!("a URL that was not in the original: {url}"));
        }
    }
    for url in before.iter().filter(|u| is_web(u)) {
        if !present.contains(url) {
            return Err(format!("an original URL is lost: {url}"));
        }
    }
    let others =
        |v: &[String]| -> Vec<String> { v.iter().filter(|u| !is_web(u)).cloned().collect() };
    if others(&before) != others(&after) {
        return Err("the non-http URLs changed".into());
    }
    Ok(())
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("corpus"));
    let mut paths = Vec::new();
    files(&root, &mut paths);
    let ring = KeyRing::generate();
    let keep = vec!["example.org".to_string()];
    let (mut messages, mut rewritten, mut kept, mut failures, mut errors) = (0, 0, 0, 0, 0);
    let mut unwrapped = 0;
    let mut unreadable = 0;
    let mut spent = Duration::ZERO;
    let mut scanning = Duration::ZERO;
    let scanner = portcullis_scan::Scanner::new(portcullis_scan::ScanConfig::default())
        .expect("the default scanner");
    let envelope = portcullis_scan::Envelope::default();
    let keys = tempfile::tempdir().expect("tempdir");
    let (sealer, _) = portcullis_links::ArcSigner::load_or_generate(
        &keys.path().join("arc.key"),
        "gw.example.test",
        "portcullis",
    )
    .expect("an ARC key");
    let seal_input = portcullis_scan::SealInput::new(
        mail_auth::AuthenticationResults::new(portcullis_scan::auth::interned_authserv_id(
            "gw.example.test",
        )),
        mail_auth::DkimResult::None,
    );
    let (mut sealing, mut sealed) = (Duration::ZERO, 0u32);
    for path in &paths {
        let Ok(raw) = std::fs::read(path) else {
            continue;
        };
        if !has_html(&raw) {
            continue;
        }
        messages += 1;
        let ctx = Rewrite {
            keys: &ring,
            host: HOST,
            message: "D2107H64DXJG0000",
            recipient: "alice@example.test",
            now: 1_795_000_000,
            do_not_rewrite: &keep,
            vendor_links: VendorLinks::Unwrap,
        };
        let start = Instant::now();
        let result = rewrite(&raw, &ctx);
        spent += start.elapsed();
        let start = Instant::now();
        std::hint::black_box(scanner.scan(&raw, &envelope));
        scanning += start.elapsed();
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                errors += 1;
                println!("refused: {}: {e}", path.display());
                continue;
            }
        };
        if r.rewritten > 0 {
            let start = Instant::now();
            let fields = sealer.seal(&r.message, &seal_input);
            sealing += start.elapsed();
            if fields.is_ok() {
                sealed += 1;
            } else {
                failures += 1;
                println!("FAIL {}: not sealed: {fields:?}", path.display());
            }
        }
        rewritten += r.rewritten;
        kept += r.kept;
        unwrapped += r.unwrapped;
        if let Err(e) = check(&ring, &raw, &r.message, &mut unreadable) {
            failures += 1;
            println!("FAIL {}: {e}", path.display());
        }
        // Rewriting the result again wraps nothing.
        if let Ok(again) = rewrite(&r.message, &ctx) {
            if again.rewritten != 0 {
                failures += 1;
                println!(
                    "FAIL {}: {} links wrapped twice",
                    path.display(),
                    again.rewritten
                );
            }
        }
    }
    let mean_us = if messages > 0 {
        spent.as_secs_f64() * 1e6 / f64::from(messages)
    } else {
        0.0
    };
    let scan_us = if messages > 0 {
        scanning.as_secs_f64() * 1e6 / f64::from(messages)
    } else {
        0.0
    };
    let seal_us = if sealed > 0 {
        sealing.as_secs_f64() * 1e6 / f64::from(sealed)
    } else {
        0.0
    };
    println!("sealed {sealed}  mean ARC seal {seal_us:.1} µs/message");
    println!(
        "files {}  messages with HTML {messages}  URLs rewritten {rewritten}  kept {kept}  vendor links unwrapped {unwrapped}  refused {errors}  failures {failures}  token URLs the scanner cannot read {unreadable}  mean rewrite {mean_us:.1} µs/message  mean scan {scan_us:.1} µs/message  rewrite/scan {:.1}%",
        paths.len(),
        if scan_us > 0.0 { mean_us / scan_us * 100.0 } else { 0.0 }
    );
    if failures > 0 || errors > 0 {
        std::process::exit(1);
    }
}
