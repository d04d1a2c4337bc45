//! Claiming jobs, allocating TIDs, and the final moves.
//!
//! A claim is one `rename(2)` of the dropped file into this instance's
//! work folder; on every filesystem we support only one rename of a given
//! source name can succeed, so only one daemon ever runs a job. On NFS a
//! retransmitted rename whose first reply was lost answers `ENOENT`
//! although it succeeded; [`claim`] checks the target for that case.
//! A claimed job file is made readable by its owner only (mode 0600),
//! and keeps that mode through `done/`, `failed/` and `retry/`: it may
//! hold tokens and headers.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::durable::{atomic_write, fsync_dir};
use crate::job::{JobState, JobStatus, Tid};
use crate::spool::ending::Ending;
use crate::spool::layout::Spool;
use crate::spool::scan::Candidate;

/// A job this instance owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Its TID.
    pub tid: Tid,
    /// Its file in `work/<instance>/`.
    pub path: PathBuf,
    /// The name it was dropped under, for example `art.json`.
    pub original: String,
}

impl Claimed {
    /// The original name without `.json`: the default TaskName.
    pub fn stem(&self) -> &str {
        self.original.strip_suffix(".json").unwrap_or(&self.original)
    }
}

/// Hands out TIDs that are unique within a spool, across daemons.
///
/// A TID is reserved by creating `tids/<n>` with `O_EXCL`, which is
/// exclusive on local disks, NFSv3+ and SMB. A reserved TID that lost its
/// claim race is kept for the next claim, so TIDs are only skipped when a
/// daemon dies between reserving and claiming.
#[derive(Debug, Default)]
pub struct TidAllocator {
    /// The next number to try, once the folder has been scanned.
    next: Option<Tid>,
    /// A TID reserved on disk but not yet used by a claim.
    reserved: Option<Tid>,
}

