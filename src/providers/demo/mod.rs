//! `demo.gallery`: the listing that `spoolfetch demo` runs, and the
//! smallest complete example of a provider.
//!
//! It walks a paginated JSON API on a loopback server (the demo's own,
//! `GET <api>/api/gallery?page=N` → `{"files": [{"name", "url", "size",
//! "md5", "urls"}], "next": N+1 | null, "total": n}`; `urls` are optional
//! further candidates), so the demo's API calls go
//! through a pacing thread like any provider's, one at a time and
//! `interval_ms` apart, and a 429 there slows the listing down. Like every
//! provider it only describes work: each page becomes items with the
//! expected size and MD5, and the kernel fetches and verifies them. With
//! `refresh = true` it is also the example of a walk that gives fresh URLs
//! (`GET <api>/api/refresh?name=NAME` → `{"urls": [...]}`, 404: none) for a
//! file whose every URL expired.
//!
//! `demo.tasks` is the smallest remote-task provider (see `tasks`): each
//! input becomes a task on a loopback task service that is created once,
//! polled until done, and whose result file is then downloaded.
//!
//! Only loopback URLs are accepted: these job types exist for the demo and
//! as templates for new providers, not to crawl the web.

mod tasks;

use std::time::Duration;

use serde_json::{Map, Value};

use crate::checkpoint::{Fetch, Item, Stream, StreamProtocol, Work};
use crate::job::{JobSpec, RejectReason};
use crate::naming::sanitize_component;
use crate::pacing::{ApiRequest, default_classify};
use crate::providers::{
    AccountSpec, Api, JobTypeInfo, PacingSpec, Page, ParamInfo, ParamKind, PlanContext, Provider, Walk,
    WalkError, validate,
};
use crate::steps::TaskRunner;

/// The provider.
#[derive(Debug)]
pub struct Demo;

/// Its job types.
static TYPES: &[JobTypeInfo] = &[
    JobTypeInfo {
        name: "demo.gallery",
        summary: "the demo's paced listing: a paginated JSON gallery on a loopback server",
        params: &[
            ParamInfo::new(
                "api",
                ParamKind::String,
                "base URL of the gallery API, http://127.0.0.1:PORT (loopback only)",
            )
            .required()
            .expect("the gallery's base URL, http://127.0.0.1:PORT"),
            ParamInfo::new(
                "refresh",
                ParamKind::Bool,
                "when every URL of a file expired (403, 404, 410), ask GET <api>/api/refresh?name=NAME for fresh ones",
            ),
        ],
        shared: &[],
    },
    JobTypeInfo {
        name: "demo.tasks",
        summary: "the demo's remote tasks: one task per input on a loopback task service, created once, polled, its result saved",
        params: &[
            ParamInfo::new(
                "api",
                ParamKind::String,
                "base URL of the task service, http://127.0.0.1:PORT (loopback only)",
            )
            .required()
            .expect("the task service's base URL, http://127.0.0.1:PORT"),
            ParamInfo::new(
                "inputs",
                ParamKind::List,
                "names of the inputs, one task each; the result is saved as <name>.out",
            )
            .required(),
        ],
        shared: &[],
    },
    JobTypeInfo {
        name: "demo.live",
        summary: "the demo's live recording: an HLS playlist or FLV stream on a loopback server, recorded until it ends",
        params: &[
            ParamInfo::new(
                "url",
                ParamKind::String,
                "the playlist (HLS) or stream (FLV), http://127.0.0.1:PORT/… (loopback only)",
            )
            .required(),
            ParamInfo::new(
                "protocol",
                ParamKind::Choice(&["hls", "flv"]),
                "how the stream is delivered (default hls)",
            ),
            ParamInfo::new(
                "max_duration_s",
                ParamKind::Integer { min: 1, max: 7 * 86_400 },
                "stop after this many seconds (default: when the stream ends)",
            ),
            ParamInfo::new(
                "refresh",
                ParamKind::String,
                "where to ask for a fresh stream URL when the old one expires (403): answers {\"url\"} or {\"over\": true}",
            ),
        ],
        shared: &[],
    },
];

