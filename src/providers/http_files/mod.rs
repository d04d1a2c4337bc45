//! `http.files`: a plain list of http/https URLs.
//!
//! The generic job type of the kernel: no API, no account, one page with
//! every URL. Files are saved under `<save_path>/<name>/` by their URL
//! file names, sanitized; two URLs with the same file name get the item
//! index appended to the second, deterministically, so a restart names
//! them the same way. A URL without a file name (`https://h/`, planned as
//! `file-<i>`) or with only an endpoint's (`https://h/download?id=3`: no
//! extension) lets the server name the file: the download kernel
//! takes the `Content-Disposition` name at the rename (`download::names`
//! keeps that crash-safe and collision-free); this provider only says so. The URLs come from `urls`, from the text file
//! `urls_file` ([`urls_file`]), or both.

mod urls_file;

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::checkpoint::{Item, Work};
use crate::job::{JobSpec, RejectReason};
#[cfg(test)]
use crate::naming::MAX_COMPONENT_BYTES;
use crate::naming::{file_name_from_url, with_suffix};
use crate::providers::{
    Api, JobTypeInfo, Page, ParamInfo, ParamKind, PlanContext, Provider, Walk, WalkError, validate,
};

/// The provider.
#[derive(Debug)]
pub struct HttpFiles;

/// Its one job type.
static TYPES: &[JobTypeInfo] = &[JobTypeInfo {
    name: "http.files",
    summary: "download a list of http/https URLs",
    params: &[
        ParamInfo::new("urls", ParamKind::List, "array of http:// or https:// URLs (or give urls_file)")
            .expect("an array of URL strings"),
        ParamInfo::new(
            "urls_file",
            ParamKind::String,
            "a text file of URLs, one a line (# comments), inside input_roots",
        )
        .expect("a path"),
        ParamInfo::new(
            "headers",
            ParamKind::Object,
            "object of extra request headers, sent with every URL (to its own origin only)",
        )
        .expect("an object of header name → value"),
        ParamInfo::new(
            "forward_headers",
            ParamKind::Bool,
            "true: the headers follow a redirect to another host too",
        )
        .default("false"),
    ],
    shared: &[],
}];

impl Provider for HttpFiles {
    fn name(&self) -> &'static str {
        "http"
    }

    fn job_types(&self) -> &'static [JobTypeInfo] {
        TYPES
    }

    fn plan(&self, job: &JobSpec, cx: &PlanContext<'_>) -> Result<Box<dyn Walk>, RejectReason> {
        let inputs = crate::inputs::InputPolicy::new(&cx.config.input_roots, cx.config.max_job_bytes);
        let (urls, headers) = parse_params(&job.params, &inputs)?;
        let forward_headers = validate(&TYPES[0], &job.params)?.bool("forward_headers").unwrap_or(false);
        Ok(Box::new(FilesWalk { urls, named: 0, used: HashSet::new(), headers, forward_headers }))
    }
}

/// Items per page: a 100,000-URL job is journaled in slices, so that no
/// single record (and its serialized copy) holds the whole list.
const PAGE_ITEMS: usize = 2000;

/// A job's URLs packed into one string: 100,000 URLs cost their bytes and
/// one offset each, not an allocation and a planned item each. Items are
/// made a page at a time, when the runner asks for the page.
#[derive(Debug, Default)]
struct UrlList {
    /// Every URL, one after the other.
    text: String,
    /// Where each URL ends in `text`.
    ends: Vec<usize>,
}

impl UrlList {
    /// Appends a URL.
    fn push(&mut self, url: &str) {
        self.text.push_str(url);
        self.ends.push(self.text.len());
    }

    /// The number of URLs.
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// URL `i`; `i` must be below `len()`.
    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

/// The walk: everything is known up front.
#[derive(Debug)]
struct FilesWalk {
    /// The URLs, in order.
    urls: UrlList,
    /// How many URLs have been given names (and so entries in `used`).
    named: usize,
    /// Hashes of the names given so far (see [`name_hash`]).
    used: HashSet<u64>,
    /// Headers for every request.
    headers: Vec<(String, String)>,
    /// Whether they follow a redirect to another origin.
    forward_headers: bool,
}

impl FilesWalk {
    /// The file name of URL `i`. Names are given in index order, so a
    /// restart that names from 0 again gives every URL the same name.
    /// The second value says whether the server may name the file: the
    /// URL gives no file name, or only an endpoint's (`download`, `get`:
    /// no extension), so the name is a provisional one.
    fn name_next(&mut self) -> (String, bool) {
        let i = self.named;
        let from_url = file_name_from_url(self.urls.get(i), "");
        let server_name = !from_url.contains('.');
        let mut name = if from_url.is_empty() { format!("file-{i}") } else { from_url };
        if !self.used.insert(name_hash(&name)) {
            // `-<index>` is free unless another URL is named that way
            // already (`a.jpg`, `a-2.jpg`, `a.jpg`); then `-<index>-2`, …
            let base = name;
            name = with_suffix(&base, &i.to_string());
            let mut k = 2u32;
            while !self.used.insert(name_hash(&name)) {
                name = with_suffix(&base, &format!("{i}-{k}"));
                k += 1;
            }
        }
        self.named += 1;
        (name, server_name)
    }
}

impl Walk for FilesWalk {
    fn file_headers(&self) -> Vec<(String, String)> {
        self.headers.clone()
    }

