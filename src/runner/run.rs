//! The life cycle of one job's runner.
//!
//! Owns the job (its file, spec, progress and stop flag), the mode it is
//! in and how it ends; the seams (`schedule`, `commit`, `listing`, `post`,
//! `status`) own the rest of the runner's state and add their methods to
//! [`Runner`]. Invariants: the job file leaves `work/` only after the
//! final checkpoint and status are durable (or, when the disk refuses
//! them, the job ends failed and its end is written later); pause, cancel
//! and shutdown keep every completed file and every durable partial; a
//! job whose own state cannot be written stops rather than run on
//! without a record.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, never, select};

use crate::checkpoint::{CheckpointStore, FILES_LOG, FilesLog, Progress, Record};
use crate::config::Config;
use crate::job::{JobFlags, JobSpec, JobState, Tid};
use crate::providers::Api;
use crate::runner::commit::Commits;
use crate::runner::handle::{Heartbeat, RunnerArgs, RunnerMsg, RunnerReport, fail_early};
use crate::runner::listing::Listing;
use crate::runner::live::Live;
use crate::runner::output;
use crate::runner::post::Post;
use crate::runner::refresh::Refresh;
use crate::runner::schedule::Schedule;
use crate::runner::status::StatusFile;
use crate::runner::tasks::Tasks;
use crate::spool::{Claimed, Ending, Spool, write_status};

/// What the runner is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Listing and downloading.
    Running,
    /// Paused by request.
    Paused,
    /// Cancelling: waiting for in-flight attempts to stop.
    Cancelling,
    /// Failing: waiting for in-flight attempts to stop.
    Failing,
    /// Daemon shutdown; after `deadline` in-flight attempts are halted.
    ShuttingDown {
        /// End of the grace period.
        deadline: Instant,
    },
}

/// How a runner's main loop ended.
pub(super) enum End {
    /// Every item done or skipped.
    Done,
    /// Failed with a reason.
    Failed(String),
    /// Cancelled by request.
    Cancelled,
    /// The daemon stopped; the job stays claimed.
    Stopped,
    /// `run --once` and the listing has to wait: the job stays claimed
    /// and queued, with the reason.
    Parked(String),
}

/// The runner's state; only its own thread touches it. Each seam owns
/// its fields; what is left here is the job and its life cycle.
pub(super) struct Runner {
    /// The job.
    pub(super) tid: Tid,
    /// The job file.
    pub(super) claimed: Claimed,
    /// The job.
    pub(super) spec: JobSpec,
    /// Configuration.
    pub(super) config: Arc<Config>,
    /// The spool.
    pub(super) spool: Spool,
    /// The progress.
    pub(super) progress: Progress,
    /// Stop flag shared with the pacer and the workers.
    pub(super) flags: Arc<JobFlags>,
    /// What the runner is doing.
    pub(super) mode: Mode,
    /// The reason the job is failing.
    pub(super) failure: Option<String>,
    /// When the runner started, for the log.
    pub(super) started: Instant,
    /// A pause request arrived before the job started.
    pub(super) start_paused: bool,
    /// `run --once`: stop instead of waiting.
    pub(super) once: bool,
    /// The job's own state could not be written: the checkpoint store is
    /// not written to again (a failed append may have left part of a
    /// record, which only the next open may cut), and the job is failing.
    pub(super) state_broken: bool,
    /// Downloads: ready, delayed, in flight, rounds.
    pub(super) sched: Schedule,
    /// The checkpoint store and the archive.
    pub(super) commits: Commits,
    /// The walk and the lister.
    pub(super) listing: Listing,
    /// Post-processing steps.
    pub(super) post: Post,
    /// Remote tasks.
    pub(super) tasks: Tasks,
    /// Live recordings.
    pub(super) live: Live,
    /// Fresh URLs for expired downloads.
    pub(super) refresh: Refresh,
    /// When the status file was written.
    pub(super) status_file: StatusFile,
    /// The notifier.
    pub(super) alerts: Option<crate::alerts::Alerts>,
    /// For a recurring job, the run this is.
    pub(super) run: Option<super::RunInfo>,
}

