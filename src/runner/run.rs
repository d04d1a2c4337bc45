//! The runner thread of one job.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, never, select};

use crate::archive::Archive;
use crate::checkpoint::{CheckpointStore, Item, Progress, Record};
use crate::config::Config;
use crate::download::{DownloadEvent, DownloadTask, JobQueue, Outcome};
use crate::durable::fsync_dir;
use crate::http::display_url;
use crate::job::{JobFlags, JobSpec, JobState, JobStatus, Tid, unix_now};
use crate::pacing::{Classify, Pacer, backoff_delay, cap_retry_after};
use crate::postprocess::{PostEvent, PostTask, PostWorker};
use crate::providers::{Api, Walk};
use crate::runner::lister::{Lister, ListerEvent};
use crate::runner::output;
use crate::spool::{Claimed, Ending, Spool, reject, write_status};

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
}

/// Everything a runner needs.
pub struct RunnerArgs {
    /// The job file.
    pub claimed: Claimed,
    /// The validated job.
    pub spec: JobSpec,
    /// The provider's walk.
    pub walk: Box<dyn Walk>,
    /// The account's pacer, if the walk has an account.
    pub pacer: Option<Pacer>,
    /// How API answers are read.
    pub classify: Classify,
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
    /// `run --once`: a listing that has to wait (for a login) does not
    /// hold the run; the job stops, stays queued, and says why.
    pub once: bool,
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
struct Heartbeat {
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
    fn beat(&self) {
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
        // The stop flag outlives a panic, so that the job's queued and
        // running downloads stop with it.
        let flags = Arc::new(JobFlags::default());
        let end = match guarded(|| run(args, &rx, &thread_beat, Arc::clone(&flags))) {
            Ok(end) => end,
            Err(why) => {
                flags.set_halted(true);
                fail_after_panic(&spool, &claimed, &why)
            }
        };
        let _ = report.send(end);
    })?;
    Ok(RunnerHandle { tid, tx, join: Some(join), beat })
}

/// Runs `f`, turning a panic into its message. A runner owns one job's
/// state only, so a bug hit by one job ends that job, not the daemon.
fn guarded(f: impl FnOnce() -> RunnerReport) -> Result<RunnerReport, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into())
    })
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
    RunnerReport { tid: claimed.tid, state: JobState::Failed, error: Some(reason), unsettled }
}

/// What the runner is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
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

/// How often queued checkpoint records are made durable.
const COMMIT_EVERY: Duration = Duration::from_millis(200);
/// Queued checkpoint bytes that force a commit.
const COMMIT_BYTES: usize = 256 * 1024;
/// How often the status file is rewritten while something changes.
const STATUS_EVERY: Duration = Duration::from_millis(500);
/// How often a running job's status is rewritten even without changes.
const STATUS_REFRESH: Duration = Duration::from_secs(1);
/// The listing stays at most this many unfinished items ahead of the
/// downloads: past it, the runner leaves the next page in the lister's
/// channel until downloads catch up. A 100,000-URL job then holds a few
/// pages of planned items in memory, not all of them (and its checkpoint
/// snapshot stays as small); a paced API listing, a few dozen items a
/// page, never gets that far ahead.
const LIST_AHEAD: usize = 4_000;

