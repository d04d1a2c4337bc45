//! Reading, checking and planning a claimed job file.
//!
//! Every way a job file can be bad ends here as a [`RejectReason`]: the
//! daemon moves the file to `failed/` with that reason and carries on.

use std::fs;
use std::io::Read;

use crate::checkpoint::JobIdentity;
use crate::config::Config;
use crate::job::{JobSpec, JobStatus, RejectReason, parse_job_bytes};
use crate::providers::{PlanContext, Walk, find_job_type};
use crate::spool::{Claimed, Ending, Spool, reject};

/// Why a claimed job cannot run, and what of it was read before the
/// problem showed (for its status).
#[derive(Debug)]
pub struct Rejected {
    /// The reason, one line.
    pub reason: RejectReason,
    /// The job's common keys, when they parsed.
    pub spec: Option<Box<JobSpec>>,
}

impl From<RejectReason> for Rejected {
    fn from(reason: RejectReason) -> Rejected {
        Rejected { reason, spec: None }
    }
}

/// A claimed job, ready to run.
pub struct Intake {
    /// The job.
    pub spec: JobSpec,
    /// Its walk.
    pub walk: Box<dyn Walk>,
    /// Its TID and the digest of its file, which its checkpoint must carry.
    pub identity: JobIdentity,
}

impl Intake {
    /// Reads and plans a claimed job file.
    pub fn read(claimed: &Claimed, config: &Config) -> Result<Intake, Rejected> {
        let meta = fs::symlink_metadata(&claimed.path)
            .map_err(|e| RejectReason(format!("cannot read the job file: {e}")))?;
        if meta.file_type().is_symlink() {
            return Err(RejectReason("job files must be regular files, not symbolic links".into()).into());
        }
        if !meta.is_file() {
            return Err(RejectReason("the job file is not a regular file".into()).into());
        }
        if meta.len() > config.max_job_bytes {
            return Err(RejectReason(format!(
                "the job file is {} bytes; the limit is {} (config key max_job_bytes)",
                meta.len(),
                config.max_job_bytes
            ))
            .into());
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        fs::File::open(&claimed.path)
            .and_then(|f| f.take(config.max_job_bytes + 1).read_to_end(&mut bytes))
            .map_err(|e| RejectReason(format!("cannot read the job file: {e}")))?;
        let spec = parse_job_bytes(&bytes, claimed.stem(), &config.save_path, &config.save_roots(), &|t| {
            find_job_type(t).is_some()
        })?;
        let identity = JobIdentity::new(claimed.tid, &bytes);
        // A large job file need not stay in memory next to its parsed form.
        drop(bytes);
        let (provider, _) = find_job_type(&spec.job_type)
            .ok_or_else(|| RejectReason(format!("unknown job type {:?}", spec.job_type)))?;
        let mut spec = spec;
        let walk = match provider.plan(&spec, &PlanContext { config }) {
            Ok(w) => w,
            Err(reason) => {
                spec.params = serde_json::Map::new();
                return Err(Rejected { reason, spec: Some(Box::new(spec)) });
            }
        };
        // The walk has what it needs; a 100,000-URL job's parameters need
        // not stay in memory for the life of the job.
        spec.params = serde_json::Map::new();
        Ok(Intake { spec, walk, identity })
    }
}

/// Ends a job that cannot run: a failed status and the file in `failed/`
/// with the reason. The status names the job's type and save path when
/// they were read (`spec`). Returns the end when the disk did not take it.
#[must_use = "an end that is not on disk must be settled later"]
pub fn reject_job(
    spool: &Spool,
    claimed: &Claimed,
    config: &Config,
    reason: &str,
    spec: Option<&JobSpec>,
) -> Option<Ending> {
    let status = match spec {
        Some(s) => JobStatus::claimed(
            claimed.tid,
            &s.name,
            &s.job_type,
            &s.save_path.display().to_string(),
            &config.instance,
            &claimed.original,
        ),
        None => JobStatus::claimed(claimed.tid, claimed.stem(), "", "", &config.instance, &claimed.original),
    };
    reject(spool, claimed, status, reason)
}
