//! The stop flag and live counters a job's runner shares with the pacer
//! and the pool.
//!
//! Owns what the status of a running job sees of the transfers under way:
//! bytes received (an atomic) and, per file in flight, the bytes on disk
//! and the size when the server or the API announced it (behind a mutex
//! held for one map update, never across I/O). Invariant: a worker only
//! inserts or updates a file's entry; the runner removes it when it
//! handles that file's outcome, so a file is never missing between its
//! last byte and its report.

use std::collections::BTreeMap;
use std::sync::Mutex;
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
    /// Files in flight, by item: bytes on disk and the size when known.
    transfers: Mutex<BTreeMap<u64, Transfer>>,
}

/// One file in flight, as the status sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transfer {
    /// Bytes of the file on disk (a resumed partial included).
    pub offset: u64,
    /// The file's whole size, when announced (Content-Length or the API).
    pub total: Option<u64>,
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

    /// A worker's news of item `item`: `offset` bytes on disk, of `total`.
    pub fn set_transfer(&self, item: u64, offset: u64, total: Option<u64>) {
        if let Ok(mut t) = self.transfers.lock() {
            t.insert(item, Transfer { offset, total });
        }
    }

    /// The runner has the outcome of item `item`: it is no longer in flight.
    pub fn end_transfer(&self, item: u64) {
        if let Ok(mut t) = self.transfers.lock() {
            t.remove(&item);
        }
    }

    /// The files in flight.
    pub fn transfers(&self) -> BTreeMap<u64, Transfer> {
        self.transfers.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_stay_until_the_runner_ends_them() {
        let f = JobFlags::default();
        f.set_transfer(3, 10, Some(100));
        f.set_transfer(3, 60, Some(100));
        assert_eq!(f.transfers().get(&3), Some(&Transfer { offset: 60, total: Some(100) }));
        f.end_transfer(3);
        assert!(f.transfers().is_empty());
    }
}