    fn forward_headers(&self) -> bool {
        self.forward_headers
    }

    fn next_page(&mut self, cursor: Option<&Value>, _api: &Api) -> Result<Page, WalkError> {
        // The cursor is the index of the first item of the page; after a
        // restart the items before it are already journaled, and only
        // their names are needed (to keep later names the same).
        let total = self.urls.len();
        let start = cursor.and_then(Value::as_u64).map_or(0, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let start = start.min(total);
        if start < self.named {
            self.named = 0;
            self.used.clear();
        }
        while self.named < start {
            self.name_next();
        }
        let end = (start + PAGE_ITEMS).min(total);
        let mut items = Vec::with_capacity(end - start);
        while self.named < end {
            let url = self.urls.get(self.named).to_owned();
            let (path, server_name) = self.name_next();
            let mut item = Item::fetch(String::new(), url, path);
            if let Work::Fetch(f) = &mut item.work {
                f.server_name = server_name;
            }
            items.push(item);
        }
        let next = (end < total).then(|| Value::from(end as u64));
        Ok(Page { total: Some(total as u64), items, next, records: None })
    }
}

/// A name's 64-bit FNV-1a hash, of its lower-case form: `A.jpg` and
/// `a.jpg` are one file on SMB shares and on macOS, so they count as the
/// same name everywhere. Names are remembered by hash so that
/// 100,000 of them cost 8 bytes each; two different names with one hash
/// (odds about 1 in 10^9 at 100,000 names) only make the second one take
/// the `-<index>` suffix, still the same way on every run, since FNV-1a is
/// fixed here and not a per-process random hash.
fn name_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut buf = [0u8; 4];
    for c in name.chars().flat_map(char::to_lowercase) {
        for b in c.encode_utf8(&mut buf).bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Request headers as (name, value) pairs.
type Headers = Vec<(String, String)>;

/// Checks the parameters; returns the URLs (those of `urls`, then those
/// of `urls_file`) and the headers.
fn parse_params(
    params: &Map<String, Value>,
    inputs: &crate::inputs::InputPolicy,
) -> Result<(UrlList, Headers), RejectReason> {
    let p = validate(&TYPES[0], params)?;
    if !p.has("urls") && !p.has("urls_file") {
        return Err(RejectReason(
            "key `urls` is missing (it must be an array of URL strings), or give `urls_file`".into(),
        ));
    }
    let mut out = UrlList::default();
    if let Some(urls) = params.get("urls").and_then(Value::as_array) {
        out.ends.reserve_exact(urls.len());
        out.text.reserve_exact(urls.iter().filter_map(Value::as_str).map(str::len).sum());
    }
    for (i, s) in p.strs("urls").into_iter().flatten().enumerate() {
        check_url(s).map_err(|why| RejectReason(format!("urls[{i}]: {why}")))?;
        out.push(s);
    }
    if let Some(file) = p.str("urls_file") {
        urls_file::read_urls(&file, inputs, check_url, |u| out.push(u))?;
    }
    let mut headers = Vec::new();
    for (k, v) in p.object("headers").into_iter().flatten() {
        let Value::String(v) = v else {
            return Err(RejectReason(format!("headers.{k} must be a string")));
        };
        crate::job::check_header(k, v)?;
        headers.push((k.clone(), v.clone()));
    }
    crate::job::check_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    Ok((out, headers))
}

/// Accepts only absolute http and https URLs with a host.
fn check_url(s: &str) -> Result<(), String> {
    if let Some((scheme, _)) = s.split_once("://")
        && !scheme.eq_ignore_ascii_case("http")
        && !scheme.eq_ignore_ascii_case("https")
    {
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

    fn parse_params_for_test(p: &Map<String, Value>) -> Result<(UrlList, Headers), RejectReason> {
        parse_params(p, &crate::inputs::InputPolicy::new(&[], 1 << 20))
    }

    fn params(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(parse_params_for_test(&params(json!({"urls": ["https://h/a.jpg"]}))).is_ok());
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
            (
                json!({"urls": ["https://h/x"], "headers": {"content-LENGTH": "5"}}),
                "content-LENGTH is set by the HTTP client",
            ),
            (json!({"urls": ["https://h/x"], "headers": {"Bad Name": "v"}}), "valid header name"),
        ];
        for (p, want) in bad {
            let e = parse_params_for_test(&params(p.clone())).expect_err("must reject");
            assert!(e.0.contains(want), "{p}: {e}");
        }
    }

    /// A walk over `urls`, as `plan` makes it.
    fn walk(urls: &[String]) -> FilesWalk {
        let (urls, headers) = parse_params_for_test(&params(json!({ "urls": urls }))).expect("valid urls");
        FilesWalk { urls, named: 0, used: HashSet::new(), headers, forward_headers: false }
    }

    fn api() -> Api {
        Api::new(crate::providers::Lanes::none(), std::sync::Arc::default(), None, std::sync::Arc::default())
    }

    /// Every page from `cursor` on: (the paths, the cursors in between).
    fn pages(w: &mut FilesWalk, mut cursor: Option<Value>) -> (Vec<String>, Vec<Option<Value>>) {
        let (mut paths, mut cursors) = (Vec::new(), Vec::new());
        loop {
            let page = w.next_page(cursor.as_ref(), &api()).expect("no API, no error");
            assert_eq!(page.total, Some(w.urls.len() as u64));
            paths.extend(page.items.into_iter().map(|i| i.path));
            cursors.push(page.next.clone());
            cursor = page.next;
            if cursor.is_none() {
                return (paths, cursors);
            }
        }
    }

    #[test]
    fn names_are_unique_and_safe() {
        let urls: Vec<String> = ["https://h/a.jpg", "https://g/a.jpg", "https://h/", "https://h/..%2F..%2Fx"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (names, _) = pages(&mut walk(&urls), None);
        assert_eq!(names, vec!["a.jpg", "a-1.jpg", "file-2", "___.._x"]);
    }

    #[test]
    fn only_urls_without_a_file_name_let_the_server_name_the_file() {
        let urls: Vec<String> =
            ["https://h/a.jpg", "https://h/", "https://h/download?id=3", "https://h/x.tar.gz?s=1"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let page = walk(&urls).next_page(None, &api()).expect("no API, no error");
        let got: Vec<(String, bool)> = page
            .items
            .into_iter()
            .map(|it| {
                let server = matches!(&it.work, Work::Fetch(f) if f.server_name);
                (it.path, server)
            })
            .collect();
        let want = [("a.jpg", false), ("file-1", true), ("download", true), ("x.tar.gz", false)];
        assert_eq!(got, want.map(|(p, s)| (p.to_string(), s)));
    }

    #[test]
    fn a_long_dotted_name_still_gets_a_suffix_that_fits() {
        let url = format!("https://h/a.{}", "x".repeat(250));
        let (names, _) = pages(&mut walk(&[url.clone(), url]), None);
        assert_ne!(names[0], names[1]);
        for n in &names {
            assert!(n.len() <= MAX_COMPONENT_BYTES, "{}", n.len());
        }
        assert!(names[1].ends_with("-1"), "{}", names[1]);
    }

    #[test]
    fn a_suffixed_name_never_takes_a_name_in_use() {
        let urls: Vec<String> = [
            "https://h/cover.jpg",
            "https://h/cover-2.jpg",
            "https://g/cover.jpg",
            "https://h/COVER-2-2.JPG",
            "https://k/Cover.jpg",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (names, _) = pages(&mut walk(&urls), None);
        // Case never separates two names: they would be one file on SMB.
        assert_eq!(
            names,
            vec!["cover.jpg", "cover-2.jpg", "cover-2-2.jpg", "COVER-2-2-3.JPG", "Cover-4.jpg"]
        );
    }

    #[test]
    fn pages_resume_with_the_same_names() {
        // 12,000 URLs over several pages, with repeats across pages: `x.bin` at
        // every 1,000th URL, so that later names depend on earlier ones.
        let urls: Vec<String> = (0..12_000)
            .map(|i| if i % 1000 == 0 { "https://h/x.bin".to_string() } else { format!("https://h/{i}.bin") })
            .collect();
        let (all, cursors) = pages(&mut walk(&urls), None);
        assert_eq!(all.len(), 12_000);
        let mut want: Vec<Option<Value>> =
            (1..12_000usize.div_ceil(PAGE_ITEMS)).map(|k| Some(Value::from(k * PAGE_ITEMS))).collect();
        want.push(None);
        assert_eq!(cursors, want);
        assert_eq!(all[0], "x.bin");
        assert_eq!(all[1000], "x-1000.bin");
        assert_eq!(all[11_000], "x-11000.bin");
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
        // A restart plans a new walk and starts at the journaled cursor.
        let (rest, _) = pages(&mut walk(&urls), Some(Value::from(5000)));
        assert_eq!(rest[..], all[5000..]);
        // A walk asked for a page it has handed out before names it again
        // the same way.
        let mut w = walk(&urls);
        let _ = pages(&mut w, None);
        let (again, _) = pages(&mut w, Some(Value::from(10_000)));
        assert_eq!(again[..], all[10_000..]);
        // A cursor past the end gives an empty last page.
        let page = walk(&urls).next_page(Some(&Value::from(99_999)), &api()).expect("no error");
        assert!(page.items.is_empty() && page.next.is_none());
    }

    #[test]
    fn url_list_packs() {
        let mut l = UrlList::default();
        for u in ["a", "", "bcd"] {
            l.push(u);
        }
        assert_eq!((l.len(), l.get(0), l.get(1), l.get(2)), (3, "a", "", "bcd"));
        assert_ne!(name_hash("a.jpg"), name_hash("a.jpeg"));
        // Fixed across runs and builds: the FNV-1a test vector for "a".
        assert_eq!(name_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