/// The thread body; returns the report.
pub(super) fn run(
    args: RunnerArgs,
    rx: &Receiver<RunnerMsg>,
    beat: &Heartbeat,
    flags: Arc<JobFlags>,
) -> RunnerReport {
    let tid = args.claimed.tid;
    let state_dir = args.spool.state_dir(tid);
    let opened = args
        .spool
        .ensure_state_dir(tid)
        .map_err(|e| format!("cannot create {}: {e}", state_dir.display()))
        .and_then(|_| CheckpointStore::open(&state_dir).map_err(|e| e.to_string()))
        .and_then(|(store, progress)| {
            let files = FilesLog::open(&state_dir)
                .map_err(|e| format!("cannot open {}: {e}", state_dir.join(FILES_LOG).display()))?;
            Ok((store, files, progress))
        });
    let (store, files, mut progress) = match opened {
        Ok(x) => x,
        Err(reason) => {
            log::error!("job {tid}: {reason}");
            return fail_early(&args, &reason);
        }
    };
    progress.park_permanent();
    let bytes_at_start = progress.bytes;
    beat.beat();
    let file_headers: Arc<[(String, String)]> = args.walk.file_headers().into();
    let forward_headers = args.walk.forward_headers();
    let refreshes = args.walk.refreshes();
    let budget = args.walk.budget();
    let args_limit = args.rate_limit.clone();
    let api =
        Api::new(args.lanes.clone(), Arc::clone(&flags), args.archive.clone(), Arc::clone(&args.sessions));
    let mut r = Runner {
        tid,
        claimed: args.claimed,
        spec: args.spec,
        config: args.config,
        spool: args.spool,
        progress,
        flags,
        mode: Mode::Running,
        failure: None,
        started: Instant::now(),
        start_paused: args.start_paused,
        once: args.once,
        state_broken: false,
        sched: Schedule::new(args.queue, args.window, file_headers, forward_headers),
        commits: Commits::new(store, files, args.archive),
        listing: Listing::new(args.walk, api),
        post: Post::new(args.post),
        tasks: Tasks::new(args.steps, args.task_runners, budget),
        live: Live::new(args.recorders),
        refresh: Refresh::new(refreshes),
        status_file: StatusFile::new(bytes_at_start),
        alerts: args.alerts,
        run: args.run,
    };
    r.sched.timeout = r.round_timeout();
    // The daemon's limit and the job's own: a transfer keeps to both.
    let job_limit = r.spec.rate_limit.map(|n| Arc::new(crate::download::Throttle::new(n)));
    r.sched.limits = args_limit.into_iter().chain(job_limit).collect::<Vec<_>>().into();
    r.main(rx, beat)
}

