//! Fetching one file: `.part` file, Range resume, verification, rename.
//!
//! The rules are those of `research/reliability.md` §3.5–3.6 (RFC 9110
//! §13.1.5, §14, §15.3.7, §15.5.17): resume with `Range` + `If-Range`
//! (strong ETag, else Last-Modified); accept a 206 only with a
//! `Content-Range` that starts at our offset and matches the known total;
//! a 200 means start over; a 416 means check what we have. Bodies are
//! requested with `Accept-Encoding: identity` because ranges count bytes of
//! the encoded form.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::download::task::{DownloadTask, Outcome};
use crate::durable::atomic_write_mode;

/// Progress of a partial file, kept beside it as `.<name>.part.meta`, so
/// that a restart can resume with Range. `durable` never exceeds the bytes
/// fsynced in the `.part` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    /// The URL the bytes came from.
    pub url: String,
    /// Strong ETag of the first answer.
    pub etag: Option<String>,
    /// Last-Modified of the first answer.
    pub last_modified: Option<String>,
    /// Full length.
    pub total: Option<u64>,
    /// Bytes known to be on disk.
    pub durable: u64,
}

/// Files at least this large record their progress for resume after a
/// crash; smaller ones simply start again.
const RESUME_MIN_BYTES: u64 = 1 << 20;
/// How often a large transfer makes its progress durable.
const SYNC_EVERY_BYTES: u64 = 4 << 20;
/// … or after this long.
const SYNC_EVERY: Duration = Duration::from_secs(2);
/// Read buffer size.
const CHUNK: usize = 128 * 1024;

/// Returns the `.part` and `.part.meta` paths of a final path.
pub fn part_paths(dest: &Path) -> (PathBuf, PathBuf) {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (dir.join(format!(".{name}.part")), dir.join(format!(".{name}.part.meta")))
}

/// What an attempt leaves to do: nothing more (an outcome), or the durable
/// rename of a verified file, which [`Finish::complete`] does.
///
/// The split lets the pool fsync on a separate thread: a worker hands the
/// [`Finish`] over and starts its next transfer while the disk syncs.
#[derive(Debug)]
pub enum Attempt {
    /// The attempt is over; report this.
    Over(Outcome),
    /// All bytes are in the `.part` and verified; fsync and rename remain.
    Verified(Finish),
}

impl From<Outcome> for Attempt {
    fn from(o: Outcome) -> Attempt {
        Attempt::Over(o)
    }
}

/// A complete, verified `.part` file that does not have its final name yet.
///
/// Dropping it without [`Finish::complete`] leaves the `.part` (and meta)
/// as a crash would: the next attempt resumes or restarts.
#[derive(Debug)]
pub struct Finish {
    /// The open `.part` file.
    part: File,
    /// Its path.
    part_path: PathBuf,
    /// The final path.
    dest: PathBuf,
    /// The meta file to remove afterwards, if one can exist.
    meta_path: Option<PathBuf>,
    /// Bytes this attempt transferred.
    received: u64,
    /// The file's length when it was verified.
    len: u64,
}

impl Finish {
    /// Makes the bytes durable and gives the file its final name: fdatasync,
    /// then rename, then removal of the meta file. The folder's fsync is the
    /// runner's job (it batches them before journaling `Done`).
    pub fn complete(self) -> Outcome {
        let Finish { part, part_path, dest, meta_path, received, len } = self;
        // fdatasync covers the data and the file size (what reading it back
        // needs); timestamps are not worth a second journal write per file.
        // The name changes only after this succeeded, so a crash can never
        // leave a final name on bytes that are not on disk.
        if let Err(e) = part.sync_data() {
            return Outcome::Failed { reason: local("fsync", &part_path, &e) };
        }
        // The file waited in the finishers' queue since it was verified;
        // if anything else wrote to it meanwhile (a second download of
        // the same file), it must not take the final name.
        match part.metadata() {
            Ok(m) if m.len() == len => {}
            Ok(m) => {
                return Outcome::Retry {
                    reason: format!(
                        "the partial file changed after it was verified ({len} → {} bytes); another download of the same file?",
                        m.len()
                    ),
                    after: None,
                };
            }
            Err(e) => return Outcome::Failed { reason: local("stat", &part_path, &e) },
        }
        drop(part);
        if let Err(e) = fs::rename(&part_path, &dest) {
            return Outcome::Failed { reason: local("rename into", &dest, &e) };
        }
        if let Some(m) = meta_path {
            let _ = fs::remove_file(m);
        }
        Outcome::Done { bytes: received, already: false }
    }
}

