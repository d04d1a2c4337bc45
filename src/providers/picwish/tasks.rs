//! The parts of a PicWish task's state machine both interfaces share:
//! the create that costs, the reading of a task's state, the files a
//! finished task produces, and fresh result URLs.
//!
//! Owns the never-pay-twice rule. A create is announced (journaled as an
//! intent) before it is sent; a create whose outcome is unknown (its
//! answer was lost, or the process died between the intent and the
//! answer) is sent again at most once, as a [`Step::Resend`] that status
//! counts as a possible extra charge, and a second unknown fails the
//! input. PicWish has no way to list the tasks a key made, so a lost
//! answer cannot be looked up; the task id, once known, is journaled
//! before the first poll, so a restart polls the task it has.

use std::time::Duration;

use serde_json::{Value, json};

use super::answer::{TaskState, body, http_failure, out_of_credits, task_state};
use crate::checkpoint::Item;
use crate::pacing::{ApiError, ApiRequest, ApiResponse};
use crate::providers::{Api, WalkError};
use crate::steps::{Product, Step, TaskView};

pub(super) use super::api::ApiTask;
pub(super) use super::web::WebTask;

/// The official API's runner name.
pub const API_RUNNER: &str = "picwish.api";
/// The web flow's runner name.
pub const WEB_RUNNER: &str = "picwish.web";

/// When a new task is first looked at: PicWish needs a second or more
/// for any image, and every look spends the key's budget of 2 requests
/// per second, which the creates need too.
const FIRST_LOOK: Duration = Duration::from_secs(2);
/// The shortest and longest gap between looks at a task still working.
const POLL_MIN: Duration = Duration::from_secs(1);
/// See [`POLL_MIN`].
const POLL_MAX: Duration = Duration::from_secs(5);
/// New tasks after a failure a new task may fix (`-1`, `-2`, `-8`).
const RETRIES: u64 = 2;
/// A task still not finished after this long is given up: PicWish keeps
/// tasks about an hour.
const LIFETIME_SECS: u64 = 3600;
/// How long a job waits when the account's credits are used up before it
/// tries again.
const CREDITS_WAIT: Duration = Duration::from_secs(15 * 60);

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How long the task of `st` has existed.
fn age(st: &Value) -> Duration {
    Duration::from_millis(now_ms().saturating_sub(st["at_ms"].as_u64().unwrap_or(0)))
}

/// A step that waits instead of looking, while the task is younger than
/// [`FIRST_LOOK`]: no call is made.
pub(super) fn too_early(st: &Value) -> Option<Step> {
    let age = age(st);
    (st["at_ms"].as_u64().is_some() && age < FIRST_LOOK)
        .then(|| Step::Poll { after: FIRST_LOOK - age, phase: "processing".into() })
}

/// The gap before the next look at a task still working: a third of its
/// age, from one to five seconds, so a slow task costs few looks.
fn next_look(st: &Value) -> Duration {
    (age(st) / 3).clamp(POLL_MIN, POLL_MAX)
}