impl Runner {
    /// The main loop.
    pub(super) fn main(mut self, rx: &Receiver<RunnerMsg>, beat: &Heartbeat) -> RunnerReport {
        beat.beat();
        self.sweep_temporaries();
        if !self.progress.failed.is_empty() {
            // A restart (or `retry`) gives every failed item a new chance.
            self.record(Record::Reset);
        }
        for mark in self.progress.outputs.values().cloned().collect::<Vec<_>>() {
            let cut = match self.dest_of(&mark.file) {
                Some(file) => output::cut_to_mark(&file, &mark),
                None => Err(format!("unsafe output path {:?}", mark.file)),
            };
            if let Err(e) = cut {
                self.fail(e);
            }
        }
        self.report_crossed_intents();
        let pending = self.progress.pending();
        self.sched.ready = self.triage(pending, true).into();
        self.post.backlog = self.progress.post.keys().copied().collect();
        if self.start_paused && !self.progress.paused {
            self.record(Record::Paused { v: true });
        }
        if self.progress.paused {
            self.mode = Mode::Paused;
            self.flags.set_halted(true);
            log::info!("job {}: resuming paused", self.tid);
        } else {
            self.start_listing();
        }
        self.commit_or_fail();
        self.write_status();
        let end = loop {
            beat.beat();
            self.promote_delayed();
            self.promote_polls();
            self.pump();
            self.start_refresh();
            self.pump_tasks();
            self.pump_live();
            self.pump_post();
            if let Some(end) = self.check_end() {
                break end;
            }
            self.maybe_commit();
            // Changes show within half a second; a running job rewrites
            // its status at least every second anyway (bytes, `updated`).
            if self.status_file.due(self.mode == Mode::Running) {
                self.write_status();
            }
            let lister_rx = if self.listing_held() {
                None
            } else {
                self.listing.lister.as_ref().map(|l| l.events.clone())
            };
            let refresh_rx = self.refresh.rx.clone();
            let timeout = self.next_wakeup();
            select! {
                recv(rx) -> msg => self.on_msg(msg.unwrap_or(RunnerMsg::Shutdown)),
                recv(lister_rx.as_ref().unwrap_or(&never())) -> ev => match ev {
                    Ok(ev) => self.on_lister(ev),
                    // A lister that vanished without a word panicked.
                    Err(_) => {
                        self.listing.lister = None;
                        self.fail("the listing thread stopped unexpectedly".into());
                    }
                },
                recv(refresh_rx.as_ref().unwrap_or(&never())) -> ev => match ev {
                    Ok(done) => self.on_refreshed(done),
                    Err(_) => self.refresher_lost(),
                },
                recv(self.sched.events_rx) -> ev => {
                    if let Ok(ev) = ev {
                        self.on_download(ev);
                    }
                },
                recv(self.post.rx) -> ev => {
                    if let Ok(ev) = ev {
                        self.on_post(ev);
                    }
                },
                recv(self.tasks.rx) -> ev => {
                    if let Ok(ev) = ev {
                        self.on_step(ev);
                    }
                },
                recv(self.live.rx) -> ev => {
                    if let Ok(ev) = ev {
                        self.on_live(ev);
                    }
                },
                default(timeout) => {}
            }
        };
        self.finish(end)
    }

    /// Handles a command.
    pub(super) fn on_msg(&mut self, msg: RunnerMsg) {
        match (msg, self.mode) {
            (RunnerMsg::Pause, Mode::Running) => {
                log::info!("job {}: paused", self.tid);
                self.mode = Mode::Paused;
                self.flags.set_halted(true);
                self.listing.stop();
                self.record(Record::Paused { v: true });
                self.commit_or_fail();
                self.write_status();
            }
            (RunnerMsg::Resume, Mode::Paused) => {
                log::info!("job {}: resumed", self.tid);
                self.mode = Mode::Running;
                self.flags.set_halted(false);
                self.record(Record::Paused { v: false });
                self.commit_or_fail();
                if self.listing.lister.is_some() {
                    // The paused lister has not handed the walk back yet.
                    self.listing.relist = true;
                } else {
                    self.start_listing();
                }
                self.write_status();
            }
            (RunnerMsg::Cancel, Mode::Running | Mode::Paused | Mode::ShuttingDown { .. }) => {
                log::info!("job {}: cancelling", self.tid);
                if self.progress.paused {
                    // A cancelled job that is retried starts running, not
                    // paused as it was when cancelled.
                    self.record(Record::Paused { v: false });
                }
                self.mode = Mode::Cancelling;
                self.halt_all();
            }
            (RunnerMsg::Shutdown, Mode::Running | Mode::Paused) => {
                self.mode = Mode::ShuttingDown { deadline: Instant::now() + self.config.shutdown_grace };
                self.listing.stop();
            }
            _ => {}
        }
    }

    /// Stops the lister and every in-flight attempt.
    pub(super) fn halt_all(&mut self) {
        self.flags.set_halted(true);
        self.listing.stop();
    }

    /// The final path of `path` (relative to the job's folder), `None`
    /// when it is unsafe.
    pub(super) fn dest_of(&self, path: &str) -> Option<PathBuf> {
        let rel = Path::new(path);
        let safe = !path.is_empty()
            && !path.contains('\0')
            && rel.components().all(|c| matches!(c, Component::Normal(_)));
        safe.then(|| self.spec.job_dir().join(rel))
    }

