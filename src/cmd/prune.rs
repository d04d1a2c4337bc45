//! `spoolfetch prune --older-than AGE [--dry-run]`: removes what the spool
//! keeps of jobs that ended long ago.
//!
//! Owns the choice of what goes and the order it goes in. A job goes when
//! its file is in `done/` or `failed/`, no file of its TID is in `retry/`
//! or any `work/<instance>/` (queued, running or paused jobs are there),
//! its status, when it has one, says `done`, `failed` or `cancelled`, and
//! it ended before the cutoff: its final status's time, or without a
//! status (or a status without its time) the later of the mtime and ctime
//! of the job file (or of the status file; the move into
//! `done/` or `failed/` sets the ctime). A state folder whose status ended
//! before the cutoff and whose job file is nowhere (removed by hand, or by
//! a prune that was interrupted) goes too. Removed: the job file, its
//! `.reason`, its state folder `state/<tid>/`. Never removed: downloaded
//! files, `tids/<tid>` (the reservation that keeps a TID from being given
//! again), pending control requests, job files not claimed yet.
//!
//! Crash safety, the order: first the `.reason`, then the job file, then
//! the state folder, which is renamed to `state/.pruned-<tid>` (atomic,
//! and invisible to `status`) before it is emptied. The unlink of the job
//! file is the decision, as a claim's rename is: `retry` needs that file,
//! so once it is gone no command can bring the job back, and while it is
//! there its state is whole. A crash before it leaves a failed job without
//! its `.reason` (allowed: the status says why); between it and the
//! rename, a whole state folder without a job file, which the next prune
//! removes; after the rename, a `.pruned-<tid>` folder, which the next
//! prune removes. No crash leaves a job file pointing at a half-removed
//! state. A `retry` racing with a prune either moves the file first (the
//! prune finds it gone and leaves the job alone) or finds it gone.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use spoolfetch::job::units::count;
use spoolfetch::job::{JobState, JobStatus, Tid, unix_now};
use spoolfetch::naming::escape_display;
use spoolfetch::spool::{Spool, list_statuses, read_status};

use super::args::PruneArgs;

/// The prefix of a state folder being removed.
const TRASH_PREFIX: &str = ".pruned-";

/// `30d` → 30 days: a number and one of the units s, m, h, d.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{s:?} is not an age: a number and a unit, as 30d or 12h"))?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "" => return Err(format!("{s:?} needs a unit: s, m, h or d (30d)")),
        other => return Err(format!("unknown unit {other:?} in {s:?}: use s, m, h or d")),
    };
    n.checked_mul(per).map(Duration::from_secs).ok_or_else(|| format!("{s:?} is too long"))
}

/// `30d`, `12h`, `90s`: an age in its largest whole unit.
fn show_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// One ended job to remove.
#[derive(Debug)]
struct Ended {
    /// Its TID.
    tid: Tid,
    /// How it ended.
    state: JobState,
    /// When it ended (Unix seconds).
    end: u64,
    /// Its files in `done/` and `failed/` (none for a lone state folder).
    files: Vec<PathBuf>,
    /// Whether it has a state folder.
    state_dir: bool,
}

/// Runs `prune`.
pub fn prune(a: &PruneArgs) -> Result<ExitCode> {
    let spool = super::spool::existing(&a.spool, None)?;
    let cutoff = unix_now().saturating_sub(a.older_than.as_secs());
    let trash = trash(&spool);
    if !a.dry_run {
        for t in &trash {
            fs::remove_dir_all(t).with_context(|| format!("cannot remove {}", t.display()))?;
        }
    }
    let (chosen, kept) = choose(&spool, cutoff)?;
    let now = unix_now();
    let mut removed = Vec::new();
    for job in chosen {
        if a.dry_run {
            println!(
                "would remove job {} ({}, ended {} ago): {}",
                job.tid,
                job.state.as_str(),
                ago(now, job.end),
                what(&spool, &job)
            );
            removed.push(job);
        } else if remove(&spool, &job).with_context(|| format!("cannot prune job {}", job.tid))? {
            log::debug!("pruned job {}: {}", job.tid, what(&spool, &job));
            removed.push(job);
        }
    }
    let by = |st: JobState| removed.iter().filter(|j| j.state == st).count();
    let verb = if a.dry_run { "would remove" } else { "removed" };
    let leftovers = match trash.len() {
        0 => String::new(),
        n => format!(
            "; {} {} left by an interrupted prune",
            if a.dry_run { "would remove" } else { "removed" },
            count(n as u64, "state folder")
        ),
    };
    println!(
        "{verb} {} that ended more than {} ago ({} done, {} failed, {} cancelled); {} kept{leftovers}",
        count(removed.len() as u64, "job"),
        show_age(a.older_than),
        by(JobState::Done),
        by(JobState::Failed),
        by(JobState::Cancelled),
        count(kept as u64, "newer ended job"),
    );
    Ok(ExitCode::SUCCESS)
}