/// The runner's state; only its own thread touches it.
struct Runner {
    /// The job.
    tid: Tid,
    /// The job file.
    claimed: Claimed,
    /// The job.
    spec: JobSpec,
    /// Configuration.
    config: Arc<Config>,
    /// The spool.
    spool: Spool,
    /// The checkpoint (this thread is its only writer).
    store: CheckpointStore,
    /// The progress.
    progress: Progress,
    /// Stop flag shared with the pacer and the workers.
    flags: Arc<JobFlags>,
    /// The walk, while no lister holds it.
    walk: Option<Box<dyn Walk>>,
    /// The lister, while listing.
    lister: Option<Lister>,
    /// Start a lister again as soon as the walk comes back.
    relist: bool,
    /// API handle for listers.
    api: Api,
    /// Headers for every file.
    file_headers: Arc<[(String, String)]>,
    /// Into the pool.
    queue: JobQueue,
    /// Reports from the pool.
    events_tx: Sender<DownloadEvent>,
    /// Reports from the pool.
    events_rx: Receiver<DownloadEvent>,
    /// Most tasks in flight.
    window: usize,
    /// Items ready to dispatch.
    ready: VecDeque<u64>,
    /// Items waiting for a retry time.
    delayed: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Items being attempted.
    inflight: HashSet<u64>,
    /// Attempts per item in the current round.
    attempts: HashMap<u64, u32>,
    /// Folders with newly completed files, to fsync before journaling.
    dirs_to_sync: BTreeSet<PathBuf>,
    /// Folders whose own entry in their parent was fsynced already.
    dirs_known: HashSet<PathBuf>,
    /// When records were last made durable.
    last_commit: Instant,
    /// When the status file was last written.
    last_status: Instant,
    /// The status changed since it was last written.
    status_dirty: bool,
    /// What the runner is doing.
    mode: Mode,
    /// Current per-request timeout (grows per round with Increment).
    timeout: Duration,
    /// The reason the job is failing.
    failure: Option<String>,
    /// When the runner started, for the log.
    started: Instant,
    /// A pause request arrived before the job started.
    start_paused: bool,
    /// The download archive.
    archive: Option<Arc<Archive>>,
    /// Archive keys of items made durable as done, to write after the next
    /// commit.
    archive_due: Vec<String>,
    /// Archive keys of done items not yet committed.
    archive_pending: Vec<String>,
    /// The post-processing worker.
    post: Option<PostWorker>,
    /// Results from the post-processing worker.
    post_tx: Sender<PostEvent>,
    /// Results from the post-processing worker.
    post_rx: Receiver<PostEvent>,
    /// Items whose post step is queued or running.
    post_inflight: HashSet<u64>,
    /// Items whose post step waits for room in the worker's queue.
    post_backlog: VecDeque<u64>,
    /// What the listing waits for, when it waits.
    waiting: Option<String>,
    /// `run --once`: stop instead of waiting.
    once: bool,
    /// The job's own state could not be written: the checkpoint store is
    /// not written to again (a failed append may have left part of a
    /// record, which only the next open may cut), and the job is failing.
    state_broken: bool,
}

/// The thread body; returns the report.
fn run(args: RunnerArgs, rx: &Receiver<RunnerMsg>, beat: &Heartbeat, flags: Arc<JobFlags>) -> RunnerReport {
    let tid = args.claimed.tid;
    let state_dir = args.spool.state_dir(tid);
    let opened = args
        .spool
        .ensure_state_dir(tid)
        .map_err(|e| format!("cannot create {}: {e}", state_dir.display()))
        .and_then(|_| CheckpointStore::open(&state_dir).map_err(|e| e.to_string()));
    let (store, progress) = match opened {
        Ok(x) => x,
        Err(reason) => {
            log::error!("job {tid}: {reason}");
            return fail_early(&args, &reason);
        }
    };
    beat.beat();
    let (events_tx, events_rx) = bounded(args.window.max(1) * 2);
    let file_headers: Arc<[(String, String)]> = args.walk.file_headers().into();
    let api = Api::new(args.pacer.clone(), args.classify, Arc::clone(&flags), args.archive.clone());
    let (post_tx, post_rx) = bounded(64);
    let mut r = Runner {
        tid,
        claimed: args.claimed,
        spec: args.spec,
        config: args.config,
        spool: args.spool,
        store,
        progress,
        flags,
        walk: Some(args.walk),
        lister: None,
        relist: false,
        api,
        file_headers,
        queue: args.queue,
        events_tx,
        events_rx,
        window: args.window.max(1),
        ready: VecDeque::new(),
        delayed: BinaryHeap::new(),
        inflight: HashSet::new(),
        attempts: HashMap::new(),
        dirs_to_sync: BTreeSet::new(),
        dirs_known: HashSet::new(),
        last_commit: Instant::now(),
        last_status: Instant::now(),
        status_dirty: true,
        mode: Mode::Running,
        timeout: Duration::ZERO,
        failure: None,
        started: Instant::now(),
        start_paused: args.start_paused,
        archive: args.archive,
        archive_due: Vec::new(),
        archive_pending: Vec::new(),
        post: args.post,
        post_tx,
        post_rx,
        post_inflight: HashSet::new(),
        post_backlog: VecDeque::new(),
        waiting: None,
        once: args.once,
        state_broken: false,
    };
    r.timeout = r.round_timeout();
    r.main(rx, beat)
}

