//! The spool watcher thread.
//!
//! Owns the [`Scanner`] (what was seen, since when) and the notify watcher.
//! It scans at start, whenever an event hints at a change, when a settling
//! file may have become ready, and periodically in any case; on network
//! and FUSE filesystems, which deliver no events for other machines'
//! writes, it only polls. It reports what it found and never claims: the
//! supervisor decides how many jobs to take.

use std::path::Path;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select};
use notify::{RecursiveMode, Watcher as _};

use crate::config::WatchMode;
use crate::spool::control::{ControlRequest, read_requests};
use crate::spool::layout::Spool;
use crate::spool::scan::{Candidate, Scanner};

/// Messages the watcher thread accepts.
#[derive(Debug)]
pub enum WatcherMsg {
    /// Scan now (for example after a job ended and a slot became free).
    Rescan,
    /// A candidate was claimed or rejected; stop tracking it.
    Forget(std::path::PathBuf),
    /// Stop.
    Quit,
}

/// What the watcher reports to the supervisor.
#[derive(Debug)]
pub enum SpoolEvent {
    /// A full scan finished.
    Scanned {
        /// Files ready to claim, oldest first.
        ready: Vec<Candidate>,
        /// Files still settling (they count as work for `run --once`).
        waiting: usize,
        /// Pending control requests.
        control: Vec<ControlRequest>,
    },
    /// The spool could not be read; the watcher keeps trying.
    Error(String),
}

/// Handle to the watcher thread.
#[derive(Debug)]
pub struct Watcher {
    /// Sends messages to the thread.
    tx: Sender<WatcherMsg>,
    /// The thread, joined on [`Watcher::stop`].
    join: Option<JoinHandle<()>>,
}

/// Timing of the watcher.
#[derive(Debug, Clone, Copy)]
pub struct WatchTiming {
    /// Events or polling.
    pub mode: WatchMode,
    /// Full rescan period with events.
    pub rescan: Duration,
    /// Scan period when polling.
    pub poll: Duration,
    /// Settle time of a job file.
    pub settle: Duration,
    /// Largest job file that is read.
    pub max_bytes: u64,
}

impl Watcher {
    /// Starts the watcher thread; its first scan happens at once.
    pub fn spawn(spool: Spool, timing: WatchTiming, out: Sender<SpoolEvent>) -> std::io::Result<Watcher> {
        let (tx, rx) = bounded(64);
        let join = thread::Builder::new()
            .name("spool-watcher".into())
            .spawn(move || run(&spool, timing, &rx, &out))?;
        Ok(Watcher { tx, join: Some(join) })
    }

    /// Asks for a scan now.
    pub fn rescan(&self) {
        let _ = self.tx.try_send(WatcherMsg::Rescan);
    }

    /// Tells the watcher a path was dealt with.
    pub fn forget(&self, path: &Path) {
        let _ = self.tx.send(WatcherMsg::Forget(path.to_path_buf()));
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        let _ = self.tx.send(WatcherMsg::Quit);
        // A scan stuck in a hung network filesystem must not hold up the
        // daemon's exit.
        if let Some(j) = self.join.take() {
            let _ =
                crate::download::join_by(j, std::time::Instant::now() + std::time::Duration::from_secs(5));
        }
    }
}

/// Returns the name of the filesystem type when `path` is on a network or
/// FUSE filesystem, where inotify sees no changes made by other machines.
pub fn detect_network_fs(path: &Path) -> Option<&'static str> {
    let stat = rustix::fs::statfs(path).ok()?;
    // Magic numbers from linux/magic.h; f_type's integer type differs
    // between architectures, so it is widened first.
    #[expect(clippy::useless_conversion, reason = "f_type is i32 on some targets and i64 on others")]
    let magic = i64::from(stat.f_type) & 0xFFFF_FFFF;
    match magic {
        0x6969 => Some("nfs"),
        0x517B => Some("smb"),
        0xFF53_4D42 => Some("cifs"),
        0xFE53_4D42 => Some("smb2"),
        0x6573_5546 => Some("fuse"),
        0x0102_1997 => Some("9p"),
        _ => None,
    }
}

