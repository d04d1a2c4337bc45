//! What a provider's task runner is given and what it answers.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::checkpoint::Item;
use crate::providers::{Api, ByName, Named, WalkError};

/// One item's remote task, as a step sees it.
#[derive(Debug)]
pub struct TaskView<'a> {
    /// The job.
    pub job: u64,
    /// The item's index.
    pub item: u64,
    /// The item's path, relative to the job's folder (where its result
    /// goes, by the provider's naming).
    pub path: &'a str,
    /// What the listing gave the task (`Task::input`).
    pub input: &'a Value,
    /// The last state journaled, `Value::Null` before the first step.
    pub state: &'a Value,
    /// The last state journaled is an intent: this step makes the call it
    /// announced.
    pub intent: bool,
    /// That intent was journaled by an earlier run, which stopped before
    /// it recorded the call's outcome (a crash, `kill -9`): the call may
    /// have been made. The step must find out (for example by listing
    /// what exists) before it makes the call again.
    pub resumed: bool,
    /// A scratch folder of the job's own, for files the task needs
    /// before an upload (see [`crate::inputs::stage_url`]).
    pub scratch: &'a Path,
    /// The daemon's HTTP agent, for fetching URL inputs into `scratch`
    /// (not for API calls: those go through `api`, paced).
    pub agent: &'a ureq::Agent,
}

/// A file a finished task produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product(pub Item);

/// What a step answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A new state: the runner journals it, then asks for the next step.
    Next {
        /// The state.
        state: Value,
        /// Its phase (for status: `upload`, `processing`, …).
        phase: String,
    },
    /// A new state that announces a call that must not be made twice (a
    /// create that costs the user): journaled first, then the next step
    /// makes the call.
    Intent {
        /// The state.
        state: Value,
        /// Its phase.
        phase: String,
    },
    /// An intent that sends again a call whose first sending may have
    /// been carried out (its answer was lost, or the process stopped
    /// between): journaled like an intent, and counted in the job's status
    /// as a possible extra charge. A runner returns it at most once per
    /// call it could not confirm, so a lost answer costs the user at most
    /// one extra charge.
    Resend {
        /// The state.
        state: Value,
        /// Its phase.
        phase: String,
    },
    /// Nothing changed on the remote side yet: step again after `after`
    /// (not journaled).
    Poll {
        /// When to look again.
        after: Duration,
        /// Its phase.
        phase: String,
    },
    /// The task is finished: these files are to be saved (downloads or
    /// inline content); the item is done when they are journaled.
    Done(Vec<Product>),
    /// The task failed; `permanent` when trying again cannot help (an
    /// invalid input), otherwise a `retry` may.
    Failed {
        /// One line.
        reason: String,
        /// Trying again cannot help.
        permanent: bool,
    },
}

/// A provider's remote-task state machine.
pub trait TaskRunner: Send + Sync {
    /// The name items give in [`crate::checkpoint::Task::runner`].
    fn name(&self) -> &'static str;

    /// One step from `task.state`. It may make API calls through `api`
    /// (paced like every call of the account), at most one of them one
    /// that must not be made twice, and only when `task.state` is the
    /// intent that announced it. An `Err` of the API (interrupted, rate
    /// limited, transient) makes the kernel step the same state again
    /// later; an answer it cannot use should be `Step::Failed`.
    fn step(&self, task: &TaskView<'_>, api: &Api) -> Result<Step, WalkError>;
}

/// Every registered task runner, by name.
pub type TaskRunners = ByName<dyn TaskRunner>;

impl Named for dyn TaskRunner {
    fn name(&self) -> &'static str {
        TaskRunner::name(self)
    }
}
