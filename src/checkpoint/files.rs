//! The job's report of what happened to each item: `state/<tid>/files.jsonl`
//! (docs/files.md), read by `spoolfetch status TID --files`.
//!
//! Owns the report's on-disk form: one JSON object a line, appended by the
//! job's runner (its only writer) and made durable (fdatasync) in the
//! runner's group commit *before* the journal records it mirrors, so the
//! report is never behind the checkpoint. The checkpoint's snapshot keeps
//! done items as index ranges only; this log is where their paths and
//! sizes stay. Invariants: the last line about an item wins; a `reset`
//! line turns every failure before it back into pending (as `retry` and a
//! restart do); a torn last line (a crash mid-append) is ignored.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::durable::append_synced;

/// The report's file name in a job's state folder.
pub const FILES_LOG: &str = "files.jsonl";

/// What became of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    /// Saved under its final name.
    Saved,
    /// Not downloaded, on purpose (filtered, already present, archived).
    Skipped,
    /// Failed (for good, or for now: a later round or `retry` tries again).
    Failed,
    /// Found, not finished yet.
    Pending,
}

impl FileState {
    /// The lowercase name shown by `status --files`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Saved => "saved",
            FileState::Skipped => "skipped",
            FileState::Failed => "failed",
            FileState::Pending => "pending",
        }
    }
}

/// One line of the report: an item's latest outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The item's index within the job.
    pub i: u64,
    /// What became of it.
    pub state: FileState,
    /// The absolute path of the file (saved), or where it would have gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The saved file's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Why it was skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A failure that is not retried in later rounds (only `retry` does).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub permanent: bool,
}

/// A line as read back: an entry, or a reset.
#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    /// Every failure so far is pending again.
    Reset {
        /// Always true.
        #[serde(rename = "reset")]
        _reset: bool,
    },
    /// An item's outcome.
    Entry(FileEntry),
}

/// The runner's handle on the report: lines queued until the next commit.
#[derive(Debug)]
pub struct FilesLog {
    /// The open report, appended to.
    file: File,
    /// Lines not yet durable.
    buffer: Vec<u8>,
}

impl FilesLog {
    /// Opens (or creates, mode 0600) the report in the state folder `dir`.
    pub fn open(dir: &Path) -> io::Result<FilesLog> {
        let file = OpenOptions::new().create(true).append(true).mode(0o600).open(dir.join(FILES_LOG))?;
        Ok(FilesLog { file, buffer: Vec::new() })
    }

    /// Queues an item's outcome.
    pub fn push(&mut self, e: &FileEntry) {
        // Our own plain struct: serializing it cannot fail.
        if serde_json::to_writer(&mut self.buffer, e).is_ok() {
            self.buffer.push(b'\n');
        }
    }

    /// Queues a reset: every failure so far becomes pending.
    pub fn push_reset(&mut self) {
        self.buffer.extend_from_slice(b"{\"reset\":true}\n");
    }

    /// Makes the queued lines durable (write, fdatasync).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        append_synced(&mut self.file, &self.buffer)?;
        self.buffer.clear();
        Ok(())
    }
}

/// Reads the report of the job whose state folder is `dir`: one entry per
/// item `0..found`, in index order; items the report does not name (and
/// failures before a reset) are pending. A missing report is all pending.
pub fn read_files(dir: &Path, found: u64) -> io::Result<Vec<FileEntry>> {
    let mut by_item: BTreeMap<u64, FileEntry> = BTreeMap::new();
    match File::open(dir.join(FILES_LOG)) {
        Ok(f) => {
            for line in BufReader::new(f).split(b'\n') {
                let line = line?;
                // A torn or foreign line says nothing about any item.
                match serde_json::from_slice::<Line>(&line) {
                    Ok(Line::Entry(e)) => {
                        by_item.insert(e.i, e);
                    }
                    Ok(Line::Reset { .. }) => by_item.retain(|_, e| e.state != FileState::Failed),
                    Err(_) => {}
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let last = by_item.keys().next_back().map_or(0, |i| i + 1);
    Ok((0..found.max(last))
        .map(|i| {
            by_item.remove(&i).unwrap_or(FileEntry {
                i,
                state: FileState::Pending,
                path: None,
                size: None,
                reason: None,
                permanent: false,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64, state: FileState, reason: Option<&str>) -> FileEntry {
        FileEntry { i, state, path: None, size: None, reason: reason.map(str::to_string), permanent: false }
    }

    #[test]
    fn last_line_wins_reset_and_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = FilesLog::open(dir.path()).expect("open");
        log.push(&FileEntry { path: Some("/a".into()), size: Some(3), ..entry(0, FileState::Saved, None) });
        log.push(&entry(1, FileState::Failed, Some("HTTP 500")));
        log.push(&entry(2, FileState::Skipped, Some("exists")));
        log.push(&entry(3, FileState::Failed, Some("HTTP 404")));
        log.push_reset();
        log.push(&entry(3, FileState::Failed, Some("HTTP 410")));
        log.flush().expect("flush");
        drop(log);
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILES_LOG))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"i\":4,\"sta"))
            .expect("torn");
        let got = read_files(dir.path(), 6).expect("read");
        let states: Vec<&str> = got.iter().map(|e| e.state.as_str()).collect();
        assert_eq!(states, ["saved", "pending", "skipped", "failed", "pending", "pending"]);
        assert_eq!(got[0].size, Some(3));
        assert_eq!(got[3].reason.as_deref(), Some("HTTP 410"));
        assert_eq!(read_files(&dir.path().join("none"), 2).expect("missing").len(), 2);
    }
}
