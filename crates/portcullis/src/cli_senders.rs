//! `portcullis senders list|pause|resume|exempt|summary|catalog`: the sending
//! servers the gateway has recognised and their staged enforcement, the weekly
//! summary, and the version catalogue. They work on the store and the data
//! folder directly, whether or not the gateway runs (except `summary --now`,
//! which asks the running gateway to queue it); a running gateway sees a
//! pause or an exemption within two seconds, and an imported catalogue at its
//! next start.

use crate::config::Config;
use anyhow::{anyhow, bail, Context, Result};
use portcullis_senders::admin::{self, Change};
use portcullis_senders::catalog::{Catalog, Date};
use portcullis_senders::{identify, report, site_catalog, Mode};
use portcullis_store::Store;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum SendersAction {
    /// List the sending servers: software, status, first detected, stage.
    List {
        /// Only servers in this status: current, outdated, vulnerable, unsupported.
        #[arg(long)]
        status: Option<String>,
        /// `text` (a table) or `json`.
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// Pause a server's enforcement for some days (its mail is accepted and
    /// its schedule waits), within the yearly allowance.
    Pause {
        /// The server, as `senders list` names it (`organisation/host`).
        server: String,
        #[arg(long)]
        days: u32,
    },
    /// End a server's pause now.
    Resume { server: String },
    /// Exempt a server from enforcement (its mail is only reported).
    Exempt {
        server: String,
        /// End the exemption instead.
        #[arg(long)]
        undo: bool,
    },
    /// Send the weekly summary of new and escalating servers (and of your
    /// own out-of-date ones) now, to `[senders] summary_to`. Needs the gateway.
    Summary {
        /// At once, rather than at the configured day and time.
        #[arg(long)]
        now: bool,
    },
    /// The version catalogue.
    Catalog {
        #[command(subcommand)]
        action: CatalogAction,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum CatalogAction {
    /// Say what a string naming server software means, e.g.
    /// "Microsoft SMTP Server id 15.1.2507.6" or "Exim 4.96".
    Lookup { text: String },
    /// Check a catalogue file and add its entries to the site's catalogue
    /// (they replace built-in entries of the same build or line).
    Import {
        file: std::path::PathBuf,
        /// Use the file instead of the built-in catalogue.
        #[arg(long)]
        replace: bool,
    },
    /// Print the built-in catalogue (the file format, to start one from).
    Show,
}

fn open_store(config: &Config) -> Result<Store> {
    let path = config.store_path();
    anyhow::ensure!(
        path.exists(),
        "no trace store at {} (has the gateway run with this configuration?)",
        path.display()
    );
    Store::open_sqlite(&path).with_context(|| format!("cannot open {}", path.display()))
}

/// The outcomes of a change that are not its success.
fn told(server: &str, change: Change) -> Result<()> {
    match change {
        Change::Unknown => {
            bail!("no sending server {server:?} is known; `portcullis senders list` names them")
        }
        other => bail!("{server}: unexpected outcome {other:?}"),
    }
}

fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into())
    )
}

