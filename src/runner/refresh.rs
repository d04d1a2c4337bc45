//! Fresh URLs for downloads whose every URL expired.
//!
//! Owns the items waiting for the provider's fresh URLs and the thread
//! that asks for them. The walk is the provider's state (its login, its
//! client), so only one thread may use it at a time: the refresher takes
//! it only while no lister holds it and hands it back with the answers,
//! and a listing that must start meanwhile waits for it (`relist`).
//! Invariants: an item is refreshed at most once per run (the fresh URLs
//! failing too fail it for good); the new URLs are journaled before the
//! download is tried again, so a replay downloads from the same URLs.

use std::collections::{HashSet, VecDeque};
use std::thread;

use crossbeam_channel::{Receiver, bounded};

use crate::checkpoint::{Item, Record};
use crate::pacing::ApiError;
use crate::providers::{Api, Walk, WalkError};
use crate::runner::run::{Mode, Runner};

/// What the provider said for one item.
type Answer = (u64, String, Result<Option<Vec<String>>, WalkError>);

/// The refresher's report: the walk back, and one answer per item asked.
pub(super) struct Refreshed {
    walk: Box<dyn Walk>,
    answers: Vec<Answer>,
}

/// The job's refreshes.
pub(super) struct Refresh {
    /// The walk can refresh (`Walk::refreshes`); downloads of any other
    /// walk end `Failed` as they always did.
    pub(super) enabled: bool,
    /// Items waiting to be asked about, with what their URLs answered.
    waiting: VecDeque<(u64, String)>,
    /// Items refreshed in this run.
    used: HashSet<u64>,
    /// The refresher's answer, while it runs.
    pub(super) rx: Option<Receiver<Refreshed>>,
}

impl Refresh {
    /// Nothing waiting; `enabled` when the walk can refresh.
    pub(super) fn new(enabled: bool) -> Refresh {
        Refresh { enabled, waiting: VecDeque::new(), used: HashSet::new(), rx: None }
    }

    /// Items waiting for the provider or being asked about.
    pub(super) fn pending(&self) -> usize {
        self.waiting.len()
    }
}

impl Runner {
    /// A download whose every URL expired: ask the provider for fresh
    /// ones, unless this run did so already.
    pub(super) fn on_expired(&mut self, i: u64, reason: String) {
        if self.is_stream(i) {
            // A stream may expire again and again while it is recorded:
            // each time the provider is asked.
            self.refresh.used.remove(&i);
        }
        if self.refresh.used.contains(&i) {
            log::warn!("job {}: item {i}: the fresh URLs failed too: {reason}", self.tid);
            self.record(Record::Failed { i, r: format!("{reason} (with fresh URLs too)"), p: true });
            return;
        }
        log::info!("job {}: item {i}: {reason}; asking the provider for fresh URLs", self.tid);
        self.refresh.waiting.push_back((i, reason));
        self.start_refresh();
    }

    /// Starts the refresher if items wait, the job runs and the walk is
    /// here (not with a lister or a refresher).
    pub(super) fn start_refresh(&mut self) {
        if self.refresh.rx.is_some() || self.refresh.waiting.is_empty() || self.mode != Mode::Running {
            return;
        }
        let Some(mut walk) = self.listing.walk.take() else {
            if self.listing.lister.is_none() {
                // A listing cut at `max_items` drops its lister with the
                // walk: nobody is left to ask.
                for (i, reason) in std::mem::take(&mut self.refresh.waiting) {
                    let r = format!("{reason}; the listing is over, so no fresh URLs can be asked for");
                    self.record(Record::Failed { i, r, p: true });
                }
            }
            return;
        };
        let asked: Vec<(u64, String, Item)> = self
            .refresh
            .waiting
            .drain(..)
            .filter_map(|(i, r)| self.progress.items.get(&i).cloned().map(|it| (i, r, it)))
            .collect();
        let api: Api = self.listing.api.clone();
        let (tx, rx) = bounded(1);
        let spawned = thread::Builder::new().name(format!("refresh-{}", self.tid)).spawn(move || {
            let mut answers = Vec::with_capacity(asked.len());
            for (i, reason, item) in asked {
                let answer = if api.halted() {
                    Err(WalkError::Api(ApiError::Interrupted))
                } else {
                    walk.refresh(&item, &api)
                };
                answers.push((i, reason, answer));
            }
            let _ = tx.send(Refreshed { walk, answers });
        });
        match spawned {
            Ok(_) => self.refresh.rx = Some(rx),
            Err(e) => self.fail(format!("cannot start the refresh thread: {e}")),
        }
    }

    /// Takes the refresher's answers and the walk back.
    pub(super) fn on_refreshed(&mut self, done: Refreshed) {
        self.refresh.rx = None;
        self.listing.walk = Some(done.walk);
        for (i, reason, answer) in done.answers {
            match answer {
                Ok(Some(urls)) if !urls.is_empty() => {
                    self.refresh.used.insert(i);
                    log::info!("job {}: item {i}: {} fresh URL(s); trying again", self.tid, urls.len());
                    self.record(Record::Urls { i, u: urls });
                    self.sched.ready.push_back(i);
                }
                Ok(_) if self.is_stream(i) => self.finish_stream(i),
                Ok(_) => {
                    let r = format!("{reason}; the provider has no fresh URLs");
                    self.record(Record::Failed { i, r, p: true });
                }
                // Paused or stopping: asked again once the job runs.
                Err(WalkError::Api(ApiError::Interrupted | ApiError::ShuttingDown)) => {
                    self.refresh.waiting.push_back((i, reason));
                }
                Err(e) => {
                    // A passing API failure leaves the item to a retry
                    // round, which finds the URLs expired and asks again.
                    let p = !matches!(&e, WalkError::Api(a) if a.is_transient());
                    self.record(Record::Failed { i, r: format!("{reason}; fresh URLs: {e}"), p });
                }
            }
        }
        // The new URLs are durable before any download uses them.
        self.commit_or_fail();
        if self.listing.relist && self.mode == Mode::Running {
            self.listing.relist = false;
            self.start_listing();
        }
    }

    /// The refresher vanished without a word: it panicked, and the walk
    /// with it.
    pub(super) fn refresher_lost(&mut self) {
        self.refresh.rx = None;
        self.fail("the refresh thread stopped unexpectedly".into());
    }
}
