//! Fetching one file: resume setup, the request, the status decision,
//! the body copy, verification, and the durable rename.
//!
//! The resume rules follow RFC 9110 (§13.1.5 `If-Range`, §14 ranges,
//! §15.3.7 206, §15.5.17 416): resume with `Range` + `If-Range` (strong
//! ETag, else Last-Modified); accept a 206 only with a `Content-Range`
//! that starts at our offset and matches the known total; a 200 means
//! start over; a 416 means check what we have. The partial belongs to the
//! destination, not to a URL: another URL (a re-signed one, another
//! candidate) continues it only when its 206 carries the recorded
//! validator and length, so a server that ignores `If-Range` cannot splice
//! another file in. No byte is a file only where none was expected.
//! Bodies are requested with `Accept-Encoding: identity` because ranges
//! count bytes of the encoded form. An attempt cut short because the
//! process itself was stopped (SIGSTOP, a suspended machine) resumes at
//! once, with fresh timeouts, instead of counting as a failure of the
//! server.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::download::answer::{
    describe_io, is_timeout, parse_content_range, parse_unsatisfied_range, reason_phrase,
};
use crate::download::candidates::fetch_staged;
use crate::download::finish::{Attempt, Finish, named_already, plans_its_name, server_wanted, with_naming};
use crate::download::partfile::{
    PartMeta, checkpoint_part, discard, local, md5_of, open_part, part_paths, read_meta, write_meta,
};
use crate::download::request::{self, Get, NoAnswer};
use crate::download::speed::SpeedWatch;
use crate::download::task::{DownloadTask, Outcome};
use crate::durable::{atomic_copy, atomic_write_mode};

/// Files at least this large record their progress for resume after a
/// crash; smaller ones simply start again.
const RESUME_MIN_BYTES: u64 = 1 << 20;
/// How often a large transfer makes its progress durable.
const SYNC_EVERY_BYTES: u64 = 4 << 20;
/// … or after this long.
const SYNC_EVERY: Duration = Duration::from_secs(2);
/// Read buffer size.
const CHUNK: usize = 128 * 1024;

/// Makes one attempt at a task, including the fsync and rename of a
/// complete file. Never panics on anything a server sends.
pub fn fetch(agent: &ureq::Agent, task: &DownloadTask) -> Outcome {
    match fetch_staged(agent, task) {
        Attempt::Over(o) => o,
        Attempt::Verified(f) => f.complete(),
    }
}

/// How far one pass of [`fetch_inner`] got.
pub(super) enum Step {
    /// The attempt is over (or verified).
    Attempt(Attempt),
    /// A timeout ran out while the process was stopped; the partial is
    /// checkpointed and the attempt may start again at once.
    Suspended,
    /// This URL cannot give the file but another candidate may: it answered
    /// 403, 404 or 410 (`expired`), or a 200 without a byte where bytes
    /// were expected.
    Next {
        /// What this URL answered, in a few words.
        reason: String,
        /// The answer was 403, 404 or 410.
        expired: bool,
    },
}

impl From<Outcome> for Step {
    fn from(o: Outcome) -> Step {
        Step::Attempt(Attempt::Over(o))
    }
}

/// The partial file of an attempt and where it resumes.
struct Resume {
    part: File,
    part_path: PathBuf,
    meta_path: PathBuf,
    /// The `.part` was created by this attempt.
    fresh: bool,
    /// Where the bytes of this attempt go.
    offset: u64,
    /// The meta record found beside the partial; from any URL, since the
    /// validators, not the URL, decide whether the bytes continue.
    saved: Option<PartMeta>,
    /// The record names another URL than this attempt's: the answer must
    /// prove with its own validators and length that it is the same file.
    other_url: bool,
}

