//! The slow-transfer cut of one download: curl's `--speed-limit` and
//! `--speed-time`, forgiving time the process itself did not run.
//!
//! Owns no I/O; the body copy asks it after every read whether the
//! transfer has become too slow to keep.

use std::time::{Duration, Instant};

use crate::download::task::DownloadTask;

/// curl's `--speed-limit`/`--speed-time` for one transfer: a transfer
/// whose average over a window of `min_speed_time` stays below
/// `min_speed` is cut (the partial is kept and resumed later), so a server
/// that drips a byte a second cannot hold a download thread for days. The
/// read timeout alone only catches a complete stall.
pub(super) struct SpeedWatch {
    /// Bytes per second; 0 turns the check off.
    min: u64,
    /// The window.
    window: Duration,
    /// The longest a single read may block (the read timeout); a longer gap
    /// between two turns means the process itself was stopped (SIGSTOP, a
    /// suspended VM), which must not count against the server.
    max_gap: Duration,
    /// Start of the current window and the bytes received before it.
    start: Instant,
    start_bytes: u64,
    /// The previous turn.
    last: Instant,
}

impl SpeedWatch {
    pub(super) fn new(task: &DownloadTask) -> SpeedWatch {
        let now = Instant::now();
        SpeedWatch {
            min: task.min_speed,
            window: task.min_speed_time,
            max_gap: task.min_speed_time + task.timeout,
            start: now,
            start_bytes: 0,
            last: now,
        }
    }

    /// Given the bytes received so far, returns the reason to cut the
    /// transfer, if it is too slow.
    pub(super) fn too_slow(&mut self, received: u64) -> Option<String> {
        if self.min == 0 || self.window.is_zero() {
            return None;
        }
        let now = Instant::now();
        if now.duration_since(self.last) > self.max_gap {
            // The clock ran while we could not: start the window again.
            self.start = now;
            self.start_bytes = received;
        }
        self.last = now;
        let spent = now.duration_since(self.start);
        if spent < self.window {
            return None;
        }
        let got = received - self.start_bytes;
        let want = (self.min as f64 * spent.as_secs_f64()) as u64;
        if got < want {
            return Some(format!(
                "slower than {}/s for {} s ({} bytes in {:.0} s); will retry",
                human_bytes(self.min),
                self.window.as_secs(),
                got,
                spent.as_secs_f64()
            ));
        }
        self.start = now;
        self.start_bytes = received;
        None
    }
}

/// `1024` → `1.0 KiB`, for reasons.
fn human_bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_watch_cuts_slow_transfers_and_forgives_a_stopped_process() {
        let watch = |min: u64, window_ms: u64| {
            let now = Instant::now();
            SpeedWatch {
                min,
                window: Duration::from_millis(window_ms),
                max_gap: Duration::from_millis(window_ms * 4),
                start: now,
                start_bytes: 0,
                last: now,
            }
        };
        // 10 bytes in a window of 50 ms is far below 1 KiB/s.
        let mut w = watch(1024, 50);
        assert!(w.too_slow(5).is_none());
        std::thread::sleep(Duration::from_millis(60));
        let reason = w.too_slow(10).expect("cut");
        assert!(reason.contains("slower than 1.0 KiB/s"), "{reason}");
        // Fast enough: the window starts again.
        let mut w = watch(10, 50);
        std::thread::sleep(Duration::from_millis(60));
        assert!(w.too_slow(1000).is_none());
        // Off.
        let mut w = watch(0, 50);
        std::thread::sleep(Duration::from_millis(60));
        assert!(w.too_slow(0).is_none());
        // A gap longer than a read can block (the process was stopped)
        // restarts the window instead of cutting.
        let mut w = watch(1024, 20);
        std::thread::sleep(Duration::from_millis(100));
        assert!(w.too_slow(1).is_none());
    }
}
