//! A recurring job's history: `state/<tid>/history.jsonl`, one JSON
//! line per ended run.
//!
//! Owns the file's format and its crash-safe append. The owner of the
//! job (its runner as a run ends) is the only writer. Invariants: a
//! record is on disk (data fdatasynced, the folder fsynced when the file
//! was created) before [`append_run`] returns; a line torn by a crash is
//! never glued to the next record (the next append starts a new line
//! first) and readers skip it; the file is never followed through a
//! symbolic link and is readable by its owner only.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

pub use crate::job::RunRecord;

/// The history's file name in a job's state folder.
pub const HISTORY_FILE: &str = "history.jsonl";

/// How much of the file's end [`last_run`] reads.
const TAIL_BYTES: u64 = 64 * 1024;

/// Appends one record to `state_dir/history.jsonl` and makes it durable.
pub fn append_run(state_dir: &Path, rec: &RunRecord) -> io::Result<()> {
    let path = state_dir.join(HISTORY_FILE);
    let existed = path.symlink_metadata().is_ok();
    let mut file = open(&path)?;
    let len = file.metadata()?.len();
    let mut line = Vec::with_capacity(256);
    if len > 0 {
        let mut last = [0u8; 1];
        file.read_exact_at(&mut last, len - 1)?;
        if last[0] != b'\n' {
            // A crash tore the last record: end its line so that this one
            // stands alone.
            line.push(b'\n');
        }
    }
    serde_json::to_writer(&mut line, rec).map_err(io::Error::other)?;
    line.push(b'\n');
    crate::durable::append_synced(&mut file, &line)?;
    if !existed {
        crate::durable::fsync_dir(state_dir)?;
    }
    Ok(())
}

/// Every readable record, oldest first (torn or foreign lines skipped);
/// empty when there is no history.
pub fn read_runs(state_dir: &Path) -> io::Result<Vec<RunRecord>> {
    let mut text = String::new();
    match crate::durable::open_regular_nofollow(&state_dir.join(HISTORY_FILE)) {
        Ok(mut f) => f.read_to_string(&mut text).map(|_| ())?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    Ok(parse_lines(&text))
}

/// The last readable record, reading only the file's end.
pub fn last_run(state_dir: &Path) -> io::Result<Option<RunRecord>> {
    let mut f = match crate::durable::open_regular_nofollow(&state_dir.join(HISTORY_FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    Ok(parse_lines(&String::from_utf8_lossy(&tail)).pop())
}

fn parse_lines(text: &str) -> Vec<RunRecord> {
    // Only complete lines count: a final line without its newline is a
    // record torn by a crash.
    let complete = match text.rfind('\n') {
        Some(i) => &text[..i],
        None => "",
    };
    complete.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Opens the history for reading and appending: created 0600, never
/// through a symbolic link, a regular file only.
fn open(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0))
        .open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the history is not a regular file"));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobState;
    use std::io::Write;

    fn rec(run: u64, state: JobState, error: Option<&str>) -> RunRecord {
        RunRecord { run, started: 100 * run, ended: 100 * run + 5, state, error: error.map(str::to_string) }
    }

    #[test]
    fn appends_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_runs(dir.path()).expect("read"), vec![]);
        assert_eq!(last_run(dir.path()).expect("last"), None);
        let a = rec(1, JobState::Done, None);
        let b = rec(2, JobState::Failed, Some("HTTP 500"));
        append_run(dir.path(), &a).expect("append");
        append_run(dir.path(), &b).expect("append");
        assert_eq!(read_runs(dir.path()).expect("read"), vec![a, b.clone()]);
        assert_eq!(last_run(dir.path()).expect("last"), Some(b));
        let text = std::fs::read_to_string(dir.path().join(HISTORY_FILE)).expect("text");
        assert!(text.starts_with(r#"{"run":1,"started":100,"ended":105,"state":"done"}"#), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(HISTORY_FILE)).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_torn_line_is_skipped_and_never_glued_to_the_next() {
        let dir = tempfile::tempdir().expect("tempdir");
        append_run(dir.path(), &rec(1, JobState::Done, None)).expect("append");
        let mut f = OpenOptions::new().append(true).open(dir.path().join(HISTORY_FILE)).expect("open");
        f.write_all(br#"{"run":2,"star"#).expect("tear");
        drop(f);
        assert_eq!(read_runs(dir.path()).expect("read").len(), 1);
        assert_eq!(last_run(dir.path()).expect("last").map(|r| r.run), Some(1));
        append_run(dir.path(), &rec(3, JobState::Done, None)).expect("append");
        let runs: Vec<u64> = read_runs(dir.path()).expect("read").iter().map(|r| r.run).collect();
        assert_eq!(runs, vec![1, 3]);
    }

    #[test]
    fn a_link_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"").expect("write");
        std::os::unix::fs::symlink(&target, dir.path().join(HISTORY_FILE)).expect("symlink");
        assert!(append_run(dir.path(), &rec(1, JobState::Done, None)).is_err());
        assert!(read_runs(dir.path()).is_err());
        assert_eq!(std::fs::read(&target).expect("read"), b"");
    }
}
