//! A job's recurrence: the common keys `every`, `cron` and `jitter`.
//!
//! Owns [`Recurrence`] and the schedule computation. The invariants: a
//! `Recurrence` exists only for a period of at least one second or a
//! cron expression that matches a real date, never both; and a job's
//! slots are a pure function of its rule, its TID and the time, so a
//! restart, a second daemon or a clock that jumps computes the same
//! slots, and a slot is identified by its start time (a run number that
//! only grows).
//!
//! Slots. `every` slots are anchored on the Unix epoch: `k × period +
//! offset`, so a `1d` job runs at midnight UTC plus its offset. `cron`
//! slots are the expression's matching minutes in UTC plus the offset.
//! The offset is deterministic, drawn from the job's TID in
//! `0..=jitter`; without `jitter` it is at most a tenth of the period
//! (of the gap between two cron times), and at most ten minutes, so many
//! recurring jobs of one account spread over their window.

use std::fmt;

use serde_json::{Map, Value};

use super::cron::Cron;
use super::status::Tid;

/// Longest default spread of a job's slots.
const MAX_DEFAULT_JITTER: u64 = 600;

/// Longest `jitter` with `cron` (the slot search steps back this far).
const MAX_CRON_JITTER: u64 = 86_400;

/// What makes a job recur.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `every`: a period in seconds, at least one.
    Every(u64),
    /// `cron`: a five-field expression in UTC.
    Cron(Box<Cron>),
}

/// A job's recurrence: its rule and the jitter it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    /// `every` or `cron`.
    pub rule: Rule,
    /// `jitter` in seconds when given: the offset's upper bound.
    pub jitter: Option<u64>,
}

/// Why `every`, `cron` or `jitter` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurError(pub String);

impl fmt::Display for RecurError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RecurError {}

/// Parses a duration: one or more `<number><unit>` with units `s`, `m`,
/// `h`, `d`, `w` (`"90s"`, `"1h30m"`, `"1d"`). Zero is allowed here;
/// callers refuse it where it makes no sense.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("an empty duration".into());
    }
    if t.starts_with('-') {
        return Err(format!("{t:?} is negative"));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(format!("{t:?} is not a duration like \"30m\", \"6h\" or \"1d\"")),
        };
        let n: u64 =
            digits.parse().map_err(|_| format!("{t:?} is not a duration like \"30m\", \"6h\" or \"1d\""))?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{t:?} is too long"))?;
    }
    if !digits.is_empty() {
        return Err(format!("{t:?} has no unit (write \"{digits}s\", \"{digits}m\", …)"));
    }
    // Beyond a century nothing would ever run.
    if total > 100 * 366 * 86_400 {
        return Err(format!("{t:?} is too long"));
    }
    Ok(total)
}

/// Takes `every`, `cron` and `jitter` out of a job object. `None` when
/// the job does not recur.
pub fn take_recurrence(obj: &mut Map<String, Value>) -> Result<Option<Recurrence>, RecurError> {
    let every = obj.remove("every");
    let cron = obj.remove("cron");
    let jitter = obj.remove("jitter");
    let text = |key: &str, v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) if key != "cron" => Err(RecurError(format!(
            "key `{key}` must be a duration with a unit like \"{n}s\" or \"6h\", not the number {n}"
        ))),
        other => Err(RecurError(format!(
            "key `{key}` must be a string like \"6h\"{}, not {}",
            if key == "cron" { " or \"0 */6 * * *\"" } else { "" },
            super::spec::kind_of(other)
        ))),
    };
    let rule = match (every, cron) {
        (None | Some(Value::Null), None | Some(Value::Null)) => {
            if jitter.as_ref().is_some_and(|j| !j.is_null()) {
                return Err(RecurError("key `jitter` needs `every` or `cron`".into()));
            }
            return Ok(None);
        }
        (Some(e), Some(c)) if !e.is_null() && !c.is_null() => {
            return Err(RecurError("give either `every` or `cron`, not both".into()));
        }
        (Some(e), _) if !e.is_null() => {
            let s = text("every", &e)?;
            let secs = parse_duration(&s).map_err(|why| RecurError(format!("key `every`: {why}")))?;
            if secs == 0 {
                return Err(RecurError(format!(
                    "key `every`: {s:?} is zero; the period is at least one second"
                )));
            }
            Rule::Every(secs)
        }
        (_, Some(c)) => {
            let s = text("cron", &c)?;
            Rule::Cron(Box::new(Cron::parse(&s).map_err(|e| RecurError(format!("key `cron`: {e}")))?))
        }
        _ => return Ok(None),
    };
    let jitter = match jitter {
        None | Some(Value::Null) => None,
        Some(j) => {
            let s = text("jitter", &j)?;
            let secs = parse_duration(&s).map_err(|why| RecurError(format!("key `jitter`: {why}")))?;
            if let Rule::Every(period) = rule
                && secs >= period
            {
                return Err(RecurError(format!("key `jitter`: {s:?} is not shorter than the period")));
            }
            if matches!(rule, Rule::Cron(_)) && secs > MAX_CRON_JITTER {
                return Err(RecurError(format!(
                    "key `jitter`: {s:?} is longer than a day, the most with `cron`"
                )));
            }
            Some(secs)
        }
    };
    Ok(Some(Recurrence { rule, jitter }))
}

