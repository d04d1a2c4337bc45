//! The interface between providers and the kernel.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::archive::Archive;
use crate::checkpoint::Item;
use crate::config::{Config, SectionSpec};
use crate::job::{JobFlags, JobSpec, RejectReason};
use crate::pacing::{ApiError, ApiRequest, ApiResponse};
use crate::postprocess::PostRunner;
use crate::providers::account::{AccountSpec, Lanes};
use crate::providers::params::JobTypeInfo;
use crate::session::{Exchange, Sessions, StoreError};
use crate::steps::TaskRunner;

/// What a provider may look at while planning a job.
#[derive(Debug)]
pub struct PlanContext<'a> {
    /// The daemon's configuration.
    pub config: &'a Config,
}

/// A source of work behind one web API.
pub trait Provider: Send + Sync {
    /// Short lowercase name, also the name of its configuration section.
    fn name(&self) -> &'static str;

    /// The job types it handles.
    fn job_types(&self) -> &'static [JobTypeInfo];

    /// Its configuration section, if it has one.
    fn config_section(&self) -> Option<SectionSpec> {
        None
    }

    /// The post-processing steps its items may name.
    fn post_steps(&self) -> &'static [&'static dyn PostRunner] {
        &[]
    }

    /// The remote-task runners its items may name.
    fn task_runners(&self) -> &'static [&'static dyn TaskRunner] {
        &[]
    }

    /// Checks a job's parameters (unknown keys are an error) and returns
    /// the walk that lists its items.
    fn plan(&self, job: &JobSpec, cx: &PlanContext<'_>) -> Result<Box<dyn Walk>, RejectReason>;
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Items found on this page.
    pub items: Vec<Item>,
    /// Where the listing continues; `None` when it has ended.
    pub next: Option<Value>,
    /// The total number of items (or records), when the API tells.
    pub total: Option<u64>,
    /// Records to append to an output file (data exports). The runner
    /// writes and fsyncs them before it records `next`.
    pub records: Option<Records>,
}

/// Rows for an output file.
#[derive(Debug, Clone, PartialEq)]
pub struct Records {
    /// The file, relative to the job's folder.
    pub file: String,
    /// How rows are written.
    pub format: RecordFormat,
    /// The rows.
    pub rows: Vec<serde_json::Map<String, Value>>,
}

/// Output file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header fixed by the first rows.
    Csv,
}

/// Why a listing stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkError {
    /// The API call did not produce an answer.
    Api(ApiError),
    /// The answer cannot be used; the job fails with this reason.
    Invalid(String),
    /// The listing cannot go on until something outside the job changes
    /// (for example a new login); the lister waits and tries the same
    /// page again. Downloads already listed continue.
    Wait {
        /// What the job waits for, shown in its status.
        reason: String,
        /// When to try again.
        retry_in: Duration,
    },
}

impl From<ApiError> for WalkError {
    fn from(e: ApiError) -> Self {
        WalkError::Api(e)
    }
}

impl From<StoreError> for WalkError {
    fn from(e: StoreError) -> Self {
        // Going on would spend a token that a restart could not find.
        WalkError::Invalid(e.to_string())
    }
}

impl WalkError {
    /// A login server that gave no answer: a pause, cancel or shutdown
    /// stops the listing as usual; anything else waits `retry_in` and
    /// tries again (the network or the server may come back).
    pub fn login_unreachable(e: ApiError, what: &str, retry_in: Duration) -> WalkError {
        match e {
            ApiError::Interrupted | ApiError::ShuttingDown => WalkError::Api(e),
            other => WalkError::Wait { reason: format!("cannot reach {what}: {other}"), retry_in },
        }
    }
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalkError::Api(e) => write!(f, "API call failed: {e}"),
            WalkError::Invalid(s) => f.write_str(s),
            WalkError::Wait { reason, .. } => write!(f, "waiting: {reason}"),
        }
    }
}

/// A job's listing, resumable from a cursor.
pub trait Walk: Send {
    /// The account its API calls are paced under; `None` for a walk that
    /// makes no API calls.
    fn account(&self) -> Option<AccountSpec> {
        None
    }