/// Ends a job that could not even start (damaged checkpoint).
fn fail_early(args: &RunnerArgs, reason: &str) -> RunnerReport {
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
    }
}

/// How a runner's main loop ended.
enum End {
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

impl Runner {
    /// The main loop.
    fn main(mut self, rx: &Receiver<RunnerMsg>, beat: &Heartbeat) -> RunnerReport {
        beat.beat();
        self.sweep_temporaries();
        if !self.progress.failed.is_empty() {
            // A restart (or `retry`) gives every failed item a new chance.
            self.record(Record::Reset);
        }
        for mark in self.progress.outputs.values().cloned().collect::<Vec<_>>() {
            let cut = match self.dest_of(&Item { path: mark.file.clone(), ..Item::default() }) {
                Some(file) => output::cut_to_mark(&file, &mark),
                None => Err(format!("unsafe output path {:?}", mark.file)),
            };
            if let Err(e) = cut {
                self.fail(e);
            }
        }
        let pending = self.progress.pending();
        self.ready = self.triage(pending).into();
        self.post_backlog = self.progress.post.keys().copied().collect();
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
            self.pump();
            self.pump_post();
            if let Some(end) = self.check_end() {
                break end;
            }
            self.maybe_commit();
            // Changes show within half a second; a running job rewrites
            // its status at least every second anyway (bytes, `updated`).
            let since = self.last_status.elapsed();
            if (self.status_dirty && since >= STATUS_EVERY)
                || (self.mode == Mode::Running && since >= STATUS_REFRESH)
            {
                self.write_status();
            }
            let lister_rx =
                if self.listing_held() { None } else { self.lister.as_ref().map(|l| l.events.clone()) };
            let timeout = self.next_wakeup();
            select! {
                recv(rx) -> msg => self.on_msg(msg.unwrap_or(RunnerMsg::Shutdown)),
                recv(lister_rx.as_ref().unwrap_or(&never())) -> ev => match ev {
                    Ok(ev) => self.on_lister(ev),
                    // A lister that vanished without a word panicked.
                    Err(_) => {
                        self.lister = None;
                        self.fail("the listing thread stopped unexpectedly".into());
                    }
                },
                recv(self.events_rx) -> ev => {
                    if let Ok(ev) = ev {
                        self.on_download(ev);
                    }
                },
                recv(self.post_rx) -> ev => {
                    if let Ok(ev) = ev {
                        self.on_post(ev);
                    }
                },
                default(timeout) => {}
            }
        };
        self.finish(end)
    }

    /// Per-request timeout of the current round (PixivOC's Increment).
    fn round_timeout(&self) -> Duration {
        if self.config.timeout_increment {
            self.config.timeout * self.progress.round.max(1)
        } else {
            self.config.timeout
        }
    }

    /// Returns true if and only if the next page must wait because the
    /// listing is [`LIST_AHEAD`] items ahead of the downloads. Only while
    /// running: a pausing, stopping or failing job takes its pages at once,
    /// so that its lister can hand the walk back.
    fn listing_held(&self) -> bool {
        self.mode == Mode::Running
            && self.lister.is_some()
            && self.progress.items.len().saturating_sub(self.progress.failed.len()) >= LIST_AHEAD
    }

    /// Queues a record and applies it.
    fn record(&mut self, rec: Record) {
        self.store.append(&rec);
        self.progress.apply(rec);
        self.status_dirty = true;
    }

