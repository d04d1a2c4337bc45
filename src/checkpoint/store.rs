//! Snapshot + journal files of one job.
//!
//! Layout in `state/<tid>/`: `checkpoint.json` holds a [`Progress`] and the
//! generation `g` of the journal that continues it; `journal.<g>` holds
//! one JSON [`Record`] per line. Compaction writes a new snapshot naming
//! generation `g + 1` and only then removes `journal.<g>`: a crash at any
//! point leaves a snapshot and exactly the journal that belongs to it.
//! Journal appends are buffered and made durable by [`CheckpointStore::commit`],
//! which the runner calls in groups, so a job with 100,000 files writes a
//! few dozen bytes per file instead of rewriting its whole state.
//!
//! Format versions (docs/checkpoint.md): the snapshot carries `version`;
//! a journal written by version 2 starts with a header line
//! `{"t":"v","v":2}`, a journal without one is version 1 (the records are
//! the same). Compatibility rule: this binary reads every version up to
//! [`VERSION`]; a newer snapshot, a newer header or a complete JSON line
//! with a record tag it does not know is [`CheckpointError::NewerFormat`],
//! never cut away as if it were a torn tail, so an older binary cannot
//! silently drop progress a newer one recorded.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::model::{Progress, RECORD_TAGS, Record};
use crate::durable::{atomic_write, fsync_dir};

/// The checkpoint format version (snapshot and journal header); bump it
/// before a change that old readers would misread.
const VERSION: u32 = 2;

/// The `t` tag of the journal header line.
const HEADER_TAG: &str = "v";

/// Journal and snapshot files hold URLs and paths of the user's jobs.
const FILE_MODE: u32 = 0o600;

/// Compact when the journal is larger than this and than twice the
/// snapshot: the factor keeps the bytes rewritten by compactions to a
/// fraction of the bytes journaled, even while a long listing makes the
/// snapshot grow (BENCHMARKS.md: checkpoint bytes per item).
const COMPACT_MIN_BYTES: u64 = 4 << 20;

/// A checkpoint that cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading or writing failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        err: io::Error,
    },
    /// The files exist but do not make sense (damaged).
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The files were written by a newer spoolfetch in a format this one
    /// does not know; they are left as they are.
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// The format version, when the file names one.
        version: Option<u32>,
        /// What this binary does not know (a record tag), when no version
        /// is named.
        what: String,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Io { path, err } => write!(f, "checkpoint {}: {err}", path.display()),
            CheckpointError::Corrupt { path, what } => {
                write!(f, "checkpoint {} is damaged: {what}", path.display())
            }
            CheckpointError::NewerFormat { path, version: Some(v), .. } => {
                write!(
                    f,
                    "checkpoint {} was written by a newer spoolfetch (checkpoint format {v})",
                    path.display()
                )
            }
            CheckpointError::NewerFormat { path, version: None, what } => write!(
                f,
                "checkpoint {} was written by a newer spoolfetch (checkpoint format > {VERSION}: {what})",
                path.display()
            ),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// The snapshot file's content, as read.
#[derive(Debug, Deserialize)]
pub(super) struct Snapshot {
    /// Format version.
    version: u32,
    /// Generation of the journal that continues this snapshot.
    pub(super) generation: u64,
    /// The progress.
    pub(super) progress: Progress,
    /// Item keys seen (for dropping repeats).
    #[serde(default)]
    keys: Vec<String>,
}

/// Just the version of a snapshot, read when the full form does not parse
/// (a newer format may have changed the other fields).
#[derive(Debug, Deserialize)]
struct SnapshotVersion {
    /// Format version.
    version: u32,
}

/// The snapshot file's content, as written: borrowed, so that compacting
/// a large job does not copy its whole progress.
#[derive(Debug, Serialize)]
struct SnapshotRef<'a> {
    /// Format version.
    version: u32,
    /// Generation of the journal that continues this snapshot.
    generation: u64,
    /// The progress.
    progress: &'a Progress,
    /// Item keys seen, sorted for stable output.
    keys: Vec<&'a String>,
}

