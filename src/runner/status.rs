//! The job's status file while it runs.
//!
//! Owns when the status was last written and whether it changed since.
//! Invariants: a change shows in the status file within
//! [`STATUS_EVERY`]; a running job rewrites it at least every
//! [`STATUS_REFRESH`] (bytes, `updated`), so a reader can tell a live job
//! from a stuck one; a status that cannot be written stops the job.

use std::time::{Duration, Instant};

use crate::job::{CostStatus, JobState, JobStatus, unix_now};
use crate::runner::meter::{Meter, eta};
use crate::runner::run::{Mode, Runner};
use crate::spool::write_status;

/// How often the status file is rewritten while something changes.
const STATUS_EVERY: Duration = Duration::from_millis(500);
/// How often a running job's status is rewritten even without changes.
const STATUS_REFRESH: Duration = Duration::from_secs(1);

/// When the status file was written.
pub(super) struct StatusFile {
    /// When the status file was last written.
    pub(super) written: Instant,
    /// The status changed since it was last written.
    pub(super) dirty: bool,
    /// Bytes, rate and ETA.
    pub(super) meter: Meter,
}

impl StatusFile {
    /// A status to write at once, for a run that starts with `bytes` done.
    pub(super) fn new(bytes: u64) -> StatusFile {
        StatusFile { written: Instant::now(), dirty: true, meter: Meter::new(bytes) }
    }

    /// Returns true if and only if the status is due: changed and not
    /// written for [`STATUS_EVERY`], or a running job's refresh.
    pub(super) fn due(&self, running: bool) -> bool {
        self.next(running).is_some_and(|t| Instant::now() >= t)
    }

    /// When the status is next due, if it will be without a change.
    pub(super) fn next(&self, running: bool) -> Option<Instant> {
        if self.dirty {
            Some(self.written + STATUS_EVERY)
        } else {
            running.then(|| self.written + STATUS_REFRESH)
        }
    }
}

impl Runner {
    /// The status object as of now.
    pub(super) fn status(&self, state: JobState, error: Option<String>) -> JobStatus {
        let p = &self.progress;
        let rows: u64 = p.outputs.values().map(|o| o.rows).sum();
        let (stage, now, total) = if !p.outputs.is_empty() {
            let stage = if state.is_terminal() { "finished" } else { "export" };
            (stage, rows, p.total_hint.unwrap_or(0).max(rows))
        } else if state.is_terminal() {
            ("finished", p.files_done() + p.skipped.len() as u64, p.files())
        } else if !self.live.inflight.is_empty() {
            // Recording: `now` counts the seconds recorded; `bytes` grows
            // with what the recordings under way hold.
            let (secs, _) = self.live.totals();
            ("record", secs as u64, 0)
        } else if !self.tasks.idle() || !p.tasks.is_empty() {
            // Remote tasks under way: their files join the total as they
            // are produced.
            ("process", p.files_done() + p.skipped.len() as u64 + p.permanent.len() as u64, p.files())
        } else if !p.listing_done && !self.listing_held() {
            ("list", p.found, p.total_hint.unwrap_or(0).max(p.found))
        } else if !p.listing_done {
            // The listing waits for the downloads, which are what the job
            // is doing now; the total is the provider's, when it has one.
            let finished = p.done.len() + p.skipped.len() as u64 + p.permanent.len() as u64;
            ("download", finished, p.total_hint.unwrap_or(0).max(p.found))
        } else {
            ("download", p.done.len() + p.skipped.len() as u64 + p.permanent.len() as u64, p.found)
        };
        let bytes = self.bytes_done();
        let (bytes_total, rate, eta_secs) = if state.is_terminal() {
            ((state == JobState::Done).then_some(bytes), 0, None)
        } else {
            let left = self.bytes_remaining();
            let rate = if state == JobState::Running { self.status_file.meter.rate() } else { 0 };
            (left.map(|l| bytes + l), rate, eta(left, rate))
        };
        JobStatus {
            tid: self.tid,
            name: self.spec.name.clone(),
            job_type: self.spec.job_type.clone(),
            stage: stage.into(),
            state,
            running: state == JobState::Running,
            now,
            total,
            save_path: self.spec.save_path.display().to_string(),
            error,
            instance: self.config.instance.clone(),
            file: self.claimed.original.clone(),
            found: p.found,
            done: p.files_done(),
            skipped: p.skipped.len() as u64,
            failed: p.failed.len() as u64,
            bytes,
            bytes_total,
            rate,
            eta_secs,
            updated: unix_now(),
            phases: if state.is_terminal() { Default::default() } else { self.tasks.phase_counts() },
            cost: (p.cost_estimate > 0 || self.tasks.budget.is_some()).then_some(CostStatus {
                estimate: p.cost_estimate,
                committed: p.cost_committed,
                cap: self.tasks.budget,
            }),
            possible_extra_charges: p.resent,
            schedule: self.run.as_ref().map(|r| r.status.clone()),
        }
    }

    /// The live state for status.
    pub(super) fn live_state(&self) -> JobState {
        match self.mode {
            Mode::Paused => JobState::Paused,
            _ => JobState::Running,
        }
    }

    /// Rewrites the status file. A status that cannot be written is the
    /// job's state failing to be written: the job stops.
    pub(super) fn write_status(&mut self) {
        self.status_file.written = Instant::now();
        self.status_file.dirty = false;
        if self.state_broken {
            // The final status says why; until then nothing is written.
            return;
        }
        let error = self
            .failure
            .clone()
            .or_else(|| self.listing.waiting.as_ref().map(|w| format!("waiting: {w}")))
            .or_else(|| self.tasks.parked_reason().map(|w| format!("waiting: {w}")))
            .or_else(|| self.listing.retrying.as_ref().map(|r| format!("retrying: {r}")));
        let state = self.live_state();
        let bytes = self.bytes_done();
        self.status_file.meter.sample(bytes, state == JobState::Running);
        let s = self.status(state, error);
        if let Err(e) = write_status(&self.spool, &s) {
            self.state_failed(&format!("status {}: {e}", self.spool.state_dir(self.tid).display()));
        }
    }
}
