//! Five-field cron expressions (`minute hour day-of-month month
//! day-of-week`), evaluated in UTC.
//!
//! Owns [`Cron`]: a parsed expression as one bit set per field. The
//! invariant: a `Cron` exists only for an expression that matches at
//! least one real date, so [`Cron::next_after`] always finds a time
//! within its search window (eight years covers every leap-day rule).

use std::fmt;

/// Why a cron expression was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError(pub String);

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CronError {}

/// A parsed five-field expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    doms: u64,
    months: u64,
    /// Bit 0 is Sunday; a `7` in the text is folded into it.
    dows: u64,
    /// Whether day-of-month / day-of-week were written as `*`: when both
    /// are restricted, a day matching either one matches (as in cron).
    dom_any: bool,
    dow_any: bool,
    /// The expression as written (fields joined by one space), for status.
    text: String,
}

/// One field's name, range and accepted names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Field = Field { name: "minute", min: 0, max: 59, names: &[] };
const HOUR: Field = Field { name: "hour", min: 0, max: 23, names: &[] };
const DOM: Field = Field { name: "day-of-month", min: 1, max: 31, names: &[] };
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
};
const DOW: Field =
    Field { name: "day-of-week", min: 0, max: 7, names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"] };

impl Cron {
    /// Parses `minute hour day-of-month month day-of-week`, each a `*`, a
    /// number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of
    /// these; months and weekdays may be named (`jan`, `mon`).
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError(format!(
                "a cron expression has five fields (minute hour day-of-month month day-of-week), not {}",
                fields.len()
            )));
        }
        let minutes = parse_field(fields[0], &MINUTE)?;
        let hours = parse_field(fields[1], &HOUR)?;
        let doms = parse_field(fields[2], &DOM)?;
        let months = parse_field(fields[3], &MONTH)?;
        let mut dows = parse_field(fields[4], &DOW)?;
        if dows & (1 << 7) != 0 {
            dows = (dows | 1) & !(1 << 7);
        }
        let cron = Cron {
            minutes,
            hours,
            doms,
            months,
            dows,
            dom_any: fields[2] == "*",
            dow_any: fields[4] == "*",
            text: fields.join(" "),
        };
        if cron.dow_any && !cron.dom_any {
            // Only the day of the month restricts the day: some month in
            // the set must have one of those days (February has 29).
            let possible = (1..=12u32)
                .filter(|m| months & (1 << m) != 0)
                .any(|m| (1..=days_in_month(2000, m)).any(|d| doms & (1 << d) != 0));
            if !possible {
                return Err(CronError(format!("the cron expression {text:?} never matches a real date")));
            }
        }
        Ok(cron)
    }

    /// The expression as written, its fields joined by one space.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first whole minute strictly after `after` (Unix seconds, UTC)
    /// that the expression matches, in Unix seconds.
    pub fn next_after(&self, after: u64) -> Option<u64> {
        let start = after / 60 + 1;
        let first_day = start / 1440;
        // Eight years of days: covers Feb 29 across a skipped leap year.
        for day in first_day..first_day + 8 * 366 {
            if !self.day_matches(day) {
                continue;
            }
            let from = if day == first_day { start % 1440 } else { 0 };
            for m in from..1440 {
                let (h, mi) = (m / 60, m % 60);
                if self.hours & (1 << h) != 0 && self.minutes & (1 << mi) != 0 {
                    return Some((day * 1440 + m) * 60);
                }
            }
        }
        None
    }

    fn day_matches(&self, day: u64) -> bool {
        let (_, m, d) = civil_from_days(day);
        if self.months & (1 << m) == 0 {
            return false;
        }
        // 1970-01-01 was a Thursday.
        let dow = (day + 4) % 7;
        let dom_ok = self.doms & (1 << d) != 0;
        let dow_ok = self.dows & (1 << dow) != 0;
        match (self.dom_any, self.dow_any) {
            (false, false) => dom_ok || dow_ok,
            _ => dom_ok && dow_ok,
        }
    }
}