/// Makes one attempt at a task, including the fsync and rename of a
/// complete file. Never panics on anything a server sends.
pub fn fetch(agent: &ureq::Agent, task: &DownloadTask) -> Outcome {
    match fetch_staged(agent, task) {
        Attempt::Over(o) => o,
        Attempt::Verified(f) => f.complete(),
    }
}

/// Makes one attempt at a task up to, not including, the fsync and rename
/// of a verified file. Never panics on anything a server sends.
pub fn fetch_staged(agent: &ureq::Agent, task: &DownloadTask) -> Attempt {
    let attempt = match fetch_inner(agent, task) {
        Ok(a) => a,
        Err(e) => Attempt::Over(Outcome::Failed { reason: e }),
    };
    if matches!(attempt, Attempt::Over(Outcome::Failed { .. })) {
        // A failure for good leaves no empty hidden file behind; a partial
        // with bytes in it is kept for a later `retry`.
        let (part, meta) = part_paths(&task.dest);
        if fs::metadata(&part).is_ok_and(|m| m.len() == 0) {
            let _ = fs::remove_file(&part);
            let _ = fs::remove_file(&meta);
        }
    }
    attempt
}

/// Local-disk failures are not the server's fault and retrying rarely
/// helps, so they fail the item (a full disk shows up clearly in status).
fn local(what: &str, path: &Path, e: &io::Error) -> String {
    format!("cannot {what} {}: {e}", path.display())
}

