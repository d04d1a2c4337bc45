//! Final names that are not the task's own: a name the server gave
//! (`Content-Disposition`), or a name taken by another file.
//!
//! Owns the job's name log, `state/<tid>/names.jsonl`: one line
//! `{"i":ITEM,"n":NAME}` per item whose file takes another name than the
//! one its task planned, appended and fdatasynced *before* the rename
//! that gives the file that name. That order is the crash-safety choice:
//!
//! - A crash before the log line leaves the `.part` under the item's
//!   provisional name; the restart resumes it and decides the name again
//!   from the answer.
//! - A crash between the log line and the rename leaves the same `.part`;
//!   the restart finds the logged name free and takes it again.
//! - A crash after the rename but before the journal records the item:
//!   the restart reads the log, finds the file under the logged name and
//!   reports it done without a request, so it is neither downloaded a
//!   second time nor saved again as `name-<i>.ext`.
//!
//! Invariants: a name is never given over an existing file (the rename
//! refuses to replace, `RENAME_NOREPLACE`, with a checked fallback where
//! the filesystem lacks it); a name logged for one item is never given to
//! another item of the job; a collision gets the deterministic suffix
//! `-<item index>` (then `-<index>-2`, …), the same rule `http.files`
//! uses for two URLs with one name. A taken name whose file has exactly
//! our bytes is the same file (a job run again into its folder): the
//! item is done with it and the copy is dropped. Names are compared
//! without letter case, as SMB shares do. The log lives in the state
//! folder, not beside the user's files, and goes with the job (`prune`).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::download::partfile::part_paths;
use crate::durable::fsync_dir;
use crate::naming::with_suffix;

/// The log's file name in a job's state folder.
pub const NAMES_LOG: &str = "names.jsonl";

/// How many suffixed names are tried before giving up on a folder.
const MAX_TRIES: u32 = 1000;

/// A job's name log (see the module doc); shared by its tasks.
#[derive(Debug)]
pub struct NameLog {
    /// The state folder it lives in.
    dir: PathBuf,
    /// The names so far, and the open file; one lock, so that choosing a
    /// name, logging it and renaming to it happen as one step per job.
    state: Mutex<State>,
}

/// What the log holds.
#[derive(Debug, Default)]
struct State {
    /// Opened on the first append.
    file: Option<File>,
    /// Item → its logged name (the last line wins).
    by_item: HashMap<u64, String>,
    /// Lower-case name → the item it was logged for.
    owner: HashMap<String, u64>,
}

/// One line of the log.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    /// The item.
    i: u64,
    /// Its file name, inside its planned folder.
    n: String,
}

/// How [`NameLog::place`] ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Placed {
    /// The `.part` took this name.
    Renamed(PathBuf),
    /// A file with exactly these bytes already had the wanted name; the
    /// `.part` was removed.
    Same(PathBuf),
}

