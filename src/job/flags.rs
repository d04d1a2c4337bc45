//! The stop flag and live counter a job's runner shares with the pacer
//! and the pool.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Tells the threads working for a job to stop making requests.
///
/// The runner is the only writer: it raises the flag on pause, cancel and
/// shutdown, and lowers it on resume. Download workers check it between
/// chunks and the pacer before each call, so a pause takes effect within
/// one read timeout at worst and usually within milliseconds.
#[derive(Debug, Default)]
pub struct JobFlags {
    /// Raised while the job must make no requests.
    halt: AtomicBool,
    /// Bytes received by download workers for this job (live, for status).
    bytes: AtomicU64,
}

impl JobFlags {
    /// Returns true if and only if the job must stop making requests.
    pub fn halted(&self) -> bool {
        self.halt.load(Ordering::Acquire)
    }

    /// Raises or lowers the flag.
    pub fn set_halted(&self, v: bool) {
        self.halt.store(v, Ordering::Release);
    }

    /// Counts bytes received.
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}
