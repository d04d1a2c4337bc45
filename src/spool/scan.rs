//! Finding complete job files.
//!
//! Directory listings are the truth; filesystem events only say "look
//! now". A file is ready when its name qualifies, its (length, mtime,
//! inode) stayed the same for at least `settle` across two scans, and it
//! parses as JSON. A file that never parses but stays unchanged for much
//! longer is handed over too, so that it ends in `failed/` with a reason
//! instead of lingering. A writer that does not use write-then-rename
//! (an SMB client, `cp` onto a share) shows a file that grows or is
//! rewritten in place; the settle time and the inode in the signature
//! catch both.
//!
//! On a local filesystem a file first seen already old (its mtime and
//! ctime both at least `settle` in the past by the wall clock) and that
//! parses is ready at once: a writer changes both with every write, and
//! nobody can set ctime back, so such a file is not being written. This is
//! what lets `run --once` start on job files dropped long before it ran.
//! Network filesystems keep the two-scan rule: their attribute caches and
//! the clocks of other machines make the age untrustworthy.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::job::Tid;
use crate::spool::layout::{CONFIG_FILE_NAME, Spool};

/// A job file that is ready to be claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Where it is now (the spool root or `retry/`).
    pub path: PathBuf,
    /// The TID it keeps, for a job requeued by `retry`.
    pub retry_tid: Option<Tid>,
    /// Whether it parsed as JSON when last looked at.
    pub parses: bool,
}

impl Candidate {
    /// The file's name.
    pub fn file_name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

/// What one look at a file showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    /// Length in bytes.
    len: u64,
    /// Modification time in nanoseconds.
    mtime: i128,
    /// Inode number: an in-place rewrite via rename changes it.
    ino: u64,
    /// The later of mtime and ctime, as wall-clock time: how long the
    /// file has been left alone (ctime cannot be set back, as `cp -p` or
    /// `touch -d` can set mtime).
    changed: SystemTime,
    /// True for anything but a regular file: a symbolic link (never
    /// followed), a FIFO (reading one would block the watcher for good), a
    /// socket or a device. Such a file is claimed without being read, and
    /// intake rejects it.
    irregular: bool,
}

/// A file seen before, with the time its signature last changed.
#[derive(Debug)]
struct Seen {
    /// The signature as of the last scan.
    sig: Signature,
    /// When this signature was first observed.
    since: Instant,
    /// Parse result for this signature, once checked.
    parses: Option<bool>,
}

/// The result of one scan.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Files ready to claim, oldest first.
    pub ready: Vec<Candidate>,
    /// Qualifying files still settling.
    pub waiting: usize,
    /// When a waiting file could next become ready.
    pub next_check: Option<Instant>,
}

/// Scans the spool and remembers what it saw between scans.
#[derive(Debug)]
pub struct Scanner {
    /// Minimum time a file must stay unchanged.
    settle: Duration,
    /// Files larger than this are not read (they are rejected on claim).
    max_bytes: u64,
    /// Every qualifying file seen in the last scan.
    seen: HashMap<PathBuf, Seen>,
    /// Whether a file's age by the wall clock may stand in for a second
    /// scan (local filesystems only).
    trust_age: bool,
}

impl Scanner {
    /// A scanner with the given settle time and size limit.
    pub fn new(settle: Duration, max_bytes: u64) -> Scanner {
        Scanner { settle, max_bytes, seen: HashMap::new(), trust_age: false }
    }

    /// Lets a file that was already left alone for `settle` when first
    /// seen count as settled at once; only for a spool on a local
    /// filesystem.
    pub fn trusting_age(mut self, trust: bool) -> Scanner {
        self.trust_age = trust;
        self
    }

    /// How long an unparsable, unchanged file waits before it is rejected:
    /// long enough for a slow writer that pauses mid-file.
    fn reject_after(&self) -> Duration {
        (self.settle * 10).max(Duration::from_secs(3))
    }

