//! The listing and record output, as the runner drives them.
//!
//! Owns the provider's walk (or the lister thread that holds it while it
//! lists), what the listing waits for, and the pacing of pages against
//! the downloads. Invariants: a page's items and its cursor are journaled
//! together, after the page's records are durable in their output file,
//! so a restart never walks a journaled page again and never writes a row
//! twice; the listing stays at most [`LIST_AHEAD`] unfinished items ahead
//! of the downloads.

use crate::checkpoint::Record;
use crate::providers::{Api, Walk};
use crate::runner::lister::{Backoff, Lister, ListerEvent};
use crate::runner::output;
use crate::runner::run::{Mode, Runner};

/// The listing stays at most this many unfinished items ahead of the
/// downloads: past it, the runner leaves the next page in the lister's
/// channel until downloads catch up. A 100,000-URL job then holds a few
/// pages of planned items in memory, not all of them (and its checkpoint
/// snapshot stays as small); a paced API listing, a few dozen items a
/// page, never gets that far ahead.
const LIST_AHEAD: usize = 4_000;

/// The job's listing.
pub(super) struct Listing {
    /// The walk, while no lister holds it.
    pub(super) walk: Option<Box<dyn Walk>>,
    /// The lister, while listing.
    pub(super) lister: Option<Lister>,
    /// Start a lister again as soon as the walk comes back.
    pub(super) relist: bool,
    /// API handle for listers.
    pub(super) api: Api,
    /// What the listing waits for, when it waits.
    pub(super) waiting: Option<String>,
    /// Why the listing is backing off after a transient error, when it is
    /// (a bounded wait: `run --once` sits it out instead of parking).
    pub(super) retrying: Option<String>,
}

impl Listing {
    /// A listing of `walk` not started yet.
    pub(super) fn new(walk: Box<dyn Walk>, api: Api) -> Listing {
        Listing { walk: Some(walk), lister: None, relist: false, api, waiting: None, retrying: None }
    }

    /// Stops the lister, if one runs, and does not start another.
    pub(super) fn stop(&mut self) {
        if let Some(l) = &self.lister {
            l.stop();
        }
        self.relist = false;
    }
}

impl Runner {
    /// Returns true if and only if the next page must wait because the
    /// listing is [`LIST_AHEAD`] items ahead of the downloads. Only while
    /// running: a pausing, stopping or failing job takes its pages at once,
    /// so that its lister can hand the walk back.
    pub(super) fn listing_held(&self) -> bool {
        self.mode == Mode::Running
            && self.listing.lister.is_some()
            // Items waiting for fresh URLs need the walk the lister holds.
            && self.progress.items.len().saturating_sub(self.progress.failed.len() + self.refresh.pending())
                >= LIST_AHEAD
    }

    /// Starts (or restarts) the lister if the listing is not complete.
    pub(super) fn start_listing(&mut self) {
        if self.progress.listing_done || self.listing.lister.is_some() {
            return;
        }
        let Some(walk) = self.listing.walk.take() else {
            // The walk is still with a stopping lister; start when it is
            // back.
            self.listing.relist = true;
            return;
        };
        match Lister::start(
            walk,
            self.progress.cursor.clone(),
            self.listing.api.clone(),
            &self.tid.to_string(),
            Backoff::default(),
        ) {
            Ok(l) => self.listing.lister = Some(l),
            Err(e) => self.fail(format!("cannot start the listing thread: {e}")),
        }
    }

    /// Handles a lister event.
    pub(super) fn on_lister(&mut self, ev: ListerEvent) {
        match ev {
            ListerEvent::Page(page) => {
                let mut items = self.progress.filter_new(page.items);
                let last_page = page.next.is_none();
                let mut end = last_page;
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
                if self.listing.waiting.take().is_some() {
                    self.alert_resumed();
                }
                if self.listing.retrying.take().is_some() {
                    log::info!("job {}: the listing continues", self.tid);
                    self.status_file.dirty = true;
                }
                let mut output = None;
                if let Some(recs) = &page.records {
                    let Some(file) = self.dest_of(&recs.file) else {
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
                let ready = self.triage((first..first + count).collect(), true);
                // A page is rare and cheap to commit at once; a later crash
                // then never walks it again.
                self.commit_or_fail();
                if matches!(self.mode, Mode::Running | Mode::Paused) {
                    self.sched.ready.extend(ready);
                }
                if let Some(l) = &self.listing.lister {
                    l.ack();
                }
                // A walk that refreshes URLs is needed back: at the natural
                // end its lister hands it over with `Finished` next.
                let hand_back = self.refresh.enabled && last_page;
                if end
                    && !hand_back
                    && let Some(l) = self.listing.lister.take()
                {
                    l.stop();
                }
            }
            ListerEvent::Finished(walk) => {
                self.listing.lister = None;
                self.listing.walk = Some(walk);
            }
            ListerEvent::Waiting(reason) => {
                if self.listing.waiting.as_deref() != Some(reason.as_str()) {
                    log::warn!("job {}: waiting: {reason}", self.tid);
                    if !self.once {
                        // A cron run's wait is told once, as it ends.
                        self.alert_waiting(&reason);
                    }
                }
                self.listing.waiting = Some(reason);
                self.status_file.dirty = true;
                if self.once {
                    // A cron run must end: stop listing, let what is listed
                    // finish, and leave the job queued for the next run.
                    self.listing.stop();
                }
            }
            ListerEvent::Retrying { reason, attempt, of, after } => {
                log::warn!(
                    "job {}: listing: {reason}; trying the page again in {:.0} s (retry {attempt} of {of})",
                    self.tid,
                    after.as_secs_f64()
                );
                self.listing.retrying =
                    Some(format!("{reason} (retry {attempt} of {of} in {:.0} s)", after.as_secs_f64()));
                self.status_file.dirty = true;
            }
            ListerEvent::Stopped(walk, err) => {
                self.listing.lister = None;
                self.listing.walk = Some(walk);
                if let Some(e) = err {
                    self.fail(format!("listing failed: {e}"));
                } else if self.listing.relist && self.mode == Mode::Running {
                    self.listing.relist = false;
                    self.start_listing();
                }
            }
        }
    }
}
