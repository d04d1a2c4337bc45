//! Live recordings of a job: handing stream items to the recorder threads.
//!
//! Owns the job's side of the recorders: the streams waiting for a free
//! recorder, the ones being recorded, and what each has recorded so far
//! (for status). Invariants: a stream is in at most one of waiting and
//! recording; a recording that a pause or stop interrupted waits again and
//! continues from its sidecar; one that ended is journaled as done with
//! its bytes.

use std::collections::{HashMap, HashSet, VecDeque};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::checkpoint::{Record, Work};
use crate::download::Outcome;
use crate::record::{RecordEvent, RecordTask, Recorders};
use crate::runner::run::{Mode, Runner};

/// The job's recordings.
pub(super) struct Live {
    /// The recorder threads (none: they could not be started).
    pub(super) recorders: Option<Recorders>,
    /// Reports from the recorders.
    pub(super) tx: Sender<RecordEvent>,
    /// Reports from the recorders.
    pub(super) rx: Receiver<RecordEvent>,
    /// Streams waiting for a recorder.
    pub(super) ready: VecDeque<u64>,
    /// Streams being recorded.
    pub(super) inflight: HashSet<u64>,
    /// Seconds and bytes recorded so far, per stream being recorded.
    pub(super) recorded: HashMap<u64, (f64, u64)>,
    /// Streams the provider said are over: their recordings are finished
    /// with what they hold.
    pub(super) finish: HashSet<u64>,
}

impl Live {
    /// No recording yet.
    pub(super) fn new(recorders: Option<Recorders>) -> Live {
        let (tx, rx) = bounded(64);
        Live {
            recorders,
            tx,
            rx,
            ready: VecDeque::new(),
            inflight: HashSet::new(),
            recorded: HashMap::new(),
            finish: HashSet::new(),
        }
    }

    /// Nothing waiting or being recorded.
    pub(super) fn idle(&self) -> bool {
        self.ready.is_empty() && self.inflight.is_empty()
    }

    /// Seconds and bytes recorded by the recordings under way.
    pub(super) fn totals(&self) -> (f64, u64) {
        self.recorded.values().fold((0.0, 0), |(s, b), (s2, b2)| (s + s2, b + b2))
    }
}

impl Runner {
    /// The provider has no fresh URL for stream `i`: the stream is over,
    /// and its recording is finished with what it holds.
    pub(super) fn finish_stream(&mut self, i: u64) {
        log::info!("job {}: item {i}: the provider says the stream is over", self.tid);
        self.live.finish.insert(i);
        self.live.ready.push_back(i);
    }

    /// Whether item `i` is a live stream.
    pub(super) fn is_stream(&self, i: u64) -> bool {
        self.progress.items.get(&i).is_some_and(|it| matches!(it.work, Work::Stream(_)))
    }

    /// Hands waiting streams to free recorders.
    pub(super) fn pump_live(&mut self) {
        if self.mode != Mode::Running {
            return;
        }
        while let Some(i) = self.live.ready.pop_front() {
            if self.live.inflight.contains(&i) || self.progress.failed.contains_key(&i) {
                continue;
            }
            let Some(item) = self.progress.items.get(&i) else { continue };
            let Work::Stream(stream) = &item.work else { continue };
            let Some(dest) = self.dest_of(&item.path) else {
                self.record(Record::Failed { i, r: format!("unsafe file path {:?}", item.path), p: true });
                continue;
            };
            let Some(recorders) = self.live.recorders.clone() else {
                self.record(Record::Failed { i, r: "live recording is not available".into(), p: true });
                continue;
            };
            let task = RecordTask {
                job: self.tid,
                item: i,
                stream: stream.clone(),
                dest,
                headers: std::sync::Arc::clone(&self.sched.file_headers),
                timeout: self.sched.timeout,
                refreshable: self.refresh.enabled,
                finish: self.live.finish.contains(&i),
                flags: std::sync::Arc::clone(&self.flags),
                reply: self.live.tx.clone(),
            };
            match recorders.try_send(task) {
                Ok(()) => {
                    self.live.inflight.insert(i);
                    self.status_file.dirty = true;
                }
                Err(_) => {
                    // Every recorder is busy: wait for one.
                    self.live.ready.push_front(i);
                    break;
                }
            }
        }
    }

    /// Handles a recorder's report.
    pub(super) fn on_live(&mut self, ev: RecordEvent) {
        match ev {
            RecordEvent::Progress { item, secs, bytes } => {
                self.live.recorded.insert(item, (secs, bytes));
                self.status_file.dirty = true;
            }
            RecordEvent::Ended { item, outcome } => {
                self.live.inflight.remove(&item);
                self.live.recorded.remove(&item);
                self.status_file.dirty = true;
                match outcome {
                    Outcome::Done { bytes, .. } => {
                        if let Some(dest) =
                            self.progress.items.get(&item).and_then(|it| self.dest_of(&it.path))
                            && let Some(parent) = dest.parent()
                        {
                            self.commits.dirs_to_sync.insert(parent.to_path_buf());
                        }
                        self.record(Record::Done { i: item, b: bytes });
                    }
                    Outcome::Interrupted => self.live.ready.push_front(item),
                    Outcome::Expired { reason } if self.refresh.enabled => self.on_expired(item, reason),
                    Outcome::Retry { reason, .. }
                    | Outcome::Failed { reason }
                    | Outcome::Expired { reason } => {
                        log::warn!("job {}: recording of item {item}: {reason}", self.tid);
                        self.record(Record::Failed { i: item, r: reason, p: true });
                    }
                }
            }
        }
    }
}
