//! The weekly summary for administrators: the sending servers first seen out
//! of date this week, those whose enforcement steps up (or just did), and the
//! organisation's own servers that run out-of-date software, with what to
//! install and the dates of the schedule. One plain-text mail to
//! `[senders] summary_to`, queued through the gateway's own queue from the
//! null reverse-path (RFC 3834: it never bounces), traced like any mail. No
//! mail when there is nothing to say.
//!
//! The schedule ([`run_schedule`]) sends at the configured weekday and UTC
//! time and remembers its last run in `<data_dir>/senders/summary-last-run`
//! (written to a temporary file, synced, renamed), so a stop over the
//! summary's time costs one late summary, neither a lost nor a doubled one.
//!
//! Hostile input: host names, versions and reasons come from mail (the
//! `Received` fields senders write). They are shown one line each, with
//! control characters and bidirectional overrides replaced and their length
//! bounded, so no value can start a line that looks like ours.

use crate::report::{self, day, ServerReport};
use crate::stage::DAY_MS;
use crate::SendersConfig;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::MessageBuilder;
use portcullis_queue::Queue;
use portcullis_smtp::{Envelope, Recipient};
use portcullis_store::{EventKind, Store, StoreError};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// A week in milliseconds.
pub const WEEK_MS: i64 = 7 * DAY_MS;
/// Characters of one shown value at most.
const MAX_SHOWN: usize = 200;
/// Servers one section lists at most (the rest are counted).
const MAX_LISTED: usize = 200;

/// A built summary.
#[derive(Debug, Clone)]
pub struct Composed {
    pub message: Vec<u8>,
    pub subject: String,
    pub message_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("queue: {0}")]
    Queue(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("worker: {0}")]
    Worker(String),
}

