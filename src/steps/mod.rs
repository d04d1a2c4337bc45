//! Remote-task steps: the state machines of items that a remote service
//! works on (upload, create a task, poll it, fetch what it made).
//!
//! Owns the interface a provider implements ([`TaskRunner`]: one step of
//! one item's state machine) and the step pool, a few threads shared by
//! every job that run steps so that many items of a job are in flight at
//! once while the runner thread never blocks on the network. Invariants: a
//! step makes at most one call that must not be made twice, and only
//! after its intent is journaled (the runner journals every state a step
//! returns, durably, before it asks for the next step); polls are not
//! journaled; a step that panics or returns garbage fails its item, never
//! the job or the daemon.

mod pool;
mod runner;

pub use pool::{StepEvent, StepPool, StepTask};
pub use runner::{Product, Step, TaskRunner, TaskRunners, TaskView};