/// The attempt; `Err` is a local failure.
fn fetch_inner(agent: &ureq::Agent, task: &DownloadTask) -> Result<Attempt, String> {
    let dest = &task.dest;
    let dir = dest.parent().unwrap_or(Path::new("."));
    if let Some(text) = &task.inline {
        fs::create_dir_all(dir).map_err(|e| local("create folder", dir, &e))?;
        atomic_write_mode(dest, text.as_bytes(), 0o644).map_err(|e| local("write", dest, &e))?;
        return Ok(Attempt::Over(Outcome::Done { bytes: 0, already: false }));
    }
    if let Ok(meta) = fs::symlink_metadata(dest)
        && meta.is_file()
        && task.expected_size.is_none_or(|s| s == meta.len())
    {
        return Ok(Attempt::Over(Outcome::Done { bytes: 0, already: true }));
    }
    let (part_path, meta_path) = part_paths(dest);
    let (mut part, fresh) = open_part(dir, &part_path)?;
    // A brand-new `.part` is empty with its cursor at 0, so there is nothing
    // to resume, truncate or seek: any meta file beside it (left by a crash
    // in `finalize` between rename and unlink) could only say "resume from
    // min(durable, 0) = 0". Skipping those calls saves four syscalls per
    // small file; a meta file that is there anyway is replaced (large file)
    // or ignored and left (small file), as before.
    let mut offset = 0;
    let mut saved = None;
    if !fresh {
        let part_len = part.metadata().map_err(|e| local("stat", &part_path, &e))?.len();
        saved = read_meta(&meta_path).filter(|m| m.url == task.url);
        offset = saved.as_ref().map_or(0, |m| m.durable.min(part_len));
        if saved.as_ref().is_some_and(|m| m.etag.is_none() && m.last_modified.is_none()) {
            // Without a validator a resumed range could splice two versions
            // of the file together; start over.
            offset = 0;
        }
        // Bytes past the durable offset may be garbage after a power cut.
        // Writes go to the file cursor, so it must sit at the offset too.
        part.set_len(offset).map_err(|e| local("truncate", &part_path, &e))?;
        part.seek(SeekFrom::Start(offset)).map_err(|e| local("seek in", &part_path, &e))?;
    }

    let mut builder = ureq::http::Request::builder()
        .method("GET")
        .uri(task.url.as_str())
        .header("Accept-Encoding", "identity");
    for (k, v) in task.headers.iter() {
        builder = builder.header(k.as_str(), v.as_str());
    }
    if offset > 0 {
        builder = builder.header("Range", format!("bytes={offset}-"));
        if let Some(m) = &saved
            && let Some(v) = m.etag.as_ref().or(m.last_modified.as_ref())
        {
            builder = builder.header("If-Range", v.as_str());
        }
    }
    let request = match builder.body(()) {
        Ok(r) => r,
        Err(e) => return Ok(Attempt::Over(Outcome::Failed { reason: format!("invalid request: {e}") })),
    };
    let request = agent
        .configure_request(request)
        .timeout_connect(Some(task.timeout))
        .timeout_recv_response(Some(task.timeout))
        .timeout_per_read(Some(task.timeout))
        .build();
    let mut resp = match agent.run(request) {
        Ok(r) => r,
        Err(e) => return Ok(Attempt::Over(network_failure(&e))),
    };
    let status = resp.status().as_u16();
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let content_length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let etag = header("etag").filter(|e| !e.starts_with("W/"));
    let last_modified = header("last-modified");
    let total: Option<u64>;
    match status {
        200 => {
            if offset > 0 {
                log::debug!(
                    "{}: server sent the whole file again; starting over",
                    crate::http::display_url(&task.url)
                );
                offset = 0;
                part.set_len(0).map_err(|e| local("truncate", &part_path, &e))?;
                part.seek(SeekFrom::Start(0)).map_err(|e| local("seek in", &part_path, &e))?;
            }
            total = content_length;
        }
        206 => {
            let range = header("content-range").and_then(|v| parse_content_range(&v));
            let known_total = saved.as_ref().and_then(|m| m.total);
            let ok = match range {
                Some((start, end, t)) => {
                    start == offset
                        && end >= start
                        && t.is_none_or(|t| end < t)
                        && known_total.is_none_or(|k| t == Some(k))
                        && content_length.is_none_or(|len| len == end - start + 1)
                }
                None => false,
            };
            if !ok {
                discard(&part, &meta_path);
                return Ok(Attempt::Over(Outcome::Retry {
                    reason: format!(
                        "server answered a different range than asked ({}); starting over",
                        header("content-range").unwrap_or_else(|| "no Content-Range".into())
                    ),
                    after: None,
                }));
            }
            total = range.and_then(|(_, _, t)| t).or(known_total);
        }
        416 => {
            let t = header("content-range").and_then(|v| parse_unsatisfied_range(&v));
            if t.is_some() && t == Some(offset) && offset > 0 {
                return finalize(task, part, &part_path, Some(&meta_path), 0);
            }
            discard(&part, &meta_path);
            return Ok(Attempt::Over(Outcome::Retry {
                reason: "server refused the resume range; starting over".into(),
                after: None,
            }));
        }
        _ => {
            let after =
                header("retry-after").and_then(|v| crate::http::parse_retry_after(&v, SystemTime::now()));
            let reason = format!("HTTP {status} {}", reason_phrase(status));
            return Ok(Attempt::Over(if crate::http::status_is_transient(status) {
                Outcome::Retry { reason, after }
            } else {
                Outcome::Failed { reason }
            }));
        }
    }
    if let (Some(expected), Some(t)) = (task.expected_size, total)
        && expected != t
    {
        return Ok(Attempt::Over(Outcome::Failed {
            reason: format!("server offers {t} bytes but the API announced {expected}"),
        }));
    }
    let mut meta = PartMeta { url: task.url.clone(), etag, last_modified, total, durable: offset };
    let keep_meta = total.is_none_or(|t| t >= RESUME_MIN_BYTES);
    if keep_meta {
        // Written before any byte, so a crash at any point leaves
        // validators that match what the .part holds.
        atomic_write_mode(&meta_path, &meta_bytes(&meta), 0o600)
            .map_err(|e| local("write", &meta_path, &e))?;
    }

    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; CHUNK];
    let mut received = 0u64;
    let mut since_sync = 0u64;
    let mut last_sync = Instant::now();
    let mut speed = SpeedWatch::new(task);
    loop {
        if task.flags.halted() {
            checkpoint_part(&part, &meta_path, &mut meta, offset, keep_meta);
            return Ok(Attempt::Over(Outcome::Interrupted));
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                checkpoint_part(&part, &meta_path, &mut meta, offset, keep_meta);
                return Ok(Attempt::Over(Outcome::Retry {
                    reason: format!("{} after {} bytes", describe_io(&e), offset),
                    after: None,
                }));
            }
        };
        part.write_all(&buf[..n]).map_err(|e| local("write", &part_path, &e))?;
        if let Some(reason) = speed.too_slow(received + n as u64) {
            offset += n as u64;
            checkpoint_part(&part, &meta_path, &mut meta, offset, keep_meta);
            return Ok(Attempt::Over(Outcome::Retry { reason, after: None }));
        }
        offset += n as u64;
        received += n as u64;
        since_sync += n as u64;
        task.flags.add_bytes(n as u64);
        if keep_meta && (since_sync >= SYNC_EVERY_BYTES || last_sync.elapsed() >= SYNC_EVERY) {
            checkpoint_part(&part, &meta_path, &mut meta, offset, true);
            since_sync = 0;
            last_sync = Instant::now();
        }
    }
    if let Some(t) = total
        && offset != t
    {
        checkpoint_part(&part, &meta_path, &mut meta, offset, keep_meta);
        return Ok(Attempt::Over(Outcome::Retry {
            reason: format!("connection closed after {offset} of {t} bytes"),
            after: None,
        }));
    }
    // Only a partial found on disk or a large file can have a meta file;
    // looking for one beside every fresh small file is a wasted unlink.
    let meta_to_remove = (keep_meta || !fresh).then_some(meta_path.as_path());
    finalize(task, part, &part_path, meta_to_remove, received)
}