    /// Lists the spool root and `retry/`.
    pub fn scan(&mut self, spool: &Spool) -> io::Result<ScanResult> {
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut found: Vec<(PathBuf, Option<Tid>, Signature)> = Vec::new();
        list_dir(spool.root(), true, &mut found)?;
        // `retry/` may not exist in a spool no daemon has set up yet.
        if spool.retry_dir().is_dir() {
            list_dir(&spool.retry_dir(), false, &mut found)?;
        }
        let mut result = ScanResult::default();
        let mut still_there = HashMap::with_capacity(found.len());
        let mut ready: Vec<(i128, Candidate)> = Vec::new();
        for (path, retry_tid, sig) in found {
            let mut seen = match self.seen.remove(&path) {
                Some(s) if s.sig == sig => s,
                _ => Seen { sig, since: now, parses: None },
            };
            let age = now.duration_since(seen.since);
            // An error means a changed time in the future (a clock set
            // back): then only the two-scan rule counts.
            let old = self.trust_age
                && !sig.irregular
                && wall.duration_since(sig.changed).is_ok_and(|quiet| quiet >= self.settle);
            let settled = (age >= self.settle && seen.since != now) || old;
            if settled {
                if seen.parses.is_none() {
                    seen.parses = Some(
                        !sig.irregular && sig.len <= self.max_bytes && parses_as_json(&path, self.max_bytes),
                    );
                }
                let parses = seen.parses == Some(true);
                let oversized = sig.len > self.max_bytes;
                if parses || sig.irregular || oversized || age >= self.reject_after() {
                    ready.push((sig.mtime, Candidate { path: path.clone(), retry_tid, parses }));
                } else {
                    result.waiting += 1;
                    note_next(&mut result.next_check, seen.since + self.reject_after());
                }
            } else {
                result.waiting += 1;
                note_next(&mut result.next_check, seen.since + self.settle.max(Duration::from_millis(1)));
            }
            still_there.insert(path, seen);
        }
        self.seen = still_there;
        ready.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.path.cmp(&b.1.path)));
        result.ready = ready.into_iter().map(|(_, c)| c).collect();
        Ok(result)
    }

    /// Forgets a file (after it was claimed).
    pub fn forget(&mut self, path: &Path) {
        self.seen.remove(path);
    }
}

/// Keeps the earliest of two instants.
fn note_next(slot: &mut Option<Instant>, t: Instant) {
    *slot = Some(slot.map_or(t, |s| s.min(t)));
}

/// Returns true if and only if `name` may be a job file: `*.json`, not a
/// dotfile (temporary files of tempfile, rsync, NFS silly renames), not the
/// configuration file.
fn qualifies(name: &str, in_root: bool) -> bool {
    name.ends_with(".json") && !name.starts_with('.') && !(in_root && name == CONFIG_FILE_NAME)
}

/// Adds the qualifying entries of one folder.
fn list_dir(dir: &Path, in_root: bool, out: &mut Vec<(PathBuf, Option<Tid>, Signature)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            // A non-UTF-8 name cannot be a job we could name in status
            // output; it is left alone (and logged once per scan at debug).
            log::debug!("ignoring a file whose name is not UTF-8 in {}", dir.display());
            continue;
        };
        if !qualifies(name, in_root) {
            continue;
        }
        // A file can vanish between listing and stat (another daemon
        // claimed it); that is not an error.
        let Ok(meta) = fs::symlink_metadata(entry.path()) else { continue };
        if meta.is_dir() {
            continue;
        }
        let retry_tid = if in_root { None } else { Spool::parse_claimed_name(name).map(|(t, _)| t) };
        if !in_root && retry_tid.is_none() {
            continue;
        }
        let sig = Signature {
            len: meta.len(),
            mtime: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ino: meta.ino(),
            changed: wall_time(meta.mtime(), meta.mtime_nsec())
                .max(wall_time(meta.ctime(), meta.ctime_nsec())),
            irregular: !meta.file_type().is_file(),
        };
        out.push((entry.path(), retry_tid, sig));
    }
    Ok(())
}

/// A file time (seconds and nanoseconds since the epoch) as a
/// `SystemTime`; times before the epoch count as the epoch.
fn wall_time(secs: i64, nsec: i64) -> SystemTime {
    let secs = u64::try_from(secs).unwrap_or(0);
    let nsec = u32::try_from(nsec).unwrap_or(0).min(999_999_999);
    SystemTime::UNIX_EPOCH + Duration::new(secs, nsec)
}