impl NameLog {
    /// Reads the log of the job whose state folder is `state_dir` (no
    /// file yet is an empty log; a torn last line is ignored).
    pub fn open(state_dir: &Path) -> io::Result<NameLog> {
        let mut state = State::default();
        match File::open(state_dir.join(NAMES_LOG)) {
            Ok(f) => {
                for line in BufReader::new(f).lines() {
                    let line = line?;
                    if let Ok(l) = serde_json::from_str::<Line>(&line) {
                        state.note(l.i, l.n);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(NameLog { dir: state_dir.to_path_buf(), state: Mutex::new(state) })
    }

    /// The name logged for `item`, if any.
    pub fn chosen(&self, item: u64) -> Option<String> {
        self.lock().by_item.get(&item).cloned()
    }

    /// Whether `name` was logged for another item than `item`.
    pub fn claimed_by_other(&self, name: &str, item: u64) -> bool {
        self.lock().owner.get(&name.to_lowercase()).is_some_and(|&o| o != item)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding it leaves maps that are still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives the verified, fsynced `part` of `item` a final name in `dir`:
    /// the one logged for it before (a restart), else `wanted`, else
    /// `wanted` with the item's suffix. The name is logged durably before
    /// the rename; the folder's fsync stays the runner's.
    pub(super) fn place(&self, item: u64, part: &Path, dir: &Path, wanted: &str) -> Result<Placed, String> {
        let mut st = self.lock();
        let logged = st.by_item.get(&item).cloned();
        let candidates = logged.into_iter().chain((0..MAX_TRIES).map(|k| match k {
            0 => wanted.to_string(),
            1 => with_suffix(wanted, &item.to_string()),
            k => with_suffix(wanted, &format!("{item}-{k}")),
        }));
        for name in candidates {
            if st.owner.get(&name.to_lowercase()).is_some_and(|&o| o != item) {
                continue;
            }
            let dest = dir.join(&name);
            match fs::symlink_metadata(&dest) {
                Ok(m) => {
                    if m.is_file() && same_bytes(part, &dest).unwrap_or(false) {
                        let _ = fs::remove_file(part);
                        return Ok(Placed::Same(dest));
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot look at {}: {e}", dest.display())),
            }
            // Another download is under way (or paused) for that name.
            let (other_part, _) = part_paths(&dest);
            if other_part != part && fs::symlink_metadata(&other_part).is_ok() {
                continue;
            }
            if st.by_item.get(&item) != Some(&name) {
                st.append(&self.dir, item, &name)
                    .map_err(|e| format!("cannot write {}: {e}", self.dir.join(NAMES_LOG).display()))?;
            }
            match rename_noreplace(part, &dest) {
                Ok(()) => return Ok(Placed::Renamed(dest)),
                // Taken since we looked (another job in the same folder).
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("cannot rename into {}: {e}", dest.display())),
            }
        }
        Err(format!("no free name for {wanted:?} in {}", dir.display()))
    }
}

impl State {
    /// Remembers that `item` is named `name`.
    fn note(&mut self, item: u64, name: String) {
        if let Some(old) = self.by_item.insert(item, name.clone()) {
            self.owner.remove(&old.to_lowercase());
        }
        self.owner.insert(name.to_lowercase(), item);
    }

    /// Appends a line and makes it durable (on the first append also the
    /// log's own entry in the state folder).
    fn append(&mut self, dir: &Path, item: u64, name: &str) -> io::Result<()> {
        let mut line =
            serde_json::to_string(&Line { i: item, n: name.to_string() }).map_err(io::Error::other)?;
        line.push('\n');
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let f = OpenOptions::new().create(true).append(true).mode(0o600).open(dir.join(NAMES_LOG))?;
                fsync_dir(dir)?;
                self.file.insert(f)
            }
        };
        file.write_all(line.as_bytes())?;
        file.sync_data()?;
        self.note(item, name.to_string());
        Ok(())
    }
}

/// Renames `from` to `to` unless `to` exists (`AlreadyExists` then).
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        // Filesystems without the flag (some network and FUSE ones): the
        // name was checked free under the job's lock a moment ago.
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(from, to)
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Whether two files hold the same bytes.
fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (fa, fb) = (File::open(a)?, crate::durable::open_regular_nofollow(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ra, mut rb) = (BufReader::new(fa), BufReader::new(fb));
    let (mut x, mut y) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = ra.read(&mut x)?;
        if n == 0 {
            return Ok(true);
        }
        rb.read_exact(&mut y[..n])?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
        let (p, _) = part_paths(&dir.join(name));
        fs::write(&p, body).expect("write part");
        p
    }

    #[test]
    fn collisions_get_the_item_suffix_and_never_replace() {
        let out = tempfile::tempdir().expect("dir");
        let state = tempfile::tempdir().expect("dir");
        let log = NameLog::open(state.path()).expect("log");
        fs::write(out.path().join("report.pdf"), b"the user's").expect("user file");
        let p = part(out.path(), "file-3", b"ours");
        let placed = log.place(3, &p, out.path(), "report.pdf").expect("placed");
        assert_eq!(placed, Placed::Renamed(out.path().join("report-3.pdf")));
        assert_eq!(fs::read(out.path().join("report.pdf")).expect("kept"), b"the user's");
        // Another item of the job never takes that name, even once the
        // file is gone.
        fs::remove_file(out.path().join("report-3.pdf")).expect("rm");
        assert!(log.claimed_by_other("REPORT-3.pdf", 4));
        let p = part(out.path(), "file-4", b"other");
        let placed = log.place(4, &p, out.path(), "report-3.pdf").expect("placed");
        assert_eq!(placed, Placed::Renamed(out.path().join("report-3-4.pdf")));
    }

    #[test]
    fn a_restart_keeps_the_logged_name_and_same_bytes_are_the_same_file() {
        let out = tempfile::tempdir().expect("dir");
        let state = tempfile::tempdir().expect("dir");
        let log = NameLog::open(state.path()).expect("log");
        let p = part(out.path(), "file-0", b"abc");
        assert_eq!(log.place(0, &p, out.path(), "a.txt"), Ok(Placed::Renamed(out.path().join("a.txt"))));
        // The restart reads what was logged.
        let again = NameLog::open(state.path()).expect("reopen");
        assert_eq!(again.chosen(0).as_deref(), Some("a.txt"));
        assert_eq!(again.chosen(1), None);
        // A second copy of the same bytes wanted under that name by the
        // same item is that file, not `a-0.txt`.
        let p = part(out.path(), "file-0", b"abc");
        assert_eq!(again.place(0, &p, out.path(), "a.txt"), Ok(Placed::Same(out.path().join("a.txt"))));
        assert!(!p.exists());
        // A torn last line is ignored.
        let mut f = OpenOptions::new().append(true).open(state.path().join(NAMES_LOG)).expect("open");
        f.write_all(b"{\"i\":9,\"n\":\"x").expect("torn");
        assert_eq!(NameLog::open(state.path()).expect("reopen").chosen(9), None);
    }

    #[test]
    fn a_name_being_downloaded_is_not_free() {
        let out = tempfile::tempdir().expect("dir");
        let state = tempfile::tempdir().expect("dir");
        let log = NameLog::open(state.path()).expect("log");
        let _other = part(out.path(), "b.bin", b"half");
        let p = part(out.path(), "file-1", b"x");
        assert_eq!(log.place(1, &p, out.path(), "b.bin"), Ok(Placed::Renamed(out.path().join("b-1.bin"))));
    }
}