/// The single writer of a job's checkpoint.
#[derive(Debug)]
pub struct CheckpointStore {
    /// `state/<tid>/`.
    dir: PathBuf,
    /// Current journal generation.
    generation: u64,
    /// The open journal, appended to.
    journal: File,
    /// Bytes in the journal.
    journal_bytes: u64,
    /// Bytes of the last snapshot.
    snapshot_bytes: u64,
    /// Records appended but not yet durable.
    buffer: Vec<u8>,
    /// The journal is empty: the header goes in front of the next group.
    needs_header: bool,
    /// Bytes written to checkpoint files so far (for the benchmark).
    written: u64,
}

/// Builds an I/O error for `path`.
fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CheckpointError + '_ {
    move |err| CheckpointError::Io { path: path.to_path_buf(), err }
}

impl CheckpointStore {
    /// Opens (or creates) the checkpoint in `dir` and returns the recovered
    /// progress.
    pub fn open(dir: &Path) -> Result<(CheckpointStore, Progress), CheckpointError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let snap_path = dir.join("checkpoint.json");
        let (generation, mut progress, snapshot_bytes) = match fs::read(&snap_path) {
            Ok(bytes) => {
                let snap: Snapshot = match serde_json::from_slice(&bytes) {
                    Ok(snap) => snap,
                    Err(e) => {
                        return Err(match serde_json::from_slice::<SnapshotVersion>(&bytes) {
                            Ok(v) if v.version > VERSION => CheckpointError::NewerFormat {
                                path: snap_path,
                                version: Some(v.version),
                                what: String::new(),
                            },
                            _ => CheckpointError::Corrupt { path: snap_path, what: e.to_string() },
                        });
                    }
                };
                if snap.version > VERSION {
                    return Err(CheckpointError::NewerFormat {
                        path: snap_path,
                        version: Some(snap.version),
                        what: String::new(),
                    });
                }
                let mut p = snap.progress;
                p.keys = snap.keys.into_iter().collect();
                (snap.generation, p, bytes.len() as u64)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, Progress::new(), 0),
            Err(e) => return Err(CheckpointError::Io { path: snap_path, err: e }),
        };
        let journal_path = dir.join(format!("journal.{generation}"));
        let journal_bytes = replay(&journal_path, &mut progress)?;
        remove_stale_journals(dir, generation);
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(FILE_MODE)
            .open(&journal_path)
            .map_err(io_err(&journal_path))?;
        let store = CheckpointStore {
            dir: dir.to_path_buf(),
            generation,
            journal,
            journal_bytes,
            snapshot_bytes,
            buffer: Vec::new(),
            // A v1 journal that already holds records stays headerless:
            // its records are the same in v2.
            needs_header: journal_bytes == 0,
            written: 0,
        };
        Ok((store, progress))
    }

    /// Queues a record; it becomes durable at the next [`commit`](Self::commit).
    pub fn append(&mut self, rec: &Record) {
        // Serializing our own record types cannot fail (no maps with
        // non-string keys, no non-finite floats in Items).
        if serde_json::to_writer(&mut self.buffer, rec).is_ok() {
            self.buffer.push(b'\n');
        }
    }

    /// Returns true if and only if records are waiting for a commit.
    pub fn has_pending(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// Bytes queued but not yet durable.
    pub fn pending_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// Makes every queued record durable, compacting when the journal has
    /// grown past the snapshot.
    pub fn commit(&mut self, progress: &Progress) -> Result<(), CheckpointError> {
        if !self.buffer.is_empty() {
            if self.needs_header {
                let mut group = header_line();
                group.append(&mut self.buffer);
                self.buffer = group;
                // On a failed write the header stays at the buffer's front
                // and the journal is cut back to empty: a retry writes it.
                self.needs_header = false;
            }
            let path = self.journal_path();
            append_group(&mut self.journal, &self.buffer, self.journal_bytes, |f, b| {
                f.write_all(b)?;
                f.sync_data()
            })
            .map_err(io_err(&path))?;
            self.journal_bytes += self.buffer.len() as u64;
            self.written += self.buffer.len() as u64;
            self.buffer.clear();
        }
        if self.journal_bytes > COMPACT_MIN_BYTES && self.journal_bytes > 2 * self.snapshot_bytes {
            self.compact(progress)?;
        }
        Ok(())
    }

    /// Writes a snapshot of `progress` and starts a new, empty journal.
    pub fn compact(&mut self, progress: &Progress) -> Result<(), CheckpointError> {
        let mut keys: Vec<&String> = progress.keys.iter().collect();
        keys.sort();
        let snap = SnapshotRef { version: VERSION, generation: self.generation + 1, progress, keys };
        let bytes = serde_json::to_vec(&snap)
            .map_err(|e| CheckpointError::Corrupt { path: self.dir.clone(), what: e.to_string() })?;
        let new_journal = self.dir.join(format!("journal.{}", self.generation + 1));
        // The new journal exists (empty) before the snapshot names it.
        let journal = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(FILE_MODE)
            .open(&new_journal)
            .map_err(io_err(&new_journal))?;
        drop(journal);
        let snap_path = self.dir.join("checkpoint.json");
        atomic_write(&snap_path, &bytes).map_err(io_err(&snap_path))?;
        let old = self.journal_path();
        self.generation += 1;
        self.journal = OpenOptions::new().append(true).open(&new_journal).map_err(io_err(&new_journal))?;
        self.journal_bytes = 0;
        self.needs_header = true;
        self.snapshot_bytes = bytes.len() as u64;
        self.written += bytes.len() as u64;
        let _ = fs::remove_file(old);
        fsync_dir(&self.dir).map_err(io_err(&self.dir))?;
        Ok(())
    }

    /// Bytes written to checkpoint files by this store.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// The current journal's path.
    fn journal_path(&self) -> PathBuf {
        self.dir.join(format!("journal.{}", self.generation))
    }
}