/// curl's `--speed-limit`/`--speed-time` for one transfer: a transfer
/// whose average over a window of `min_speed_time` stays below
/// `min_speed` is cut (the partial is kept and resumed later), so a server
/// that drips a byte a second cannot hold a download thread for days. The
/// read timeout alone only catches a complete stall.
struct SpeedWatch {
    /// Bytes per second; 0 turns the check off.
    min: u64,
    /// The window.
    window: Duration,
    /// The longest a single read may block (the read timeout); a longer gap
    /// between two turns means the process itself was stopped (SIGSTOP, a
    /// suspended VM), which must not count against the server.
    max_gap: Duration,
    /// Start of the current window and the bytes received before it.
    start: Instant,
    start_bytes: u64,
    /// The previous turn.
    last: Instant,
}

impl SpeedWatch {
    fn new(task: &DownloadTask) -> SpeedWatch {
        let now = Instant::now();
        SpeedWatch {
            min: task.min_speed,
            window: task.min_speed_time,
            max_gap: task.min_speed_time + task.timeout,
            start: now,
            start_bytes: 0,
            last: now,
        }
    }

    /// Given the bytes received so far, returns the reason to cut the
    /// transfer, if it is too slow.
    fn too_slow(&mut self, received: u64) -> Option<String> {
        if self.min == 0 || self.window.is_zero() {
            return None;
        }
        let now = Instant::now();
        if now.duration_since(self.last) > self.max_gap {
            // The clock ran while we could not: start the window again.
            self.start = now;
            self.start_bytes = received;
        }
        self.last = now;
        let spent = now.duration_since(self.start);
        if spent < self.window {
            return None;
        }
        let got = received - self.start_bytes;
        let want = (self.min as f64 * spent.as_secs_f64()) as u64;
        if got < want {
            return Some(format!(
                "slower than {}/s for {} s ({} bytes in {:.0} s); will retry",
                human_bytes(self.min),
                self.window.as_secs(),
                got,
                spent.as_secs_f64()
            ));
        }
        self.start = now;
        self.start_bytes = received;
        None
    }
}

