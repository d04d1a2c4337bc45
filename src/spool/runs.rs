//! A recurring job's current run: `state/<tid>/run.json`, and where a
//! run stands after a crash.
//!
//! Owns the run mark (the number and start time of the last run that was
//! begun) and the reset of a job's progress between runs. Invariants: a
//! run's mark is on disk before the run does anything; the previous run's
//! checkpoint is removed before the new mark is written, so a crash in
//! between leaves the old mark (that run ended, see the history) and the
//! reset is simply done again; a run has ended exactly when the history's
//! last record carries its number ([`phase`]), so neither a restart nor a
//! second look ever starts a run twice or loses a run's outcome.

use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::job::RunRecord;

/// The run mark's file name in a job's state folder.
pub const RUN_FILE: &str = "run.json";

/// The mark's format version.
const RUN_VERSION: u32 = 1;

/// The last run that was begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMark {
    /// Format version.
    pub version: u32,
    /// The run's number, from 1.
    pub run: u64,
    /// When it began (Unix seconds): the schedule's next slot is the first
    /// one after it.
    pub started: u64,
}

/// Where a recurring job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No run was ever begun.
    First,
    /// This run was begun and has not ended: it resumes from its
    /// checkpoint.
    InProgress(RunMark),
    /// This run ended (its record is in the history); the next one waits
    /// for its slot.
    Ended(RunMark),
}

/// Reads the run mark; `None` when no run was begun.
pub fn read_mark(state_dir: &Path) -> io::Result<Option<RunMark>> {
    let bytes = match crate::durable::open_regular_nofollow(&state_dir.join(RUN_FILE)) {
        Ok(mut f) => {
            let mut b = Vec::new();
            io::Read::read_to_end(&mut f, &mut b)?;
            b
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mark: RunMark = serde_json::from_slice(&bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{RUN_FILE}: {e}")))?;
    if mark.version > RUN_VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{RUN_FILE} was written by a newer spoolfetch (format {})", mark.version),
        ));
    }
    Ok(Some(mark))
}

/// Where the job stands, from its mark and its history's last record.
pub fn phase(mark: Option<RunMark>, last: Option<&RunRecord>) -> Phase {
    match mark {
        None => Phase::First,
        Some(m) if last.is_some_and(|r| r.run >= m.run) => Phase::Ended(m),
        Some(m) => Phase::InProgress(m),
    }
}

/// Begins run `run` at `started`: the previous run's progress goes, then
/// the mark is written. Returns the mark.
pub fn begin_run(state_dir: &Path, run: u64, started: u64) -> io::Result<RunMark> {
    reset_progress(state_dir)?;
    let mark = RunMark { version: RUN_VERSION, run, started };
    let bytes = serde_json::to_vec(&mark).map_err(io::Error::other)?;
    crate::durable::atomic_write(&state_dir.join(RUN_FILE), &bytes)?;
    Ok(mark)
}

/// Removes what a run recorded of its own progress (the checkpoint, its
/// journals, the per-file report, remote tasks' scratch files), keeping
/// the job's identity, status, history and mark. Made durable before it
/// returns; removing what is already gone is not an error.
pub fn reset_progress(state_dir: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(state_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut removed = false;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let progress = name == "checkpoint.json"
            || name == crate::checkpoint::FILES_LOG
            || name.starts_with("journal.")
            || name == "scratch";
        if !progress {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
        removed = true;
    }
    if removed {
        crate::durable::fsync_dir(state_dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobState;

    fn rec(run: u64) -> RunRecord {
        RunRecord { run, started: 10 * run, ended: 10 * run + 1, state: JobState::Done, error: None }
    }

    #[test]
    fn the_phase_follows_the_mark_and_the_history() {
        let m = |run| RunMark { version: 1, run, started: 10 * run };
        assert_eq!(phase(None, None), Phase::First);
        assert_eq!(phase(Some(m(1)), None), Phase::InProgress(m(1)));
        assert_eq!(phase(Some(m(2)), Some(&rec(1))), Phase::InProgress(m(2)));
        assert_eq!(phase(Some(m(2)), Some(&rec(2))), Phase::Ended(m(2)));
    }

    #[test]
    fn beginning_a_run_removes_the_last_runs_progress_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for f in
            ["checkpoint.json", "journal.3", "files.jsonl", "identity.json", "status.json", "history.jsonl"]
        {
            fs::write(d.join(f), b"{}").expect("write");
        }
        fs::create_dir(d.join("scratch")).expect("mkdir");
        fs::write(d.join("scratch").join("x"), b"1").expect("write");
        assert_eq!(read_mark(d).expect("read"), None);
        let mark = begin_run(d, 4, 1234).expect("begin");
        assert_eq!(read_mark(d).expect("read"), Some(mark));
        assert_eq!((mark.run, mark.started), (4, 1234));
        let mut left: Vec<String> = fs::read_dir(d)
            .expect("ls")
            .map(|e| e.expect("e").file_name().to_string_lossy().into())
            .collect();
        left.sort();
        assert_eq!(left, ["history.jsonl", "identity.json", "run.json", "status.json"]);
        // Again (a crash after the reset): nothing to remove is fine.
        begin_run(d, 4, 1234).expect("again");
    }

    #[test]
    fn a_mark_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(RUN_FILE), br#"{"version":9,"run":1,"started":1}"#).expect("write");
        assert!(read_mark(dir.path()).is_err());
    }
}