impl Provider for Demo {
    fn name(&self) -> &'static str {
        "demo"
    }

    fn job_types(&self) -> &'static [JobTypeInfo] {
        TYPES
    }

    fn task_runners(&self) -> &'static [&'static dyn TaskRunner] {
        &[&tasks::DemoTask]
    }

    fn plan(&self, job: &JobSpec, _cx: &PlanContext<'_>) -> Result<Box<dyn Walk>, RejectReason> {
        if job.job_type == TYPES[2].name {
            let params = validate(&TYPES[2], &job.params)?;
            let url = params.str("url").unwrap_or_default();
            loopback(&url, TYPES[2].name)?;
            let protocol = match params.str("protocol").as_deref() {
                Some("flv") => StreamProtocol::Flv,
                _ => StreamProtocol::Hls,
            };
            let stream = Stream { url, protocol, max_secs: params.u64("max_duration_s"), max_bytes: None };
            let refresh = params.str("refresh").map(|r| loopback(&r, TYPES[2].name)).transpose()?;
            return Ok(Box::new(LiveWalk { stream, refresh }));
        }
        if job.job_type == TYPES[1].name {
            let params = validate(&TYPES[1], &job.params)?;
            let api = loopback(&params.str("api").unwrap_or_default(), TYPES[1].name)?;
            return Ok(Box::new(tasks::TasksWalk::new(api, params.list("inputs").unwrap_or_default())));
        }
        let api = parse_params(&job.params)?;
        // `validate` checked the key's type already.
        let refresh = job.params.get("refresh").and_then(Value::as_bool).unwrap_or(false);
        Ok(Box::new(GalleryWalk { api, refresh }))
    }
}

/// Checks the parameters; returns the API's base URL without a trailing
/// slash.
fn parse_params(params: &Map<String, Value>) -> Result<String, RejectReason> {
    loopback(&validate(&TYPES[0], params)?.str("api").unwrap_or_default(), TYPES[0].name)
}

/// `api` without a trailing slash, if it is a loopback URL.
fn loopback(api: &str, job_type: &str) -> Result<String, RejectReason> {
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
    if !loopback.iter().any(|p| api.starts_with(p)) {
        return Err(RejectReason(format!(
            "key `api`: {job_type} only talks to loopback servers (http://127.0.0.1:PORT)"
        )));
    }
    Ok(api.trim_end_matches('/').to_string())
}

/// The listing of `demo.live`: one stream item, no API calls.
#[derive(Debug)]
struct LiveWalk {
    /// The stream.
    stream: Stream,
    /// Where a fresh stream URL is asked for.
    refresh: Option<String>,
}

impl Walk for LiveWalk {
    fn account(&self) -> Option<AccountSpec> {
        let r = self.refresh.as_ref()?;
        Some(AccountSpec::new(
            format!("demo:{r}"),
            default_classify,
            PacingSpec::polite(Duration::from_secs(1)),
        ))
    }

    fn refreshes(&self) -> bool {
        self.refresh.is_some()
    }

    fn refresh(&mut self, _item: &Item, api: &Api) -> Result<Option<Vec<String>>, WalkError> {
        let Some(r) = &self.refresh else { return Ok(None) };
        let resp = api.call(ApiRequest::get(r.clone()))?;
        if resp.status == 404 {
            return Ok(None);
        }
        let body: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| WalkError::Invalid(format!("the stream's refresh sent invalid JSON: {e}")))?;
        if body["over"].as_bool() == Some(true) {
            return Ok(None);
        }
        Ok(body["url"].as_str().map(|u| vec![u.to_string()]))
    }

    fn next_page(&mut self, _cursor: Option<&Value>, _api: &Api) -> Result<Page, WalkError> {
        let file = match self.stream.protocol {
            StreamProtocol::Hls => "live.ts",
            StreamProtocol::Flv => "live.flv",
        };
        let item = Item::stream(format!("live:{}", self.stream.url), file, self.stream.clone());
        Ok(Page { items: vec![item], total: Some(1), ..Page::default() })
    }
}

