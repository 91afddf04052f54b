//! k-fold cross-validation of the classifier on a training corpus laid out as
//! `<dir>/ham/*` and `<dir>/spam/*` (one raw message per file, an mbox "From "
//! first line skipped). For each fold a fresh model learns the other folds and
//! judges this one; a message counts as flagged when the band its spam
//! probability falls in is worth 5 points or more (the tag threshold), which is
//! what the scanner's bayes check would give it alone. With `--in-order` there
//! is one split instead: the last third of each class (by file name, which in
//! the usual corpora follows arrival) is judged by a model of the first two
//! thirds, a harsher test of how the model generalises to newer mail. With
//! `--by-sender` every message of one sender (its List-Id, else its From
//! domain) falls in the same fold, so each is judged as mail from a sender
//! the model never learned.
//!
//! ```text
//! cargo run --release -p portcullis-classifier --example crossval -- <corpus>/train
//!     [--folds 10] [--in-order | --by-sender] [--verbose] [--explain FILE] [--prior A] [--floor N]
//!     [--min-evidence N] [--scale K] [--bias B] [--pair-weight W] [--markup-weight W] [--max-features N]
//! ```
//!
//! It prints, per fold and in total, the ham flagged and the spam caught; the
//! time per message to judge (tokenizing included, parsing apart), to tokenize
//! and to learn; the spam caught when the cut-off lets 0, 1, 3, 5 or 10 ham
//! through (the best trade-off the ranking allows); how ham and spam spread over
//! probability ranges and over the bands. `--verbose` names the most spam-like
//! ham and the most ham-like spam; `--explain FILE` learns every other message
//! and shows the evidence for and against FILE. The other options override
//! [`Settings`] fields, to try alternatives.
//!
//! Standards: none beyond the message formats the classifier reads.
//!
//! Hostile input: the corpus is read whole into memory (it is the operator's own
//! training set); files that do not parse are reported and skipped.

use portcullis_classifier::{band, features, Class, Features, Model, Settings, BANDS};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A message score from the bayes symbols alone at or above this is "flagged".
const TAG: f64 = 5.0;

struct Sample {
    path: PathBuf,
    raw: Vec<u8>,
    class: Class,
    features: Features,
    fold: usize,
    /// The List-Id, else the From domain.
    sender: String,
}

fn sender_of(m: &mail_parser::Message<'_>) -> String {
    if let Some(list) = m.header("List-Id").and_then(|h| h.as_text()) {
        return format!("list:{}", list.to_ascii_lowercase());
    }
    let from = m
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or("");
    format!(
        "from:{}",
        from.rsplit('@').next().unwrap_or("").to_ascii_lowercase()
    )
}

