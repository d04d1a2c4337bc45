//! Control requests: how `pause`, `resume` and `cancel` reach the daemon
//! that owns a job, from any process and across SMB/NFS shares.
//!
//! A request is the file `control/<tid>.json`, replaced atomically, so the
//! latest request for a job wins. The owning daemon applies it and removes
//! it; other daemons leave it alone. A request for a job whose daemon is
//! not running waits and is applied when it starts.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::durable::atomic_write_mode;
use crate::job::Tid;
use crate::spool::layout::Spool;

/// What a control request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Stop making requests, keep everything.
    Pause,
    /// Continue a paused job.
    Resume,
    /// Stop for good, keep completed files, end as cancelled.
    Cancel,
}

/// A pending request read from `control/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRequest {
    /// The job it is for.
    pub tid: Tid,
    /// What to do.
    pub action: Action,
    /// Its file, to remove once applied.
    pub path: PathBuf,
}

/// The on-disk form of a request.
#[derive(Debug, Serialize, Deserialize)]
struct RequestFile {
    /// What to do.
    action: Action,
}

/// Writes a request for `tid`, replacing any earlier one.
pub fn write_request(spool: &Spool, tid: Tid, action: Action) -> io::Result<PathBuf> {
    let path = spool.control_dir().join(format!("{tid}.json"));
    fs::create_dir_all(spool.control_dir())?;
    let body = serde_json::to_vec(&RequestFile { action }).map_err(io::Error::other)?;
    // A request holds no secret, and the daemon that applies it may run
    // as another user than the command that wrote it.
    atomic_write_mode(&path, &body, 0o644)?;
    Ok(path)
}

/// Reads every pending request. Unreadable or malformed ones are removed
/// with a warning, because nobody else could ever apply them.
pub fn read_requests(spool: &Spool) -> io::Result<Vec<ControlRequest>> {
    let mut out = Vec::new();
    let dir = spool.control_dir();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Some(tid) = name.strip_suffix(".json").and_then(|s| s.parse::<Tid>().ok()) else {
            continue;
        };
        let parsed = fs::read(entry.path()).ok().and_then(|b| serde_json::from_slice::<RequestFile>(&b).ok());
        match parsed {
            Some(r) => out.push(ControlRequest { tid, action: r.action, path: entry.path() }),
            None => {
                log::warn!("removing malformed control request {}", entry.path().display());
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    out.sort_by_key(|r| r.tid);
    Ok(out)
}

/// Removes an applied request.
pub fn remove_request(req: &ControlRequest) -> io::Result<()> {
    match fs::remove_file(&req.path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_request_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        spool.ensure("i").expect("ensure");
        write_request(&spool, 3, Action::Pause).expect("write");
        write_request(&spool, 3, Action::Resume).expect("write");
        write_request(&spool, 1, Action::Cancel).expect("write");
        let reqs = read_requests(&spool).expect("read");
        assert_eq!(
            reqs.iter().map(|r| (r.tid, r.action)).collect::<Vec<_>>(),
            vec![(1, Action::Cancel), (3, Action::Resume)]
        );
        remove_request(&reqs[0]).expect("remove");
        assert_eq!(read_requests(&spool).expect("read").len(), 1);
    }
}
