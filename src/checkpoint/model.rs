//! The progress model and the records that change it.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checkpoint::item::{Item, PostStep, Work};
use crate::checkpoint::items::{Items, Reason, Reasons};

/// What became of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemState {
    /// Not finished yet.
    Pending,
    /// Downloaded, written, or found already complete.
    Done,
    /// Deliberately not saved (the reason says why).
    Skipped(String),
    /// Failed for good in the current run (kept for `retry`).
    Failed(String),
}

/// A change to a job's progress, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum Record {
    /// A listing page: items found, the cursor after them, and whether the
    /// listing is complete.
    #[serde(rename = "f")]
    Found {
        /// New items, in order; they get the next indexes.
        #[serde(rename = "i")]
        items: Vec<Item>,
        /// Where the listing continues.
        #[serde(rename = "c", default)]
        cursor: Option<Value>,
        /// True when the listing has ended.
        #[serde(rename = "e", default)]
        end: bool,
        /// The provider's total, when it knows one.
        #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
        /// The state of an output file after this page's records were
        /// appended and fsynced.
        #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
        output: Option<OutputMark>,
    },
    /// Item `i` is done; `b` bytes were downloaded for it.
    #[serde(rename = "d")]
    Done {
        /// Item index.
        i: u64,
        /// Bytes transferred.
        #[serde(default, skip_serializing_if = "is_zero")]
        b: u64,
    },
    /// Item `i` was skipped for reason `r`.
    #[serde(rename = "s")]
    Skipped {
        /// Item index.
        i: u64,
        /// Why.
        r: String,
    },
    /// Item `i` failed in this round with reason `r`; `p` marks a
    /// failure that retry rounds will not fix (404, size mismatch), which
    /// only a restart or `retry` tries again.
    #[serde(rename = "x")]
    Failed {
        /// Item index.
        i: u64,
        /// Why.
        r: String,
        /// Permanent.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        p: bool,
    },
    /// A new retry round begins: failed items become pending again.
    #[serde(rename = "r")]
    Round {
        /// The round number, from 1.
        n: u32,
    },
    /// The post-processing step of item `i` finished (`r`: why it failed,
    /// if it did; a failed conversion keeps the downloaded file).
    #[serde(rename = "P")]
    PostDone {
        /// Item index.
        i: u64,
        /// Failure reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        r: Option<String>,
    },
    /// Every failed item becomes pending again (a restart or `retry`).
    #[serde(rename = "z")]
    Reset,
    /// The job was paused or resumed.
    #[serde(rename = "p")]
    Paused {
        /// Paused or not.
        v: bool,
    },
    /// Remote task `i` reached state `s` (the runner's own JSON) in
    /// phase `ph`; `n` marks an intent: the next step makes a call that
    /// must not be made twice, so a restart that finds this as the last
    /// state knows the call may have been made.
    #[serde(rename = "T")]
    TaskStep {
        /// Item index.
        i: u64,
        /// The state.
        s: Value,
        /// The phase, for status.
        ph: String,
        /// An intent.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        n: bool,
        /// The intent re-sends a call whose earlier outcome is unknown
        /// (its answer was lost, or a crash came between): the service may
        /// carry it out twice, and charge twice. Counted in status.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        r: bool,
    },
    /// Remote task `i` is finished and produced these items (the files
    /// to save), which get the next indexes.
    #[serde(rename = "S")]
    Spawned {
        /// Item index of the task.
        i: u64,
        /// The new items.
        #[serde(rename = "items")]
        items: Vec<Item>,
    },
    /// Download `i` goes to these URLs from now on (the first, then the
    /// others as candidates): the provider's fresh ones after every URL it
    /// had answered as expired.
    #[serde(rename = "u")]
    Urls {
        /// Item index.
        i: u64,
        /// The URLs, in the order they are tried.
        u: Vec<String>,
    },
}

/// Where a remote task stands, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    /// The task runner's state.
    pub state: Value,
    /// Its phase, for status.
    pub phase: String,
    /// The state is an intent (see [`Record::TaskStep`]).
    #[serde(default)]
    pub intent: bool,
}

/// The `t` tag of every [`Record`] variant this version reads. A journal
/// line that is valid JSON but carries a tag outside this list was written
/// by a newer spoolfetch (the checkpoint store reports it as such).
pub(crate) const RECORD_TAGS: &[&str] = &["f", "d", "s", "x", "r", "P", "z", "p", "T", "S", "u"];

