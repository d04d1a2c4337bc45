//! The job table: which jobs this instance runs, which wait for a slot,
//! which are paused.
//!
//! Owns claiming, admission (reading, checking and binding a claimed job
//! to its state folder), starting runners and recording their ends.
//! Invariants: at most `jobs` jobs hold a slot (paused jobs do not); a TID
//! is never started twice: a retry of a TID that is running, waiting,
//! claimed elsewhere or whose end is not yet on disk waits in `retry/`.

use std::sync::Arc;

use crate::daemon::intake::{Intake, reject_job};
use crate::daemon::recurring::Next;
use crate::daemon::supervisor::Supervisor;
use crate::job::JobState;
use crate::providers::Lanes;
use crate::runner::{self, RunnerArgs, RunnerReport};
use crate::spool::{Claimed, Watcher, claim, read_status, tid_claimed, write_status};

/// A claimed job waiting for a slot.
pub(super) struct Waiting {
    /// The job file.
    pub(super) claimed: Claimed,
    /// Its plan.
    pub(super) intake: Intake,
    /// Start paused.
    pub(super) paused: bool,
    /// For a recurring job, the run it begins or resumes.
    pub(super) run: Option<crate::runner::RunInfo>,
}

impl Supervisor {
    /// Returns true if and only if nothing is running or waiting (paused
    /// jobs aside).
    /// Scheduled recurring jobs wait for a slot of time, not for work:
    /// `run --once` leaves them for a later run.
    pub(super) fn idle(&self) -> bool {
        self.waiting.is_empty() && self.running.len() == self.paused.len()
    }

    /// Free job slots; paused jobs do not hold one.
    pub(super) fn free_slots(&self) -> usize {
        self.config.jobs.saturating_sub(self.running.len() - self.paused.len() + self.waiting.len())
    }

    /// Claims ready files while slots are free; returns true if any was
    /// claimed.
    pub(super) fn claim_ready(&mut self, watcher: &Watcher, ready: Vec<crate::spool::Candidate>) -> bool {
        let mut any = false;
        for cand in ready {
            if self.free_slots() == 0 {
                break;
            }
            if let Some(tid) = cand.retry_tid {
                // A TID names one job: a retry request for a job that is
                // still running, queued or paused (here or in another
                // instance) waits in retry/ until that job has ended.
                let busy = self.running.contains_key(&tid)
                    || self.waiting.iter().any(|w| w.claimed.tid == tid)
                    || self.endings.iter().any(|e| e.claimed.tid == tid)
                    || tid_claimed(&self.spool, tid);
                if busy {
                    if self.retry_held.insert(tid) {
                        log::info!("retry of job {tid} waits: that job is still active");
                    }
                    continue;
                }
                self.retry_held.remove(&tid);
            }
            match claim(&self.spool, &self.config.instance, &cand, &mut self.tids) {
                Ok(Some(c)) => {
                    watcher.forget(&cand.path);
                    log::info!("claimed {} as job {}", c.original, c.tid);
                    any = true;
                    self.admit(c, false);
                }
                Ok(None) => watcher.forget(&cand.path),
                Err(e) => log::warn!("cannot claim {}: {e}", cand.path.display()),
            }
        }
        any
    }

    /// Reads, checks and queues (or rejects) a claimed job, then starts
    /// what fits.
    pub(super) fn admit(&mut self, claimed: Claimed, recovered: bool) {
        match Intake::read(&claimed, &self.config) {
            Ok(intake) => {
                // The identity is bound in a private folder (it may have
                // been recreated after its old content was set aside).
                let bound =
                    crate::checkpoint::bind_identity(&self.spool.state_dir(claimed.tid), &intake.identity)
                        .and_then(|b| self.spool.ensure_state_dir(claimed.tid).map(|_| b));
                match bound {
                    Ok(crate::checkpoint::Binding::SetAside(aside)) => log::warn!(
                        "job {}: its state folder belonged to another job file (an edited job or a reused \
                         TID); it was moved to {} and the job starts fresh",
                        claimed.tid,
                        aside.display()
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        let why = format!("cannot write job state: {e}");
                        self.refuse(&claimed, &why, Some(&intake.spec));
                        return;
                    }
                }
                let paused = recovered
                    && read_status(&self.spool, claimed.tid)
                        .ok()
                        .flatten()
                        .is_some_and(|s| s.state == JobState::Paused);
                let run = match intake.spec.recurrence.clone() {
                    None => None,
                    Some(rec) => match self.next_run(&claimed, &intake, &rec, paused) {
                        Ok(Next::Run(info)) => {
                            self.ran_once.insert(claimed.tid);
                            Some(info)
                        }
                        Ok(Next::Later) => return,
                        Ok(Next::Over) => return self.end_series(&claimed, &intake),
                        Err(why) => return self.refuse(&claimed, &why, Some(&intake.spec)),
                    },
                };
                self.write_queued(&claimed, &intake, paused);
                self.waiting.push_back(Waiting { claimed, intake, paused, run });
                self.start_waiting();
            }
            Err(rejected) => self.refuse(&claimed, &rejected.reason.0, rejected.spec.as_deref()),
        }
    }

