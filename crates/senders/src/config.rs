//! `[senders]`: the sender-server checks' settings: on or off, enforcing or
//! only reporting, the schedule's steps, the yearly pause allowance, and who
//! gets the weekly summary.

use crate::stage::{Schedule, Step};
use serde::Deserialize;

/// Enforcing, or only recording and reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Throttle and block as the schedule says.
    #[default]
    Enforce,
    /// Record and report; never defer or refuse.
    Report,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendersConfig {
    /// Recognise and record sending servers at all.
    pub enabled: bool,
    pub mode: Mode,
    /// The schedule; empty means the default (report 30 days, throttle 10%,
    /// 25%, 50% from days 30, 40, 50, block 50% from day 60, all from 90).
    pub stages: Vec<Step>,
    /// Days a server's enforcement may be paused within any 365 days.
    pub pause_allowance_days: u32,
    /// Who gets the weekly summary of new and escalating servers (and of the
    /// organisation's own out-of-date servers); none: no summary.
    pub summary_to: Vec<String>,
    /// The summary's day (`monday` ... `sunday`) and UTC time (`HH:MM`).
    pub summary_day: String,
    pub summary_time: String,
    /// Where the reply texts send a sender's administrator to read more.
    pub more_url: Option<String>,
}

impl Default for SendersConfig {
    fn default() -> Self {
        SendersConfig {
            enabled: true,
            mode: Mode::Enforce,
            stages: Vec::new(),
            pause_allowance_days: 90,
            summary_to: Vec::new(),
            summary_day: "monday".into(),
            summary_time: "08:00".into(),
            more_url: None,
        }
    }
}

/// The weekday names, Monday first (the ISO 8601 order).
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl SendersConfig {
    /// The schedule the steps make (the default when none are given).
    pub fn schedule(&self) -> Result<Schedule, String> {
        if self.stages.is_empty() {
            Ok(Schedule::default())
        } else {
            Schedule::new(self.stages.clone())
        }
    }

    /// The summary's weekday (0 = Monday) and minute of the day, UTC.
    pub fn summary_at(&self) -> Result<(u32, u32), String> {
        let day = WEEKDAYS
            .iter()
            .position(|d| d.eq_ignore_ascii_case(&self.summary_day))
            .ok_or_else(|| {
                format!(
                    "senders.summary_day = {:?}: write a day such as \"monday\"",
                    self.summary_day
                )
            })?;
        let bad = || {
            format!(
                "senders.summary_time = {:?}: write HH:MM in UTC, such as \"08:00\"",
                self.summary_time
            )
        };
        let (h, m) = self.summary_time.split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 || self.summary_time.len() != 5 {
            return Err(bad());
        }
        Ok((day as u32, h * 60 + m))
    }

    /// Checks the values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.schedule()?;
        self.summary_at()?;
        if self.pause_allowance_days > 366 {
            return Err(format!(
                "senders.pause_allowance_days = {}: at most 366",
                self.pause_allowance_days
            ));
        }
        for a in &self.summary_to {
            if !a.contains('@') || a.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "senders.summary_to: {a:?} is not an address such as postmaster@example.test"
                ));
            }
        }
        if let Some(u) = &self.more_url {
            if !u.starts_with("https://") && !u.starts_with("http://") {
                return Err(format!("senders.more_url = {u:?}: write an http(s) URL"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::Action;

    fn parse(text: &str) -> Result<SendersConfig, String> {
        let c: SendersConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_enforce_the_default_schedule() {
        let c = parse("").unwrap();
        assert!(c.enabled);
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.schedule().unwrap(), Schedule::default());
        assert_eq!(c.summary_at().unwrap(), (0, 480));
    }

    #[test]
    fn a_full_section_parses() {
        let c = parse(
            r#"
            mode = "report"
            pause_allowance_days = 30
            summary_to = ["postmaster@example.test"]
            summary_day = "Friday"
            summary_time = "17:30"
            more_url = "https://intranet.example.test/outdated-servers"
            stages = [
              { after_days = 0, action = "report" },
              { after_days = 14, action = "throttle", percent = 20 },
              { after_days = 45, action = "block", percent = 100 },
            ]
            "#,
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Report);
        assert_eq!(c.summary_at().unwrap(), (4, 17 * 60 + 30));
        let s = c.schedule().unwrap();
        assert_eq!(s.steps()[1].action, Action::Throttle { percent: 20 });
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        for (text, key) in [
            ("mode = \"sometimes\"", "mode"),
            ("summary_day = \"someday\"", "senders.summary_day"),
            ("summary_time = \"25:00\"", "senders.summary_time"),
            ("summary_time = \"8:00\"", "senders.summary_time"),
            ("summary_to = [\"nobody\"]", "senders.summary_to"),
            ("pause_allowance_days = 400", "senders.pause_allowance_days"),
            ("more_url = \"ftp://x\"", "senders.more_url"),
            (
                "stages = [{ after_days = 3, action = \"report\" }]",
                "senders.stages",
            ),
            (
                "stages = [{ after_days = 0, action = \"block\", percent = 101 }]",
                "senders.stages",
            ),
            ("stagez = []", "unknown field"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
