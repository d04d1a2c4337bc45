//! `http.files`: a plain list of http/https URLs.
//!
//! The generic job type of the kernel: no API, no account, one page with
//! every URL. Files are saved under `<save_path>/<name>/` by their URL
//! file names, sanitized; two URLs with the same file name get the item
//! index appended to the second, deterministically, so a restart names
//! them the same way.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::checkpoint::Item;
use crate::job::{JobSpec, RejectReason};
use crate::naming::{file_name_from_url, truncate_keeping_ext, MAX_COMPONENT_BYTES};
use crate::providers::{Api, JobTypeInfo, Page, ParamInfo, ParamKind, PlanContext, Provider, Walk, WalkError};

/// The provider.
#[derive(Debug)]
pub struct HttpFiles;

/// Its one job type.
static TYPES: &[JobTypeInfo] = &[JobTypeInfo {
    name: "http.files",
    summary: "download a list of http/https URLs",
    params: &[
        ParamInfo { name: "urls", kind: ParamKind::List, required: true, doc: "array of http:// or https:// URLs" },
        ParamInfo { name: "headers", kind: ParamKind::Object, required: false, doc: "object of extra request headers, sent with every URL" },
    ],
}];

impl Provider for HttpFiles {
    fn name(&self) -> &'static str {
        "http"
    }

    fn job_types(&self) -> &'static [JobTypeInfo] {
        TYPES
    }

    fn plan(&self, job: &JobSpec, _cx: &PlanContext<'_>) -> Result<Box<dyn Walk>, RejectReason> {
        let (urls, headers) = parse_params(&job.params)?;
        let items = items_for(urls);
        Ok(Box::new(FilesWalk { total: items.len() as u64, items: items.into(), headers }))
    }
}

/// Items per page: a 100,000-URL job is journaled in slices, so that no
/// single record (and its serialized copy) holds the whole list.
const PAGE_ITEMS: usize = 5000;

/// The walk: everything is known up front.
#[derive(Debug)]
struct FilesWalk {
    /// Items not handed out yet, in order.
    items: std::collections::VecDeque<Item>,
    /// How many items the job has.
    total: u64,
    /// Headers for every request.
    headers: Vec<(String, String)>,
}

impl Walk for FilesWalk {
    fn file_headers(&self) -> Vec<(String, String)> {
        self.headers.clone()
    }

    fn next_page(&mut self, cursor: Option<&Value>, _api: &Api) -> Result<Page, WalkError> {
        // The cursor is the index of the first item of the page; after a
        // restart the items before it are already journaled.
        let start = cursor.and_then(Value::as_u64).unwrap_or(0);
        let already = self.total - self.items.len() as u64;
        if start > already {
            let skip = usize::try_from(start - already).unwrap_or(usize::MAX).min(self.items.len());
            self.items.drain(..skip);
        }
        let n = PAGE_ITEMS.min(self.items.len());
        let items: Vec<Item> = self.items.drain(..n).collect();
        let next = (!self.items.is_empty()).then(|| Value::from(start.max(already) + n as u64));
        Ok(Page { total: Some(self.total), items, next, records: None })
    }
}

/// Builds the items, naming files after their URLs.
fn items_for(urls: Vec<String>) -> Vec<Item> {
    let mut used = HashSet::new();
    urls.into_iter()
        .enumerate()
        .map(|(i, url)| {
            let mut name = file_name_from_url(&url, &format!("file-{i}"));
            if !used.insert(name.clone()) {
                name = with_suffix(&name, i);
                used.insert(name.clone());
            }
            Item { url, path: name, ..Item::default() }
        })
        .collect()
}

/// `a.jpg` → `a-7.jpg`.
fn with_suffix(name: &str, i: usize) -> String {
    let suffix = format!("-{i}");
    let (stem, ext) = match name.rfind('.') {
        Some(p) if p > 0 => (&name[..p], &name[p..]),
        _ => (name, ""),
    };
    let stem = truncate_keeping_ext(stem, MAX_COMPONENT_BYTES - suffix.len() - ext.len());
    format!("{stem}{suffix}{ext}")
}

/// Request headers as (name, value) pairs.
type Headers = Vec<(String, String)>;

/// Checks the parameters; returns the URLs and the headers.
fn parse_params(params: &Map<String, Value>) -> Result<(Vec<String>, Headers), RejectReason> {
    let reject = |s: String| RejectReason(s);
    for key in params.keys() {
        if key != "urls" && key != "headers" {
            return Err(reject(format!("unknown key `{key}` for http.files (it takes `urls` and `headers`)")));
        }
    }
    let urls = match params.get("urls") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => return Err(reject("key `urls` is empty".into())),
        Some(_) => return Err(reject("key `urls` must be an array of URL strings".into())),
        None => return Err(reject("key `urls` is missing".into())),
    };
    let mut out = Vec::with_capacity(urls.len());
    for (i, u) in urls.iter().enumerate() {
        let Value::String(s) = u else {
            return Err(reject(format!("urls[{i}] must be a string")));
        };
        check_url(s).map_err(|why| reject(format!("urls[{i}]: {why}")))?;
        out.push(s.clone());
    }
    let mut headers = Vec::new();
    match params.get("headers") {
        None => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let Value::String(v) = v else {
                    return Err(reject(format!("headers.{k} must be a string")));
                };
                let valid_name = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !valid_name {
                    return Err(reject(format!("headers: {k:?} is not a valid header name")));
                }
                if v.contains(['\r', '\n', '\0']) {
                    return Err(reject(format!("headers.{k} must not contain line breaks")));
                }
                headers.push((k.clone(), v.clone()));
            }
        }
        Some(_) => return Err(reject("key `headers` must be an object of header name → value".into())),
    }
    Ok((out, headers))
}

/// Accepts only absolute http and https URLs with a host.
fn check_url(s: &str) -> Result<(), String> {
    if let Some((scheme, _)) = s.split_once("://")
        && !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(format!("only http and https URLs are accepted, not {scheme}://"));
        }
    let uri: ureq::http::Uri = s.parse().map_err(|_| "not a valid URL".to_string())?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(format!("only http and https URLs are accepted, not {other}://")),
        None => return Err("not an absolute URL (it needs http:// or https://)".into()),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => Err("the URL has no host".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(parse_params(&params(json!({"urls": ["https://h/a.jpg"]}))).is_ok());
        let bad = [
            (json!({"urls": ["file:///etc/passwd"]}), "not file://"),
            (json!({"urls": ["ftp://h/x"]}), "not ftp://"),
            (json!({"urls": ["/relative"]}), "absolute"),
            (json!({"urls": [3]}), "must be a string"),
            (json!({"urls": []}), "empty"),
            (json!({"urls": "https://h/x"}), "array"),
            (json!({}), "missing"),
            (json!({"urls": ["https://h/x"], "extra": 1}), "unknown key `extra`"),
            (json!({"urls": ["https://h/x"], "headers": {"X-A": "a\r\nB: c"}}), "line breaks"),
            (json!({"urls": ["https://h/x"], "headers": {"Bad Name": "v"}}), "valid header name"),
        ];
        for (p, want) in bad {
            let e = parse_params(&params(p.clone())).expect_err("must reject");
            assert!(e.0.contains(want), "{p}: {e}");
        }
    }

    #[test]
    fn names_are_unique_and_safe() {
        let urls: Vec<String> = ["https://h/a.jpg", "https://g/a.jpg", "https://h/", "https://h/..%2F..%2Fx"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let items = items_for(urls);
        let names: Vec<&str> = items.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(names, vec!["a.jpg", "a-1.jpg", "file-2", "___.._x"]);
    }
}
