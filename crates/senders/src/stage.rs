//! The schedule for out-of-date sending servers, modelled on what Exchange
//! Online applies to outdated on-premises Exchange: from the day a server is
//! first seen out of date, report only; then throttle a share of its messages
//! that grows every ten days (a temporary `451 4.7.230`, so the sender retries
//! and the mail arrives late rather than never); then block a share, and
//! finally all of it (`550 5.7.230`). Every step is configurable
//! (`[senders] stages`), the whole feature can be report-only, and each
//! server can be exempted or paused (up to 90 days a year by default).
//!
//! Everything here is a pure function of the server's state and the time, so
//! the schedule is tested with a clock the test sets, and the store only keeps
//! facts (first detected, pauses), never a stage that could go stale.

use serde::{Deserialize, Serialize};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// What a stage does to a server's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "action")]
pub enum Action {
    /// Accept, record, report.
    Report,
    /// Defer this share of the messages (percent) with a 4xx.
    Throttle { percent: u8 },
    /// Refuse this share of the messages (percent) with a 5xx; accept the rest.
    Block { percent: u8 },
}

impl Action {
    /// `report`, `throttle 25%`, `block 100%`.
    pub fn describe(&self) -> String {
        match self {
            Action::Report => "report".into(),
            Action::Throttle { percent } => format!("throttle {percent}%"),
            Action::Block { percent } => format!("block {percent}%"),
        }
    }
}

/// One step of the schedule: from `after_days` after first detection.
/// Written `{ after_days = 30, action = "throttle", percent = 10 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StepText")]
pub struct Step {
    pub after_days: u32,
    #[serde(flatten)]
    pub action: Action,
}

/// A step as written in the configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepText {
    after_days: u32,
    action: String,
    percent: Option<u8>,
}

impl TryFrom<StepText> for Step {
    type Error = String;

    fn try_from(t: StepText) -> Result<Step, String> {
        let action = match (t.action.as_str(), t.percent) {
            ("report", None) => Action::Report,
            ("throttle", Some(percent)) => Action::Throttle { percent },
            ("block", Some(percent)) => Action::Block { percent },
            ("report", Some(_)) => return Err("a report step takes no percent".into()),
            ("throttle" | "block", None) => {
                return Err(format!("a {} step needs a percent", t.action))
            }
            (other, _) => {
                return Err(format!(
                    "action = {other:?}: write \"report\", \"throttle\" or \"block\""
                ))
            }
        };
        Ok(Step {
            after_days: t.after_days,
            action,
        })
    }
}

/// The steps, in order of `after_days`, the first at day 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    steps: Vec<Step>,
}

impl Default for Schedule {
    /// Report 30 days; throttle 10%, 25%, 50% from days 30, 40, 50; block
    /// half from day 60 and all from day 90.
    fn default() -> Self {
        let step = |after_days, action| Step { after_days, action };
        Schedule {
            steps: vec![
                step(0, Action::Report),
                step(30, Action::Throttle { percent: 10 }),
                step(40, Action::Throttle { percent: 25 }),
                step(50, Action::Throttle { percent: 50 }),
                step(60, Action::Block { percent: 50 }),
                step(90, Action::Block { percent: 100 }),
            ],
        }
    }
}

impl Schedule {
    /// Checks and orders the steps; the message names what is wrong.
    pub fn new(mut steps: Vec<Step>) -> Result<Schedule, String> {
        steps.sort_by_key(|s| s.after_days);
        match steps.first() {
            Some(first) if first.after_days == 0 => {}
            _ => return Err("senders.stages: the first step must be at after_days = 0".into()),
        }
        for w in steps.windows(2) {
            if w[0].after_days == w[1].after_days {
                return Err(format!(
                    "senders.stages: two steps at after_days = {}",
                    w[0].after_days
                ));
            }
        }
        for s in &steps {
            match s.action {
                Action::Throttle { percent } | Action::Block { percent }
                    if percent == 0 || percent > 100 =>
                {
                    return Err(format!(
                        "senders.stages: percent = {percent} at after_days = {}: write 1 to 100",
                        s.after_days
                    ));
                }
                _ => {}
            }
        }
        Ok(Schedule { steps })
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}

/// A pause of enforcement for one server, `[from, until)` in Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub from: i64,
    pub until: i64,
}

/// What the schedule needs to know about a server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// When the server was first seen out of date (Unix ms); `None` while it
    /// is current.
    pub first_detected: Option<i64>,
    pub exempt: bool,
    pub pauses: Vec<Pause>,
}

