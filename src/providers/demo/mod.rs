//! `demo.gallery`: the listing that `spoolfetch demo` runs, and the
//! smallest complete example of a provider.
//!
//! It walks a paginated JSON API on a loopback server (the demo's own,
//! `GET <api>/api/gallery?page=N` → `{"files": [{"name", "url", "size",
//! "md5"}], "next": N+1 | null, "total": n}`), so the demo's API calls go
//! through a pacing thread like any provider's, one at a time and
//! `interval_ms` apart, and a 429 there slows the listing down. Like every
//! provider it only describes work: each page becomes items with the
//! expected size and MD5, and the kernel fetches and verifies them.
//!
//! Only loopback URLs are accepted: this job type exists for the demo and
//! as a template for new providers, not to crawl the web.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::checkpoint::{Fetch, Item, Work};
use crate::job::{JobSpec, RejectReason};
use crate::naming::sanitize_component;
use crate::pacing::{ApiRequest, default_classify};
use crate::providers::{
    AccountSpec, Api, JobTypeInfo, Page, ParamInfo, ParamKind, PlanContext, Provider, Walk, WalkError,
    validate,
};

/// The provider.
#[derive(Debug)]
pub struct Demo;

/// Its one job type.
static TYPES: &[JobTypeInfo] = &[JobTypeInfo {
    name: "demo.gallery",
    summary: "the demo's paced listing: a paginated JSON gallery on a loopback server",
    params: &[ParamInfo::new(
        "api",
        ParamKind::String,
        "base URL of the gallery API, http://127.0.0.1:PORT (loopback only)",
    )
    .required()
    .expect("the gallery's base URL, http://127.0.0.1:PORT")],
    shared: &[],
}];

impl Provider for Demo {
    fn name(&self) -> &'static str {
        "demo"
    }

    fn job_types(&self) -> &'static [JobTypeInfo] {
        TYPES
    }

    fn plan(&self, job: &JobSpec, _cx: &PlanContext<'_>) -> Result<Box<dyn Walk>, RejectReason> {
        Ok(Box::new(GalleryWalk { api: parse_params(&job.params)? }))
    }
}

/// Checks the parameters; returns the API's base URL without a trailing
/// slash.
fn parse_params(params: &Map<String, Value>) -> Result<String, RejectReason> {
    let api = validate(&TYPES[0], params)?.str("api").unwrap_or_default();
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
    if !loopback.iter().any(|p| api.starts_with(p)) {
        return Err(RejectReason(
            "key `api`: demo.gallery only talks to loopback servers (http://127.0.0.1:PORT)".into(),
        ));
    }
    Ok(api.trim_end_matches('/').to_string())
}

/// The walk: one API call a page; the cursor is the page number.
#[derive(Debug)]
struct GalleryWalk {
    /// The API's base URL.
    api: String,
}

impl Walk for GalleryWalk {
    fn account(&self) -> Option<AccountSpec> {
        Some(AccountSpec {
            key: format!("demo:{}", self.api),
            rate_limit_base: Duration::from_secs(1),
            classify: default_classify,
            bucket: None,
        })
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
            items.push(Item::with(
                format!("demo:{name}"),
                sanitize_component(name, "file"),
                Work::Fetch(Fetch {
                    url: url.to_string(),
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
