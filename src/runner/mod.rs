//! Job runners: one thread per active job.
//!
//! Owns a job's progress while it runs: its checkpoint store (the only
//! writer), its status file, its retry rounds, and its lister thread (which
//! holds the provider's walk and blocks in paced API calls so that the
//! runner never does). Invariants: an item is journaled as done only after
//! its file's folder was fsynced; the job file leaves `work/` only after
//! the final checkpoint and status are durable; pause, cancel and shutdown
//! keep every completed file and every durable partial.

mod lister;
mod output;
mod run;

pub use run::{RunnerArgs, RunnerHandle, RunnerMsg, RunnerReport, spawn};