impl Resume {
    /// Opens (or creates) the partial and decides where it resumes.
    fn open(task: &DownloadTask, url: &str) -> Result<Resume, String> {
        let dest = &task.dest;
        let dir = dest.parent().unwrap_or(Path::new("."));
        let (part_path, meta_path) = part_paths(dest);
        let (mut part, fresh) = open_part(dir, &part_path)?;
        // A brand-new `.part` is empty with its cursor at 0, so there is
        // nothing to resume, truncate or seek: any meta file beside it (left
        // by a crash in `finalize` between rename and unlink) could only say
        // "resume from min(durable, 0) = 0". Skipping those calls saves four
        // syscalls per small file; a meta file that is there anyway is
        // replaced (large file) or ignored and left (small file).
        let mut offset = 0;
        let mut saved = None;
        let mut other_url = false;
        if !fresh {
            let part_len = part.metadata().map_err(|e| local("stat", &part_path, &e))?.len();
            saved = read_meta(&meta_path);
            other_url = saved.as_ref().is_some_and(|m| !m.is_for(url));
            offset = saved.as_ref().map_or(0, |m| m.durable.min(part_len));
            if saved.as_ref().is_some_and(|m| m.etag.is_none() && m.last_modified.is_none())
                || (other_url && saved.as_ref().is_some_and(|m| m.total.is_none()))
            {
                // Without a validator a resumed range could splice two
                // versions of the file together, and another URL must
                // also prove the same length; start over.
                offset = 0;
            }
            // Bytes past the durable offset may be garbage after a power
            // cut. Writes go to the file cursor, so it must sit there too.
            part.set_len(offset).map_err(|e| local("truncate", &part_path, &e))?;
            part.seek(SeekFrom::Start(offset)).map_err(|e| local("seek in", &part_path, &e))?;
        }
        Ok(Resume { part, part_path, meta_path, fresh, offset, saved, other_url })
    }

    /// The `If-Range` validator of a resume.
    fn validator(&self) -> Option<&str> {
        let m = self.saved.as_ref()?;
        m.etag.as_deref().or(m.last_modified.as_deref())
    }

    /// Empties the partial to receive the whole file.
    fn restart(&mut self) -> Result<(), String> {
        self.offset = 0;
        self.part.set_len(0).map_err(|e| local("truncate", &self.part_path, &e))?;
        self.part.seek(SeekFrom::Start(0)).map_err(|e| local("seek in", &self.part_path, &e))?;
        Ok(())
    }
}

/// One pass of an attempt at one of the task's URLs; `Err` is a local
/// failure.
pub(super) fn fetch_inner(agent: &ureq::Agent, task: &DownloadTask, url: &str) -> Result<Step, String> {
    let dest = &task.dest;
    if let Some(text) = &task.inline {
        let dir = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| local("create folder", dir, &e))?;
        atomic_write_mode(dest, text.as_bytes(), 0o644).map_err(|e| local("write", dest, &e))?;
        return Ok(Outcome::Done { bytes: 0, already: false, saved_as: None }.into());
    }
    if let Some(src) = &task.copy_from {
        if fs::symlink_metadata(dest).is_ok_and(|m| m.is_file()) {
            return Ok(Outcome::Done { bytes: 0, already: true, saved_as: None }.into());
        }
        let dir = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| local("create folder", dir, &e))?;
        return match atomic_copy(src, dest, 0o644) {
            Ok(_) => Ok(Outcome::Done { bytes: 0, already: false, saved_as: None }.into()),
            // The earlier output went away since the listing saw it: this
            // item cannot be made without the work it was meant to save.
            Err(e) => Ok(Outcome::Failed {
                reason: format!(
                    "cannot copy the earlier output {}: {e}",
                    crate::naming::escape_display(&src.to_string_lossy())
                ),
            }
            .into()),
        };
    }
    if let Some(done) = named_already(task) {
        return Ok(done.into());
    }
    if let Ok(meta) = fs::symlink_metadata(dest)
        && meta.is_file()
        && task.expected_size.is_none_or(|s| s == meta.len())
        && plans_its_name(task)
    {
        return Ok(Outcome::Done { bytes: 0, already: true, saved_as: None }.into());
    }
    let mut resume = Resume::open(task, url)?;
    let get = Get {
        url,
        headers: &task.headers,
        forward_headers: task.forward_headers,
        range: (resume.offset > 0).then(|| (resume.offset, resume.validator())),
        timeout: task.timeout,
    };
    let mut resp = match request::get(agent, &get) {
        Ok(r) => r,
        Err(NoAnswer::Suspended) => return Ok(Step::Suspended),
        Err(NoAnswer::Over(o)) => return Ok(o.into()),
    };
    let wanted = server_wanted(task, resp.headers(), resume.saved.as_ref());
    let total = match decide(task, url, &resp, &mut resume)? {
        Decision::Copy { total } => total,
        Decision::Over(step) => return Ok(with_naming(task, step, wanted)),
    };
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let etag = header("etag").filter(|e| !e.starts_with("W/"));
    let mut meta = PartMeta::new(url, etag, header("last-modified"), total);
    meta.durable = resume.offset;
    meta.name.clone_from(&wanted);
    let keep_meta = total.is_none_or(|t| t >= RESUME_MIN_BYTES);
    if keep_meta {
        // Written before any byte, so a crash at any point leaves
        // validators that match what the .part holds.
        write_meta(&resume.meta_path, &meta).map_err(|e| local("write", &resume.meta_path, &e))?;
    }
    let mut reader = resp.body_mut().as_reader();
    let step = copy_body(task, &mut reader, &mut resume, &mut meta, total, keep_meta)?;
    Ok(with_naming(task, step, wanted))
}

