//! The download archive: which works were saved, across all jobs and runs.
//!
//! Owns `archive.sqlite3` in `state_dir` (a local disk: SQLite must not live
//! on a network share). The invariant: a key is written only after the file
//! it stands for is verified, in place under its final name, and journaled,
//! so a key in the archive always means "this was downloaded once" even if
//! the file was moved or deleted since (gallery-dl's download archive).
//! A key may also record the file it was saved as, so that a provider
//! whose keys name content (the same image, operation and options) can
//! reuse that output for a new destination instead of paying again.

mod store;

pub use store::{Archive, ArchiveEntry, ArchiveError};
