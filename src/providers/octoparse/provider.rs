//! The Octoparse provider: job types and planning.

use std::sync::Arc;

use super::settings::{SECTION, settings};
use super::walks::{OctoWalk, Source};
use crate::config::SectionSpec;
use crate::job::{JobSpec, RejectReason};
use crate::providers::{
    JobTypeInfo, ParamInfo, ParamKind, PlanContext, Provider, RecordFormat, Walk, validate,
};

/// The provider.
#[derive(Debug)]
pub struct Octoparse;

/// The task id every task job names.
const TASK_ID: ParamInfo =
    ParamInfo::new("task_id", ParamKind::String, "the task id").required().expect("a non-empty string");

/// The job types.
static TYPES: &[JobTypeInfo] = &[
    JobTypeInfo {
        name: "octoparse.tasks",
        summary: "task groups and their tasks as tasks.json",
        params: &[],
        shared: &[],
    },
    JobTypeInfo {
        name: "octoparse.export",
        summary: "a task's data as JSON Lines or CSV (all rows by offset, or only new rows, marked exported)",
        params: &[
            TASK_ID,
            ParamInfo::new(
                "mode",
                ParamKind::Choice(&["all", "new"]),
                "all: every row, by offset; new: rows not exported yet, marked exported once durable",
            )
            .default("all")
            .expect("\"all\" or \"new\""),
            ParamInfo::new("format", ParamKind::Choice(&["jsonl", "csv"]), "output file format")
                .default("jsonl")
                .expect("\"jsonl\" or \"csv\""),
            ParamInfo::new("size", ParamKind::Integer { min: 1, max: 1000 }, "rows per request")
                .default("1000"),
        ],
        shared: &[],
    },
    JobTypeInfo {
        name: "octoparse.clear",
        summary: "remove all data of a task (needs \"confirm\": true)",
        params: &[
            TASK_ID,
            ParamInfo::new(
                "confirm",
                ParamKind::Bool,
                "must be true, or the job is refused: it removes all of the task's data on the server",
            ),
        ],
        shared: &[],
    },
];

impl Provider for Octoparse {
    fn name(&self) -> &'static str {
        "octoparse"
    }

    fn job_types(&self) -> &'static [JobTypeInfo] {
        TYPES
    }

    fn config_section(&self) -> Option<SectionSpec> {
        Some(SECTION)
    }

    fn plan(&self, job: &JobSpec, cx: &PlanContext<'_>) -> Result<Box<dyn Walk>, RejectReason> {
        let s = Arc::new(settings(cx.config));
        let reject = |m: &str| RejectReason(m.to_string());
        let info = TYPES
            .iter()
            .find(|t| t.name == job.job_type)
            .ok_or_else(|| RejectReason(format!("unknown job type {:?}", job.job_type)))?;
        let p = validate(info, &job.params)?;
        let task_id = || match p.str("task_id") {
            Some(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
            _ => Err(TASK_ID.wrong()),
        };
        let source = match info.name {
            "octoparse.export" => {
                let task_id = task_id()?;
                let format = match p.str("format").as_deref() {
                    Some("csv") => RecordFormat::Csv,
                    _ => RecordFormat::Jsonl,
                };
                // Validated against its declared range of 1 to 1000.
                let size = p.u64("size").and_then(|n| u32::try_from(n).ok()).unwrap_or(1000);
                match p.str("mode").as_deref() {
                    Some("new") => Source::ExportNew { task_id, size, format },
                    _ => Source::ExportAll { task_id, size, format },
                }
            }
            "octoparse.clear" => {
                let task_id = task_id()?;
                if p.bool("confirm") != Some(true) {
                    return Err(reject(
                        "octoparse.clear removes all data of the task on the server; add \"confirm\": true to the job",
                    ));
                }
                Source::Clear { task_id }
            }
            _ => Source::Tasks,
        };
        if s.username.is_none() || s.password.is_none() {
            return Err(reject(
                "Octoparse jobs need octoparse.username and octoparse.password in the configuration (or SPOOLFETCH_OCTOPARSE_USERNAME/PASSWORD)",
            ));
        }
        Ok(Box::new(OctoWalk { source, settings: s }))
    }
}