fn main() {
    if let Err(e) = run() {
        eprintln!("crossval: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut folds = 10usize;
    let mut verbose = false;
    let mut explain: Option<PathBuf> = None;
    let mut in_order = false;
    let mut by_sender = false;
    let mut settings = Settings::default();
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> Result<String, String> {
            args.next().ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--folds" => folds = parse(&value("--folds")?)?,
            "--verbose" => verbose = true,
            "--in-order" => in_order = true,
            "--by-sender" => by_sender = true,
            "--explain" => explain = Some(PathBuf::from(value("--explain")?)),
            "--prior" => settings.prior_strength = parse(&value("--prior")?)?,
            "--floor" => settings.evidence_floor = parse(&value("--floor")?)?,
            "--min-evidence" => settings.min_evidence = parse(&value("--min-evidence")?)?,
            "--scale" => settings.scale = parse(&value("--scale")?)?,
            "--bias" => settings.bias = parse(&value("--bias")?)?,
            "--pair-weight" => settings.pair_weight = parse(&value("--pair-weight")?)?,
            "--markup-weight" => settings.markup_weight = parse(&value("--markup-weight")?)?,
            "--max-features" => settings.max_features = parse(&value("--max-features")?)?,
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let dir = dir.ok_or("usage: crossval <train-dir> [--folds N] [--verbose]")?;
    if folds < 2 {
        return Err("--folds must be at least 2".into());
    }

    let mut samples = Vec::new();
    let mut parse_time = Duration::ZERO;
    let mut feature_time = Duration::ZERO;
    for (sub, class) in [("ham", Class::Ham), ("spam", Class::Spam)] {
        let mut paths = list(&dir.join(sub))?;
        paths.sort();
        // In order, each group of files (named alike up to the first digit, as
        // "hard-00001" and "00001") is split by itself.
        let group = |p: &Path| -> String {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.chars().take_while(|c| !c.is_ascii_digit()).collect()
        };
        let mut position = std::collections::HashMap::<String, (usize, usize)>::new();
        for p in &paths {
            position.entry(group(p)).or_default().1 += 1;
        }
        for (i, path) in paths.into_iter().enumerate() {
            let (seen, n) = position.get_mut(&group(&path)).map_or((0, 1), |e| {
                e.0 += 1;
                (e.0 - 1, e.1)
            });
            let raw = read_message(&path)?;
            let t = Instant::now();
            let parsed = mail_parser::MessageParser::default().parse(&raw);
            parse_time += t.elapsed();
            let Some(parsed) = parsed else {
                eprintln!("left out, does not parse: {}", path.display());
                continue;
            };
            let sender = sender_of(&parsed);
            let t = Instant::now();
            let features = features(&parsed);
            feature_time += t.elapsed();
            drop(parsed);
            samples.push(Sample {
                path,
                raw,
                class,
                features,
                // In order: the last third (by name, roughly by date) is judged
                // by a model of the first two thirds, as new mail is by a model
                // of old; the "folds" past the first are empty.
                fold: if in_order {
                    usize::from(seen < n * 2 / 3)
                } else {
                    i % folds
                },
                sender,
            });
        }
    }
    if by_sender {
        // Largest senders first, each to the fold with the fewest messages.
        let mut size = std::collections::HashMap::<String, usize>::new();
        for s in &samples {
            *size.entry(s.sender.clone()).or_default() += 1;
        }
        let mut groups: Vec<(String, usize)> = size.into_iter().collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut load = vec![0usize; folds];
        let mut fold_of = std::collections::HashMap::new();
        for (g, n) in groups {
            let f = (0..folds).min_by_key(|&f| load[f]).unwrap_or(0);
            load[f] += n;
            fold_of.insert(g, f);
        }
        for s in &mut samples {
            s.fold = fold_of.get(&s.sender).copied().unwrap_or(0);
        }
    }
    let n = samples.len().max(1) as f64;
    let distinct: usize = samples.iter().map(|s| s.features.len()).sum();
    println!(
        "{} messages ({} ham, {} spam), {:.0} features each on average",
        samples.len(),
        samples.iter().filter(|s| s.class == Class::Ham).count(),
        samples.iter().filter(|s| s.class == Class::Spam).count(),
        distinct as f64 / n
    );

    if let Some(target) = explain {
        // Learn everything else, then show why this message got its opinion.
        let mut model = Model::with_settings(settings);
        for s in samples.iter().filter(|s| s.path != target) {
            model.learn_features(&s.features, s.class);
        }
        let raw = read_message(&target)?;
        let parsed = mail_parser::MessageParser::default()
            .parse(&raw)
            .ok_or("the message does not parse")?;
        println!("opinion: {:?}", model.classify(&parsed));
        let evidence = model.explain(&parsed);
        let hammy = evidence.iter().filter(|e| e.probability < 0.5);
        let spammy = evidence.iter().filter(|e| e.probability >= 0.5);
        println!(
            "{} known features: {} spammy, {} hammy",
            evidence.len(),
            spammy.clone().count(),
            hammy.clone().count()
        );
        for e in spammy.take(30).chain(hammy.take(30)) {
            println!(
                "{:9.6} {:5} {:5}  {}",
                e.probability, e.spam, e.ham, e.token
            );
        }
        return Ok(());
    }

    let mut total = Tally::default();
    let mut probabilities: Vec<(f64, Class)> = Vec::with_capacity(samples.len());
    let mut names: Vec<PathBuf> = Vec::with_capacity(samples.len());
    let mut silent = 0usize;
    let mut classify_time = Duration::ZERO;
    let mut classified = 0usize;
    let mut learn_time = Duration::ZERO;
    let mut learned = 0usize;
    let mut model_features = 0;
    for fold in 0..if in_order { 1 } else { folds } {
        let mut model = Model::with_settings(settings);
        let t = Instant::now();
        for s in samples.iter().filter(|s| s.fold != fold) {
            model.learn_features(&s.features, s.class);
            learned += 1;
        }
        learn_time += t.elapsed();
        model_features = model.feature_count();
        let mut tally = Tally::default();
        for s in samples.iter().filter(|s| s.fold == fold) {
            // Time the whole path the scanner takes: tokenize, look up, combine
            // (parsing is the scanner's, shared by every check, and timed apart).
            let parsed = mail_parser::MessageParser::default()
                .parse(&s.raw)
                .ok_or("a message parsed once and not twice")?;
            let t = Instant::now();
            let opinion = model.classify(&parsed);
            classify_time += t.elapsed();
            classified += 1;
            let Some(p) = opinion.map(|o| o.spam_probability) else {
                // No opinion: no symbol, so not flagged.
                silent += 1;
                tally.add(s.class, false);
                continue;
            };
            probabilities.push((p, s.class));
            names.push(s.path.clone());
            let score = band(p).map_or(0.0, |b| b.score);
            let flagged = score >= TAG;
            tally.add(s.class, flagged);
        }
        println!("fold {fold:2}: {}", tally.line());
        total.merge(&tally);
    }
    println!("total   : {}", total.line());
    println!(
        "time per message: classify {:.1} µs (tokenizing alone {:.1} µs), learn {:.1} µs, parse {:.1} µs",
        micros(classify_time) / classified.max(1) as f64,
        micros(feature_time) / n,
        micros(learn_time) / learned.max(1) as f64,
        micros(parse_time) / n,
    );
    println!("model size: {model_features} features; no opinion on {silent} messages");

    // The best possible trade-off: spam caught when the cut-off lets through
    // exactly k ham (the k most spam-like ham) through.
    let mut ham_p: Vec<f64> = probabilities
        .iter()
        .filter(|(_, c)| *c == Class::Ham)
        .map(|(p, _)| *p)
        .collect();
    ham_p.sort_by(|a, b| b.total_cmp(a));
    // One number to compare settings by: the mean catch over 0 to 10 ham
    // flagged (steadier than any single point of the curve).
    let mean_catch: f64 = (0..=10)
        .filter_map(|k| ham_p.get(k))
        .map(|&cut| {
            probabilities
                .iter()
                .filter(|(p, c)| *c == Class::Spam && *p > cut)
                .count() as f64
                / total.spam.max(1) as f64
        })
        .sum::<f64>()
        / 11.0;
    println!(
        "mean spam caught with 0 to 10 ham flagged: {:.2}%",
        100.0 * mean_catch
    );
    for k in [0usize, 1, 3, 5, 10] {
        let Some(&cut) = ham_p.get(k) else { break };
        let caught = probabilities
            .iter()
            .filter(|(p, c)| *c == Class::Spam && *p > cut)
            .count();
        println!(
            "with {k:2} ham flagged: spam caught {caught} ({:.2}%) above p={cut:.9}",
            100.0 * caught as f64 / total.spam.max(1) as f64
        );
    }

    if verbose {
        // The hardest cases: the most spam-like ham, the most ham-like spam.
        let mut order: Vec<usize> = (0..probabilities.len()).collect();
        order.sort_by(|&a, &b| probabilities[b].0.total_cmp(&probabilities[a].0));
        let ham = order.iter().filter(|&&i| probabilities[i].1 == Class::Ham);
        for &i in ham.take(12) {
            println!("  ham  p={:.9} {}", probabilities[i].0, names[i].display());
        }
        let spam = order
            .iter()
            .rev()
            .filter(|&&i| probabilities[i].1 == Class::Spam);
        for &i in spam.take(25) {
            println!("  spam p={:.9} {}", probabilities[i].0, names[i].display());
        }
    }

    println!("spam probability   ham in range    spam in range");
    let edges = [
        0.0,
        0.001,
        0.01,
        0.05,
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
        0.6,
        0.7,
        0.8,
        0.9,
        0.95,
        0.99,
        0.999,
        1.000_000_1,
    ];
    for w in edges.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        let count = |class: Class| {
            probabilities
                .iter()
                .filter(|(p, c)| *c == class && *p >= lo && *p < hi)
                .count()
        };
        println!(
            "[{lo:5.3}, {:5.3})   {:6} ({:6.2}%) {:6} ({:6.2}%)",
            hi.min(1.0),
            count(Class::Ham),
            100.0 * count(Class::Ham) as f64 / total.ham.max(1) as f64,
            count(Class::Spam),
            100.0 * count(Class::Spam) as f64 / total.spam.max(1) as f64
        );
    }
    println!("band               ham             spam");
    for b in BANDS {
        let count = |class: Class| {
            probabilities
                .iter()
                .filter(|(p, c)| *c == class && band(*p).is_some_and(|x| x.symbol == b.symbol))
                .count()
        };
        println!(
            "{:14} {:+5.1} {:6} ({:6.2}%) {:6} ({:6.2}%)",
            b.symbol,
            b.score,
            count(Class::Ham),
            100.0 * count(Class::Ham) as f64 / total.ham.max(1) as f64,
            count(Class::Spam),
            100.0 * count(Class::Spam) as f64 / total.spam.max(1) as f64
        );
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    ham: usize,
    ham_flagged: usize,
    spam: usize,
    spam_caught: usize,
}

impl Tally {
    fn add(&mut self, class: Class, flagged: bool) {
        match class {
            Class::Ham => {
                self.ham += 1;
                self.ham_flagged += usize::from(flagged);
            }
            Class::Spam => {
                self.spam += 1;
                self.spam_caught += usize::from(flagged);
            }
        }
    }

    fn merge(&mut self, o: &Tally) {
        self.ham += o.ham;
        self.ham_flagged += o.ham_flagged;
        self.spam += o.spam;
        self.spam_caught += o.spam_caught;
    }

    fn line(&self) -> String {
        format!(
            "ham flagged {:4}/{:5} ({:5.2}%)   spam caught {:4}/{:4} ({:6.2}%)",
            self.ham_flagged,
            self.ham,
            100.0 * self.ham_flagged as f64 / self.ham.max(1) as f64,
            self.spam_caught,
            self.spam,
            100.0 * self.spam_caught as f64 / self.spam.max(1) as f64
        )
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad number {s:?}"))
}

fn list(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// The message bytes without a leading mbox "From " line.
fn read_message(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if raw.starts_with(b"From ") {
        let start = raw
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| i + 1);
        return Ok(raw[start..].to_vec());
    }
    Ok(raw)
}
