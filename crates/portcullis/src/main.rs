//! portcullis: the email security gateway's one binary. `serve` runs the daemon;
//! `trace`, `queue`, `links` and `hash-password` are the administrator's tools. Every command
//! reads the same configuration file (`--config FILE`, or the embedded defaults), so
//! the tools find the same data folder and HTTP listener as the daemon.
//!
//! A configuration error exits with status 2 and one message naming the key and the
//! line; any other failure exits with status 1.
//!
//! Standards: TOML 1.0 for the configuration; RFC 8314 (implicit TLS on 465) and
//! RFC 6409 (submission) for the listeners it sets up; argon2id (RFC 9106) for
//! `hash-password`.
//!
//! Security posture: the configuration file is trusted but checked: unknown keys,
//! bad addresses, networks, durations and non-argon2 password hashes are refused
//! before anything listens. The embedded defaults listen on loopback only and trust
//! only loopback, so a first start is never an open relay. The generated TLS key and
//! the secure links' keys are written mode 0600. Passwords are read from standard input, never from arguments
//! (which other users can see), and are never logged.

mod cli_digest;
mod cli_links;
mod cli_probe;
mod cli_quarantine;
mod cli_queue;
mod cli_scan;
mod cli_senders;
mod cli_token;
mod cli_trace;
mod cli_train;
mod config;
mod http_client;
mod model;
mod serve;
mod tls;

use clap::{Parser, Subcommand};
use config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "portcullis", version, about = "Email security gateway")]
struct Cli {
    /// The TOML configuration file (default: embedded defaults). Accepted before or
    /// after the command.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        env = "PORTCULLIS_CONFIG",
        global = true
    )]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Log as JSON lines instead of text.
        #[arg(long)]
        json_logs: bool,
    },
    /// Find messages: where is my mail?
    Trace {
        #[command(flatten)]
        query: cli_trace::TraceArgs,
    },
    /// Inspect and manage the delivery queue.
    Queue {
        #[command(subcommand)]
        action: cli_queue::QueueAction,
    },
    /// Look at held mail.
    Quarantine {
        #[command(subcommand)]
        action: cli_quarantine::QuarantineAction,
    },
    /// Scan message files and print each verdict.
    Scan {
        #[command(flatten)]
        args: cli_scan::ScanArgs,
    },
    /// Teach the content classifier this site's spam and ham.
    Train {
        #[command(flatten)]
        args: cli_train::TrainArgs,
    },
    /// Read a password on standard input and print its argon2 hash for `[[users]]`.
    HashPassword,
    /// Quarantine digests: mail to each recipient about their held mail.
    Digest {
        #[command(subcommand)]
        action: cli_digest::DigestAction,
    },
    /// API tokens for scripts and other systems.
    Token {
        #[command(subcommand)]
        action: cli_token::TokenAction,
    },
    /// Secure links: make, read and re-key the signed tokens of rewritten links;
    /// check a URL as a click would be now.
    Links {
        #[command(subcommand)]
        action: cli_links::LinksAction,
    },
    /// Sending servers: what the sending organisations' servers run, their
    /// staged enforcement (pause, exempt), and the version catalogue.
    Senders {
        #[command(subcommand)]
        action: cli_senders::SendersAction,
    },
    /// Ask a server you name which Exchange build (Outlook on the web) and SMTP
    /// software it runs, and print the version catalogue's verdict.
    Probe {
        #[command(flatten)]
        args: cli_probe::ProbeArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_logs = matches!(cli.command, Command::Serve { json_logs: true });
    init_logs(json_logs, matches!(cli.command, Command::Serve { .. }));
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portcullis: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve { .. } => tokio_main(serve::run(config)),
        Command::Trace { query, .. } => cli_trace::run(&config, &query),
        Command::Queue { action, .. } => tokio_main(cli_queue::run(&config, action)),
        Command::Quarantine { action } => cli_quarantine::run(&config, &action),
        Command::Scan { args } => cli_scan::run(&config, &args),
        Command::Train { args } => cli_train::run(&config, &args),
        Command::HashPassword => hash_password(),
        Command::Token { action } => cli_token::run(&config, &action),
        Command::Digest { action } => cli_digest::run(&config, &action),
        Command::Links { action } => cli_links::run(&config, &action),
        Command::Senders { action } => cli_senders::run(&config, &action),
        Command::Probe { args } => cli_probe::run(&config, &args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn tokio_main<T: Into<ExitCode>>(
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(f).map(Into::into)
}

/// The daemon logs at info; the tools only say what went wrong.
fn init_logs(json: bool, daemon: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if daemon { "info" } else { "warn" };
    let filter =
        EnvFilter::try_from_env("PORTCULLIS_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn hash_password() -> anyhow::Result<ExitCode> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}
