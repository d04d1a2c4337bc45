//! Status files: `state/<tid>/status.json`, written by the job's owner and
//! read by `spoolfetch status` in any process.

use std::fs;
use std::io;

use crate::durable::atomic_write_mode;
use crate::job::{JobStatus, Tid};
use crate::spool::layout::Spool;

/// Status files are padded with spaces to a multiple of this (one disk
/// block on most filesystems, so the padding costs no space).
const STATUS_BLOCK: usize = 4096;

/// Writes a job's status atomically.
///
/// On a full disk (or quota) the atomic write cannot create its temporary
/// file; the status is then written over the old one in place, within
/// the space that file already has, so that a job stopped by the full
/// disk does not go on looking "running". That is why a status file is
/// padded with spaces to a whole block (JSON allows trailing whitespace):
/// a longer status, with its reason, still fits, the file never has to
/// be cut, and a reader sees the old or the new status, whole.
pub fn write_status(spool: &Spool, status: &JobStatus) -> io::Result<()> {
    let dir = spool.ensure_state_dir(status.tid)?;
    let mut body = serde_json::to_vec_pretty(status).map_err(io::Error::other)?;
    let padded = (body.len() + 1).div_ceil(STATUS_BLOCK) * STATUS_BLOCK;
    body.resize(padded - 1, b' ');
    body.push(b'\n');
    let path = dir.join("status.json");
    match atomic_write_mode(&path, &body, 0o600) {
        Err(e) if is_out_of_space(&e) => overwrite_in_place(&path, &body).map_err(|_| e),
        other => other,
    }
}

/// Returns true if and only if `e` says the disk or the quota is full.
pub fn is_out_of_space(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

/// Writes `body` over the start of the existing file `path` when it fits
/// in the file's current length, padded to that length with spaces.
fn overwrite_in_place(path: &std::path::Path, body: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    if body.len() > len {
        return Err(io::Error::from(io::ErrorKind::StorageFull));
    }
    let mut padded = body.to_vec();
    padded.resize(len, b' ');
    file.write_all(&padded)?;
    file.sync_data()
}

/// Reads one job's status, `None` when it has none.
pub fn read_status(spool: &Spool, tid: Tid) -> io::Result<Option<JobStatus>> {
    match fs::read(spool.state_dir(tid).join("status.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads every job's status, ordered by TID. Unreadable ones are skipped
/// with a warning (a status file is advisory; the job files are the truth).
pub fn list_statuses(spool: &Spool) -> io::Result<Vec<JobStatus>> {
    let mut out = Vec::new();
    let root = spool.state_root();
    if !root.is_dir() {
        return Ok(out);
    }
    for entry in fs::read_dir(&root)? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse::<Tid>().ok()) else { continue };
        match read_status(spool, tid) {
            Ok(Some(s)) => out.push(s),
            Ok(None) => {}
            Err(e) => log::warn!("cannot read the status of job {tid}: {e}"),
        }
    }
    out.sort_by_key(|s| s.tid);
    Ok(out)
}
