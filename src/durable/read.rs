//! Opening a local file for reading without being tricked into another.
//!
//! A path a job names (an upload, a local input) may be replaced by a
//! symbolic link, a FIFO or a device between a check and the read. Opening
//! with `O_NOFOLLOW | O_NONBLOCK` and checking the open descriptor closes
//! that window: a link is never followed, a FIFO never blocks the thread,
//! and only a regular file is ever read.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` read-only if and only if it is a regular file and not a
/// symbolic link; the error names what it is instead.
pub fn open_regular_nofollow(path: &Path) -> io::Result<File> {
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(i32::try_from(flags.bits()).unwrap_or(0))
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                io::Error::new(io::ErrorKind::InvalidInput, "it is a symbolic link (not followed)")
            } else {
                e
            }
        })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() { "a folder" } else { "not a regular file (a device, FIFO or socket)" };
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("it is {what}")));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a");
        std::fs::write(&f, b"x").expect("write");
        assert!(open_regular_nofollow(&f).is_ok());
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&f, &link).expect("symlink");
        let e = open_regular_nofollow(&link).expect_err("link");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = open_regular_nofollow(dir.path()).expect_err("folder");
        assert!(e.to_string().contains("folder"), "{e}");
        let fifo = dir.path().join("p");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .expect("mkfifo");
        let e = open_regular_nofollow(&fifo).expect_err("fifo");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(open_regular_nofollow(&dir.path().join("missing")).is_err());
    }
}