impl TidAllocator {
    /// Reserves a TID (or returns the one already reserved).
    fn reserve(&mut self, spool: &Spool, instance: &str) -> io::Result<Tid> {
        if let Some(t) = self.reserved {
            return Ok(t);
        }
        let dir = spool.tids_dir();
        let mut n = match self.next {
            Some(n) => n,
            None => next_tid(highest_in_use(spool)?)?,
        };
        loop {
            match OpenOptions::new().write(true).create_new(true).open(dir.join(n.to_string())) {
                Ok(mut f) => {
                    // The owner's name helps a person who investigates a
                    // shared spool; the reservation itself is the file,
                    // made durable so that a power cut cannot hand the
                    // same TID out twice.
                    let _ = writeln!(f, "{instance}");
                    f.sync_all()?;
                    fsync_dir(&dir)?;
                    self.reserved = Some(n);
                    self.next = Some(next_tid(n)?);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n = next_tid(n)?,
                Err(e) => return Err(e),
            }
        }
    }
}

/// The TID after `n`; running out of TIDs is an error, never a wrap to
/// an old number.
fn next_tid(n: Tid) -> io::Result<Tid> {
    n.checked_add(1).ok_or_else(|| io::Error::other("no TIDs left in this spool (the highest TID is in use)"))
}

/// The highest TID the spool knows of, 0 when none: reservations in
/// `tids/`, and the TIDs of state folders and of claimed, retried, done and
/// failed job files, so that a deleted `tids/` cannot hand out a TID that
/// still names an old job.
fn highest_in_use(spool: &Spool) -> io::Result<Tid> {
    let mut max = highest_tid(&spool.tids_dir())?;
    let mut dirs = vec![spool.state_root(), spool.retry_dir(), spool.done_dir(), spool.failed_dir()];
    if let Ok(rd) = fs::read_dir(spool.work_root()) {
        dirs.extend(rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for d in dirs {
        match highest_tid(&d) {
            Ok(n) => max = max.max(n),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(max)
}

/// The highest TID that starts an entry name in `dir` (`7`, `7.x.json`,
/// `7.stale-1700000000`), 0 when none.
fn highest_tid(dir: &Path) -> io::Result<Tid> {
    let mut max = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let digits = name.split('.').next().unwrap_or(name);
        if let Ok(n) = digits.parse::<Tid>() {
            max = max.max(n);
        }
    }
    Ok(max)
}

/// Returns true if and only if a job file of `tid` is claimed by some
/// instance (its file sits in a `work/<instance>/` folder).
pub fn tid_claimed(spool: &Spool, tid: Tid) -> bool {
    let prefix = format!("{tid}.");
    let Ok(instances) = fs::read_dir(spool.work_root()) else { return false };
    instances.filter_map(Result::ok).any(|inst| {
        fs::read_dir(inst.path()).is_ok_and(|rd| {
            rd.filter_map(Result::ok).any(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)))
        })
    })
}

/// Tries to claim `candidate` for `instance`.
///
/// Returns `Ok(None)` when the file is gone (another daemon won) or still
/// held open by a Windows writer over SMB (a sharing violation), in which
/// case a later scan tries again.
pub fn claim(
    spool: &Spool,
    instance: &str,
    candidate: &Candidate,
    tids: &mut TidAllocator,
) -> io::Result<Option<Claimed>> {
    let (tid, original) = match candidate.retry_tid {
        Some(t) => {
            let name = candidate.file_name();
            let original = Spool::parse_claimed_name(&name).map_or(name.clone(), |(_, o)| o.to_string());
            (t, original)
        }
        None => (tids.reserve(spool, instance)?, candidate.file_name()),
    };
    let target = spool.work_dir(instance).join(Spool::claimed_name(tid, &original));
    match fs::rename(&candidate.path, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // On NFS a retransmitted rename whose first reply was lost
            // answers ENOENT although it succeeded.
            if !target.exists() {
                return Ok(None);
            }
        }
        Err(e) if matches!(e.kind(), io::ErrorKind::PermissionDenied | io::ErrorKind::ResourceBusy) => {
            log::debug!("{} is still held by its writer: {e}", candidate.path.display());
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    if candidate.retry_tid.is_none() {
        tids.reserved = None;
    }
    make_private(&target);
    fsync_dir(&spool.work_dir(instance))?;
    if let Some(parent) = candidate.path.parent() {
        fsync_dir(parent)?;
    }
    Ok(Some(Claimed { tid, path: target, original }))
}

/// Makes a claimed job file readable by its owner only. The file is
/// opened without following a link and only a regular file is changed:
/// a planted link's target is never touched (intake then rejects the
/// link). A file owned by another user stays as it is; that is logged.
fn make_private(path: &Path) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let Ok(file) = OpenOptions::new().read(true).custom_flags(flags.bits() as i32).open(path) else { return };
    let Ok(meta) = file.metadata() else { return };
    if !meta.is_file() || meta.permissions().mode() & 0o077 == 0 {
        return;
    }
    if let Err(e) = file.set_permissions(fs::Permissions::from_mode(0o600)) {
        log::warn!("cannot make {} private (mode 0600): {e}", path.display());
    }
}

/// Lists the jobs left in this instance's work folder by an earlier run.
pub fn recover_own(spool: &Spool, instance: &str) -> io::Result<Vec<Claimed>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(spool.work_dir(instance))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if let Some((tid, original)) = Spool::parse_claimed_name(&name) {
            // Claimed by an older version, which left the mode as dropped.
            make_private(&entry.path());
            out.push(Claimed { tid, path: entry.path(), original: original.to_string() });
        }
    }
    out.sort_by_key(|c| c.tid);
    Ok(out)
}

/// Moves a claimed job to `done/` (`reason` None) or to `failed/` with
/// its reason written beside it as `<file>.reason`.
///
/// The reason is written before the move, so that a crash in between
/// never leaves a failed job without its reason.
pub fn finish(spool: &Spool, job: &Claimed, reason: Option<&str>) -> io::Result<PathBuf> {
    match reason {
        Some(reason) => write_reason(spool, job, reason)?,
        None => {
            // A job that failed before and now succeeded after `retry` must
            // not keep a stale reason in failed/.
            let _ = fs::remove_file(reason_path(spool, job));
        }
    }
    move_ended(spool, job, reason.is_some())
}

/// Where the reason of a failed job is kept: `failed/<file>.reason`.
pub(crate) fn reason_path(spool: &Spool, job: &Claimed) -> PathBuf {
    spool.failed_dir().join(format!("{}.reason", Spool::claimed_name(job.tid, &job.original)))
}

/// Writes the reason of a failed job beside its file in `failed/`.
pub(crate) fn write_reason(spool: &Spool, job: &Claimed, reason: &str) -> io::Result<()> {
    atomic_write(&reason_path(spool, job), format!("{reason}\n").as_bytes())
}

