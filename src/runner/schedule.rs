//! Download scheduling and retry rounds.
//!
//! Owns the job's side of the download pool: the items ready to go, the
//! ones waiting for their retry time, the ones in flight and their
//! attempts in this round, and the round's timeout. Invariants: at most
//! `window` tasks of the job are in the pool at once; an item is in at
//! most one of ready, delayed and in flight; a round ends only when no
//! item of it is left anywhere, and another round starts only for files
//! that failed for now (not for good) while rounds are left.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::archive::ArchiveEntry;
use crate::checkpoint::{Record, Work};
use crate::download::{DownloadEvent, DownloadTask, JobQueue, NameLog, Outcome};
use crate::http::display_url;
use crate::pacing::{backoff_delay, cap_retry_after};
use crate::runner::run::{End, Mode, Runner};

/// The job's downloads.
pub(super) struct Schedule {
    /// Headers for every file.
    pub(super) file_headers: Arc<[(String, String)]>,
    /// Whether they follow a redirect to another origin.
    pub(super) forward_headers: bool,
    /// Into the pool.
    pub(super) queue: JobQueue,
    /// Reports from the pool.
    pub(super) events_tx: Sender<DownloadEvent>,
    /// Reports from the pool.
    pub(super) events_rx: Receiver<DownloadEvent>,
    /// Most tasks in flight.
    pub(super) window: usize,
    /// Items ready to dispatch.
    pub(super) ready: VecDeque<u64>,
    /// Items waiting for a retry time.
    pub(super) delayed: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Items being attempted.
    pub(super) inflight: HashSet<u64>,
    /// Attempts per item in the current round.
    pub(super) attempts: HashMap<u64, u32>,
    /// Current per-request timeout (grows per round with `timeout_increment`).
    pub(super) timeout: Duration,
    /// The bandwidth limits every download of the job keeps to.
    pub(super) limits: Arc<[Arc<crate::download::Throttle>]>,
    /// The job's log of names its files took other than their planned
    /// ones; read at the first dispatch.
    pub(super) names: Option<Arc<NameLog>>,
}

impl Schedule {
    /// Nothing scheduled yet; `window` tasks at most in the pool.
    pub(super) fn new(
        queue: JobQueue,
        window: usize,
        file_headers: Arc<[(String, String)]>,
        forward_headers: bool,
    ) -> Schedule {
        let window = window.max(1);
        let (events_tx, events_rx) = bounded(window * 2);
        Schedule {
            file_headers,
            forward_headers,
            queue,
            events_tx,
            events_rx,
            window,
            ready: VecDeque::new(),
            delayed: BinaryHeap::new(),
            inflight: HashSet::new(),
            attempts: HashMap::new(),
            timeout: Duration::ZERO,
            limits: Vec::new().into(),
            names: None,
        }
    }

    /// Returns true if and only if nothing is ready, delayed or in flight.
    pub(super) fn drained(&self) -> bool {
        self.ready.is_empty() && self.delayed.is_empty() && self.inflight.is_empty()
    }

    /// When the next delayed item is due, if one waits.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.delayed.peek().map(|Reverse((t, _))| *t)
    }
}

impl Runner {
    /// Per-request timeout of the current round: with `timeout_increment`
    /// it grows with each round (the base timeout times the round).
    pub(super) fn round_timeout(&self) -> Duration {
        if self.config.timeout_increment {
            self.config.timeout * self.progress.round.max(1)
        } else {
            self.config.timeout
        }
    }