    /// Ends a job that cannot run (a bad job file, state that cannot be
    /// written): `failed/` with the reason, and a `failed` notification,
    /// since someone has to fix the file.
    pub(super) fn refuse(&mut self, claimed: &Claimed, why: &str, spec: Option<&crate::job::JobSpec>) {
        let end = reject_job(&self.spool, claimed, &self.config, why, spec);
        let status = end
            .as_ref()
            .map(|e| e.status.clone())
            .or_else(|| read_status(&self.spool, claimed.tid).ok().flatten());
        self.endings.extend(end);
        self.summary.failed += 1;
        if let (Some(n), Some(status)) = (&self.notifier, status) {
            let targets = spec.and_then(|s| s.notify.as_deref()).unwrap_or(&self.config.notify);
            n.alerts.send_status(crate::alerts::Event::Failed, &status, targets);
        }
    }

    /// The job's status as on disk, or a new one.
    pub(super) fn status_of(&self, claimed: &Claimed, intake: &Intake) -> crate::job::JobStatus {
        read_status(&self.spool, claimed.tid).ok().flatten().unwrap_or_else(|| {
            crate::job::JobStatus::claimed(
                claimed.tid,
                &intake.spec.name,
                &intake.spec.job_type,
                &intake.spec.save_path.display().to_string(),
                &self.config.instance,
                &claimed.original,
            )
        })
    }

    /// Writes the status of a claimed, not yet started job.
    pub(super) fn write_queued(&self, claimed: &Claimed, intake: &Intake, paused: bool) {
        let mut status = self.status_of(claimed, intake);
        status.state = if paused { JobState::Paused } else { JobState::Queued };
        status.running = false;
        status.error = None;
        status.instance.clone_from(&self.config.instance);
        if let Err(e) = write_status(&self.spool, &status) {
            log::warn!("job {}: cannot write status: {e}", claimed.tid);
        }
    }

    /// Starts waiting jobs while slots are free.
    pub(super) fn start_waiting(&mut self) {
        while self.running.len() - self.paused.len() < self.config.jobs {
            let Some(w) = self.waiting.pop_front() else { break };
            self.start(w);
        }
    }

    /// Starts a runner.
    pub(super) fn start(&mut self, w: Waiting) {
        let tid = w.claimed.tid;
        let provider = crate::providers::find_job_type(&w.intake.spec.job_type).map_or("", |(p, _)| p.name());
        let lanes = match w.intake.walk.account() {
            Some(a) => self.lanes_for(&a, provider).unwrap_or_default(),
            None => Lanes::none(),
        };
        let window = self.config.concurrency * 2;
        let args = RunnerArgs {
            claimed: w.claimed.clone(),
            spec: w.intake.spec,
            walk: w.intake.walk,
            lanes,
            sessions: Arc::clone(&self.sessions),
            queue: self.pool.register(tid, window),
            window,
            config: Arc::clone(&self.config),
            spool: self.spool.clone(),
            report: self.reports_tx.clone(),
            start_paused: w.paused,
            archive: self.archive.clone(),
            post: self.post.as_ref().map(|(p, _)| p.clone()),
            steps: self.steps.as_ref().map(|(s, _)| s.clone()),
            task_runners: self.task_runners.clone(),
            recorders: self.recorders.as_ref().map(|(r, _)| r.clone()),
            once: self.once,
            alerts: self.notifier.as_ref().map(|n| n.alerts.clone()),
            rate_limit: self.rate_limit.clone(),
            run: w.run,
        };
        match runner::spawn(args) {
            Ok(h) => {
                if w.paused {
                    self.paused.insert(tid);
                }
                self.running.insert(tid, h);
            }
            Err(e) => {
                let why = format!("cannot start a thread: {e}");
                self.refuse(&w.claimed, &why, None);
            }
        }
    }

    /// Records the end of a runner.
    pub(super) fn ended(&mut self, rep: RunnerReport) {
        if let Some(h) = self.running.remove(&rep.tid) {
            h.join();
        }
        self.endings.extend(rep.unsettled);
        self.paused.remove(&rep.tid);
        if let Some(claimed) = rep.rerun {
            // The run is in the history; the next one is scheduled now,
            // or at the next start when the daemon is stopping.
            if !self.shutdown.load(std::sync::atomic::Ordering::Acquire) {
                self.admit(claimed, false);
            }
        }
        match rep.state {
            JobState::Done => self.summary.done += 1,
            JobState::Failed => self.summary.failed += 1,
            JobState::Cancelled => self.summary.cancelled += 1,
            JobState::Queued if rep.error.is_some() => self.summary.waiting += 1,
            _ => {}
        }
    }
}
