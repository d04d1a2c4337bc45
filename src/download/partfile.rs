//! The `.part` file of a download and the `.part.meta` record beside it.
//!
//! Owns the rules for opening what a download writes in a folder that
//! others may write too: nothing is ever opened through a symbolic link or
//! as anything but a regular file (checked on the open handle, so there is
//! no window between check and use), and a planted non-regular file at our
//! name is unlinked, never written through. The meta record keeps the
//! validators and the durable offset of a large transfer; it names its URL
//! only by digest, so a token in the URL is not kept on disk a second time.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::durable::atomic_write_mode;

/// Progress of a partial file, kept beside it as `.<name>.part.meta`, so
/// that a restart can resume with Range. `durable` never exceeds the bytes
/// fsynced in the `.part` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    /// SHA-256 (hex) of the URL the bytes came from: enough to tell
    /// whether a partial belongs to a URL, without its secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_sha256: Option<String>,
    /// The URL itself, as metas before the digest recorded it; read, never
    /// written.
    #[serde(default, skip_serializing)]
    pub url: Option<String>,
    /// Strong ETag of the first answer.
    pub etag: Option<String>,
    /// Last-Modified of the first answer.
    pub last_modified: Option<String>,
    /// Full length.
    pub total: Option<u64>,
    /// Bytes known to be on disk.
    pub durable: u64,
    /// The file name the server gave (`Content-Disposition`), sanitized,
    /// for a resume whose answer carries none (a 416 for a file that is
    /// complete already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl PartMeta {
    /// A record for bytes from `url`.
    pub fn new(
        url: &str,
        etag: Option<String>,
        last_modified: Option<String>,
        total: Option<u64>,
    ) -> PartMeta {
        PartMeta {
            url_sha256: Some(url_digest(url)),
            url: None,
            etag,
            last_modified,
            total,
            durable: 0,
            name: None,
        }
    }

    /// Whether an answer with these validators and this full length
    /// continues the partial this record describes, whichever URL gave it
    /// (a re-signed CDN URL names the same file): the strong ETag when the
    /// record has one, else the exact Last-Modified, and the same known
    /// length in both cases. A record without either validator matches
    /// nothing, since a range of it could splice two versions together.
    pub fn continued_by(&self, etag: Option<&str>, last_modified: Option<&str>, total: Option<u64>) -> bool {
        let validated = match (&self.etag, &self.last_modified) {
            (Some(mine), _) => etag == Some(mine.as_str()),
            (None, Some(mine)) => last_modified == Some(mine.as_str()),
            (None, None) => false,
        };
        validated && self.total.is_some() && total == self.total
    }

    /// Whether the partial this record describes came from `url`.
    pub fn is_for(&self, url: &str) -> bool {
        match (&self.url_sha256, &self.url) {
            (Some(d), _) => d.eq_ignore_ascii_case(&url_digest(url)),
            (None, Some(u)) => u == url,
            (None, None) => false,
        }
    }
}

/// SHA-256 of a URL, hex.
pub fn url_digest(url: &str) -> String {
    use sha2::Sha256;
    let mut h = Sha256::new();
    h.update(url.as_bytes());
    hex(&h.finalize())
}

/// Lower-case hex of bytes.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Returns the `.part` and `.part.meta` paths of a final path.
pub fn part_paths(dest: &Path) -> (PathBuf, PathBuf) {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (dir.join(format!(".{name}.part")), dir.join(format!(".{name}.part.meta")))
}

/// Local-disk failures are not the server's fault and retrying rarely
/// helps, so they fail the item (a full disk shows up clearly in status).
pub(super) fn local(what: &str, path: &Path, e: &io::Error) -> String {
    format!("cannot {what} {}: {e}", path.display())
}

/// Opens the `.part` file, creating it (and its folder) when needed.
/// Returns the file and whether it was created just now.
///
/// The common case (new file, folder exists) is one `openat`: the folder is
/// only created when that fails with `NotFound`, instead of a
/// `create_dir_all` (an `EEXIST` mkdir) per file, and `create_new` tells a
/// fresh file from a partial one without a separate stat.
pub(crate) fn open_part(dir: &Path, part_path: &Path) -> Result<(File, bool), String> {
    let create = || open_regular(part_path, true);
    let created = match create() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| local("create folder", dir, &e))?;
            create()
        }
        other => other,
    };
    match created {
        Ok(f) => Ok((f, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match open_regular(part_path, false) {
            Ok(f) => Ok((f, false)),
            Err(e) if is_planted(&e) => {
                // Someone who can write the download folder put a symbolic
                // link, FIFO or device at our `.part` name: writing through it
                // would truncate or fill its target. Unlinking removes only
                // the entry itself, never what it points to.
                log::warn!("removing a non-regular file at {}", part_path.display());
                fs::remove_file(part_path).map_err(|e| local("remove", part_path, &e))?;
                open_regular(part_path, true).map(|f| (f, true)).map_err(|e| local("open", part_path, &e))
            }
            Err(e) => Err(local("open", part_path, &e)),
        },
        Err(e) => Err(local("open", part_path, &e)),
    }
}

/// Opens `path` for reading and writing without following a symbolic link
/// at its last component and without blocking on a FIFO, and refuses
/// anything that is not a regular file (checked on the open handle, so no
/// swap between check and use is possible).
fn open_regular(path: &Path, create_new: bool) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(create_new)
        .custom_flags(flags.bits() as i32)
        .open(path)?;
    ensure_regular(file)
}

