//! Recurring jobs between their runs: when the next run begins, and
//! pause, resume and cancel while a job waits for it.
//!
//! Owns the table of this instance's scheduled jobs (their files stay
//! claimed in `work/<instance>/`, so no other daemon on the spool can
//! start them) and the decision, for every admitted recurring job, between
//! resuming its run, beginning the next one and waiting for its slot.
//! Invariants: a run's mark is on disk before the run starts, and the
//! history says whether it ended (see [`crate::spool::phase`]), so a
//! restart resumes an unfinished run, never begins a finished one again,
//! and runs a slot missed while the daemon was down once; cancel ends the
//! series; nothing here blocks the supervisor's loop on the network.

use crate::daemon::intake::Intake;
use crate::daemon::supervisor::Supervisor;
use crate::job::{Due, JobState, JobStatus, Recurrence, ScheduleStatus, Tid, unix_now, utc_text};
use crate::runner::RunInfo;
use crate::spool::{
    Claimed, Ending, Phase, begin_run, last_run, phase, read_mark, read_status, write_status,
};

/// A recurring job waiting for its next run.
pub(super) struct Scheduled {
    /// The job file, claimed by this instance.
    pub(super) claimed: Claimed,
    /// When the next run begins (Unix seconds).
    pub(super) at: u64,
    /// Paused: it does not begin until resumed.
    pub(super) paused: bool,
    /// The number of the last run.
    pub(super) runs: u64,
}

/// What an admitted recurring job does now.
pub(super) enum Next {
    /// Run (a new run, or the one under way before a stop).
    Run(RunInfo),
    /// Wait for its slot; it is in the table.
    Later,
    /// The rule has no slot left: the series is over.
    Over,
}

impl Supervisor {
    /// Decides what the admitted recurring job `claimed` does now.
    /// `paused` says it was paused (its status) when the daemon stopped.
    /// `run --once` begins at most one run of a series: a series whose
    /// runs take longer than its period would otherwise never let it end.
    pub(super) fn next_run(
        &mut self,
        claimed: &Claimed,
        intake: &Intake,
        rec: &Recurrence,
        paused: bool,
    ) -> Result<Next, String> {
        let may_begin = !(self.once && self.ran_once.contains(&claimed.tid));
        let tid = claimed.tid;
        let dir = self.spool.state_dir(tid);
        let mark = read_mark(&dir).map_err(|e| format!("cannot read the run mark: {e}"))?;
        let last = last_run(&dir).map_err(|e| format!("cannot read the run history: {e}"))?;
        let now = unix_now();
        let schedule = |run: u64, next_run: Option<u64>| ScheduleStatus {
            rule: rec.to_string(),
            run,
            next_run,
            last_run: last.clone(),
        };
        let begin = |run: u64| -> Result<Next, String> {
            let mark = begin_run(&dir, run, now).map_err(|e| format!("cannot begin run {run}: {e}"))?;
            log::info!("job {tid} ({}): run {run} begins ({rec})", intake.spec.name);
            Ok(Next::Run(RunInfo { mark, status: schedule(run, None), recurrence: rec.clone() }))
        };
        match phase(mark, last.as_ref()) {
            Phase::First => begin(1),
            Phase::InProgress(m) => {
                log::info!("job {tid} ({}): run {} continues", intake.spec.name, m.run);
                Ok(Next::Run(RunInfo { mark: m, status: schedule(m.run, None), recurrence: rec.clone() }))
            }
            Phase::Ended(m) => match rec.due(tid, Some(m.started), now) {
                Due::Now if !paused && may_begin => begin(m.run + 1),
                Due::Now => {
                    self.schedule(claimed, intake, schedule(m.run, Some(now)), now, paused);
                    Ok(Next::Later)
                }
                Due::At(at) => {
                    self.schedule(claimed, intake, schedule(m.run, Some(at)), at, paused);
                    Ok(Next::Later)
                }
                Due::Never => Ok(Next::Over),
            },
        }
    }