/// The journal header line of this version.
fn header_line() -> Vec<u8> {
    format!("{{\"t\":\"{HEADER_TAG}\",\"v\":{VERSION}}}\n").into_bytes()
}

/// Appends `bytes` to a journal of `good_len` bytes with `write`; when that
/// fails, cuts the journal back to `good_len` so that no partial line stays
/// for the next group to be glued onto.
fn append_group(
    file: &mut File,
    bytes: &[u8],
    good_len: u64,
    write: impl FnOnce(&mut File, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    match write(file, bytes) {
        Ok(()) => Ok(()),
        Err(err) => {
            if let Err(cut) = file.set_len(good_len) {
                log::error!("cannot cut a failed journal write back to {good_len} bytes: {cut}");
            }
            Err(err)
        }
    }
}

/// What a journal line that is not a record of this version is.
enum Unknown {
    /// The header of a version this binary reads.
    Header,
    /// Valid JSON from a newer format.
    Newer(CheckpointError),
    /// Not a record at all (torn or damaged).
    Damage,
}

/// Classifies a complete line that did not parse as a [`Record`].
fn classify(path: &Path, line: &[u8]) -> Unknown {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) else { return Unknown::Damage };
    let Some(tag) = value.get("t").and_then(serde_json::Value::as_str) else { return Unknown::Damage };
    if tag == HEADER_TAG {
        return match value.get("v").and_then(serde_json::Value::as_u64) {
            Some(v) if v <= u64::from(VERSION) => Unknown::Header,
            Some(v) => Unknown::Newer(CheckpointError::NewerFormat {
                path: path.to_path_buf(),
                version: Some(u32::try_from(v).unwrap_or(u32::MAX)),
                what: String::new(),
            }),
            None => Unknown::Damage,
        };
    }
    if RECORD_TAGS.contains(&tag) {
        // A known record with wrong fields: damage, not a newer format.
        return Unknown::Damage;
    }
    Unknown::Newer(CheckpointError::NewerFormat {
        path: path.to_path_buf(),
        version: None,
        what: format!("unknown record `{tag}`"),
    })
}