/// Returns true if and only if `n` is zero (for serde).
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What is durable in a record output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputMark {
    /// The file, relative to the job's folder.
    pub file: String,
    /// Bytes that are durable and belong to the job; anything after them
    /// is a torn append and is cut before the next write.
    pub len: u64,
    /// Rows written.
    pub rows: u64,
    /// The CSV header, fixed by the first rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Vec<String>>,
}

/// A set of item indexes stored as sorted, disjoint, inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeSet(Vec<(u64, u64)>);

impl RangeSet {
    /// Adds `i`.
    pub fn insert(&mut self, i: u64) {
        let pos = self.0.partition_point(|&(_, hi)| hi.saturating_add(1) < i);
        if pos < self.0.len() && self.0[pos].0 <= i && i <= self.0[pos].1 {
            return;
        }
        if pos < self.0.len() && self.0[pos].1.saturating_add(1) == i {
            self.0[pos].1 = i;
            if pos + 1 < self.0.len() && self.0[pos + 1].0 == i + 1 {
                self.0[pos].1 = self.0[pos + 1].1;
                self.0.remove(pos + 1);
            }
        } else if pos < self.0.len() && self.0[pos].0 == i + 1 {
            self.0[pos].0 = i;
        } else {
            self.0.insert(pos, (i, i));
        }
    }

    /// Returns true if and only if `i` is in the set.
    pub fn contains(&self, i: u64) -> bool {
        let pos = self.0.partition_point(|&(_, hi)| hi < i);
        pos < self.0.len() && self.0[pos].0 <= i
    }

    /// The number of indexes in the set.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|(lo, hi)| hi - lo + 1).sum()
    }

    /// Returns true if and only if the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A job's progress in memory. Finished items are dropped from `items` so
/// that memory shrinks as a large job advances.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Where the listing continues (provider-defined).
    pub cursor: Option<Value>,
    /// True once the listing has ended.
    pub listing_done: bool,
    /// The provider's total, when known.
    pub total_hint: Option<u64>,
    /// Items found so far (indexes `0..found`).
    pub found: u64,
    /// Unfinished items (pending or failed), by index.
    pub items: Items,
    /// Indexes of failed items with their reasons.
    pub failed: BTreeMap<u64, Reason>,
    /// The reasons in use, shared (not persisted: a cache).
    #[serde(skip)]
    pub reasons: Reasons,
    /// Failed items that retry rounds will not fix.
    #[serde(default)]
    pub permanent: std::collections::BTreeSet<u64>,
    /// Indexes of done items.
    pub done: RangeSet,
    /// Indexes of skipped items with their reasons.
    pub skipped: BTreeMap<u64, String>,
    /// Keys of every item found, to drop repeats from re-fetched pages
    /// (persisted beside the progress by the snapshot).
    #[serde(skip)]
    pub keys: HashSet<String>,
    /// Done items whose post-processing step has not finished: index →
    /// (final path relative to the job folder, step).
    #[serde(default)]
    pub post: BTreeMap<u64, (String, PostStep)>,
    /// Post-processing steps that failed, with reasons (the files stay).
    #[serde(default)]
    pub post_failed: BTreeMap<u64, String>,
    /// Current retry round, from 1.
    pub round: u32,
    /// True while paused.
    pub paused: bool,
    /// Bytes downloaded so far.
    pub bytes: u64,
    /// Record output files and what of them is durable.
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputMark>,
    /// Remote tasks under way: their last journaled state.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<u64, TaskState>,
    /// The cost of every remote task found (`Task::cost`), for status.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cost_estimate: u64,
    /// The cost of the remote tasks started so far: a task counts from its
    /// first journaled state, since its first call may be charged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cost_committed: u64,
    /// Remote tasks finished (each became the files it produced): they
    /// count as done items, not as files.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spawned: u64,
    /// Calls re-sent although their first sending may have been carried
    /// out (see [`Record::TaskStep`]): possible extra charges.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resent: u64,
}

impl Progress {
    /// A fresh job's progress.
    pub fn new() -> Progress {
        Progress { round: 1, ..Progress::default() }
    }

    /// Returns the state of item `i`.
    pub fn state(&self, i: u64) -> ItemState {
        if self.done.contains(i) {
            ItemState::Done
        } else if let Some(r) = self.skipped.get(&i) {
            ItemState::Skipped(r.clone())
        } else if let Some(r) = self.failed.get(&i) {
            ItemState::Failed(r.to_string())
        } else {
            ItemState::Pending
        }
    }