/// The state with `s` set to `what`, keeping the counters.
pub(super) fn state_with(old: &Value, what: &str, extra: Value) -> Value {
    let mut st = json!({"s": what});
    for k in ["retry", "gone", "rid"] {
        if !old[k].is_null() {
            st[k] = old[k].clone();
        }
    }
    if let (Some(m), Some(e)) = (st.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    st
}

/// The create step. `send` makes the call (once); `id_of` reads the task
/// id from a successful answer's JSON.
pub(super) fn create(
    task: &TaskView<'_>,
    send: impl FnOnce() -> Result<ApiResponse, ApiError>,
) -> Result<Step, WalkError> {
    let st = task.state;
    if !task.intent {
        // The create costs: announce it, so that a crash after it is
        // known to the next run.
        return Ok(Step::Intent { state: state_with(st, "create", json!({})), phase: "create".into() });
    }
    let resent = st["resent"].as_bool() == Some(true);
    let unknown = |why: &str| -> Step {
        if resent {
            Step::Failed {
                reason: format!(
                    "{why}, and the create was sent twice already; not sending it a third time (PicWish may have charged for it)"
                ),
                permanent: true,
            }
        } else {
            Step::Resend { state: state_with(st, "create", json!({"resent": true})), phase: "create".into() }
        }
    };
    if task.resumed {
        // PicWish cannot list a key's tasks: whether the create arrived
        // is unknowable, so it is sent once more and counted.
        return Ok(unknown("the previous run stopped before PicWish's answer to the create"));
    }
    match send() {
        Ok(resp) => {
            let v = body(&resp);
            if out_of_credits(&resp, &v) {
                return Err(WalkError::Wait {
                    reason: "PicWish says the account's credits are used up".into(),
                    retry_in: CREDITS_WAIT,
                });
            }
            let top = v["status"].as_i64().unwrap_or(i64::from(resp.status));
            match (resp.status, top, v["data"]["task_id"].as_str()) {
                (200, 200 | 0, Some(id)) if !id.is_empty() => Ok(Step::Next {
                    state: state_with(
                        st,
                        "task",
                        json!({"task": id, "at": crate::job::unix_now(), "at_ms": now_ms()}),
                    ),
                    phase: "processing".into(),
                }),
                (200, 200 | 0, _) => Ok(unknown("PicWish answered the create without a task id")),
                (200, code, _) => {
                    let (reason, permanent) = http_failure(u16::try_from(code).unwrap_or(500), &v);
                    Ok(Step::Failed { reason, permanent })
                }
                (status, _, _) => {
                    let (reason, permanent) = http_failure(status, &v);
                    Ok(Step::Failed { reason, permanent })
                }
            }
        }
        Err(ApiError::OutcomeUnknown { reason }) => {
            log::warn!("picwish: item {}: the create's answer was lost ({reason})", task.item);
            Ok(unknown(&format!("the create's answer was lost ({reason})")))
        }
        Err(e) => Err(WalkError::Api(e)),
    }
}

/// What a look at the task found, as a step: `result` gives the files
/// (image URL, mask URL) once the task is done.
pub(super) fn on_state(
    task: &TaskView<'_>,
    state: i64,
    detail: &str,
    result: impl FnOnce() -> Result<Step, WalkError>,
    again: &str,
) -> Result<Step, WalkError> {
    let st = task.state;
    match task_state(state, detail) {
        TaskState::Done => result(),
        TaskState::Working => {
            let age = crate::job::unix_now().saturating_sub(st["at"].as_u64().unwrap_or(0));
            if st["at"].as_u64().is_some() && age > LIFETIME_SECS {
                return Ok(Step::Failed {
                    reason: format!("PicWish's task is still not finished after {} minutes", age / 60),
                    permanent: false,
                });
            }
            Ok(Step::Poll { after: next_look(st), phase: "processing".into() })
        }
        TaskState::Retryable(reason) => {
            let n = st["retry"].as_u64().unwrap_or(0);
            if n >= RETRIES {
                return Ok(Step::Failed {
                    reason: format!("{reason}; gave up after {} tasks", n + 1),
                    permanent: false,
                });
            }
            log::warn!("picwish: item {}: {reason}; trying a new task ({} of {RETRIES})", task.item, n + 1);
            let next = state_with(st, again, json!({"retry": n + 1}));
            Ok(if again == "create" {
                Step::Intent { state: next, phase: "create".into() }
            } else {
                Step::Next { state: next, phase: "upload".into() }
            })
        }
        TaskState::Failed(reason) => Ok(Step::Failed { reason, permanent: true }),
    }
}

/// A task PicWish no longer knows (it keeps them about an hour): the
/// input is processed again, once, with a warning.
pub(super) fn gone(task: &TaskView<'_>, again: &str) -> Step {
    let st = task.state;
    if st["gone"].as_u64().unwrap_or(0) >= 1 {
        return Step::Failed {
            reason: "PicWish lost the task twice (HTTP 404); the input was not processed".into(),
            permanent: false,
        };
    }
    log::warn!(
        "picwish: item {}: PicWish no longer knows task {} (it keeps tasks about an hour); processing the input again",
        task.item,
        st["task"].as_str().unwrap_or("?")
    );
    let next = state_with(st, again, json!({"gone": 1, "resent": null}));
    if again == "create" {
        Step::Intent { state: next, phase: "create".into() }
    } else {
        Step::Next { state: next, phase: "upload".into() }
    }
}

/// The files a finished task produced: its image to every destination
/// of the input (the first carries the content-archive key), and its mask
/// beside each when asked for. `tag` names the task for
/// [`fresh_result`].
pub(super) fn products(task: &TaskView<'_>, tag: &str, image: &str, mask: Option<&str>) -> Step {
    let input = task.input;
    let key = input["key"].as_str().map(str::to_string);
    let mut out = Vec::new();
    for (n, path) in input["outs"].as_array().into_iter().flatten().filter_map(Value::as_str).enumerate() {
        let it = Item::fetch(format!("{tag}|image|{n}"), image, path);
        out.push(Product(if n == 0 { it.archived(key.clone()) } else { it }));
    }
    let masks: Vec<&str> =
        input["masks"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    match mask {
        Some(m) => {
            for (n, path) in masks.iter().enumerate() {
                out.push(Product(Item::fetch(format!("{tag}|mask|{n}"), m, *path)));
            }
        }
        None if !masks.is_empty() => {
            log::warn!(
                "picwish: item {}: the result has no mask although keep_mask asked for one",
                task.item
            );
        }
        None => {}
    }
    if out.is_empty() {
        return Step::Failed {
            reason: "the task has no destination (a broken checkpoint)".into(),
            permanent: true,
        };
    }
    Step::Done(out)
}

/// A result URL from an answer's `data`, refusing anything but http(s).
pub(super) fn url_of(v: &Value) -> Option<String> {
    v.as_str().filter(|u| u.starts_with("https://") || u.starts_with("http://")).map(str::to_string)
}

/// Fresh URLs for a result whose URL expired (PicWish signs them for
/// about an hour): the task is asked again.
pub fn fresh_result(
    item: &Item,
    api: &Api,
    settings: &super::settings::Settings,
) -> Result<Option<Vec<String>>, WalkError> {
    let parts: Vec<&str> = item.key.split('|').collect();
    let (url, which) = match parts.as_slice() {
        ["res", "api", path, id, which, _] => {
            let resp = api.call(ApiRequest::get(format!(
                "{}/api/tasks/visual/{path}/{}",
                settings.api_url,
                crate::http::form_encode(id)
            )))?;
            (resp, *which)
        }
        ["res", "web", route, free, id, which, _] => {
            let path = if *free == "-" {
                format!("{route}/{}", crate::http::form_encode(id))
            } else {
                format!("tasks/login/image-url/{free}/{}?pic_quality=free", crate::http::form_encode(id))
            };
            let resp = super::web::gateway_get(api, settings, &path)?;
            (resp, *which)
        }
        _ => return Ok(None),
    };
    if url.status == 404 {
        log::warn!("picwish: {}: the result expired and PicWish no longer has the task", item.path);
        return Ok(None);
    }
    let v = body(&url);
    Ok(url_of(&v["data"][which]).map(|u| vec![u]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn view<'a>(
        state: &'a Value,
        input: &'a Value,
        intent: bool,
        resumed: bool,
        agent: &'a ureq::Agent,
    ) -> TaskView<'a> {
        TaskView {
            job: 1,
            item: 7,
            path: "a.png",
            input,
            state,
            intent,
            resumed,
            scratch: Path::new("/nonexistent"),
            agent,
        }
    }

    fn ok(id: &str) -> Result<ApiResponse, ApiError> {
        Ok(ApiResponse {
            status: 200,
            body: json!({"status": 200, "data": {"task_id": id}}).to_string().into_bytes(),
            ..ApiResponse::default()
        })
    }

    #[test]
    fn a_create_is_announced_sent_once_and_resent_at_most_once() {
        let agent = ureq::Agent::new_with_defaults();
        let input = json!({"outs": ["a.png"]});
        let null = Value::Null;
        let s = create(&view(&null, &input, false, false, &agent), || panic!("not sent before the intent"));
        let Ok(Step::Intent { state, .. }) = s else { panic!("an intent: {s:?}") };
        let s = create(&view(&state, &input, true, false, &agent), || ok("t1"));
        let Ok(Step::Next { state: done, .. }) = s else { panic!("created: {s:?}") };
        assert_eq!(done["task"], "t1");
        // Lost answer: one resend, counted; the second loss fails the input.
        let lost = || Err(ApiError::OutcomeUnknown { reason: "connection reset".into() });
        let s = create(&view(&state, &input, true, false, &agent), lost);
        let Ok(Step::Resend { state: again, .. }) = s else { panic!("a resend: {s:?}") };
        let s = create(&view(&again, &input, true, false, &agent), lost);
        assert!(matches!(s, Ok(Step::Failed { permanent: true, .. })), "{s:?}");
        // A crash after the intent: the same rule, without a call.
        let s = create(&view(&state, &input, true, true, &agent), || panic!("not sent blind"));
        assert!(matches!(s, Ok(Step::Resend { .. })), "{s:?}");
        let s = create(&view(&again, &input, true, true, &agent), || panic!("not sent a third time"));
        assert!(matches!(s, Ok(Step::Failed { permanent: true, .. })), "{s:?}");
    }

    #[test]
    fn used_up_credits_park_the_job_and_refusals_fail_the_input() {
        let agent = ureq::Agent::new_with_defaults();
        let input = json!({"outs": ["a.png"]});
        let st = json!({"s": "create"});
        let answer = |status: u16, v: Value| {
            move || Ok(ApiResponse { status, body: v.to_string().into_bytes(), ..ApiResponse::default() })
        };
        let s = create(&view(&st, &input, true, false, &agent), answer(402, json!({"status": 402})));
        assert!(matches!(s, Err(WalkError::Wait { .. })), "{s:?}");
        let s = create(
            &view(&st, &input, true, false, &agent),
            answer(400, json!({"status": 400, "message": "bad"})),
        );
        assert!(matches!(s, Ok(Step::Failed { permanent: true, .. })), "{s:?}");
        let s = create(&view(&st, &input, true, false, &agent), answer(401, json!({"status": 401})));
        assert!(matches!(s, Ok(Step::Failed { permanent: false, .. })), "{s:?}");
    }

    #[test]
    fn products_go_to_every_destination_with_the_archive_key_on_the_first() {
        let agent = ureq::Agent::new_with_defaults();
        let input = json!({"outs": ["a.png", "copy/a.png"], "masks": ["a.mask.png"], "key": "picwish:x"});
        let st = Value::Null;
        let Step::Done(p) = products(
            &view(&st, &input, false, false, &agent),
            "res|api|segmentation|t1",
            "https://r/i",
            Some("https://r/m"),
        ) else {
            panic!("done")
        };
        let paths: Vec<&str> = p.iter().map(|p| p.0.path.as_str()).collect();
        assert_eq!(paths, ["a.png", "copy/a.png", "a.mask.png"]);
        assert_eq!(p[0].0.archive.as_deref(), Some("picwish:x"));
        assert_eq!(p[1].0.archive, None);
        assert_eq!(p[0].0.key, "res|api|segmentation|t1|image|0");
    }
}
