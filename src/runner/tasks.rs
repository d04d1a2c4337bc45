//! Remote tasks of a job: stepping each task item's state machine on the
//! shared step pool.
//!
//! Owns the job's side of the step pool: the task items ready for their
//! next step, the ones polling (waiting for their next look), the ones in
//! flight, and their transient failures. Invariants: every state a step
//! returns is journaled and committed (fsynced) before the next step of
//! that item is queued, so a call announced by an intent is never made
//! before the intent is durable; polls change nothing on disk; at most
//! `window` steps of the job are in the pool at once; an item is in at
//! most one of ready, polling and in flight.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::checkpoint::{Record, Work};
use crate::pacing::{ApiError, backoff_delay};
use crate::providers::WalkError;
use crate::runner::run::{Mode, Runner};
use crate::steps::{Step, StepEvent, StepPool, StepTask, TaskRunners};

/// Steps of one job in the pool at once: enough to keep a slow remote
/// service busy with many items, few enough that jobs take turns.
const WINDOW: usize = 8;

/// Transient failures of one step in a row before the item fails (a
/// `retry` tries it again).
const STEP_RETRIES: u32 = 5;

/// The job's remote tasks.
pub(super) struct Tasks {
    /// The shared step pool (none: the daemon could not start it).
    pub(super) pool: Option<StepPool>,
    /// The registered task runners.
    pub(super) runners: TaskRunners,
    /// Answers from the pool.
    pub(super) tx: Sender<StepEvent>,
    /// Answers from the pool.
    pub(super) rx: Receiver<StepEvent>,
    /// Items ready for their next step.
    pub(super) ready: VecDeque<u64>,
    /// Items polling, by when they look again.
    pub(super) polling: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Items whose step is queued or running.
    pub(super) inflight: HashSet<u64>,
    /// Transient failures in a row, per item.
    pub(super) failures: HashMap<u64, u32>,
    /// The phase of each item's last step (polls included), for status.
    pub(super) phases: HashMap<u64, String>,
    /// Items whose last state, as found at start, is an intent journaled
    /// by an earlier run: the outcome of the call it announced is unknown.
    pub(super) crossed: HashSet<u64>,
    /// The job's budget for remote tasks (`Walk::budget`).
    pub(super) budget: Option<u64>,
    /// Costs of tasks handed to the pool for their first step, not yet
    /// journaled (so not yet in the committed cost), by item.
    pub(super) reserved: HashMap<u64, u64>,
    /// A step said the account cannot go on (out of credits, say): no
    /// step of the job is started until then, and status says why.
    pub(super) parked: Option<(Instant, String)>,
}

impl Tasks {
    /// No task stepped yet.
    pub(super) fn new(pool: Option<StepPool>, runners: TaskRunners, budget: Option<u64>) -> Tasks {
        let (tx, rx) = bounded(WINDOW * 2);
        Tasks {
            pool,
            runners,
            tx,
            rx,
            ready: VecDeque::new(),
            polling: BinaryHeap::new(),
            inflight: HashSet::new(),
            failures: HashMap::new(),
            phases: HashMap::new(),
            crossed: HashSet::new(),
            budget,
            reserved: HashMap::new(),
            parked: None,
        }
    }

    /// Nothing ready, polling or in flight.
    pub(super) fn idle(&self) -> bool {
        self.ready.is_empty() && self.polling.is_empty() && self.inflight.is_empty()
    }

    /// When the next polling item is due (or the park ends).
    pub(super) fn next_poll(&self) -> Option<Instant> {
        let poll = self.polling.peek().map(|Reverse((t, _))| *t);
        match (&self.parked, poll) {
            (Some((until, _)), Some(p)) => Some(p.min(*until)),
            (Some((until, _)), None) => Some(*until),
            (None, p) => p,
        }
    }

    /// Why the job's steps wait, while they do.
    pub(super) fn parked_reason(&self) -> Option<&str> {
        self.parked.as_ref().filter(|(until, _)| *until > Instant::now()).map(|(_, r)| r.as_str())
    }

    /// Tasks per phase, for status.
    pub(super) fn phase_counts(&self) -> std::collections::BTreeMap<String, u64> {
        let mut m = std::collections::BTreeMap::new();
        for p in self.phases.values() {
            *m.entry(p.clone()).or_insert(0) += 1;
        }
        m
    }
}