    /// Handles a worker's report.
    pub(super) fn on_download(&mut self, ev: DownloadEvent) {
        self.sched.inflight.remove(&ev.item);
        self.flags.end_transfer(ev.item);
        let i = ev.item;
        match ev.outcome {
            Outcome::Done { bytes, already, .. } => {
                if let Some(dir) = ev.dest.parent() {
                    self.commits.dirs_to_sync.insert(dir.to_path_buf());
                }
                if already {
                    log::debug!("job {}: {} is already complete", self.tid, ev.dest.display());
                }
                self.sched.attempts.remove(&i);
                if let Some(key) = self.progress.items.get(&i).and_then(|it| it.archive.clone()) {
                    // With the file it stands for, which a later job may
                    // reuse (see `Work::Copy`).
                    self.commits.archive_pending.push(ArchiveEntry { key, path: Some(ev.dest.clone()) });
                }
                self.record_saved(Record::Done { i, b: bytes }, &ev.dest);
                if self.progress.post.contains_key(&i) {
                    self.post.backlog.push_back(i);
                }
            }
            Outcome::Interrupted => {
                self.sched.ready.push_front(i);
            }
            Outcome::Retry { reason, after } => {
                let n = self.sched.attempts.entry(i).or_insert(0);
                *n += 1;
                let n = *n;
                let url =
                    self.progress.items.get(&i).and_then(|it| it.url().map(display_url)).unwrap_or_default();
                if n < self.config.retries {
                    let wait = match after {
                        Some(d) => cap_retry_after(d, self.config.backoff_max),
                        None => backoff_delay(n, Duration::from_millis(500), Duration::from_secs(30)),
                    };
                    log::info!("job {}: {url}: {reason}; retrying in {:.1} s", self.tid, wait.as_secs_f64());
                    self.sched.delayed.push(Reverse((Instant::now() + wait, i)));
                } else {
                    log::warn!("job {}: {url}: {reason} ({n} attempts this round)", self.tid);
                    // The reason alone: the URL is the item's, and many
                    // failures share one reason string.
                    self.record(Record::Failed { i, r: reason, p: false });
                }
            }
            Outcome::Expired { reason } => self.on_expired(i, reason),
            Outcome::Failed { reason } => {
                let url =
                    self.progress.items.get(&i).and_then(|it| it.url().map(display_url)).unwrap_or_default();
                log::warn!("job {}: {url}: {reason}", self.tid);
                self.record(Record::Failed { i, r: reason, p: true });
            }
        }
    }

    /// Records items that must not be downloaded (the listing marked them,
    /// or the archive knows them) as skipped, hands remote tasks to the
    /// task queue, and returns the downloads. What a finished remote task
    /// produced is triaged with `by_archive` false: the task was paid for
    /// already, so its files are saved even when another job archived the
    /// same key in the meantime.
    pub(super) fn triage(&mut self, indexes: Vec<u64>, by_archive: bool) -> Vec<u64> {
        let mut out = Vec::with_capacity(indexes.len());
        for i in indexes {
            let Some(item) = self.progress.items.get(&i) else { continue };
            let reason = match (&item.work, &item.archive, &self.commits.archive) {
                (Work::Fail(r), _, _) => {
                    let r = r.clone();
                    log::warn!("job {}: {}: {r}", self.tid, item.path);
                    self.record(Record::Failed { i, r, p: true });
                    continue;
                }
                (Work::Skip(r), _, _) => Some(r.clone()),
                (_, Some(key), Some(a)) if by_archive && a.contains(key) => {
                    Some("already in the download archive".to_string())
                }
                _ => None,
            };
            let task = matches!(item.work, Work::Task(_));
            let stream = matches!(item.work, Work::Stream(_));
            match reason {
                Some(r) => {
                    log::debug!("job {}: skipping {}: {r}", self.tid, item.path);
                    self.record(Record::Skipped { i, r });
                }
                // Remote tasks are stepped, not downloaded.
                None if task => self.tasks.ready.push_back(i),
                // Live streams go to the recorders.
                None if stream => self.live.ready.push_back(i),
                None => out.push(i),
            }
        }
        out
    }

