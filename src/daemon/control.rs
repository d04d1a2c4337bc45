//! Control requests and the ends of jobs.
//!
//! Owns applying `pause`, `resume` and `cancel` to this instance's jobs
//! (running or waiting for a slot), and writing the ends the disk did not
//! take at once. Invariants: a request is removed only once applied, or
//! once its job has ended (nobody could apply it then); a request for a
//! job of another instance is left for that instance; an end that could
//! not be written is written again every second until it is on disk.

use crate::daemon::jobs::Waiting;
use crate::daemon::supervisor::Supervisor;
use crate::job::JobState;
use crate::runner::RunnerMsg;
use crate::spool::{Action, ControlRequest, Ending, read_status, remove_request};

impl Supervisor {
    /// Applies control requests for jobs of this instance.
    pub(super) fn apply_controls(&mut self, control: Vec<ControlRequest>) {
        for req in control {
            if let Some(h) = self.running.get(&req.tid) {
                match req.action {
                    Action::Pause => {
                        h.send(RunnerMsg::Pause);
                        self.paused.insert(req.tid);
                    }
                    Action::Resume => {
                        h.send(RunnerMsg::Resume);
                        self.paused.remove(&req.tid);
                    }
                    Action::Cancel => {
                        h.send(RunnerMsg::Cancel);
                        self.paused.remove(&req.tid);
                    }
                }
            } else if let Some(pos) = self.waiting.iter().position(|w| w.claimed.tid == req.tid) {
                match req.action {
                    Action::Pause => self.waiting[pos].paused = true,
                    Action::Resume => self.waiting[pos].paused = false,
                    Action::Cancel => {
                        if let Some(w) = self.waiting.remove(pos) {
                            self.cancel_waiting(&w);
                        }
                    }
                }
                if let Some(w) = self.waiting.get(pos) {
                    self.write_queued(&w.claimed, &w.intake, w.paused);
                }
            } else if self.control_scheduled(req.tid, req.action) {
                // A recurring job between runs.
            } else {
                // Not ours. A request for a job that has ended can never be
                // applied by anyone; drop it.
                let ended =
                    read_status(&self.spool, req.tid).ok().flatten().is_none_or(|s| s.state.is_terminal());
                if !ended {
                    continue;
                }
                log::info!("ignoring a {:?} request for job {}, which is not active", req.action, req.tid);
            }
            if let Err(e) = remove_request(&req) {
                log::warn!("cannot remove control request {}: {e}", req.path.display());
            }
            self.start_waiting();
        }
    }

    /// Ends a job cancelled before it started.
    pub(super) fn cancel_waiting(&mut self, w: &Waiting) {
        let reason = "cancelled by request before it started";
        let mut status = self.status_of(&w.claimed, &w.intake);
        status.state = JobState::Cancelled;
        status.error = Some(reason.into());
        self.endings.extend(Ending::new(w.claimed.clone(), status).settle_or_keep(&self.spool));
        self.summary.cancelled += 1;
    }

    /// Writes the ends the disk did not take before (a full disk that has
    /// room again); each one that is on disk now is dropped.
    pub(super) fn settle_endings(&mut self) {
        let spool = &self.spool;
        self.endings.retain_mut(|end| match end.settle(spool) {
            Ok(()) => {
                log::info!(
                    "job {}: its end ({}) is recorded now",
                    end.claimed.tid,
                    end.status.state.as_str()
                );
                false
            }
            Err(e) => {
                log::debug!("job {}: its end still cannot be recorded: {e}", end.claimed.tid);
                true
            }
        });
    }
}
