//! The supervisor thread (the daemon's main thread): its state, its loop
//! and its stop.
//!
//! Owns the wiring of a daemon run (pool, watcher, signals, systemd
//! notification, post-processing worker) and the order of its events;
//! the job table, control requests, pacers and startup checks live in
//! their own modules beside this one. Invariants: only this thread claims
//! and starts jobs; on a stop it lets runners checkpoint, gives in-flight
//! files the grace period, then cuts blocked transfers, and ends within a
//! bound whatever a thread is stuck in.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select, tick};

use crate::config::Config;
use crate::daemon::jobs::Waiting;
use crate::daemon::signals::{self, SignalMsg};
use crate::daemon::startup;
use crate::daemon::systemd::Notifier;
use crate::download::Pool;
use crate::http::{NetOptions, build_agent};
use crate::job::Tid;
use crate::pacing::Pacer;
use crate::postprocess::PostWorker;
use crate::record::Recorders;
use crate::runner::{RunnerHandle, RunnerMsg, RunnerReport};
use crate::session::Sessions;
use crate::spool::{Ending, Spool, SpoolEvent, TidAllocator, WatchTiming, Watcher, recover_own};
use crate::steps::{StepPool, TaskRunners};

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

/// The supervisor's state.
pub(super) struct Supervisor {
    /// Configuration.
    pub(super) config: Arc<Config>,
    /// The spool.
    pub(super) spool: Spool,
    /// The shared agent.
    pub(super) agent: ureq::Agent,
    /// The pool.
    pub(super) pool: Pool,
    /// Pacers by account key.
    pub(super) pacers: HashMap<String, (Pacer, JoinHandle<()>)>,
    /// Provider logins by account, shared by every job of an account.
    pub(super) sessions: Arc<Sessions>,
    /// Raised at shutdown: pacers stop waiting.
    pub(super) shutdown: Arc<AtomicBool>,
    /// Running jobs.
    pub(super) running: BTreeMap<Tid, RunnerHandle>,
    /// Running jobs that are paused.
    pub(super) paused: HashSet<Tid>,
    /// Claimed jobs waiting for a slot.
    pub(super) waiting: VecDeque<Waiting>,
    /// Recurring jobs waiting for their next run.
    pub(super) scheduled: BTreeMap<Tid, crate::daemon::recurring::Scheduled>,
    /// Recurring jobs that began or resumed a run in this daemon's life
    /// (read only by `run --once`, which runs one run of a series).
    pub(super) ran_once: HashSet<Tid>,
    /// Runner reports.
    pub(super) reports_tx: Sender<RunnerReport>,
    /// TID allocation.
    pub(super) tids: TidAllocator,
    /// TIDs whose retry request waits for the job to end (logged once).
    pub(super) retry_held: HashSet<Tid>,
    /// Outcome counts.
    pub(super) summary: Summary,
    /// The download archive (None when it cannot be opened: jobs still
    /// run, without archive skipping).
    pub(super) archive: Option<Arc<crate::archive::Archive>>,
    /// The post-processing worker and its thread.
    pub(super) post: Option<(PostWorker, JoinHandle<()>)>,
    /// The step pool of remote tasks and its threads.
    pub(super) steps: Option<(StepPool, Vec<JoinHandle<()>>)>,
    /// Every provider's task runners.
    pub(super) task_runners: TaskRunners,
    /// The recorder threads of live streams.
    pub(super) recorders: Option<(Recorders, Vec<JoinHandle<()>>)>,
    /// `run --once`.
    pub(super) once: bool,
    /// Ended jobs whose final status or move the disk did not take yet;
    /// written again every second until it does.
    pub(super) endings: Vec<Ending>,
    /// The notifier (none without `notify` targets, or when its thread
    /// cannot start).
    pub(super) notifier: Option<crate::alerts::Notifier>,
    /// The daemon-wide bandwidth limit, shared by every job's downloads.
    pub(super) rate_limit: Option<Arc<crate::download::Throttle>>,
}

/// The notifier, with an agent of its own (the daemon's is cut at
/// shutdown, when the jobs' last notifications still have to go out).
/// It runs whenever the state folder has an outbox from an earlier run or
/// a target is configured: a job may also name its own.
fn start_notifier(config: &Config) -> Option<crate::alerts::Notifier> {
    let agent = match build_agent(&NetOptions::from_config(config)) {
        Ok(a) => a,
        Err(e) => {
            log::error!("cannot start notifications: {e}");
            return None;
        }
    };
    match crate::alerts::Notifier::start(&config.state_dir, &config.instance, agent) {
        Ok(n) => Some(n),
        Err(e) => {
            log::error!("cannot start the notification thread: {e}; no notifications are sent");
            None
        }
    }
}

