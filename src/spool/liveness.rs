//! Whether the daemon of an instance is alive, as its instance lock tells.
//!
//! A running daemon holds an exclusive `flock` on `work/<instance>/.lock`
//! for its whole life, and the kernel (or the file server) drops it when
//! the process dies, even by `kill -9`. Asking for a shared lock without
//! waiting therefore answers the question without a pid file that could
//! be stale: refused means alive; granted (and released at once) means no
//! daemon of that instance runs. Nothing is created or written here.

use std::fs::File;

use super::layout::Spool;

/// What the instance lock says about a daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// A daemon of the instance holds its lock.
    Alive,
    /// No daemon of the instance runs (the lock is free or was never made).
    Stopped,
    /// The filesystem cannot tell (no locking, no permission).
    Unknown,
}

impl Liveness {
    /// `Some(true)` alive, `Some(false)` stopped, `None` unknown.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            Liveness::Alive => Some(true),
            Liveness::Stopped => Some(false),
            Liveness::Unknown => None,
        }
    }
}

/// Probes the lock of `instance` on `spool`.
pub fn instance_liveness(spool: &Spool, instance: &str) -> Liveness {
    if instance.is_empty() || instance.contains('/') || instance.starts_with('.') {
        return Liveness::Unknown;
    }
    let path = spool.work_dir(instance).join(".lock");
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Liveness::Stopped,
        Err(_) => return Liveness::Unknown,
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        // Granted: nobody holds it exclusively. Closing the file releases
        // it at once.
        Ok(()) => Liveness::Stopped,
        Err(rustix::io::Errno::WOULDBLOCK) => Liveness::Alive,
        Err(_) => Liveness::Unknown,
    }
}

/// The instances that have a work folder on the spool, sorted.
pub fn instances(spool: &Spool) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(spool.work_root()) else { return Vec::new() };
    let mut v: Vec<String> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_tells() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        assert_eq!(instance_liveness(&spool, "a"), Liveness::Stopped, "no lock file");
        spool.ensure("a").expect("ensure");
        let path = spool.work_dir("a").join(".lock");
        let held = File::create(&path).expect("lock file");
        assert_eq!(instance_liveness(&spool, "a"), Liveness::Stopped, "free");
        rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).expect("lock");
        assert_eq!(instance_liveness(&spool, "a"), Liveness::Alive);
        assert_eq!(instance_liveness(&spool, "a"), Liveness::Alive, "a probe leaves the holder alone");
        drop(held);
        assert_eq!(instance_liveness(&spool, "a"), Liveness::Stopped, "released when the holder goes");
        assert_eq!(instances(&spool), vec!["a".to_string()]);
    }
}
