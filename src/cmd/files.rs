//! `spoolfetch status TID --files`: what became of each item of a job,
//! read from the job's report (`state/<tid>/files.jsonl`, docs/files.md).
//!
//! Owns the report's presentation: one line per item (index, state, size,
//! path, reason), or with `--json` an array with every key present (null
//! when it does not apply). Untrusted text (paths, server reasons) is
//! escaped on the table, as everywhere in status output.

use std::io::{ErrorKind, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use spoolfetch::checkpoint::{FileState, peek_progress, read_files};
use spoolfetch::job::JobStatus;
use spoolfetch::job::units::human_bytes;
use spoolfetch::naming::escape_display;
use spoolfetch::spool::Spool;

/// Prints the items of job `s`.
pub fn print_files(spool: &Spool, s: &JobStatus, json: bool) -> Result<ExitCode> {
    match write_files(&mut std::io::stdout().lock(), spool, s, json) {
        // `status 1 --files | head` is not an error.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == ErrorKind::BrokenPipe) => {
            Ok(ExitCode::SUCCESS)
        }
        r => r,
    }
}

/// Writes the items of job `s` to `out`.
fn write_files(out: &mut impl Write, spool: &Spool, s: &JobStatus, json: bool) -> Result<ExitCode> {
    let dir = spool.state_dir(s.tid);
    let mut files = read_files(&dir, s.found)
        .with_context(|| format!("cannot read the file report in {}", dir.display()))?;
    if files.iter().any(|f| f.state == FileState::Pending) {
        // Where pending items will go is in the checkpoint (a read-only
        // look); without it they are listed without a path.
        match peek_progress(&dir) {
            Ok(p) => {
                let job_dir = Path::new(&s.save_path).join(&s.name);
                for f in files.iter_mut().filter(|f| f.state == FileState::Pending) {
                    if let Some(it) = p.items.get_any(&f.i).filter(|it| !it.path.is_empty()) {
                        f.path = Some(job_dir.join(&it.path).display().to_string());
                    }
                }
            }
            Err(e) => log::debug!("job {}: no paths for pending items: {e}", s.tid),
        }
    }
    if json {
        let rows: Vec<serde_json::Value> = files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "i": f.i,
                    "state": f.state.as_str(),
                    "path": f.path,
                    "size": f.size,
                    "reason": f.reason,
                    "permanent": f.permanent,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{:>6}  {:<8} {:>10}  PATH  [REASON]", "ITEM", "STATE", "SIZE")?;
    let mut by_state = [0u64; 4];
    for f in &files {
        by_state[f.state as usize] += 1;
        let size = f.size.map_or_else(|| "-".to_string(), human_bytes);
        let path = f.path.as_deref().map_or_else(|| "-".to_string(), escape_display);
        let reason = f.reason.as_deref().map(|r| format!("  {}", escape_display(r))).unwrap_or_default();
        writeln!(out, "{:>6}  {:<8} {:>10}  {path}{reason}", f.i, f.state.as_str(), size)?;
    }
    out.flush()?;
    // On stderr: stdout stays one line per item.
    eprintln!(
        "job {}: {} saved, {} skipped, {} failed, {} pending",
        s.tid,
        by_state[FileState::Saved as usize],
        by_state[FileState::Skipped as usize],
        by_state[FileState::Failed as usize],
        by_state[FileState::Pending as usize]
    );
    Ok(ExitCode::SUCCESS)
}
