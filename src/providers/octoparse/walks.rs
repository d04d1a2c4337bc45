//! The Octoparse walks: task listing, exports (`all` by opaque offset,
//! `new` by export batches), and clearing a task.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::auth::Session;
use super::client::{Client, classify};
use super::settings::Settings;
use crate::checkpoint::Item;
use crate::providers::{AccountSpec, Api, PacingSpec, Page, RecordFormat, Records, Walk, WalkError};

/// What a walk does.
#[derive(Debug, Clone)]
pub enum Source {
    /// Task groups and their tasks, as JSON.
    Tasks,
    /// Every row, by offset.
    ExportAll {
        /// The task.
        task_id: String,
        /// Rows per call (1–1000).
        size: u32,
        /// Output format.
        format: RecordFormat,
    },
    /// Rows not exported yet, marking each durable batch exported.
    ExportNew {
        /// The task.
        task_id: String,
        /// Rows per call (1–1000).
        size: u32,
        /// Output format.
        format: RecordFormat,
    },
    /// Remove all of a task's data.
    Clear {
        /// The task.
        task_id: String,
    },
}

/// An Octoparse walk.
#[derive(Debug)]
pub struct OctoWalk {
    /// What it does.
    pub source: Source,
    /// Settings.
    pub settings: Arc<Settings>,
}

/// The output file of an export.
fn file_name(task_id: &str, format: RecordFormat) -> String {
    let ext = match format {
        RecordFormat::Jsonl => "jsonl",
        RecordFormat::Csv => "csv",
    };
    format!("{}.{ext}", crate::naming::sanitize_component(task_id, "task"))
}

/// The rows of a `dataList`.
fn rows(data: &Value) -> Result<Vec<Map<String, Value>>, WalkError> {
    match data.get("dataList") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a.iter().map(|r| r.as_object().cloned().unwrap_or_default()).collect()),
        Some(_) => Err(WalkError::Invalid("Octoparse answered with a dataList that is not a list".into())),
    }
}

/// A number that may arrive as a number or a string (offsets are typed
/// `long` in the vendor's samples and can exceed 2^32).
fn number(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX))),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Walk for OctoWalk {
    fn account(&self) -> Option<AccountSpec> {
        let key = format!(
            "octoparse:{}:{}",
            self.settings.base_url,
            self.settings.username.as_deref().unwrap_or("")
        );
        // The documented budget is the pacing (docs/octoparse.md): no
        // gap beyond the token bucket.
        Some(AccountSpec::new(
            key,
            classify,
            PacingSpec::budget(self.settings.rate, self.settings.burst, Duration::from_secs(1)),
        ))
    }

    fn sync_pages(&self) -> bool {
        // `new` marks rows exported on the server: the next call may only
        // be made once the previous page is durable.
        matches!(self.source, Source::ExportNew { .. })
    }

    fn next_page(&mut self, cursor: Option<&Value>, api: &Api) -> Result<Page, WalkError> {
        let client = Client {
            api: api.clone(),
            // The account's login, shared through the daemon's registry.
            session: Session::shared(api.sessions(), &self.settings),
            settings: Arc::clone(&self.settings),
        };
        match self.source.clone() {
            Source::Tasks => {
                let groups = client.call("GET", "api/taskgroup", &[])?;
                let mut out = Vec::new();
                for g in groups.as_array().cloned().unwrap_or_default() {
                    let id = g.get("taskGroupId").map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                    let Some(id) = id else { continue };
                    let tasks = client.call("GET", "api/task", &[("taskgroupId".into(), id)])?;
                    let mut g = g.as_object().cloned().unwrap_or_default();
                    g.insert("tasks".into(), tasks);
                    out.push(Value::Object(g));
                }
                let count = out.iter().map(|g| g["tasks"].as_array().map_or(0, Vec::len)).sum::<usize>();
                log::info!("octoparse: {} task groups, {count} tasks", out.len());
                let item = Item::inline(
                    "tasks",
                    "tasks.json",
                    serde_json::to_string_pretty(&Value::Array(out)).unwrap_or_default(),
                );
                Ok(Page { items: vec![item], next: None, total: Some(1), records: None })
            }
            Source::ExportAll { task_id, size, format } => {
                // Offsets are opaque: always send back the server's value.
                let offset = cursor.and_then(|c| number(c.get("offset"))).unwrap_or(0);
                let data = client.call(
                    "GET",
                    "api/alldata/GetDataOfTaskByOffset",
                    &[
                        ("taskId".into(), task_id.clone()),
                        ("offset".into(), offset.to_string()),
                        ("size".into(), size.to_string()),
                    ],
                )?;
                let batch = rows(&data)?;
                let rest = number(data.get("restTotal")).unwrap_or(0);
                let next_offset = number(data.get("offset"));
                let next = match (rest > 0, next_offset) {
                    (true, Some(o)) if o > offset || batch.is_empty() => {
                        if batch.is_empty() && o <= offset {
                            return Err(WalkError::Invalid(
                                "Octoparse returned no rows and no progress; stopping to avoid a loop".into(),
                            ));
                        }
                        Some(json!({ "offset": o }))
                    }
                    (true, _) => {
                        return Err(WalkError::Invalid(
                            "Octoparse returned an offset that does not advance".into(),
                        ));
                    }
                    (false, _) => None,
                };
                let total = number(data.get("total")).and_then(|t| u64::try_from(t).ok());
                Ok(Page {
                    items: Vec::new(),
                    next,
                    total,
                    records: Some(Records { file: file_name(&task_id, format), format, rows: batch }),
                })
            }
            Source::ExportNew { task_id, size, format } => {
                let state = cursor.and_then(|c| c.get("state")).and_then(Value::as_str).unwrap_or("fetch");
                let done = cursor.and_then(|c| number(c.get("done"))).unwrap_or(0);
                if state == "update" {
                    // The batch handed out by the last `gettop` is durable in
                    // the output file; only now is it marked exported.
                    client.call("POST", "api/notexportdata/update", &[("taskId".into(), task_id.clone())])?;
                    return Ok(Page {
                        items: Vec::new(),
                        next: Some(json!({"state": "fetch", "done": done})),
                        total: None,
                        records: None,
                    });
                }
                let data = client.call(
                    "GET",
                    "api/notexportdata/gettop",
                    &[("taskId".into(), task_id.clone()), ("size".into(), size.to_string())],
                )?;
                let batch = rows(&data)?;
                if batch.is_empty() {
                    return Ok(Page {
                        items: Vec::new(),
                        next: None,
                        total: u64::try_from(done).ok(),
                        records: None,
                    });
                }
                let unexported = number(data.get("total")).unwrap_or(batch.len() as i64);
                let n = batch.len() as i64;
                Ok(Page {
                    items: Vec::new(),
                    next: Some(json!({"state": "update", "done": done + n})),
                    total: u64::try_from(done + unexported.max(n)).ok(),
                    records: Some(Records { file: file_name(&task_id, format), format, rows: batch }),
                })
            }
            Source::Clear { task_id } => {
                client.call("POST", "api/task/removeDataByTaskId", &[("taskId".into(), task_id.clone())])?;
                log::warn!("octoparse: removed all data of task {task_id}");
                let receipt = json!({ "task_id": task_id, "cleared_at": crate::job::unix_now() });
                let item = Item::inline(
                    "cleared",
                    format!("{}.cleared.json", crate::naming::sanitize_component(&task_id, "task")),
                    receipt.to_string(),
                );
                Ok(Page { items: vec![item], next: None, total: Some(1), records: None })
            }
        }
    }
}