    /// Decides whether the main loop is over.
    pub(super) fn check_end(&mut self) -> Option<End> {
        // A step in flight may be making a call: its answer is waited for,
        // so that what it did is journaled.
        let idle =
            self.sched.inflight.is_empty() && self.tasks.inflight.is_empty() && self.live.inflight.is_empty();
        match self.mode {
            Mode::Running => self.running_end(),
            Mode::Paused => None,
            Mode::Cancelling => (idle && self.listing.lister.is_none()).then_some(End::Cancelled),
            Mode::Failing => (idle && self.listing.lister.is_none())
                .then(|| End::Failed(self.failure.clone().unwrap_or_else(|| "failed".into()))),
            Mode::ShuttingDown { deadline } => {
                if Instant::now() >= deadline {
                    self.flags.set_halted(true);
                }
                idle.then_some(End::Stopped)
            }
        }
    }

    /// Starts failing the job with a reason.
    pub(super) fn fail(&mut self, reason: String) {
        log::error!("job {}: {reason}", self.tid);
        if self.failure.is_none() {
            self.failure = Some(reason);
        }
        if !matches!(self.mode, Mode::ShuttingDown { .. }) {
            self.mode = Mode::Failing;
        }
        self.halt_all();
    }

    /// The job's own state cannot be written (a full or failing disk):
    /// the job stops, keeping its files and its last durable checkpoint,
    /// and fails with a reason that says how to continue it.
    pub(super) fn state_failed(&mut self, what: &str) {
        if !self.state_broken {
            // This reason wins over an earlier one: it is what the user
            // must act on before `retry` can help.
            self.failure = None;
        }
        self.state_broken = true;
        self.fail(state_reason(self.tid, what));
    }

    /// When the loop must wake up at the latest.
    pub(super) fn next_wakeup(&self) -> Duration {
        let now = Instant::now();
        let mut t = now + Duration::from_secs(1);
        let due = [
            self.sched.next_retry(),
            self.tasks.next_poll(),
            self.commits.next_due(),
            self.status_file.next(self.mode == Mode::Running),
        ];
        for d in due.into_iter().flatten() {
            t = t.min(d);
        }
        if let Mode::ShuttingDown { deadline } = self.mode {
            t = t.min(deadline.max(now + Duration::from_millis(20)));
        }
        t.saturating_duration_since(now).max(Duration::from_millis(1))
    }

