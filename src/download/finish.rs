//! The last step of a download: a verified `.part` becomes the file.
//!
//! Writeback of a file starts as soon as it is verified (its last byte is
//! written); finishers then take the verified files in groups, fdatasync
//! every file of a group, and only then rename them.
//! Owns the order that keeps a final name honest: the bytes are fsynced,
//! the length is checked again, and only then does the file take its
//! name, its planned one or (with a name log) the one the server gave or
//! a collision made (see `download::names`). A crash anywhere before the
//! rename leaves the `.part` as it was, which the next attempt resumes or
//! restarts; the folder's fsync is the runner's (it batches them before
//! journaling `Done`).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::download::fetch::Step;
use crate::download::names::{NameLog, Placed};
use crate::download::partfile::{PartMeta, local, part_paths};
use crate::download::task::{DownloadTask, Outcome};
use crate::naming::file_name_from_disposition;

/// What an attempt leaves to do: nothing more (an outcome), or the durable
/// rename of a verified file, which [`Finish::complete`] does.
///
/// The split lets the pool fsync on a separate thread: a worker hands the
/// [`Finish`] over and starts its next transfer while the disk syncs.
#[derive(Debug)]
pub enum Attempt {
    /// The attempt is over; report this.
    Over(Outcome),
    /// All bytes are in the `.part` and verified; fsync and rename remain.
    Verified(Finish),
}

impl From<Outcome> for Attempt {
    fn from(o: Outcome) -> Attempt {
        Attempt::Over(o)
    }
}

/// A complete, verified `.part` file that does not have its final name yet.
///
/// Dropping it without [`Finish::complete`] leaves the `.part` (and meta)
/// as a crash would: the next attempt resumes or restarts.
#[derive(Debug)]
pub struct Finish {
    /// The open `.part` file.
    pub(super) part: File,
    /// Its path.
    pub(super) part_path: PathBuf,
    /// The final path the task planned.
    pub(super) dest: PathBuf,
    /// The meta file to remove afterwards, if one can exist.
    pub(super) meta_path: Option<PathBuf>,
    /// Bytes this attempt transferred.
    pub(super) received: u64,
    /// The file's length when it was verified.
    pub(super) len: u64,
    /// The modification time to give it (the server's `Last-Modified`,
    /// as gallery-dl does), if the answer had one.
    pub(super) mtime: Option<std::time::SystemTime>,
    /// Set when the name is decided here rather than planned.
    pub(super) naming: Option<Naming>,
}

/// A final name chosen at the rename, through the job's name log.
#[derive(Debug)]
pub(super) struct Naming {
    /// The job's log.
    pub(super) log: Arc<NameLog>,
    /// The item.
    pub(super) item: u64,
    /// The name wanted inside the planned folder (the server's, else the
    /// planned one); the log decides what it becomes.
    pub(super) wanted: String,
}

impl Finish {
    /// Starts writing the file's dirty pages back without waiting, so that
    /// the disk works while the finisher queue and the next transfers go
    /// on, and the fdatasync later mostly finds the work done.
    /// `POSIX_FADV_DONTNEED` starts that writeback on Linux (the same
    /// non-blocking kind `sync_file_range(SYNC_FILE_RANGE_WRITE)` starts,
    /// which no safe wrapper offers); it only drops pages already clean,
    /// and nothing reads the file again before its rename. Advice only:
    /// a failure changes no guarantee, the fdatasync still comes first.
    pub(super) fn start_writeback(&self) {
        let _ = rustix::fs::fadvise(&self.part, 0, None, rustix::fs::Advice::DontNeed);
    }

    /// Makes the bytes durable and gives the file its final name: fdatasync,
    /// then rename, then removal of the meta file.
    pub fn complete(self) -> Outcome {
        match self.flush() {
            Ok(f) => f.rename(),
            Err(o) => o,
        }
    }

    /// The durable half of [`complete`](Self::complete): the modification
    /// time, then fdatasync.
    fn flush(self) -> Result<Flushed, Outcome> {
        if let Some(t) = self.mtime {
            // Cosmetic: a crash may leave the download's own time, which
            // is why it needs no sync of its own.
            let _ = self.part.set_modified(t);
        }
        // fdatasync covers the data and the file size (what reading it back
        // needs); timestamps are not worth a second journal write per file.
        // The name changes only after this succeeded, so a crash can never
        // leave a final name on bytes that are not on disk.
        if let Err(e) = self.part.sync_data() {
            return Err(Outcome::Failed { reason: local("fsync", &self.part_path, &e) });
        }
        Ok(Flushed(self))
    }
}

/// A [`Finish`] whose bytes are on disk: only the checks and the rename
/// remain.
struct Flushed(Finish);