/// Applies every complete record of a journal; returns its length.
///
/// A last line without its newline is a torn append and is cut. A complete
/// line that is valid JSON but unknown (a newer record or header) is
/// [`CheckpointError::NewerFormat`] wherever it is. Any other unreadable
/// line is damage: cut when it is the last one, an error otherwise.
pub(super) fn replay(path: &Path, progress: &mut Progress) -> Result<u64, CheckpointError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(CheckpointError::Io { path: path.to_path_buf(), err: e }),
    };
    let mut reader = BufReader::new(file);
    let mut good_len = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        let complete = line.last() == Some(&b'\n');
        if complete {
            match serde_json::from_slice::<Record>(&line) {
                Ok(rec) => {
                    progress.apply(rec);
                    good_len += n as u64;
                    continue;
                }
                Err(_) => match classify(path, &line) {
                    Unknown::Header => {
                        good_len += n as u64;
                        continue;
                    }
                    Unknown::Newer(err) => return Err(err),
                    Unknown::Damage => {}
                },
            }
        }
        // Only the last line may be torn by a crash mid-append; anything
        // after it would mean real damage.
        let rest = reader.fill_buf().map_err(io_err(path))?;
        if !rest.is_empty() {
            return Err(CheckpointError::Corrupt {
                path: path.to_path_buf(),
                what: format!("unreadable record at byte {good_len}"),
            });
        }
        log::debug!("ignoring a torn last record in {}", path.display());
        // Cut the torn tail so that new records start on a line.
        let f = OpenOptions::new().write(true).open(path).map_err(io_err(path))?;
        f.set_len(good_len).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
        break;
    }
    Ok(good_len)
}

