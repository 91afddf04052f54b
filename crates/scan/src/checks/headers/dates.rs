//! The Date field: whether it is a date RFC 5322 can read, and whether it fits
//! the time the message arrived and the dates of its own trace.
//!
//! Standards: RFC 5322 section 3.3 (date-time), with the obsolete syntax of
//! section 4.3 accepted (two- and three-digit years, named and military zones,
//! comments, a one-digit hour), because real software still writes it. What is
//! refused is what no mail program writes: a missing or impossible zone, an
//! impossible calendar date or time, a four-digit year before 1970, a weekday
//! that contradicts the date.
//!
//! Hostile input: the value is cut to 256 bytes and read in one pass; numbers
//! are parsed from at most a few digits, so nothing overflows. Times are compared
//! with [`View::received_at`] and with the trace, never with the wall clock.

use super::{shown, unfold, Head, View};
use crate::{Category, Finding};

/// Longest Date value read; real ones are under 50 bytes with their comment.
const MAX_DATE: usize = 256;
/// A Date this far after arrival is in the future (time zones set wrong by an
/// hour or two are common; spamware's are off by many hours).
const FUTURE: i64 = 3 * 3600;
/// A Date this far before the oldest trace date is in the past.
const PAST: i64 = 14 * 86400;

pub(super) fn check(view: &View<'_>, head: &Head<'_>, out: &mut Vec<Finding>) {
    let Some(raw) = head.date else {
        return;
    };
    let text = unfold(raw);
    let date = match parse(&text) {
        Ok(t) => t,
        Err(why) => {
            out.push(Finding::new(
                "DATE_INVALID",
                1.5,
                Category::Spam,
                format!("Date \"{}\" is not a valid date: {why}", shown(&text)),
            ));
            return;
        }
    };
    if let Some(arrived) = view.received_at() {
        if date - arrived > FUTURE {
            out.push(Finding::new(
                "DATE_IN_FUTURE",
                1.0,
                Category::Spam,
                format!(
                    "Date \"{}\" is {} after the message arrived",
                    shown(&text),
                    span(date - arrived)
                ),
            ));
        }
    }
    // Old mail relayed late keeps a trace as old as its Date, so the reference
    // is the oldest trace date that is not itself after arrival.
    let limit = view.received_at().map_or(i64::MAX, |t| t + 86400);
    let oldest = head
        .received
        .iter()
        .filter_map(|h| h.time)
        .filter(|t| *t <= limit)
        .min()
        .or(view.received_at());
    if let Some(first_seen) = oldest {
        if first_seen - date > PAST {
            out.push(Finding::new(
                "DATE_IN_PAST",
                1.0,
                Category::Spam,
                format!(
                    "Date \"{}\" is {} before the first relay saw the message",
                    shown(&text),
                    span(first_seen - date)
                ),
            ));
        }
    }
}

/// A duration for a person: hours up to two days, then days.
fn span(seconds: i64) -> String {
    if seconds < 2 * 86400 {
        format!("{} hours", seconds / 3600)
    } else {
        format!("{} days", seconds / 86400)
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["thu", "fri", "sat", "sun", "mon", "tue", "wed"];

/// Parses an RFC 5322 date-time (obsolete forms included) to seconds since the
/// epoch, or says what is wrong with it.
pub(crate) fn parse(value: &str) -> Result<i64, &'static str> {
    if value.len() > MAX_DATE {
        return Err("it is far too long");
    }
    let cleaned = strip_comments(value)?;
    let mut tokens = cleaned
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .peekable();
    // [day-of-week ","]: the comma is required after a weekday.
    let mut weekday = None;
    if let Some(t) = tokens.peek() {
        if t.starts_with(|c: char| c.is_ascii_alphabetic()) {
            let name = t.to_ascii_lowercase();
            let Some(w) = DAYS.iter().position(|d| *d == name) else {
                return Err("it does not start with a day of the month or a weekday");
            };
            // The token is a slice of `cleaned`, so its end is a char boundary.
            let end = t.as_ptr() as usize - cleaned.as_ptr() as usize + t.len();
            if !cleaned[end..].trim_start().starts_with(',') {
                return Err("the weekday is not followed by a comma");
            }
            weekday = Some(w);
            tokens.next();
        }
    }
    let day = number(tokens.next(), 1, 2).ok_or("the day of the month is missing")?;
    let month = tokens
        .next()
        .and_then(|m| MONTHS.iter().position(|n| n.eq_ignore_ascii_case(m)))
        .ok_or("the month is not a month name")? as u32
        + 1;
    let year_text = tokens.next().ok_or("the year is missing")?;
    let year = number(Some(year_text), 2, 4).ok_or("the year is not a number")?;
    let year = match year_text.len() {
        2 if year < 50 => year + 2000,
        2 | 3 => year + 1900,
        _ if year < 1970 => return Err("the year is before 1970"),
        _ => year,
    };
    let time = tokens.next().ok_or("the time is missing")?;
    let mut hms = time.split(':');
    let hour = number(hms.next(), 1, 2).ok_or("the hour is not a number")?;
    let minute = number(hms.next(), 2, 2).ok_or("the minutes are missing")?;
    let second = match hms.next() {
        Some(s) => number(Some(s), 2, 2).ok_or("the seconds are not a number")?,
        None => 0,
    };
    if hms.next().is_some() {
        return Err("the time has too many parts");
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("the time of day is impossible");
    }
    let zone = tokens.next().ok_or("there is no time zone")?;
    let offset = zone_offset(zone)?;
    if tokens.next().is_some() {
        return Err("there is text after the time zone");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("that day does not exist in that month");
    }
    let days = days_from_civil(year as i64, month, day);
    if let Some(w) = weekday {
        // 1970-01-01 was a Thursday, index 0 of DAYS.
        if days.rem_euclid(7) as usize != w {
            return Err("the weekday does not match the date");
        }
    }
    Ok(days * 86400 + (hour * 3600 + minute * 60 + second) as i64 - offset)
}

/// The value without comments; unbalanced parentheses are an error.
fn strip_comments(value: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0u32;
    let mut escaped = false;
    for c in value.chars() {
        if depth > 0 {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                out.push(' ');
            }
        } else if c == '(' {
            depth = 1;
        } else if c == ')' {
            return Err("it has an unbalanced parenthesis");
        } else {
            out.push(c);
        }
    }
    if depth > 0 {
        return Err("a comment is not closed");
    }
    Ok(out)
}