/// Where a server stands at a given time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Standing {
    /// The step in force (its action applies unless exempt or paused).
    pub action: Action,
    /// Since when (Unix ms).
    pub since: i64,
    /// The next step and when it starts, if the schedule has one (pauses to
    /// come are not foreseen).
    pub next: Option<(Action, i64)>,
    /// Enforcement is paused until then (Unix ms).
    pub paused_until: Option<i64>,
    pub exempt: bool,
}

impl Standing {
    /// The action that applies now: report while exempt or paused.
    pub fn effective(&self) -> Action {
        if self.exempt || self.paused_until.is_some() {
            Action::Report
        } else {
            self.action
        }
    }
}

/// Paused time within `[from, to)`, overlapping pauses counted once.
fn paused_between(pauses: &[Pause], from: i64, to: i64) -> i64 {
    let mut spans: Vec<(i64, i64)> = pauses
        .iter()
        .map(|p| (p.from.max(from), p.until.min(to)))
        .filter(|(a, b)| a < b)
        .collect();
    spans.sort_unstable();
    let mut total = 0;
    let mut end = i64::MIN;
    for (a, b) in spans {
        let a = a.max(end);
        if b > a {
            total += b - a;
            end = b;
        }
    }
    total
}

/// Where a server with these facts stands at `now`; `None` when it is not
/// out of date (nothing to enforce). Time spent paused does not count towards
/// the schedule: a pause holds the clock, it does not reset it.
pub fn standing(facts: &Facts, schedule: &Schedule, now: i64) -> Option<Standing> {
    let first = facts.first_detected?;
    let paused_now = facts
        .pauses
        .iter()
        .filter(|p| p.from <= now && now < p.until)
        .map(|p| p.until)
        .max();
    let age = (now - first - paused_between(&facts.pauses, first, now)).max(0);
    let steps = schedule.steps();
    let i = steps
        .iter()
        .rposition(|s| i64::from(s.after_days) * DAY_MS <= age)
        .unwrap_or(0);
    // Wall-clock start of a step: its age offset plus the pauses before it.
    let wall = |after_days: u32| {
        let target = i64::from(after_days) * DAY_MS;
        let mut at = first + target;
        // Each pause before `at` pushes it back; a few rounds settle it.
        for _ in 0..8 {
            let next = first + target + paused_between(&facts.pauses, first, at);
            if next == at {
                break;
            }
            at = next;
        }
        at
    };
    let resume = paused_now.unwrap_or(now);
    Some(Standing {
        action: steps[i].action,
        since: wall(steps[i].after_days),
        next: steps.get(i + 1).map(|s| {
            let at = wall(s.after_days);
            // A step due during the current pause starts when it ends.
            (s.action, at.max(resume))
        }),
        paused_until: paused_now,
        exempt: facts.exempt,
    })
}

/// Whether the `n`-th message (from 0) of a server falls in a share of
/// `percent`: spread evenly (at 10%, the 10th, 20th, ...), the same every
/// time, so that the share is exact over any run of messages.
pub fn in_share(n: u64, percent: u8) -> bool {
    let p = u64::from(percent.min(100));
    (n + 1) * p / 100 > n * p / 100
}

/// What happens to one message from a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Accept,
    Defer,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accept => "accept",
            Decision::Defer => "defer",
            Decision::Reject => "reject",
        }
    }
}

/// The decision for the `n`-th message under `action`; `report_only` (the
/// whole feature switched to reporting) accepts everything.
pub fn decide(action: Action, n: u64, report_only: bool) -> Decision {
    if report_only {
        return Decision::Accept;
    }
    match action {
        Action::Report => Decision::Accept,
        Action::Throttle { percent } if in_share(n, percent) => Decision::Defer,
        Action::Block { percent } if in_share(n, percent) => Decision::Reject,
        Action::Throttle { .. } | Action::Block { .. } => Decision::Accept,
    }
}