fn parse_field(text: &str, f: &Field) -> Result<u64, CronError> {
    let bad = |why: String| CronError(format!("cron {} field {text:?}: {why}", f.name));
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| bad(format!("step {s:?} is not a number")))?;
                if step == 0 {
                    return Err(bad("a step must be at least 1".into()));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (f.min, f.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, f).map_err(&bad)?, value(b, f).map_err(&bad)?)
        } else {
            let v = value(range, f).map_err(&bad)?;
            // `5/15` means 5, 20, 35, 50: from 5 to the end by 15.
            (v, if step > 1 { f.max } else { v })
        };
        if lo > hi {
            return Err(bad(format!("the range {lo}-{hi} runs backwards")));
        }
        let mut v = lo;
        while v <= hi {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

fn value(s: &str, f: &Field) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = f.names.iter().position(|n| *n == lower) {
        // Names count from the field's first value (jan = 1, sun = 0).
        return u32::try_from(i).map(|i| i + f.min).map_err(|e| e.to_string());
    }
    let v: u32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v < f.min || v > f.max {
        return Err(format!("{v} is outside {}-{}", f.min, f.max));
    }
    Ok(v)
}

/// Days in month `m` (1-12) of year `y`.
fn days_in_month(y: u64, m: u32) -> u32 {
    match m {
        2 if y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A Unix time as `2026-12-08 14:05:00 UTC`, for status and logs.
pub fn utc_text(secs: u64) -> String {
    let (y, mo, d) = civil_from_days(secs / 86_400);
    let t = secs % 86_400;
    format!("{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC", t / 3600, t % 3600 / 60, t % 60)
}

/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01
/// (Howard Hinnant's `civil_from_days`, for days after the epoch).
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-08 01:53:00 UTC, a Tuesday.
    const T: u64 = 1_796_694_780;

    fn next(expr: &str, after: u64) -> u64 {
        Cron::parse(expr).expect("parses").next_after(after).expect("matches")
    }

    #[test]
    fn calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(utc_text(86_400 + 3661), "1970-01-02 01:01:01 UTC");
        assert_eq!(civil_from_days(T / 86_400), (2026, 12, 8));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn next_times() {
        assert_eq!(next("* * * * *", T), T + 60);
        assert_eq!(next("* * * * *", T + 1), T + 60);
        assert_eq!(next("*/15 * * * *", T), T + 7 * 60);
        let day = T / 86_400 * 86_400;
        assert_eq!(next("0 */6 * * *", T), day + 6 * 3600);
        // Midnight on the next Sunday (13 December).
        let sunday_midnight = (T / 86_400 + 5) * 86_400;
        assert_eq!(next("0 0 * * sun", T), sunday_midnight);
        assert_eq!(next("0 0 * * 7", T), sunday_midnight);
        // 1 January 2027.
        assert_eq!(next("0 0 1 jan *", T), (T / 86_400 + 24) * 86_400);
        // Day-of-month or day-of-week when both are restricted: the 10th
        // (Thursday) or a Wednesday (the 9th) → the 9th.
        assert_eq!(next("0 12 10 * wed", T), (T / 86_400 + 1) * 86_400 + 12 * 3600);
        // Feb 29: the next is in 2028.
        let t = next("0 0 29 2 *", T);
        assert_eq!(civil_from_days(t / 86_400), (2028, 2, 29));
        assert_eq!(next("5-10/5,30 1 * * *", T), day + 86_400 + 3600 + 5 * 60);
        assert_eq!(next("5-10/5,30 1 * * *", day + 3600 + 5 * 60), day + 3600 + 10 * 60);
    }

    #[test]
    fn malformed_expressions_are_refused() {
        for (expr, want) in [
            ("* * * *", "five fields"),
            ("* * * * * *", "five fields"),
            ("60 * * * *", "outside 0-59"),
            ("* 24 * * *", "outside 0-23"),
            ("* * 0 * *", "outside 1-31"),
            ("* * * 13 *", "outside 1-12"),
            ("* * * * 8", "outside 0-7"),
            ("*/0 * * * *", "at least 1"),
            ("10-5 * * * *", "backwards"),
            ("a * * * *", "not a number"),
            ("1,,2 * * * *", "not a number"),
            ("0 0 30 2 *", "never matches"),
            ("0 0 31 4,6 *", "never matches"),
        ] {
            let e = Cron::parse(expr).expect_err(expr);
            assert!(e.0.contains(want), "{expr}: {e}");
        }
    }
}
