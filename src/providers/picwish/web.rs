//! `picwish.web`: one input through the web flow (docs/picwish.md): the
//! gateway, an upload to PicWish's Alibaba OSS bucket, the task, and the
//! watermark-free result.
//!
//! Owns the web token (the one `spoolfetch picwish login` stored, else an
//! anonymous one minted once per state folder) and the upload. The state
//! machine: nothing → uploaded (the resource id; uploads cost nothing, so
//! they are not intents) → intent to create → the task id → polled until
//! done → the `image-url` result (never the poll's watermarked preview).
//! A refused stored login parks the job until a new login; a refused
//! anonymous token is replaced once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::answer::{body, http_failure, out_of_credits};
use super::oss::{Grant, error_code};
use super::provider::MAX_INPUT_BYTES;
use super::settings::{Settings, anonymous_file, login_file};
use super::tasks::{WEB_RUNNER, create, gone, on_state, products, too_early, url_of};
use crate::inputs::{LocalInput, sniff_file, stage_url};
use crate::pacing::{ApiError, ApiRequest, ApiResponse, Body};
use crate::providers::{Api, WalkError};
use crate::session::Exchange;
use crate::steps::{Step, TaskRunner, TaskView};

/// The product id every gateway call names.
const PRODUCT: &str = "product_id=482&language=en";

/// The web flow's runner.
#[derive(Debug)]
pub struct WebTask;

/// The token a gateway call carries, and where it came from.
struct Token {
    /// The bearer token (never logged).
    value: String,
    /// From `spoolfetch picwish login` (else anonymous).
    login: bool,
}

/// The web token for the state folder `dir`: the stored login, else the
/// anonymous token, minted on first use.
fn token(dir: &Path) -> Result<Token, WalkError> {
    let read = |p: &Path, field: &str| -> Option<String> {
        let bytes = crate::durable::open_regular_nofollow(p).ok().and_then(|mut f| {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut b).ok().map(|_| b)
        })?;
        serde_json::from_slice::<Value>(&bytes).ok()?[field]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    if let Some(t) = read(&login_file(dir), "api_token") {
        return Ok(Token { value: t, login: true });
    }
    if let Some(t) = read(&anonymous_file(dir), "token") {
        return Ok(Token { value: t, login: false });
    }
    mint(dir).map(|value| Token { value, login: false })
}

/// A new anonymous token, `v2,<8 digits>,482,<32 hex>` as the web page
/// makes them, kept (0600) for every later job.
fn mint(dir: &Path) -> Result<String, WalkError> {
    let digits: String = (0..8).map(|_| char::from(b'0' + fastrand::u8(0..10))).collect();
    let hex: String = (0..16).map(|_| format!("{:02x}", fastrand::u8(..))).collect();
    let t = format!("v2,{digits},482,{hex}");
    let rec = json!({"token": t, "made": crate::job::unix_now()});
    std::fs::create_dir_all(dir)
        .map_err(|e| WalkError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
    crate::durable::atomic_write(&anonymous_file(dir), rec.to_string().as_bytes())
        .map_err(|e| WalkError::Invalid(format!("cannot save the anonymous PicWish token: {e}")))?;
    Ok(t)
}

/// What a refused token means: a stored login waits for a new one; an
/// anonymous token is replaced, unless the one refused was just made.
fn refused(dir: &Path, t: &Token) -> WalkError {
    if t.login {
        return WalkError::Wait {
            reason: "PicWish refused the stored web login; run `spoolfetch picwish login`".into(),
            retry_in: Duration::from_secs(300),
        };
    }
    let fresh = std::fs::metadata(anonymous_file(dir))
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|e| e < Duration::from_secs(60)));
    if fresh {
        return WalkError::Wait {
            reason: "PicWish refuses anonymous tokens; log in with `spoolfetch picwish login`".into(),
            retry_in: Duration::from_secs(600),
        };
    }
    match mint(dir) {
        Ok(_) => WalkError::Api(ApiError::Transport {
            reason: "PicWish refused the anonymous token; a new one was made".into(),
            transient: true,
        }),
        Err(e) => e,
    }
}

