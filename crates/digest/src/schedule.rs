//! When digests are due: at each configured time of day (UTC). The time of
//! the last run is kept in the store, so a gateway that was stopped over a
//! digest time sends that digest once when it starts again, and never twice.

use crate::config::DigestTime;
use crate::DAY_MS;

const MINUTE_MS: i64 = 60_000;

/// The first digest time strictly after `after` (Unix ms); None without times.
pub fn next_slot(times: &[DigestTime], after: i64) -> Option<i64> {
    let day = after.div_euclid(DAY_MS) * DAY_MS;
    (0..=1)
        .flat_map(|d| {
            times
                .iter()
                .map(move |t| day + d * DAY_MS + i64::from(t.minute_of_day) * MINUTE_MS)
        })
        .filter(|s| *s > after)
        .min()
}

/// The latest digest time in `(last, now]`: the run that is due, if any.
/// Several missed times (a gateway stopped for days) make one run.
pub fn due_slot(times: &[DigestTime], last: i64, now: i64) -> Option<i64> {
    if now <= last {
        return None;
    }
    let day = now.div_euclid(DAY_MS) * DAY_MS;
    (-1..=0)
        .flat_map(|d| {
            times
                .iter()
                .map(move |t| day + d * DAY_MS + i64::from(t.minute_of_day) * MINUTE_MS)
        })
        .filter(|s| *s > last && *s <= now)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DigestTime {
        DigestTime::try_from(s.to_string()).unwrap()
    }

    const H: i64 = 3_600_000;
    /// 2024-01-10T00:00:00Z
    const DAY0: i64 = 1_704_844_800_000;

    #[test]
    fn the_next_time_is_today_or_tomorrow() {
        let times = [t("08:00"), t("17:30")];
        assert_eq!(next_slot(&times, DAY0), Some(DAY0 + 8 * H));
        assert_eq!(next_slot(&times, DAY0 + 8 * H), Some(DAY0 + 17 * H + H / 2));
        assert_eq!(next_slot(&times, DAY0 + 18 * H), Some(DAY0 + 32 * H));
        assert_eq!(next_slot(&[], DAY0), None);
    }

    #[test]
    fn a_time_is_due_once_between_runs() {
        let times = [t("08:00")];
        assert_eq!(due_slot(&times, DAY0, DAY0 + 7 * H), None);
        assert_eq!(due_slot(&times, DAY0, DAY0 + 8 * H), Some(DAY0 + 8 * H));
        // After that run, the same time is not due again that day.
        assert_eq!(due_slot(&times, DAY0 + 8 * H, DAY0 + 20 * H), None);
        assert_eq!(
            due_slot(&times, DAY0 + 8 * H, DAY0 + 33 * H),
            Some(DAY0 + 32 * H)
        );
    }

    #[test]
    fn missed_times_make_one_run_at_start() {
        let times = [t("08:00"), t("12:00")];
        // Stopped for three days: one run, for the newest missed time.
        assert_eq!(
            due_slot(&times, DAY0, DAY0 + 3 * 24 * H + 13 * H),
            Some(DAY0 + 3 * 24 * H + 12 * H)
        );
        // Just past midnight: yesterday's last time is due.
        assert_eq!(
            due_slot(&times, DAY0 + 9 * H, DAY0 + 24 * H + 1),
            Some(DAY0 + 12 * H)
        );
        assert_eq!(due_slot(&[], DAY0, DAY0 + 48 * H), None);
    }
}
