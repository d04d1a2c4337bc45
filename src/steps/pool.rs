//! The step pool: a few threads that run remote-task steps for every job.

use std::path::PathBuf;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use serde_json::Value;

use crate::providers::{Api, WalkError};
use crate::steps::runner::{Step, TaskRunner, TaskView};

/// One step to run.
pub struct StepTask {
    /// The job.
    pub job: u64,
    /// The item.
    pub item: u64,
    /// The item's path, relative to the job's folder.
    pub path: String,
    /// The task's runner.
    pub runner: &'static dyn TaskRunner,
    /// The task's input.
    pub input: Value,
    /// Its last journaled state.
    pub state: Value,
    /// That state is an intent.
    pub intent: bool,
    /// That intent was journaled by an earlier run.
    pub resumed: bool,
    /// The job's scratch folder.
    pub scratch: PathBuf,
    /// The job's API handle (its pacers, stop flag, sessions).
    pub api: Api,
    /// Where the answer goes (the job's runner).
    pub reply: Sender<StepEvent>,
}

impl std::fmt::Debug for StepTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StepTask({}/{} {})", self.job, self.item, self.runner.name())
    }
}

/// The answer of a step.
#[derive(Debug)]
pub struct StepEvent {
    /// The item.
    pub item: u64,
    /// What the step answered.
    pub result: Result<Step, WalkError>,
}

/// A message to the pool's threads.
enum StepMsg {
    /// Run a step.
    Run(Box<StepTask>),
    /// Stop (one thread per message).
    Quit,
}

/// Handle to the pool; cheap to clone.
#[derive(Clone)]
pub struct StepPool {
    /// The shared queue.
    tx: Sender<StepMsg>,
    /// Threads, for `quit`.
    threads: usize,
}

impl std::fmt::Debug for StepPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StepPool({} threads)", self.threads)
    }
}

impl StepPool {
    /// Starts `threads` step threads with a queue of `capacity` steps.
    /// Jobs take turns because each keeps only a small window of steps in
    /// the queue at once.
    pub fn start(
        threads: usize,
        capacity: usize,
        agent: &ureq::Agent,
    ) -> std::io::Result<(StepPool, Vec<JoinHandle<()>>)> {
        let (tx, rx) = bounded::<StepMsg>(capacity.max(1));
        let mut joins = Vec::new();
        for n in 0..threads.max(1) {
            let rx = rx.clone();
            let agent = agent.clone();
            joins.push(thread::Builder::new().name(format!("step-{n}")).spawn(move || run(&rx, &agent))?);
        }
        Ok((StepPool { tx, threads: threads.max(1) }, joins))
    }

    /// Queues a step without blocking; gives it back when the queue is
    /// full or the pool has stopped.
    pub fn try_send(&self, task: StepTask) -> Result<(), Box<StepTask>> {
        match self.tx.try_send(StepMsg::Run(Box::new(task))) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(StepMsg::Run(t)) | TrySendError::Disconnected(StepMsg::Run(t))) => Err(t),
            // Only a task was sent, so only a task can come back.
            Err(_) => Ok(()),
        }
    }

    /// Asks every thread to stop after its current step.
    pub fn quit(&self) {
        for _ in 0..self.threads {
            let _ = self.tx.send(StepMsg::Quit);
        }
    }
}

/// A thread body.
fn run(rx: &Receiver<StepMsg>, agent: &ureq::Agent) {
    while let Ok(StepMsg::Run(task)) = rx.recv() {
        let result = execute(&task, agent);
        let _ = task.reply.send(StepEvent { item: task.item, result });
    }
}

/// Runs one step; a panic fails the item, not the thread.
fn execute(task: &StepTask, agent: &ureq::Agent) -> Result<Step, WalkError> {
    let view = TaskView {
        job: task.job,
        item: task.item,
        path: &task.path,
        input: &task.input,
        state: &task.state,
        intent: task.intent,
        resumed: task.resumed,
        scratch: &task.scratch,
        agent,
    };
    crate::job::catch_panic(|| task.runner.step(&view, &task.api)).unwrap_or_else(|what| {
        log::error!(
            "job {}: the {} step of item {} panicked: {what}",
            task.job,
            task.runner.name(),
            task.item
        );
        Ok(Step::Failed {
            reason: format!("the {} step crashed ({what})", task.runner.name()),
            permanent: true,
        })
    })
}