/// Moves a claimed job file to `failed/` or `done/` and makes the move
/// durable. A move that happened before a later step failed is not
/// redone: an end settled again after a full disk must not fail on its
/// own rename.
pub(crate) fn move_ended(spool: &Spool, job: &Claimed, failed: bool) -> io::Result<PathBuf> {
    let dir = if failed { spool.failed_dir() } else { spool.done_dir() };
    let target = dir.join(Spool::claimed_name(job.tid, &job.original));
    if fs::symlink_metadata(&job.path).is_ok() || fs::symlink_metadata(&target).is_err() {
        fs::rename(&job.path, &target)?;
    }
    fsync_dir(&dir)?;
    if let Some(parent) = job.path.parent() {
        fsync_dir(parent)?;
    }
    Ok(target)
}

/// Ends a claimed job that cannot run (a bad job file, a damaged
/// checkpoint): its status says failed with `reason`, and its file goes to
/// `failed/` with the reason beside it. Returns the end when the disk did
/// not take it, for the caller to settle later.
#[must_use = "an end that is not on disk must be settled later"]
pub fn reject(spool: &Spool, job: &Claimed, mut status: JobStatus, reason: &str) -> Option<Ending> {
    log::warn!("job {} ({}) rejected: {reason}", job.tid, job.original);
    status.state = JobState::Failed;
    status.error = Some(reason.to_string());
    Ending::new(job.clone(), status).settle_or_keep(spool)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(path: PathBuf, retry_tid: Option<Tid>) -> Candidate {
        Candidate { path, retry_tid, parses: true }
    }

    #[test]
    fn claim_allocates_unique_tids_and_moves() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        spool.ensure("a").expect("ensure");
        spool.ensure("b").expect("ensure");
        let mut ta = TidAllocator::default();
        let mut tb = TidAllocator::default();
        fs::write(dir.path().join("x.json"), "{}").expect("write");
        fs::write(dir.path().join("y.json"), "{}").expect("write");
        let cx = candidate(dir.path().join("x.json"), None);
        let c1 = claim(&spool, "a", &cx, &mut ta).expect("io").expect("claimed");
        assert_eq!(c1.tid, 1);
        // The second daemon loses the race for x.json but keeps its TID.
        assert!(claim(&spool, "b", &cx, &mut tb).expect("io").is_none());
        let cy = candidate(dir.path().join("y.json"), None);
        let c2 = claim(&spool, "b", &cy, &mut tb).expect("io").expect("claimed");
        assert_eq!(c2.tid, 2);
        assert_eq!(c2.original, "y.json");
        assert!(spool.work_dir("b").join("2.y.json").exists());
        assert_eq!(recover_own(&spool, "a").expect("list"), vec![c1.clone()]);

        let done = finish(&spool, &c1, None).expect("finish");
        assert!(done.ends_with("done/1.x.json"));
        let failed = finish(&spool, &c2, Some("bad thing")).expect("finish");
        assert!(failed.exists());
        let reason = fs::read_to_string(spool.failed_dir().join("2.y.json.reason")).expect("reason");
        assert_eq!(reason, "bad thing\n");
    }

    #[test]
    fn allocator_skips_tids_named_elsewhere_and_never_wraps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        spool.ensure("a").expect("ensure");
        fs::create_dir_all(spool.state_dir(41)).expect("mkdir");
        fs::write(spool.done_dir().join("12.x.json"), "{}").expect("write");
        fs::write(dir.path().join("x.json"), "{}").expect("write");
        let c = claim(&spool, "a", &candidate(dir.path().join("x.json"), None), &mut TidAllocator::default())
            .expect("io")
            .expect("claimed");
        assert_eq!(c.tid, 42);

        fs::write(spool.failed_dir().join(format!("{}.y.json", Tid::MAX)), "{}").expect("write");
        fs::write(dir.path().join("y.json"), "{}").expect("write");
        let r = claim(&spool, "a", &candidate(dir.path().join("y.json"), None), &mut TidAllocator::default());
        assert!(r.is_err(), "must refuse rather than wrap: {r:?}");
    }

    #[test]
    fn retry_keeps_tid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        spool.ensure("a").expect("ensure");
        let p = spool.retry_dir().join("7.art.json");
        fs::write(&p, "{}").expect("write");
        let c = claim(&spool, "a", &candidate(p, Some(7)), &mut TidAllocator::default())
            .expect("io")
            .expect("claimed");
        assert_eq!((c.tid, c.original.as_str(), c.stem()), (7, "art.json", "art"));
    }
}