    /// Starts (or restarts) the lister if the listing is not complete.
    fn start_listing(&mut self) {
        if self.progress.listing_done || self.lister.is_some() {
            return;
        }
        let Some(walk) = self.walk.take() else {
            // The walk is still with a stopping lister; start when it is
            // back.
            self.relist = true;
            return;
        };
        match Lister::start(walk, self.progress.cursor.clone(), self.api.clone(), &self.tid.to_string()) {
            Ok(l) => self.lister = Some(l),
            Err(e) => self.fail(format!("cannot start the listing thread: {e}")),
        }
    }

    /// Handles a command.
    fn on_msg(&mut self, msg: RunnerMsg) {
        match (msg, self.mode) {
            (RunnerMsg::Pause, Mode::Running) => {
                log::info!("job {}: paused", self.tid);
                self.mode = Mode::Paused;
                self.flags.set_halted(true);
                if let Some(l) = &self.lister {
                    l.stop();
                }
                self.relist = false;
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
                if self.lister.is_some() {
                    // The paused lister has not handed the walk back yet.
                    self.relist = true;
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
                if let Some(l) = &self.lister {
                    l.stop();
                }
                self.relist = false;
            }
            _ => {}
        }
    }

    /// Stops the lister and every in-flight attempt.
    fn halt_all(&mut self) {
        self.flags.set_halted(true);
        if let Some(l) = &self.lister {
            l.stop();
        }
        self.relist = false;
    }

    /// Handles a lister event.
    fn on_lister(&mut self, ev: ListerEvent) {
        match ev {
            ListerEvent::Page(page) => {
                let mut items = self.progress.filter_new(page.items);
                let mut end = page.next.is_none();
                if let Some(max) = self.spec.max_items {
                    let room = max.saturating_sub(self.progress.found);
                    if items.len() as u64 >= room {
                        items.truncate(usize::try_from(room).unwrap_or(usize::MAX));
                        end = true;
                    }
                }
                let first = self.progress.found;
                let count = items.len() as u64;
                let cursor = if end { None } else { page.next };
                self.waiting = None;
                let mut output = None;
                if let Some(recs) = &page.records {
                    let Some(file) = self.dest_of(&Item { path: recs.file.clone(), ..Item::default() })
                    else {
                        self.fail(format!("unsafe output path {:?}", recs.file));
                        return;
                    };
                    // The rows are durable before the cursor that follows
                    // them is journaled.
                    match output::append(&file, recs, self.progress.outputs.get(&recs.file)) {
                        Ok(mark) => output = Some(mark),
                        Err(e) => {
                            self.fail(e);
                            return;
                        }
                    }
                }
                self.record(Record::Found { items, cursor, end, total: page.total, output });
                let ready = self.triage((first..first + count).collect());
                // A page is rare and cheap to commit at once; a later crash
                // then never walks it again.
                self.commit_or_fail();
                if matches!(self.mode, Mode::Running | Mode::Paused) {
                    self.ready.extend(ready);
                }
                if let Some(l) = &self.lister {
                    l.ack();
                }
                if end && let Some(l) = self.lister.take() {
                    l.stop();
                }
            }
            ListerEvent::Finished(walk) => {
                self.lister = None;
                self.walk = Some(walk);
            }
            ListerEvent::Waiting(reason) => {
                if self.waiting.as_deref() != Some(reason.as_str()) {
                    log::warn!("job {}: waiting: {reason}", self.tid);
                }
                self.waiting = Some(reason);
                self.status_dirty = true;
                if self.once {
                    // A cron run must end: stop listing, let what is listed
                    // finish, and leave the job queued for the next run.
                    if let Some(l) = &self.lister {
                        l.stop();
                    }
                    self.relist = false;
                }
            }
            ListerEvent::Stopped(walk, err) => {
                self.lister = None;
                self.walk = Some(walk);
                if let Some(e) = err {
                    self.fail(format!("listing failed: {e}"));
                } else if self.relist && self.mode == Mode::Running {
                    self.relist = false;
                    self.start_listing();
                }
            }
        }
    }

    /// Handles a worker's report.
    fn on_download(&mut self, ev: DownloadEvent) {
        self.inflight.remove(&ev.item);
        let i = ev.item;
        match ev.outcome {
            Outcome::Done { bytes, already } => {
                if let Some(dir) = ev.dest.parent() {
                    self.dirs_to_sync.insert(dir.to_path_buf());
                }
                if already {
                    log::debug!("job {}: {} is already complete", self.tid, ev.dest.display());
                }
                self.attempts.remove(&i);
                if let Some(key) = self.progress.items.get(&i).and_then(|it| it.archive.clone()) {
                    self.archive_pending.push(key);
                }
                self.record(Record::Done { i, b: bytes });
                if self.progress.post.contains_key(&i) {
                    self.post_backlog.push_back(i);
                }
            }
            Outcome::Interrupted => {
                self.ready.push_front(i);
            }
            Outcome::Retry { reason, after } => {
                let n = self.attempts.entry(i).or_insert(0);
                *n += 1;
                let n = *n;
                let url = self.progress.items.get(&i).map(|it| display_url(&it.url)).unwrap_or_default();
                if n < self.config.retries {
                    let wait = match after {
                        Some(d) => cap_retry_after(d, self.config.backoff_max),
                        None => backoff_delay(n, Duration::from_millis(500), Duration::from_secs(30)),
                    };
                    log::info!("job {}: {url}: {reason}; retrying in {:.1} s", self.tid, wait.as_secs_f64());
                    self.delayed.push(Reverse((Instant::now() + wait, i)));
                } else {
                    log::warn!("job {}: {url}: {reason} ({n} attempts this round)", self.tid);
                    self.record(Record::Failed { i, r: format!("{url}: {reason}"), p: false });
                }
            }
            Outcome::Failed { reason } => {
                let url = self.progress.items.get(&i).map(|it| display_url(&it.url)).unwrap_or_default();
                log::warn!("job {}: {url}: {reason}", self.tid);
                self.record(Record::Failed { i, r: format!("{url}: {reason}"), p: true });
            }
        }
    }

    /// Records items that must not be downloaded (the listing marked them,
    /// or the archive knows them) as skipped; returns the rest.
    fn triage(&mut self, indexes: Vec<u64>) -> Vec<u64> {
        let mut out = Vec::with_capacity(indexes.len());
        for i in indexes {
            let Some(item) = self.progress.items.get(&i) else { continue };
            if let Some(r) = item.fail.clone() {
                log::warn!("job {}: {}: {r}", self.tid, item.path);
                self.record(Record::Failed { i, r, p: true });
                continue;
            }
            let reason = match (&item.skip, &item.archive, &self.archive) {
                (Some(r), _, _) => Some(r.clone()),
                (None, Some(key), Some(a)) if a.contains(key) => {
                    Some("already in the download archive".to_string())
                }
                _ => None,
            };
            match reason {
                Some(r) => {
                    log::debug!("job {}: skipping {}: {r}", self.tid, item.path);
                    self.record(Record::Skipped { i, r });
                }
                None => out.push(i),
            }
        }
        out
    }

    /// Hands post-processing steps to the worker while it has room.
    fn pump_post(&mut self) {
        if !matches!(self.mode, Mode::Running) {
            return;
        }
        while let Some(i) = self.post_backlog.pop_front() {
            let Some((path, step)) = self.progress.post.get(&i).cloned() else { continue };
            let Some(worker) = &self.post else {
                // No worker (it failed to start): the file stays as it is.
                self.record(Record::PostDone { i, r: Some("post-processing is not available".into()) });
                continue;
            };
            let Some(input) = self.dest_of(&Item { path: path.clone(), ..Item::default() }) else { continue };
            let crate::checkpoint::PostStep::Ugoira { out, .. } = &step;
            let Some(output) = self.dest_of(&Item { path: out.clone(), ..Item::default() }) else {
                self.record(Record::PostDone { i, r: Some(format!("unsafe output path {out:?}")) });
                continue;
            };
            let task = PostTask { item: i, input, output, step, reply: self.post_tx.clone() };
            match worker.try_send(task) {
                Ok(()) => {
                    self.post_inflight.insert(i);
                }
                Err(_) => {
                    self.post_backlog.push_front(i);
                    break;
                }
            }
        }
    }

    /// Handles a post-processing result.
    fn on_post(&mut self, ev: PostEvent) {
        self.post_inflight.remove(&ev.item);
        if let Some(parent) =
            self.progress.post.get(&ev.item).and_then(|(p, _)| Path::new(p).parent().map(Path::to_path_buf))
        {
            self.dirs_to_sync.insert(self.spec.job_dir().join(parent));
        }
        self.record(Record::PostDone { i: ev.item, r: ev.result.err() });
    }

    /// Moves items whose retry time has come to the ready queue.
    fn promote_delayed(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((t, i))) = self.delayed.peek().copied() {
            if t > now {
                break;
            }
            self.delayed.pop();
            self.ready.push_back(i);
        }
    }

