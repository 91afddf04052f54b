//! `portcullis serve`: builds the parts from the configuration and runs them until
//! SIGTERM or Ctrl-C. The order of a clean stop matters: the listeners stop first,
//! the sessions in flight finish (each message they acknowledge is already on disk),
//! then the trace is flushed. Messages still queued stay in the spool for the next
//! start; nothing is delivered twice on purpose or dropped.

use crate::config::{Config, DeliveryTls};
use anyhow::{Context, Result};
use portcullis_gateway::{Gateway, Policy};
use portcullis_queue::route::{Destination, Dns, Router};
use portcullis_queue::{Queue, QueueConfig};
use portcullis_smtp::{
    BareNewlinePolicy, ClientConfig, ConnectionLimits, Listener, ListenerKind, SessionLimits,
    TlsMode,
};
use portcullis_store::Store;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::watch;

pub async fn run(config: Config) -> Result<std::process::ExitCode> {
    let data = &config.server.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data folder {}", data.display()))?;
    let store = Store::open_sqlite(&config.store_path())
        .with_context(|| format!("cannot open {}", config.store_path().display()))?;
    let tls = crate::tls::server_config(
        config.smtp.tls_certificate.as_deref(),
        config.smtp.tls_key.as_deref(),
        data,
        &config.server.hostname,
    )?;
    let (router, policy) = routing(&config);
    let dns = Dns::new(&config.dns.servers).map_err(anyhow::Error::msg)?;
    let queue = Queue::open(
        QueueConfig {
            dir: config.spool_dir(),
            hostname: config.server.hostname.clone(),
            retry_initial: config.queue.retry_initial.0,
            retry_max: config.queue.retry_max.0,
            max_age: config.queue.max_age.0,
            max_deliveries: config.queue.max_deliveries,
            per_destination: config.queue.per_destination,
            client: ClientConfig {
                helo_name: config.server.hostname.clone(),
                connect_timeout: config.queue.connect_timeout.0,
                tls: match config.queue.delivery_tls {
                    DeliveryTls::Opportunistic => TlsMode::Opportunistic,
                    DeliveryTls::Required => TlsMode::Required,
                    DeliveryTls::Disabled => TlsMode::Disabled,
                },
                ..ClientConfig::default()
            },
            router,
            dns,
            mx_port: config.queue.mx_port,
        },
        store.clone(),
    )
    .with_context(|| format!("cannot open the queue in {}", config.spool_dir().display()))?;

    // Bind everything before serving anything, so a port in use fails the start.
    let mut listeners = Vec::new();
    for (addrs, kind) in [
        (&config.smtp.listen, ListenerKind::Mx),
        (&config.smtp.submission, ListenerKind::Submission),
        (&config.smtp.submissions, ListenerKind::Submissions),
    ] {
        for addr in addrs {
            let socket = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for SMTP on {addr}"))?;
            tracing::info!(%addr, kind = ?kind, "SMTP listening");
            listeners.push(Listener { socket, kind });
        }
    }
    let http = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http.listen))?;
    tracing::info!(addr = %config.http.listen, "HTTP listening");

    queue.start();
    let scanner = Arc::new(
        portcullis_scan::Scanner::new(config.scan_config())
            .and_then(|s| s.with_dns(&config.dns.servers))
            .context("scanner settings")?,
    );
    let loaded_at = match crate::model::load(&store) {
        Ok(Some((model, at))) => {
            let (spam, ham) = model.learned();
            tracing::info!(spam, ham, "classifier model loaded");
            scanner.set_model(Some(Arc::new(model)));
            Some(at)
        }
        Ok(None) => {
            tracing::warn!("no classifier model yet: teach it with `portcullis train`");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "the stored classifier model cannot be read; scanning without it");
            None
        }
    };
    tokio::spawn(crate::model::follow(
        store.clone(),
        scanner.clone(),
        loaded_at,
    ));
    let quarantine = portcullis_quarantine::Quarantine::open(&config.quarantine_dir())
        .with_context(|| {
            format!(
                "cannot open the quarantine in {}",
                config.quarantine_dir().display()
            )
        })?;
    portcullis_gateway::complete_quarantine_trace(&quarantine, &store);
    match portcullis_quarantine::recover(&store, &queue) {
        Ok(0) => {}
        Ok(n) => tracing::warn!(entries = n, "settled releases interrupted by the last stop"),
        Err(e) => tracing::error!(error = %e, "cannot settle interrupted releases"),
    }
    let key_path = portcullis_digest::key_path(data);
    let digests = portcullis_digest::Digests::new(
        portcullis_digest::Settings {
            config: config.digest.clone(),
            policy: config.quarantine.release_policy.clone(),
            hostname: config.server.hostname.clone(),
            base_url: config
                .digest
                .base_url(&config.server.hostname, config.http.listen),
            own_domains: (!config.domains.is_empty()
                && config.domains.iter().all(|d| d.name.0 != "*"))
            .then(|| config.domains.iter().map(|d| d.name.0.clone()).collect()),
        },
        portcullis_digest::LinkKey::load_or_create(&key_path)
            .with_context(|| format!("cannot make the digest link key {}", key_path.display()))?,
        store.clone(),
        queue.clone(),
        quarantine.clone(),
    );
    let link_dir = portcullis_links::KeyRing::dir_in(data);
    let link_keys = portcullis_links::KeyRing::load_or_create(&link_dir)
        .with_context(|| format!("cannot make the link key ring {}", link_dir.display()))?;
    let web_scanner = scanner.clone();
    let link_protection = link_protection(&config, &link_keys)?;
    let catalog = portcullis_senders::site_catalog::load(data)
        .context("cannot read the site's version catalogue")?;
    let sending_servers = portcullis_gateway::sending_servers::SendingServers::new(
        &config.senders,
        Arc::new(catalog),
        store.clone(),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let gateway = Gateway::new(
        policy,
        queue.clone(),
        store.clone(),
        scanner,
        quarantine.clone(),
        link_protection,
        sending_servers,
    );
    if let Some(hook) = gateway.release_hook() {
        quarantine.set_release_hook(hook);
    }
    let limits = Arc::new(session_limits(&config));
    let conn_limits = ConnectionLimits {
        max_connections: config.smtp.max_connections,
        max_per_ip: config.smtp.max_connections_per_ip,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(digests.clone().run_schedule(stop_rx.clone()));
    tokio::spawn(digests.clone().run_purge(stop_rx.clone()));
    tokio::spawn(portcullis_senders::summary::run_schedule(
        store.clone(),
        queue.clone(),
        config.senders.clone(),
        config.server.hostname.clone(),
        config.server.data_dir.clone(),
        stop_rx.clone(),
    ));
    let accounts = portcullis_web::LocalAccounts::new(
        config
            .users
            .iter()
            .map(|u| (u.account(), u.password_hash.0.clone()))
            .collect(),
    );
    let mut access = portcullis_web::Access::new(Arc::new(accounts), config.http.trust_loopback);
    access.secure_cookies = config.http.secure_cookies;
    let web = tokio::spawn(portcullis_web::serve(
        http,
        portcullis_web::Services {
            store: store.clone(),
            queue: queue.clone(),
            quarantine,
            access: Arc::new(access),
            release_policy: config.quarantine.release_policy.clone(),
            digests,
            scanner: web_scanner,
            link_keys,
            click_lists: portcullis_links::ClickLists::new(config.scan_config()),
            senders: config.senders.clone(),
            hostname: config.server.hostname.clone(),
        },
        stop_rx.clone(),
    ));
    let smtp = tokio::spawn(portcullis_smtp::serve(
        listeners,
        gateway,
        limits,
        conn_limits,
        Some(tls),
        stop_rx,
    ));

    wait_for_signal().await;
    tracing::info!("stopping: no new connections; finishing sessions in flight");
    let _ = stop_tx.send(true);
    let _ = smtp.await;
    let _ = web.await;
    if let Err(e) = store.flush() {
        tracing::error!(error = %e, "trace flush at shutdown failed");
    }
    tracing::info!(
        queued = queue.stats().messages,
        "stopped; queued messages stay in the spool"
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// Link rewriting for the gateway when `[links]` is on, with its ARC sealer,
/// whose key is generated at the first start when there is none.
fn link_protection(
    config: &Config,
    keys: &portcullis_links::KeyRing,
) -> anyhow::Result<Option<Arc<portcullis_gateway::links::LinkProtection>>> {
    if !config.links.enabled {
        return Ok(None);
    }
    let path = config.links.arc_key_path(&config.server.data_dir);
    let domain = config.links.arc_domain_or(&config.server.hostname);
    let (sealer, generated) = portcullis_links::arc::ArcSigner::load_or_generate(
        &path,
        domain,
        &config.links.arc_selector,
    )
    .with_context(|| format!("cannot load or make the ARC key {}", path.display()))?;
    if generated {
        let record = sealer.dns_record();
        tracing::warn!(
            key = %path.display(),
            record = %record.name,
            "generated an ARC signing key: publish its DNS record (`portcullis links arc-record`) before downstream servers can trust the seal"
        );
    }
    Ok(portcullis_gateway::links::LinkProtection::new(
        &config.links,
        keys.clone(),
        Some(sealer),
    ))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn session_limits(config: &Config) -> SessionLimits {
    let s = &config.smtp;
    SessionLimits {
        hostname: config.server.hostname.clone(),
        max_message_size: s.max_message_size,
        max_recipients: s.max_recipients,
        max_line_length: s.max_line_length,
        max_header_size: s.max_header_size,
        command_timeout: s.command_timeout.0,
        data_timeout: s.data_timeout.0,
        max_errors: s.max_errors,
        bare_newlines: match s.bare_newlines {
            crate::config::BareNewlines::Reject => BareNewlinePolicy::Reject,
            crate::config::BareNewlines::Normalise => BareNewlinePolicy::Normalise,
        },
        ..SessionLimits::default()
    }
}

/// Accepted domains and where mail goes. With no domains configured (the embedded
/// default) every recipient lands in the Maildir under the data folder, and only
/// trusted networks (loopback) and logged-in users may send: nothing is accepted
/// from strangers.
pub fn routing(config: &Config) -> (Router, Policy) {
    let maildir = Destination::Maildir(config.maildir());
    let mut domains = HashMap::new();
    let mut accepted = HashSet::new();
    let mut wildcard = None;
    let mut accept_all = false;
    for d in &config.domains {
        let dest = d
            .deliver_to
            .as_ref()
            .map(|c| c.0.clone())
            .unwrap_or_else(|| maildir.clone());
        if d.name.0 == "*" {
            accept_all = true;
            wildcard = Some(dest);
        } else {
            accepted.insert(d.name.0.clone());
            domains.insert(d.name.0.clone(), dest);
        }
    }
    let outbound = config.relay.smarthost.as_ref().map(|c| c.0.clone());
    if config.domains.is_empty() && outbound.is_none() {
        wildcard = Some(maildir);
    }
    let router = Router {
        domains,
        wildcard,
        outbound,
    };
    let policy = Policy {
        hostname: config.server.hostname.clone(),
        domains: accepted,
        accept_all_domains: accept_all,
        trusted_networks: config.smtp.trusted_networks.clone(),
        users: config
            .users
            .iter()
            .map(|u| (u.name.clone(), u.password_hash.0.clone()))
            .collect(),
        max_auth_failures: config.auth.max_failures,
        auth_lockout: config.auth.lockout.0,
        quarantine: config.quarantine.clone(),
    };
    (router, policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_deliver_everything_to_the_maildir_but_accept_no_domain() {
        let c = Config::parse("").unwrap();
        let (router, policy) = routing(&c);
        assert!(matches!(
            router.route("anyone@anywhere.test"),
            Destination::Maildir(_)
        ));
        assert!(!policy.accept_all_domains);
        assert!(policy.domains.is_empty());
    }

    #[test]
    fn listed_domains_go_downstream_and_the_rest_by_mx() {
        let c = Config::parse(
            "[[domains]]\nname = \"example.test\"\ndeliver_to = \"lmtp://10.0.0.5:24\"\n",
        )
        .unwrap();
        let (router, policy) = routing(&c);
        assert!(matches!(
            router.route("a@EXAMPLE.test"),
            Destination::Server { port: 24, .. }
        ));
        assert_eq!(
            router.route("b@elsewhere.test"),
            Destination::Mx {
                domain: "elsewhere.test".into()
            }
        );
        assert!(policy.domains.contains("example.test"));
    }

    #[test]
    fn a_smarthost_takes_outbound_mail() {
        let c = Config::parse("[relay]\nsmarthost = \"smtp://relay.test:2525\"\n[[domains]]\nname = \"example.test\"\n").unwrap();
        let (router, _) = routing(&c);
        assert!(matches!(
            router.route("b@elsewhere.test"),
            Destination::Server { port: 2525, .. }
        ));
        assert!(matches!(
            router.route("a@example.test"),
            Destination::Maildir(_)
        ));
    }
}
