//! The spool directory: the only interface between people, programs and
//! the daemon.
//!
//! Owns the folder layout, the watcher thread that finds complete job
//! files, claiming (one atomic rename), TID allocation, the control
//! requests of `pause`/`resume`/`cancel`/`retry`, status files, a
//! recurring job's run history (`history`) and current run (`runs`), whether an
//! instance's daemon is alive (its lock), and the
//! final moves to `done/` and `failed/`. Invariants: a job file is only
//! ever moved, never deleted; exactly one rename decides which daemon owns
//! a job; a daemon touches only its own `work/<instance>/` folder; every
//! state file is written with [`crate::durable::atomic_write`].

mod claim;
mod control;
mod ending;
mod history;
mod layout;
mod liveness;
mod runs;
mod scan;
mod status_store;
mod watch;

pub use claim::{Claimed, TidAllocator, claim, finish, recover_own, reject, tid_claimed};
pub use control::{Action, ControlRequest, read_requests, remove_request, write_request};
pub use ending::Ending;
pub use history::{HISTORY_FILE, RunRecord, append_run, last_run, read_runs};
pub use layout::{CONFIG_FILE_NAME, Spool};
pub use liveness::{Liveness, instance_liveness, instances};
pub use runs::{Phase, RUN_FILE, RunMark, begin_run, phase, read_mark, reset_progress};
pub use scan::{Candidate, Scanner};
pub use status_store::{is_out_of_space, list_statuses, read_status, write_status};
pub use watch::{SpoolEvent, WatchTiming, Watcher, WatcherMsg, detect_network_fs};