    /// Headers every file request of this job carries (for example a
    /// Referer).
    fn file_headers(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Whether the file headers may follow a redirect to another origin
    /// (the job said so); by default they do not.
    fn forward_headers(&self) -> bool {
        false
    }

    /// Returns true if and only if the next page may only be fetched once
    /// the previous one is durable (the next call has side effects on the
    /// server, such as marking exported rows).
    fn sync_pages(&self) -> bool {
        false
    }

    /// Returns the page that starts at `cursor` (`None`: the beginning).
    fn next_page(&mut self, cursor: Option<&Value>, api: &Api) -> Result<Page, WalkError>;

    /// The most the job may spend on remote tasks, in the unit of their
    /// `Task::cost` (a job's `max_credits`); `None`: no cap. The runner
    /// starts no task whose cost would take what the job committed past
    /// it, and fails it for good with the reason instead.
    fn budget(&self) -> Option<u64> {
        None
    }

    /// Returns true if and only if [`Walk::refresh`] can give fresh URLs;
    /// the runner asks only a walk that says so, so that a plain 404 of
    /// any other job fails at once as it always did.
    fn refreshes(&self) -> bool {
        false
    }

    /// Fresh URLs (the first is tried first) for a download whose every
    /// URL answered 403, 404 or 410, as signed URLs do once they expire;
    /// `Ok(None)` when there are none. The runner asks at most once per
    /// item and run, never while a lister holds the walk, and journals
    /// the answer before the download is tried again.
    fn refresh(&mut self, item: &Item, api: &Api) -> Result<Option<Vec<String>>, WalkError> {
        let _ = (item, api);
        Ok(None)
    }
}

/// A walk's way to make API calls: through the account's pacer, on behalf
/// of one job (whose pause or cancel interrupts a waiting call), and to
/// reach the daemon's shared state (sessions, the archive).
#[derive(Debug, Clone)]
pub struct Api {
    /// The account's pacing threads, if the walk has an account.
    lanes: Lanes,
    /// The job's stop flag.
    flags: Arc<JobFlags>,
    /// The download archive, for walks that stop at known works.
    archive: Option<Arc<Archive>>,
    /// The logins of the daemon (or of a CLI command).
    sessions: Arc<Sessions>,
}

impl Api {
    /// A handle for one job.
    pub fn new(
        lanes: Lanes,
        flags: Arc<JobFlags>,
        archive: Option<Arc<Archive>>,
        sessions: Arc<Sessions>,
    ) -> Api {
        Api { lanes, flags, archive, sessions }
    }

    /// The logins, one per account, shared by every job of the daemon.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Returns true if and only if `key` is in the download archive.
    pub fn archived(&self, key: &str) -> bool {
        self.archive.as_ref().is_some_and(|a| a.contains(key))
    }

    /// The output recorded with an archived `key`: `None` when the key is
    /// not archived, `Some(None)` when no path was recorded with it.
    pub fn archived_output(&self, key: &str) -> Option<Option<std::path::PathBuf>> {
        self.archive.as_ref().and_then(|a| a.lookup(key))
    }

    /// Returns true if and only if the job was paused or cancelled (a walk
    /// that loops without API calls should stop then).
    pub fn halted(&self) -> bool {
        self.flags.halted()
    }

    /// Makes a paced call on the lane the request names.
    pub fn call(&self, mut req: ApiRequest) -> Result<ApiResponse, ApiError> {
        if req.lane.is_none() {
            for (name, value) in &self.lanes.credentials.0 {
                if !req.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                    req.headers.push((name.clone(), value.clone()));
                }
            }
        }
        match self.lanes.get(req.lane) {
            Some((p, classify)) => p.call(req, classify, &self.flags),
            None if req.lane.is_some() => Err(ApiError::Transport {
                reason: format!("the account has no lane {:?}", req.lane.unwrap_or_default()),
                transient: false,
            }),
            None => Err(ApiError::Transport {
                reason: "this job type makes no API calls (no account)".into(),
                transient: false,
            }),
        }
    }
}

impl Exchange for Api {
    fn exchange(&self, req: ApiRequest) -> Result<ApiResponse, ApiError> {
        self.call(req)
    }
}
