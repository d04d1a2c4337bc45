//! A job's notifications: which targets, and "waiting" once per reason.
//!
//! Owns the choice between the job's own `notify` targets and the
//! configuration's, and the marker (`notified-waiting` in the job's state
//! folder) that keeps a job waiting for the same reason across restarts
//! from notifying again each time. Invariant: nothing here blocks or
//! fails the job; a marker that cannot be written costs at most a repeated
//! notification.

use crate::alerts::Event;
use crate::job::JobStatus;
use crate::runner::run::Runner;

/// The marker's file name.
const MARKER: &str = "notified-waiting";

impl Runner {
    /// Sends `event` with the job's status to the targets that want it.
    pub(super) fn alert(&self, event: Event, status: &JobStatus) {
        let Some(alerts) = &self.alerts else { return };
        alerts.send_status(event, status, self.spec.notify.as_deref().unwrap_or(&self.config.notify));
    }

    /// Sends "waiting" for `reason`, unless it was sent for the same
    /// reason before (by this run or an earlier one).
    pub(super) fn alert_waiting(&self, reason: &str) {
        let marker = self.spool.state_dir(self.tid).join(MARKER);
        if std::fs::read_to_string(&marker).is_ok_and(|r| r == reason) {
            return;
        }
        let status = self.status(self.live_state(), Some(format!("waiting: {reason}")));
        self.alert(Event::Waiting, &status);
        let _ = crate::durable::atomic_write(&marker, reason.as_bytes());
    }

    /// The job goes on: a later wait notifies again.
    pub(super) fn alert_resumed(&self) {
        let _ = std::fs::remove_file(self.spool.state_dir(self.tid).join(MARKER));
    }
}
