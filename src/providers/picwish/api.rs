//! `picwish.api`: one input through PicWish's official API.
//!
//! The state machine: nothing → intent to create → the task id (journaled
//! before the first poll) → polled every second until its `state` is 1 or
//! negative → the result files to download. A local input is sent as the
//! multipart `image_file`, a URL as `image_url`, always with `sync=0`, so
//! there is a task id to come back to after any crash. The key is not
//! here: the account's lanes add it to every call.

use serde_json::Value;

use super::answer::{body, http_failure, out_of_credits};
use super::tasks::{API_RUNNER, create, gone, on_state, products, too_early, url_of};
use crate::pacing::{ApiRequest, Multipart};
use crate::providers::{Api, WalkError};
use crate::steps::{Step, TaskRunner, TaskView};

/// The official API's runner.
#[derive(Debug)]
pub struct ApiTask;

impl TaskRunner for ApiTask {
    fn name(&self) -> &'static str {
        API_RUNNER
    }

    fn step(&self, task: &TaskView<'_>, api: &Api) -> Result<Step, WalkError> {
        let input = task.input;
        let base = input["api"].as_str().unwrap_or_default();
        let path = input["path"].as_str().unwrap_or_default();
        if base.is_empty() || path.is_empty() {
            return Ok(Step::Failed {
                reason: "the task's input is incomplete (a broken checkpoint)".into(),
                permanent: true,
            });
        }
        if let (Some("task"), Some(id)) = (task.state["s"].as_str(), task.state["task"].as_str()) {
            if let Some(wait) = too_early(task.state) {
                return Ok(wait);
            }
            return poll(task, api, base, path, id);
        }
        let url = format!("{base}/api/tasks/visual/{path}");
        create(task, || api.call(create_request(input, &url)?))
    }
}

/// The create request: multipart with the file, or a form with the URL.
fn create_request(input: &Value, url: &str) -> Result<ApiRequest, crate::pacing::ApiError> {
    let fields: Vec<(String, String)> = input["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f[0].as_str()?.to_string(), f[1].as_str()?.to_string())))
        .collect();
    let src = &input["src"];
    if let Some(u) = src["url"].as_str() {
        let mut form: Vec<(&str, &str)> = vec![("image_url", u), ("sync", "0")];
        form.extend(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        return Ok(ApiRequest::post_form(url, &form));
    }
    let (Some(path), Some(len)) = (src["path"].as_str(), src["len"].as_u64()) else {
        return Err(crate::pacing::ApiError::Transport {
            reason: "the task's input names no file (a broken checkpoint)".into(),
            transient: false,
        });
    };
    // Checked again now: the file must still be the one that was listed.
    let meta = std::fs::symlink_metadata(path).map_err(|e| crate::pacing::ApiError::Transport {
        reason: format!("cannot read the input: {e}"),
        transient: false,
    })?;
    if !meta.is_file() || meta.len() != len {
        return Err(crate::pacing::ApiError::Transport {
            reason: "the input changed since it was listed (size or kind)".into(),
            transient: false,
        });
    }
    let name = src["name"].as_str().unwrap_or("image");
    let mime = src["mime"].as_str().unwrap_or("application/octet-stream");
    let mut form = Multipart::new().file("image_file", path, len, name, mime).text("sync", "0");
    for (k, v) in fields {
        form = form.text(k, v);
    }
    Ok(ApiRequest::post_multipart(url, form).timeout(std::time::Duration::from_secs(300)))
}

/// One look at task `id`.
fn poll(task: &TaskView<'_>, api: &Api, base: &str, path: &str, id: &str) -> Result<Step, WalkError> {
    let resp = api
        .call(ApiRequest::get(format!("{base}/api/tasks/visual/{path}/{}", crate::http::form_encode(id))))?;
    let v = body(&resp);
    if resp.status == 404 {
        return Ok(gone(task, "create"));
    }
    if out_of_credits(&resp, &v) {
        return Err(WalkError::Wait {
            reason: "PicWish says the account's credits are used up".into(),
            retry_in: std::time::Duration::from_secs(900),
        });
    }
    if resp.status != 200 {
        let (reason, permanent) = http_failure(resp.status, &v);
        return Ok(Step::Failed { reason, permanent });
    }
    let data = &v["data"];
    let Some(state) = data["state"].as_i64() else {
        return Err(WalkError::Api(crate::pacing::ApiError::Transport {
            reason: "PicWish answered the task query without a state".into(),
            transient: true,
        }));
    };
    let detail = data["state_detail"].as_str().unwrap_or("");
    on_state(
        task,
        state,
        detail,
        || match url_of(&data["image"]) {
            Some(image) => {
                Ok(products(task, &format!("res|api|{path}|{id}"), &image, url_of(&data["mask"]).as_deref()))
            }
            None => Ok(Step::Failed {
                reason: format!("PicWish's task {id} is done but has no image URL"),
                permanent: false,
            }),
        },
        "create",
    )
}