impl Recurrence {
    /// The job's offset from its rule's times: deterministic from the TID.
    pub fn offset(&self, tid: Tid, gap: u64) -> u64 {
        let bound = self.jitter.unwrap_or_else(|| (gap / 10).min(MAX_DEFAULT_JITTER));
        if bound == 0 { 0 } else { spread(tid) % (bound + 1) }
    }

    /// The first slot of job `tid` strictly after `after` (Unix seconds).
    pub fn next_after(&self, tid: Tid, after: u64) -> Option<u64> {
        match &self.rule {
            Rule::Every(period) => {
                let off = self.offset(tid, *period);
                // Slots are k × period + off with off < period.
                let k = after.saturating_sub(off) / period + 1;
                let slot = k.checked_mul(*period)?.checked_add(off)?;
                // `after` may sit before the first offset slot of k - 1.
                let earlier = slot - period;
                Some(if earlier > after { earlier } else { slot })
            }
            Rule::Cron(cron) => {
                // The offset is at most a tenth of the gap between two
                // cron times, so search from `after - bound` and skip
                // slots that are not past `after`.
                let first =
                    cron.next_after(after.saturating_sub(MAX_DEFAULT_JITTER.max(self.jitter.unwrap_or(0))))?;
                let mut t = first;
                for _ in 0..100_000 {
                    let following = cron.next_after(t)?;
                    let slot = t + self.offset(tid, following - t);
                    if slot > after {
                        return Some(slot);
                    }
                    t = following;
                }
                None
            }
        }
    }
}

/// One ended run of a recurring job, as its history keeps it and its
/// status shows the last one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    /// The run's number, from 1; it only grows.
    pub run: u64,
    /// When the run started (Unix seconds).
    pub started: u64,
    /// When it ended (Unix seconds).
    pub ended: u64,
    /// `done` or `failed`.
    pub state: super::JobState,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl fmt::Display for Recurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Rule::Every(secs) => write!(f, "every {}", show_secs(*secs))?,
            Rule::Cron(c) => write!(f, "cron {} (UTC)", c.text())?,
        }
        if let Some(j) = self.jitter {
            write!(f, ", jitter {}", show_secs(j))?;
        }
        Ok(())
    }
}

/// A period in the units a user writes (`1d6h`, `90s` → `1m30s`).
fn show_secs(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut left = secs;
    for (unit, n) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if left >= n {
            out.push_str(&format!("{}{unit}", left / n));
            left %= n;
        }
    }
    out
}

/// When a recurring job's next run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Now: a slot after the last started run has come (one run however
    /// many slots passed).
    Now,
    /// At this slot (Unix seconds).
    At(u64),
    /// Never: the rule has no slot left (cannot happen for a checked
    /// rule within the search window; the caller ends the series).
    Never,
}

impl Recurrence {
    /// Whether job `tid` runs now, given the mark of its last started run
    /// (`None` before the first run, which starts at once).
    ///
    /// The mark is the clock when that run started, persisted before the
    /// run starts; the next run is the first slot after it. A daemon that
    /// was down for many slots therefore runs once, and a clock that
    /// jumps back to before the mark starts nothing until it passes the
    /// next slot after the mark again.
    pub fn due(&self, tid: Tid, last_started: Option<u64>, now: u64) -> Due {
        let Some(mark) = last_started else { return Due::Now };
        match self.next_after(tid, mark) {
            Some(slot) if slot <= now => Due::Now,
            Some(slot) => Due::At(slot),
            None => Due::Never,
        }
    }
}