/// Opens `path` read-only under the same rules as [`open_regular`].
fn open_regular_read(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = OpenOptions::new().read(true).custom_flags(flags.bits() as i32).open(path)?;
    ensure_regular(file)
}

/// Returns the file if its handle is a regular file, an error otherwise;
/// the non-blocking flag an open needed for FIFOs is cleared again.
fn ensure_regular(file: File) -> io::Result<File> {
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, NOT_REGULAR));
    }
    let flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, flags - rustix::fs::OFlags::NONBLOCK)?;
    Ok(file)
}

/// Message of the error [`ensure_regular`] returns.
const NOT_REGULAR: &str = "not a regular file";

/// Whether an open failed because the path is a symbolic link (`ELOOP`
/// under `O_NOFOLLOW`) or some other non-regular file.
fn is_planted(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
        || (e.kind() == io::ErrorKind::InvalidInput && e.to_string() == NOT_REGULAR)
}

/// Makes the bytes so far durable and records them in the meta file.
/// Failures are logged: the worst case is a restart from an older offset.
pub(super) fn checkpoint_part(
    part: &File,
    meta_path: &Path,
    meta: &mut PartMeta,
    offset: u64,
    keep_meta: bool,
) {
    if !keep_meta {
        return;
    }
    if let Err(e) = part.sync_data() {
        log::warn!("cannot fsync a partial download: {e}");
        return;
    }
    meta.durable = offset;
    if let Err(e) = write_meta(meta_path, meta) {
        log::warn!("cannot record download progress in {}: {e}", meta_path.display());
    }
}

/// Writes a meta record (owner-only: it describes what the user
/// downloads).
pub(super) fn write_meta(path: &Path, meta: &PartMeta) -> io::Result<()> {
    atomic_write_mode(path, &serde_json::to_vec(meta).unwrap_or_default(), 0o600)
}

/// Empties a partial file whose bytes cannot be trusted.
pub(super) fn discard(part: &File, meta_path: &Path) {
    let _ = part.set_len(0);
    let _ = fs::remove_file(meta_path);
}

/// Reads a meta record; a damaged one counts as none.
pub(super) fn read_meta(path: &Path) -> Option<PartMeta> {
    let mut bytes = Vec::new();
    // A meta file is a few hundred bytes; a bigger one is not ours.
    open_regular_read(path).ok()?.take(1 << 16).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Hex MD5 of a file.
pub(super) fn md5_of(path: &Path, chunk: usize) -> io::Result<String> {
    let mut f = open_regular_read(path)?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; chunk];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names_are_hidden_siblings() {
        let (p, m) = part_paths(Path::new("/a/b/c.jpg"));
        assert_eq!(p, Path::new("/a/b/.c.jpg.part"));
        assert_eq!(m, Path::new("/a/b/.c.jpg.part.meta"));
    }

    #[test]
    fn a_meta_keeps_a_digest_of_its_url_not_the_url() {
        let url = "https://cdn.example/a.bin?token=SECRET123";
        let meta = PartMeta::new(url, Some("\"e\"".into()), None, Some(10));
        let text = String::from_utf8(serde_json::to_vec(&meta).expect("json")).expect("utf-8");
        assert!(!text.contains("SECRET123") && !text.contains("cdn.example"), "{text}");
        let back: PartMeta = serde_json::from_str(&text).expect("parse");
        assert!(back.is_for(url));
        assert!(!back.is_for("https://cdn.example/a.bin?token=OTHER"));
    }

    #[test]
    fn another_url_continues_a_partial_only_with_the_same_validators_and_length() {
        let m = PartMeta::new("https://a/f?sig=1", Some("\"e1\"".into()), Some("d1".into()), Some(10));
        assert!(m.continued_by(Some("\"e1\""), Some("other date"), Some(10)));
        assert!(!m.continued_by(Some("\"e2\""), Some("d1"), Some(10)), "the ETag decides when there is one");
        assert!(!m.continued_by(Some("\"e1\""), None, Some(11)), "another length");
        assert!(!m.continued_by(Some("\"e1\""), None, None), "an unknown length");
        assert!(!m.continued_by(None, Some("d1"), Some(10)), "no ETag where one was");
        let dated = PartMeta::new("https://a/f", None, Some("d1".into()), Some(10));
        assert!(dated.continued_by(None, Some("d1"), Some(10)));
        assert!(!dated.continued_by(None, Some("d2"), Some(10)));
        let bare = PartMeta::new("https://a/f", None, None, Some(10));
        assert!(!bare.continued_by(None, None, Some(10)));
        // A meta written before the digest resumes the same way.
        let old: PartMeta = serde_json::from_str(
            r#"{"url":"http://h/f.bin","etag":"\"x\"","last_modified":null,"total":10,"durable":4}"#,
        )
        .expect("old meta");
        assert!(old.continued_by(Some("\"x\""), None, Some(10)));
    }

    #[test]
    fn a_meta_written_before_the_digest_still_matches_its_url() {
        let old = r#"{"url":"http://h/f.bin","etag":"\"x\"","last_modified":null,"total":5000000,"durable":4194304}"#;
        let meta: PartMeta = serde_json::from_str(old).expect("old meta");
        assert!(meta.is_for("http://h/f.bin"));
        assert!(!meta.is_for("http://h/g.bin"));
        assert_eq!(meta.durable, 4_194_304);
        // Rewritten, it drops the URL for its digest.
        let mut again = meta.clone();
        again.url_sha256 = Some(url_digest("http://h/f.bin"));
        let text = String::from_utf8(serde_json::to_vec(&again).expect("json")).expect("utf-8");
        assert!(!text.contains("http://h"), "{text}");
    }
}