/// A gateway URL: `<web>/app/picwish/<path>` with the product query.
fn gateway_url(web: &str, path: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{web}/app/picwish/{path}{sep}{PRODUCT}")
}

/// A gateway call with the token; a 401 becomes [`refused`].
fn gateway(
    api: &Api,
    web: &str,
    dir: &Path,
    req: impl Fn(String) -> ApiRequest,
    path: &str,
) -> Result<ApiResponse, WalkError> {
    let t = token(dir)?;
    let resp =
        api.call(req(gateway_url(web, path)).header("Authorization", format!("Bearer {}", t.value)))?;
    let v = body(&resp);
    if resp.status == 401 || v["status"].as_i64() == Some(401) {
        return Err(refused(dir, &t));
    }
    Ok(resp)
}

/// A GET on the gateway with the configuration's origin and token (fresh
/// result URLs).
pub(super) fn gateway_get(api: &Api, s: &Settings, path: &str) -> Result<ApiResponse, WalkError> {
    gateway(api, &s.web_url, &s.state_dir, ApiRequest::get, path)
}

impl TaskRunner for WebTask {
    fn name(&self) -> &'static str {
        WEB_RUNNER
    }

    fn step(&self, task: &TaskView<'_>, api: &Api) -> Result<Step, WalkError> {
        let input = task.input;
        let (Some(web), Some(route)) = (input["web"].as_str(), input["route"].as_str()) else {
            return Ok(Step::Failed {
                reason: "the task's input is incomplete (a broken checkpoint)".into(),
                permanent: true,
            });
        };
        let dir = PathBuf::from(input["state"].as_str().unwrap_or("."));
        let st = task.state;
        match (st["s"].as_str(), st["task"].as_str(), st["rid"].as_str()) {
            (Some("task"), Some(id), _) => match too_early(st) {
                Some(wait) => Ok(wait),
                None => poll(task, api, web, &dir, route, id),
            },
            (Some("uploaded" | "create"), _, Some(rid)) => {
                let mut payload = json!({"website": "en", "source_resource_id": rid});
                match input["op"].as_str() {
                    Some("remove_background") => payload["output_type"] = json!(1),
                    Some("enhance") => {
                        let face = input["fields"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|f| f[0] == "type" && f[1] == "face");
                        payload["type"] = json!(if face { 2 } else { 1 });
                    }
                    _ => {}
                }
                create(task, || {
                    let t = token(&dir)
                        .map_err(|e| ApiError::Transport { reason: e.to_string(), transient: false })?;
                    let req = ApiRequest::new("POST", gateway_url(web, route))
                        .header("Content-Type", "application/json")
                        .header("Authorization", format!("Bearer {}", t.value))
                        .with_body(Body::Bytes(payload.to_string().into_bytes()));
                    let resp = api.call(req)?;
                    if resp.status == 401 {
                        // Nothing was created with a refused token.
                        let _ = refused(&dir, &t);
                        return Err(ApiError::Transport {
                            reason: "PicWish refused the web token".into(),
                            transient: true,
                        });
                    }
                    Ok(resp)
                })
            }
            _ => upload(task, api, web, &dir),
        }
    }
}

