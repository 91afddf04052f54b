//! Times the classifier on a corpus laid out as `<dir>/ham/*` and `<dir>/spam/*`:
//! learns every message once, then classifies every message several times, and
//! prints the time per message for tokenizing alone and for the whole opinion
//! (parsing, which the scanner does once for all checks, is timed apart).
//!
//! ```text
//! cargo run --release -p portcullis-classifier --example bench -- <corpus>/train [rounds]
//! ```
//!
//! Standards: none beyond the message formats the classifier reads.
//!
//! Hostile input: the corpus is the operator's own; unparseable files are skipped.

use portcullis_classifier::{features, Class, Model};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: bench <corpus-dir> [rounds]");
        std::process::exit(2);
    };
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let mut raws = Vec::new();
    for (sub, class) in [("ham", Class::Ham), ("spam", Class::Spam)] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else {
            eprintln!("bench: cannot read {}", dir.join(sub).display());
            std::process::exit(2);
        };
        for entry in rd.flatten() {
            if let Some(raw) = read_message(&entry.path()) {
                raws.push((raw, class));
            }
        }
    }
    let t = Instant::now();
    let parsed: Vec<_> = raws
        .iter()
        .filter_map(|(raw, class)| {
            mail_parser::MessageParser::default()
                .parse(raw)
                .map(|m| (m, *class))
        })
        .collect();
    let parse_us = t.elapsed().as_secs_f64() * 1e6 / parsed.len().max(1) as f64;

    let mut model = Model::new();
    let t = Instant::now();
    for (m, class) in &parsed {
        model.learn(m, *class);
    }
    let learn_us = t.elapsed().as_secs_f64() * 1e6 / parsed.len().max(1) as f64;

    let t = Instant::now();
    let mut n_features = 0;
    for _ in 0..rounds {
        for (m, _) in &parsed {
            n_features += features(m).len();
        }
    }
    let runs = (rounds * parsed.len()).max(1) as f64;
    let tokenize_us = t.elapsed().as_secs_f64() * 1e6 / runs;

    let t = Instant::now();
    let mut spam = 0;
    for _ in 0..rounds {
        for (m, _) in &parsed {
            if model.classify(m).is_some_and(|o| o.spam_probability > 0.5) {
                spam += 1;
            }
        }
    }
    let classify_us = t.elapsed().as_secs_f64() * 1e6 / runs;

    let t = Instant::now();
    let bytes = model.to_bytes();
    let save_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let loaded = Model::from_bytes(&bytes).map(|m| m.feature_count());
    let load_ms = t.elapsed().as_secs_f64() * 1e3;

    println!(
        "{} messages, {:.0} features each; per message: parse {parse_us:.1} µs, \
         tokenize {tokenize_us:.1} µs, classify (tokenize included) {classify_us:.1} µs, \
         learn {learn_us:.1} µs",
        parsed.len(),
        n_features as f64 / runs
    );
    println!(
        "model: {} features, {} bytes stored, save {save_ms:.1} ms, load {load_ms:.1} ms ({loaded:?}); \
         {} judged spam (of {} runs)",
        model.feature_count(),
        bytes.len(),
        spam / rounds.max(1),
        parsed.len()
    );
}

/// The message bytes without a leading mbox "From " line.
fn read_message(path: &Path) -> Option<Vec<u8>> {
    let raw = std::fs::read(path).ok()?;
    if raw.starts_with(b"From ") {
        let start = raw
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| i + 1);
        return Some(raw[start..].to_vec());
    }
    Some(raw)
}
