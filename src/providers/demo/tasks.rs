//! `demo.tasks`: remote tasks against the demo task service, and the
//! smallest example of a task runner.
//!
//! The service (loopback only): `POST <api>/api/tasks` with the form
//! `name=<input>` creates a task and answers `{"task_id"}` (a create is the
//! call that costs, so it is never made twice); `GET <api>/api/tasks?name=`
//! lists the tasks of an input (how a runner finds out whether a create
//! whose answer was lost was carried out); `GET <api>/api/tasks/<id>`
//! answers `{"state": "processing" | "done" | "failed", "result_url",
//! "error"}`. The state machine: nothing → intent to create → created
//! (`task_id`) → polled until done → the result file to download.

use std::time::Duration;

use serde_json::{Value, json};

use crate::checkpoint::Item;
use crate::pacing::{ApiError, ApiRequest, default_classify};
use crate::providers::{AccountSpec, Api, PacingSpec, Page, Walk, WalkError};
use crate::steps::{Product, Step, TaskRunner, TaskView};

/// The runner's name.
const RUNNER: &str = "demo.task";

/// How often a processing task is looked at.
const POLL: Duration = Duration::from_secs(1);

/// The listing: one page, one task item per input.
#[derive(Debug)]
pub struct TasksWalk {
    /// The service's base URL.
    api: String,
    /// The inputs.
    inputs: Vec<String>,
}

impl TasksWalk {
    /// A listing of `inputs` for the service at `api`.
    pub fn new(api: String, inputs: Vec<String>) -> TasksWalk {
        TasksWalk { api, inputs }
    }
}

impl Walk for TasksWalk {
    fn account(&self) -> Option<AccountSpec> {
        Some(AccountSpec::new(
            format!("demo:{}", self.api),
            default_classify,
            PacingSpec::polite(Duration::from_secs(1)),
        ))
    }

    fn next_page(&mut self, _cursor: Option<&Value>, _api: &Api) -> Result<Page, WalkError> {
        let items = self
            .inputs
            .iter()
            .map(|name| {
                let file = crate::naming::sanitize_component(&format!("{name}.out"), "result");
                Item::task(format!("task:{name}"), file, RUNNER, json!({"api": self.api, "name": name}))
            })
            .collect();
        Ok(Page { total: Some(self.inputs.len() as u64), items, ..Page::default() })
    }
}

/// The demo's task runner.
#[derive(Debug)]
pub struct DemoTask;

impl TaskRunner for DemoTask {
    fn name(&self) -> &'static str {
        RUNNER
    }

    fn step(&self, task: &TaskView<'_>, api: &Api) -> Result<Step, WalkError> {
        let base = task.input["api"].as_str().unwrap_or_default();
        let name = task.input["name"].as_str().unwrap_or_default();
        if let Some(id) = task.state["task_id"].as_str() {
            return poll(base, id, task.path, api);
        }
        if !task.intent {
            // The create costs: announce it, so that a crash after it is
            // known to the next run.
            return Ok(Step::Intent { state: json!({"create": true}), phase: "create".into() });
        }
        if task.resumed || task.state["unknown"].as_bool() == Some(true) {
            // The create may have been made: look before making it again.
            if let Some(id) = find(base, name, api)? {
                log::info!("demo.tasks: {name}: the task created before ({id}) is used");
                return Ok(Step::Next { state: json!({"task_id": id}), phase: "processing".into() });
            }
        }
        let req = ApiRequest::post_form(format!("{base}/api/tasks"), &[("name", name)]);
        match api.call(req) {
            Ok(resp) if resp.is_success() => {
                let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
                match body["task_id"].as_str() {
                    Some(id) => Ok(Step::Next { state: json!({"task_id": id}), phase: "processing".into() }),
                    None => Ok(Step::Failed {
                        reason: "the task service answered without a task_id".into(),
                        permanent: false,
                    }),
                }
            }
            Ok(resp) => Ok(Step::Failed {
                reason: format!("the task service refused the task (HTTP {})", resp.status),
                permanent: (400..500).contains(&resp.status),
            }),
            // Not sent again by the pacer: find out next time.
            Err(ApiError::OutcomeUnknown { reason }) => {
                log::warn!("demo.tasks: {name}: {reason}; looking for the task before creating it again");
                Ok(Step::Intent { state: json!({"create": true, "unknown": true}), phase: "create".into() })
            }
            Err(e) => Err(WalkError::Api(e)),
        }
    }
}

/// The task of `name`, if the service has one.
fn find(base: &str, name: &str, api: &Api) -> Result<Option<String>, WalkError> {
    let q = crate::http::encode_query(&[("name".to_string(), name.to_string())]);
    let resp = api.call(ApiRequest::get(format!("{base}/api/tasks?{q}")))?;
    let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    Ok(body["tasks"]
        .as_array()
        .and_then(|t| t.iter().find_map(|t| t["task_id"].as_str()))
        .map(str::to_string))
}

/// One look at task `id`.
fn poll(base: &str, id: &str, path: &str, api: &Api) -> Result<Step, WalkError> {
    let resp = api.call(ApiRequest::get(format!("{base}/api/tasks/{}", crate::http::form_encode(id))))?;
    if !resp.is_success() {
        return Ok(Step::Failed { reason: format!("task {id}: HTTP {}", resp.status), permanent: false });
    }
    let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    Ok(match body["state"].as_str() {
        Some("processing") => Step::Poll { after: POLL, phase: "processing".into() },
        Some("done") => match body["result_url"].as_str() {
            Some(url) => Step::Done(vec![Product(Item::fetch(format!("result:{id}"), url, path))]),
            None => {
                Step::Failed { reason: format!("task {id} is done but has no result_url"), permanent: false }
            }
        },
        Some("failed") => Step::Failed {
            reason: format!("task {id} failed: {}", body["error"].as_str().unwrap_or("no reason given")),
            permanent: true,
        },
        _ => Step::Failed { reason: format!("task {id}: an answer without a known state"), permanent: false },
    })
}
