//! Checkpoints: what a job has found and finished, durable across
//! `kill -9` and power cuts.
//!
//! Owns the on-disk form of a job's progress: a snapshot
//! (`checkpoint.json`, replaced atomically) plus an append-only journal
//! (`journal.<generation>`) of small records, fsynced in groups. The job's
//! runner thread is the only writer. Invariants: a record is durable
//! before anything that depends on it is reported; a `done` record is only
//! written after the file it names is durable under its final name; a torn
//! last journal line (a crash mid-append) is ignored; replaying the
//! journal over the snapshot gives exactly the state the runner had.
//!
//! Beside it, `files` keeps the job's per-item report (`files.jsonl`):
//! what became of each item, with the paths and sizes the snapshot does
//! not keep; it is made durable before the journal records it mirrors.

mod files;
mod identity;
mod item;
mod items;
mod model;
mod peek;
mod store;

pub use files::{FILES_LOG, FileEntry, FileState, FilesLog, read_files};
pub use identity::{Binding, IDENTITY_FILE, JobIdentity, bind_identity};
pub use item::{Fetch, Item, PostStep, Stream, StreamProtocol, Task, Work};
pub use items::{Items, Reason};
pub use model::{ItemState, OutputMark, Progress, RangeSet, Record, TaskState};
pub use peek::peek_progress;
pub use store::{CheckpointError, CheckpointStore};
