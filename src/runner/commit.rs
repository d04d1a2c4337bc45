//! The group commit and the download archive.
//!
//! Owns the job's checkpoint store (this thread is its only writer), the
//! folders of completed files still to fsync, and the archive keys of
//! items done. Invariants: an item is journaled as done only after its
//! file's folder (and, once, that folder's parents) was fsynced; the
//! archive learns of an item only after the journal holding it is
//! durable, so a crash can never leave the archive ahead of the files.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::archive::{Archive, ArchiveEntry};
use crate::checkpoint::{CheckpointStore, FileEntry, FileState, FilesLog, Record, Work};
use crate::durable::fsync_dir;
use crate::runner::run::Runner;

/// How often queued checkpoint records are made durable.
const COMMIT_EVERY: Duration = Duration::from_millis(200);
/// Queued checkpoint bytes that force a commit.
const COMMIT_BYTES: usize = 256 * 1024;

/// The job's checkpoint writes.
pub(super) struct Commits {
    /// The checkpoint (this thread is its only writer).
    pub(super) store: CheckpointStore,
    /// The per-item report (`files.jsonl`), made durable before the
    /// journal at each commit.
    pub(super) files: FilesLog,
    /// Folders with newly completed files, to fsync before journaling.
    pub(super) dirs_to_sync: BTreeSet<PathBuf>,
    /// Folders whose own entry in their parent was fsynced already.
    pub(super) dirs_known: HashSet<PathBuf>,
    /// When records were last made durable.
    pub(super) last_commit: Instant,
    /// The download archive.
    pub(super) archive: Option<Arc<Archive>>,
    /// Archive keys of items made durable as done, to write after the next
    /// commit.
    pub(super) archive_due: Vec<ArchiveEntry>,
    /// Archive keys of done items not yet committed.
    pub(super) archive_pending: Vec<ArchiveEntry>,
}

impl Commits {
    /// When queued records are next due for a commit, if any are queued.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.store.has_pending().then(|| self.last_commit + COMMIT_EVERY)
    }

    /// Commits through `store`, telling `archive` what is done.
    pub(super) fn new(store: CheckpointStore, files: FilesLog, archive: Option<Arc<Archive>>) -> Commits {
        Commits {
            store,
            files,
            dirs_to_sync: BTreeSet::new(),
            dirs_known: HashSet::new(),
            last_commit: Instant::now(),
            archive,
            archive_due: Vec::new(),
            archive_pending: Vec::new(),
        }
    }
}

impl Runner {
    /// Queues a record and applies it.
    pub(super) fn record(&mut self, rec: Record) {
        self.report_file(&rec, None);
        self.commits.store.append(&rec);
        self.progress.apply(rec);
        self.status_file.dirty = true;
    }

    /// Queues the record of a file saved at `dest`, which may be another
    /// path than the item planned (the server named the file).
    pub(super) fn record_saved(&mut self, rec: Record, dest: &std::path::Path) {
        self.report_file(&rec, Some(dest));
        self.commits.store.append(&rec);
        self.progress.apply(rec);
        self.status_file.dirty = true;
    }

    /// Commits when enough time or bytes have gathered.
    pub(super) fn maybe_commit(&mut self) {
        if self.commits.store.has_pending()
            && (self.commits.last_commit.elapsed() >= COMMIT_EVERY
                || self.commits.store.pending_bytes() >= COMMIT_BYTES)
        {
            self.commit_or_fail();
        }
    }

    /// Makes completed files' folders and queued records durable; a
    /// failure here means progress cannot be recorded, so the job fails.
    pub(super) fn commit_or_fail(&mut self) {
        if self.state_broken {
            return;
        }
        if let Err(e) = self.commit() {
            self.state_failed(&e);
        }
    }

    /// The group commit: fsync the folders of completed files (and, once,
    /// their parents, which may be new), then the journal.
    pub(super) fn commit(&mut self) -> Result<(), String> {
        for dir in std::mem::take(&mut self.commits.dirs_to_sync) {
            fsync_dir(&dir).map_err(|e| format!("cannot fsync folder {}: {e}", dir.display()))?;
            if self.commits.dirs_known.insert(dir.clone()) {
                let mut d = dir.as_path();
                while let Some(parent) = d.parent() {
                    if parent.as_os_str().is_empty() || !self.commits.dirs_known.insert(parent.to_path_buf())
                    {
                        break;
                    }
                    let _ = fsync_dir(parent);
                    d = parent;
                }
            }
        }
        self.commits.last_commit = Instant::now();
        // Keys of items done so far become durable with this commit.
        let due = std::mem::take(&mut self.commits.archive_pending);
        // The report first: it is never behind the journal it mirrors.
        self.commits.files.flush().map_err(|e| format!("cannot write the file report: {e}"))?;
        self.commits.store.commit(&self.progress).map_err(|e| e.to_string())?;
        self.commits.archive_due.extend(due);
        if let (Some(a), false) = (&self.commits.archive, self.commits.archive_due.is_empty()) {
            // The files are in place and journaled; only now may the
            // archive say so. A failure is retried at the next commit.
            match a.insert_many(&self.commits.archive_due) {
                Ok(()) => self.commits.archive_due.clear(),
                Err(e) => log::warn!("job {}: {e}", self.tid),
            }
        }
        Ok(())
    }
}

impl Runner {
    /// Queues the report line of an item's outcome (saved, skipped,
    /// failed) or of a reset; logs each saved file (debug: a
    /// 100,000-file job must not write 100,000 lines to journald by default).
    fn report_file(&mut self, rec: &Record, saved_at: Option<&std::path::Path>) {
        let (i, state, reason, permanent) = match rec {
            Record::Done { i, .. } => (*i, FileState::Saved, None, false),
            Record::Skipped { i, r } => (*i, FileState::Skipped, Some(r.clone()), false),
            Record::Failed { i, r, p } => (*i, FileState::Failed, Some(r.clone()), *p),
            Record::Reset => {
                self.commits.files.push_reset();
                return;
            }
            Record::Spawned { i, items } => {
                // A remote task is not a file: its outputs are items of
                // their own, listed as they are saved.
                let first = self.progress.found;
                let reason = match items.len() as u64 {
                    0 => "remote task done; it produced no file".to_string(),
                    1 => format!("remote task done; its output is item {first}"),
                    n => format!("remote task done; its outputs are items {first}-{}", first + n - 1),
                };
                (*i, FileState::Skipped, Some(reason), false)
            }
            _ => return,
        };
        let Some(item) = self.progress.items.get_any(&i) else { return };
        if state == FileState::Saved && matches!(item.work, Work::Task(_)) {
            return;
        }
        let dest = saved_at.map(std::path::Path::to_path_buf).or_else(|| self.dest_of(&item.path));
        let size = match (&dest, state) {
            (Some(d), FileState::Saved) => std::fs::metadata(d).ok().map(|m| m.len()),
            _ => None,
        };
        if let (Some(d), FileState::Saved) = (&dest, state) {
            let size = size.map_or_else(|| "size unknown".to_string(), crate::job::units::human_bytes);
            log::debug!("job {}: saved {}, {size}", self.tid, d.display());
        }
        let path = dest.map(|d| d.display().to_string());
        self.commits.files.push(&FileEntry { i, state, path, size, reason, permanent });
    }
}