    /// Puts a job in the table and writes its status.
    fn schedule(&mut self, claimed: &Claimed, intake: &Intake, sched: ScheduleStatus, at: u64, paused: bool) {
        let tid = claimed.tid;
        if let Some(last) = &sched.last_run {
            log::info!(
                "job {tid} ({}): run {} ended {}; next run at {}{}",
                intake.spec.name,
                last.run,
                last.state.as_str(),
                utc_text(at),
                if paused { " once resumed" } else { "" }
            );
        }
        let runs = sched.run;
        let mut status = self.status_of(claimed, intake);
        status.schedule = Some(sched);
        self.scheduled.insert(tid, Scheduled { claimed: claimed.clone(), at, paused, runs });
        self.write_scheduled(&mut status, paused);
    }

    /// Writes the status of a job between runs.
    fn write_scheduled(&self, status: &mut JobStatus, paused: bool) {
        status.state = if paused { JobState::Paused } else { JobState::Queued };
        status.stage = "scheduled".into();
        status.running = false;
        status.error = None;
        status.rate = 0;
        status.eta_secs = None;
        status.phases.clear();
        status.instance.clone_from(&self.config.instance);
        status.updated = unix_now();
        if let Err(e) = write_status(&self.spool, status) {
            log::warn!("job {}: cannot write status: {e}", status.tid);
        }
    }

    /// Begins the runs whose slot has come, while job slots are free
    /// (not for `run --once`, which runs what was due when it started).
    pub(super) fn start_due(&mut self) {
        if self.once {
            return;
        }
        let now = unix_now();
        let due: Vec<Tid> =
            self.scheduled.iter().filter(|(_, s)| !s.paused && s.at <= now).map(|(t, _)| *t).collect();
        for tid in due {
            if self.free_slots() == 0 {
                break;
            }
            if let Some(s) = self.scheduled.remove(&tid) {
                self.admit(s.claimed, false);
            }
        }
    }

    /// The end of a series whose rule has no slot left: done, filed in
    /// `done/`.
    pub(super) fn end_series(&mut self, claimed: &Claimed, intake: &Intake) {
        let mut status = self.status_of(claimed, intake);
        status.state = JobState::Done;
        status.stage = "finished".into();
        self.endings.extend(Ending::new(claimed.clone(), status).settle_or_keep(&self.spool));
    }

    /// Applies a control request to a scheduled job; false when the job
    /// is not in the table.
    pub(super) fn control_scheduled(&mut self, tid: Tid, action: crate::spool::Action) -> bool {
        use crate::spool::Action;
        let Some(s) = self.scheduled.get_mut(&tid) else { return false };
        match action {
            Action::Pause | Action::Resume => {
                s.paused = action == Action::Pause;
                let paused = s.paused;
                if let Ok(Some(mut status)) = read_status(&self.spool, tid) {
                    self.write_scheduled(&mut status, paused);
                }
            }
            Action::Cancel => {
                let Some(s) = self.scheduled.remove(&tid) else { return true };
                let mut status = read_status(&self.spool, tid).ok().flatten().unwrap_or_else(|| {
                    JobStatus::claimed(
                        tid,
                        s.claimed.stem(),
                        "",
                        "",
                        &self.config.instance,
                        &s.claimed.original,
                    )
                });
                status.state = JobState::Cancelled;
                status.stage = "finished".into();
                status.error = Some(format!(
                    "cancelled by request; the series ended after {}",
                    crate::job::units::count(s.runs, "run")
                ));
                if let Some(sched) = &mut status.schedule {
                    sched.next_run = None;
                }
                log::info!("job {tid}: recurring job cancelled after {} run(s)", s.runs);
                self.endings.extend(Ending::new(s.claimed, status).settle_or_keep(&self.spool));
                self.summary.cancelled += 1;
            }
        }
        true
    }
}