    /// Hands ready items to the pool, up to the window.
    fn pump(&mut self) {
        if self.mode != Mode::Running {
            return;
        }
        while self.inflight.len() < self.window {
            let Some(i) = self.ready.pop_front() else { break };
            if self.inflight.contains(&i)
                || !self.progress.items.contains_key(&i)
                || self.progress.failed.contains_key(&i)
            {
                continue;
            }
            let Some(item) = self.progress.items.get(&i).cloned() else { continue };
            let Some(dest) = self.dest_of(&item) else {
                self.record(Record::Failed { i, r: format!("unsafe file path {:?}", item.path), p: true });
                continue;
            };
            let headers = if item.headers.is_empty() {
                Arc::clone(&self.file_headers)
            } else {
                self.file_headers.iter().chain(item.headers.iter()).cloned().collect()
            };
            let task = DownloadTask {
                job: self.tid,
                item: i,
                url: item.url,
                dest,
                headers,
                expected_size: item.size,
                md5: item.md5,
                inline: item.inline,
                timeout: self.timeout,
                min_speed: self.config.min_speed,
                min_speed_time: self.config.min_speed_time,
                flags: Arc::clone(&self.flags),
                reply: self.events_tx.clone(),
            };
            match self.queue.try_send(task) {
                Ok(()) => {
                    self.inflight.insert(i);
                }
                Err(_) => {
                    self.ready.push_front(i);
                    break;
                }
            }
        }
    }