/// A well-mixed number from a TID (SplitMix64's finalizer).
fn spread(tid: Tid) -> u64 {
    let mut z = tid.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn take(v: Value) -> Result<Option<Recurrence>, RecurError> {
        let Value::Object(mut obj) = v else { panic!("object") };
        take_recurrence(&mut obj)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(1));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("6h"), Ok(21_600));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400));
        assert_eq!(parse_duration("0s"), Ok(0));
        for (bad, want) in [
            ("-1h", "negative"),
            ("", "empty"),
            ("soon", "not a duration"),
            ("10", "no unit"),
            ("1h30", "no unit"),
            ("h", "not a duration"),
            ("1.5h", "not a duration"),
            ("99999999999999999999s", "not a duration"),
            ("999999999999w", "too long"),
        ] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(take(json!({})), Ok(None));
        let r = take(json!({"every": "6h", "jitter": "5m"})).expect("ok").expect("recurs");
        assert_eq!(r, Recurrence { rule: Rule::Every(21_600), jitter: Some(300) });
        assert!(matches!(
            take(json!({"cron": "0 */6 * * *"})),
            Ok(Some(Recurrence { rule: Rule::Cron(_), .. }))
        ));
        for (v, want) in [
            (json!({"every": "0s"}), "at least one second"),
            (json!({"every": "-1h"}), "negative"),
            (json!({"every": "garbage"}), "not a duration"),
            (json!({"every": 60}), "like \"60s\""),
            (json!({"cron": "61 * * * *"}), "key `cron`: cron minute field"),
            (json!({"cron": "* * *"}), "five fields"),
            (json!({"every": "1h", "cron": "* * * * *"}), "not both"),
            (json!({"jitter": "1m"}), "needs `every` or `cron`"),
            (json!({"every": "1m", "jitter": "1m"}), "not shorter than the period"),
            (json!({"every": "1h", "jitter": "x"}), "key `jitter`"),
            (json!({"cron": "* * * * *", "jitter": "2d"}), "longer than a day"),
        ] {
            let e = take(v.clone()).expect_err(&v.to_string());
            assert!(e.0.contains(want), "{v}: {e}");
        }
    }

    #[test]
    fn every_slots() {
        let r = Recurrence { rule: Rule::Every(3600), jitter: Some(0) };
        assert_eq!(r.next_after(1, 0), Some(3600));
        assert_eq!(r.next_after(1, 3599), Some(3600));
        assert_eq!(r.next_after(1, 3600), Some(7200));
        // A one-second period: every second, no spread.
        let s = Recurrence { rule: Rule::Every(1), jitter: None };
        assert_eq!(s.next_after(7, 100), Some(101));
        // Default spread: at most a tenth of the period, at most 10 min.
        let d = Recurrence { rule: Rule::Every(21_600), jitter: None };
        let offsets: Vec<u64> =
            (1..200).map(|tid| d.next_after(tid, 1_000_000).expect("slot") % 21_600).collect();
        assert!(offsets.iter().all(|o| *o <= 600), "{offsets:?}");
        let distinct: std::collections::BTreeSet<_> = offsets.iter().collect();
        assert!(distinct.len() > 50, "spread over the window: {distinct:?}");
        // Deterministic, strictly after, never more than a period away.
        for tid in 1..50 {
            for after in [0, 1, 999, 21_599, 21_600, 1_796_694_780] {
                let slot = d.next_after(tid, after).expect("slot");
                assert_eq!(Some(slot), d.next_after(tid, after));
                assert!(slot > after && slot - after <= 21_600, "tid {tid} after {after}: {slot}");
                assert_eq!(d.next_after(tid, slot - 1), Some(slot));
            }
        }
    }

    #[test]
    fn a_run_is_due_once_and_never_twice() {
        let r = Recurrence { rule: Rule::Every(3600), jitter: Some(0) };
        // The first run starts at once.
        assert_eq!(r.due(1, None, 10), Due::Now);
        // Started at 10: the next slot is 3600.
        assert_eq!(r.due(1, Some(10), 3599), Due::At(3600));
        assert_eq!(r.due(1, Some(10), 3600), Due::Now);
        // Down for a day: one run now, then the next slot after it.
        assert_eq!(r.due(1, Some(10), 90_000), Due::Now);
        assert_eq!(r.due(1, Some(90_000), 90_001), Due::At(90_000 / 3600 * 3600 + 3600));
        // The clock jumps back an hour after a start at 7200: nothing is
        // due until the slot after the mark comes again.
        assert_eq!(r.due(1, Some(7200), 7200 - 3600), Due::At(10_800));
        assert_eq!(r.due(1, Some(7200), 7201), Due::At(10_800));
    }

    #[test]
    fn rules_read_as_written() {
        let r = take(json!({"every": "90m", "jitter": "30s"})).expect("ok").expect("recurs");
        assert_eq!(r.to_string(), "every 1h30m, jitter 30s");
        let r = take(json!({"cron": "0  */6 * * *"})).expect("ok").expect("recurs");
        assert_eq!(r.to_string(), "cron 0 */6 * * * (UTC)");
        assert_eq!(show_secs(86_400 * 8 + 1), "1w1d1s");
    }

    #[test]
    fn cron_slots() {
        let t = 1_796_694_780; // 2026-12-08 01:53 UTC
        let day = t / 86_400 * 86_400;
        let r = Recurrence {
            rule: Rule::Cron(Box::new(Cron::parse("0 */6 * * *").expect("cron"))),
            jitter: Some(0),
        };
        assert_eq!(r.next_after(3, t), Some(day + 6 * 3600));
        assert_eq!(r.next_after(3, day + 6 * 3600), Some(day + 12 * 3600));
        let d = Recurrence {
            rule: Rule::Cron(Box::new(Cron::parse("0 */6 * * *").expect("cron"))),
            jitter: None,
        };
        for tid in 1..50 {
            let slot = d.next_after(tid, t).expect("slot");
            assert!(slot >= day + 6 * 3600 && slot <= day + 6 * 3600 + 600, "{tid}: {slot}");
            assert!(d.next_after(tid, slot).expect("next") > slot);
        }
        // The longest jitter on the densest expression still finds a slot.
        let w = Recurrence {
            rule: Rule::Cron(Box::new(Cron::parse("* * * * *").expect("cron"))),
            jitter: Some(86_400),
        };
        for tid in 1..5 {
            let slot = w.next_after(tid, t).expect("slot");
            assert!(slot > t && slot <= t + 86_400 + 60, "{tid}: {slot}");
        }
    }
}