impl Runner {
    /// Whether a remote task that exists already (its last state is not an
    /// intent) waits for its next step: a parked job still finishes those.
    pub(super) fn tasks_under_way(&self) -> bool {
        let created = |i: &u64| self.progress.tasks.get(i).is_some_and(|t| !t.intent);
        self.tasks.ready.iter().any(created) || self.tasks.polling.iter().any(|Reverse((_, i))| created(i))
    }

    /// Moves polling items whose time has come to the ready queue.
    pub(super) fn promote_polls(&mut self) {
        let now = Instant::now();
        if self.tasks.parked.as_ref().is_some_and(|(until, _)| *until <= now) {
            self.tasks.parked = None;
            self.status_file.dirty = true;
        }
        while let Some(Reverse((t, i))) = self.tasks.polling.peek().copied() {
            if t > now {
                break;
            }
            self.tasks.polling.pop();
            self.tasks.ready.push_back(i);
        }
    }

    /// Hands ready task steps to the pool, up to the window.
    pub(super) fn pump_tasks(&mut self) {
        if self.mode != Mode::Running {
            return;
        }
        let parked = self.tasks.parked_reason().is_some();
        // While the job waits (credits used up, a login refused), only
        // tasks that exist already go on: a step that would make the call
        // an intent announces, or a first step, waits with the job.
        let mut held = Vec::new();
        while self.tasks.inflight.len() < WINDOW {
            let Some(i) = self.tasks.ready.pop_front() else { break };
            if self.tasks.inflight.contains(&i) || self.progress.failed.contains_key(&i) {
                continue;
            }
            if parked && self.progress.tasks.get(&i).is_none_or(|t| t.intent) {
                held.push(i);
                continue;
            }
            let Some(item) = self.progress.items.get(&i) else { continue };
            let Work::Task(task) = &item.work else { continue };
            let first = !self.progress.tasks.contains_key(&i);
            if let (Some(cap), Some(cost), true) = (self.tasks.budget, task.cost, first) {
                // Steps handed out but not journaled yet hold their cost.
                let held: u64 = self.tasks.reserved.iter().filter(|(k, _)| **k != i).map(|(_, c)| c).sum();
                if self.progress.cost_committed + held + cost > cap {
                    let r = format!(
                        "not sent: the job's budget of {cap} would be exceeded ({} committed, this one costs {cost})",
                        self.progress.cost_committed + held
                    );
                    self.record(Record::Failed { i, r, p: true });
                    continue;
                }
                self.tasks.reserved.insert(i, cost);
            }
            let Some(runner) = self.tasks.runners.get(&task.runner) else {
                let r = format!("this build of spoolfetch has no task runner {:?}", task.runner);
                self.record(Record::Failed { i, r, p: true });
                continue;
            };
            let Some(pool) = self.tasks.pool.clone() else {
                self.record(Record::Failed { i, r: "remote tasks are not available".into(), p: true });
                continue;
            };
            let (state, intent) = match self.progress.tasks.get(&i) {
                Some(t) => (t.state.clone(), t.intent),
                None => (serde_json::Value::Null, false),
            };
            let resumed = intent && self.tasks.crossed.contains(&i);
            let step = StepTask {
                job: self.tid,
                item: i,
                path: item.path.clone(),
                runner,
                input: task.input.clone(),
                state,
                intent,
                resumed,
                scratch: self.spool.state_dir(self.tid).join("scratch"),
                api: self.listing.api.clone(),
                reply: self.tasks.tx.clone(),
            };
            match pool.try_send(step) {
                Ok(()) => {
                    self.tasks.inflight.insert(i);
                }
                Err(_) => {
                    self.tasks.ready.push_front(i);
                    break;
                }
            }
        }
        for i in held.into_iter().rev() {
            self.tasks.ready.push_front(i);
        }
    }