    /// The final path of an item, `None` when its relative path is unsafe.
    fn dest_of(&self, item: &Item) -> Option<PathBuf> {
        let rel = Path::new(&item.path);
        let safe = !item.path.is_empty()
            && !item.path.contains('\0')
            && rel.components().all(|c| matches!(c, Component::Normal(_)));
        safe.then(|| self.spec.job_dir().join(rel))
    }

    /// Decides whether the main loop is over.
    fn check_end(&mut self) -> Option<End> {
        let idle = self.inflight.is_empty();
        match self.mode {
            Mode::Running => {
                if let (true, Some(why)) = (self.once, &self.waiting) {
                    let drained = self.lister.is_none()
                        && self.ready.is_empty()
                        && self.delayed.is_empty()
                        && idle
                        && self.post_inflight.is_empty();
                    return drained.then(|| End::Parked(format!("waiting: {why}")));
                }
                if !(self.progress.round_complete()
                    && self.ready.is_empty()
                    && self.delayed.is_empty()
                    && idle)
                {
                    return None;
                }
                let transient: Vec<u64> = self
                    .progress
                    .failed
                    .keys()
                    .copied()
                    .filter(|i| !self.progress.permanent.contains(i))
                    .collect();
                if !transient.is_empty() && self.progress.round < self.config.rounds {
                    let n = self.progress.round + 1;
                    self.record(Record::Round { n });
                    self.timeout = self.round_timeout();
                    self.attempts.clear();
                    log::info!(
                        "job {}: retry round {n} for {} files (timeout {} s)",
                        self.tid,
                        transient.len(),
                        self.timeout.as_secs()
                    );
                    self.ready.extend(transient);
                    return None;
                }
                if self.progress.failed.is_empty() {
                    Some(End::Done)
                } else {
                    let (first_i, first) =
                        self.progress.failed.iter().next().map(|(i, r)| (*i, r.clone())).unwrap_or_default();
                    let _ = first_i;
                    let total = self.progress.found - self.progress.skipped.len() as u64;
                    Some(End::Failed(format!(
                        "{} of {} files failed; first: {first}",
                        self.progress.failed.len(),
                        total
                    )))
                }
            }
            Mode::Paused => None,
            Mode::Cancelling => (idle && self.lister.is_none()).then_some(End::Cancelled),
            Mode::Failing => (idle && self.lister.is_none())
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
    fn fail(&mut self, reason: String) {
        log::error!("job {}: {reason}", self.tid);
        if self.failure.is_none() {
            self.failure = Some(reason);
        }
        if !matches!(self.mode, Mode::ShuttingDown { .. }) {
            self.mode = Mode::Failing;
        }
        self.halt_all();
    }

    /// When the loop must wake up at the latest.
    fn next_wakeup(&self) -> Duration {
        let now = Instant::now();
        let mut t = now + Duration::from_secs(1);
        if let Some(Reverse((d, _))) = self.delayed.peek() {
            t = t.min(*d);
        }
        if self.store.has_pending() {
            t = t.min(self.last_commit + COMMIT_EVERY);
        }
        if self.status_dirty {
            t = t.min(self.last_status + STATUS_EVERY);
        } else if self.mode == Mode::Running {
            t = t.min(self.last_status + STATUS_REFRESH);
        }
        if let Mode::ShuttingDown { deadline } = self.mode {
            t = t.min(deadline.max(now + Duration::from_millis(20)));
        }
        t.saturating_duration_since(now).max(Duration::from_millis(1))
    }

    /// Commits when enough time or bytes have gathered.
    fn maybe_commit(&mut self) {
        if self.store.has_pending()
            && (self.last_commit.elapsed() >= COMMIT_EVERY || self.store.pending_bytes() >= COMMIT_BYTES)
        {
            self.commit_or_fail();
        }
    }

    /// Makes completed files' folders and queued records durable; a
    /// failure here means progress cannot be recorded, so the job fails.
    fn commit_or_fail(&mut self) {
        if self.state_broken {
            return;
        }
        if let Err(e) = self.commit() {
            self.state_failed(&e);
        }
    }

    /// The job's own state cannot be written (a full or failing disk):
    /// the job stops, keeping its files and its last durable checkpoint,
    /// and fails with a reason that says how to continue it.
    fn state_failed(&mut self, what: &str) {
        if !self.state_broken {
            // This reason wins over an earlier one: it is what the user
            // must act on before `retry` can help.
            self.failure = None;
        }
        self.state_broken = true;
        self.fail(state_reason(self.tid, what));
    }

    /// The group commit: fsync the folders of completed files (and, once,
    /// their parents, which may be new), then the journal.
    fn commit(&mut self) -> Result<(), String> {
        for dir in std::mem::take(&mut self.dirs_to_sync) {
            fsync_dir(&dir).map_err(|e| format!("cannot fsync folder {}: {e}", dir.display()))?;
            if self.dirs_known.insert(dir.clone()) {
                let mut d = dir.as_path();
                while let Some(parent) = d.parent() {
                    if parent.as_os_str().is_empty() || !self.dirs_known.insert(parent.to_path_buf()) {
                        break;
                    }
                    let _ = fsync_dir(parent);
                    d = parent;
                }
            }
        }
        self.last_commit = Instant::now();
        // Keys of items done so far become durable with this commit.
        let due = std::mem::take(&mut self.archive_pending);
        self.store.commit(&self.progress).map_err(|e| e.to_string())?;
        self.archive_due.extend(due);
        if let (Some(a), false) = (&self.archive, self.archive_due.is_empty()) {
            // The files are in place and journaled; only now may the
            // archive say so. A failure is retried at the next commit.
            match a.insert_many(&self.archive_due) {
                Ok(()) => self.archive_due.clear(),
                Err(e) => log::warn!("job {}: {e}", self.tid),
            }
        }
        Ok(())
    }

    /// The status object as of now.
    fn status(&self, state: JobState, error: Option<String>) -> JobStatus {
        let p = &self.progress;
        let rows: u64 = p.outputs.values().map(|o| o.rows).sum();
        let (stage, now, total) = if !p.outputs.is_empty() {
            let stage = if state.is_terminal() { "finished" } else { "export" };
            (stage, rows, p.total_hint.unwrap_or(0).max(rows))
        } else if state.is_terminal() {
            ("finished", p.done.len() + p.skipped.len() as u64, p.found)
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
            done: p.done.len(),
            skipped: p.skipped.len() as u64,
            failed: p.failed.len() as u64,
            bytes: p.bytes.max(self.flags.bytes()),
            updated: unix_now(),
        }
    }

    /// The live state for status.
    fn live_state(&self) -> JobState {
        match self.mode {
            Mode::Paused => JobState::Paused,
            _ => JobState::Running,
        }
    }

    /// Rewrites the status file. A status that cannot be written is the
    /// job's state failing to be written: the job stops.
    fn write_status(&mut self) {
        self.last_status = Instant::now();
        self.status_dirty = false;
        if self.state_broken {
            // The final status says why; until then nothing is written.
            return;
        }
        let error = self.failure.clone().or_else(|| self.waiting.as_ref().map(|w| format!("waiting: {w}")));
        let s = self.status(self.live_state(), error);
        if let Err(e) = write_status(&self.spool, &s) {
            self.state_failed(&format!("status {}: {e}", self.spool.state_dir(self.tid).display()));
        }
    }

    /// Writes the final checkpoint and status and moves the job file.
    fn finish(mut self, mut end: End) -> RunnerReport {
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
        let status = self.status(state, reason.clone());
        let mut unsettled = None;
        if matches!(end, End::Stopped | End::Parked(_)) {
            // The job stays in work/ and resumes at the next start, which
            // writes its status again.
            if let Err(e) = write_status(&self.spool, &status) {
                log::warn!("job {}: cannot write status: {e}", self.tid);
            }
        } else {
            unsettled = Ending::new(self.claimed.clone(), status.clone()).settle_or_keep(&self.spool);
        }
        if matches!(end, End::Cancelled) {
            self.remove_empty_partials();
        }
        self.sweep_temporaries();
        let secs = self.started.elapsed().as_secs_f64();
        match &end {
            End::Done => log::info!(
                "job {} ({}) done: {} files, {} bytes in {secs:.1} s; checkpoint {} bytes",
                self.tid,
                self.spec.name,
                status.done,
                status.bytes,
                self.store.bytes_written()
            ),
            End::Failed(r) => log::warn!("job {} ({}) failed: {r}", self.tid, self.spec.name),
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
        RunnerReport { tid: self.tid, state, error: reason, unsettled }
    }
}

impl Runner {
    /// Removes the temporaries that processes killed mid-write (`kill -9`,
    /// a power cut) left in the job's folders; they may hold URLs with
    /// their tokens. Only the daemon's own temporary names of dead
    /// processes go.
    fn sweep_temporaries(&self) {
        let n = crate::durable::remove_orphaned_temporaries_below(&self.spec.job_dir(), SWEEP_DEPTH);
        if n > 0 {
            log::info!("job {}: removed {n} temporary file(s) left by an interrupted run", self.tid);
        }
    }

    /// Removes the empty partial files (and their metadata) of the job's
    /// unfinished items: a cancelled job keeps what it downloaded, not
    /// placeholders. A partial with bytes in it stays for a `retry`.
    fn remove_empty_partials(&self) {
        for item in self.progress.items.values() {
            let Some(dest) = self.dest_of(item) else { continue };
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
        let ok = RunnerReport { tid: 5, state: JobState::Done, error: None, unsettled: None };
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