/// What the answer's status means for the attempt.
enum Decision {
    /// Copy the body to the partial at its offset; the file's full length,
    /// when known.
    Copy { total: Option<u64> },
    /// Nothing to copy.
    Over(Step),
}

/// Reads the answer's status and framing against what was asked.
fn decide(
    task: &DownloadTask,
    url: &str,
    resp: &ureq::http::Response<ureq::Body>,
    resume: &mut Resume,
) -> Result<Decision, String> {
    let status = resp.status().as_u16();
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let content_length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let over = |o: Outcome| Ok(Decision::Over(o.into()));
    let total = match status {
        200 => {
            if content_length == Some(0) && task.expected_size != Some(0) && !task.also.is_empty() {
                // Told before any byte: the partial stays for the next
                // candidate instead of being emptied for nothing.
                return Ok(Decision::Over(Step::Next { reason: "empty answer".into(), expired: false }));
            }
            if resume.offset > 0 {
                // Asked for the rest, the server sent the whole file (it
                // ignores Range): what is on disk is worth nothing now.
                log::info!(
                    "{}: the server does not resume downloads (it ignored Range); starting over, {} on disk discarded",
                    crate::http::display_url(url),
                    crate::job::units::human_bytes(resume.offset)
                );
                resume.restart()?;
            }
            content_length
        }
        206 => {
            let range = header("content-range").and_then(|v| parse_content_range(&v));
            let known_total = resume.saved.as_ref().and_then(|m| m.total);
            let offset = resume.offset;
            let etag = header("etag").filter(|e| !e.starts_with("W/"));
            let ok = range.is_some_and(|(start, end, t)| {
                start == offset
                    && end >= start
                    && t.is_none_or(|t| end < t)
                    && known_total.is_none_or(|k| t == Some(k))
                    && content_length.is_none_or(|len| len == end - start + 1)
                    // If-Range already asked for this; a server that
                    // ignores it must not splice another file in.
                    && (!resume.other_url
                        || resume.saved.as_ref().is_some_and(|m| {
                            m.continued_by(etag.as_deref(), header("last-modified").as_deref(), t)
                        }))
            });
            if !ok {
                discard(&resume.part, &resume.meta_path);
                return over(Outcome::Retry {
                    reason: format!(
                        "server answered a different range than asked ({}); starting over",
                        header("content-range").unwrap_or_else(|| "no Content-Range".into())
                    ),
                    after: None,
                });
            }
            range.and_then(|(_, _, t)| t).or(known_total)
        }
        416 => {
            let t = header("content-range").and_then(|v| parse_unsatisfied_range(&v));
            if t.is_some() && t == Some(resume.offset) && resume.offset > 0 {
                let part = resume.part.try_clone().map_err(|e| local("open", &resume.part_path, &e))?;
                let done = finalize(task, part, &resume.part_path, Some(&resume.meta_path), 0)?;
                return Ok(Decision::Over(Step::Attempt(done)));
            }
            discard(&resume.part, &resume.meta_path);
            return over(Outcome::Retry {
                reason: "server refused the resume range; starting over".into(),
                after: None,
            });
        }
        301 | 302 | 303 | 307 | 308 => {
            return over(Outcome::Failed { reason: format!("HTTP {status} redirect without a Location") });
        }
        403 | 404 | 410 => {
            let reason = format!("HTTP {status} {}", reason_phrase(status));
            return Ok(Decision::Over(Step::Next { reason, expired: true }));
        }
        _ => {
            let after =
                header("retry-after").and_then(|v| crate::http::parse_retry_after(&v, SystemTime::now()));
            let reason = format!("HTTP {status} {}", reason_phrase(status));
            return over(if crate::http::status_is_transient(status) {
                Outcome::Retry { reason, after }
            } else {
                Outcome::Failed { reason }
            });
        }
    };
    if let (Some(expected), Some(t)) = (task.expected_size, total)
        && expected != t
    {
        return over(Outcome::Failed {
            reason: format!("server offers {t} bytes but the API announced {expected}"),
        });
    }
    Ok(Decision::Copy { total })
}

