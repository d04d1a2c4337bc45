//! Bandwidth limits: a token bucket shared by the transfers it governs.
//!
//! Owns the rate of one limit (the daemon's `rate_limit`, or one job's).
//! Every transfer governed by it debits what it read and sleeps off any
//! debt, in slices short enough to notice a pause or a shutdown.
//! Invariant: over any stretch longer than a second, the bytes read under
//! one limit stay within its rate (plus one second's burst).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One bandwidth limit.
#[derive(Debug)]
pub struct Throttle {
    /// Bytes per second.
    rate: f64,
    /// Tokens (bytes that may be read now; negative: debt) and when they
    /// were counted.
    state: Mutex<(f64, Instant)>,
}

impl Throttle {
    /// A limit of `bytes_per_sec` (at least 1).
    pub fn new(bytes_per_sec: u64) -> Throttle {
        Throttle { rate: bytes_per_sec.max(1) as f64, state: Mutex::new((0.0, Instant::now())) }
    }

    /// Debits `n` bytes read; how long the reader must wait before it
    /// reads on.
    pub fn debit(&self, n: usize) -> Duration {
        let mut s = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        // A second's worth of burst at most, so an idle limit does not
        // let a later transfer run unthrottled.
        s.0 = (s.0 + now.saturating_duration_since(s.1).as_secs_f64() * self.rate).min(self.rate);
        s.1 = now;
        s.0 -= n as f64;
        if s.0 < 0.0 { Duration::from_secs_f64(-s.0 / self.rate) } else { Duration::ZERO }
    }
}

/// Debits `n` bytes on every limit and sleeps off the longest debt,
/// returning early once `halted` says so.
pub fn pace(limits: &[std::sync::Arc<Throttle>], n: usize, halted: &dyn Fn() -> bool) {
    let wait = limits.iter().map(|t| t.debit(n)).max().unwrap_or(Duration::ZERO);
    let until = Instant::now() + wait;
    while !halted() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn reads_under_a_limit_keep_to_its_rate() {
        let t = Arc::new(Throttle::new(1_000_000));
        let start = Instant::now();
        for _ in 0..30 {
            pace(std::slice::from_ref(&t), 20_000, &|| false);
        }
        // 600 kB at 1 MB/s: 0.6 s, less the bucket's start.
        let took = start.elapsed().as_secs_f64();
        assert!((0.5..0.9).contains(&took), "{took}");
        assert_eq!(Throttle::new(10).debit(0), Duration::ZERO);
    }

    #[test]
    fn a_halt_ends_the_wait() {
        let t = Arc::new(Throttle::new(1));
        let start = Instant::now();
        pace(std::slice::from_ref(&t), 1000, &|| start.elapsed() > Duration::from_millis(100));
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
