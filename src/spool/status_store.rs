//! Status files: `state/<tid>/status.json`, written by the job's owner and
//! read by `spoolfetch status` in any process.

use std::fs;
use std::io;

use crate::durable::atomic_write;
use crate::job::{JobStatus, Tid};
use crate::spool::layout::Spool;

/// Writes a job's status atomically.
pub fn write_status(spool: &Spool, status: &JobStatus) -> io::Result<()> {
    let dir = spool.state_dir(status.tid);
    fs::create_dir_all(&dir)?;
    let body = serde_json::to_vec_pretty(status).map_err(io::Error::other)?;
    atomic_write(&dir.join("status.json"), &body)
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
