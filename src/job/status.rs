//! Job states and the status object of `spoolfetch status --json`.

use serde::{Deserialize, Serialize};

/// A task id, unique within one spool.
pub type Tid = u64;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Claimed, waiting for a free job slot or for its daemon to start.
    Queued,
    /// Listing or downloading.
    Running,
    /// Stopped by `spoolfetch pause`; all progress is kept.
    Paused,
    /// Every item is done or skipped; the job file is in `done/`.
    Done,
    /// Rejected or failed; the job file and its reason are in `failed/`.
    Failed,
    /// Stopped by `spoolfetch cancel`; completed files are kept.
    Cancelled,
}

impl JobState {
    /// Returns true if and only if the job will not change any more
    /// (until `retry`).
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed | JobState::Cancelled)
    }

    /// The lowercase name used in status output.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Paused => "paused",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// The status object, written by the job's owner to
/// `state/<tid>/status.json` and read by `spoolfetch status` (its JSON
/// form is what `status --json` prints, one object per job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// TID.
    pub tid: Tid,
    /// TaskName.
    pub name: String,
    /// TypeName.
    #[serde(rename = "type")]
    pub job_type: String,
    /// StageName: `claim`, `list`, `download`, `finished`.
    pub stage: String,
    /// Life-cycle state.
    pub state: JobState,
    /// Running: true while the job makes requests.
    pub running: bool,
    /// Now: progress within the current stage.
    pub now: u64,
    /// Total: size of the current stage (0 while unknown).
    pub total: u64,
    /// SavePath.
    pub save_path: String,
    /// The one-line reason of a failure, or null.
    pub error: Option<String>,
    /// The daemon instance that owns the job.
    #[serde(default)]
    pub instance: String,
    /// The job file's name as it was dropped.
    #[serde(default)]
    pub file: String,
    /// Items found by the listing so far.
    #[serde(default)]
    pub found: u64,
    /// Items completed (downloaded, already present or written).
    #[serde(default)]
    pub done: u64,
    /// Items skipped (filtered, placeholders, gone).
    #[serde(default)]
    pub skipped: u64,
    /// Items that failed for good.
    #[serde(default)]
    pub failed: u64,
    /// Bytes downloaded by this job in total, files in flight included.
    #[serde(default)]
    pub bytes: u64,
    /// The bytes the job will have downloaded when it is done, once every
    /// remaining file's size is known (announced by the API or by the
    /// server of a file in flight); null while unknown.
    #[serde(default)]
    pub bytes_total: Option<u64>,
    /// The current transfer rate in bytes per second, smoothed over the
    /// last few seconds; 0 when nothing moves.
    #[serde(default)]
    pub rate: u64,
    /// Seconds until `bytes_total` at `rate`; null while either is unknown.
    #[serde(default)]
    pub eta_secs: Option<u64>,
    /// Unix time of the last update, in seconds.
    #[serde(default)]
    pub updated: u64,
    /// Remote tasks under way, by phase (`upload`, `processing`, …).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub phases: std::collections::BTreeMap<String, u64>,
    /// What the job's remote tasks cost (credits), when they cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostStatus>,
    /// Calls sent again although their first sending may have been
    /// carried out: each may have been charged twice.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub possible_extra_charges: u64,
    /// A recurring job's schedule: its rule, its runs, the next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleStatus>,
}

/// Where a recurring job's series stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleStatus {
    /// The rule as a person reads it (`every 6h`, `cron 0 */6 * * * (UTC)`).
    pub rule: String,
    /// The number of the run under way, or of the last one begun.
    pub run: u64,
    /// When the next run starts (Unix seconds), between runs.
    #[serde(default)]
    pub next_run: Option<u64>,
    /// The last run that ended.
    #[serde(default)]
    pub last_run: Option<super::RunRecord>,
}

/// The cost of a job's remote tasks, in the provider's unit (credits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostStatus {
    /// Every task found, at its documented price.
    pub estimate: u64,
    /// The tasks started so far (each may be charged).
    pub committed: u64,
    /// The job's cap (`max_credits`), if it has one.
    pub cap: Option<u64>,
}

/// For serde: leave zero counts out.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl JobStatus {
    /// The status of a job that has just been claimed: stage `claim`,
    /// state `queued`, nothing done yet.
    pub fn claimed(
        tid: Tid,
        name: &str,
        job_type: &str,
        save_path: &str,
        instance: &str,
        file: &str,
    ) -> JobStatus {
        JobStatus {
            tid,
            name: name.to_string(),
            job_type: job_type.to_string(),
            stage: "claim".into(),
            state: JobState::Queued,
            running: false,
            now: 0,
            total: 0,
            save_path: save_path.to_string(),
            error: None,
            instance: instance.to_string(),
            file: file.to_string(),
            found: 0,
            done: 0,
            skipped: 0,
            failed: 0,
            bytes: 0,
            bytes_total: None,
            rate: 0,
            eta_secs: None,
            updated: unix_now(),
            phases: std::collections::BTreeMap::new(),
            cost: None,
            possible_extra_charges: 0,
            schedule: None,
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