/// Returns true if and only if the file holds one complete JSON value.
///
/// The file is opened without following a link and without blocking, and
/// read only if the open file is a regular one: a FIFO swapped in after the
/// directory listing must not block the watcher.
fn parses_as_json(path: &Path, max_bytes: u64) -> bool {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOFOLLOW;
    let Ok(file) =
        fs::OpenOptions::new().read(true).custom_flags(i32::try_from(flags.bits()).unwrap_or(0)).open(path)
    else {
        return false;
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut bytes = Vec::new();
    if file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes).is_err() {
        return false;
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_two_scans_and_settle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        spool.ensure("i").expect("ensure");
        std::fs::write(dir.path().join("a.json"), r#"{"type":"x"}"#).expect("write");
        std::fs::write(dir.path().join(".hidden.json"), "{}").expect("write");
        std::fs::write(dir.path().join("b.json.tmp"), "{}").expect("write");
        std::fs::write(dir.path().join("spoolfetch.json"), "{}").expect("write");
        let mut s = Scanner::new(Duration::from_millis(50), 1 << 20);
        let r = s.scan(&spool).expect("scan");
        assert!(r.ready.is_empty());
        assert_eq!(r.waiting, 1);
        std::thread::sleep(Duration::from_millis(60));
        let r = s.scan(&spool).expect("scan");
        assert_eq!(r.ready.len(), 1);
        assert!(r.ready[0].parses);
    }

    /// Sets a file's mtime `ago` in the past (ctime stays now).
    fn set_mtime_ago(path: &Path, ago: Duration) {
        let f = std::fs::File::options().write(true).open(path).expect("open");
        f.set_modified(SystemTime::now() - ago).expect("set mtime");
    }

    #[test]
    fn an_old_file_on_a_local_disk_is_ready_at_the_first_scan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        spool.ensure("i").expect("ensure");
        std::fs::write(dir.path().join("a.json"), r#"{"type":"x"}"#).expect("write");
        std::fs::write(dir.path().join("torn.json"), r#"{"type":"#).expect("write");
        std::thread::sleep(Duration::from_millis(60));
        let mut s = Scanner::new(Duration::from_millis(50), 1 << 20).trusting_age(true);
        let r = s.scan(&spool).expect("scan");
        let names: Vec<String> = r.ready.iter().map(Candidate::file_name).collect();
        // The torn file waits: it may still be written by a slow writer.
        assert_eq!(names, ["a.json"]);
        assert_eq!(r.waiting, 1);
        // Without trust (a network filesystem), the two-scan rule holds.
        let mut s = Scanner::new(Duration::from_millis(50), 1 << 20);
        assert!(s.scan(&spool).expect("scan").ready.is_empty());
    }

    #[test]
    fn an_old_mtime_on_a_fresh_file_does_not_count() {
        // `cp -p` or `touch -d` sets mtime back but not ctime.
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        spool.ensure("i").expect("ensure");
        let p = dir.path().join("a.json");
        std::fs::write(&p, r#"{"type":"x"}"#).expect("write");
        set_mtime_ago(&p, Duration::from_secs(3600));
        let mut s = Scanner::new(Duration::from_secs(2), 1 << 20).trusting_age(true);
        let r = s.scan(&spool).expect("scan");
        assert!(r.ready.is_empty(), "a file changed just now must settle");
        assert_eq!(r.waiting, 1);
    }

    #[test]
    fn growing_file_is_not_ready() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        spool.ensure("i").expect("ensure");
        let p = dir.path().join("a.json");
        std::fs::write(&p, r#"{"type":"#).expect("write");
        let mut s = Scanner::new(Duration::from_millis(30), 1 << 20);
        s.scan(&spool).expect("scan");
        std::thread::sleep(Duration::from_millis(40));
        // Unchanged but incomplete JSON: waits (it may still be written).
        let r = s.scan(&spool).expect("scan");
        assert!(r.ready.is_empty());
        std::fs::write(&p, r#"{"type":"x"}"#).expect("write");
        let r = s.scan(&spool).expect("scan");
        assert!(r.ready.is_empty(), "changed file must settle again");
        std::thread::sleep(Duration::from_millis(40));
        let r = s.scan(&spool).expect("scan");
        assert_eq!(r.ready.len(), 1);
    }
}
