//! `portcullis queue list|show|retry|delete`. Listing reads the spool folder, so it
//! works with the daemon stopped. Retry and delete go through the running daemon's
//! local API, because the daemon owns the schedule; with the daemon stopped, delete
//! removes the spool files itself (the next start will not see the message) and retry
//! has nothing to do: every queued message is tried at start.

use crate::config::Config;
use crate::http_client::{self, HttpError};
use anyhow::{Context, Result};
use portcullis_queue::spool::Spool;
use portcullis_queue::{item_from_spool, QueueItem};
use portcullis_store::{trace::rfc3339, EventKind, Store};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum QueueAction {
    /// Every queued message, oldest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One message's envelope, recipients and last replies.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Try now instead of waiting for the next retry (one message, or all).
    Retry {
        /// A queue id; omit with --all.
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Remove a message without delivering it and without a bounce.
    Delete { id: String },
}

pub async fn run(config: &Config, action: QueueAction) -> Result<ExitCode> {
    match action {
        QueueAction::List { json } => {
            let items = list(config)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else if items.is_empty() {
                println!("queue is empty");
            } else {
                for item in &items {
                    print_item(item, false);
                }
                println!("{} message(s)", items.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        QueueAction::Show { id, json } => {
            let spool = spool(config)?;
            let item = item_from_spool(&spool, &id)
                .with_context(|| format!("{id} is not in the queue"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&item)?);
            } else {
                print_item(&item, true);
            }
            Ok(ExitCode::SUCCESS)
        }
        QueueAction::Retry { id, all } => {
            let path = match (&id, all) {
                (Some(id), _) => format!("/api/queue/{id}/retry"),
                (None, true) => "/api/queue/retry".to_string(),
                (None, false) => anyhow::bail!("name a queue id, or use --all"),
            };
            match http_client::request(config.http.listen, "POST", &path).await {
                Ok((200, body)) => {
                    println!("{}", body.trim());
                    Ok(ExitCode::SUCCESS)
                }
                Ok((status, body)) => {
                    anyhow::bail!("the gateway answered {status}: {}", body.trim())
                }
                Err(HttpError::NotRunning(addr)) => {
                    anyhow::bail!("the gateway is not running at {addr}; every queued message is tried when it starts")
                }
                Err(HttpError::Other(e)) => Err(e),
            }
        }
        QueueAction::Delete { id } => {
            match http_client::request(config.http.listen, "DELETE", &format!("/api/queue/{id}"))
                .await
            {
                Ok((200, _)) => {
                    println!("deleted {id}");
                    Ok(ExitCode::SUCCESS)
                }
                Ok((status, body)) => {
                    anyhow::bail!("the gateway answered {status}: {}", body.trim())
                }
                Err(HttpError::NotRunning(_)) => {
                    delete_offline(config, &id)?;
                    println!("deleted {id} (gateway not running; removed from the spool)");
                    Ok(ExitCode::SUCCESS)
                }
                Err(HttpError::Other(e)) => Err(e),
            }
        }
    }
}

fn spool(config: &Config) -> Result<Spool> {
    let dir = config.spool_dir();
    anyhow::ensure!(
        dir.exists(),
        "no queue at {} (has the gateway run with this configuration?)",
        dir.display()
    );
    Ok(Spool::open(&dir)?)
}

fn list(config: &Config) -> Result<Vec<QueueItem>> {
    let spool = spool(config)?;
    let mut items: Vec<QueueItem> = spool
        .scan()?
        .iter()
        .filter_map(|id| item_from_spool(&spool, id).ok())
        .collect();
    items.sort_by_key(|i| (i.received_at, i.id.clone()));
    Ok(items)
}

fn delete_offline(config: &Config, id: &str) -> Result<()> {
    let spool = spool(config)?;
    let item = item_from_spool(&spool, id).with_context(|| format!("{id} is not in the queue"))?;
    spool.remove(id)?;
    let store = Store::open_sqlite(&config.store_path())?;
    let recipients = item
        .recipients
        .iter()
        .filter(|r| r.state == portcullis_queue::spool::RcptState::Pending)
        .map(|r| r.address.clone())
        .collect();
    store.record(id, EventKind::Deleted { recipients });
    store.flush()?;
    Ok(())
}

fn print_item(item: &QueueItem, detail: bool) {
    let from = if item.mail_from.is_empty() {
        "<>"
    } else {
        &item.mail_from
    };
    let next = if item.next_attempt <= 0 {
        "now".to_string()
    } else {
        rfc3339(item.next_attempt)
    };
    println!(
        "{}  {}  {} bytes  from {}  attempts {}  next {}",
        item.id,
        rfc3339(item.received_at),
        item.size,
        from,
        item.attempts,
        next
    );
    for r in &item.recipients {
        if detail || r.state == portcullis_queue::spool::RcptState::Pending {
            let state = serde_json::to_value(r.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            println!(
                "    {}  {}  {}",
                r.address,
                state,
                r.last.as_deref().unwrap_or("")
            );
        }
    }
}
