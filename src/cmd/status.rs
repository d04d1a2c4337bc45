//! `spoolfetch status`: the table, `--json`, and the way to `--files`
//! (`files`) and `--watch` (`progress`).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use spoolfetch::job::{JobState, JobStatus};
use spoolfetch::naming::escape_display;
use spoolfetch::spool::{Liveness, Spool, instance_liveness, instances, list_statuses};

use super::Exit;
use super::args::StatusArgs;

/// Prints the jobs of a spool.
pub fn status(a: &StatusArgs) -> Result<ExitCode> {
    let spool = super::spool::existing(&a.spool, None)?;
    if a.watch {
        return watch(&spool, a.tid);
    }
    let mut all = list_statuses(&spool)?;
    if let Some(t) = a.tid {
        all.retain(|s| s.tid == t);
        if all.is_empty() {
            return Err(Exit(1, format!("no job with TID {t} in {}", spool.root().display())).into());
        }
    }
    if a.files
        && let Some(s) = all.first()
    {
        return super::files::print_files(&spool, s, a.json);
    }
    let daemons = Daemons::probe(&spool, &all);
    if a.json {
        let mut out = Vec::with_capacity(all.len());
        for s in &all {
            let mut v = serde_json::to_value(s)?;
            if let serde_json::Value::Object(m) = &mut v {
                let (alive, stale) = daemons.of(s);
                m.insert("daemon_alive".into(), alive.as_bool().into());
                m.insert("stale".into(), stale.into());
                if stale {
                    // Nothing moves while its daemon is gone.
                    m.insert("running".into(), false.into());
                    m.insert("rate".into(), 0.into());
                    m.insert("eta_secs".into(), serde_json::Value::Null);
                }
            }
            out.push(v);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>5}  {:<20} {:<16} {:<9} {:<9} {:>15}  SAVE PATH  [ERROR]",
        "TID", "NAME", "TYPE", "STAGE", "STATE", "NOW/TOTAL"
    );
    for s in &all {
        print_line(s, &daemons);
    }
    let mut queued = all.iter().filter(|s| s.state == JobState::Queued).count();
    if a.tid.is_none() {
        let pending = unclaimed(&spool);
        queued += pending.len();
        for name in pending {
            // Not a job yet (no TID): shown as what it becomes once
            // claimed, a queued job at the claim stage.
            println!(
                "{:>5}  {:<20} {:<16} {:<9} {:<9} {:>15}  -",
                "-",
                cut(&name, 20),
                "",
                "claim",
                "queued",
                ""
            );
        }
    }
    if queued > 0 && daemons.none_alive() {
        // On stderr: stdout stays one line per job for grep and awk.
        eprintln!(
            "no daemon is running on this spool: {queued} queued job(s) wait for one (spoolfetch run --spool {})",
            spool.root().display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What the instance locks say about the daemons of a spool.
struct Daemons {
    /// The spool.
    spool: Spool,
    /// Every instance with a work folder, or named by a job.
    by_instance: BTreeMap<String, Liveness>,
}

impl Daemons {
    /// Probes every instance that has a work folder or owns a job.
    fn probe(spool: &Spool, jobs: &[JobStatus]) -> Daemons {
        let mut names = instances(spool);
        names.extend(jobs.iter().map(|s| s.instance.clone()).filter(|i| !i.is_empty()));
        let by_instance = names.into_iter().map(|i| (i.clone(), instance_liveness(spool, &i))).collect();
        Daemons { spool: spool.clone(), by_instance }
    }

    /// The liveness of the job's daemon, and whether the job's state is
    /// stale: it says running, or queued in that daemon's own work folder,
    /// and the daemon is gone. Ended jobs have no daemon to ask about, a
    /// paused job stays paused, and a queued job that is not claimed yet
    /// (retried) may be taken by any daemon.
    fn of(&self, s: &JobStatus) -> (Liveness, bool) {
        if s.state.is_terminal() {
            return (Liveness::Unknown, false);
        }
        let alive = self.by_instance.get(&s.instance).copied().unwrap_or(Liveness::Unknown);
        let held = match s.state {
            JobState::Running => true,
            JobState::Queued => self.claimed_by_its_instance(s),
            _ => false,
        };
        (alive, alive == Liveness::Stopped && held)
    }

    /// Whether the job's file is in its instance's work folder.
    fn claimed_by_its_instance(&self, s: &JobStatus) -> bool {
        !s.instance.is_empty()
            && !s.file.is_empty()
            && self.spool.work_dir(&s.instance).join(Spool::claimed_name(s.tid, &s.file)).exists()
    }

    /// True when the locks say that no daemon at all serves the spool.
    fn none_alive(&self) -> bool {
        self.by_instance.values().all(|l| *l == Liveness::Stopped)
    }
}

/// One table line per job: the error, if any, ends the line, so that
/// `grep` and `awk` see a job as one line.
fn print_line(s: &JobStatus, daemons: &Daemons) {
    let progress = super::progress::counts(s);
    let (alive, stale) = daemons.of(s);
    // Nothing moves while a job's daemon is gone: no rate, no time left.
    let moving = JobStatus { rate: if stale { 0 } else { s.rate }, ..s.clone() };
    let figures = match super::progress::figures(&moving) {
        f if f.is_empty() => String::new(),
        f => format!("  {f}"),
    };
    let error = s.error.as_deref().map(|e| format!("  error: {}", escape_display(e))).unwrap_or_default();
    let cost = credits(s);
    let state = if stale { "stale" } else { s.state.as_str() };
    // A job its daemon still holds (claimed, paused) continues only when
    // that instance runs again.
    let gone = if alive == Liveness::Stopped && (stale || s.state == JobState::Paused) {
        format!("  daemon {} not running", escape_display(&format!("{:?}", s.instance)))
    } else {
        String::new()
    };
    println!(
        "{:>5}  {:<20} {:<16} {:<9} {:<9} {:>15}  {}{figures}{cost}{error}{gone}",
        s.tid,
        cut(&s.name, 20),
        cut(&s.job_type, 16),
        escape_display(&s.stage.to_string()),
        state,
        progress,
        escape_display(&s.save_path.to_string())
    );
}

/// What a job's remote tasks cost, when they cost: committed of the
/// estimate, the cap, and calls that may have been charged twice.
fn credits(s: &JobStatus) -> String {
    let Some(c) = s.cost else { return String::new() };
    let cap = c.cap.map_or(String::new(), |m| format!(", cap {m}"));
    let twice = match s.possible_extra_charges {
        0 => String::new(),
        n => format!(", {n} possibly charged twice"),
    };
    format!("  credits: {} of {} estimated{cap}{twice}", c.committed, c.estimate)
}

/// Job files in the spool root that no daemon has claimed yet.
fn unclaimed(spool: &Spool) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(spool.root()) else { return Vec::new() };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.starts_with('.') && n != spoolfetch::spool::CONFIG_FILE_NAME)
        .collect();
    names.sort();
    names
}

/// Escapes untrusted text and shortens it for a column.
pub(super) fn cut(s: &str, n: usize) -> String {
    let s = &escape_display(s);
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// `status --watch`: redraws about once a second until every watched job
/// (job `tid`, or every job not ended when the watch began) has ended.
fn watch(spool: &Spool, tid: Option<u64>) -> Result<ExitCode> {
    let jobs = list_statuses(spool)?;
    let watched: Vec<u64> = match tid {
        Some(t) if jobs.iter().any(|s| s.tid == t) => vec![t],
        Some(t) => return Err(Exit(1, format!("no job with TID {t} in {}", spool.root().display())).into()),
        None => jobs.iter().filter(|s| !s.state.is_terminal()).map(|s| s.tid).collect(),
    };
    let mut view = super::progress::View::new(std::io::stdout().is_terminal());
    let mut out = std::io::stdout().lock();
    loop {
        let mut shown: Vec<JobStatus> =
            list_statuses(spool)?.into_iter().filter(|s| watched.contains(&s.tid)).collect();
        // A job whose daemon is gone goes on only when it runs again: the
        // watch goes on too, and says why nothing moves.
        let daemons = Daemons::probe(spool, &shown);
        for s in &mut shown {
            if daemons.of(s).1 {
                s.rate = 0;
                s.eta_secs = None;
                s.error = Some(format!("stale: daemon {:?} not running", s.instance));
            }
        }
        view.draw(&mut out, &shown)?;
        // A job whose status is gone (removed) has ended too.
        if shown.iter().all(|s| s.state.is_terminal()) {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