pub fn run(config: &Config, action: &SendersAction) -> Result<ExitCode> {
    let now = portcullis_store::now_ms();
    match action {
        SendersAction::List { status, format } => {
            if let Some(s) = status {
                if portcullis_senders::Status::parse(s).is_none() {
                    bail!("--status {s}: write current, outdated, vulnerable or unsupported");
                }
            }
            let store = open_store(config)?;
            let schedule = config.senders.schedule().map_err(|e| anyhow!(e))?;
            let reports = report::reports(
                store.sender_servers(status.as_deref())?,
                &store.server_pauses(None)?,
                &schedule,
                config.senders.mode == Mode::Report,
                now,
            );
            match format.as_str() {
                "json" => println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "mode": if config.senders.mode == Mode::Report { "report" } else { "enforce" },
                        "servers": reports,
                    }))?
                ),
                "text" => print!("{}", report::table(&reports)),
                other => bail!("--format {other}: write text or json"),
            }
        }
        SendersAction::Pause { server, days } => {
            if *days == 0 {
                bail!("--days: at least 1");
            }
            let allowance = config.senders.pause_allowance_days;
            let store = open_store(config)?;
            match admin::pause(&store, server, *days, allowance, &actor(), now)? {
                Change::OverAllowance(left) => bail!(
                    "{server} may be paused {left} more days within a year (allowance {allowance} days, [senders] pause_allowance_days)"
                ),
                Change::Paused { until } => {
                    println!("{server}: enforcement paused until {}", report::day(until))
                }
                other => told(server, other)?,
            }
        }
        SendersAction::Resume { server } => {
            let store = open_store(config)?;
            match admin::resume(&store, server, &actor(), now)? {
                Change::Resumed { ended } => println!("{server}: {ended} pause(s) ended"),
                other => told(server, other)?,
            }
        }
        SendersAction::Exempt { server, undo } => {
            let store = open_store(config)?;
            match admin::exempt(&store, server, !undo, &actor())? {
                Change::Exempt(true) => {
                    println!("{server}: exempt from enforcement (reported only)")
                }
                Change::Exempt(false) => println!("{server}: no longer exempt"),
                other => told(server, other)?,
            }
        }
        SendersAction::Summary { now: false } => println!(
            "the summary goes to {} on {}s at {} UTC by itself; `--now` sends it at once",
            if config.senders.summary_to.is_empty() {
                "nobody ([senders] summary_to is empty)".to_string()
            } else {
                config.senders.summary_to.join(", ")
            },
            config.senders.summary_day,
            config.senders.summary_time
        ),
        SendersAction::Summary { now: true } => {
            let (status, body) = crate::http_client::post_blocking(
                config.http.listen,
                "/api/servers/summary",
                None,
            )?;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if status != 200 {
                eprintln!(
                    "portcullis: summary not sent: {}",
                    v["error"].as_str().unwrap_or(body.trim())
                );
                return Ok(ExitCode::from(3));
            }
            match v["sent"].as_str() {
                Some(id) => println!("summary queued as {id}"),
                None => println!(
                    "nothing to report (or nobody in [senders] summary_to): no summary sent"
                ),
            }
        }
        SendersAction::Catalog { action } => return catalog(config, action, now),
    }
    Ok(ExitCode::SUCCESS)
}

fn catalog(config: &Config, action: &CatalogAction, now: i64) -> Result<ExitCode> {
    match action {
        CatalogAction::Lookup { text } => {
            let Some(software) = identify::recognise_text(text) else {
                eprintln!("portcullis: no server software recognised in {text:?}");
                return Ok(ExitCode::from(3));
            };
            let catalog = site_catalog::load(&config.server.data_dir)?;
            let c = catalog.classify(&software, Date::from_unix_secs(now.div_euclid(1000)));
            print_classification(&c);
        }
        CatalogAction::Import { file, replace } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let done = site_catalog::import(&config.server.data_dir, file, &text, *replace)?;
            println!(
                "{}: {} lines and {} releases {} (the gateway uses them from its next start)",
                site_catalog::path(&config.server.data_dir).display(),
                done.lines,
                done.releases,
                if *replace {
                    "replace the built-in catalogue"
                } else {
                    "extend the built-in catalogue"
                }
            );
        }
        CatalogAction::Show => print!("{}", Catalog::builtin_text()),
    }
    Ok(ExitCode::SUCCESS)
}

/// The catalogue's verdict, one fact per line.
pub fn print_classification(c: &portcullis_senders::catalog::Classification) {
    println!("software: {}", c.software);
    println!("status: {}", c.status.as_str());
    if let Some(line) = &c.line {
        println!("line: {line}");
    }
    if let Some(release) = &c.release {
        println!("release: {release}");
    }
    println!("reason: {}", c.reason);
    if !c.cves.is_empty() {
        println!(
            "open CVEs: {}{}",
            c.cves.join(", "),
            if c.cves_total > c.cves.len() {
                format!(" and {} more", c.cves_total - c.cves.len())
            } else {
                String::new()
            }
        );
    }
    for flaw in c.named_flaws() {
        println!("predates the fixes for: {flaw}");
    }
    if let Some(r) = &c.recommended {
        println!("install: {r}");
    }
    if let Some(m) = &c.more {
        println!("more: {m}");
    }
    if c.cloud {
        println!("note: an Exchange Online build (Microsoft's own service), never enforced");
    }
}