/// Copies the body into the partial, then verifies the file.
fn copy_body(
    task: &DownloadTask,
    reader: &mut impl Read,
    resume: &mut Resume,
    meta: &mut PartMeta,
    total: Option<u64>,
    keep_meta: bool,
) -> Result<Step, String> {
    let mut buf = vec![0u8; CHUNK];
    let mut received = 0u64;
    let mut since_sync = 0u64;
    let mut last_sync = Instant::now();
    let mut speed = SpeedWatch::new(task);
    let stopped_after = request::suspended_after(task.timeout);
    let size = total.or(task.expected_size);
    task.flags.set_transfer(task.item, resume.offset, size);
    loop {
        if task.flags.halted() {
            checkpoint_part(&resume.part, &resume.meta_path, meta, resume.offset, keep_meta);
            return Ok(Outcome::Interrupted.into());
        }
        let started = Instant::now();
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                checkpoint_part(&resume.part, &resume.meta_path, meta, resume.offset, keep_meta);
                if is_timeout(&e) && started.elapsed() > stopped_after {
                    return Ok(Step::Suspended);
                }
                return Ok(Outcome::Retry {
                    reason: format!("{} after {} bytes", describe_io(&e), resume.offset),
                    after: None,
                }
                .into());
            }
        };
        resume.part.write_all(&buf[..n]).map_err(|e| local("write", &resume.part_path, &e))?;
        resume.offset += n as u64;
        if !task.limits.is_empty() {
            super::throttle::pace(&task.limits, n, &|| task.flags.halted());
        }
        if let Some(reason) = speed.too_slow(received + n as u64) {
            checkpoint_part(&resume.part, &resume.meta_path, meta, resume.offset, keep_meta);
            return Ok(Outcome::Retry { reason, after: None }.into());
        }
        received += n as u64;
        since_sync += n as u64;
        task.flags.add_bytes(n as u64);
        task.flags.set_transfer(task.item, resume.offset, size);
        if keep_meta && (since_sync >= SYNC_EVERY_BYTES || last_sync.elapsed() >= SYNC_EVERY) {
            checkpoint_part(&resume.part, &resume.meta_path, meta, resume.offset, true);
            since_sync = 0;
            last_sync = Instant::now();
        }
    }
    if let Some(t) = total
        && resume.offset != t
    {
        checkpoint_part(&resume.part, &resume.meta_path, meta, resume.offset, keep_meta);
        return Ok(Outcome::Retry {
            reason: format!("connection closed after {} of {t} bytes", resume.offset),
            after: None,
        }
        .into());
    }
    if resume.offset == 0 && task.expected_size != Some(0) {
        // No byte is a file only where none was expected: a signed URL
        // past its time often answers an empty 200, and counting that done
        // would keep an empty file under the final name for good.
        if !task.also.is_empty() {
            return Ok(Step::Next { reason: "empty answer".into(), expired: false });
        }
        if total != Some(0) {
            return Ok(Outcome::Retry { reason: "empty answer".into(), after: None }.into());
        }
    }
    // Only a partial found on disk or a large file can have a meta file;
    // looking for one beside every fresh small file is a wasted unlink.
    let meta_to_remove = (keep_meta || !resume.fresh).then_some(resume.meta_path.as_path());
    let part = resume.part.try_clone().map_err(|e| local("open", &resume.part_path, &e))?;
    let mtime = meta.last_modified.as_deref().and_then(|v| httpdate::parse_http_date(v).ok());
    let mut attempt = finalize(task, part, &resume.part_path, meta_to_remove, received)?;
    if let Attempt::Verified(f) = &mut attempt {
        f.mtime = mtime;
    }
    Ok(Step::Attempt(attempt))
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
        let got = md5_of(part_path, CHUNK).map_err(|e| local("read", part_path, &e))?;
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
    let finish = Finish {
        part,
        part_path: part_path.to_path_buf(),
        dest: task.dest.clone(),
        meta_path: meta_path.map(Path::to_path_buf),
        received,
        len,
        mtime: None,
        naming: None,
    };
    finish.start_writeback();
    Ok(Attempt::Verified(finish))
}
