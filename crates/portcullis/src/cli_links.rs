//! `portcullis links sign|decode|rotate-key|check|exposure|arc-record`: the
//! secure links' tokens, the click-time check, who received and clicked a
//! URL, and the DNS record of the ARC sealer's key. The key ring is `<data_dir>/links/keys`; these
//! commands work on it directly, whether or not the gateway runs. `decode`
//! only reads keys; `sign` makes the first key if there is none; `rotate-key`
//! adds a new signing key and keeps the old ones, so links already sent keep
//! working. `check` needs no key: it judges a URL as the redirector would
//! now, with the configuration's `[scan]` lists and own domains, and says so
//! in its exit status: 0 allow, 3 warn, 4 block (1 is a failure and 2 a
//! configuration error, as for every command). `exposure` reads the trace.
//! `arc-record` makes the ARC key as `serve` would when there is none, so the
//! record can be published before the first start.

use crate::config::Config;
use anyhow::{anyhow, Context, Result};
use portcullis_links::{judge, token, ClickLists, ClickVerdict, KeyRing, LinkToken};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum LinksAction {
    /// Print what a rewritten link stands for, after checking its signature.
    Decode {
        /// The rewritten link (https://HOST/l/TOKEN) or the token alone.
        link: String,
    },
    /// Make a rewritten link for a URL (for administrators and tests).
    Sign {
        /// The original URL (absolute http or https).
        url: String,
        /// The trace id of the message the link is in.
        #[arg(long)]
        message: String,
        /// The recipient the link is for.
        #[arg(long)]
        recipient: String,
        /// The link host; default `links.host` from the configuration.
        #[arg(long)]
        host: Option<String>,
    },
    /// Add a new signing key; the old keys still verify.
    RotateKey,
    /// Print what a click on a link to URL gets today: allow (exit 0), warn
    /// (exit 3) or block (exit 4).
    Check {
        /// The URL.
        url: String,
    },
    /// List the messages that carried a URL (or any URL on a domain) behind
    /// a secure link, their recipients, and the clicks on it.
    Exposure {
        /// The exact URL.
        #[arg(required_unless_present = "domain", conflicts_with = "domain")]
        url: Option<String>,
        /// A host and every name under it, instead of one URL.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Print the DNS TXT record to publish for the ARC sealer's key (making
    /// the key first if there is none).
    ArcRecord,
}

/// `links check`'s exit status for a warning.
pub const EXIT_WARN: u8 = 3;
/// `links check`'s exit status for a block.
pub const EXIT_BLOCK: u8 = 4;

pub fn run(config: &Config, action: &LinksAction) -> Result<ExitCode> {
    let dir = KeyRing::dir_in(&config.server.data_dir);
    match action {
        LinksAction::Decode { link } => {
            let ring = KeyRing::load_existing(&dir)?;
            let t = token::verify(&ring, token::token_in(link))
                .map_err(|e| anyhow!("not a valid link: {e}"))?;
            println!("url: {}", t.url);
            println!("message: {}", t.message);
            println!("issued: {} ({})", issued(t.issued_at), t.issued_at);
            println!("key: {}", t.key_id);
            let hash: String = t
                .recipient_hash
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            println!("recipient hash: {hash}");
        }
        LinksAction::Sign {
            url,
            message,
            recipient,
            host,
        } => {
            let host = host
                .as_deref()
                .or(config.links.host.as_deref())
                .ok_or_else(|| anyhow!("no link host: set links.host or pass --host"))?;
            let check = portcullis_links::LinksConfig {
                host: Some(host.to_string()),
                ..Default::default()
            };
            check.validate().map_err(|e| anyhow!("--host: {e}"))?;
            let ring = KeyRing::load_or_create(&dir)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("the clock is before 1970")?
                .as_secs() as i64;
            let t = LinkToken::new(&ring, url, message, recipient, now)?;
            let text = token::sign(&ring, &t).map_err(|e| anyhow!("cannot sign {url:?}: {e}"))?;
            println!("https://{}/l/{text}", host.trim_end_matches('.'));
        }
        LinksAction::Check { url } => {
            let lists = ClickLists::new(config.scan_config());
            return Ok(match judge(url, &lists) {
                ClickVerdict::Allow => {
                    println!("allow: {url}");
                    ExitCode::SUCCESS
                }
                ClickVerdict::Warn { reason } => {
                    println!("warn: {url}: {reason}");
                    ExitCode::from(EXIT_WARN)
                }
                ClickVerdict::Block { reason, .. } => {
                    println!("block: {url}: {reason}");
                    ExitCode::from(EXIT_BLOCK)
                }
            });
        }
        LinksAction::Exposure { url, domain } => {
            let filter = match (url, domain) {
                (Some(u), _) => portcullis_store::LinkFilter::Url(u.clone()),
                (None, Some(d)) => portcullis_store::LinkFilter::Domain(d.clone()),
                (None, None) => return Err(anyhow!("give a URL or --domain")),
            };
            let path = config.store_path();
            let store = portcullis_store::Store::open_sqlite(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let limit = portcullis_store::clicks::MAX_CLICKS;
            let received = store.link_deliveries(&filter, limit)?;
            let clicks = store.clicks(&filter, limit)?;
            println!("received ({} messages):", received.len());
            for d in &received {
                println!(
                    "  {} {} from {} to {}: {}",
                    d.at_rfc3339,
                    d.message,
                    d.mail_from,
                    d.recipients.join(", "),
                    d.url
                );
            }
            println!("clicked ({}):", clicks.len());
            for c in &clicks {
                println!(
                    "  {} {} {} from {} (message {}, recipient hash {})",
                    c.at_rfc3339, c.verdict, c.url, c.client_ip, c.message, c.recipient_hash
                );
            }
        }
        LinksAction::ArcRecord => {
            let path = config.links.arc_key_path(&config.server.data_dir);
            let domain = config.links.arc_domain_or(&config.server.hostname);
            let (sealer, generated) = portcullis_links::arc::ArcSigner::load_or_generate(
                &path,
                domain,
                &config.links.arc_selector,
            )
            .with_context(|| format!("cannot load or make the ARC key {}", path.display()))?;
            if generated {
                eprintln!("generated a new ARC key in {}", path.display());
            }
            println!("{}", sealer.dns_record().zone_line());
        }
        LinksAction::RotateKey => {
            let mut ring = KeyRing::load(&dir)?;
            let id = ring.rotate()?;
            println!(
                "key {id} signs new links from the gateway's next start; keys {:?} verify",
                ring.ids()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Unix seconds as an RFC 3339 UTC time (the proleptic Gregorian calendar,
/// by Howard Hinnant's days-to-civil algorithm).
fn issued(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn issue_times_read_as_utc() {
        assert_eq!(super::issued(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::issued(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::issued(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(super::issued(-1), "1969-12-31T23:59:59Z");
    }
}
