//! The supervisor thread (the daemon's main thread).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select, tick};

use crate::config::Config;
use crate::daemon::intake::{Intake, reject_job};
use crate::daemon::signals::{self, SignalMsg};
use crate::daemon::systemd::Notifier;
use crate::download::Pool;
use crate::http::{NetOptions, build_agent};
use crate::job::{JobState, Tid};
use crate::pacing::{AccountPolicy, Pacer, default_classify};
use crate::postprocess::PostWorker;
use crate::runner::{self, RunnerArgs, RunnerHandle, RunnerMsg, RunnerReport};
use crate::spool::{
    Action, Claimed, ControlRequest, Ending, Spool, SpoolEvent, TidAllocator, WatchTiming, Watcher, claim,
    read_status, recover_own, remove_request, tid_claimed, write_status,
};

/// A job thread whose loop has not turned for this long is stuck (it turns
/// every second at least); the watchdog is then no longer fed, and systemd
/// restarts the daemon, which resumes every job from its checkpoint.
const RUNNER_STALL: Duration = Duration::from_secs(30);

/// How the daemon is started.
#[derive(Debug, Clone)]
pub struct Options {
    /// The spool folder.
    pub spool: PathBuf,
    /// The configuration.
    pub config: Config,
    /// `run --once`: exit when no work is left.
    pub once: bool,
    /// Install signal handlers (off in tests that run several daemons in
    /// one process).
    pub handle_signals: bool,
}

/// What happened during the run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Jobs that ended done.
    pub done: usize,
    /// Jobs that ended failed or were rejected.
    pub failed: usize,
    /// Jobs that ended cancelled.
    pub cancelled: usize,
    /// Jobs `run --once` left queued because they wait (for a login).
    pub waiting: usize,
    /// True when the run ended because of a signal.
    pub interrupted: bool,
}

