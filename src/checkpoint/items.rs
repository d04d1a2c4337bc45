//! The unfinished items of a job in memory, and the reasons of its
//! failures.
//!
//! Owns what a large failing job costs. An item that failed for good (a
//! 404, a size mismatch) is not attempted again until a `retry`, so it is
//! *parked*: kept as its compact serialized form instead of a full [`Item`]
//! in the map, about a quarter of the memory. Reasons are interned: 100,000
//! files that all failed with "HTTP 404 Not Found" share one string.
//! Invariant: parking changes only the form, never the content; the
//! snapshot writes parked and live items alike, in index order, in the
//! format it always had.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::checkpoint::item::Item;

/// Unfinished items (pending or failed), by index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Items {
    /// Items that may be attempted.
    live: BTreeMap<u64, Item>,
    /// Items that failed for good, as their JSON.
    parked: BTreeMap<u64, Box<str>>,
}

impl Items {
    /// Adds (or replaces) item `i`.
    pub fn insert(&mut self, i: u64, item: Item) {
        self.parked.remove(&i);
        self.live.insert(i, item);
    }

    /// Removes item `i`, live or parked; returns it.
    pub fn remove(&mut self, i: &u64) -> Option<Item> {
        match self.live.remove(i) {
            Some(it) => Some(it),
            None => self.parked.remove(i).and_then(|j| unpark(&j)),
        }
    }

    /// Item `i` if it is live (parked items are not attempted).
    pub fn get(&self, i: &u64) -> Option<&Item> {
        self.live.get(i)
    }

    /// Item `i` if it is live, for changing it.
    pub fn get_mut(&mut self, i: &u64) -> Option<&mut Item> {
        self.live.get_mut(i)
    }

    /// Item `i`, live or parked (a parked one is decoded).
    pub fn get_any(&self, i: &u64) -> Option<Cow<'_, Item>> {
        match self.live.get(i) {
            Some(it) => Some(Cow::Borrowed(it)),
            None => self.parked.get(i).and_then(|j| unpark(j)).map(Cow::Owned),
        }
    }

    /// Whether item `i` is unfinished.
    pub fn contains_key(&self, i: &u64) -> bool {
        self.live.contains_key(i) || self.parked.contains_key(i)
    }

    /// Unfinished items, live and parked.
    pub fn len(&self) -> usize {
        self.live.len() + self.parked.len()
    }

    /// Whether nothing is unfinished.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.parked.is_empty()
    }

    /// Indexes of every unfinished item, in order.
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        MergedKeys { a: self.live.keys().copied().peekable(), b: self.parked.keys().copied().peekable() }
    }

    /// The live items.
    pub fn live(&self) -> impl Iterator<Item = (&u64, &Item)> {
        self.live.iter()
    }

    /// Parks item `i`: it failed for good and waits for a `retry`.
    pub fn park(&mut self, i: u64) {
        if let Some(it) = self.live.remove(&i) {
            match serde_json::to_string(&it) {
                Ok(j) => {
                    self.parked.insert(i, j.into_boxed_str());
                }
                // Cannot happen for an item (plain strings and numbers);
                // keeping it live is always correct, only larger.
                Err(_) => {
                    self.live.insert(i, it);
                }
            }
        }
    }

    /// Makes every parked item live again (a `retry`).
    pub fn unpark_all(&mut self) {
        for (i, j) in std::mem::take(&mut self.parked) {
            if let Some(it) = unpark(&j) {
                self.live.insert(i, it);
            }
        }
    }
}

/// Decodes a parked item; it was encoded by [`Items::park`], so this only
/// fails on a bug, and then the item counts as gone.
fn unpark(json: &str) -> Option<Item> {
    serde_json::from_str(json).ok()
}