/// `1024` → `1.0 KiB`, for reasons.
fn human_bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

/// Opens the `.part` file, creating it (and its folder) when needed.
/// Returns the file and whether it was created just now.
///
/// The common case (new file, folder exists) is one `openat`: the folder is
/// only created when that fails with `NotFound`, instead of a
/// `create_dir_all` (an `EEXIST` mkdir) per file, and `create_new` tells a
/// fresh file from a partial one without a separate stat.
fn open_part(dir: &Path, part_path: &Path) -> Result<(File, bool), String> {
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

/// Verifies a complete `.part` file; what remains is its fsync and rename.
/// `meta_path` is the meta file to remove once the file has its final name,
/// `None` when none can exist.
fn finalize(
    task: &DownloadTask,
    part: File,
    part_path: &Path,
    meta_path: Option<&Path>,
    received: u64,
) -> Result<Attempt, String> {
    // Verification failures empty the partial; its meta file (if any) goes
    // too. Without one there is nothing beside it to remove.
    let discard = |part: &File| match meta_path {
        Some(m) => discard(part, m),
        None => {
            let _ = part.set_len(0);
        }
    };
    if let Some(want) = &task.md5 {
        let got = md5_of(part_path).map_err(|e| local("read", part_path, &e))?;
        if !got.eq_ignore_ascii_case(want) {
            discard(&part);
            return Ok(Attempt::Over(Outcome::Retry {
                reason: format!("MD5 mismatch (got {got}, expected {want})"),
                after: None,
            }));
        }
    }
    let len = part.metadata().map_err(|e| local("stat", part_path, &e))?.len();
    if let Some(expected) = task.expected_size
        && len != expected
    {
        discard(&part);
        return Ok(Attempt::Over(Outcome::Retry {
            reason: format!("got {len} bytes, expected {expected}"),
            after: None,
        }));
    }
    Ok(Attempt::Verified(Finish {
        part,
        part_path: part_path.to_path_buf(),
        dest: task.dest.clone(),
        meta_path: meta_path.map(Path::to_path_buf),
        received,
        len,
    }))
}

/// Makes the bytes so far durable and records them in the meta file.
/// Failures are logged: the worst case is a restart from an older offset.
fn checkpoint_part(part: &File, meta_path: &Path, meta: &mut PartMeta, offset: u64, keep_meta: bool) {
    if !keep_meta {
        return;
    }
    if let Err(e) = part.sync_data() {
        log::warn!("cannot fsync a partial download: {e}");
        return;
    }
    meta.durable = offset;
    if let Err(e) = atomic_write_mode(meta_path, &meta_bytes(meta), 0o600) {
        log::warn!("cannot record download progress in {}: {e}", meta_path.display());
    }
}

/// Empties a partial file whose bytes cannot be trusted.
fn discard(part: &File, meta_path: &Path) {
    let _ = part.set_len(0);
    let _ = fs::remove_file(meta_path);
}

/// Serializes a meta record.
fn meta_bytes(meta: &PartMeta) -> Vec<u8> {
    serde_json::to_vec(meta).unwrap_or_default()
}

/// Reads a meta record; a damaged one counts as none.
fn read_meta(path: &Path) -> Option<PartMeta> {
    let mut bytes = Vec::new();
    // A meta file is a few hundred bytes; a bigger one is not ours.
    open_regular_read(path).ok()?.take(1 << 16).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Hex MD5 of a file.
fn md5_of(path: &Path) -> io::Result<String> {
    let mut f = open_regular_read(path)?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Parses `bytes START-END/TOTAL` (TOTAL may be `*`).
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let total = if total.trim() == "*" { None } else { Some(total.trim().parse().ok()?) };
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total))
}

