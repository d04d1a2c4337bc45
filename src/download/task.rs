//! What a worker is asked to do and what it answers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::job::{JobFlags, Tid};

/// One file to fetch (or write) for a job.
#[derive(Debug, Clone)]
pub struct DownloadTask {
    /// The job.
    pub job: Tid,
    /// The item's index within the job.
    pub item: u64,
    /// The URL (empty for inline content).
    pub url: String,
    /// More candidate URLs for the same file, tried in order after `url`
    /// within one attempt when one answers 403, 404, 410 or an empty 200.
    pub also: Vec<String>,
    /// Whether an attempt in which every URL answered 403, 404 or 410
    /// ends as [`Outcome::Expired`] (the runner may get fresh URLs from
    /// the provider) instead of [`Outcome::Failed`].
    pub refreshable: bool,
    /// The final path; with `server_name`, a provisional one the file
    /// keeps only when the server gives no name.
    pub dest: PathBuf,
    /// The server may name the file (`Content-Disposition`) inside
    /// `dest`'s folder: the URL gave none, so `dest` is a made-up name.
    pub server_name: bool,
    /// The job's log of final names that are not the tasks' own (see
    /// `download::names`); without it the file takes `dest` and nothing
    /// else.
    pub names: Option<Arc<super::names::NameLog>>,
    /// Request headers (Referer, Authorization, …); never logged. Shared
    /// by every task of a job that adds none of its own, so a large header
    /// is held once per job, not once per file.
    pub headers: Arc<[(String, String)]>,
    /// Whether `headers` follow a redirect to another origin (scheme,
    /// host, port); by default they go to the job URL's origin only, so a
    /// credential header never reaches a server the job did not name.
    pub forward_headers: bool,
    /// Size the API announced, if any.
    pub expected_size: Option<u64>,
    /// MD5 the API announced (hex), if any.
    pub md5: Option<String>,
    /// Content to write instead of downloading.
    pub inline: Option<String>,
    /// An earlier output to copy instead of downloading.
    pub copy_from: Option<PathBuf>,
    /// Connect and read timeout for this attempt (grows per round).
    pub timeout: Duration,
    /// Below this many bytes per second over `min_speed_time` the
    /// transfer is cut and retried later; 0 turns the check off.
    pub min_speed: u64,
    /// The window of the `min_speed` check.
    pub min_speed_time: Duration,
    /// The job's stop flag and byte counter.
    pub flags: Arc<JobFlags>,
    /// The bandwidth limits the transfer keeps to (the daemon's, the
    /// job's); shared by every task they govern.
    pub limits: Arc<[Arc<super::throttle::Throttle>]>,
    /// Where the outcome goes (the job's runner).
    pub reply: Sender<DownloadEvent>,
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file is complete under its final name.
    Done {
        /// Bytes transferred by this attempt.
        bytes: u64,
        /// True when the file was already complete and nothing was fetched.
        already: bool,
        /// Where the file is when that is not the task's `dest`: the
        /// server named it, or its name was taken by another file.
        saved_as: Option<PathBuf>,
    },
    /// A passing failure: try again later (after `after`, when the server
    /// said). A partial file is kept for Range resume.
    Retry {
        /// One-line reason.
        reason: String,
        /// The server's Retry-After, if any.
        after: Option<Duration>,
    },
    /// A failure that retrying will not fix (404, 403, a size mismatch).
    Failed {
        /// One-line reason.
        reason: String,
    },
    /// Every URL answered 403, 404 or 410, the way signed URLs do once
    /// they have expired: fresh URLs from the provider may work. Only an
    /// attempt whose task is `refreshable` ends so; others end `Failed`.
    Expired {
        /// One-line reason, naming each URL's answer.
        reason: String,
    },
    /// Stopped because the job was halted; the partial file is kept.
    Interrupted,
}

/// A worker's report to a runner.
#[derive(Debug, Clone)]
pub struct DownloadEvent {
    /// The item.
    pub item: u64,
    /// What happened.
    pub outcome: Outcome,
    /// The final path, where a `Done` file really is (its folder must be
    /// fsynced before the item is journaled as done).
    pub dest: PathBuf,
}