/// The union of two ascending key streams without duplicates.
struct MergedKeys<A: Iterator<Item = u64>, B: Iterator<Item = u64>> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<A: Iterator<Item = u64>, B: Iterator<Item = u64>> Iterator for MergedKeys<A, B> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        match (self.a.peek().copied(), self.b.peek().copied()) {
            (Some(x), Some(y)) if x < y => self.a.next(),
            (Some(x), Some(y)) if y < x => self.b.next(),
            (Some(_), Some(_)) => {
                self.b.next();
                self.a.next()
            }
            (Some(_), None) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

impl Serialize for Items {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        let mut live = self.live.iter().peekable();
        let mut parked = self.parked.iter().peekable();
        loop {
            let take_live = match (live.peek(), parked.peek()) {
                (Some((a, _)), Some((b, _))) => a < b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_live {
                if let Some((i, it)) = live.next() {
                    map.serialize_entry(i, it)?;
                }
            } else if let Some((i, j)) = parked.next() {
                // Written as the JSON it already is: a snapshot of a job
                // with 100,000 failures does not decode them all.
                let raw: &serde_json::value::RawValue = raw_value(j).map_err(serde::ser::Error::custom)?;
                map.serialize_entry(i, raw)?;
            }
        }
        map.end()
    }
}

/// A parked item's JSON as a raw value.
fn raw_value(j: &str) -> Result<&serde_json::value::RawValue, serde_json::Error> {
    serde_json::from_str(j)
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Items, D::Error> {
        let live = BTreeMap::<u64, Item>::deserialize(d)?;
        Ok(Items { live, parked: BTreeMap::new() })
    }
}

/// A failure's reason, shared by every failure with the same text.
pub type Reason = Arc<str>;

/// The set of reasons in use, so that equal reasons are one string.
#[derive(Debug, Clone, Default)]
pub struct Reasons(HashSet<Arc<str>>);

impl Reasons {
    /// The shared copy of `r`.
    pub fn intern(&mut self, r: String) -> Reason {
        if let Some(have) = self.0.get(r.as_str()) {
            return Arc::clone(have);
        }
        let r: Arc<str> = r.into();
        // A job whose reasons are all different (each names a byte count)
        // would only grow the set: past this many, reasons are not shared.
        if self.0.len() < MAX_INTERNED {
            self.0.insert(Arc::clone(&r));
        }
        r
    }
}

/// A cache: two progresses with the same content are equal whatever
/// reasons they have shared so far.
impl PartialEq for Reasons {
    fn eq(&self, _: &Reasons) -> bool {
        true
    }
}

/// Most distinct reasons remembered for sharing.
const MAX_INTERNED: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u64) -> Item {
        let mut it = Item::fetch(String::new(), format!("http://h/{n}.bin"), format!("{n}.bin"));
        if let crate::checkpoint::Work::Fetch(f) = &mut it.work {
            f.size = Some(n);
        }
        it
    }

    #[test]
    fn parked_items_keep_their_content_and_their_place_in_the_snapshot() {
        let mut items = Items::default();
        for n in 0..6 {
            items.insert(n, item(n));
        }
        let before = serde_json::to_string(&items).expect("json");
        items.park(1);
        items.park(4);
        assert_eq!(items.len(), 6);
        assert!(items.get(&1).is_none() && items.contains_key(&1));
        assert_eq!(items.get_any(&4).map(Cow::into_owned), Some(item(4)));
        assert_eq!(items.keys().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(serde_json::to_string(&items).expect("json"), before, "same snapshot either way");
        let back: Items = serde_json::from_str(&before).expect("parse");
        assert_eq!(back.len(), 6);
        assert_eq!(items.remove(&4), Some(item(4)));
        items.unpark_all();
        assert_eq!(items.get(&1), Some(&item(1)));
        assert_eq!(items.len(), 5);
    }

    #[test]
    fn equal_reasons_are_one_string() {
        let mut r = Reasons::default();
        let a = r.intern("HTTP 404 Not Found".into());
        let b = r.intern("HTTP 404 Not Found".to_string());
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &r.intern("HTTP 410 Gone".into())));
    }
}
