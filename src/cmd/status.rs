//! `spoolfetch status`.

use spoolfetch::naming::escape_display;
use std::process::ExitCode;

use anyhow::Result;
use spoolfetch::job::JobStatus;
use spoolfetch::spool::{Spool, list_statuses};

use super::Exit;
use super::args::StatusArgs;

/// Prints the jobs of a spool.
pub fn status(a: &StatusArgs) -> Result<ExitCode> {
    let spool = super::spool::existing(&a.spool, None)?;
    let mut all = list_statuses(&spool)?;
    if let Some(t) = a.tid {
        all.retain(|s| s.tid == t);
        if all.is_empty() {
            return Err(Exit(1, format!("no job with TID {t} in {}", spool.root().display())).into());
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>5}  {:<20} {:<16} {:<9} {:<9} {:>15}  SAVE PATH  [ERROR]",
        "TID", "NAME", "TYPE", "STAGE", "STATE", "NOW/TOTAL"
    );
    for s in &all {
        print_line(s);
    }
    if a.tid.is_none() {
        let pending = unclaimed(&spool);
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
    Ok(ExitCode::SUCCESS)
}

/// One table line per job: the error, if any, ends the line, so that
/// `grep` and `awk` see a job as one line.
fn print_line(s: &JobStatus) {
    let progress = format!("{}/{}", s.now, s.total);
    let error = s.error.as_deref().map(|e| format!("  error: {}", escape_display(e))).unwrap_or_default();
    println!(
        "{:>5}  {:<20} {:<16} {:<9} {:<9} {:>15}  {}{error}",
        s.tid,
        cut(&s.name, 20),
        cut(&s.job_type, 16),
        escape_display(&s.stage.to_string()),
        s.state.as_str(),
        progress,
        escape_display(&s.save_path.to_string())
    );
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
fn cut(s: &str, n: usize) -> String {
    let s = &escape_display(s);
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}
