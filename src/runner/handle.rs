//! The thread of one job as the supervisor sees it.
//!
//! Owns the runner's public face: the commands it takes, the report it
//! sends when it ends, the handle with its heartbeat, and the thread
//! itself. Invariant: whatever happens inside the thread, a panic
//! included, exactly one report reaches the supervisor, and a job that
//! panicked ends failed with its checkpoint kept for `retry`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};

use crate::archive::Archive;
use crate::config::Config;
use crate::download::JobQueue;
use crate::job::{JobFlags, JobSpec, JobState, JobStatus, Tid};
use crate::postprocess::PostWorker;
use crate::providers::{Lanes, Walk};
use crate::record::Recorders;
use crate::runner::run::run;
use crate::session::Sessions;
use crate::spool::{Claimed, Ending, Spool, reject};
use crate::steps::{StepPool, TaskRunners};

/// Commands a runner accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerMsg {
    /// Stop requests, keep everything.
    Pause,
    /// Continue after a pause.
    Resume,
    /// Stop for good and end as cancelled.
    Cancel,
    /// The daemon stops: let in-flight files finish for the grace period,
    /// checkpoint, and leave the job to be resumed.
    Shutdown,
}

/// What a runner tells the supervisor when its thread ends.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerReport {
    /// The job.
    pub tid: Tid,
    /// Its state at the end (`queued` or `paused` when stopped by a
    /// shutdown).
    pub state: JobState,
    /// The reason of a failure.
    pub error: Option<String>,
    /// The job's end when the disk did not take it (its final status or
    /// the move of its file): the supervisor writes it later.
    pub unsettled: Option<Ending>,
    /// A run of a recurring job ended and is in its history: the job
    /// file stays claimed and the supervisor schedules the next run.
    pub rerun: Option<Claimed>,
}

/// The run of a recurring job that a runner carries out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// The run's number and start, on disk before the run began.
    pub mark: crate::spool::RunMark,
    /// What the status shows of the series while the run goes on.
    pub status: crate::job::ScheduleStatus,
    /// The rule, for the next run's time in the status the run ends with.
    pub recurrence: crate::job::Recurrence,
}

/// Everything a runner needs.
pub struct RunnerArgs {
    /// The job file.
    pub claimed: Claimed,
    /// The validated job.
    pub spec: JobSpec,
    /// The provider's walk.
    pub walk: Box<dyn Walk>,
    /// The account's pacing threads, if the walk has an account.
    pub lanes: Lanes,
    /// The daemon's logins, one per account.
    pub sessions: Arc<Sessions>,
    /// The job's queue into the download pool.
    pub queue: JobQueue,
    /// Most tasks in flight at once for this job.
    pub window: usize,
    /// The configuration.
    pub config: Arc<Config>,
    /// The spool.
    pub spool: Spool,
    /// Where the end is reported.
    pub report: Sender<RunnerReport>,
    /// Start paused (a pause request arrived before the job started).
    pub start_paused: bool,
    /// The download archive.
    pub archive: Option<Arc<Archive>>,
    /// The post-processing worker.
    pub post: Option<PostWorker>,
    /// The step pool for remote tasks.
    pub steps: Option<StepPool>,
    /// The registered task runners.
    pub task_runners: TaskRunners,
    /// The recorder threads for live streams.
    pub recorders: Option<Recorders>,
    /// `run --once`: a listing that has to wait (for a login) does not
    /// hold the run; the job stops, stays queued, and says why.
    pub once: bool,
    /// The notifier, if the daemon runs one.
    pub alerts: Option<crate::alerts::Alerts>,
    /// The daemon's bandwidth limit (`rate_limit`), shared by every job.
    pub rate_limit: Option<Arc<crate::download::Throttle>>,
    /// For a recurring job, the run this is.
    pub run: Option<RunInfo>,
}

/// Handle to a runner thread.
#[derive(Debug)]
pub struct RunnerHandle {
    /// The job.
    pub tid: Tid,
    /// Commands.
    tx: Sender<RunnerMsg>,
    /// The thread.
    join: Option<JoinHandle<()>>,
    /// When its loop last turned.
    beat: Arc<Heartbeat>,
}

/// When a runner's main loop last turned. The loop turns at least once a
/// second, so a heartbeat much older than that means a stuck job thread,
/// and the supervisor stops feeding systemd's watchdog.
#[derive(Debug)]
pub(super) struct Heartbeat {
    /// The clock's zero.
    base: Instant,
    /// Milliseconds since `base` at the last turn.
    ms: AtomicU64,
}

impl Heartbeat {
    /// A heartbeat that beat just now.
    fn new() -> Heartbeat {
        Heartbeat { base: Instant::now(), ms: AtomicU64::new(0) }
    }

    /// Records a turn of the loop.
    pub(super) fn beat(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last turn.
    fn age(&self) -> Duration {
        self.base.elapsed().saturating_sub(Duration::from_millis(self.ms.load(Ordering::Relaxed)))
    }
}

impl RunnerHandle {
    /// How long ago the runner's loop last turned (near zero while it
    /// works; it turns at least once a second, even when idle).
    pub fn stalled_for(&self) -> Duration {
        self.beat.age()
    }