/// Parses `bytes */TOTAL` of a 416.
fn parse_unsatisfied_range(v: &str) -> Option<u64> {
    v.trim().strip_prefix("bytes */")?.trim().parse().ok()
}

/// Classifies a failed exchange.
fn network_failure(e: &ureq::Error) -> Outcome {
    let reason = crate::http::describe(e);
    if crate::http::is_transient(e) {
        Outcome::Retry { reason, after: None }
    } else {
        Outcome::Failed { reason }
    }
}

/// A short description of a body read error (ureq wraps its own errors in
/// `io::Error`).
fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out reading the response".into(),
        io::ErrorKind::UnexpectedEof => "connection closed early".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => {
            let s = e.to_string();
            if s.to_ascii_lowercase().contains("timeout") || s.contains("timed out") {
                "timed out reading the response".into()
            } else {
                format!("read failed: {s}")
            }
        }
    }
}

/// The reason phrase of common statuses.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(parse_content_range("bytes 10-19/100"), Some((10, 19, Some(100))));
        assert_eq!(parse_content_range("bytes 10-19/*"), Some((10, 19, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
        assert_eq!(parse_content_range("bytes x-19/100"), None);
        assert_eq!(parse_unsatisfied_range("bytes */100"), Some(100));
    }

    #[test]
    fn a_partial_changed_after_verification_keeps_no_final_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("a.bin");
        let (part_path, _) = part_paths(&dest);
        std::fs::write(&part_path, b"12345").expect("write");
        let finish = |len: u64| Finish {
            part: OpenOptions::new().read(true).write(true).open(&part_path).expect("open"),
            part_path: part_path.clone(),
            dest: dest.clone(),
            meta_path: None,
            received: 5,
            len,
        };
        // Verified at 5 bytes, but another writer cut it to 3 since.
        std::fs::write(&part_path, b"123").expect("truncate");
        assert!(matches!(finish(5).complete(), Outcome::Retry { .. }));
        assert!(!dest.exists() && part_path.exists());
        assert!(matches!(finish(3).complete(), Outcome::Done { bytes: 5, already: false }));
        assert_eq!(std::fs::read(&dest).expect("final"), b"123");
    }

    #[test]
    fn speed_watch_cuts_slow_transfers_and_forgives_a_stopped_process() {
        let watch = |min: u64, window_ms: u64| {
            let now = Instant::now();
            SpeedWatch {
                min,
                window: Duration::from_millis(window_ms),
                max_gap: Duration::from_millis(window_ms * 4),
                start: now,
                start_bytes: 0,
                last: now,
            }
        };
        // 10 bytes in a window of 50 ms is far below 1 KiB/s.
        let mut w = watch(1024, 50);
        assert!(w.too_slow(5).is_none());
        std::thread::sleep(Duration::from_millis(60));
        let reason = w.too_slow(10).expect("cut");
        assert!(reason.contains("slower than 1.0 KiB/s"), "{reason}");
        // Fast enough: the window starts again.
        let mut w = watch(10, 50);
        std::thread::sleep(Duration::from_millis(60));
        assert!(w.too_slow(1000).is_none());
        // Off.
        let mut w = watch(0, 50);
        std::thread::sleep(Duration::from_millis(60));
        assert!(w.too_slow(0).is_none());
        // A gap longer than a read can block (the process was stopped)
        // restarts the window instead of cutting.
        let mut w = watch(1024, 20);
        std::thread::sleep(Duration::from_millis(100));
        assert!(w.too_slow(1).is_none());
    }

    #[test]
    fn part_names_are_hidden_siblings() {
        let (p, m) = part_paths(Path::new("/a/b/c.jpg"));
        assert_eq!(p, Path::new("/a/b/.c.jpg.part"));
        assert_eq!(m, Path::new("/a/b/.c.jpg.part.meta"));
    }
}
