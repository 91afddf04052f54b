//! `portcullis train --spam PATH... --ham PATH...`: teaches the content
//! classifier this site's mail. Learning adds to the stored model (it is never
//! reset by a train run), and a running gateway picks the new model up within
//! seconds. Paths are message files or folders of them, as for `scan`.

use crate::cli_scan::{collect, strip_mbox_from};
use crate::config::Config;
use anyhow::{Context, Result};
use portcullis_classifier::{Class, Model};
use portcullis_store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Spam: message files or folders of them.
    #[arg(long, num_args = 1..)]
    spam: Vec<PathBuf>,
    /// Ham (wanted mail): message files or folders of them.
    #[arg(long, num_args = 1..)]
    ham: Vec<PathBuf>,
}

pub fn run(config: &Config, args: &TrainArgs) -> Result<ExitCode> {
    anyhow::ensure!(
        !args.spam.is_empty() || !args.ham.is_empty(),
        "give messages to learn with --spam and/or --ham"
    );
    let path = config.store_path();
    let store =
        Store::open_sqlite(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut model = match crate::model::load(&store)? {
        Some((m, _)) => m,
        None => Model::new(),
    };
    let mut failed = false;
    let mut learned = (0u64, 0u64);
    for (class, paths) in [(Class::Spam, &args.spam), (Class::Ham, &args.ham)] {
        let mut files = Vec::new();
        for p in paths {
            collect(p, &mut files);
        }
        for file in files {
            let raw = match std::fs::read(&file) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("portcullis: cannot read {}: {e}", file.display());
                    failed = true;
                    continue;
                }
            };
            let Some(message) = mail_parser::MessageParser::default().parse(strip_mbox_from(&raw))
            else {
                eprintln!("portcullis: {} is not a message; skipped", file.display());
                failed = true;
                continue;
            };
            model.learn(&message, class);
            match class {
                Class::Spam => learned.0 += 1,
                Class::Ham => learned.1 += 1,
            }
        }
    }
    store
        .save_model(crate::model::NAME, &model.to_bytes())
        .context("cannot save the classifier model")?;
    let (spam, ham) = model.learned();
    println!(
        "learned {} spam and {} ham; the model now knows {spam} spam and {ham} ham",
        learned.0, learned.1
    );
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
