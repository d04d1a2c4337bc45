//! Logging to stderr, shaped for journald.

use std::io::Write;

/// The message with control and format characters escaped: messages
/// carry job names, file names, URLs and server text, and none of them
/// may start a forged log line or drive the terminal.
fn escaped(rec: &log::Record<'_>) -> String {
    spoolfetch::naming::escape_display(&rec.args().to_string())
}

/// Sets up env_logger: `RUST_LOG` levels (default `info`; `-q` warnings
/// only, `-v` debug, `-vv` spoolfetch's trace, which win over `RUST_LOG`),
/// no timestamps under systemd (journald adds its own) and a syslog
/// priority prefix there, so that `journalctl -p warning` works.
pub fn init(quiet: bool, verbose: u8) {
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    let flag = match (quiet, verbose) {
        (true, _) => Some("warn"),
        (false, 0) => None,
        (false, 1) => Some("debug"),
        // Trace for spoolfetch only: the watcher's and TLS internals at
        // trace would drown what an operator looks for.
        (false, _) => Some("debug,spoolfetch=trace"),
    };
    if let Some(f) = flag {
        b.parse_filters(f);
    }
    // ureq logs whole request URIs at debug level, query included, and a
    // signed download URL carries its credential there. spoolfetch logs
    // every request outcome itself, through `display_url`.
    for noisy in ["ureq", "ureq_proto"] {
        b.filter_module(noisy, log::LevelFilter::Info);
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
            let secs =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            writeln!(buf, "[{secs} {:<5}] {}", rec.level(), escaped(rec))
        });
    }
    let _ = b.try_init();
}
