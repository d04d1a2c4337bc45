//! Crash-safe file writes.
//!
//! Owns the one recipe every state file of spoolfetch goes through: write a
//! temporary file in the target's directory, fsync it, rename it over the
//! target, fsync the directory. The invariant: a reader (or a restart after
//! `kill -9` or a power cut) sees either the old complete file or the new
//! complete file, never a mixture and never a truncated one. It also owns
//! the matching rule for reading a local file a job names: never through
//! a symbolic link, never anything but a regular file.

mod atomic;
mod read;

pub use atomic::{
    append_synced, atomic_copy, atomic_write, atomic_write_mode, fsync_dir, remove_orphaned_temporaries,
    remove_orphaned_temporaries_below, sync_and_rename,
};
pub use read::open_regular_nofollow;