/// The walk: one API call a page; the cursor is the page number.
#[derive(Debug)]
struct GalleryWalk {
    /// The API's base URL, without a trailing slash.
    api: String,
    /// The job asked for fresh URLs of expired files.
    refresh: bool,
}

impl Walk for GalleryWalk {
    fn account(&self) -> Option<AccountSpec> {
        Some(AccountSpec::new(
            format!("demo:{}", self.api),
            default_classify,
            PacingSpec::polite(Duration::from_secs(1)),
        ))
    }

    fn next_page(&mut self, cursor: Option<&Value>, api: &Api) -> Result<Page, WalkError> {
        let page = cursor.and_then(Value::as_u64).unwrap_or(1);
        let resp = api.call(ApiRequest::get(format!("{}/api/gallery?page={page}", self.api)))?;
        if !resp.is_success() {
            return Err(WalkError::Invalid(format!("the gallery API answered HTTP {}", resp.status)));
        }
        let body: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| WalkError::Invalid(format!("the gallery API sent invalid JSON: {e}")))?;
        let files = body["files"]
            .as_array()
            .ok_or_else(|| WalkError::Invalid("the gallery API's answer has no `files` list".into()))?;
        let mut items = Vec::with_capacity(files.len());
        for f in files {
            let (Some(name), Some(url)) = (f["name"].as_str(), f["url"].as_str()) else {
                return Err(WalkError::Invalid("a gallery file lacks `name` or `url`".into()));
            };
            let also = f["urls"].as_array().map_or_else(Vec::new, |u| strings(u));
            items.push(Item::with(
                format!("demo:{name}"),
                sanitize_component(name, "file"),
                Work::Fetch(Fetch {
                    url: url.to_string(),
                    also,
                    size: f["size"].as_u64(),
                    md5: f["md5"].as_str().map(str::to_ascii_lowercase),
                    ..Fetch::default()
                }),
            ));
        }
        Ok(Page {
            items,
            next: body["next"].as_u64().map(Value::from),
            total: body["total"].as_u64(),
            records: None,
        })
    }

    fn refreshes(&self) -> bool {
        self.refresh
    }

    fn refresh(&mut self, item: &Item, api: &Api) -> Result<Option<Vec<String>>, WalkError> {
        let Some(name) = item.key.strip_prefix("demo:") else { return Ok(None) };
        let query = crate::http::encode_query(&[("name".into(), name.into())]);
        let resp = api.call(ApiRequest::get(format!("{}/api/refresh?{query}", self.api)))?;
        if resp.status == 404 {
            return Ok(None);
        }
        if !resp.is_success() {
            return Err(WalkError::Invalid(format!("the gallery's refresh answered HTTP {}", resp.status)));
        }
        let body: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| WalkError::Invalid(format!("the gallery's refresh sent invalid JSON: {e}")))?;
        Ok(body["urls"].as_array().map(|u| strings(u)).filter(|u| !u.is_empty()))
    }
}

/// The strings of a JSON array; anything else in it is left out.
fn strings(values: &[Value]) -> Vec<String> {
    values.iter().filter_map(Value::as_str).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_loopback_apis_are_accepted() {
        let p = |v: Value| match v {
            Value::Object(m) => parse_params(&m),
            _ => unreachable!("objects only"),
        };
        assert_eq!(p(json!({"api": "http://127.0.0.1:8080/"})).expect("loopback"), "http://127.0.0.1:8080");
        for (bad, want) in [
            (json!({"api": "https://example.com"}), "loopback"),
            (json!({}), "must be"),
            (json!({"api": "http://127.0.0.1:1", "x": 1}), "unknown key `x`"),
        ] {
            assert!(p(bad.clone()).expect_err("rejected").0.contains(want), "{bad}");
        }
    }
}
