//! `spoolfetch status`: what each job's row says, the filters
//! (`--state`, `--active`), `--json`, and the way to `--files` (`files`)
//! and `--watch` (`progress`); how the table is laid out is `table`'s.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use spoolfetch::job::{JobState, JobStatus};
use spoolfetch::naming::escape_display;
use spoolfetch::spool::{Liveness, Spool, instance_liveness, instances, list_statuses};

use super::Exit;
use super::args::{StateFilter, StatusArgs};
use super::table::{Layout, Row, Tone};

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
        for s in all.iter().filter(|s| wanted(a, s)) {
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
    let layout = Layout::for_stdout();
    let mut out = String::new();
    out.push_str(&layout.header());
    out.push('\n');
    for s in all.iter().filter(|s| wanted(a, s)) {
        for line in layout.lines(&row(s, &daemons)) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    let mut queued = all.iter().filter(|s| s.state == JobState::Queued).count();
    if a.tid.is_none() {
        let pending = unclaimed(&spool);
        queued += pending.len();
        // Unclaimed files are queued: `--active` (which takes no
        // `--state`) and `--state queued` show them.
        let shown = a.states.is_empty() || a.states.contains(&StateFilter::Queued);
        for name in pending.iter().filter(|_| shown) {
            // Not a job yet (no TID): shown as what it becomes once
            // claimed, a queued job at the claim stage.
            let r = Row {
                tid: "-".into(),
                name: name.clone(),
                job_type: String::new(),
                stage: "claim".into(),
                state: "queued".into(),
                counts: String::new(),
                path: "-".into(),
                details: Vec::new(),
                tone: Tone::Plain,
            };
            for line in layout.lines(&r) {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    print!("{out}");
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

/// Whether job `s` passes the filters of `--state` and `--active` (none:
/// every job). `waiting` is a job not ended whose reason says it waits.
fn wanted(a: &StatusArgs, s: &JobStatus) -> bool {
    if a.active {
        return !s.state.is_terminal();
    }
    if a.states.is_empty() {
        return true;
    }
    a.states.iter().any(|f| match f {
        StateFilter::Queued => s.state == JobState::Queued,
        StateFilter::Running => s.state == JobState::Running,
        StateFilter::Paused => s.state == JobState::Paused,
        StateFilter::Waiting => is_waiting(s),
        StateFilter::Done => s.state == JobState::Done,
        StateFilter::Failed => s.state == JobState::Failed,
        StateFilter::Cancelled => s.state == JobState::Cancelled,
    })
}

/// A job not ended that waits (for a login, a block to pass).
fn is_waiting(s: &JobStatus) -> bool {
    !s.state.is_terminal() && s.error.as_deref().is_some_and(|e| e.starts_with("waiting:"))
}

/// One job as the table shows it; its error, if any, is the last of its
/// details, so that piped, `grep` and `awk` see a job as one line.
fn row(s: &JobStatus, daemons: &Daemons) -> Row {
    let (alive, stale) = daemons.of(s);
    // Nothing moves while a job's daemon is gone: no rate, no time left.
    let moving = JobStatus { rate: if stale { 0 } else { s.rate }, ..s.clone() };
    let mut details = Vec::new();
    let figures = super::progress::figures(&moving);
    if !figures.is_empty() {
        details.push(figures);
    }
    let cost = credits(s);
    if !cost.is_empty() {
        details.push(cost);
    }
    if let Some(e) = s.error.as_deref() {
        details.push(format!("error: {}", escape_display(e)));
    }
    if let Some(sched) = &s.schedule {
        details.push(schedule_text(sched));
    }
    // A job its daemon still holds (claimed, paused) continues only when
    // that instance runs again.
    if alive == Liveness::Stopped && (stale || s.state == JobState::Paused) {
        details.push(format!("daemon {} not running", escape_display(&format!("{:?}", s.instance))));
    }
    let tone = if s.state == JobState::Failed {
        Tone::Failed
    } else if is_waiting(s) {
        Tone::Waiting
    } else {
        Tone::Plain
    };
    Row {
        tid: s.tid.to_string(),
        name: s.name.clone(),
        job_type: s.job_type.clone(),
        stage: escape_display(&s.stage),
        state: if stale {
            "stale"
        } else if s.state == JobState::Queued && s.stage == "scheduled" {
            "scheduled"
        } else {
            s.state.as_str()
        }
        .to_string(),
        counts: super::progress::counts(s),
        path: escape_display(&absolute(&s.save_path)),
        details,
        tone,
    }
}

/// A recurring job's series: its rule, its last run, its next one.
fn schedule_text(sched: &spoolfetch::job::ScheduleStatus) -> String {
    use spoolfetch::job::utc_text;
    let mut out = escape_display(&sched.rule);
    if let Some(last) = &sched.last_run {
        out.push_str(&format!("; run {} {} at {}", last.run, last.state.as_str(), utc_text(last.ended)));
        if let Some(e) = &last.error {
            out.push_str(&format!(" ({})", escape_display(e)));
        }
    }
    match sched.next_run {
        Some(t) => out.push_str(&format!("; next run {}", utc_text(t))),
        None if sched.run > sched.last_run.as_ref().map_or(0, |l| l.run) => {
            out.push_str(&format!("; run {} under way", sched.run));
        }
        None => {}
    }
    out
}

/// A save path made absolute against the working folder (where a daemon
/// started here resolves a relative `save_path` too); empty stays empty.
fn absolute(p: &str) -> String {
    if p.is_empty() {
        return String::new();
    }
    std::path::absolute(p).map_or_else(|_| p.to_string(), |a| a.display().to_string())
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
    format!("credits: {} of {} estimated{cap}{twice}", c.committed, c.estimate)
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
