//! `spoolfetch pause|resume|cancel|retry`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use spoolfetch::job::{JobState, JobStatus};
use spoolfetch::spool::{Action, Spool, read_status, write_request, write_status};

use super::Exit;
use super::args::{RetryArgs, TidArgs};

/// The control verbs.
#[derive(Debug, Clone, Copy)]
pub enum Verb {
    /// pause
    Pause,
    /// resume
    Resume,
    /// cancel
    Cancel,
}

/// Reads a job's status or explains why there is none.
fn job(spool: &Spool, tid: u64) -> Result<JobStatus> {
    read_status(spool, tid)?
        .ok_or_else(|| Exit(1, format!("no job with TID {tid} in {}", spool.root().display())).into())
}

/// Writes a control request for the daemon that owns the job.
pub fn control(a: &TidArgs, verb: Verb) -> Result<ExitCode> {
    let spool = super::spool::existing(&a.spool, None)?;
    let s = job(&spool, a.tid)?;
    let (action, want): (Action, &[JobState]) = match verb {
        Verb::Pause => (Action::Pause, &[JobState::Paused]),
        Verb::Resume => (Action::Resume, &[JobState::Running, JobState::Queued, JobState::Done]),
        Verb::Cancel => (Action::Cancel, &[JobState::Cancelled]),
    };
    if s.state.is_terminal() {
        return Err(Exit(1, format!("job {} has already ended ({})", a.tid, s.state.as_str())).into());
    }
    match (verb, s.state) {
        (Verb::Pause, JobState::Paused) => {
            println!("job {} is already paused", a.tid);
            return Ok(ExitCode::SUCCESS);
        }
        (Verb::Resume, JobState::Running | JobState::Queued) => {
            println!("job {} is not paused", a.tid);
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    write_request(&spool, a.tid, action).context("cannot write the control request")?;
    println!(
        "{:?} requested for job {} (instance {}); the daemon applies it within a second",
        action, a.tid, s.instance
    );
    if a.wait {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let now = job(&spool, a.tid)?;
            if want.contains(&now.state) || (matches!(verb, Verb::Cancel) && now.state.is_terminal()) {
                println!("job {} is now {}", a.tid, now.state.as_str());
                break;
            }
            if Instant::now() > until {
                return Err(Exit(
                    1,
                    format!(
                        "job {} is still {} after 30 s; is its daemon running?",
                        a.tid,
                        now.state.as_str()
                    ),
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Moves a failed or cancelled job back into the queue, keeping its TID
/// and checkpoint: completed files are not fetched again.
pub fn retry(a: &RetryArgs) -> Result<ExitCode> {
    let spool = super::spool::existing(&a.spool, None)?;
    let mut s = job(&spool, a.tid)?;
    if !matches!(s.state, JobState::Failed | JobState::Cancelled) {
        return Err(Exit(
            1,
            format!("job {} is {}; only failed or cancelled jobs can be retried", a.tid, s.state.as_str()),
        )
        .into());
    }
    let prefix = format!("{}.", a.tid);
    let file = std::fs::read_dir(spool.failed_dir())
        .context("cannot list failed/")?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(&prefix) && n.ends_with(".json"))
        .ok_or_else(|| Exit(1, format!("the file of job {} is not in failed/", a.tid)))?;
    std::fs::create_dir_all(spool.retry_dir())?;
    // The status says queued before the file moves: once it is in retry/ a
    // daemon may claim it at once and write newer statuses, which this one
    // must not overwrite.
    let before = s.clone();
    s.state = JobState::Queued;
    s.running = false;
    s.error = None;
    write_status(&spool, &s)?;
    if let Err(e) = std::fs::rename(spool.failed_dir().join(&file), spool.retry_dir().join(&file)) {
        let _ = write_status(&spool, &before);
        return Err(e).with_context(|| format!("cannot move {file} to retry/"));
    }
    let _ = std::fs::remove_file(spool.failed_dir().join(format!("{file}.reason")));
    spoolfetch::durable::fsync_dir(&spool.retry_dir())?;
    spoolfetch::durable::fsync_dir(&spool.failed_dir())?;
    println!("job {} requeued; completed files are kept and not fetched again", a.tid);
    if a.wait {
        let deadline = a.timeout.map(|t| Instant::now() + Duration::from_secs(t));
        return super::wait::until_ended(&spool, a.tid, deadline);
    }
    Ok(ExitCode::SUCCESS)
}