    /// Items that are files (or failed as files): every item found but the
    /// finished remote tasks, which became their files.
    pub fn files(&self) -> u64 {
        self.found - self.spawned
    }

    /// Done items that are files.
    pub fn files_done(&self) -> u64 {
        self.done.len() - self.spawned
    }

    /// Drops items whose key was seen before; the runner calls this before
    /// journaling a page, so that replay needs no filtering.
    pub fn filter_new(&self, items: Vec<Item>) -> Vec<Item> {
        let mut seen_now = HashSet::new();
        items
            .into_iter()
            .filter(|it| {
                it.key.is_empty() || (!self.keys.contains(&it.key) && seen_now.insert(it.key.clone()))
            })
            .collect()
    }

    /// Applies one record. Replaying the journal calls this too, so live
    /// state and recovered state cannot drift apart. The record is taken
    /// by value so that a page's items are moved, not copied: a 100,000-item
    /// page exists once in memory.
    pub fn apply(&mut self, rec: Record) {
        match rec {
            Record::Found { items, cursor, end, total, output } => {
                if let Some(o) = output {
                    self.outputs.insert(o.file.clone(), o);
                }
                for it in items {
                    if !it.key.is_empty() {
                        self.keys.insert(it.key.clone());
                    }
                    if let Work::Task(t) = &it.work {
                        self.cost_estimate += t.cost.unwrap_or(0);
                    }
                    self.items.insert(self.found, it);
                    self.found += 1;
                }
                self.cursor = cursor;
                self.listing_done = end;
                if total.is_some() {
                    self.total_hint = total;
                }
            }
            Record::Done { i, b } => {
                if let Some(it) = self.items.get_mut(&i)
                    && let Work::Fetch(f) = &mut it.work
                    && let Some(step) = f.post.take()
                {
                    self.post.insert(i, (std::mem::take(&mut it.path), *step));
                }
                self.items.remove(&i);
                self.failed.remove(&i);
                self.permanent.remove(&i);
                self.done.insert(i);
                self.bytes += b;
            }
            Record::Skipped { i, r } => {
                self.items.remove(&i);
                self.failed.remove(&i);
                self.permanent.remove(&i);
                self.skipped.insert(i, r);
            }
            Record::Failed { i, r, p } => {
                let r = self.reasons.intern(r);
                self.failed.insert(i, r);
                if p {
                    self.permanent.insert(i);
                    self.items.park(i);
                }
            }
            Record::PostDone { i, r } => {
                self.post.remove(&i);
                if let Some(r) = r {
                    self.post_failed.insert(i, r);
                }
            }
            Record::Round { n } => {
                self.round = n;
                let permanent = &self.permanent;
                self.failed.retain(|i, _| permanent.contains(i));
            }
            Record::Reset => {
                self.round = 1;
                self.failed.clear();
                self.permanent.clear();
                self.items.unpark_all();
            }
            Record::Paused { v } => self.paused = v,
            Record::TaskStep { i, s, ph, n, r } => {
                if !self.tasks.contains_key(&i)
                    && let Some(Work::Task(t)) = self.items.get(&i).map(|it| &it.work)
                {
                    self.cost_committed += t.cost.unwrap_or(0);
                }
                if r {
                    self.resent += 1;
                }
                self.tasks.insert(i, TaskState { state: s, phase: ph, intent: n });
            }
            Record::Spawned { i, items } => {
                self.spawned += 1;
                for it in items {
                    if !it.key.is_empty() {
                        self.keys.insert(it.key.clone());
                    }
                    self.items.insert(self.found, it);
                    self.found += 1;
                }
                self.tasks.remove(&i);
                self.items.remove(&i);
                self.failed.remove(&i);
                self.permanent.remove(&i);
                self.done.insert(i);
            }
            Record::Urls { i, u } => {
                match self.items.get_mut(&i).map(|it| &mut it.work) {
                    Some(Work::Fetch(f)) => f.set_urls(&u),
                    // A stream is recorded from one URL: the first.
                    Some(Work::Stream(s)) => {
                        if let Some(url) = u.first() {
                            s.url.clone_from(url);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Indexes of items still to do in this round, in order.
    pub fn pending(&self) -> Vec<u64> {
        self.items.live().map(|(i, _)| *i).filter(|i| !self.failed.contains_key(i)).collect()
    }

    /// Parks the items that failed for good, as replaying the journal
    /// does; a snapshot holds them as live items.
    pub fn park_permanent(&mut self) {
        let permanent: Vec<u64> =
            self.permanent.iter().copied().filter(|i| self.failed.contains_key(i)).collect();
        for i in permanent {
            self.items.park(i);
        }
    }

    /// Returns true if and only if nothing is left to do in this round
    /// (downloads; post-processing is tracked separately).
    pub fn round_complete(&self) -> bool {
        self.listing_done && self.items.len() == self.failed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_tag_is_known() {
        let all = [
            Record::Found { items: Vec::new(), cursor: None, end: false, total: None, output: None },
            Record::Done { i: 0, b: 0 },
            Record::Skipped { i: 0, r: String::new() },
            Record::Failed { i: 0, r: String::new(), p: false },
            Record::Round { n: 1 },
            Record::PostDone { i: 0, r: None },
            Record::Reset,
            Record::Paused { v: true },
            Record::TaskStep { i: 0, s: Value::Null, ph: String::new(), n: false, r: false },
            Record::Spawned { i: 0, items: Vec::new() },
            Record::Urls { i: 0, u: Vec::new() },
        ];
        for rec in all {
            let v = serde_json::to_value(&rec).expect("serialize");
            let tag = v.get("t").and_then(Value::as_str).expect("tag");
            assert!(RECORD_TAGS.contains(&tag), "tag {tag} missing from RECORD_TAGS");
        }
        assert_eq!(RECORD_TAGS.len(), 11, "a new variant needs a line above");
    }

    #[test]
    fn rangeset_merges() {
        let mut r = RangeSet::default();
        for i in [5, 3, 4, 10, 0, 1, 2, 9, 4] {
            r.insert(i);
        }
        assert_eq!(r.0, vec![(0, 5), (9, 10)]);
        assert_eq!(r.len(), 8);
        assert!(r.contains(4) && r.contains(9) && !r.contains(6) && !r.contains(11));
        r.insert(7);
        r.insert(8);
        r.insert(6);
        assert_eq!(r.0, vec![(0, 10)]);
    }

    #[test]
    fn apply_and_dedupe() {
        let mut p = Progress::new();
        let it = |k: &str| Item::fetch(k, format!("http://h/{k}"), k);
        let page = p.filter_new(vec![it("a"), it("b"), it("a")]);
        assert_eq!(page.len(), 2);
        p.apply(Record::Found {
            items: page,
            cursor: Some(Value::from(2)),
            end: false,
            total: None,
            output: None,
        });
        assert_eq!(p.filter_new(vec![it("b"), it("c")]).len(), 1);
        p.apply(Record::Done { i: 0, b: 10 });
        p.apply(Record::Failed { i: 1, r: "404".into(), p: false });
        assert_eq!(p.state(0), ItemState::Done);
        assert_eq!(p.pending(), Vec::<u64>::new());
        assert!(!p.round_complete());
        p.apply(Record::Found { items: vec![], cursor: None, end: true, total: None, output: None });
        assert!(p.round_complete());
        p.apply(Record::Round { n: 2 });
        assert_eq!(p.pending(), vec![1]);
    }

    #[test]
    fn fresh_urls_replace_every_candidate_and_read_back_the_same() {
        let mut p = Progress::new();
        p.apply(Record::Found {
            items: vec![Item::fetch("a", "http://h/old", "a")],
            cursor: None,
            end: true,
            total: None,
            output: None,
        });
        let rec = Record::Urls { i: 0, u: vec!["http://h/new?sig=1".into(), "http://m/new".into()] };
        let line = serde_json::to_value(&rec).expect("json");
        assert_eq!(line, serde_json::json!({"t": "u", "i": 0, "u": ["http://h/new?sig=1", "http://m/new"]}));
        p.apply(serde_json::from_value(line).expect("record"));
        let urls = p.items.get(&0).map(|it| it.urls().join(" "));
        assert_eq!(urls.as_deref(), Some("http://h/new?sig=1 http://m/new"));
        // For an item that is gone (done meanwhile) it changes nothing.
        p.apply(Record::Done { i: 0, b: 1 });
        p.apply(Record::Urls { i: 0, u: vec!["http://x/".into()] });
        assert!(p.items.get(&0).is_none());
    }
}