    /// Writes the final checkpoint and status and moves the job file.
    pub(super) fn finish(mut self, mut end: End) -> RunnerReport {
        // Whatever happens next, the records so far become durable first.
        if !self.state_broken
            && let Err(e) = self.commit()
        {
            self.state_broken = true;
            let reason = state_reason(self.tid, &e);
            log::error!("job {}: {reason}", self.tid);
            if matches!(end, End::Done) {
                // Done but not recorded as done: `retry` finds the files
                // complete and records them.
                end = End::Failed(reason);
            }
        }
        let (state, reason) = match &end {
            End::Done => (JobState::Done, None),
            End::Failed(r) => (JobState::Failed, Some(r.clone())),
            End::Cancelled => {
                let kept = self.progress.done.len();
                (JobState::Cancelled, Some(format!("cancelled by request ({kept} completed files kept)")))
            }
            End::Stopped => (if self.progress.paused { JobState::Paused } else { JobState::Queued }, None),
            End::Parked(why) => (JobState::Queued, Some(why.clone())),
        };
        // The placeholders and temporaries go before the end is written:
        // whoever waits for the end (`cancel --wait`) sees the folder as
        // it stays.
        if matches!(end, End::Cancelled) {
            self.remove_empty_partials();
        }
        self.sweep_temporaries();
        let mut status = self.status(state, reason.clone());
        let mut state = state;
        let mut unsettled = None;
        let mut rerun = None;
        if matches!(end, End::Stopped | End::Parked(_)) {
            // The job stays in work/ and resumes at the next start, which
            // writes its status again.
            if let Err(e) = write_status(&self.spool, &status) {
                log::warn!("job {}: cannot write status: {e}", self.tid);
            }
        } else if matches!(end, End::Done | End::Failed(_)) && self.run.is_some() {
            match self.end_run(&mut status) {
                Ok(()) => rerun = Some(self.claimed.clone()),
                Err(why) => {
                    state = JobState::Queued;
                    end = End::Parked(why);
                }
            }
        } else {
            unsettled = Ending::new(self.claimed.clone(), status.clone()).settle_or_keep(&self.spool);
        }
        let series = self.run.is_some();
        match &end {
            // A run of a series that found nothing new is no news.
            End::Done if series && status.done == 0 => {}
            End::Done => self.alert(crate::alerts::Event::Done, &status),
            End::Failed(_) if series => self.alert(crate::alerts::Event::RecurringFailed, &status),
            End::Failed(_) => self.alert(crate::alerts::Event::Failed, &status),
            End::Cancelled => self.alert(crate::alerts::Event::Cancelled, &status),
            End::Parked(why) => self.alert_waiting(why.strip_prefix("waiting: ").unwrap_or(why)),
            End::Stopped => {}
        }
        let took = crate::job::units::human_duration(self.started.elapsed());
        let this_run = self.run.as_ref().map(|r| format!(" run {}", r.mark.run)).unwrap_or_default();
        match &end {
            End::Done => log::info!(
                "job {} ({}){this_run} done: {}, {} in {took}; checkpoint {}",
                self.tid,
                self.spec.name,
                crate::job::units::count(status.done, "file"),
                crate::job::units::human_bytes(status.bytes),
                crate::job::units::human_bytes(self.commits.store.bytes_written())
            ),
            End::Failed(r) => log::warn!("job {} ({}){this_run} failed: {r}", self.tid, self.spec.name),
            End::Cancelled => log::info!("job {} ({}) cancelled", self.tid, self.spec.name),
            End::Stopped => {
                log::info!("job {} ({}) stopped; it resumes at the next start", self.tid, self.spec.name)
            }
            End::Parked(why) => log::warn!(
                "job {} ({}) stays queued ({why}); it continues at the next run",
                self.tid,
                self.spec.name
            ),
        }
        RunnerReport { tid: self.tid, state, error: reason, unsettled, rerun }
    }
}

impl Runner {
    /// Removes the temporaries that processes killed mid-write (`kill -9`,
    /// a power cut) left in the job's folders; they may hold URLs with
    /// their tokens. Only the daemon's own temporary names of dead
    /// processes go.
    pub(super) fn sweep_temporaries(&self) {
        let n = crate::durable::remove_orphaned_temporaries_below(&self.spec.job_dir(), SWEEP_DEPTH);
        if n > 0 {
            log::info!("job {}: removed {n} temporary file(s) left by an interrupted run", self.tid);
        }
    }

    /// Removes the empty partial files (and their metadata) of the job's
    /// unfinished items: a cancelled job keeps what it downloaded, not
    /// placeholders. A partial with bytes in it stays for a `retry`.
    pub(super) fn remove_empty_partials(&self) {
        // Items that failed for good are parked: their attempt removed
        // its empty partial already.
        for (_, item) in self.progress.items.live() {
            let Some(dest) = self.dest_of(&item.path) else { continue };
            let (part, meta) = crate::download::part_paths(&dest);
            if std::fs::symlink_metadata(&part).is_ok_and(|m| m.is_file() && m.len() == 0) {
                let _ = std::fs::remove_file(&part);
                let _ = std::fs::remove_file(&meta);
            }
        }
    }
}

/// How deep below a job's folder the sweep for temporaries looks (item
/// paths put files in subfolders, a few levels at most).
const SWEEP_DEPTH: usize = 8;

/// The reason of a job stopped because its own state cannot be written.
fn state_reason(tid: Tid, what: &str) -> String {
    format!(
        "cannot write the job's state ({what}); the job stopped and keeps its files; `spoolfetch retry {tid}` \
         continues it once the disk has room"
    )
}