/// The thread body.
fn run(spool: &Spool, timing: WatchTiming, rx: &Receiver<WatcherMsg>, out: &Sender<SpoolEvent>) {
    let (ev_tx, ev_rx) = bounded::<notify::Result<notify::Event>>(1024);
    let network = detect_network_fs(spool.root());
    let mut timing = timing;
    if let Some(fs) = network {
        // Attribute caches on network filesystems hide changes for a few
        // seconds; a shorter settle time could take a file still being
        // written.
        let floor = Duration::from_secs(3);
        if timing.settle < floor {
            log::info!(
                "spool is on {fs}: using a settle time of 3 s instead of {} ms",
                timing.settle.as_millis()
            );
            timing.settle = floor;
        }
    }
    let use_events = match timing.mode {
        WatchMode::Poll => false,
        WatchMode::Events => true,
        WatchMode::Auto => match network {
            Some(fs) => {
                log::info!(
                    "spool {} is on {fs}: filesystem events are not reliable there, polling every {} ms",
                    spool.root().display(),
                    timing.poll.as_millis()
                );
                false
            }
            None => true,
        },
    };
    // The notify watcher must live as long as the loop; dropping it stops
    // events.
    let _notify = if use_events { start_notify(spool, ev_tx) } else { None };
    let period = if _notify.is_some() { timing.rescan } else { timing.poll };
    let mut scanner = Scanner::new(timing.settle, timing.max_bytes).trusting_age(network.is_none());
    let mut next_full = Instant::now();
    let mut soon: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let due = soon.map_or(next_full, |s| s.min(next_full));
        if due <= now {
            soon = None;
            next_full = now + period;
            match scanner.scan(spool) {
                Ok(result) => {
                    if let Some(t) = result.next_check {
                        soon = Some(t);
                    }
                    let control = read_requests(spool).unwrap_or_else(|e| {
                        log::warn!("cannot read control requests: {e}");
                        Vec::new()
                    });
                    let ev = SpoolEvent::Scanned { ready: result.ready, waiting: result.waiting, control };
                    if out.send(ev).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = out.send(SpoolEvent::Error(format!(
                        "cannot scan spool {}: {e}",
                        spool.root().display()
                    )));
                }
            }
            continue;
        }
        let wait = due - now;
        select! {
            recv(rx) -> msg => match msg {
                Ok(WatcherMsg::Rescan) => soon = Some(Instant::now()),
                Ok(WatcherMsg::Forget(p)) => scanner.forget(&p),
                Ok(WatcherMsg::Quit) | Err(_) => return,
            },
            recv(ev_rx) -> ev => {
                match ev {
                    // Opening and reading change nothing, and every scan
                    // opens the spool folder itself: taking those as a
                    // reason to scan again would scan in a loop. A close
                    // after writing does count (an in-place writer is
                    // done).
                    Ok(Ok(e)) if is_read_only_access(&e.kind) => {}
                    // Any other event, including the pathless overflow event
                    // (Flag::Rescan), means "look again soon". Events are
                    // coalesced for a few milliseconds.
                    Ok(_) => {
                        let t = Instant::now() + Duration::from_millis(20);
                        soon = Some(soon.map_or(t, |s| s.min(t)));
                    }
                    Err(_) => soon = Some(Instant::now()),
                }
            },
            default(wait) => {}
        }
    }
}

/// Returns true if and only if an event only says that something was
/// opened, read, or closed without writing.
fn is_read_only_access(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(
        kind,
        notify::EventKind::Access(
            AccessKind::Open(_)
                | AccessKind::Read
                | AccessKind::Close(AccessMode::Read | AccessMode::Execute)
        )
    )
}

/// Starts notify on the folders where files arrive; `None` (and polling)
/// when the platform refuses, for example when inotify watches run out.
fn start_notify(
    spool: &Spool,
    tx: Sender<notify::Result<notify::Event>>,
) -> Option<notify::RecommendedWatcher> {
    let mut w = match notify::recommended_watcher(tx) {
        Ok(w) => w,
        Err(e) => {
            log::warn!("filesystem events unavailable ({e}); polling the spool instead");
            return None;
        }
    };
    for dir in [spool.root().to_path_buf(), spool.retry_dir(), spool.control_dir()] {
        if let Err(e) = w.watch(&dir, RecursiveMode::NonRecursive) {
            log::warn!("cannot watch {} ({e}); polling the spool instead", dir.display());
            return None;
        }
    }
    Some(w)
}
