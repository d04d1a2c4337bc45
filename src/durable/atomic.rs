//! The temp → fsync → rename → fsync-directory recipe.
//!
//! Rust's `File` drop ignores close errors, and NFS reports deferred write
//! errors only at fsync or close, so every function here calls `sync_all`
//! explicitly and returns its error. An fsync error is never retried: after
//! a failed fsync Linux may already have dropped the dirty pages it
//! covered, so the data is treated as lost.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically and durably, readable and
/// writable by the owner only (mode 0600): what the daemon keeps (job
/// state, reasons, tokens) may hold URLs with their credentials. A file
/// meant for others uses [`atomic_write_mode`].
///
/// The temporary file is a dotfile in the same directory (so that the
/// spool scanner ignores it and the rename stays within one filesystem)
/// and is removed again if any step fails.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    atomic_write_mode(path, bytes, 0o600)
}

/// [`atomic_write`] with the file created with permission bits `mode`
/// (before the umask), for secrets: a token file is never readable by
/// others, not even for the instant before a chmod.
pub fn atomic_write_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = parent_of(path);
    let file_name =
        path.file_name().ok_or_else(|| io::Error::other("atomic_write: path has no file name"))?;
    // The temporary name only has to be unique (pid and a random number
    // see to that); the target's name is cut so that it fits in 255 bytes
    // even when the target's own name is that long.
    let name = file_name.to_string_lossy();
    let mut keep = name.len().min(200);
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    let tmp = dir.join(format!(".{}.{}.{}.tmp", &name[..keep], std::process::id(), fastrand::u32(..)));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        // The temporary file is garbage whatever failed; a leftover one would
        // only cost disk space, so a failure to remove it is not reported.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Copies the regular file `from` (opened without following a link) to
/// `to` atomically and durably, with permission bits `mode`: a reader
/// sees no file or the whole copy. Returns the bytes copied.
pub fn atomic_copy(from: &Path, to: &Path, mode: u32) -> io::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut src = super::open_regular_nofollow(from)?;
    let dir = parent_of(to);
    let name = to.file_name().ok_or_else(|| io::Error::other("atomic_copy: path has no file name"))?;
    let name = name.to_string_lossy();
    let mut keep = name.len().min(200);
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    let tmp = dir.join(format!(".{}.{}.{}.tmp", &name[..keep], std::process::id(), fastrand::u32(..)));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        let n = io::copy(&mut src, &mut file)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, to)?;
        fsync_dir(dir)?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Fsyncs `file` and renames `from` to `to`, then fsyncs the directory of
/// `to`.
///
/// This is how a completed download takes its final name: only after its
/// bytes are durable.
pub fn sync_and_rename(file: &File, from: &Path, to: &Path) -> io::Result<()> {
    file.sync_all()?;
    fs::rename(from, to)?;
    fsync_dir(parent_of(to))
}

/// Appends `bytes` to an open file and fsyncs its data.
pub fn append_synced(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_data()
}

/// Fsyncs a directory so that renames and creations inside it survive a
/// power cut.
///
/// Some filesystems (CIFS, several FUSE ones) do not support fsync on a
/// directory and answer `EINVAL` or `ENOTSUP`; there the operations are
/// synchronous on the server or durability is out of our hands, so that
/// answer counts as success. Any other error is returned.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    let handle = File::open(dir)?;
    match handle.sync_all() {
        Ok(()) => Ok(()),
        Err(e)
            if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error())
                || e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error()) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Removes, in `dir` only (not below it), the temporaries `atomic_write`
/// (and the converter's output) leaves when a process dies mid-write:
/// regular files named `.<name>.<pid>.<rand>.tmp`, `<rand>` decimal or
/// hexadecimal, whose pid is no live process. Our own pid counts as
/// live, so a write in flight is never touched, and no other name is
/// ever removed. Returns how many were removed.
pub fn remove_orphaned_temporaries(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(orphan_pid) else { continue };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // `file_type` does not follow links: only a regular file goes.
        if entry.file_type()?.is_file() && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// [`remove_orphaned_temporaries`] in `dir` and every folder below it, at
/// most `depth` levels down; symbolic links are not followed. Folders that
/// cannot be read are passed over. Returns how many were removed.
pub fn remove_orphaned_temporaries_below(dir: &Path, depth: usize) -> usize {
    let mut removed = remove_orphaned_temporaries(dir).unwrap_or(0);
    if depth == 0 {
        return removed;
    }
    let Ok(rd) = fs::read_dir(dir) else { return removed };
    for entry in rd.flatten() {
        // `file_type` does not follow links: a linked folder is not entered.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            removed += remove_orphaned_temporaries_below(&entry.path(), depth - 1);
        }
    }
    removed
}

/// The pid in a temporary's name `.<name>.<pid>.<rand>.tmp`, if it is one.
fn orphan_pid(name: &str) -> Option<u32> {
    let stem = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = stem.rsplitn(3, '.');
    let rand = parts.next()?;
    let pid = parts.next()?;
    let target = parts.next()?;
    if target.is_empty() || rand.is_empty() || !rand.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    pid.parse().ok()
}

/// Returns the directory a path lives in, `.` for a bare file name.
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("state.json");
        atomic_write(&p, b"one").expect("first write");
        atomic_write(&p, b"two").expect("second write");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&p).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "state files are the owner's only");
        let names: Vec<_> =
            fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names.len(), 1, "temp files left behind: {names:?}");
    }

    #[test]
    fn atomic_write_into_missing_dir_fails_cleanly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("nope").join("x.json");
        assert!(atomic_write(&p, b"x").is_err());
    }

    #[test]
    fn orphaned_temporaries_of_dead_processes_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = dir.path().join(".state.json.999999999.12345.tmp");
        let mine = dir.path().join(format!(".state.json.{}.7.tmp", std::process::id()));
        let other = dir.path().join("state.json.999999999.1.tmp");
        let user = dir.path().join(".notes.999999999.draft.tmp");
        for p in [&dead, &mine, &other, &user] {
            fs::write(p, b"x").expect("write");
        }
        assert_eq!(remove_orphaned_temporaries(dir.path()).expect("sweep"), 1);
        assert!(!dead.exists() && mine.exists() && other.exists() && user.exists());

        // Below the folder too (the converter names its temporaries in
        // hexadecimal), but never through a symbolic link.
        let sub = dir.path().join("a").join("b");
        fs::create_dir_all(&sub).expect("mkdir");
        let deep = sub.join(".clip.mp4.999999999.00c0ffee.tmp");
        fs::write(&deep, b"x").expect("write");
        let outside = tempfile::tempdir().expect("tempdir");
        let beyond = outside.path().join(".x.999999999.1.tmp");
        fs::write(&beyond, b"x").expect("write");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).expect("symlink");
        assert_eq!(remove_orphaned_temporaries_below(dir.path(), 8), 1);
        assert!(!deep.exists() && beyond.exists());
    }
}
