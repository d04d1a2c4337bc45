//! The job model: what a job file asks for and what a job reports.
//!
//! Owns [`JobSpec`] (a validated job file) and [`JobStatus`] (the task
//! attributes of a crawler kernel: TID, TaskName, TypeName, StageName, Running, Now,
//! Total, SavePath, plus state and error). The invariant: a `JobSpec`
//! exists only for a job file that passed every check, and every
//! rejection carries one line a person can act on. A job's recurrence
//! (`every`, `cron`, `jitter`) is checked with the common keys into a
//! [`Recurrence`], whose slots depend only on the rule, the TID and the
//! time.

mod cron;
mod flags;
mod guard;
mod headers;
mod recur;
mod spec;
mod status;
pub mod units;

pub use cron::{Cron, CronError, utc_text};
pub use flags::{JobFlags, Transfer};
pub use guard::catch_panic;
pub use headers::{check_header, check_headers};
pub use recur::{Due, RecurError, Recurrence, Rule, RunRecord, parse_duration, take_recurrence};
pub use spec::{COMMON_KEYS, JobSpec, RECUR_KEYS, RejectReason, parse_job_bytes};
pub use status::{CostStatus, JobState, JobStatus, ScheduleStatus, Tid, unix_now};