/// A reason the daemon could not start or had to stop.
#[derive(Debug)]
#[non_exhaustive]
pub enum DaemonError {
    /// The spool cannot be set up.
    Spool(String),
    /// The network setup is invalid (proxy, CA file).
    Network(String),
    /// Another daemon with the same instance name holds the spool.
    Locked(String),
    /// A thread panicked.
    Fatal(String),
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Spool(s)
            | DaemonError::Network(s)
            | DaemonError::Locked(s)
            | DaemonError::Fatal(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for DaemonError {}

/// A claimed job waiting for a slot.
struct Waiting {
    /// The job file.
    claimed: Claimed,
    /// Its plan.
    intake: Intake,
    /// Start paused.
    paused: bool,
}

/// The supervisor's state.
struct Supervisor {
    /// Configuration.
    config: Arc<Config>,
    /// The spool.
    spool: Spool,
    /// The shared agent.
    agent: ureq::Agent,
    /// The pool.
    pool: Pool,
    /// Pacers by account key.
    pacers: HashMap<String, (Pacer, JoinHandle<()>)>,
    /// Raised at shutdown: pacers stop waiting.
    shutdown: Arc<AtomicBool>,
    /// Running jobs.
    running: BTreeMap<Tid, RunnerHandle>,
    /// Running jobs that are paused.
    paused: HashSet<Tid>,
    /// Claimed jobs waiting for a slot.
    waiting: VecDeque<Waiting>,
    /// Runner reports.
    reports_tx: Sender<RunnerReport>,
    /// TID allocation.
    tids: TidAllocator,
    /// TIDs whose retry request waits for the job to end (logged once).
    retry_held: HashSet<Tid>,
    /// Outcome counts.
    summary: Summary,
    /// The download archive (None when it cannot be opened: jobs still
    /// run, without archive skipping).
    archive: Option<Arc<crate::archive::Archive>>,
    /// The post-processing worker and its thread.
    post: Option<(PostWorker, JoinHandle<()>)>,
    /// `run --once`.
    once: bool,
    /// Ended jobs whose final status or move the disk did not take yet;
    /// written again every second until it does.
    endings: Vec<Ending>,
}

/// Runs the daemon until a signal (or, with `once`, until no work is left).
pub fn run(opts: Options) -> Result<Summary, DaemonError> {
    let config = Arc::new(opts.config);
    let spool = Spool::new(&opts.spool);
    spool
        .ensure(&config.instance)
        .map_err(|e| DaemonError::Spool(format!("cannot set up spool {}: {e}", spool.root().display())))?;
    let lock = lock_instance(&spool, &config.instance)?;
    sweep_state(&spool, &config);
    let agent =
        build_agent(&NetOptions::from_config(&config)).map_err(|e| DaemonError::Network(e.to_string()))?;
    let (fatal_tx, fatal_rx) = bounded::<String>(16);
    let pool = Pool::start(config.concurrency, &agent, &fatal_tx)
        .map_err(|e| DaemonError::Fatal(format!("cannot start download threads: {e}")))?;
    let (sig_tx, sig_rx) = bounded::<SignalMsg>(4);
    if opts.handle_signals {
        signals::install(sig_tx)
            .map_err(|e| DaemonError::Fatal(format!("cannot install signal handlers: {e}")))?;
    }
    let (reports_tx, reports_rx) = bounded::<RunnerReport>(64);
    let archive = open_archive(&config);
    let post = match PostWorker::start(16) {
        Ok(p) => Some(p),
        Err(e) => {
            log::error!("cannot start the post-processing thread: {e}; conversions are skipped");
            None
        }
    };
    let mut sup = Supervisor {
        config: Arc::clone(&config),
        spool: spool.clone(),
        agent,
        pool,
        pacers: HashMap::new(),
        shutdown: Arc::new(AtomicBool::new(false)),
        running: BTreeMap::new(),
        paused: HashSet::new(),
        waiting: VecDeque::new(),
        reports_tx,
        tids: TidAllocator::default(),
        retry_held: HashSet::new(),
        summary: Summary::default(),
        archive,
        post,
        once: opts.once,
        endings: Vec::new(),
    };
    let mut notifier = Notifier::new();

    // Recovery: this instance's unfinished jobs come first.
    let own = recover_own(&spool, &config.instance)
        .map_err(|e| DaemonError::Spool(format!("cannot list this instance's jobs: {e}")))?;
    if !own.is_empty() {
        log::info!("resuming {} unfinished job(s)", own.len());
    }
    for claimed in own {
        sup.admit(claimed, true);
    }
    let (spool_tx, spool_rx) = bounded::<SpoolEvent>(16);
    let timing = WatchTiming {
        mode: config.watch,
        rescan: config.rescan,
        poll: config.poll,
        settle: config.settle,
        max_bytes: config.max_job_bytes,
    };
    let watcher = Watcher::spawn(spool.clone(), timing, spool_tx)
        .map_err(|e| DaemonError::Fatal(format!("cannot start the spool watcher: {e}")))?;
    log::info!(
        "spoolfetch {} watching {} as instance {:?} ({} download threads, {} ms API interval)",
        env!("CARGO_PKG_VERSION"),
        spool.root().display(),
        config.instance,
        config.concurrency,
        config.interval.as_millis()
    );

    let ticker = tick(Duration::from_secs(1));
    let mut last_scan = Instant::now();
    let scan_period = config.rescan.max(config.poll);
    let mut fatal: Option<String> = None;
    let mut lost: Option<String> = None;
    let mut ready_sent = false;
    loop {
        select! {
            recv(spool_rx) -> ev => match ev {
                Ok(SpoolEvent::Scanned { ready, waiting, control }) => {
                    last_scan = Instant::now();
                    sup.apply_controls(control);
                    let claimed_any = sup.claim_ready(&watcher, ready);
                    if !ready_sent {
                        // READY=1 only after recovery and the first full
                        // scan: systemd then knows the spool is being served.
                        notifier.ready();
                        ready_sent = true;
                    }
                    if opts.once && !claimed_any && waiting == 0 && sup.idle() {
                        break;
                    }
                }
                Ok(SpoolEvent::Error(e)) => {
                    if let Some(m) = layout_lost(&spool, &config.instance, &lock) {
                        lost = Some(m);
                        break;
                    }
                    log::warn!("{e}");
                }
                Err(_) => {
                    fatal = Some("the spool watcher stopped".into());
                    break;
                }
            },
            recv(reports_rx) -> rep => {
                if let Ok(rep) = rep {
                    sup.ended(rep);
                    sup.start_waiting();
                    watcher.rescan();
                }
            },
            recv(sig_rx) -> sig => match sig {
                Ok(SignalMsg::Stop) => {
                    sup.summary.interrupted = true;
                    break;
                }
                Ok(SignalMsg::Rescan) => watcher.rescan(),
                Err(_) => {}
            },
            recv(fatal_rx) -> msg => {
                if let Ok(m) = msg {
                    log::error!("{m}");
                    fatal = Some(m);
                    break;
                }
            },
            recv(ticker) -> _ => {
                if let Some(m) = layout_lost(&spool, &config.instance, &lock) {
                    lost = Some(m);
                    break;
                }
                // Healthy: this loop runs, the watcher delivered a scan
                // within its period (plus slack for a slow share), and
                // every job thread's loop turned lately (it turns every
                // second at least).
                let stuck = sup.running.values().find(|h| h.stalled_for() > RUNNER_STALL);
                if let Some(h) = stuck {
                    log::error!(
                        "job {}: its thread has not turned for {} s; not feeding the watchdog",
                        h.tid,
                        h.stalled_for().as_secs()
                    );
                }
                let healthy = last_scan.elapsed() < scan_period + Duration::from_secs(10) && stuck.is_none();
                notifier.watchdog(healthy);
                sup.settle_endings();
                notifier.status(&format!(
                    "{} running, {} paused, {} waiting",
                    sup.running.len() - sup.paused.len(),
                    sup.paused.len(),
                    sup.waiting.len()
                ));
            },
        }
    }

    notifier.stopping();
    // The watcher may be blocked handing over a scan; closing its channel
    // releases it.
    drop(spool_rx);
    watcher.stop();
    if let Some(m) = &lost {
        log::error!("{m}");
    }
    let summary = sup.stop(&reports_rx);
    match (fatal, lost) {
        (Some(m), _) => Err(DaemonError::Fatal(m)),
        (None, Some(m)) => Err(DaemonError::Spool(m)),
        (None, None) => Ok(summary),
    }
}

/// Why the spool this daemon serves is no longer the one it set up, if
/// it is not: its root or this instance's work folder is gone, or the
/// lock file it holds was removed or replaced (then a second daemon of
/// the same instance could start). The daemon then stops rather than
/// recreate the layout: a share that was unmounted must not silently
/// become a fresh, empty spool.
fn layout_lost(spool: &Spool, instance: &str, lock: &File) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let root = spool.root();
    if !root.is_dir() {
        return Some(format!("the spool folder {} disappeared; stopping", root.display()));
    }
    let work = spool.work_dir(instance);
    if !work.is_dir() {
        return Some(format!("the work folder {} disappeared; stopping", work.display()));
    }
    let held = lock.metadata().ok()?;
    let same =
        std::fs::metadata(work.join(".lock")).is_ok_and(|m| m.dev() == held.dev() && m.ino() == held.ino());
    (!same).then(|| format!("the instance lock {} was removed; stopping", work.join(".lock").display()))
}

/// Removes the temporaries that killed processes left in the spool's
/// state folders (a status, a checkpoint snapshot, a reason, a control
/// request written at the moment of a `kill -9`) and in `state_dir`
/// (which holds tokens). Only the daemon's own temporary names of dead
/// processes go; the job files and every other name stay.
fn sweep_state(spool: &Spool, config: &Config) {
    let mut n = crate::durable::remove_orphaned_temporaries_below(&spool.state_root(), 1);
    for dir in [
        spool.control_dir(),
        spool.failed_dir(),
        spool.done_dir(),
        spool.retry_dir(),
        config.state_dir.clone(),
    ] {
        n += crate::durable::remove_orphaned_temporaries(&dir).unwrap_or(0);
    }
    if n > 0 {
        log::info!("removed {n} temporary file(s) left in the spool by an interrupted run");
    }
}

/// Opens the download archive in `state_dir` (created 0700: it sits next
/// to credentials). A failure is logged and the daemon runs without it.
fn open_archive(config: &Config) -> Option<Arc<crate::archive::Archive>> {
    if let Err(e) = create_private_dir(&config.state_dir) {
        log::warn!(
            "cannot create state_dir {}: {e}; running without a download archive",
            config.state_dir.display()
        );
        return None;
    }
    if let Some(fs) = crate::spool::detect_network_fs(&config.state_dir) {
        // SQLite's locking is unreliable on network filesystems, and the
        // credentials there are readable by whoever controls the share.
        log::warn!(
            "state_dir {} is on a network filesystem ({fs}); it should be on a local disk (the download \
             archive's SQLite locking is unreliable over {fs})",
            config.state_dir.display()
        );
    }
    match crate::archive::Archive::open(&config.state_dir.join("archive.sqlite3")) {
        Ok(a) => Some(Arc::new(a)),
        Err(e) => {
            log::warn!("{e}; running without a download archive");
            None
        }
    }
}

/// Creates a folder readable by its owner only.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.is_dir() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        log::warn!(
            "state_dir {} is readable by others (mode {:o}); it holds credentials",
            dir.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// Takes this instance's lock on the spool, so that two daemons started
/// with the same instance name cannot both run its jobs.
fn lock_instance(spool: &Spool, instance: &str) -> Result<File, DaemonError> {
    let path = spool.work_dir(instance).join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| DaemonError::Spool(format!("cannot open {}: {e}", path.display())))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            return Err(DaemonError::Locked(format!(
                "another spoolfetch with instance name {instance:?} is already running on this spool (set a different `instance`)"
            )));
        }
        // Some network filesystems have no locking (NFS without lockd);
        // the spool still works, but nothing guards the instance name.
        Err(e) => log::warn!(
            "cannot lock {} ({e}); make sure only one daemon uses instance {instance:?} on this spool",
            path.display()
        ),
    }
    Ok(file)
}