impl Flushed {
    /// Checks the length again and gives the file its final name.
    fn rename(self) -> Outcome {
        let Finish { part, part_path, dest, meta_path, received, len, mtime: _, naming } = self.0;
        // The file waited in the finishers' queue since it was verified;
        // if anything else wrote to it meanwhile (a second download of
        // the same file), it must not take the final name.
        match part.metadata() {
            Ok(m) if m.len() == len => {}
            Ok(m) => {
                return Outcome::Retry {
                    reason: format!(
                        "the partial file changed after it was verified ({len} → {} bytes); another download of the same file?",
                        m.len()
                    ),
                    after: None,
                };
            }
            Err(e) => return Outcome::Failed { reason: local("stat", &part_path, &e) },
        }
        drop(part);
        let saved = match naming {
            None => match fs::rename(&part_path, &dest) {
                Ok(()) => dest.clone(),
                Err(e) => return Outcome::Failed { reason: local("rename into", &dest, &e) },
            },
            Some(n) => {
                let dir = dest.parent().unwrap_or(Path::new("."));
                match n.log.place(n.item, &part_path, dir, &n.wanted) {
                    Ok(Placed::Renamed(p) | Placed::Same(p)) => p,
                    Err(reason) => return Outcome::Failed { reason },
                }
            }
        };
        if let Some(m) = meta_path {
            let _ = fs::remove_file(m);
        }
        Outcome::Done { bytes: received, already: false, saved_as: (saved != dest).then_some(saved) }
    }
}
/// Finishes a group of verified files the way a group commit does: every
/// file's fdatasync first, then the renames, so that the disk flushes the
/// group's bytes together and no file of the group takes its name before
/// its own bytes are durable. The outcomes come back in the group's order.
pub fn complete_group<T>(group: Vec<(T, Finish)>) -> Vec<(T, Outcome)> {
    #[cfg(debug_assertions)]
    test_gate::hold();
    let flushed: Vec<(T, Result<Flushed, Outcome>)> =
        group.into_iter().map(|(t, f)| (t, f.flush())).collect();
    flushed
        .into_iter()
        .map(|(t, f)| {
            let outcome = match f {
                Ok(f) => f.rename(),
                Err(o) => o,
            };
            (t, outcome)
        })
        .collect()
}

/// A test-only fault point (debug builds only): with
/// `SPOOLFETCH_TEST_FLUSH_GATE=PATH` set, a finisher holds each group
/// between its writes and its flush while `PATH` exists, after creating
/// `PATH.held`, so that a test can kill the process there.
#[cfg(debug_assertions)]
mod test_gate {
    use std::path::PathBuf;
    use std::time::Duration;

    pub(super) fn hold() {
        let Some(gate) = std::env::var_os("SPOOLFETCH_TEST_FLUSH_GATE").map(PathBuf::from) else { return };
        let mut held = gate.clone().into_os_string();
        held.push(".held");
        let mut told = false;
        while gate.exists() {
            if !told {
                let _ = std::fs::write(&held, b"");
                told = true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A task whose file took a logged name in an earlier run (a crash came
/// after the rename, before the journal): done, without a request.
pub(super) fn named_already(task: &DownloadTask) -> Option<Outcome> {
    let name = task.names.as_ref()?.chosen(task.item)?;
    let dir = task.dest.parent().unwrap_or(Path::new("."));
    let path = dir.join(name);
    let meta = fs::symlink_metadata(&path).ok()?;
    // With the `.part` still there, the rename never happened: the file
    // under that name is someone else's, and placing decides again.
    let unfinished = fs::symlink_metadata(part_paths(&task.dest).0).is_ok();
    (meta.is_file() && task.expected_size.is_none_or(|s| s == meta.len()) && !unfinished)
        .then_some(Outcome::Done { bytes: 0, already: true, saved_as: Some(path) })
}

/// Whether a file at the task's `dest` is its own: not when the name is
/// a provisional one (the server may name the file) or was logged for
/// another item of the job.
pub(super) fn plans_its_name(task: &DownloadTask) -> bool {
    if task.server_name && task.names.is_some() {
        return false;
    }
    let own = task.dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    !task.names.as_ref().is_some_and(|l| l.claimed_by_other(&own, task.item))
}

/// The name the server gives a task that lets it name its file: its
/// `Content-Disposition`, else the one an earlier attempt recorded in the
/// partial's meta (a resume's answer may carry none).
pub(super) fn server_wanted(
    task: &DownloadTask,
    headers: &ureq::http::HeaderMap,
    saved: Option<&PartMeta>,
) -> Option<String> {
    if !task.server_name || task.names.is_none() {
        return None;
    }
    headers
        .get("content-disposition")
        .and_then(|v| {
            // Servers send raw UTF-8 (or Latin-1) in `filename=`, which
            // the header type will not show as text.
            let text = match std::str::from_utf8(v.as_bytes()) {
                Ok(s) => s.to_string(),
                Err(_) => v.as_bytes().iter().map(|&b| char::from(b)).collect(),
            };
            file_name_from_disposition(&text)
        })
        .or_else(|| saved.and_then(|m| m.name.clone()))
}

/// Lets a verified file's name be decided at its rename when the task
/// needs that: the server named it, a name was logged for it before, or
/// its planned name is another item's.
pub(super) fn with_naming(task: &DownloadTask, step: Step, wanted: Option<String>) -> Step {
    let Some(log) = &task.names else { return step };
    let mut f = match step {
        Step::Attempt(Attempt::Verified(f)) => f,
        other => return other,
    };
    let own = task.dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if task.server_name || wanted.is_some() || log.chosen(task.item).is_some() || !plans_its_name(task) {
        f.naming = Some(Naming { log: Arc::clone(log), item: task.item, wanted: wanted.unwrap_or(own) });
    }
    Step::Attempt(Attempt::Verified(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    #[test]
    fn a_partial_changed_after_verification_keeps_no_final_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("a.bin");
        let (part_path, _) = part_paths(&dest);
        std::fs::write(&part_path, b"12345").expect("write");
        let finish = |len: u64| Finish {
            part: OpenOptions::new().read(true).write(true).open(&part_path).expect("open"),
            part_path: part_path.clone(),
            dest: dest.clone(),
            meta_path: None,
            received: 5,
            len,
            mtime: None,
            naming: None,
        };
        // Verified at 5 bytes, but another writer cut it to 3 since.
        std::fs::write(&part_path, b"123").expect("truncate");
        assert!(matches!(finish(5).complete(), Outcome::Retry { .. }));
        assert!(!dest.exists() && part_path.exists());
        assert!(matches!(finish(3).complete(), Outcome::Done { bytes: 5, already: false, saved_as: None }));
        assert_eq!(std::fs::read(&dest).expect("final"), b"123");
    }
}
