//! Notifications: telling a person when a job needs them.
//!
//! Owns the `notify` targets (a webhook that receives the job's status
//! object as JSON, or a command that gets it on stdin), the notifier
//! thread that delivers them, and the outbox that keeps undelivered ones
//! across restarts. Invariants: sending an event never blocks a runner;
//! a notification is on disk before its first attempt and removed only
//! when delivered or given up after a bounded number of attempts; a
//! failing target is logged, never fatal, and its URL's secrets are never
//! logged.

mod deliver;
mod outbox;
mod target;
mod thread;

pub use deliver::deliver;
pub use outbox::{Notice, Outbox};
pub use target::{Event, Target, Via, parse_targets};
pub use thread::{AlertMsg, Alerts, Notifier};