impl Supervisor {
    /// Returns true if and only if nothing is running or waiting (paused
    /// jobs aside).
    fn idle(&self) -> bool {
        self.waiting.is_empty() && self.running.len() == self.paused.len()
    }

    /// Free job slots; paused jobs do not hold one.
    fn free_slots(&self) -> usize {
        self.config.jobs.saturating_sub(self.running.len() - self.paused.len() + self.waiting.len())
    }

    /// Claims ready files while slots are free; returns true if any was
    /// claimed.
    fn claim_ready(&mut self, watcher: &Watcher, ready: Vec<crate::spool::Candidate>) -> bool {
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
    fn admit(&mut self, claimed: Claimed, recovered: bool) {
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
                        let end = reject_job(&self.spool, &claimed, &self.config, &why, Some(&intake.spec));
                        self.endings.extend(end);
                        self.summary.failed += 1;
                        return;
                    }
                }
                let paused = recovered
                    && read_status(&self.spool, claimed.tid)
                        .ok()
                        .flatten()
                        .is_some_and(|s| s.state == JobState::Paused);
                self.write_queued(&claimed, &intake, paused);
                self.waiting.push_back(Waiting { claimed, intake, paused });
                self.start_waiting();
            }
            Err(rejected) => {
                let end = reject_job(
                    &self.spool,
                    &claimed,
                    &self.config,
                    &rejected.reason.0,
                    rejected.spec.as_deref(),
                );
                self.endings.extend(end);
                self.summary.failed += 1;
            }
        }
    }

    /// Writes the status of a claimed, not yet started job.
    fn write_queued(&self, claimed: &Claimed, intake: &Intake, paused: bool) {
        let mut status = read_status(&self.spool, claimed.tid).ok().flatten().unwrap_or_else(|| {
            crate::job::JobStatus::claimed(
                claimed.tid,
                &intake.spec.name,
                &intake.spec.job_type,
                &intake.spec.save_path.display().to_string(),
                &self.config.instance,
                &claimed.original,
            )
        });
        status.state = if paused { JobState::Paused } else { JobState::Queued };
        status.running = false;
        status.error = None;
        status.instance.clone_from(&self.config.instance);
        if let Err(e) = write_status(&self.spool, &status) {
            log::warn!("job {}: cannot write status: {e}", claimed.tid);
        }
    }

    /// Starts waiting jobs while slots are free.
    fn start_waiting(&mut self) {
        while self.running.len() - self.paused.len() < self.config.jobs {
            let Some(w) = self.waiting.pop_front() else { break };
            self.start(w);
        }
    }

    /// Starts a runner.
    fn start(&mut self, w: Waiting) {
        let tid = w.claimed.tid;
        let account = w.intake.walk.account();
        let (pacer, classify) = match &account {
            Some(a) => (self.pacer_for(a), a.classify),
            None => (None, default_classify as crate::pacing::Classify),
        };
        let window = self.config.concurrency * 2;
        let args = RunnerArgs {
            claimed: w.claimed.clone(),
            spec: w.intake.spec,
            walk: w.intake.walk,
            pacer,
            classify,
            queue: self.pool.register(tid, window),
            window,
            config: Arc::clone(&self.config),
            spool: self.spool.clone(),
            report: self.reports_tx.clone(),
            start_paused: w.paused,
            archive: self.archive.clone(),
            post: self.post.as_ref().map(|(p, _)| p.clone()),
            once: self.once,
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
                let end = reject_job(&self.spool, &w.claimed, &self.config, &why, None);
                self.endings.extend(end);
            }
        }
    }

    /// The pacer of an account, started on first use.
    fn pacer_for(&mut self, account: &crate::providers::AccountSpec) -> Option<Pacer> {
        if let Some((p, _)) = self.pacers.get(&account.key) {
            return Some(p.clone());
        }
        let policy = AccountPolicy {
            interval: self.config.interval,
            retries: 3,
            rate_limit_base: account.rate_limit_base,
            backoff_max: self.config.backoff_max,
            max_rate_limited: 20,
            timeout: self.config.timeout,
            max_body: 64 << 20,
            bucket: account.bucket,
        };
        match Pacer::spawn(&account.key, self.agent.clone(), policy, Arc::clone(&self.shutdown)) {
            Ok((p, join)) => {
                self.pacers.insert(account.key.clone(), (p.clone(), join));
                Some(p)
            }
            Err(e) => {
                log::error!("cannot start the pacing thread of {}: {e}", account.key);
                None
            }
        }
    }

    /// Applies control requests for jobs of this instance.
    fn apply_controls(&mut self, control: Vec<ControlRequest>) {
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
    fn cancel_waiting(&mut self, w: &Waiting) {
        let reason = "cancelled by request before it started";
        let mut status = read_status(&self.spool, w.claimed.tid).ok().flatten().unwrap_or_else(|| {
            crate::job::JobStatus::claimed(
                w.claimed.tid,
                &w.intake.spec.name,
                &w.intake.spec.job_type,
                &w.intake.spec.save_path.display().to_string(),
                &self.config.instance,
                &w.claimed.original,
            )
        });
        status.state = JobState::Cancelled;
        status.error = Some(reason.into());
        self.endings.extend(Ending::new(w.claimed.clone(), status).settle_or_keep(&self.spool));
        self.summary.cancelled += 1;
    }

    /// Writes the ends the disk did not take before (a full disk that has
    /// room again); each one that is on disk now is dropped.
    fn settle_endings(&mut self) {
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

    /// Records the end of a runner.
    fn ended(&mut self, rep: RunnerReport) {
        if let Some(h) = self.running.remove(&rep.tid) {
            h.join();
        }
        self.endings.extend(rep.unsettled);
        self.paused.remove(&rep.tid);
        match rep.state {
            JobState::Done => self.summary.done += 1,
            JobState::Failed => self.summary.failed += 1,
            JobState::Cancelled => self.summary.cancelled += 1,
            JobState::Queued if rep.error.is_some() => self.summary.waiting += 1,
            _ => {}
        }
    }

    /// Graceful stop: runners checkpoint, in-flight files get the grace
    /// period, then blocked transfers are cut.
    fn stop(mut self, reports: &Receiver<RunnerReport>) -> Summary {
        for h in self.running.values() {
            h.send(RunnerMsg::Shutdown);
        }
        self.shutdown.store(true, Ordering::Release);
        let grace = self.config.shutdown_grace;
        let cut_at = Instant::now() + grace + Duration::from_millis(500);
        let give_up = cut_at + Duration::from_secs(10);
        let mut cut = false;
        while !self.running.is_empty() {
            let now = Instant::now();
            if now >= give_up {
                log::error!(
                    "{} job(s) did not stop in time; their checkpoints are still consistent",
                    self.running.len()
                );
                break;
            }
            if !cut && now >= cut_at {
                // Transfers blocked in a read return at once; their
                // partial files keep what was fsynced.
                self.agent.clone().shutdown();
                cut = true;
            }
            let wait = if cut { give_up - now } else { cut_at - now };
            if let Ok(rep) = reports.recv_timeout(wait) {
                self.ended(rep);
            }
        }
        // Whatever a thread is stuck in, the process ends by `hard`: a
        // thread still busy then is left behind (named in the log), and
        // its job, still in work/, resumes from its checkpoint at the
        // next start.
        let hard = give_up.max(Instant::now() + Duration::from_secs(2));
        // A last chance for ends the disk did not take; what is still
        // not on disk is in work/ and resumes at the next start.
        self.settle_endings();
        for (p, _) in self.pacers.values() {
            p.quit();
        }
        for (_, (_, j)) in self.pacers.drain() {
            let _ = crate::download::join_by(j, hard);
        }
        let agent = self.agent.clone();
        self.pool.shutdown_by(cut_at, hard, move || {
            if !cut {
                agent.shutdown();
            }
        });
        if let Some((p, join)) = self.post.take() {
            // A conversion can take long; it writes to a temporary file and
            // renames, so it is safe to leave it behind at exit and redo it
            // at the next start.
            p.quit();
            if join.is_finished() {
                let _ = join.join();
            }
        }
        self.summary
    }
}
