//! The sending servers as administrators see them: each server the store
//! knows, with where the schedule puts it today (stage, since when, the next
//! stage and its date, paused or exempt). What `portcullis senders list`, the
//! console's page and the weekly summary show.

use crate::stage::{self, Action, Facts, Pause, Schedule};
use portcullis_store::servers::{PauseRow, ServerRow};
use serde::Serialize;

/// One server and its standing.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    #[serde(flatten)]
    pub server: ServerRow,
    /// `report`, `throttle 25%`, `block 100%`; none while current.
    pub stage: Option<String>,
    pub stage_since: Option<i64>,
    pub next_stage: Option<String>,
    pub next_stage_at: Option<i64>,
    pub paused_until: Option<i64>,
    /// What applies to its mail now: the stage, or `report` while paused or
    /// exempt, or in report-only mode; none when nothing is enforced (current,
    /// own servers, never the connecting server).
    pub enforced: Option<String>,
}

/// The reports of `servers` at `now`.
pub fn reports(
    servers: Vec<ServerRow>,
    pauses: &[PauseRow],
    schedule: &Schedule,
    report_only: bool,
    now: i64,
) -> Vec<ServerReport> {
    // Grouped once: every server's pauses without scanning all of them.
    let mut by_key: std::collections::HashMap<&str, Vec<Pause>> = std::collections::HashMap::new();
    for p in pauses {
        by_key.entry(p.key.as_str()).or_default().push(Pause {
            from: p.from,
            until: p.until,
        });
    }
    servers
        .into_iter()
        .map(|server| {
            let facts = Facts {
                first_detected: server.first_detected,
                exempt: server.exempt,
                pauses: by_key.remove(server.key.as_str()).unwrap_or_default(),
            };
            let standing = stage::standing(&facts, schedule, now);
            let enforced = standing.as_ref().and_then(|s| {
                if server.own || server.connections == 0 {
                    None
                } else if report_only {
                    Some(Action::Report.describe())
                } else {
                    Some(s.effective().describe())
                }
            });
            ServerReport {
                stage: standing.as_ref().map(|s| s.action.describe()),
                stage_since: standing.as_ref().map(|s| s.since),
                next_stage: standing
                    .as_ref()
                    .and_then(|s| s.next.map(|(a, _)| a.describe())),
                next_stage_at: standing.as_ref().and_then(|s| s.next.map(|(_, at)| at)),
                paused_until: standing.as_ref().and_then(|s| s.paused_until),
                enforced,
                server,
            }
        })
        .collect()
}

/// A date as `YYYY-MM-DD` (UTC).
pub fn day(ms: i64) -> String {
    let text = portcullis_store::trace::rfc3339(ms);
    text.get(..10).unwrap_or(&text).to_string()
}

/// The list as a text table, one server per line.
pub fn table(reports: &[ServerReport]) -> String {
    let mut out = String::from(
        "SERVER\tSOFTWARE\tSTATUS\tFIRST DETECTED\tLAST SEEN\tMESSAGES\tSTAGE\tNEXT\n",
    );
    for r in reports {
        let s = &r.server;
        let software = match &s.release {
            Some(rel) => format!("{} {} ({rel})", s.product, s.version),
            None => format!("{} {}", s.product, s.version),
        };
        let stage = match (&r.stage, &r.enforced) {
            (None, _) => "-".to_string(),
            (Some(st), _) if s.own => format!("{st} (own server: not enforced)"),
            (Some(st), None) => format!("{st} (not the connecting server: not enforced)"),
            (Some(st), Some(e)) if e != st => format!("{st}, acting as {e}"),
            (Some(st), Some(_)) => st.clone(),
        };
        let next = match (&r.next_stage, r.next_stage_at) {
            (Some(n), Some(at)) => format!("{n} on {}", day(at)),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "{}\t{software}\t{}\t{}\t{}\t{}\t{stage}{}\t{next}\n",
            s.key,
            s.status,
            s.first_detected.map(day).unwrap_or_else(|| "-".into()),
            day(s.last_seen),
            s.messages,
            r.paused_until
                .map(|u| format!(" (paused until {})", day(u)))
                .unwrap_or_default()
        ));
    }
    out
}
