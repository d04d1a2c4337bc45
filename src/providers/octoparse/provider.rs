//! The Octoparse provider: job types and planning.

use std::sync::Arc;

use serde_json::Value;

use super::settings::{settings, validate_section};
use super::walks::{OctoWalk, Source};
use crate::config::SectionSpec;
use crate::job::{JobSpec, RejectReason};
use crate::providers::{JobTypeInfo, ParamInfo, ParamKind, PlanContext, Provider, RecordFormat, Walk};

/// The provider.
#[derive(Debug)]
pub struct Octoparse;

/// The job types.
static TYPES: &[JobTypeInfo] = &[
    JobTypeInfo {
        name: "octoparse.tasks",
        summary: "task groups and their tasks as tasks.json",
        params: &[],
    },
    JobTypeInfo {
        name: "octoparse.export",
        summary: "a task's data as JSON Lines or CSV (all rows by offset, or only new rows, marked exported)",
        params: &[
            ParamInfo { name: "task_id", kind: ParamKind::String, required: true, doc: "the task id" },
            ParamInfo { name: "mode", kind: ParamKind::String, required: false, doc: "all (default) or new" },
            ParamInfo {
                name: "format",
                kind: ParamKind::String,
                required: false,
                doc: "jsonl (default) or csv",
            },
            ParamInfo {
                name: "size",
                kind: ParamKind::Integer,
                required: false,
                doc: "rows per request, 1-1000 (default 1000)",
            },
        ],
    },
    JobTypeInfo {
        name: "octoparse.clear",
        summary: "remove all data of a task (needs \"confirm\": true)",
        params: &[
            ParamInfo { name: "task_id", kind: ParamKind::String, required: true, doc: "the task id" },
            ParamInfo { name: "confirm", kind: ParamKind::Bool, required: true, doc: "must be true" },
        ],
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
        Some(SectionSpec {
            name: "octoparse",
            env: &[
                ("username", "SPOOLFETCH_OCTOPARSE_USERNAME"),
                ("password", "SPOOLFETCH_OCTOPARSE_PASSWORD"),
            ],
            validate: validate_section,
        })
    }

    fn plan(&self, job: &JobSpec, cx: &PlanContext<'_>) -> Result<Box<dyn Walk>, RejectReason> {
        let s = Arc::new(settings(cx.config));
        let mut p = job.params.clone();
        let reject = |m: String| RejectReason(m);
        let task_id = |p: &mut serde_json::Map<String, Value>| -> Result<String, RejectReason> {
            match p.remove("task_id") {
                Some(Value::String(t)) if !t.trim().is_empty() => Ok(t.trim().to_string()),
                Some(_) => Err(RejectReason("key `task_id` must be a non-empty string".into())),
                None => Err(RejectReason("key `task_id` is missing".into())),
            }
        };
        let source = match job.job_type.as_str() {
            "octoparse.tasks" => Source::Tasks,
            "octoparse.export" => {
                let task_id = task_id(&mut p)?;
                let format = match p.remove("format").as_ref().map(|v| v.as_str()) {
                    None | Some(Some("jsonl")) => RecordFormat::Jsonl,
                    Some(Some("csv")) => RecordFormat::Csv,
                    _ => return Err(reject("key `format` must be \"jsonl\" or \"csv\"".into())),
                };
                let size = match p.remove("size") {
                    None => 1000,
                    Some(v) => v
                        .as_u64()
                        .filter(|n| (1..=1000).contains(n))
                        .map(|n| n as u32)
                        .ok_or_else(|| reject("key `size` must be an integer from 1 to 1000".into()))?,
                };
                match p.remove("mode").as_ref().map(|v| v.as_str()) {
                    None | Some(Some("all")) => Source::ExportAll { task_id, size, format },
                    Some(Some("new")) => Source::ExportNew { task_id, size, format },
                    _ => return Err(reject("key `mode` must be \"all\" or \"new\"".into())),
                }
            }
            "octoparse.clear" => {
                let task_id = task_id(&mut p)?;
                if p.remove("confirm") != Some(Value::Bool(true)) {
                    return Err(reject(
                        "octoparse.clear removes all data of the task on the server; add \"confirm\": true to the job".into(),
                    ));
                }
                Source::Clear { task_id }
            }
            other => return Err(reject(format!("unknown job type {other:?}"))),
        };
        if let Some(k) = p.keys().next() {
            return Err(reject(format!("unknown key `{k}` for {}", job.job_type)));
        }
        if s.username.is_none() || s.password.is_none() {
            return Err(reject(
                "Octoparse jobs need octoparse.username and octoparse.password in the configuration (or SPOOLFETCH_OCTOPARSE_USERNAME/PASSWORD)"
                    .into(),
            ));
        }
        Ok(Box::new(OctoWalk { source, settings: s }))
    }
}