    /// Moves items whose retry time has come to the ready queue.
    pub(super) fn promote_delayed(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((t, i))) = self.sched.delayed.peek().copied() {
            if t > now {
                break;
            }
            self.sched.delayed.pop();
            self.sched.ready.push_back(i);
        }
    }

    /// Hands ready items to the pool, up to the window.
    pub(super) fn pump(&mut self) {
        if self.mode != Mode::Running {
            return;
        }
        if self.sched.names.is_none() {
            match NameLog::open(&self.spool.state_dir(self.tid)) {
                Ok(log) => self.sched.names = Some(Arc::new(log)),
                Err(e) => {
                    self.state_failed(&format!("cannot read {}: {e}", crate::download::NAMES_LOG));
                    return;
                }
            }
        }
        while self.sched.inflight.len() < self.sched.window {
            let Some(i) = self.sched.ready.pop_front() else { break };
            if self.sched.inflight.contains(&i)
                || !self.progress.items.contains_key(&i)
                || self.progress.failed.contains_key(&i)
            {
                continue;
            }
            let Some(item) = self.progress.items.get(&i).cloned() else { continue };
            let Some(dest) = self.dest_of(&item.path) else {
                self.record(Record::Failed { i, r: format!("unsafe file path {:?}", item.path), p: true });
                continue;
            };
            let mut copy_from = None;
            let mut server_name = false;
            let (url, also, size, md5, inline, extra) = match item.work {
                Work::Fetch(f) => {
                    server_name = f.server_name;
                    (f.url, f.also, f.size, f.md5, None, f.headers)
                }
                Work::Inline(body) => (String::new(), Vec::new(), None, None, Some(body), Vec::new()),
                Work::Copy(src) => {
                    copy_from = Some(std::path::PathBuf::from(src));
                    (String::new(), Vec::new(), None, None, None, Vec::new())
                }
                // Triage journals these before they are ready; should one
                // get here all the same, it ends as triage would end it.
                Work::Skip(r) => {
                    self.record(Record::Skipped { i, r });
                    continue;
                }
                Work::Fail(r) => {
                    self.record(Record::Failed { i, r, p: true });
                    continue;
                }
                Work::Task(_) => {
                    self.tasks.ready.push_back(i);
                    continue;
                }
                Work::Stream(_) => {
                    self.live.ready.push_back(i);
                    continue;
                }
            };
            let headers = if extra.is_empty() {
                Arc::clone(&self.sched.file_headers)
            } else {
                self.sched.file_headers.iter().chain(extra.iter()).cloned().collect()
            };
            let task = DownloadTask {
                job: self.tid,
                item: i,
                url,
                also,
                refreshable: self.refresh.enabled,
                dest,
                server_name,
                names: self.sched.names.clone(),
                headers,
                forward_headers: self.sched.forward_headers,
                expected_size: size,
                md5,
                inline,
                copy_from,
                timeout: self.sched.timeout,
                min_speed: self.config.min_speed,
                min_speed_time: self.config.min_speed_time,
                flags: Arc::clone(&self.flags),
                limits: Arc::clone(&self.sched.limits),
                reply: self.sched.events_tx.clone(),
            };
            match self.sched.queue.try_send(task) {
                Ok(()) => {
                    self.sched.inflight.insert(i);
                }
                Err(_) => {
                    self.sched.ready.push_front(i);
                    break;
                }
            }
        }
    }

    /// How a running job's round ends: not yet, with another retry
    /// round for the files that failed for now, or with the job's end.
    pub(super) fn running_end(&mut self) -> Option<End> {
        let why = self.listing.waiting.clone().or_else(|| self.tasks.parked_reason().map(str::to_string));
        if let (true, Some(why)) = (self.once, why) {
            let drained = self.listing.lister.is_none()
                && self.sched.drained()
                && self.post.inflight.is_empty()
                && self.tasks.inflight.is_empty()
                && !self.tasks_under_way()
                && self.live.inflight.is_empty();
            return drained.then(|| End::Parked(format!("waiting: {why}")));
        }
        if !(self.progress.round_complete() && self.sched.drained() && self.tasks.idle() && self.live.idle())
        {
            return None;
        }
        let transient: Vec<u64> =
            self.progress.failed.keys().copied().filter(|i| !self.progress.permanent.contains(i)).collect();
        if !transient.is_empty() && self.progress.round < self.config.rounds {
            let n = self.progress.round + 1;
            self.record(Record::Round { n });
            self.sched.timeout = self.round_timeout();
            self.sched.attempts.clear();
            log::info!(
                "job {}: retry round {n} for {} files (timeout {} s)",
                self.tid,
                transient.len(),
                self.sched.timeout.as_secs()
            );
            self.sched.ready.extend(transient);
            return None;
        }
        if self.progress.failed.is_empty() {
            Some(End::Done)
        } else {
            let first =
                self.progress.failed.iter().next().map(|(i, r)| self.failure_line(*i, r)).unwrap_or_default();
            let total = self.progress.files() - self.progress.skipped.len() as u64;
            Some(End::Failed(format!(
                "{} of {} files failed; first: {first}",
                self.progress.failed.len(),
                total
            )))
        }
    }

    /// A failure as users read it: the item's URL (redacted) and the
    /// reason. Journals written before reasons were shared hold the URL
    /// in the reason already.
    pub(super) fn failure_line(&self, i: u64, reason: &str) -> String {
        let url =
            self.progress.items.get_any(&i).and_then(|it| it.url().map(display_url)).unwrap_or_default();
        if url.is_empty() || reason.starts_with(&url) {
            reason.to_string()
        } else {
            format!("{url}: {reason}")
        }
    }
}
