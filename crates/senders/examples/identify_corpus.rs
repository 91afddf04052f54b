//! Runs sender-software recognition over a folder of stored messages (one
//! message per file, searched recursively; hidden files skipped) and prints
//! what it found and how long `identify` took.
//!
//! ```text
//! cargo run --release -p portcullis-senders --example identify_corpus -- ~/.cache/portcullis-corpus
//! ```
//!
//! Stored mail has no SMTP session, so the connecting server is taken to be
//! the `by` host of each message's topmost `Received` field
//! ([`identify::topmost_by_host`]). The `identify` calls are timed and, for
//! scale in the same run, the scanner's local checks on the same messages
//! (default settings, no model, no DNS or antivirus). The last column runs
//! the lenient [`identify::recognise_text`] over the header block (its first
//! 8 KiB), for comparison.

use portcullis_senders::identify::{self, Hop};
use portcullis_senders::Product;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PRODUCTS: [Product; 5] = [
    Product::Exchange,
    Product::IisSmtp,
    Product::Exim,
    Product::Sendmail,
    Product::Postfix,
];

#[derive(Default)]
struct Counts {
    any_hop: usize,
    topmost: usize,
    lenient: usize,
}

fn main() {
    let folder = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/portcullis-corpus")
        });
    let mut files = Vec::new();
    collect(&folder, &mut files);
    files.sort();

    let mut counts: BTreeMap<Product, Counts> = BTreeMap::new();
    let mut elapsed = Duration::ZERO;
    let mut scanning = Duration::ZERO;
    let scanner = portcullis_scan::Scanner::new(portcullis_scan::ScanConfig::default())
        .expect("the default scanner");
    let envelope = portcullis_scan::Envelope::default();
    let mut read = 0usize;
    let mut bytes = 0usize;
    let (mut connecting, mut inside, mut outside, mut cloud, mut fields) = (0, 0, 0, 0, 0);
    for path in &files {
        let Ok(message) = std::fs::read(path) else {
            eprintln!("cannot read {}", path.display());
            continue;
        };
        read += 1;
        bytes += message.len();
        let host = identify::topmost_by_host(&message);

        let start = Instant::now();
        let id = identify::identify(&message, host.as_deref());
        elapsed += start.elapsed();
        let start = Instant::now();
        std::hint::black_box(scanner.scan(&message, &envelope));
        scanning += start.elapsed();

        fields += id.fields;
        connecting += usize::from(id.connecting.is_some());
        inside += id.inside.len();
        outside += id.outside;
        let all = id
            .connecting
            .iter()
            .chain(&id.inside)
            .chain(&id.outside_evidence);
        cloud += all.clone().filter(|e| e.cloud).count();

        let mut any: Vec<Product> = all.map(|e| e.software.product).collect();
        any.extend(id.unversioned.iter().map(|u| u.product));
        let mut top: Vec<Product> = id.connecting.iter().map(|e| e.software.product).collect();
        top.extend(
            id.unversioned
                .iter()
                .filter(|u| u.hop == Hop::Connecting)
                .map(|u| u.product),
        );
        for product in PRODUCTS {
            let c = counts.entry(product).or_default();
            c.any_hop += usize::from(any.contains(&product));
            c.topmost += usize::from(top.contains(&product));
        }

        let end = header_end(&message);
        let header = String::from_utf8_lossy(&message[..end]);
        if let Some(software) = identify::recognise_text(&header) {
            counts.entry(software.product).or_default().lenient += 1;
        }
    }

    let mean = if read == 0 {
        0.0
    } else {
        elapsed.as_secs_f64() * 1e6 / read as f64
    };
    println!("folder: {}", folder.display());
    println!(
        "files: {read} ({:.1} MiB)",
        bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "identify: mean {mean:.2} µs per message ({:.1} ms in all)",
        elapsed.as_secs_f64() * 1e3
    );
    let scan_mean = if read == 0 {
        0.0
    } else {
        scanning.as_secs_f64() * 1e6 / read as f64
    };
    println!(
        "scan (local checks): mean {scan_mean:.2} µs per message; identify / scan {:.1}%",
        if scan_mean > 0.0 {
            mean / scan_mean * 100.0
        } else {
            0.0
        }
    );
    println!(
        "received fields read: {fields}; evidence: {connecting} connecting, {inside} inside, {outside} outside, {cloud} Exchange Online"
    );
    println!(
        "{:<30} {:>12} {:>14} {:>16}",
        "product", "any hop", "topmost hop", "recognise_text"
    );
    for product in PRODUCTS {
        let c = counts
            .get(&product)
            .map_or((0, 0, 0), |c| (c.any_hop, c.topmost, c.lenient));
        println!("{:<30} {:>12} {:>14} {:>16}", product.name(), c.0, c.1, c.2);
    }
}

/// Every regular file under `dir`, recursively, hidden ones skipped.
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("cannot read folder {}", dir.display());
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect(&path, files),
            Ok(t) if t.is_file() => files.push(path),
            _ => {}
        }
    }
}

/// Where the header section ends (the first empty line), or the whole file.
fn header_end(message: &[u8]) -> usize {
    let mut start = 0;
    for line in message.split(|&b| b == b'\n') {
        if line.is_empty() || line == b"\r" {
            return start;
        }
        start += line.len() + 1;
    }
    message.len()
}
