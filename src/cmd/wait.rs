//! `spoolfetch wait TID`, `submit --wait`, and the completions and manual
//! page.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::CommandFactory;
use spoolfetch::job::{JobState, JobStatus, Tid};
use spoolfetch::spool::{Spool, list_statuses, read_status};

use super::args::{Cli, CompletionsArgs, HelpArgs, WaitArgs};
use super::{EXIT_USAGE, Exit};

/// Exit status of a wait that timed out with the job still going.
pub const EXIT_STILL_GOING: u8 = 3;

/// How often the status files are looked at.
const POLL: Duration = Duration::from_millis(250);

/// `spoolfetch wait TID|NAME`.
pub fn wait(a: &WaitArgs) -> Result<ExitCode> {
    let spool = super::spool::existing(&a.spool, None)?;
    let deadline = a.timeout.map(|s| Instant::now() + Duration::from_secs(s));
    if let Ok(tid) = a.job.parse::<Tid>() {
        if read_status(&spool, tid)?.is_none() {
            return Err(Exit(1, format!("there is no job {tid} in {}", spool.root().display())).into());
        }
        return until_ended(&spool, tid, deadline);
    }
    // By name: the latest job of that name that has not ended, else a job
    // file of that name waiting to be claimed, else the latest that ended.
    let name = a.job.as_str();
    let mut named: Vec<JobStatus> = list_statuses(&spool)?.into_iter().filter(|s| s.name == name).collect();
    named.sort_by_key(|s| s.tid);
    if let Some(s) = named.iter().rev().find(|s| !s.state.is_terminal()) {
        return until_ended(&spool, s.tid, deadline);
    }
    let file = spool.root().join(format!("{}.json", spoolfetch::naming::sanitize_component(name, "job")));
    if file.is_file() {
        return claimed_then_ended(&spool, &file, a.timeout);
    }
    match named.last() {
        Some(s) => until_ended(&spool, s.tid, deadline),
        None => Err(Exit(1, format!("there is no job named {name:?} in {}", spool.root().display())).into()),
    }
}

/// Waits for job `tid` to end, or for a recurring job's run under way
/// (or next run) to end; that end decides the exit status.
pub fn until_ended(spool: &Spool, tid: Tid, deadline: Option<Instant>) -> Result<ExitCode> {
    let ended_run =
        |s: &JobStatus| s.schedule.as_ref().and_then(|x| x.last_run.as_ref()).map_or(0, |r| r.run);
    let before = read_status(spool, tid)?.map_or(0, |s| ended_run(&s));
    until_run_after(spool, tid, deadline, before)
}

/// Waits for job `tid` to end, or for a run numbered above `before` to
/// end (a recurring job).
fn until_run_after(spool: &Spool, tid: Tid, deadline: Option<Instant>, before: u64) -> Result<ExitCode> {
    loop {
        if let Some(s) = read_status(spool, tid)? {
            if s.state.is_terminal() {
                return Ok(report(&s));
            }
            if let Some(run) = s.schedule.as_ref().and_then(|x| x.last_run.as_ref())
                && run.run > before
            {
                return Ok(report_run(&s, run));
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let state = read_status(spool, tid)?.map_or("unknown", |s| s.state.as_str());
            return Err(Exit(EXIT_STILL_GOING, format!("job {tid} is still {state}; stopped waiting")).into());
        }
        std::thread::sleep(POLL);
    }
}

/// Prints how a job ended and gives its exit status.
fn report(s: &JobStatus) -> ExitCode {
    match s.state {
        JobState::Done => {
            println!("job {} done: {} saved, {} skipped", s.tid, s.done, s.skipped);
            ExitCode::SUCCESS
        }
        _ => {
            let why = s.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
            println!("job {} {}{why}", s.tid, s.state.as_str());
            ExitCode::from(1)
        }
    }
}

/// Prints how a recurring job's run ended and gives its exit status.
fn report_run(s: &JobStatus, run: &spoolfetch::job::RunRecord) -> ExitCode {
    let next = s
        .schedule
        .as_ref()
        .and_then(|x| x.next_run)
        .map(|t| format!("; next run {}", spoolfetch::job::utc_text(t)))
        .unwrap_or_default();
    match run.state {
        JobState::Done => {
            println!("job {} run {} done: {} saved, {} skipped{next}", s.tid, run.run, s.done, s.skipped);
            ExitCode::SUCCESS
        }
        other => {
            let why = run.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
            println!("job {} run {} {}{why}{next}", s.tid, run.run, other.as_str());
            ExitCode::from(1)
        }
    }
}

/// After `submit`: waits until a daemon has claimed the job file called
/// `file` (in the spool root) and prints its TID, then waits for its end.
pub fn claimed_then_ended(spool: &Spool, file: &Path, timeout: Option<u64>) -> Result<ExitCode> {
    let deadline = timeout.map(|s| Instant::now() + Duration::from_secs(s));
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let since = spoolfetch::job::unix_now().saturating_sub(1);
    loop {
        let claimed = list_statuses(spool)?
            .into_iter()
            .filter(|s| s.file == name && s.updated >= since)
            .max_by_key(|s| s.tid);
        if let Some(s) = claimed {
            println!("claimed as job {}", s.tid);
            // A job just submitted: its first run is the one to wait for,
            // even when it has ended already.
            return until_run_after(spool, s.tid, deadline, 0);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Exit(
                EXIT_STILL_GOING,
                format!("{name} was not claimed; is a daemon running on {}?", spool.root().display()),
            )
            .into());
        }
        std::thread::sleep(POLL);
    }
}

/// `spoolfetch completions SHELL`.
pub fn completions(a: &CompletionsArgs) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "spoolfetch", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// `spoolfetch man`.
pub fn man() -> Result<ExitCode> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(ExitCode::SUCCESS)
}

/// `spoolfetch help [COMMAND...]`: the same text as `COMMAND --help`. A
/// subcommand of its own (clap's built-in one takes no options, so
/// `help --help` was an error).
pub fn help(a: &HelpArgs) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut at = &mut cmd;
    for name in &a.command {
        let known: Vec<String> = at.get_subcommands().map(|c| c.get_name().to_string()).collect();
        at = match at.find_subcommand_mut(name) {
            Some(sub) => sub,
            None => {
                return Err(Exit(
                    EXIT_USAGE,
                    format!("no command {name:?}; the commands are: {}", known.join(", ")),
                )
                .into());
            }
        };
    }
    match at.print_long_help() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