/// Hostile text on one line, at most [`MAX_SHOWN`] characters.
fn one_line(s: &str) -> String {
    portcullis_queue::text::one_line(s, MAX_SHOWN)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// First seen out of date within the week before `now`.
fn is_new(r: &ServerReport, now: i64) -> bool {
    r.server
        .first_detected
        .is_some_and(|t| t > now - WEEK_MS && t <= now)
}

/// Its stage stepped up within the last week (beyond reporting), or steps up
/// within the next.
fn is_escalating(r: &ServerReport, now: i64) -> bool {
    let stepped = r.stage.as_deref().is_some_and(|s| s != "report")
        && r.stage_since.is_some_and(|t| t > now - WEEK_MS && t <= now);
    let stepping = r
        .next_stage_at
        .is_some_and(|t| t > now && t <= now + WEEK_MS);
    stepped || stepping
}

/// The three lists of a summary: new, escalating, own out of date. A server
/// is listed once: own servers only as own, new ones only as new.
pub fn sections(
    reports: &[ServerReport],
    now: i64,
) -> (Vec<&ServerReport>, Vec<&ServerReport>, Vec<&ServerReport>) {
    let own: Vec<&ServerReport> = reports
        .iter()
        .filter(|r| r.server.own && r.server.status != "current")
        .collect();
    let new: Vec<&ServerReport> = reports
        .iter()
        .filter(|r| !r.server.own && r.server.status != "current" && is_new(r, now))
        .collect();
    let escalating: Vec<&ServerReport> = reports
        .iter()
        .filter(|r| {
            !r.server.own
                && r.server.status != "current"
                && !is_new(r, now)
                && is_escalating(r, now)
        })
        .collect();
    (new, escalating, own)
}

fn software(r: &ServerReport) -> String {
    let s = &r.server;
    match &s.release {
        Some(rel) => format!(
            "{} ({} {})",
            one_line(rel),
            one_line(&s.product),
            one_line(&s.version)
        ),
        None => format!("{} {}", one_line(&s.product), one_line(&s.version)),
    }
}

/// One server as a block of indented lines.
fn entry(t: &mut String, r: &ServerReport) {
    let s = &r.server;
    t.push_str(&format!("  * {}\n", one_line(&s.key)));
    let mut line = |name: &str, value: String| {
        t.push_str(&format!("    {name:<14}{value}\n"));
    };
    line("Software:", software(r));
    line(
        "Status:",
        format!("{}: {}", one_line(&s.status), one_line(&s.reason)),
    );
    line(
        "Install:",
        s.recommended
            .as_deref()
            .map(one_line)
            .unwrap_or_else(|| "the current release of this software".into()),
    );
    if let Some(t0) = s.first_detected {
        line("Out of date:", format!("since {}", day(t0)));
    }
    if s.own {
        line("Enforced:", "never here (your own server)".into());
    } else {
        let stage = match (&r.stage, &r.enforced) {
            (None, _) => "-".to_string(),
            (Some(st), None) => format!("{st} (only reported: it did not connect to us)"),
            (Some(st), Some(e)) if e != st => format!("{st}, acting as {e}"),
            (Some(st), Some(_)) => st.clone(),
        };
        let since = r
            .stage_since
            .map(|t| format!(" since {}", day(t)))
            .unwrap_or_default();
        line("Stage:", format!("{stage}{since}"));
        if let (Some(n), Some(at)) = (&r.next_stage, r.next_stage_at) {
            line("Next stage:", format!("{n} on {}", day(at)));
        }
    }
    if let Some(u) = r.paused_until {
        line("Paused:", format!("until {}", day(u)));
    }
    if s.exempt {
        line("Exempt:", "yes: its mail is only reported".into());
    }
    line(
        "Messages:",
        format!("{}, last seen {}", s.messages, day(s.last_seen)),
    );
}

fn section(t: &mut String, title: &str, intro: &str, list: &[&ServerReport]) {
    if list.is_empty() {
        return;
    }
    t.push_str(&format!("{title} ({})\n", list.len()));
    t.push_str(&"-".repeat(title.chars().count() + 3 + list.len().to_string().len()));
    t.push_str("\n\n");
    t.push_str(intro);
    t.push_str("\n\n");
    for r in list.iter().take(MAX_LISTED) {
        entry(t, r);
        t.push('\n');
    }
    if list.len() > MAX_LISTED {
        t.push_str(&format!(
            "  ... and {} more: see `portcullis senders list` or the console.\n\n",
            list.len() - MAX_LISTED
        ));
    }
}

/// The summary's subject line.
fn subject(new: usize, escalating: usize, own: usize) -> String {
    let mut parts = Vec::new();
    if own > 0 {
        parts.push(format!(
            "{} of your own out of date",
            plural(own, "server", "servers")
        ));
    }
    if new > 0 {
        parts.push(format!("{new} new"));
    }
    if escalating > 0 {
        parts.push(format!("{escalating} escalating"));
    }
    format!("Sending servers: {}", parts.join(", "))
}

/// The text of the summary, or `None` when nothing is to be reported.
pub fn text(reports: &[ServerReport], now: i64) -> Option<(String, String)> {
    let (new, escalating, own) = sections(reports, now);
    if new.is_empty() && escalating.is_empty() && own.is_empty() {
        return None;
    }
    let mut t = format!(
        "Weekly summary of sending servers, {} (UTC).\n\n\
         The gateway recognises the software and version of the mail servers\n\
         that send to us, and of our own, from their Received header fields.\n\
         Out-of-date servers of other organisations are first reported, then\n\
         throttled (451 4.7.230) and finally blocked (550 5.7.230) as the\n\
         schedule says; pause or exempt one with `portcullis senders` or on\n\
         the console's Sending servers page.\n\n",
        day(now)
    );
    section(
        &mut t,
        "Your own servers run out-of-date software",
        "Large receivers such as Exchange Online throttle and then block mail\n\
         from out-of-date on-premises Exchange servers: update these before\n\
         your mail is delayed or refused elsewhere. (This gateway never\n\
         enforces against them.)",
        &own,
    );
    section(
        &mut t,
        "New this week",
        "First seen out of date in the last 7 days.",
        &new,
    );
    section(
        &mut t,
        "Escalating",
        "Their enforcement stepped up in the last 7 days or steps up in the next 7.",
        &escalating,
    );
    t.push_str("-- \nPortcullis, sender-server enforcement ([senders] in the configuration)\n");
    Some((subject(new.len(), escalating.len(), own.len()), t))
}

/// Builds the summary mail to `to`, or `None` when there is nothing to say.
pub fn compose(
    reports: &[ServerReport],
    now: i64,
    hostname: &str,
    id: &str,
    to: &[String],
) -> Option<Composed> {
    let (subject, text) = text(reports, now)?;
    let message_id = format!("{id}.senders@{hostname}");
    let message = MessageBuilder::new()
        .from(Address::new_address(
            Some("Portcullis sending servers"),
            format!("postmaster@{hostname}"),
        ))
        .to(to
            .iter()
            .map(|a| Address::new_address(None::<&str>, a.clone()))
            .collect::<Vec<_>>())
        .subject(subject.clone())
        .date(Date::new(now.div_euclid(1000)))
        .message_id(MessageId::new(message_id.clone()))
        // RFC 3834: made by a machine; auto-responders must not answer it.
        .header("Auto-Submitted", Raw::new("auto-generated"))
        .header("X-Auto-Response-Suppress", Raw::new("All"))
        .text_body(text)
        .write_to_vec()
        .ok()?;
    Some(Composed {
        message,
        subject,
        message_id,
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SummaryError> + Send + 'static,
) -> Result<T, SummaryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SummaryError::Worker(e.to_string()))?
}

/// Builds today's reports from the store.
pub async fn load_reports(
    store: &Store,
    config: &SendersConfig,
    now: i64,
) -> Result<Vec<ServerReport>, SummaryError> {
    let schedule = config.schedule().map_err(SummaryError::Config)?;
    let report_only = config.mode == crate::Mode::Report;
    let store = store.clone();
    let (rows, pauses) = blocking(move || {
        store.flush()?;
        Ok((store.sender_servers(None)?, store.server_pauses(None)?))
    })
    .await?;
    Ok(report::reports(rows, &pauses, &schedule, report_only, now))
}

/// Composes and queues the summary now, to `summary_to`. The trace id of
/// the queued mail; `None` when nobody is to get it or there is nothing to
/// report.
pub async fn send_now(
    store: &Store,
    queue: &Queue,
    config: &SendersConfig,
    hostname: &str,
) -> Result<Option<String>, SummaryError> {
    if config.summary_to.is_empty() {
        return Ok(None);
    }
    let now = portcullis_store::now_ms();
    let reports = load_reports(store, config, now).await?;
    let id = portcullis_queue::id::new_id();
    let Some(composed) = compose(&reports, now, hostname, &id, &config.summary_to) else {
        return Ok(None);
    };
    let envelope = Envelope {
        // RFC 3834: from the null reverse-path; a summary never bounces.
        mail_from: String::new(),
        recipients: config
            .summary_to
            .iter()
            .map(|a| Recipient {
                address: a.clone(),
                notify: None,
                orcpt: None,
            })
            .collect(),
        eight_bit: false,
        smtputf8: config.summary_to.iter().any(|a| !a.is_ascii()),
        ret: None,
        envid: None,
    };
    let reception = EventKind::Received {
        client_ip: "local".into(),
        helo: None,
        tls: None,
        auth_user: None,
        mail_from: String::new(),
        recipients: config.summary_to.clone(),
        size: composed.message.len() as u64,
        message_id: Some(composed.message_id.clone()),
        subject: Some(composed.subject.clone()),
        reply: "weekly sending-servers summary".into(),
    };
    queue
        .enqueue(id.clone(), envelope, composed.message, reception)
        .await
        .map_err(|e| SummaryError::Queue(e.to_string()))?;
    tracing::info!(id = %id, subject = %composed.subject, "sending-servers summary queued");
    Ok(Some(id))
}

/// The Monday 00:00 UTC before the Unix epoch (1970-01-01 was a Thursday).
const MONDAY0: i64 = -3 * DAY_MS;

/// The latest summary time at or before `now`, for `(weekday, minute)`.
pub fn last_slot(at: (u32, u32), now: i64) -> i64 {
    let offset = i64::from(at.0) * DAY_MS + i64::from(at.1) * 60_000;
    let base = MONDAY0 + offset;
    base + (now - base).div_euclid(WEEK_MS) * WEEK_MS
}

/// Where the last run is remembered.
pub fn last_run_path(data_dir: &Path) -> PathBuf {
    data_dir.join("senders").join("summary-last-run")
}

/// The remembered last run; `None` before the first.
pub fn read_last_run(data_dir: &Path) -> std::io::Result<Option<i64>> {
    match std::fs::read_to_string(last_run_path(data_dir)) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{}: not a time in Unix ms: {:?}",
                    last_run_path(data_dir).display(),
                    text.trim()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Remembers `at` as the last run: a temporary file, synced, renamed over
/// the old one, the folder synced.
pub fn write_last_run(data_dir: &Path, at: i64) -> std::io::Result<()> {
    let path = last_run_path(data_dir);
    let dir = path.parent().expect("the path has a folder");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("summary-last-run.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{at}")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Sends the summary at the configured weekday and time until `stop`. The
/// first start sends nothing at once: it remembers now as the last run.
pub async fn run_schedule(
    store: Store,
    queue: Queue,
    config: SendersConfig,
    hostname: String,
    data_dir: PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    if !config.enabled || config.summary_to.is_empty() {
        return;
    }
    let at = match config.summary_at() {
        Ok(at) => at,
        Err(e) => {
            tracing::error!(error = %e, "the sending-servers summary is not scheduled");
            return;
        }
    };
    let dir = data_dir.clone();
    let mut last = match blocking(move || {
        Ok(match read_last_run(&dir)? {
            Some(t) => t,
            None => {
                let now = portcullis_store::now_ms();
                write_last_run(&dir, now)?;
                now
            }
        })
    })
    .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot read when the sending-servers summary last went out; it is not scheduled");
            return;
        }
    };
    loop {
        let now = portcullis_store::now_ms();
        let slot = last_slot(at, now);
        if slot > last {
            match send_now(&store, &queue, &config, &hostname).await {
                Ok(Some(id)) => tracing::info!(id = %id, "weekly sending-servers summary sent"),
                Ok(None) => tracing::info!("weekly sending-servers summary: nothing to report"),
                Err(e) => tracing::error!(error = %e, "the sending-servers summary failed"),
            }
            last = slot;
            let dir = data_dir.clone();
            if let Err(e) = blocking(move || Ok(write_last_run(&dir, slot)?)).await {
                tracing::error!(error = %e, "cannot record the sending-servers summary run");
            }
            continue;
        }
        // Wake at the next time, and at least each minute (the clock may be
        // set meanwhile).
        let wait = (slot + WEEK_MS - now).clamp(0, 60_000);
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait as u64 + 5)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::Schedule;
    use portcullis_store::servers::ServerRow;

    const NOW: i64 = 1_790_000_000_000;

    fn row(key: &str, own: bool, status: &str, detected_days_ago: Option<i64>) -> ServerRow {
        ServerRow {
            key: key.into(),
            org: key.split('/').next().unwrap().into(),
            host: key.split('/').nth(1).unwrap().into(),
            own,
            product: "exchange".into(),
            version: "15.1.2507.6".into(),
            release: Some("Exchange Server 2016 CU23".into()),
            status: status.into(),
            reason: "out of support since 2025-10-14".into(),
            recommended: Some("Exchange Server SE RTM (15.2.2562.17)".into()),
            first_detected: detected_days_ago.map(|d| NOW - d * DAY_MS),
            first_seen: NOW - 400 * DAY_MS,
            last_seen: NOW - 3_600_000,
            last_seen_rfc3339: String::new(),
            messages: 12,
            connections: 5,
            exempt: false,
            last_field: "Received: ...".into(),
            last_message: "M1".into(),
        }
    }

    fn reports(rows: Vec<ServerRow>) -> Vec<ServerReport> {
        report::reports(rows, &[], &Schedule::default(), false, NOW)
    }

    fn keys(list: &[&ServerReport]) -> Vec<String> {
        list.iter().map(|r| r.server.key.clone()).collect()
    }

    fn sample() -> Vec<ServerReport> {
        reports(vec![
            // New this week.
            row("new.test/mx1.new.test", false, "outdated", Some(2)),
            // Throttled from day 40: stepped up 2 days ago.
            row("bank.test/ex01.bank.test", false, "unsupported", Some(42)),
            // Next step (day 30) in 3 days.
            row("soon.test/mail.soon.test", false, "vulnerable", Some(27)),
            // Blocked long ago, nothing changes.
            row("old.test/mx.old.test", false, "unsupported", Some(200)),
            // Reported, next step in 12 days.
            row("mid.test/mx.mid.test", false, "outdated", Some(18)),
            // Current: never listed.
            row("fine.test/mx.fine.test", false, "current", None),
            // Our own, out of date for long.
            row("(own)/ex02", true, "outdated", Some(100)),
            row("(own)/ex03", true, "current", None),
        ])
    }

    #[test]
    fn the_sections_list_new_escalating_and_own_servers() {
        let all = sample();
        let (new, escalating, own) = sections(&all, NOW);
        assert_eq!(keys(&new), ["new.test/mx1.new.test"]);
        assert_eq!(
            keys(&escalating),
            ["bank.test/ex01.bank.test", "soon.test/mail.soon.test"]
        );
        assert_eq!(keys(&own), ["(own)/ex02"]);
    }

    #[test]
    fn nothing_to_report_means_no_mail() {
        assert!(compose(&[], NOW, "gw.test", "ID1", &["a@b.test".into()]).is_none());
        let quiet = reports(vec![
            row("old.test/mx.old.test", false, "unsupported", Some(200)),
            row("fine.test/mx.fine.test", false, "current", None),
            row("(own)/ex03", true, "current", None),
        ]);
        assert!(compose(&quiet, NOW, "gw.test", "ID1", &["a@b.test".into()]).is_none());
    }

    #[test]
    fn the_mail_parses_and_says_what_to_do() {
        let all = sample();
        let to = vec!["postmaster@example.test".to_string()];
        let c = compose(&all, NOW, "gw.example.test", "ABC123", &to).expect("a summary");
        assert_eq!(c.message_id, "ABC123.senders@gw.example.test");
        assert_eq!(
            c.subject,
            "Sending servers: 1 server of your own out of date, 1 new, 2 escalating"
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(&c.message)
            .expect("parses");
        assert_eq!(parsed.subject(), Some(c.subject.as_str()));
        assert_eq!(parsed.message_id(), Some("ABC123.senders@gw.example.test"));
        assert_eq!(
            parsed.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
        let to_addr = parsed
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address());
        assert_eq!(to_addr, Some("postmaster@example.test"));
        let body = parsed.body_text(0).expect("a text part").to_string();
        assert!(body.contains("Exchange Online"), "{body}");
        assert!(body.contains("on-premises Exchange"), "{body}");
        // Own first, then new, then escalating.
        let own = body.find("* (own)/ex02").expect("own listed");
        let new = body.find("* new.test/mx1.new.test").expect("new listed");
        let esc = body
            .find("* bank.test/ex01.bank.test")
            .expect("escalating listed");
        assert!(own < new && new < esc, "{body}");
        assert!(!body.contains("old.test"), "{body}");
        assert!(!body.contains("fine.test"), "{body}");
        assert!(!body.contains("ex03"), "{body}");
        assert!(
            body.contains("Exchange Server SE RTM (15.2.2562.17)"),
            "{body}"
        );
        assert!(body.contains("Exchange Server 2016 CU23 (exchange 15.1.2507.6)"));
        assert!(body.contains("throttle 25% since"), "{body}");
        assert!(body.contains("throttle 50% on"), "{body}");
        assert!(body.contains("never here (your own server)"), "{body}");
        assert!(body.contains(&format!("throttle 10% on {}", day(NOW + 3 * DAY_MS))));
    }

    #[test]
    fn an_own_server_alone_is_reported_with_the_exchange_online_warning() {
        let only = reports(vec![row("(own)/ex02", true, "unsupported", Some(400))]);
        let (subject, body) = text(&only, NOW).expect("a summary");
        assert_eq!(subject, "Sending servers: 1 server of your own out of date");
        assert!(
            body.contains("Exchange Online throttle and then block"),
            "{body}"
        );
    }

    #[test]
    fn hostile_names_stay_on_one_line() {
        let mut r = row("evil.test/x", false, "outdated", Some(1));
        r.key = "evil.test/x\r\nSubject: forged\u{202E}".into();
        let (_, body) = text(&reports(vec![r]), NOW).unwrap();
        assert!(!body.contains("\nSubject: forged"), "{body}");
        assert!(!body.contains('\u{202E}'));
        assert!(body.contains("* evil.test/x Subject: forged"), "{body}");
    }

    #[test]
    fn the_slot_is_the_configured_weekday_and_time() {
        // 2026-11-23 is a Monday; 08:00 UTC.
        let monday_8 = 1_795_392_000_000 + 8 * 3_600_000;
        assert_eq!(day(monday_8), "2026-11-23");
        assert_eq!(last_slot((0, 480), monday_8), monday_8);
        assert_eq!(last_slot((0, 480), monday_8 - 1), monday_8 - WEEK_MS);
        assert_eq!(last_slot((0, 480), monday_8 + 3 * DAY_MS), monday_8);
        // Friday 17:30 before that Monday.
        let friday = last_slot((4, 17 * 60 + 30), monday_8);
        assert_eq!(day(friday), "2026-11-20");
        assert_eq!(friday % DAY_MS, (17 * 60 + 30) * 60_000);
    }

    #[test]
    fn the_last_run_is_remembered_in_a_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_last_run(dir.path()).unwrap(), None);
        write_last_run(dir.path(), 1234).unwrap();
        write_last_run(dir.path(), 5678).unwrap();
        assert_eq!(read_last_run(dir.path()).unwrap(), Some(5678));
        assert!(!dir.path().join("senders/summary-last-run.tmp").exists());
    }
}