/// Removes journals of other generations left by a crash mid-compaction.
fn remove_stale_journals(dir: &Path, keep: u64) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(g) = name.strip_prefix("journal.").and_then(|g| g.parse::<u64>().ok())
            && g != keep
        {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Item;

    fn item(i: u64) -> Item {
        Item::fetch(String::new(), format!("http://images.example.org/files/{i:08}.bin"), format!("{i}.bin"))
    }

    #[test]
    fn round_trip_with_compaction_and_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut store, mut p) = CheckpointStore::open(dir.path()).expect("open");
        let items: Vec<Item> = (0..120_000).map(item).collect();
        let rec = Record::Found { items, cursor: None, end: true, total: None, output: None };
        store.append(&rec);
        p.apply(rec);
        store.commit(&p).expect("commit");
        for i in 0..110_000 {
            let r = Record::Done { i, b: 1 };
            store.append(&r);
            p.apply(r);
            if i % 100 == 0 {
                store.commit(&p).expect("commit");
            }
        }
        store.commit(&p).expect("commit");
        assert!(store.generation >= 1, "a 120,000-item journal must have been compacted");
        // A record appended but never committed is lost, as promised.
        store.append(&Record::Done { i: 19_999, b: 1 });
        drop(store);
        // Simulate a crash mid-append: half a record at the end.
        let jp = dir.path().join(format!("journal.{}", {
            let (s, _) = CheckpointStore::open(dir.path()).expect("reopen");
            s.generation
        }));
        let mut f = OpenOptions::new().append(true).open(&jp).expect("journal");
        f.write_all(b"{\"t\":\"d\",\"i\":1999").expect("torn");
        drop(f);
        let (_, recovered) = CheckpointStore::open(dir.path()).expect("recover");
        assert_eq!(recovered.done.len(), 110_000);
        assert_eq!(recovered.items.len(), 10_000);
        assert_eq!(recovered.bytes, 110_000);
        assert!(recovered.listing_done);
        assert_eq!(recovered, p);
    }

    #[test]
    fn corrupt_snapshot_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("checkpoint.json"), b"{nope").expect("write");
        let err = CheckpointStore::open(dir.path()).expect_err("corrupt");
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    /// A store with two committed records; returns the journal's path.
    fn journal_with_two_records(dir: &Path) -> PathBuf {
        let (mut store, mut p) = CheckpointStore::open(dir).expect("open");
        for rec in [
            Record::Found {
                items: vec![item(0), item(1)],
                cursor: None,
                end: true,
                total: None,
                output: None,
            },
            Record::Done { i: 0, b: 5 },
        ] {
            store.append(&rec);
            p.apply(rec);
        }
        store.commit(&p).expect("commit");
        dir.join(format!("journal.{}", store.generation))
    }

    #[test]
    fn a_new_journal_starts_with_its_version_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let jp = journal_with_two_records(dir.path());
        let text = fs::read_to_string(&jp).expect("journal");
        assert_eq!(text.lines().next(), Some(r#"{"t":"v","v":2}"#), "{text}");
        assert_eq!(text.matches(r#""t":"v""#).count(), 1, "one header: {text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&jp).expect("meta").permissions().mode() & 0o777, 0o600);
        let (_, p) = CheckpointStore::open(dir.path()).expect("reopen");
        assert!(p.done.contains(0) && p.items.contains_key(&1));
    }

    #[test]
    fn a_journal_without_a_header_is_version_1_and_replays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v1 = concat!(
            r#"{"t":"f","i":[{"u":"http://h/a","p":"a"},{"u":"http://h/b","p":"b"}],"c":null,"e":true}"#,
            "\n",
            r#"{"t":"d","i":1,"b":7}"#,
            "\n"
        );
        fs::write(dir.path().join("journal.0"), v1).expect("write");
        let (mut store, mut p) = CheckpointStore::open(dir.path()).expect("open v1");
        assert!(p.done.contains(1) && p.items.contains_key(&0) && p.bytes == 7);
        // Appending to it keeps it headerless (its records are v2 records).
        let rec = Record::Done { i: 0, b: 1 };
        store.append(&rec);
        p.apply(rec);
        store.commit(&p).expect("commit");
        let text = fs::read_to_string(dir.path().join("journal.0")).expect("journal");
        assert!(!text.contains(r#""t":"v""#), "{text}");
        let (_, again) = CheckpointStore::open(dir.path()).expect("reopen");
        assert_eq!(again.done.len(), 2);
    }

    #[test]
    fn records_and_versions_of_a_newer_spoolfetch_are_an_error_that_says_so() {
        for (tail, want) in [
            ("{\"t\":\"zz_future\",\"x\":1}\n", "written by a newer spoolfetch"),
            ("{\"t\":\"v\",\"v\":3}\n", "(checkpoint format 3)"),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let jp = journal_with_two_records(dir.path());
            let mut f = OpenOptions::new().append(true).open(&jp).expect("journal");
            f.write_all(tail.as_bytes()).expect("append");
            drop(f);
            let err = CheckpointStore::open(dir.path()).expect_err(tail);
            assert!(matches!(err, CheckpointError::NewerFormat { .. }), "{err:?}");
            assert!(err.to_string().contains(want), "{err}");
            // Nothing was cut: an older binary leaves the newer lines alone.
            assert!(fs::read_to_string(&jp).expect("journal").ends_with(tail));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let snap = r#"{"version":3,"generation":0,"progress":{"anything":"new"}}"#;
        fs::write(dir.path().join("checkpoint.json"), snap).expect("snapshot");
        let err = CheckpointStore::open(dir.path()).expect_err("newer snapshot");
        assert!(err.to_string().contains("written by a newer spoolfetch (checkpoint format 3)"), "{err}");
    }

    #[test]
    fn a_torn_last_line_is_still_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let jp = journal_with_two_records(dir.path());
        let mut f = OpenOptions::new().append(true).open(&jp).expect("journal");
        f.write_all(b"{\"t\":\"zz_future\",\"x\"").expect("torn");
        drop(f);
        let (_, p) = CheckpointStore::open(dir.path()).expect("torn tail is not an error");
        assert!(p.done.contains(0));
    }

    #[test]
    fn a_failed_group_write_leaves_no_partial_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let jp = journal_with_two_records(dir.path());
        let good = fs::metadata(&jp).expect("meta").len();
        let mut f = OpenOptions::new().append(true).open(&jp).expect("journal");
        let res = append_group(&mut f, b"{\"t\":\"d\",\"i\":1,\"b\":1}\n", good, |file, bytes| {
            file.write_all(&bytes[..bytes.len() / 2])?;
            Err(io::Error::other("disk full"))
        });
        assert!(res.is_err());
        assert_eq!(fs::metadata(&jp).expect("meta").len(), good);
        let (_, p) = CheckpointStore::open(dir.path()).expect("reopen");
        assert!(!p.done.contains(1));
    }
}