    /// Sends a command (ignored when the runner has already ended).
    pub fn send(&self, msg: RunnerMsg) {
        let _ = self.tx.send(msg);
    }

    /// Waits for the thread to end.
    pub fn join(mut self) {
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Starts a runner thread.
pub fn spawn(args: RunnerArgs) -> std::io::Result<RunnerHandle> {
    let tid = args.claimed.tid;
    let (tx, rx) = bounded(16);
    let beat = Arc::new(Heartbeat::new());
    let thread_beat = Arc::clone(&beat);
    let join = thread::Builder::new().name(format!("job-{tid}")).spawn(move || {
        let report = args.report.clone();
        let (spool, claimed) = (args.spool.clone(), args.claimed.clone());
        // A panic is a failure someone must hear of, like any other.
        let alerts = args.alerts.clone();
        let targets = args.spec.notify.clone().unwrap_or_else(|| args.config.notify.clone());
        // The stop flag outlives a panic, so that the job's queued and
        // running downloads stop with it.
        let flags = Arc::new(JobFlags::default());
        let end = match guarded(|| run(args, &rx, &thread_beat, Arc::clone(&flags))) {
            Ok(end) => end,
            Err(why) => {
                flags.set_halted(true);
                let end = fail_after_panic(&spool, &claimed, &why);
                let status = end
                    .unsettled
                    .as_ref()
                    .map(|e| e.status.clone())
                    .or_else(|| crate::spool::read_status(&spool, claimed.tid).ok().flatten());
                if let (Some(a), Some(s)) = (&alerts, status) {
                    a.send_status(crate::alerts::Event::Failed, &s, &targets);
                }
                end
            }
        };
        let _ = report.send(end);
    })?;
    Ok(RunnerHandle { tid, tx, join: Some(join), beat })
}

/// Runs `f`, turning a panic into its message. A runner owns one job's
/// state only, so a bug hit by one job ends that job, not the daemon.
fn guarded(f: impl FnOnce() -> RunnerReport) -> Result<RunnerReport, String> {
    crate::job::catch_panic(f)
}

/// Ends a job whose runner panicked: failed, with the reason in its status
/// and next to its file in `failed/`. Its checkpoint stays, so `retry`
/// continues where it was.
fn fail_after_panic(spool: &Spool, claimed: &Claimed, why: &str) -> RunnerReport {
    let reason = format!("internal error (please report it): {why}; `spoolfetch retry` resumes the job");
    log::error!("job {}: {reason}", claimed.tid);
    let status = crate::spool::read_status(spool, claimed.tid)
        .ok()
        .flatten()
        .unwrap_or_else(|| JobStatus::claimed(claimed.tid, claimed.stem(), "", "", "", &claimed.original));
    let unsettled = crate::spool::reject(spool, claimed, status, &reason);
    RunnerReport { tid: claimed.tid, state: JobState::Failed, error: Some(reason), unsettled, rerun: None }
}

/// Ends a job that could not even start (damaged checkpoint).
pub(super) fn fail_early(args: &RunnerArgs, reason: &str) -> RunnerReport {
    let status = JobStatus::claimed(
        args.claimed.tid,
        &args.spec.name,
        &args.spec.job_type,
        &args.spec.save_path.display().to_string(),
        &args.config.instance,
        &args.claimed.original,
    );
    let unsettled = reject(&args.spool, &args.claimed, status, reason);
    RunnerReport {
        tid: args.claimed.tid,
        state: JobState::Failed,
        error: Some(reason.to_string()),
        unsettled,
        rerun: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_ages_until_it_beats() {
        let h = Heartbeat::new();
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.age() >= Duration::from_millis(50), "{:?}", h.age());
        h.beat();
        assert!(h.age() < Duration::from_millis(50), "{:?}", h.age());
    }

    #[test]
    fn a_runner_panic_fails_only_its_job() {
        assert_eq!(guarded(|| panic!("boom {}", 7)).expect_err("panicked"), "boom 7");
        assert_eq!(guarded(|| std::panic::panic_any(3u8)).expect_err("panicked"), "unknown panic");
        let ok = RunnerReport { tid: 5, state: JobState::Done, error: None, unsettled: None, rerun: None };
        assert_eq!(guarded(|| ok).expect("no panic").state, JobState::Done);

        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        spool.ensure("a").expect("spool");
        let claimed = Claimed {
            tid: 9,
            path: spool.work_dir("a").join(Spool::claimed_name(9, "art.json")),
            original: "art.json".into(),
        };
        std::fs::write(&claimed.path, b"{}").expect("job file");
        let rep = fail_after_panic(&spool, &claimed, "index out of bounds");
        assert_eq!(rep.state, JobState::Failed);
        let reason = std::fs::read_to_string(spool.failed_dir().join("9.art.json.reason")).expect("reason");
        assert!(reason.contains("internal error") && reason.contains("index out of bounds"), "{reason}");
        assert!(spool.failed_dir().join("9.art.json").exists() && !claimed.path.exists());
        let status = crate::spool::read_status(&spool, 9).expect("read").expect("status");
        assert_eq!((status.state, status.name.as_str()), (JobState::Failed, "art"));
    }
}
