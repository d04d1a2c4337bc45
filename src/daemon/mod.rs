//! The daemon: the supervisor thread and what it starts.
//!
//! Owns the job table (which jobs this instance runs, which wait, which
//! are paused, which are scheduled to run again), the per-account pacers, the download pool, the watcher,
//! signal handling and systemd notification. Invariants: only the
//! supervisor claims and starts jobs; on SIGTERM it stops claiming, lets
//! runners checkpoint and exits 0; a worker panic stops everything cleanly
//! with a non-zero status; the process never exits while a runner may be
//! writing a checkpoint, except on a second signal (safe, because every
//! state file is crash-consistent).
//!
//! Modules: `supervisor` (the loop and the stop), `jobs` (the job table:
//! claim, admit, start, end), `control` (pause/resume/cancel requests and
//! ends written late), `recurring` (recurring jobs between runs), `pacers` (one pacing thread per API account),
//! `startup` (lock, state folder, archive, leftover sweep, vanished-spool
//! check), `intake` (reading and planning a job file), `signals` and
//! `systemd`.

mod control;
mod intake;
mod jobs;
mod pacers;
mod recurring;
mod signals;
mod startup;
mod supervisor;
mod systemd;

pub use intake::{Intake, reject_job};
pub use supervisor::{DaemonError, Options, Summary, run};
