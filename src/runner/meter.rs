//! A job's byte progress for its status: bytes done with the files in
//! flight, the total once it is known, a smoothed rate and the ETA.
//!
//! Owns the rate's smoothing state (the runner samples the byte counter
//! each time it writes the status). Invariants: `bytes` never goes back
//! within a run; the total is given only when every remaining file's size
//! is known (announced by the API, or by the server of a file in flight),
//! never guessed; the ETA is given only with a total and a rate.

use std::time::Instant;

use crate::checkpoint::Work;
use crate::runner::run::Runner;

/// The rate's time constant, in seconds: a sample counts for about this
/// long, so a stall shows within a few seconds and one slow second does
/// not swing the figure.
const TAU_SECS: f64 = 4.0;
/// Samples closer together than this are not used for the rate.
const MIN_SAMPLE_SECS: f64 = 0.25;

/// The rate meter.
pub(super) struct Meter {
    /// Bytes the checkpoint counted when the runner started: the byte
    /// counter of this run adds to them.
    base: u64,
    /// The last sample: when, and the bytes then.
    last: Option<(Instant, u64)>,
    /// The smoothed rate, bytes per second.
    rate: f64,
}

impl Meter {
    /// A meter for a run that starts with `base` bytes done.
    pub(super) fn new(base: u64) -> Meter {
        Meter { base, last: None, rate: 0.0 }
    }

    /// Feeds the rate with `bytes` done now; a job that does not transfer
    /// (paused, ended) has no rate.
    pub(super) fn sample(&mut self, bytes: u64, moving: bool) {
        self.sample_at(Instant::now(), bytes, moving);
    }

    /// [`sample`](Self::sample) at `now`.
    fn sample_at(&mut self, now: Instant, bytes: u64, moving: bool) {
        if !moving {
            self.rate = 0.0;
            self.last = Some((now, bytes));
            return;
        }
        let Some((at, before)) = self.last else {
            self.last = Some((now, bytes));
            return;
        };
        let dt = now.duration_since(at).as_secs_f64();
        if dt < MIN_SAMPLE_SECS {
            return;
        }
        let now_rate = bytes.saturating_sub(before) as f64 / dt;
        if self.rate == 0.0 {
            // The first figure of a transfer: nothing to smooth it with
            // (climbing from 0 would promise hours at first).
            self.rate = now_rate;
        } else {
            let alpha = 1.0 - (-dt / TAU_SECS).exp();
            self.rate += alpha * (now_rate - self.rate);
        }
        self.last = Some((now, bytes));
    }

    /// The smoothed rate, bytes per second (below 1 B/s is 0).
    pub(super) fn rate(&self) -> u64 {
        self.rate as u64
    }
}

/// Seconds to transfer `remaining` bytes at `rate` bytes per second.
pub(super) fn eta(remaining: Option<u64>, rate: u64) -> Option<u64> {
    match (remaining, rate) {
        (Some(0), _) => Some(0),
        (Some(r), 1..) => Some(r.div_ceil(rate)),
        _ => None,
    }
}

impl Runner {
    /// Bytes this job has downloaded, the files in flight included.
    pub(super) fn bytes_done(&self) -> u64 {
        self.progress.bytes.max(self.status_file.meter.base + self.flags.bytes())
    }

    /// Bytes still to download, when every remaining file's size is known:
    /// the listing has ended, no remote task or live stream is left (their
    /// outputs are not known in advance), and each file either had its
    /// size announced or is in flight from a server that said it.
    pub(super) fn bytes_remaining(&self) -> Option<u64> {
        let p = &self.progress;
        if !p.listing_done {
            return None;
        }
        let transfers = self.flags.transfers();
        let mut left = 0u64;
        for (i, item) in p.items.live() {
            if p.permanent.contains(i) {
                continue;
            }
            left += match &item.work {
                Work::Fetch(f) => match transfers.get(i) {
                    Some(t) => t.total?.saturating_sub(t.offset),
                    None => f.size?,
                },
                Work::Inline(body) => body.len() as u64,
                Work::Copy(_) | Work::Skip(_) | Work::Fail(_) => 0,
                Work::Task(_) | Work::Stream(_) => return None,
            };
        }
        Some(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_rate_follows_the_bytes_and_stops_with_them() {
        let mut m = Meter::new(0);
        let mut t = Instant::now();
        m.sample_at(t, 0, true);
        let mut bytes = 0;
        for _ in 0..20 {
            t += Duration::from_secs(1);
            bytes += 1_000_000;
            m.sample_at(t, bytes, true);
        }
        assert_eq!(m.rate(), 1_000_000);
        // A slower second moves the figure part of the way only.
        m.sample_at(t + Duration::from_secs(1), bytes, true);
        let slowed = m.rate();
        assert!(slowed > 600_000 && slowed < 900_000, "rate {slowed}");
        t += Duration::from_secs(1);
        for _ in 0..30 {
            t += Duration::from_secs(1);
            bytes += 1_000_000;
            m.sample_at(t, bytes, true);
        }
        assert!(m.rate() > 990_000 && m.rate() <= 1_000_000, "rate {}", m.rate());
        // Samples too close together are not used.
        m.sample_at(t + Duration::from_millis(10), bytes + 1_000_000, true);
        assert!(m.rate() <= 1_000_000);
        m.sample_at(t, bytes, false);
        assert_eq!(m.rate(), 0);
        assert_eq!(eta(Some(3000), 1000), Some(3));
        assert_eq!(eta(Some(3001), 1000), Some(4));
        assert_eq!(eta(Some(0), 0), Some(0));
        assert_eq!(eta(None, 1000), None);
        assert_eq!(eta(Some(5), 0), None);
    }
}
