//! The end of a job that could not be written down at once.
//!
//! A job ends with two writes: its final status and the move of its file
//! from `work/<instance>/` to `done/` or `failed/` (with the reason beside
//! it). On a full or failing disk either can fail. The end is then kept as
//! an [`Ending`] and written again later, until both are on disk: the
//! invariant is that a job whose runner has ended is never left looking
//! "running", and that its file reaches `failed/` (where `retry` finds it)
//! as soon as the disk takes it.

use std::io;

use crate::job::{JobState, JobStatus};
use crate::spool::claim::{Claimed, move_ended, reason_path, write_reason};
use crate::spool::layout::Spool;
use crate::spool::status_store::{is_out_of_space, write_status};

/// A decided end whose status or move is not yet on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    /// The job file, still in `work/<instance>/` until moved.
    pub claimed: Claimed,
    /// The final status to write.
    pub status: JobStatus,
    /// The final status is on disk.
    status_written: bool,
    /// The job file is in `done/` or `failed/`.
    moved: bool,
    /// The reason of a failed job is beside its file (or none is due).
    reason_written: bool,
}

impl Ending {
    /// The end of `claimed` with `status` (whose state must be terminal;
    /// its error is the reason written beside a failed job).
    pub fn new(claimed: Claimed, status: JobStatus) -> Ending {
        let reason_written = status.state == JobState::Done;
        Ending { claimed, status, status_written: false, moved: false, reason_written }
    }

    /// Writes what is not yet on disk: the status, then the move. Returns
    /// the first error; a later call continues where this one stopped.
    pub fn settle(&mut self, spool: &Spool) -> io::Result<()> {
        if !self.status_written {
            self.status.running = false;
            self.status.updated = crate::job::unix_now();
            write_status(spool, &self.status)?;
            self.status_written = true;
        }
        let reason = self.status.error.clone().unwrap_or_else(|| "failed".into());
        if !self.moved {
            let failed = self.status.state != JobState::Done;
            if failed && !self.reason_written {
                // The reason goes first, so that a crash between the two
                // never leaves a failed job without it; but a full disk
                // must not keep the job from failed/, where `retry`
                // looks: the status already says why, and the reason
                // follows once there is room.
                match write_reason(spool, &self.claimed, &reason) {
                    Ok(()) => self.reason_written = true,
                    Err(e) if is_out_of_space(&e) => {}
                    Err(e) => return Err(e),
                }
            } else if !failed {
                // A job that failed before and now succeeded after `retry`
                // must not keep a stale reason in failed/.
                let _ = std::fs::remove_file(reason_path(spool, &self.claimed));
            }
            move_ended(spool, &self.claimed, failed)?;
            self.moved = true;
        }
        if !self.reason_written {
            let file = spool.failed_dir().join(Spool::claimed_name(self.claimed.tid, &self.claimed.original));
            // Once retried, the job is no longer in failed/ and this
            // reason is no longer its reason.
            if file.exists() {
                write_reason(spool, &self.claimed, &reason)?;
            }
            self.reason_written = true;
        }
        Ok(())
    }

    /// Settles now; returns `None` when everything is on disk, else the
    /// ending to settle later (the error is logged).
    pub fn settle_or_keep(mut self, spool: &Spool) -> Option<Ending> {
        match self.settle(spool) {
            Ok(()) => None,
            Err(e) => {
                log::error!(
                    "job {}: cannot record its end ({e}); it is written as soon as the disk takes it",
                    self.claimed.tid
                );
                Some(self)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_the_disk_refused_is_written_later_and_only_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        spool.ensure("a").expect("spool");
        let claimed = Claimed {
            tid: 3,
            path: spool.work_dir("a").join(Spool::claimed_name(3, "x.json")),
            original: "x.json".into(),
        };
        std::fs::write(&claimed.path, b"{}").expect("job file");
        let mut status = JobStatus::claimed(3, "x", "http.files", "/d", "a", "x.json");
        status.state = JobState::Failed;
        status.error = Some("disk full".into());
        // failed/ cannot take the reason: the status is written, the move
        // waits.
        std::fs::remove_dir(spool.failed_dir()).expect("rmdir");
        let mut end = Ending::new(claimed.clone(), status).settle_or_keep(&spool).expect("kept");
        let s = crate::spool::read_status(&spool, 3).expect("read").expect("status");
        assert_eq!((s.state, s.running), (JobState::Failed, false));
        assert!(claimed.path.exists());
        std::fs::create_dir(spool.failed_dir()).expect("mkdir");
        end.settle(&spool).expect("settles once there is room");
        assert!(!claimed.path.exists() && spool.failed_dir().join("3.x.json").exists());
        let reason = std::fs::read_to_string(spool.failed_dir().join("3.x.json.reason")).expect("reason");
        assert_eq!(reason, "disk full\n");
        end.settle(&spool).expect("settling again changes nothing");
    }
}
