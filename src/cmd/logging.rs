//! Logging to stderr: timestamped lines on a terminal, in a file or a
//! pipe (cron), syslog priorities and no timestamps under journald.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Crates whose own debug and trace lines are not what an operator looks
/// for (the spool watcher's inotify plumbing, TLS handshakes): they log at
/// info and above whatever `RUST_LOG` or `-v` says.
const QUIET_CRATES: &[&str] = &["notify", "inotify", "mio", "rustls", "ureq", "ureq_proto"];

/// The message with control and format characters escaped: messages
/// carry job names, file names, URLs and server text, and none of them
/// may start a forged log line or drive the terminal.
fn escaped(rec: &log::Record<'_>) -> String {
    spoolfetch::naming::escape_display(&rec.args().to_string())
}

/// Sets up env_logger: `RUST_LOG` levels (default `info`; `-q` warnings
/// only, `-v` debug, `-vv` spoolfetch's trace, which win over `RUST_LOG`),
/// an RFC 3339 UTC timestamp on every line outside journald, and under
/// systemd no timestamp (journald adds its own) but a syslog priority
/// prefix, so that `journalctl -p warning` works.
pub fn init(quiet: bool, verbose: u8) {
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    // The most verbose level asked for anywhere, so that the cap below
    // never makes those crates louder than everything else.
    let most = levels(quiet, verbose).build().filter();
    let mut b = levels(quiet, verbose);
    // ureq logs whole request URIs at debug level, query included, and a
    // signed download URL carries its credential there; spoolfetch logs
    // every request outcome itself, through `display_url`. The others
    // would drown spoolfetch's own trace.
    for noisy in QUIET_CRATES {
        b.filter_module(noisy, most.min(log::LevelFilter::Info));
    }
    if under_journald {
        b.format(|buf, rec| {
            let prio = match rec.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            writeln!(buf, "<{prio}>{}", escaped(rec))
        });
    } else {
        b.format(|buf, rec| {
            writeln!(buf, "[{} {:<5}] {}", timestamp(SystemTime::now()), rec.level(), escaped(rec))
        });
    }
    let _ = b.try_init();
}

/// The level filters of `RUST_LOG` (default `info`) and the flags, which
/// win over it.
fn levels(quiet: bool, verbose: u8) -> env_logger::Builder {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    let flag = match (quiet, verbose) {
        (true, _) => Some("warn"),
        (false, 0) => None,
        (false, 1) => Some("debug"),
        (false, _) => Some("debug,spoolfetch=trace"),
    };
    if let Some(f) = flag {
        b.parse_filters(f);
    }
    b
}

/// `2026-12-08T00:20:05.123Z`: RFC 3339 in UTC with milliseconds, which
/// sorts as text and needs no time zone database.
fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |s: u64, ms: u64| timestamp(UNIX_EPOCH + Duration::from_millis(s * 1000 + ms));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_796_688_005, 123), "2026-12-08T00:00:05.123Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }
}