/// Threads of the step pool, shared by every job's remote tasks.
const STEP_THREADS: usize = 4;

/// Runs the daemon until a signal (or, with `once`, until no work is left).
pub fn run(opts: Options) -> Result<Summary, DaemonError> {
    let config = Arc::new(opts.config);
    let spool = Spool::new(&opts.spool);
    spool
        .ensure(&config.instance)
        .map_err(|e| DaemonError::Spool(format!("cannot set up spool {}: {e}", spool.root().display())))?;
    let lock = startup::lock_instance(&spool, &config.instance)?;
    startup::sweep_state(&spool, &config);
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
    let archive = startup::open_archive(&config);
    let post = match PostWorker::start(16, crate::providers::post_runners()) {
        Ok(p) => Some(p),
        Err(e) => {
            log::error!("cannot start the post-processing thread: {e}; post-processing steps are skipped");
            None
        }
    };
    // Remote-task steps mostly wait for an answer: a few threads keep
    // several items of every job in flight.
    let steps = match StepPool::start(STEP_THREADS, 32, &agent) {
        Ok(p) => Some(p),
        Err(e) => {
            log::error!("cannot start the step threads: {e}; remote tasks fail");
            None
        }
    };
    let recorders = match Recorders::start(config.live_concurrency, &agent) {
        Ok(r) => Some(r),
        Err(e) => {
            log::error!("cannot start the recorder threads: {e}; live recordings fail");
            None
        }
    };
    let mut sup = Supervisor {
        config: Arc::clone(&config),
        spool: spool.clone(),
        agent,
        pool,
        pacers: HashMap::new(),
        sessions: Arc::new(Sessions::new()),
        shutdown: Arc::new(AtomicBool::new(false)),
        running: BTreeMap::new(),
        paused: HashSet::new(),
        waiting: VecDeque::new(),
        scheduled: BTreeMap::new(),
        ran_once: HashSet::new(),
        reports_tx,
        tids: TidAllocator::default(),
        retry_held: HashSet::new(),
        summary: Summary::default(),
        archive,
        post,
        steps,
        task_runners: crate::providers::task_runners(),
        recorders,
        once: opts.once,
        endings: Vec::new(),
        notifier: start_notifier(&config),
        rate_limit: (config.rate_limit > 0)
            .then(|| Arc::new(crate::download::Throttle::new(config.rate_limit))),
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
        "spoolfetch {} watching {} as instance {:?} ({} download threads, {} ms API interval); \
         config {}, save_path {}, state_dir {}",
        env!("CARGO_PKG_VERSION"),
        absolute(spool.root()).display(),
        config.instance,
        config.concurrency,
        config.interval.as_millis(),
        config
            .source
            .as_ref()
            .map_or_else(|| "none (defaults)".to_string(), |p| absolute(p).display().to_string()),
        absolute(&config.save_path).display(),
        absolute(&config.state_dir).display()
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
                    if let Some(m) = startup::layout_lost(&spool, &config.instance, &lock) {
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
                if let Some(m) = startup::layout_lost(&spool, &config.instance, &lock) {
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
                sup.start_due();
                let scheduled = match sup.scheduled.len() {
                    0 => String::new(),
                    n => format!(", {n} scheduled"),
                };
                notifier.status(&format!(
                    "{} running, {} paused, {} waiting{scheduled}",
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

impl Supervisor {
    /// Graceful stop: runners checkpoint, in-flight files get the grace
    /// period, then blocked transfers are cut.
    pub(super) fn stop(mut self, reports: &Receiver<RunnerReport>) -> Summary {
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
        if let Some(n) = self.notifier.take() {
            // The jobs' last events go out now; what cannot is kept in
            // the outbox for the next start.
            n.stop(Duration::from_secs(15));
        }
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
        if let Some((r, joins)) = self.recorders.take() {
            // A recorder saw the halt flag and checkpointed what it has;
            // one still in a read is left behind, and its recording
            // continues from its sidecar at the next start.
            r.quit();
            for j in joins {
                if j.is_finished() {
                    let _ = j.join();
                }
            }
        }
        if let Some((s, joins)) = self.steps.take() {
            // A step cut short here is stepped again from its journaled
            // state at the next start (an intent says a call may have
            // been made); threads still in a call are left behind.
            s.quit();
            for j in joins {
                if j.is_finished() {
                    let _ = j.join();
                }
            }
        }
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

/// A path made absolute against the working folder (as the daemon will
/// resolve it), for the start-up line; unchanged if that fails.
fn absolute(p: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