/// The ended jobs to remove, and how many ended jobs are kept as too new.
fn choose(spool: &Spool, cutoff: u64) -> Result<(Vec<Ended>, usize)> {
    let mut files: BTreeMap<Tid, Vec<PathBuf>> = BTreeMap::new();
    for dir in [spool.done_dir(), spool.failed_dir()] {
        for (tid, path) in job_files(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            files.entry(tid).or_default().push(path);
        }
    }
    let mut held: BTreeSet<Tid> = job_files(&spool.retry_dir())?.into_iter().map(|(t, _)| t).collect();
    if let Ok(rd) = fs::read_dir(spool.work_root()) {
        for inst in rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
            held.extend(job_files(&inst.path())?.into_iter().map(|(t, _)| t));
        }
    }
    let statuses: BTreeMap<Tid, JobStatus> =
        list_statuses(spool).context("cannot read the statuses")?.into_iter().map(|s| (s.tid, s)).collect();
    let tids: BTreeSet<Tid> = files.keys().chain(statuses.keys()).copied().collect();
    let (mut chosen, mut kept) = (Vec::new(), 0);
    for tid in tids.into_iter().filter(|t| !held.contains(t)) {
        let paths = files.remove(&tid).unwrap_or_default();
        let (state, end) = match statuses.get(&tid) {
            Some(s) if !s.state.is_terminal() => continue,
            // A status of an older version may lack its time: the status
            // file's own then says when it was last written.
            Some(s) if s.updated == 0 => {
                let file = spool.state_dir(tid).join("status.json");
                (s.state, fs::symlink_metadata(file).map(changed).unwrap_or(0))
            }
            Some(s) => (s.state, s.updated),
            None => {
                let Some(first) = paths.first() else { continue };
                let in_done = first.parent() == Some(spool.done_dir().as_path());
                let end =
                    paths.iter().filter_map(|p| fs::symlink_metadata(p).ok()).map(changed).max().unwrap_or(0);
                (if in_done { JobState::Done } else { JobState::Failed }, end)
            }
        };
        if end > cutoff {
            kept += 1;
            continue;
        }
        let state_dir = spool.state_dir(tid).is_dir();
        chosen.push(Ended { tid, state, end, files: paths, state_dir });
    }
    Ok((chosen, kept))
}

/// The later of a file's mtime and ctime, in Unix seconds.
fn changed(m: fs::Metadata) -> u64 {
    u64::try_from(m.mtime().max(m.ctime())).unwrap_or(0)
}

/// The claimed job files (`<tid>.<name>.json`) of a folder, with their
/// TIDs; a missing folder has none.
fn job_files(dir: &Path) -> io::Result<Vec<(Tid, PathBuf)>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        if let Some((tid, _)) = Spool::parse_claimed_name(&name) {
            out.push((tid, e.path()));
        }
    }
    Ok(out)
}

/// State folders a prune was removing when it stopped.
fn trash(spool: &Spool) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(spool.state_root()) else { return Vec::new() };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(TRASH_PREFIX))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// What goes of a job, relative to the spool: `done/3.x.json, state/3/`.
fn what(spool: &Spool, job: &Ended) -> String {
    let mut parts: Vec<String> = job
        .files
        .iter()
        .map(|p| escape_display(&p.strip_prefix(spool.root()).unwrap_or(p).display().to_string()))
        .collect();
    if job.state_dir {
        parts.push(format!("state/{}/", job.tid));
    }
    parts.join(", ")
}

/// `45 d`-style: how long ago `end` was, in whole units.
fn ago(now: u64, end: u64) -> String {
    let s = now.saturating_sub(end);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// Removes one job in the crash-safe order (module doc). Returns false,
/// having removed nothing that matters, when the job was requeued
/// meanwhile.
fn remove(spool: &Spool, job: &Ended) -> io::Result<bool> {
    // `retry` writes the queued status before it moves the file.
    if read_status(spool, job.tid)?.is_some_and(|s| !s.state.is_terminal()) {
        return Ok(false);
    }
    for file in &job.files {
        let mut reason = file.clone().into_os_string();
        reason.push(".reason");
        ignore_missing(fs::remove_file(reason))?;
        match fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        }
        if let Some(dir) = file.parent() {
            spoolfetch::durable::fsync_dir(dir)?;
        }
    }
    let dir = spool.state_dir(job.tid);
    let gone = spool.state_root().join(format!("{TRASH_PREFIX}{}", job.tid));
    match fs::rename(&dir, &gone) {
        Ok(()) => {
            spoolfetch::durable::fsync_dir(&spool.state_root())?;
            fs::remove_dir_all(&gone)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(true)
}

/// A removal of something already gone is no error.
fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_age("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_age("0s"), Ok(Duration::ZERO));
        for bad in ["30", "d", "30x", "-1d", "1.5d", "", "99999999999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
        assert_eq!(
            (show_age(Duration::from_secs(30 * 86_400)), show_age(Duration::from_secs(90))),
            ("30d".into(), "90s".into())
        );
        assert_eq!(ago(100 * 86_400, 55 * 86_400), "45 d");
    }
}
