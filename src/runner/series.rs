//! The end of one run of a recurring job.
//!
//! Owns what a runner does when a run of a series ends done or failed:
//! the history record and the status the job keeps between runs.
//! Invariant: the run's outcome is in the history before the runner
//! reports it (and so before the supervisor can begin the next run); a
//! history that cannot be written leaves the run "in progress", so the
//! next start resumes it, finds it finished, and records it then.

use crate::job::{JobState, JobStatus, RunRecord, unix_now};
use crate::runner::run::Runner;
use crate::spool::{append_run, write_status};

impl Runner {
    /// Records the end of this run and writes the status the job keeps
    /// until its next run; `status` is the run's final one. On an error,
    /// returns the reason the job now waits with (its status says so).
    pub(super) fn end_run(&self, status: &mut JobStatus) -> Result<(), String> {
        let Some(run) = &self.run else { return Ok(()) };
        let rec = RunRecord {
            run: run.mark.run,
            started: run.mark.started,
            ended: unix_now(),
            state: status.state,
            error: status.error.clone(),
        };
        let outcome = match append_run(&self.spool.state_dir(self.tid), &rec) {
            Ok(()) => {
                // The job goes on: its status never shows an end, and says
                // how this run ended and when the next one begins (as the
                // supervisor will find it: the first slot after this run's
                // start, or now if that passed).
                status.state = JobState::Queued;
                status.stage = "scheduled".into();
                status.error = None;
                if let Some(sched) = &mut status.schedule {
                    sched.next_run =
                        run.recurrence.next_after(self.tid, run.mark.started).map(|t| t.max(rec.ended));
                    sched.last_run = Some(rec);
                }
                Ok(())
            }
            Err(e) => {
                log::error!(
                    "job {}: cannot record the end of run {} in its history: {e}; it is recorded at the next \
                     start",
                    self.tid,
                    run.mark.run
                );
                let why = format!("cannot record the run's end: {e}");
                status.state = JobState::Queued;
                status.error = Some(why.clone());
                Err(why)
            }
        };
        if let Err(e) = write_status(&self.spool, status) {
            log::warn!("job {}: cannot write status: {e}", self.tid);
        }
        outcome
    }
}
