//! Job runners: one thread per active job.
//!
//! Owns a job's progress while it runs: its checkpoint store (the only
//! writer), its status file, its retry rounds, and its lister thread (which
//! holds the provider's walk and blocks in paced API calls so that the
//! runner never does). Invariants: an item is journaled as done only after
//! its file's folder was fsynced; the job file leaves `work/` only after
//! the final checkpoint and status are durable (a recurring job's file
//! stays until its series ends); pause, cancel and shutdown
//! keep every completed file and every durable partial.
//!
//! One module per seam: `handle` (the thread, its commands and report),
//! `run` (the life cycle), `schedule` (downloads and retry rounds),
//! `commit` (group commit and archive), `listing` (the walk, with `lister`
//! its thread and `output` the record files), `post` (post steps),
//! `refresh` (fresh URLs for expired downloads), `series` (the end of a
//! recurring job's run), `status` (the status file) and `meter` (its bytes, total, rate and ETA).

mod alert;
mod commit;
mod handle;
mod lister;
mod listing;
mod live;
mod meter;
mod output;
mod post;
mod refresh;
mod run;
mod schedule;
mod series;
mod status;
mod tasks;

pub use handle::{RunInfo, RunnerArgs, RunnerHandle, RunnerMsg, RunnerReport, spawn};