    /// Handles a step's answer.
    pub(super) fn on_step(&mut self, ev: StepEvent) {
        let i = ev.item;
        self.tasks.inflight.remove(&i);
        // Its first state (if any) is journaled below, which commits the
        // cost this reservation held.
        self.tasks.reserved.remove(&i);
        if !matches!(ev.result, Err(WalkError::Api(ApiError::Interrupted | ApiError::ShuttingDown))) {
            self.tasks.crossed.remove(&i);
        }
        match ev.result {
            Ok(Step::Next { state, phase }) => self.task_state(i, state, phase, false, false),
            Ok(Step::Intent { state, phase }) => self.task_state(i, state, phase, true, false),
            Ok(Step::Resend { state, phase }) => {
                log::warn!(
                    "job {}: item {i}: sending a call again whose first sending may have been carried out \
                     (a possible extra charge, counted in status)",
                    self.tid
                );
                self.task_state(i, state, phase, true, true)
            }
            Ok(Step::Poll { after, phase }) => {
                self.tasks.failures.remove(&i);
                self.tasks.phases.insert(i, phase);
                // A hostile or broken answer must not make the loop spin.
                let after = after.clamp(Duration::from_millis(200), Duration::from_secs(3600));
                self.tasks.polling.push(Reverse((Instant::now() + after, i)));
            }
            Ok(Step::Done(products)) => {
                self.tasks.failures.remove(&i);
                self.tasks.phases.remove(&i);
                let items: Vec<_> = products.into_iter().map(|p| p.0).collect();
                let bad = items.iter().find(|it| self.dest_of(&it.path).is_none()).map(|it| it.path.clone());
                if let Some(path) = bad {
                    self.record(Record::Failed {
                        i,
                        r: format!("the task produced an unsafe path {path:?}"),
                        p: true,
                    });
                    return;
                }
                let first = self.progress.found;
                let count = items.len() as u64;
                self.record(Record::Spawned { i, items });
                self.commit_or_fail();
                let ready = self.triage((first..first + count).collect(), false);
                self.sched.ready.extend(ready);
            }
            Ok(Step::Failed { reason, permanent }) => {
                self.tasks.failures.remove(&i);
                self.tasks.phases.remove(&i);
                log::warn!("job {}: item {i}: {reason}", self.tid);
                self.record(Record::Failed { i, r: reason, p: permanent });
            }
            Err(WalkError::Api(ApiError::Interrupted | ApiError::ShuttingDown)) => {
                // Paused, cancelled or stopping: the same step again later.
                self.tasks.ready.push_front(i);
            }
            Err(WalkError::Wait { reason, retry_in }) => {
                // What one step waits for (credits, a login) every step of
                // the account waits for: the job parks instead of failing
                // or hammering each item in turn.
                log::warn!("job {}: waiting: {reason}; trying again in {} s", self.tid, retry_in.as_secs());
                self.tasks.phases.insert(i, "waiting".into());
                if !self.once {
                    self.alert_waiting(&reason);
                }
                self.tasks.parked = Some((Instant::now() + retry_in, reason));
                self.tasks.ready.push_front(i);
                self.status_file.dirty = true;
            }
            Err(e) => {
                let n = self.tasks.failures.entry(i).or_insert(0);
                *n += 1;
                let n = *n;
                let transient = matches!(&e, WalkError::Api(a) if a.is_transient());
                if transient && n <= STEP_RETRIES {
                    let wait = backoff_delay(n, Duration::from_secs(2), Duration::from_secs(120));
                    log::info!(
                        "job {}: item {i}: {e}; trying again in {:.0} s",
                        self.tid,
                        wait.as_secs_f64()
                    );
                    self.tasks.polling.push(Reverse((Instant::now() + wait, i)));
                } else {
                    self.tasks.failures.remove(&i);
                    self.tasks.phases.remove(&i);
                    log::warn!("job {}: item {i}: {e}", self.tid);
                    self.record(Record::Failed { i, r: e.to_string(), p: !transient });
                }
            }
        }
    }

    /// Journals a task's new state durably, then readies its next step.
    fn task_state(&mut self, i: u64, state: serde_json::Value, phase: String, intent: bool, resend: bool) {
        self.tasks.failures.remove(&i);
        self.tasks.phases.insert(i, phase.clone());
        self.record(Record::TaskStep { i, s: state, ph: phase, n: intent, r: resend });
        // The next step may make the call this state announces: the state
        // must be on disk first.
        self.commit_or_fail();
        if !self.state_broken {
            self.tasks.ready.push_back(i);
        }
    }

    /// Tasks whose last journaled state is an intent: the process that
    /// journaled it stopped before it recorded the call's outcome, so the
    /// call may have been made. Logged once at start; the runner's next
    /// step sees `intent` and must find out before calling again.
    pub(super) fn report_crossed_intents(&mut self) {
        for (i, t) in &self.progress.tasks {
            self.tasks.phases.insert(*i, t.phase.clone());
            if t.intent {
                self.tasks.crossed.insert(*i);
                log::warn!(
                    "job {}: item {i}: the previous run stopped after announcing a call in phase {:?} and before \
                     recording its outcome; the call may have been made, and the task runner checks before \
                     making it again",
                    self.tid,
                    t.phase
                );
            }
        }
    }
}