/// A token of `min..=max` ASCII digits as a number.
fn number(token: Option<&str>, min: usize, max: usize) -> Option<u32> {
    let t = token?;
    (t.len() >= min && t.len() <= max && t.bytes().all(|b| b.is_ascii_digit()))
        .then(|| t.parse().ok())
        .flatten()
}

/// Seconds east of UTC for a zone: `+hhmm`/`-hhmm` within ±14 h, or an
/// obsolete name (RFC 5322 section 4.3; military letters count as -0000).
fn zone_offset(zone: &str) -> Result<i64, &'static str> {
    if let Some(sign) = zone.strip_prefix(['+', '-']) {
        let n = number(Some(sign), 4, 4).ok_or("the zone offset is not four digits")? as i64;
        let (h, m) = (n / 100, n % 100);
        if h > 14 || m > 59 {
            return Err("the zone offset is impossible");
        }
        let secs = h * 3600 + m * 60;
        return Ok(if zone.starts_with('-') { -secs } else { secs });
    }
    let hours = match zone.to_ascii_uppercase().as_str() {
        "UT" | "GMT" | "Z" => 0,
        "EDT" => -4,
        "EST" | "CDT" => -5,
        "CST" | "MDT" => -6,
        "MST" | "PDT" => -7,
        "PST" => -8,
        z if z.len() == 1 && z != "J" && z.bytes().all(|b| b.is_ascii_uppercase()) => 0,
        _ => return Err("the time zone is not one RFC 5322 knows"),
    };
    Ok(hours * 3600)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::{Envelope, ScanConfig};

    #[test]
    fn real_dates_parse_to_the_right_instant() {
        assert_eq!(parse("Thu, 22 Aug 2002 07:36:16 -0400"), Ok(1_030_016_176));
        assert_eq!(parse("Thu, 22 Aug 2002 11:36:16 +0000"), Ok(1_030_016_176));
        assert_eq!(parse("22 Aug 2002 11:36:16 GMT"), Ok(1_030_016_176));
        assert_eq!(parse("Thu, 22 Aug 02 07:36:16 EDT"), Ok(1_030_016_176));
        assert_eq!(parse("Thu,22 Aug 2002 11:36 Z (UTC)"), Ok(1_030_016_160));
        assert_eq!(parse("Tue, 7 May 2002 9:38:27 -0600"), Ok(1_020_785_907));
        assert_eq!(
            parse("Mon, 1 Jan 2024 00:00:00 +0100 (CET)"),
            Ok(1_704_063_600)
        );
        assert_eq!(parse("Thu, 29 Feb 2024 12:00:00 +0000"), Ok(1_709_208_000));
        assert_eq!(parse("Sat, 31 Dec 2016 23:59:60 +0000"), Ok(1_483_228_800));
    }

    #[test]
    fn broken_dates_say_why() {
        for (date, why) in [
            ("Fri, 23 Aug 2002 03:30:23 -1900", "impossible"),
            ("Fri, 23 Aug 2002 19:27:52", "no time zone"),
            ("Sun, 25 Aug 2002 19:21:44 01800", "RFC 5322"),
            ("Fri, 30 Aug 02 21:48:08 Eastern Daylight Time", "RFC 5322"),
            ("Fri, 30 Aug 02 21:48:08 -0400 EDT", "text after"),
            (",\u{2003}Thu,\u{2003}22 Aug 2002 12:07:35", "no time zone"),
            ("Sat Sep 21 08:18:08 2002", "comma"),
            ("Thu, 22 Aug 0102 12:07:35 +0800", "before 1970"),
            ("Fri, 22 Aug 2002 12:07:35 +0800", "weekday"),
            ("Thu, 30 Feb 2002 12:07:35 +0800", "does not exist"),
            ("Thu, 22 Aug 2002 25:07:35 +0800", "impossible"),
            ("2002-08-22T12:07:35Z", "day of the month"),
            ("yesterday", "weekday"),
            ("Thu, 22 Aug 2002 12:07:35 +0800 (PST", "not closed"),
            ("", "day of the month"),
        ] {
            let err = parse(date).unwrap_err();
            assert!(err.contains(why), "{date:?}: {err}");
        }
        assert!(parse(&"(".repeat(10_000)).is_err());
    }

    #[test]
    fn an_invalid_date_fires_with_its_reason() {
        let f = run(&with("Date:", "Date: Fri, 23 Aug 2002 03:30:23 -1900"));
        let hit = f.iter().find(|f| f.name == "DATE_INVALID").unwrap();
        assert!(
            hit.detail.contains("-1900") && hit.detail.contains("impossible"),
            "{}",
            hit.detail
        );
    }

    #[test]
    fn a_2002_message_whose_date_matches_its_trace_is_fine() {
        // Scanned today from a file: arrival is the Received date (2002), not now.
        let found = run(CLEAN);
        let f = names(&found);
        assert!(
            !f.contains(&"DATE_IN_PAST") && !f.contains(&"DATE_IN_FUTURE"),
            "{f:?}"
        );
        // Also in the gateway, with the 2002 arrival time in the envelope.
        let env = Envelope {
            received_at: Some(1_030_016_190),
            ..Envelope::default()
        };
        assert!(run_with(CLEAN, &env, &ScanConfig::default()).is_empty());
    }

    #[test]
    fn a_date_hours_after_arrival_is_in_the_future() {
        let raw = with("Date:", "Date: Thu, 22 Aug 2002 23:36:16 +0100");
        let f = run(&raw);
        let hit = f.iter().find(|f| f.name == "DATE_IN_FUTURE").unwrap();
        assert!(hit.detail.contains("10 hours"), "{}", hit.detail);
        // An hour or two of zone trouble is not enough.
        assert!(!fires(
            &with("Date:", "Date: Thu, 22 Aug 2002 14:30:00 +0100"),
            "DATE_IN_FUTURE"
        ));
    }

    #[test]
    fn a_date_weeks_before_the_trace_is_in_the_past() {
        let raw = with("Date:", "Date: Thu, 20 Sep 2001 23:58:15 +0800");
        let f = run(&raw);
        let hit = f.iter().find(|f| f.name == "DATE_IN_PAST").unwrap();
        assert!(hit.detail.contains("335 days"), "{}", hit.detail);
    }

    #[test]
    fn old_mail_relayed_late_is_not_in_the_past() {
        // Written and first relayed in January, fetched again in September: the
        // newest Received is months after the Date, the oldest matches it.
        let raw = CLEAN.replacen(
            "From:",
            "Received: from old.example (old.example [198.51.100.7]) by mail.sender.example; Fri, 1 Feb 2002 05:48:53 GMT\r\nFrom:",
            1,
        );
        let raw = raw.replace(
            "Date: Thu, 22 Aug 2002 07:36:16 -0400",
            "Date: Fri, 1 Feb 2002 05:47:00 +0000",
        );
        assert!(!fires(&raw, "DATE_IN_PAST"));
    }

    #[test]
    fn without_any_time_reference_the_time_checks_skip() {
        let raw = "From: a@sender.example\r\nTo: b@org.example\r\nSubject: old\r\n\
            Date: Mon, 1 Jan 1990 00:00:00 +0000\r\nMessage-ID: <1@sender.example>\r\n\r\nhi\r\n";
        assert!(run(raw).is_empty());
        let future = raw.replace("Mon, 1 Jan 1990", "Sun, 1 Jan 2090");
        assert!(run(&future).is_empty());
    }
}