/// The local file to upload: the input itself, or a URL input fetched
/// into the job's scratch folder first.
fn local_file(task: &TaskView<'_>) -> Result<(PathBuf, u64, String, String), Step> {
    let src = &task.input["src"];
    let fail = |reason: String| Step::Failed { reason, permanent: true };
    if let Some(url) = src["url"].as_str() {
        let staged: LocalInput =
            stage_url(task.agent, url, task.scratch, MAX_INPUT_BYTES, Duration::from_secs(120))
                .map_err(|e| fail(e.to_string()))?;
        let mut f = staged.open().map_err(|e| fail(e.to_string()))?;
        let info = sniff_file(&mut f, staged.len).map_err(|e| fail(format!("{url}: {e}")))?;
        let name = format!("image.{}", info.kind.ext());
        return Ok((staged.path, staged.len, info.kind.mime().to_string(), name));
    }
    match (src["path"].as_str(), src["len"].as_u64()) {
        (Some(p), Some(len)) => Ok((
            PathBuf::from(p),
            len,
            src["mime"].as_str().unwrap_or("application/octet-stream").to_string(),
            src["name"].as_str().unwrap_or("image").to_string(),
        )),
        _ => Err(fail("the task's input names no file (a broken checkpoint)".into())),
    }
}

/// Authorizes an upload and PUTs the file; the resource id comes back in
/// the bucket's callback answer.
fn upload(task: &TaskView<'_>, api: &Api, web: &str, dir: &Path) -> Result<Step, WalkError> {
    let (path, len, mime, name) = match local_file(task) {
        Ok(x) => x,
        Err(step) => return Ok(step),
    };
    let oss = task.input["oss"].as_str();
    for attempt in 0..2 {
        let filenames = json!({"filenames": [name]}).to_string();
        let auth = gateway(
            api,
            web,
            dir,
            |u| {
                ApiRequest::new("POST", u)
                    .header("Content-Type", "application/json")
                    .with_body(Body::Bytes(filenames.clone().into_bytes()))
            },
            "authorizations/oss",
        )?;
        let v = body(&auth);
        if auth.status != 200 || v["status"].as_i64().is_some_and(|s| s != 200 && s != 0) {
            let (reason, permanent) = http_failure(
                auth.status.max(v["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(0)),
                &v,
            );
            return Ok(Step::Failed { reason: format!("upload authorization: {reason}"), permanent });
        }
        let Some(grant) = Grant::from_answer(&v["data"], &name) else {
            return Err(WalkError::Api(ApiError::Transport {
                reason: "PicWish's upload authorization lacks a bucket, key or credential".into(),
                transient: true,
            }));
        };
        let put = api.call(grant.upload(oss, Body::File { path: path.clone(), len }, &mime))?;
        match put.status {
            200 => {
                let v = body(&put);
                return match v["data"]["resource_id"].as_str().filter(|r| !r.is_empty()) {
                    Some(rid) => Ok(Step::Next {
                        state: super::tasks::state_with(task.state, "uploaded", json!({"rid": rid})),
                        phase: "uploaded".into(),
                    }),
                    None => Err(WalkError::Api(ApiError::Transport {
                        reason: "PicWish's storage answered the upload without a resource id".into(),
                        transient: true,
                    })),
                };
            }
            203 => {
                return Err(WalkError::Api(ApiError::Transport {
                    reason:
                        "PicWish's storage kept the file but its callback failed (HTTP 203 CallbackFailed)"
                            .into(),
                    transient: true,
                }));
            }
            403 if attempt == 0
                && error_code(&put.body).is_some_and(|c| {
                    ["SecurityTokenExpired", "InvalidAccessKeyId", "RequestTimeTooSkewed"]
                        .contains(&c.as_str())
                }) =>
            {
                log::info!(
                    "picwish: item {}: the upload grant is no longer good; authorizing again",
                    task.item
                );
            }
            s => {
                let code = error_code(&put.body).unwrap_or_else(|| format!("HTTP {s}"));
                return Err(WalkError::Api(ApiError::Transport {
                    reason: format!("PicWish's storage refused the upload ({code})"),
                    transient: s >= 500 || s == 403,
                }));
            }
        }
    }
    Err(WalkError::Api(ApiError::Transport {
        reason: "PicWish's storage refused two fresh upload grants".into(),
        transient: true,
    }))
}

/// One look at the web task `id`.
fn poll(
    task: &TaskView<'_>,
    api: &Api,
    web: &str,
    dir: &Path,
    route: &str,
    id: &str,
) -> Result<Step, WalkError> {
    let resp = gateway(api, web, dir, ApiRequest::get, &format!("{route}/{}", crate::http::form_encode(id)))?;
    if resp.status == 404 {
        return Ok(gone(task, "upload"));
    }
    let v = body(&resp);
    if out_of_credits(&resp, &v) {
        return Err(WalkError::Wait {
            reason: "PicWish says the account's credits are used up".into(),
            retry_in: Duration::from_secs(900),
        });
    }
    let data = &v["data"];
    let top = v["status"].as_i64().unwrap_or(i64::from(resp.status));
    // A failed task answers HTTP 200 with a negative `status`; the data
    // may carry the state too.
    let state = match data["state"].as_i64() {
        Some(s) if s < 0 => s,
        _ if top < 0 => top,
        _ if resp.status != 200 || (top != 200 && top != 0) => {
            let (reason, permanent) = http_failure(u16::try_from(top).unwrap_or(resp.status), &v);
            return Ok(Step::Failed { reason, permanent });
        }
        _ if data["progress"].as_i64() == Some(100) || url_of(&data["image"]).is_some() => 1,
        _ => 4,
    };
    let free = task.input["free"].as_str();
    let tag = format!("res|web|{route}|{}|{id}", free.unwrap_or("-"));
    on_state(
        task,
        state,
        data["state_detail"].as_str().unwrap_or(""),
        || {
            let Some(kind) = free else {
                return Ok(match url_of(&data["image"]) {
                    Some(image) => products(task, &tag, &image, None),
                    None => Step::Failed {
                        reason: format!("PicWish's task {id} is done but has no image"),
                        permanent: false,
                    },
                });
            };
            // The poll's image is the watermarked preview; the result
            // is asked for by its own call.
            let path =
                format!("tasks/login/image-url/{kind}/{}?pic_quality=free", crate::http::form_encode(id));
            let r = gateway(api, web, dir, ApiRequest::get, &path)?;
            let v = body(&r);
            Ok(match url_of(&v["data"]["image"]) {
                Some(image) => products(task, &tag, &image, url_of(&v["data"]["mask"]).as_deref()),
                None => Step::Failed {
                    reason: format!("PicWish gave no watermark-free result for task {id}"),
                    permanent: false,
                },
            })
        },
        "create",
    )
}

/// Logs in through the passport with a phone number and password and
/// stores the token (0600) in `state_dir`; returns the file.
pub fn login(
    ex: &dyn Exchange,
    web_url: &str,
    phone: &str,
    country_code: &str,
    password: &str,
    state_dir: &Path,
) -> Result<PathBuf, String> {
    let form = [
        ("brand_id", "29"),
        ("product_id", "482"),
        ("language", "en"),
        ("type", "2"),
        ("platform", "web"),
        ("telephone", phone),
        ("country_code", country_code),
        ("password", password),
    ];
    let resp = ex
        .exchange(ApiRequest::post_form(format!("{web_url}/base/passport/v1/api/login"), &form))
        .map_err(|e| format!("cannot reach PicWish's login: {e}"))?;
    let v = body(&resp);
    let token = v["data"]["api_token"].as_str().filter(|t| !t.is_empty());
    match (resp.status, v["status"].as_i64(), token) {
        (200, Some(200) | None, Some(t)) => {
            let rec =
                json!({"api_token": t, "user_id": v["data"]["user_id"], "saved": crate::job::unix_now()});
            std::fs::create_dir_all(state_dir)
                .map_err(|e| format!("cannot create {}: {e}", state_dir.display()))?;
            let file = login_file(state_dir);
            crate::durable::atomic_write(&file, rec.to_string().as_bytes())
                .map_err(|e| format!("cannot save {}: {e}", file.display()))?;
            Ok(file)
        }
        (s, code, _) => Err(format!(
            "PicWish refused the login (HTTP {s}, status {}){}",
            code.map_or_else(|| "none".into(), |c| c.to_string()),
            super::answer::message(&v)
        )),
    }
}
