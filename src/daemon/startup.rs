//! Setting up and checking the spool a daemon serves.
//!
//! Owns the instance lock, the private `state_dir` with the download
//! archive, the sweep of temporaries left by killed processes, and the
//! check that the spool is still the one that was set up. Invariants: one
//! daemon per instance name holds the lock; a spool that vanished (an
//! unmounted share) is never recreated on the local disk; only the
//! daemon's own temporary names of dead processes are removed.

use std::fs::{File, OpenOptions};
use std::sync::Arc;

use crate::config::Config;
use crate::daemon::supervisor::DaemonError;
use crate::spool::Spool;

/// Why the spool this daemon serves is no longer the one it set up, if
/// it is not: its root or this instance's work folder is gone, or the
/// lock file it holds was removed or replaced (then a second daemon of
/// the same instance could start). The daemon then stops rather than
/// recreate the layout: a share that was unmounted must not silently
/// become a fresh, empty spool.
pub(super) fn layout_lost(spool: &Spool, instance: &str, lock: &File) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let root = spool.root();
    if !root.is_dir() {
        return Some(format!("the spool folder {} disappeared; stopping", root.display()));
    }
    let work = spool.work_dir(instance);
    if !work.is_dir() {
        return Some(format!("the work folder {} disappeared; stopping", work.display()));
    }
    let held = lock.metadata().ok()?;
    let same =
        std::fs::metadata(work.join(".lock")).is_ok_and(|m| m.dev() == held.dev() && m.ino() == held.ino());
    (!same).then(|| format!("the instance lock {} was removed; stopping", work.join(".lock").display()))
}

/// Removes the temporaries that killed processes left in the spool's
/// state folders (a status, a checkpoint snapshot, a reason, a control
/// request written at the moment of a `kill -9`) and in `state_dir`
/// (which holds tokens). Only the daemon's own temporary names of dead
/// processes go; the job files and every other name stay.
pub(super) fn sweep_state(spool: &Spool, config: &Config) {
    let mut n = crate::durable::remove_orphaned_temporaries_below(&spool.state_root(), 1);
    for dir in [
        spool.control_dir(),
        spool.failed_dir(),
        spool.done_dir(),
        spool.retry_dir(),
        config.state_dir.clone(),
    ] {
        n += crate::durable::remove_orphaned_temporaries(&dir).unwrap_or(0);
    }
    if n > 0 {
        log::info!("removed {n} temporary file(s) left in the spool by an interrupted run");
    }
}

/// Opens the download archive in `state_dir` (created 0700: it sits next
/// to credentials). A failure is logged and the daemon runs without it.
pub(super) fn open_archive(config: &Config) -> Option<Arc<crate::archive::Archive>> {
    if let Err(e) = create_private_dir(&config.state_dir) {
        log::warn!(
            "cannot create state_dir {}: {e}; running without a download archive",
            config.state_dir.display()
        );
        return None;
    }
    if let Some(fs) = crate::spool::detect_network_fs(&config.state_dir) {
        // SQLite's locking is unreliable on network filesystems, and the
        // credentials there are readable by whoever controls the share.
        log::warn!(
            "state_dir {} is on a network filesystem ({fs}); it should be on a local disk (the download \
             archive's SQLite locking is unreliable over {fs})",
            config.state_dir.display()
        );
    }
    match crate::archive::Archive::open(&config.state_dir.join("archive.sqlite3")) {
        Ok(a) => Some(Arc::new(a)),
        Err(e) => {
            log::warn!("{e}; running without a download archive");
            None
        }
    }
}

/// Creates a folder readable by its owner only.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.is_dir() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        log::warn!(
            "state_dir {} is readable by others (mode {:o}); it holds credentials",
            dir.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// Takes this instance's lock on the spool, so that two daemons started
/// with the same instance name cannot both run its jobs.
pub(super) fn lock_instance(spool: &Spool, instance: &str) -> Result<File, DaemonError> {
    let path = spool.work_dir(instance).join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| DaemonError::Spool(format!("cannot open {}: {e}", path.display())))?;
    // `spoolfetch status` probes the lock with a shared lock it releases
    // at once: a refusal is only taken for another daemon when it lasts.
    let mut result = rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive);
    for _ in 0..10 {
        if result != Err(rustix::io::Errno::WOULDBLOCK) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        result = rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive);
    }
    match result {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            return Err(DaemonError::Locked(format!(
                "another spoolfetch with instance name {instance:?} is already running on this spool (set a different `instance`)"
            )));
        }
        // Some network filesystems have no locking (NFS without lockd);
        // the spool still works, but nothing guards the instance name.
        Err(e) => log::warn!(
            "cannot lock {} ({e}); make sure only one daemon uses instance {instance:?} on this spool",
            path.display()
        ),
    }
    Ok(file)
}