/// Whether a pause of `days` from `now` fits the yearly allowance: the days
/// paused in the 365 days before `now`, plus the new pause, at most
/// `allowance_days`. Returns the days left otherwise.
pub fn pause_fits(pauses: &[Pause], now: i64, days: u32, allowance_days: u32) -> Result<(), u32> {
    let used = paused_between(pauses, now - 365 * DAY_MS, now + 365 * DAY_MS);
    let used_days = u32::try_from((used + DAY_MS - 1) / DAY_MS).unwrap_or(u32::MAX);
    if used_days.saturating_add(days) <= allowance_days {
        Ok(())
    } else {
        Err(allowance_days.saturating_sub(used_days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_790_000_000_000;

    fn facts(first: i64) -> Facts {
        Facts {
            first_detected: Some(first),
            ..Facts::default()
        }
    }

    fn at(days: i64) -> i64 {
        T0 + days * DAY_MS
    }

    #[test]
    fn the_default_schedule_reports_then_throttles_then_blocks() {
        let s = Schedule::default();
        let f = facts(T0);
        let action = |d| standing(&f, &s, at(d)).unwrap().action;
        assert_eq!(action(0), Action::Report);
        assert_eq!(action(29), Action::Report);
        assert_eq!(action(30), Action::Throttle { percent: 10 });
        assert_eq!(action(45), Action::Throttle { percent: 25 });
        assert_eq!(action(55), Action::Throttle { percent: 50 });
        assert_eq!(action(60), Action::Block { percent: 50 });
        assert_eq!(action(89), Action::Block { percent: 50 });
        assert_eq!(action(90), Action::Block { percent: 100 });
        assert_eq!(action(400), Action::Block { percent: 100 });
        let st = standing(&f, &s, at(12)).unwrap();
        assert_eq!(st.since, T0);
        assert_eq!(st.next, Some((Action::Throttle { percent: 10 }, at(30))));
        assert_eq!(standing(&f, &s, at(95)).unwrap().next, None);
        assert!(standing(&Facts::default(), &s, at(95)).is_none());
    }

    #[test]
    fn a_pause_holds_the_clock_and_reports_meanwhile() {
        let s = Schedule::default();
        let mut f = facts(T0);
        f.pauses.push(Pause {
            from: at(25),
            until: at(35),
        });
        let st = standing(&f, &s, at(30)).unwrap();
        assert_eq!(st.action, Action::Report);
        assert_eq!(st.paused_until, Some(at(35)));
        assert_eq!(st.effective(), Action::Report);
        // The throttle that was due on day 30 starts on day 40 instead.
        assert_eq!(st.next, Some((Action::Throttle { percent: 10 }, at(40))));
        assert_eq!(standing(&f, &s, at(39)).unwrap().action, Action::Report);
        let st = standing(&f, &s, at(40)).unwrap();
        assert_eq!(st.action, Action::Throttle { percent: 10 });
        assert_eq!(st.since, at(40));
        assert_eq!(st.paused_until, None);
    }

    #[test]
    fn an_exempt_server_is_only_reported() {
        let mut f = facts(T0);
        f.exempt = true;
        let st = standing(&f, &Schedule::default(), at(200)).unwrap();
        assert_eq!(st.action, Action::Block { percent: 100 });
        assert_eq!(st.effective(), Action::Report);
    }

    #[test]
    fn shares_are_exact_and_spread() {
        let deferred = (0..100).filter(|&n| in_share(n, 10)).count();
        assert_eq!(deferred, 10);
        assert!(!in_share(0, 10) && in_share(9, 10));
        assert_eq!((0..1000).filter(|&n| in_share(n, 25)).count(), 250);
        assert!((0..50).all(|n| in_share(n, 100)));
        assert_eq!(
            decide(Action::Block { percent: 100 }, 0, false),
            Decision::Reject
        );
        assert_eq!(
            decide(Action::Block { percent: 100 }, 0, true),
            Decision::Accept
        );
        assert_eq!(
            decide(Action::Throttle { percent: 50 }, 0, false),
            Decision::Accept
        );
        assert_eq!(
            decide(Action::Throttle { percent: 50 }, 1, false),
            Decision::Defer
        );
        assert_eq!(decide(Action::Report, 7, false), Decision::Accept);
    }

    #[test]
    fn pauses_are_limited_per_year() {
        let p = vec![Pause {
            from: at(0),
            until: at(60),
        }];
        assert_eq!(pause_fits(&p, at(100), 30, 90), Ok(()));
        assert_eq!(pause_fits(&p, at(100), 31, 90), Err(30));
        // A year later the old pause no longer counts.
        assert_eq!(pause_fits(&p, at(430), 90, 90), Ok(()));
    }

    #[test]
    fn bad_schedules_are_refused() {
        let step = |after_days, action| Step { after_days, action };
        assert!(Schedule::new(vec![step(5, Action::Report)]).is_err());
        assert!(Schedule::new(vec![
            step(0, Action::Report),
            step(0, Action::Block { percent: 1 })
        ])
        .is_err());
        assert!(Schedule::new(vec![
            step(0, Action::Report),
            step(9, Action::Throttle { percent: 0 })
        ])
        .unwrap_err()
        .contains("percent"));
        let s = Schedule::new(vec![
            step(10, Action::Block { percent: 100 }),
            step(0, Action::Report),
        ])
        .unwrap();
        assert_eq!(s.steps()[0].after_days, 0);
    }
}
