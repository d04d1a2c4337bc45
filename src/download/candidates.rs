//! One attempt over a task's candidate URLs.
//!
//! Owns the order and the stop rule: the URLs are tried one after another,
//! and only an answer that says "not here" (403, 404, 410, or an empty 200
//! where bytes were expected) moves on to the next; anything else (a
//! verified file, a passing or lasting failure, a halt) ends the attempt
//! as one URL would. When every URL said "not here", the outcome names
//! each URL's answer, redacted, so a status line shows why without a log.

use std::fs;

use crate::download::fetch::{Step, fetch_inner};
use crate::download::finish::Attempt;
use crate::download::partfile::part_paths;
use crate::download::task::{DownloadTask, Outcome};
use crate::http::display_url;

/// How many times in a row one attempt starts again after the process was
/// stopped under it, before it reports a retry like any other cut.
const STOPPED_RESTARTS: u32 = 3;

/// What one URL gave.
enum Tried {
    /// The attempt ends with this.
    Attempt(Attempt),
    /// Not here; the next candidate may have it.
    Next {
        /// What the URL answered.
        reason: String,
        /// 403, 404 or 410.
        expired: bool,
    },
}

/// Makes one attempt at a task up to, not including, the fsync and rename
/// of a verified file. Never panics on anything a server sends.
pub fn fetch_staged(agent: &ureq::Agent, task: &DownloadTask) -> Attempt {
    let urls = std::iter::once(task.url.as_str()).chain(task.also.iter().map(String::as_str));
    let mut passed: Vec<(String, String, bool)> = Vec::new();
    let mut ended = None;
    for url in urls {
        match try_url(agent, task, url) {
            Tried::Attempt(a) => {
                ended = Some(after_others(a, &passed, url));
                break;
            }
            Tried::Next { reason, expired } => {
                if !task.also.is_empty() {
                    log::debug!("job {}: {}: {reason}; trying the next URL", task.job, display_url(url));
                }
                passed.push((display_url(url), reason, expired));
            }
        }
    }
    let attempt = ended.unwrap_or_else(|| Attempt::Over(none_worked(task, &passed)));
    if matches!(attempt, Attempt::Over(Outcome::Failed { .. } | Outcome::Expired { .. })) {
        // A failure for good leaves no empty hidden file behind; a partial
        // with bytes in it is kept for a later `retry`.
        let (part, meta) = part_paths(&task.dest);
        if fs::symlink_metadata(&part).is_ok_and(|m| m.is_file() && m.len() == 0) {
            let _ = fs::remove_file(&part);
            let _ = fs::remove_file(&meta);
        }
    }
    attempt
}

/// One URL, started again at once when the process itself was stopped
/// under the transfer.
fn try_url(agent: &ureq::Agent, task: &DownloadTask, url: &str) -> Tried {
    let mut restarts = 0;
    loop {
        match fetch_inner(agent, task, url) {
            Ok(Step::Attempt(a)) => return Tried::Attempt(a),
            Ok(Step::Next { reason, expired }) => return Tried::Next { reason, expired },
            Ok(Step::Suspended) if restarts < STOPPED_RESTARTS && !task.flags.halted() => {
                restarts += 1;
                log::info!(
                    "job {}: {}: this process was stopped during the transfer; resuming it",
                    task.job,
                    display_url(url)
                );
            }
            Ok(Step::Suspended) => {
                return Tried::Attempt(Attempt::Over(Outcome::Retry {
                    reason: "the transfer was cut while this process was stopped".into(),
                    after: None,
                }));
            }
            Err(e) => return Tried::Attempt(Attempt::Over(Outcome::Failed { reason: e })),
        }
    }
}

/// A failure at a later candidate also names what the earlier ones said.
fn after_others(a: Attempt, passed: &[(String, String, bool)], url: &str) -> Attempt {
    if passed.is_empty() {
        return a;
    }
    let tell = |reason: String| format!("{}; {}: {reason}", summary(passed), display_url(url));
    match a {
        Attempt::Over(Outcome::Retry { reason, after }) => {
            Attempt::Over(Outcome::Retry { reason: tell(reason), after })
        }
        Attempt::Over(Outcome::Failed { reason }) => Attempt::Over(Outcome::Failed { reason: tell(reason) }),
        other => other,
    }
}

/// The outcome when every URL said "not here": lasting when all of them
/// were refused or gone (expired, when the runner can ask for fresh
/// ones), passing when one gave an empty answer (the CDN may fill it).
fn none_worked(task: &DownloadTask, passed: &[(String, String, bool)]) -> Outcome {
    // A single URL keeps the plain reason it always had ("HTTP 404 Not
    // Found"); the runner adds the URL itself.
    let reason = match passed {
        [(_, reason, _)] if task.also.is_empty() => reason.clone(),
        _ => summary(passed),
    };
    if passed.iter().all(|(_, _, expired)| *expired) {
        if task.refreshable { Outcome::Expired { reason } } else { Outcome::Failed { reason } }
    } else {
        Outcome::Retry { reason, after: None }
    }
}

/// `url: answer; url: answer`, URLs redacted.
fn summary(passed: &[(String, String, bool)]) -> String {
    passed.iter().map(|(url, reason, _)| format!("{url}: {reason}")).collect::<Vec<_>>().join("; ")
}
