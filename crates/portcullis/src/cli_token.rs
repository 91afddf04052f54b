//! `portcullis token create|list|revoke`: API tokens for scripts and other
//! systems. A token is shown once, when it is made; the store keeps only its
//! hash. Works on the store directly, whether or not the gateway runs; a
//! revoked token stops working at its next request.

use crate::config::Config;
use anyhow::{Context, Result};
use portcullis_quarantine::Role;
use portcullis_store::Store;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum TokenAction {
    /// Make a token and print it (once).
    Create {
        /// What it is for, e.g. "ticketing system".
        #[arg(long)]
        name: String,
        /// admin, helpdesk or user (a user token sees no held mail).
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Tokens, without their secrets.
    List,
    /// Stop a token from working.
    Revoke { id: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    portcullis_web::auth::parse_role(s).ok_or_else(|| "admin, helpdesk or user".to_string())
}

pub fn run(config: &Config, action: &TokenAction) -> Result<ExitCode> {
    let path = config.store_path();
    let store = Store::open_sqlite(&path)
        .with_context(|| format!("cannot open the store {}", path.display()))?;
    match action {
        TokenAction::Create { name, role } => {
            let (id, token, hash) = portcullis_web::auth::new_token();
            store.create_token(&id, name, portcullis_web::auth::role_name(*role), &hash)?;
            store.audit("cli", "create token", &id, 1, Some(name))?;
            eprintln!(
                "token {id} ({name}, {}); it is shown only now:",
                portcullis_web::auth::role_name(*role)
            );
            println!("{token}");
        }
        TokenAction::List => {
            for t in store.tokens()? {
                println!(
                    "{}  {:<8} {:<9} made {}  last used {}  {}",
                    t.id,
                    t.role,
                    if t.revoked { "revoked" } else { "active" },
                    t.created,
                    t.last_used.as_deref().unwrap_or("never"),
                    t.name
                );
            }
        }
        TokenAction::Revoke { id } => {
            if !store.revoke_token(id)? {
                eprintln!("portcullis: no active token {id}");
                return Ok(ExitCode::from(1));
            }
            store.audit("cli", "revoke token", id, 1, None)?;
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
