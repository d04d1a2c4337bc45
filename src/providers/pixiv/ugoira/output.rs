//! Temporary files and folders beside the output, removed unless committed.
//!
//! Every conversion writes to a dotfile in `out`'s folder and renames it
//! over `out` only after an fsync ([`crate::durable::sync_and_rename`]), so
//! `out` is never half-written. The guards here remove their path when
//! dropped without a commit, which covers errors and panics alike.

use std::fs::{self, File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::ConvertError;

/// Write buffer for outputs: large writes, few syscalls.
const BUF_BYTES: usize = 256 * 1024;

/// A temporary output file that becomes `target` on [`TempOut::commit`].
pub(crate) struct TempOut {
    path: PathBuf,
    target: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl TempOut {
    /// Creates a new, empty temporary dotfile in `target`'s folder.
    pub(crate) fn create(target: &Path) -> Result<Self, ConvertError> {
        let path = sibling(target, "tmp")?;
        let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        Ok(TempOut {
            path,
            target: target.to_owned(),
            writer: Some(BufWriter::with_capacity(BUF_BYTES, file)),
        })
    }

    /// Creates a new, empty temporary dotfile in `target`'s folder for a
    /// child process to overwrite, and closes it.
    pub(crate) fn reserve(target: &Path) -> Result<Self, ConvertError> {
        let mut t = TempOut::create(target)?;
        t.writer = None;
        Ok(t)
    }

    /// The temporary file's path (for a child process that writes it).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The buffered writer to the temporary file.
    pub(crate) fn writer(&mut self) -> Result<&mut BufWriter<File>, ConvertError> {
        self.writer.as_mut().ok_or_else(|| ConvertError::Encode("temporary output has no writer".into()))
    }

    /// Flushes, fsyncs and renames the temporary file over the target; an
    /// empty file is an error instead.
    ///
    /// The fsync goes through the handle that wrote the data, so a deferred
    /// write error (NFS) is seen; a file written by a child process
    /// ([`Self::reserve`]) is reopened for it.
    pub(crate) fn commit(mut self) -> Result<(), ConvertError> {
        let file = match self.writer.take() {
            Some(w) => w.into_inner().map_err(|e| ConvertError::Io(e.into_error()))?,
            None => File::open(&self.path)?,
        };
        if file.metadata()?.len() == 0 {
            return Err(ConvertError::Encode("the encoder wrote an empty file".into()));
        }
        crate::durable::sync_and_rename(&file, &self.path, &self.target)?;
        // Renamed: nothing left for Drop to remove.
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempOut {
    fn drop(&mut self) {
        drop(self.writer.take());
        if !self.path.as_os_str().is_empty() {
            // Garbage whatever failed; a leftover dotfile only costs space.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A temporary folder in `target`'s folder, removed with its contents on
/// drop.
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a new, empty temporary dot-folder beside `target`.
    pub(crate) fn create(target: &Path) -> Result<Self, ConvertError> {
        let path = sibling(target, "frames")?;
        fs::create_dir(&path)?;
        Ok(TempDir { path })
    }

    /// The folder's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// `.{name}.{pid}.{random}.{suffix}` in `target`'s folder: a dotfile (the
/// spool scanner and most listings skip it) on the same filesystem (the
/// rename stays atomic), unique between processes and threads.
fn sibling(target: &Path, suffix: &str) -> Result<PathBuf, ConvertError> {
    let name = target
        .file_name()
        .ok_or_else(|| ConvertError::Encode(format!("output path {} has no file name", target.display())))?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok(dir.join(format!(
        ".{}.{}.{:08x}.{}",
        name.to_string_lossy(),
        std::process::id(),
        fastrand::u32(..),
        suffix
    )))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_renames_and_drop_removes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("a.gif");
        let mut t = TempOut::create(&out).expect("create");
        assert!(t.path().file_name().expect("name").to_string_lossy().starts_with(".a.gif."));
        t.writer().expect("writer").write_all(b"GIF89a").expect("write");
        t.commit().expect("commit");
        assert_eq!(fs::read(&out).expect("read"), b"GIF89a");
        assert_eq!(names(dir.path()), ["a.gif"]);

        let mut t = TempOut::create(&out).expect("create");
        t.writer().expect("writer").write_all(b"half").expect("write");
        let d = TempDir::create(&out).expect("dir");
        fs::write(d.path().join("000000.jpg"), b"x").expect("write");
        drop(t);
        drop(d);
        assert_eq!(names(dir.path()), ["a.gif"], "temporary files left behind");
        assert_eq!(fs::read(&out).expect("read"), b"GIF89a", "old output must be untouched");
    }

    #[test]
    fn empty_output_is_not_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("a.gif");
        let t = TempOut::create(&out).expect("create");
        assert!(matches!(t.commit(), Err(ConvertError::Encode(_))));
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn reserved_file_is_committed_after_a_child_writes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("a.webp");
        let t = TempOut::reserve(&out).expect("reserve");
        assert!(t.path().exists());
        fs::write(t.path(), b"RIFF").expect("child writes");
        t.commit().expect("commit");
        assert_eq!(fs::read(&out).expect("read"), b"RIFF");
        assert_eq!(names(dir.path()), ["a.webp"]);
    }

    #[test]
    fn path_without_file_name_is_an_error() {
        assert!(matches!(TempOut::create(Path::new("/")), Err(ConvertError::Encode(_))));
    }
}
