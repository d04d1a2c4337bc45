//! A stateful fake of the Octoparse DataAPI (standard tier) for integration
//! tests (protocol: `docs/octoparse.md`).
//!
//! One account, one loopback port:
//! - `POST /token`: password grant and rotating refresh grant (form body,
//!   parsed whatever the `Content-Type`, even none).
//! - `GET api/taskgroup`, `GET api/task?taskgroupId=`,
//!   `GET api/alldata/GetDataOfTaskByOffset?taskId&offset&size`,
//!   `GET api/notexportdata/gettop?taskId&size`,
//!   `POST api/notexportdata/update?taskId`,
//!   `POST api/task/removeDataByTaskId?taskId`.
//!   Paths and query keys match case-insensitively (ASP.NET), as do task
//!   ids (GUIDs); a trailing `/` is ignored.
//! - The advanced-tier paths (`api/task/startTask`, `stopTask`,
//!   `getTaskStatusByIdList`, `GetTaskRulePropertyByName`, `updateTaskRule`,
//!   `AddUrlOrTextToTask`) answer 403 `user_not_allowed` (a standard-tier
//!   account).
//!
//! Order of checks for a non-token request: route (404 `not_found`), method
//! (405 `message`), token (401 `unauthorized`), leaky bucket (429
//! `quota_exceeded`), injected failures (`fail_next`), then the endpoint,
//! whose business errors (`taskid_error`, `export_pagesize_error`) come with
//! HTTP 200. A missing or non-numeric numeric parameter (`offset`, `size`,
//! `taskgroupId`) answers 400 `{"Message":"The request is invalid."}`.
//!
//! Rows get ids from one server-wide counter starting at 2^33 and stepping
//! by a pseudo-random 1..=7, so offsets are gappy, exceed 32 bits, and
//! `offset + size` arithmetic fails loudly. `GetDataOfTaskByOffset` returns
//! the rows whose id is greater than `offset` (`offset <= 0`: from the
//! start) and, as the next offset, the id of the last row returned (the
//! offset sent when none was). `gettop` returns the first `size` rows not
//! yet exported (rows it returned before and that are still "exporting"
//! come first, again), moving new ones to exporting; `update` moves every
//! exporting row of the task to exported.
//!
//! `drop_update_response_next` needs a connection closed with no response
//! byte at all, which the server core cannot do, so the public port is a
//! small relay in front of [`Server`]: the handler answers the sentinel
//! status 599 and the relay closes the client's connection instead of
//! forwarding it.
//!
//! Choices where the real service is unknown: the 404/405/401 ordering
//! above; token errors use `error_description` (lower-case d) and the API
//! errors `error_Description`; `GET /token` is 404 (OWIN only serves POST);
//! an unknown task group lists no tasks; `update` and `removeDataByTaskId`
//! answer the envelope without `data`; `/token` is not rate limited and
//! `fail_next` never hits it; a request rejected by the bucket does not fill
//! it; JSON object keys come out in alphabetical order (row columns
//! included).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::support::http::{Handler, Request, Response, Server, join_within, lock, percent_decode};

/// Default user name of the one account.
pub const DEFAULT_USERNAME: &str = "user";
/// Default password of the one account.
pub const DEFAULT_PASSWORD: &str = "pass";
/// `expires_in` of access tokens unless `set_access_ttl` changes it.
pub const DEFAULT_ACCESS_TTL: u64 = 86399;
/// Id of the first row ever added (2^33).
pub const FIRST_ROW_ID: u64 = 1 << 33;
/// `creationUserId` of the account's tasks.
pub const CREATION_USER_ID: &str = "5d1e4b3c-645c-44ab-ac0e-bfa9ad600ece";
/// Default leak rate of the leaky bucket (requests per second).
pub const BUCKET_PER_SEC: f64 = 20.0;
/// Default capacity of the leaky bucket (5 s × 20).
pub const BUCKET_CAPACITY: f64 = 100.0;

/// 400 body of a password grant with a wrong user name or password.
pub const BAD_CREDENTIALS_BODY: &str =
    r#"{"error":"invalid_grant","error_description":"The user name or password is incorrect."}"#;
/// 400 body of a refresh grant with an unknown or already used refresh token.
pub const REFRESH_INVALID_BODY: &str = r#"{"error":"invalid_grant","error_description":"The refresh token is invalid or has already been used."}"#;
/// 400 body of `/token` with a missing or unknown `grant_type`.
pub const UNSUPPORTED_GRANT_BODY: &str = r#"{"error":"unsupported_grant_type"}"#;
/// 401 body of an API call without a valid access token.
pub const UNAUTHORIZED_BODY: &str = r#"{"error":"unauthorized","error_Description":"access_token invalid"}"#;
/// 200 body of a call naming an unknown task or another account's task.
pub const TASKID_ERROR_BODY: &str =
    r#"{"error":"taskid_error","error_Description":"TaskID is invalid or the task does not belong to you."}"#;
/// 200 body of a call with `size` outside 1..=1000.
pub const PAGESIZE_ERROR_BODY: &str =
    r#"{"error":"export_pagesize_error","error_Description":"Size range from 1 to 1000"}"#;
/// 500 body (`fail_next(n, 500)`).
pub const SERVER_ERROR_BODY: &str =
    r#"{"error":"server_error","error_Description":"Server Error. Please try again later!"}"#;
/// 503 body (`fail_next(n, 503)`).
pub const SERVICE_UNAVAILABLE_BODY: &str = r#"{"error":"service_unavailable","error_Description":"Service is temporarily unavailable. Please try again later."}"#;
/// 429 body of a request that found the leaky bucket full.
pub const QUOTA_BODY: &str = r#"{"error":"quota_exceeded","error_Description":"API requests are too frequent; the limit is 20 requests per second. Please slow down."}"#;
/// 403 body of an advanced-tier path.
pub const NOT_ALLOWED_BODY: &str = r#"{"error":"user_not_allowed","error_Description":"Permission denied. Please upgrade your account to use this API."}"#;
/// 400 body of a missing or non-numeric numeric parameter (ASP.NET binding).
pub const INVALID_REQUEST_BODY: &str = r#"{"Message":"The request is invalid."}"#;

/// Sentinel status the handler answers for a dropped response; the relay
/// closes the connection instead of forwarding it.
const DROP_STATUS: u16 = 599;
const DROP_SENTINEL: &[u8] = b"HTTP/1.1 599 ";
/// Relay socket poll interval.
const POLL: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------
// Public data types
// ---------------------------------------------------------------------------

/// Export state of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowState {
    /// Never returned by `gettop`.
    New,
    /// Returned by `gettop`, not yet confirmed by `update`.
    Exporting,
    /// Confirmed by `update`.
    Exported,
}

/// One `POST /token` (or any request to `/token`) as received.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `grant_type` form field (empty if missing).
    pub grant_type: String,
    /// Whether a token was issued.
    pub ok: bool,
    /// Status answered.
    pub status: u16,
    /// The `error` field of a failure.
    pub error: Option<String>,
    /// All form fields, decoded.
    pub form: Vec<(String, String)>,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// Arrival time.
    pub at: Instant,
}

/// One request of any kind (API or `/token`) as handled.
#[derive(Debug, Clone)]
pub struct LoggedCall {
    /// Method, as sent.
    pub method: String,
    /// Path without the query, as sent (case preserved).
    pub path: String,
    /// Decoded query parameters, in order, keys as sent.
    pub query: Vec<(String, String)>,
    /// Status answered (200 for a dropped `update`, which was applied).
    pub status: u16,
    /// The `error` field of the answer (`"success"` or a code), if any.
    pub error: Option<String>,
    /// The answer was dropped (`drop_update_response_next`).
    pub dropped: bool,
    /// Request headers (names lowercased).
    pub headers: Vec<(String, String)>,
    /// Request body as (lossy) text.
    pub body: String,
    /// Arrival time.
    pub at: Instant,
}

impl LoggedCall {
    /// First query value whose key matches `key` case-insensitively.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }

    /// The path lowercased, without a trailing `/`.
    pub fn path_lower(&self) -> String {
        normalize_path(&self.path)
    }
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Row {
    id: u64,
    data: Map<String, Value>,
    state: RowState,
}

#[derive(Debug, Clone)]
struct Task {
    id: String,
    name: String,
    group: u64,
    /// Belongs to another account: every call naming it is `taskid_error`.
    foreign: bool,
    rows: Vec<Row>,
}

struct State {
    base: String,
    nonce: String,
    username: String,
    password: String,
    groups: BTreeMap<u64, String>,
    tasks: Vec<Task>,
    next_row_id: u64,
    rng: fastrand::Rng,
    // auth
    access_ttl: u64,
    /// Access token -> expiry.
    access: HashMap<String, Instant>,
    /// Valid refresh tokens, oldest first.
    refresh: Vec<String>,
    token_seq: u64,
    // rate limit
    bucket_rate: f64,
    bucket_cap: f64,
    bucket_level: f64,
    bucket_at: Instant,
    rejected: usize,
    retry_after: Option<u64>,
    // faults
    fail_left: usize,
    fail_status: u16,
    latency: Duration,
    drop_update_next: bool,
    // observation
    token_requests: Vec<TokenRequest>,
    calls: Vec<LoggedCall>,
}

impl State {
    fn task_mut(&mut self, id: &str) -> Option<&mut Task> {
        self.tasks.iter_mut().find(|t| t.id.eq_ignore_ascii_case(id))
    }

    fn token(&mut self, kind: &str) -> String {
        self.token_seq += 1;
        let d = Sha256::digest(format!("fake-octoparse {} {kind} {}", self.nonce, self.token_seq).as_bytes());
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        format!("{kind}{hex}")
    }

    /// Leaks the bucket up to `now`, then admits one request if it fits.
    fn bucket_admit(&mut self, now: Instant) -> bool {
        let el = now.saturating_duration_since(self.bucket_at).as_secs_f64();
        self.bucket_level = (self.bucket_level - el * self.bucket_rate).max(0.0);
        self.bucket_at = now;
        if self.bucket_level + 1.0 > self.bucket_cap + 1e-9 {
            self.rejected += 1;
            false
        } else {
            self.bucket_level += 1.0;
            true
        }
    }
}

struct Inner {
    state: Mutex<State>,
    stop: AtomicBool,
}

/// A running fake Octoparse DataAPI on `127.0.0.1`. Stops on drop.
pub struct FakeOctoparse {
    inner: Arc<Inner>,
    relay: Relay,
    server: Server,
}

impl Drop for FakeOctoparse {
    fn drop(&mut self) {
        // Wakes handlers sleeping for latency, then stops the relay; the
        // server stops when its field drops.
        self.inner.stop.store(true, Ordering::SeqCst);
        self.relay.stop();
    }
}

impl FakeOctoparse {
    /// Starts an empty fake (no groups) on an ephemeral loopback port, with
    /// one account `user`/`pass`, access tokens of 86399 s and a bucket of
    /// 20/s, capacity 100.
    pub fn start() -> FakeOctoparse {
        let now = Instant::now();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let state = State {
            base: String::new(),
            nonce: format!("{nanos}"),
            username: DEFAULT_USERNAME.into(),
            password: DEFAULT_PASSWORD.into(),
            groups: BTreeMap::new(),
            tasks: Vec::new(),
            next_row_id: FIRST_ROW_ID,
            rng: fastrand::Rng::with_seed(0x0c70_9a75e),
            access_ttl: DEFAULT_ACCESS_TTL,
            access: HashMap::new(),
            refresh: Vec::new(),
            token_seq: 0,
            bucket_rate: BUCKET_PER_SEC,
            bucket_cap: BUCKET_CAPACITY,
            bucket_level: 0.0,
            bucket_at: now,
            rejected: 0,
            retry_after: None,
            fail_left: 0,
            fail_status: 500,
            latency: Duration::ZERO,
            drop_update_next: false,
            token_requests: Vec::new(),
            calls: Vec::new(),
        };
        let inner = Arc::new(Inner { state: Mutex::new(state), stop: AtomicBool::new(false) });
        let inn = inner.clone();
        let handler: Handler = Arc::new(move |req: &Request| handle(&inn, req));
        let server = Server::start(handler);
        let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], server.port())));
        lock(&inner.state).base = format!("http://127.0.0.1:{}", relay.addr.port());
        FakeOctoparse { inner, relay, server }
    }

    fn st(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    /// `http://127.0.0.1:PORT` (paths are `/token`, `/api/...`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.relay.addr.port())
    }

    /// `base_url()` + `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url())
    }

    /// The public (relay) port.
    pub fn port(&self) -> u16 {
        self.relay.addr.port()
    }

    /// The server core behind the relay (its raw request log).
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Replaces the account's user name and password (issued tokens stay
    /// valid).
    pub fn set_credentials(&self, username: &str, password: &str) {
        let mut st = self.st();
        st.username = username.into();
        st.password = password.into();
    }

    /// Adds (or renames) a task group of the account.
    pub fn add_group(&self, id: u64, name: &str) {
        self.st().groups.insert(id, name.into());
    }

    /// Adds a task to group `group_id` (created as `"Group {id}"` if
    /// missing). Panics if `task_id` exists.
    pub fn add_task(&self, group_id: u64, task_id: &str, name: &str) {
        let mut st = self.st();
        assert!(st.task_mut(task_id).is_none(), "task {task_id} exists");
        st.groups.entry(group_id).or_insert_with(|| format!("Group {group_id}"));
        st.tasks.push(Task {
            id: task_id.into(),
            name: name.into(),
            group: group_id,
            foreign: false,
            rows: Vec::new(),
        });
    }

    /// Adds a task of another account: every call naming it answers
    /// `taskid_error`, and it is listed nowhere.
    pub fn add_foreign_task(&self, task_id: &str) {
        let mut st = self.st();
        assert!(st.task_mut(task_id).is_none(), "task {task_id} exists");
        st.tasks.push(Task {
            id: task_id.into(),
            name: "foreign".into(),
            group: 0,
            foreign: true,
            rows: Vec::new(),
        });
    }

    /// Appends rows (state `New`) to a task. Panics if the task is unknown.
    pub fn add_rows(&self, task_id: &str, rows: Vec<Map<String, Value>>) {
        let mut st = self.st();
        let mut ids = Vec::with_capacity(rows.len());
        for _ in 0..rows.len() {
            let step = st.rng.u64(1..=7);
            st.next_row_id += step;
            ids.push(st.next_row_id);
        }
        let task = st.task_mut(task_id).unwrap_or_else(|| panic!("unknown task {task_id}"));
        for (id, data) in ids.into_iter().zip(rows) {
            task.rows.push(Row { id, data, state: RowState::New });
        }
    }

    /// `n` deterministic rows for `seed`: columns `Title` (string), `Price`
    /// (number), `Stock` (integer), `名称` (CJK and emoji), `Note` (empty,
    /// commas, quotes, CR/LF newlines), `URL`. Row `i` with `i % 10 == 5` is
    /// an exact copy of row `i - 1` (real tasks have identical rows).
    pub fn make_rows(n: usize, seed: u64) -> Vec<Map<String, Value>> {
        const NAMES: [&str; 6] = ["深圳视界", "八爪鱼", "数多多", "微图", "Ünïcödé ✓", "章鱼 🐙 données"];
        const NOTES: [&str; 7] =
            ["plain", "a, b, c", "say \"hi\"", "line1\nline2", "mixed, \"q\"\r\nend,", "", "  padded  "];
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed_0c70);
        let mut out: Vec<Map<String, Value>> = Vec::with_capacity(n);
        for i in 0..n {
            if i % 10 == 5 {
                let prev = out[i - 1].clone();
                out.push(prev);
                continue;
            }
            let mut m = Map::new();
            let k = rng.u64(0..1_000_000);
            m.insert("Title".into(), json!(format!("Item {seed}-{i}")));
            m.insert("Price".into(), json!(rng.u32(1..100_000) as f64 / 100.0));
            m.insert("Stock".into(), json!(rng.i64(-5..10_000)));
            m.insert("名称".into(), json!(NAMES[rng.usize(0..NAMES.len())]));
            m.insert("Note".into(), json!(NOTES[(i + seed as usize) % NOTES.len()]));
            m.insert("URL".into(), json!(format!("https://example.com/item/{k}?ref=a&b=c")));
            out.push(m);
        }
        out
    }

    /// Current rows of a task in order, with their state (empty if the task
    /// is unknown).
    pub fn rows(&self, task_id: &str) -> Vec<(Map<String, Value>, RowState)> {
        let mut st = self.st();
        st.task_mut(task_id)
            .map(|t| t.rows.iter().map(|r| (r.data.clone(), r.state)).collect())
            .unwrap_or_default()
    }

    /// Current row ids (the opaque offsets) of a task, in order.
    pub fn row_ids(&self, task_id: &str) -> Vec<u64> {
        let mut st = self.st();
        st.task_mut(task_id).map(|t| t.rows.iter().map(|r| r.id).collect()).unwrap_or_default()
    }

    /// Number of rows of a task in `state`.
    pub fn count(&self, task_id: &str, state: RowState) -> usize {
        self.rows(task_id).iter().filter(|(_, s)| *s == state).count()
    }

    /// Lifetime (`expires_in`) of access tokens issued from now on.
    pub fn set_access_ttl(&self, secs: u64) {
        self.st().access_ttl = secs;
    }

    /// Every access token issued so far stops working (401).
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        for exp in self.st().access.values_mut() {
            *exp = now;
        }
    }

    /// Issues a valid access token without a `/token` request (test set-up).
    pub fn issue_access_token(&self) -> String {
        let mut st = self.st();
        let t = st.token("A");
        let exp = Instant::now() + Duration::from_secs(st.access_ttl);
        st.access.insert(t.clone(), exp);
        t
    }

    /// Every `/token` request so far.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.st().token_requests.clone()
    }

    /// The most recently issued refresh token that is still valid.
    pub fn current_refresh_token(&self) -> Option<String> {
        self.st().refresh.last().cloned()
    }

    /// Leaky bucket parameters (the current level is kept, capped to the
    /// new capacity).
    pub fn set_bucket(&self, per_sec: f64, capacity: f64) {
        let mut st = self.st();
        let now = Instant::now();
        let el = now.saturating_duration_since(st.bucket_at).as_secs_f64();
        st.bucket_level = (st.bucket_level - el * st.bucket_rate).max(0.0).min(capacity);
        st.bucket_at = now;
        st.bucket_rate = per_sec;
        st.bucket_cap = capacity;
    }

    /// Current level of the bucket (requests not yet leaked).
    pub fn bucket_level(&self) -> f64 {
        let st = self.st();
        let el = Instant::now().saturating_duration_since(st.bucket_at).as_secs_f64();
        (st.bucket_level - el * st.bucket_rate).max(0.0)
    }

    /// `Retry-After` seconds on 429 answers (none by default).
    pub fn set_retry_after(&self, secs: Option<u64>) {
        self.st().retry_after = secs;
    }

    /// The next `n` API calls (not `/token`) that pass the token and bucket
    /// checks answer `status` (500 `server_error`, 503
    /// `service_unavailable`, others a generic body) and are not applied.
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut st = self.st();
        st.fail_left = n;
        st.fail_status = status;
    }

    /// Delay before every answer (token and API).
    pub fn set_latency(&self, d: Duration) {
        self.st().latency = d;
    }

    /// The next successful `notexportdata/update` is applied, but the
    /// connection is closed before any response byte is sent.
    pub fn drop_update_response_next(&self) {
        self.st().drop_update_next = true;
    }

    /// Every request handled so far (API and `/token`), in order.
    pub fn requests(&self) -> Vec<LoggedCall> {
        self.st().calls.clone()
    }

    /// Requests to `path` (compared case-insensitively, no query).
    pub fn requests_to(&self, path: &str) -> Vec<LoggedCall> {
        let p = normalize_path(path);
        self.requests().into_iter().filter(|c| c.path_lower() == p).collect()
    }

    /// Forgets the request and token logs.
    pub fn clear_logs(&self) {
        let mut st = self.st();
        st.calls.clear();
        st.token_requests.clear();
    }

    /// Requests answered 429 so far.
    pub fn rejected_by_bucket(&self) -> usize {
        self.st().rejected
    }
}

// ---------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------

/// Lowercases, forces a leading `/`, drops trailing `/`s.
fn normalize_path(p: &str) -> String {
    let mut s = p.to_ascii_lowercase();
    while s.len() > 1 && s.ends_with('/') {
        s.pop();
    }
    if !s.starts_with('/') {
        s.insert(0, '/');
    }
    s
}

fn parse_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
}

/// A handled request: the response plus what the log records.
struct Outcome {
    resp: Response,
    status: u16,
    error: Option<String>,
    dropped: bool,
}

fn out_json(status: u16, v: &Value) -> Outcome {
    let error = v.get("error").and_then(Value::as_str).map(str::to_string);
    Outcome { resp: Response::json(status, &v.to_string()), status, error, dropped: false }
}

/// A byte-exact body (one of the constants).
fn out_raw(status: u16, body: &str) -> Outcome {
    let error = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string));
    Outcome { resp: Response::json(status, body), status, error, dropped: false }
}

/// `{"data":…,"error":"success","error_Description":"Action Success"}`.
fn success(data: Option<Value>) -> Outcome {
    let mut m = Map::new();
    if let Some(d) = data {
        m.insert("data".into(), d);
    }
    m.insert("error".into(), json!("success"));
    m.insert("error_Description".into(), json!("Action Success"));
    out_json(200, &Value::Object(m))
}

fn not_found(base: &str, path: &str) -> Outcome {
    out_json(
        404,
        &json!({
            "error": "not_found",
            "error_Description": format!("No HTTP resource was found that matches the request URI '{base}{path}'."),
        }),
    )
}

fn handle(inner: &Inner, req: &Request) -> Response {
    let at = Instant::now();
    let raw_path = req.path_only().to_string();
    let norm = normalize_path(&raw_path);
    let query = req.query_pairs();
    let mut st = lock(&inner.state);
    let out = if norm == "/token" {
        handle_token(&mut st, req, at)
    } else {
        handle_api(&mut st, req, &norm, &query, at)
    };
    st.calls.push(LoggedCall {
        method: req.method.clone(),
        path: raw_path,
        query,
        status: out.status,
        error: out.error.clone(),
        dropped: out.dropped,
        headers: req.headers.clone(),
        body: req.body_text(),
        at,
    });
    let latency = st.latency;
    drop(st);
    sleep_unless_stopped(inner, latency);
    out.resp
}

fn sleep_unless_stopped(inner: &Inner, d: Duration) {
    let end = Instant::now() + d;
    while !inner.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

fn handle_token(st: &mut State, req: &Request, at: Instant) -> Outcome {
    let form = parse_form(&req.body_text());
    let grant = param(&form, "grant_type").unwrap_or("").to_string();
    let out = if !req.method.eq_ignore_ascii_case("POST") {
        let base = st.base.clone();
        not_found(&base, req.path_only())
    } else {
        match grant.as_str() {
            "password" => {
                let ok = param(&form, "username") == Some(st.username.as_str())
                    && param(&form, "password") == Some(st.password.as_str());
                if ok { issue(st) } else { out_raw(400, BAD_CREDENTIALS_BODY) }
            }
            "refresh_token" => {
                let rt = param(&form, "refresh_token").unwrap_or("");
                match st.refresh.iter().position(|t| t == rt) {
                    Some(i) if !rt.is_empty() => {
                        st.refresh.remove(i);
                        issue(st)
                    }
                    _ => out_raw(400, REFRESH_INVALID_BODY),
                }
            }
            _ => out_raw(400, UNSUPPORTED_GRANT_BODY),
        }
    };
    st.token_requests.push(TokenRequest {
        grant_type: grant,
        ok: out.status == 200,
        status: out.status,
        error: out.error.clone(),
        form,
        content_type: req.header("content-type").map(str::to_string),
        at,
    });
    out
}

/// Issues an access and a new refresh token (the token-endpoint answer, in
/// the documented key order).
fn issue(st: &mut State) -> Outcome {
    let access = st.token("A");
    let refresh = st.token("R");
    let ttl = st.access_ttl;
    st.access.insert(access.clone(), Instant::now() + Duration::from_secs(ttl));
    st.refresh.push(refresh.clone());
    let body = format!(
        r#"{{"access_token":"{access}","token_type":"bearer","expires_in":{ttl},"refresh_token":"{refresh}"}}"#
    );
    Outcome { resp: Response::json(200, &body), status: 200, error: None, dropped: false }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ep {
    TaskGroups,
    Tasks,
    ByOffset,
    GetTop,
    Update,
    Remove,
    Advanced,
}

/// Endpoint and its one allowed method, by lowercased path.
fn route(norm: &str) -> Option<(Ep, &'static str)> {
    Some(match norm {
        "/api/taskgroup" => (Ep::TaskGroups, "GET"),
        "/api/task" => (Ep::Tasks, "GET"),
        "/api/alldata/getdataoftaskbyoffset" => (Ep::ByOffset, "GET"),
        "/api/notexportdata/gettop" => (Ep::GetTop, "GET"),
        "/api/notexportdata/update" => (Ep::Update, "POST"),
        "/api/task/removedatabytaskid" => (Ep::Remove, "POST"),
        "/api/task/gettaskstatusbyidlist"
        | "/api/task/starttask"
        | "/api/task/stoptask"
        | "/api/task/gettaskrulepropertybyname"
        | "/api/task/updatetaskrule"
        | "/api/task/addurlortexttotask" => (Ep::Advanced, "POST"),
        _ => return None,
    })
}

fn authorized(st: &State, req: &Request, now: Instant) -> bool {
    let Some(h) = req.header("authorization") else { return false };
    let Some((scheme, tok)) = h.trim().split_once(' ') else { return false };
    scheme.eq_ignore_ascii_case("bearer") && st.access.get(tok.trim()).is_some_and(|exp| now < *exp)
}

fn handle_api(st: &mut State, req: &Request, norm: &str, q: &[(String, String)], at: Instant) -> Outcome {
    let Some((ep, method)) = route(norm) else {
        let base = st.base.clone();
        return not_found(&base, req.path_only());
    };
    if !req.method.eq_ignore_ascii_case(method) {
        let v = json!({
            "message": format!("Requested Resource Does Not Support HTTP Method '{}'", req.method.to_ascii_uppercase())
        });
        let mut o = out_json(405, &v);
        o.resp = o.resp.header("Allow", method);
        return o;
    }
    if !authorized(st, req, at) {
        let mut o = out_raw(401, UNAUTHORIZED_BODY);
        o.resp = o.resp.header("WWW-Authenticate", "Bearer");
        return o;
    }
    if !st.bucket_admit(at) {
        let mut o = out_raw(429, QUOTA_BODY);
        if let Some(s) = st.retry_after {
            o.resp = o.resp.header("Retry-After", &s.to_string());
        }
        return o;
    }
    if st.fail_left > 0 {
        st.fail_left -= 1;
        return match st.fail_status {
            500 => out_raw(500, SERVER_ERROR_BODY),
            503 => out_raw(503, SERVICE_UNAVAILABLE_BODY),
            s => {
                let code = match s {
                    400 => "client_error",
                    401 => "unauthorized",
                    403 => "user_not_allowed",
                    404 => "not_found",
                    405 => "method_not_allow",
                    429 => "quota_exceeded",
                    _ => "server_error",
                };
                out_json(s, &json!({"error": code, "error_Description": "Injected failure."}))
            }
        };
    }
    match ep {
        Ep::Advanced => out_raw(403, NOT_ALLOWED_BODY),
        Ep::TaskGroups => {
            let list: Vec<Value> = st
                .groups
                .iter()
                .map(|(id, name)| json!({"taskGroupId": id, "taskGroupName": name}))
                .collect();
            success(Some(Value::Array(list)))
        }
        Ep::Tasks => {
            let Some(gid) = param(q, "taskgroupId").and_then(|s| s.trim().parse::<u64>().ok()) else {
                return out_raw(400, INVALID_REQUEST_BODY);
            };
            let list: Vec<Value> = st
                .tasks
                .iter()
                .filter(|t| !t.foreign && t.group == gid)
                .map(|t| json!({"taskId": t.id, "taskName": t.name, "creationUserId": CREATION_USER_ID}))
                .collect();
            success(Some(Value::Array(list)))
        }
        Ep::ByOffset | Ep::GetTop => {
            let offset = if ep == Ep::ByOffset {
                match param(q, "offset").and_then(|s| s.trim().parse::<i64>().ok()) {
                    Some(o) => o,
                    None => return out_raw(400, INVALID_REQUEST_BODY),
                }
            } else {
                0
            };
            let Some(size) = param(q, "size").and_then(|s| s.trim().parse::<i64>().ok()) else {
                return out_raw(400, INVALID_REQUEST_BODY);
            };
            let tid = param(q, "taskId").unwrap_or("").to_string();
            let Some(task) = st.task_mut(&tid).filter(|t| !t.foreign) else {
                return out_raw(200, TASKID_ERROR_BODY);
            };
            if !(1..=1000).contains(&size) {
                return out_raw(200, PAGESIZE_ERROR_BODY);
            }
            let size = size as usize;
            if ep == Ep::ByOffset {
                let start = offset.max(0) as u64;
                let idx = task.rows.partition_point(|r| r.id <= start);
                let page: Vec<&Row> = task.rows[idx..].iter().take(size).collect();
                let next = page.last().map_or(start, |r| r.id);
                let rest = task.rows.len() - idx - page.len();
                let list: Vec<Value> = page.iter().map(|r| Value::Object(r.data.clone())).collect();
                success(Some(json!({
                    "offset": next,
                    "total": task.rows.len(),
                    "restTotal": rest,
                    "dataList": list,
                })))
            } else {
                let total = task.rows.iter().filter(|r| r.state != RowState::Exported).count();
                let mut list = Vec::new();
                for r in task.rows.iter_mut().filter(|r| r.state != RowState::Exported).take(size) {
                    r.state = RowState::Exporting;
                    list.push(Value::Object(r.data.clone()));
                }
                success(Some(json!({"total": total, "currentTotal": list.len(), "dataList": list})))
            }
        }
        Ep::Update | Ep::Remove => {
            let tid = param(q, "taskId").unwrap_or("").to_string();
            let Some(task) = st.task_mut(&tid).filter(|t| !t.foreign) else {
                return out_raw(200, TASKID_ERROR_BODY);
            };
            if ep == Ep::Remove {
                task.rows.clear();
                return success(None);
            }
            for r in task.rows.iter_mut().filter(|r| r.state == RowState::Exporting) {
                r.state = RowState::Exported;
            }
            if std::mem::take(&mut st.drop_update_next) {
                let mut o = success(None);
                o.resp = Response::new(DROP_STATUS).close();
                o.dropped = true;
                return o;
            }
            success(None)
        }
    }
}

// ---------------------------------------------------------------------------
// Relay (public port): forwards bytes to the server core, and closes the
// client's connection instead of forwarding a DROP_STATUS answer.
// ---------------------------------------------------------------------------

struct RelayShared {
    stop: AtomicBool,
    open: Mutex<HashMap<usize, (TcpStream, TcpStream)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    seq: AtomicUsize,
}

struct Relay {
    addr: SocketAddr,
    shared: Arc<RelayShared>,
    accept: Option<JoinHandle<()>>,
}

impl Relay {
    fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(RelayShared {
            stop: AtomicBool::new(false),
            open: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
            seq: AtomicUsize::new(0),
        });
        let sh = shared.clone();
        let accept = thread::Builder::new()
            .name(format!("octo-relay-{}", addr.port()))
            .spawn(move || relay_accept(listener, upstream, sh))
            .expect("spawn relay thread");
        Relay { addr, shared, accept: Some(accept) }
    }

    fn stop(&mut self) {
        if self.shared.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for (_, (a, b)) in lock(&self.shared.open).drain() {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
        join_within(lock(&self.shared.threads).drain(..).collect(), Duration::from_secs(2));
    }
}

fn relay_accept(listener: TcpListener, upstream: SocketAddr, sh: Arc<RelayShared>) {
    for stream in listener.incoming() {
        if sh.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = stream else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let Ok(up) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        for s in [&client, &up] {
            let _ = s.set_nodelay(true);
            let _ = s.set_read_timeout(Some(POLL));
            let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
        }
        let clones = (client.try_clone(), up.try_clone(), client.try_clone(), up.try_clone());
        let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) = clones else {
            let _ = client.shutdown(Shutdown::Both);
            let _ = up.shutdown(Shutdown::Both);
            continue;
        };
        let id = sh.seq.fetch_add(1, Ordering::SeqCst);
        lock(&sh.open).insert(id, (c3, u3));
        let s1 = sh.clone();
        let s2 = sh.clone();
        let t1 = thread::Builder::new()
            .name(format!("octo-relay-up-{id}"))
            .spawn(move || pump_up(client, up, &s1));
        let t2 = thread::Builder::new().name(format!("octo-relay-down-{id}")).spawn(move || {
            pump_down(u2, c2, &s2);
            lock(&s2.open).remove(&id);
        });
        let mut threads = lock(&sh.threads);
        threads.retain(|t| !t.is_finished());
        for t in [t1, t2] {
            match t {
                Ok(h) => threads.push(h),
                Err(_) => {
                    if let Some((a, b)) = lock(&sh.open).remove(&id) {
                        let _ = a.shutdown(Shutdown::Both);
                        let _ = b.shutdown(Shutdown::Both);
                    }
                }
            }
        }
    }
}

fn would_block(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted)
}

/// Client -> server. A client half-close is passed on.
fn pump_up(mut client: TcpStream, mut up: TcpStream, sh: &RelayShared) {
    let mut buf = [0u8; 16 * 1024];
    while !sh.stop.load(Ordering::SeqCst) {
        match client.read(&mut buf) {
            Ok(0) => {
                let _ = up.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if up.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if would_block(&e) => {}
            Err(_) => break,
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = up.shutdown(Shutdown::Both);
}

/// Server -> client, watching for the drop sentinel at any point (a tail
/// that could start it is held back until the next read, or flushed after
/// one idle poll).
fn pump_down(mut up: TcpStream, mut client: TcpStream, sh: &RelayShared) {
    let mut buf = [0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    while !sh.stop.load(Ordering::SeqCst) {
        match up.read(&mut buf) {
            Ok(0) => {
                let _ = client.write_all(&pending);
                break;
            }
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                if let Some(p) = pending.windows(DROP_SENTINEL.len()).position(|w| w == DROP_SENTINEL) {
                    let _ = client.write_all(&pending[..p]);
                    break;
                }
                let keep = (1..DROP_SENTINEL.len())
                    .rev()
                    .find(|&k| pending.len() >= k && pending[pending.len() - k..] == DROP_SENTINEL[..k])
                    .unwrap_or(0);
                let cut = pending.len() - keep;
                if client.write_all(&pending[..cut]).is_err() {
                    break;
                }
                pending.drain(..cut);
            }
            Err(e) if would_block(&e) => {
                if !pending.is_empty() {
                    if client.write_all(&pending).is_err() {
                        break;
                    }
                    pending.clear();
                }
            }
            Err(_) => break,
        }
    }
    let _ = client.flush();
    let _ = client.shutdown(Shutdown::Both);
    let _ = up.shutdown(Shutdown::Both);
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    use crate::support::client::{Got, agent, done};

    fn get_with(a: &ureq::Agent, fake: &FakeOctoparse, tok: Option<&str>, pq: &str) -> Got {
        let mut rq = a.get(fake.url(pq));
        if let Some(t) = tok {
            rq = rq.header("Authorization", &format!("bearer {t}"));
        }
        done(rq.call())
    }

    fn get(fake: &FakeOctoparse, tok: &str, pq: &str) -> Got {
        get_with(&agent(), fake, Some(tok), pq)
    }

    fn post(fake: &FakeOctoparse, tok: &str, pq: &str) -> Got {
        done(agent().post(fake.url(pq)).header("Authorization", &format!("bearer {tok}")).send_empty())
    }

    fn token_post(fake: &FakeOctoparse, body: &str) -> Got {
        done(
            agent()
                .post(fake.url("/token"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send(body.as_bytes()),
        )
    }

    fn login(fake: &FakeOctoparse) -> (String, String) {
        let g = token_post(fake, "username=user&password=pass&grant_type=password");
        assert_eq!(g.status, 200, "{}", g.text());
        let v = g.json();
        (v["access_token"].as_str().expect("at").into(), v["refresh_token"].as_str().expect("rt").into())
    }

    /// A raw HTTP/1.1 exchange on a fresh connection; returns every byte
    /// the server sent before closing (bounded by a read timeout).
    fn raw(fake: &FakeOctoparse, request: &str) -> Vec<u8> {
        let mut s = TcpStream::connect(("127.0.0.1", fake.port())).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        s.write_all(request.as_bytes()).expect("write");
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        out
    }

    fn envelope_ok(g: &Got) -> Value {
        assert_eq!(g.status, 200, "{}", g.text());
        let v = g.json();
        assert_eq!(v["error"], "success", "{v}");
        assert_eq!(v["error_Description"], "Action Success");
        v
    }

    fn with_task(rows: usize) -> (FakeOctoparse, &'static str) {
        let fake = FakeOctoparse::start();
        let tid = "337fd7d7-aded-4081-9104-2b551161ccc8";
        fake.add_group(84, "Group A");
        fake.add_task(84, tid, "Task 1");
        fake.add_rows(tid, FakeOctoparse::make_rows(rows, 1));
        (fake, tid)
    }

    #[test]
    fn password_grant_refresh_rotation_and_reuse() {
        let fake = FakeOctoparse::start();
        let g = token_post(&fake, "username=user&password=pass&grant_type=password");
        assert_eq!(g.status, 200);
        let body = g.text();
        assert!(body.starts_with(r#"{"access_token":""#), "{body}");
        let v = g.json();
        assert_eq!(v["token_type"], "bearer");
        assert_eq!(v["expires_in"], 86399);
        let rt1 = v["refresh_token"].as_str().expect("rt").to_string();
        assert_eq!(fake.current_refresh_token().as_deref(), Some(rt1.as_str()));

        // Refresh rotates: new access and refresh tokens, old refresh dead.
        let g = token_post(&fake, &format!("refresh_token={rt1}&grant_type=refresh_token"));
        assert_eq!(g.status, 200, "{}", g.text());
        let v2 = g.json();
        let rt2 = v2["refresh_token"].as_str().expect("rt").to_string();
        assert_ne!(rt2, rt1);
        assert_ne!(v2["access_token"], v["access_token"]);
        assert_eq!(fake.current_refresh_token().as_deref(), Some(rt2.as_str()));
        let g = token_post(&fake, &format!("refresh_token={rt1}&grant_type=refresh_token"));
        assert_eq!((g.status, g.text().as_str()), (400, REFRESH_INVALID_BODY));
        // Both access tokens still work; the new refresh token works once.
        for at in [&v["access_token"], &v2["access_token"]] {
            envelope_ok(&get(&fake, at.as_str().expect("at"), "/api/taskgroup"));
        }
        assert_eq!(token_post(&fake, &format!("refresh_token={rt2}&grant_type=refresh_token")).status, 200);
        assert_eq!(token_post(&fake, &format!("refresh_token={rt2}&grant_type=refresh_token")).status, 400);

        // Bad credentials, malformed bodies, GET.
        let g = token_post(&fake, "username=user&password=nope&grant_type=password");
        assert_eq!((g.status, g.text().as_str()), (400, BAD_CREDENTIALS_BODY));
        for bad in ["", "username=user&password=pass", "grant_type=client_credentials", "garbage"] {
            let g = token_post(&fake, bad);
            assert_eq!((g.status, g.text().as_str()), (400, UNSUPPORTED_GRANT_BODY), "{bad:?}");
        }
        assert_eq!(done(agent().get(fake.url("/token")).call()).status, 404);

        // No Content-Type and no URL-encoding (the PyPI client), new creds.
        fake.set_credentials("alice", "S3cret");
        let body = "username=alice&password=S3cret&grant_type=password";
        let req = format!(
            "POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let resp = String::from_utf8(raw(&fake, &req)).expect("utf8");
        assert!(resp.starts_with("HTTP/1.1 200 "), "{resp}");
        assert!(resp.contains(r#""token_type":"bearer""#), "{resp}");
        assert_eq!(token_post(&fake, "username=user&password=pass&grant_type=password").status, 400);

        let log = fake.token_requests();
        let summary: Vec<(&str, bool)> = log.iter().map(|t| (t.grant_type.as_str(), t.ok)).collect();
        assert_eq!(
            summary,
            vec![
                ("password", true),
                ("refresh_token", true),
                ("refresh_token", false),
                ("refresh_token", true),
                ("refresh_token", false),
                ("password", false),
                ("", false),
                ("", false),
                ("client_credentials", false),
                ("", false),
                ("", false),
                ("password", true),
                ("password", false),
            ]
        );
        assert_eq!(log[2].error.as_deref(), Some("invalid_grant"));
        assert_eq!(log[11].content_type, None);
    }

    #[test]
    fn bearer_required_and_expiry_gives_401() {
        let fake = FakeOctoparse::start();
        fake.add_group(1, "G");
        let g = get_with(&agent(), &fake, None, "/api/taskgroup");
        assert_eq!((g.status, g.text().as_str()), (401, UNAUTHORIZED_BODY));
        let (at, _) = login(&fake);
        for scheme in ["bearer", "Bearer", "BEARER"] {
            let g = done(
                agent()
                    .get(fake.url("/api/taskgroup"))
                    .header("Authorization", &format!("{scheme} {at}"))
                    .call(),
            );
            envelope_ok(&g);
        }
        // Bare token and unknown token are rejected.
        let g = done(agent().get(fake.url("/api/taskgroup")).header("Authorization", &at).call());
        assert_eq!(g.status, 401);
        assert_eq!(get(&fake, "nope", "/api/taskgroup").status, 401);

        fake.expire_access_tokens();
        let g = get(&fake, &at, "/api/taskgroup");
        assert_eq!((g.status, g.text().as_str()), (401, UNAUTHORIZED_BODY));
        assert_eq!(g.json()["error"], "unauthorized");

        // A short TTL shows in expires_in and really expires.
        fake.set_access_ttl(1);
        let g = token_post(&fake, "username=user&password=pass&grant_type=password");
        let v = g.json();
        assert_eq!(v["expires_in"], 1);
        let at = v["access_token"].as_str().expect("at").to_string();
        envelope_ok(&get(&fake, &at, "/api/taskgroup"));
        thread::sleep(Duration::from_millis(1100));
        assert_eq!(get(&fake, &at, "/api/taskgroup").status, 401);
        // Expired tokens do not count against the bucket; 401s are logged.
        assert_eq!(fake.requests().iter().filter(|c| c.status == 401).count(), 5);
    }

    #[test]
    fn paths_and_query_keys_are_case_insensitive() {
        let (fake, tid) = with_task(30);
        let at = fake.issue_access_token();
        let v = envelope_ok(&get(&fake, &at, "/API/TaskGroup/"));
        assert_eq!(v["data"], json!([{"taskGroupId": 84, "taskGroupName": "Group A"}]));
        for q in ["/api/task?taskgroupId=84", "/api/Task?TaskGroupID=84", "/api/task?taskGroupId=84"] {
            let v = envelope_ok(&get(&fake, &at, q));
            assert_eq!(
                v["data"],
                json!([{"taskId": tid, "taskName": "Task 1", "creationUserId": CREATION_USER_ID}]),
                "{q}"
            );
        }
        let v = envelope_ok(&get(&fake, &at, "/api/task?taskgroupId=999"));
        assert_eq!(v["data"], json!([]));
        let upper = tid.to_ascii_uppercase();
        let a = envelope_ok(&get(
            &fake,
            &at,
            &format!("/api/alldata/GetDataOfTaskByOffset?taskId={tid}&offset=0&size=5"),
        ));
        let b = envelope_ok(&get(
            &fake,
            &at,
            &format!("/api/alldata/getdataoftaskbyoffset?TASKID={upper}&Offset=0&SIZE=5"),
        ));
        assert_eq!(a["data"], b["data"]);
        let v = envelope_ok(&get(&fake, &at, &format!("/api/notExportData/getTop?taskid={tid}&size=3")));
        assert_eq!(v["data"]["currentTotal"], 3);
        envelope_ok(&post(&fake, &at, &format!("/API/NotExportData/Update?TaskId={tid}")));
        assert_eq!(fake.count(tid, RowState::Exported), 3);
        // The log keeps the path as sent.
        assert!(fake.requests().iter().any(|c| c.path == "/api/notExportData/getTop"));
        assert_eq!(fake.requests_to("/api/notexportdata/gettop").len(), 1);
    }

    #[test]
    fn offset_paging_2500_rows_with_gappy_opaque_offsets() {
        let (fake, tid) = with_task(2500);
        let at = fake.issue_access_token();
        let ids = fake.row_ids(tid);
        assert!(ids[0] > FIRST_ROW_ID && ids[0] <= FIRST_ROW_ID + 7);
        assert!(ids.windows(2).all(|w| (1..=7).contains(&(w[1] - w[0]))));
        assert!(ids.windows(2).any(|w| w[1] - w[0] > 1), "gappy");

        let mut offset: i64 = 0;
        let mut got: Vec<Value> = Vec::new();
        let mut offsets = Vec::new();
        let mut rests = Vec::new();
        for _ in 0..10 {
            let v = envelope_ok(&get(
                &fake,
                &at,
                &format!("/api/alldata/GetDataOfTaskByOffset?taskId={tid}&offset={offset}&size=1000"),
            ));
            let d = &v["data"];
            assert_eq!(d["total"], 2500);
            got.extend(d["dataList"].as_array().expect("list").iter().cloned());
            let next = d["offset"].as_u64().expect("offset u64");
            offsets.push(next);
            rests.push(d["restTotal"].as_u64().expect("rest"));
            offset = next as i64;
            if d["restTotal"] == 0 {
                break;
            }
        }
        assert_eq!(rests, vec![1500, 500, 0]);
        assert_eq!(offsets, vec![ids[999], ids[1999], ids[2499]]);
        assert!(offsets.iter().all(|&o| o > u32::MAX as u64));
        assert!(offsets[1] - offsets[0] != 1000, "offset + size must not work");
        let want: Vec<Value> = fake.rows(tid).into_iter().map(|(m, _)| Value::Object(m)).collect();
        assert_eq!(got, want);

        // offset + size arithmetic goes wrong: "1000" is before every row.
        let v = envelope_ok(&get(
            &fake,
            &at,
            &format!("/api/alldata/GetDataOfTaskByOffset?taskId={tid}&offset=1000&size=2"),
        ));
        assert_eq!(v["data"]["dataList"], json!([want[0], want[1]]));
        // offset <= 0 means from the start; an empty tail keeps the offset.
        let neg = envelope_ok(&get(
            &fake,
            &at,
            &format!("/api/alldata/GetDataOfTaskByOffset?taskId={tid}&offset=-5&size=2"),
        ));
        assert_eq!(neg["data"]["dataList"], json!([want[0], want[1]]));
        assert_eq!(neg["data"]["offset"], ids[1]);
        let end = envelope_ok(&get(
            &fake,
            &at,
            &format!("/api/alldata/GetDataOfTaskByOffset?taskId={tid}&offset={}&size=5", offsets[2]),
        ));
        assert_eq!(end["data"], json!({"offset": offsets[2], "total": 2500, "restTotal": 0, "dataList": []}));
        // Reading does not change export states.
        assert_eq!(fake.count(tid, RowState::New), 2500);
        // Missing offset is a binding error.
        let g = get(&fake, &at, &format!("/api/alldata/GetDataOfTaskByOffset?taskId={tid}&size=5"));
        assert_eq!((g.status, g.text().as_str()), (400, INVALID_REQUEST_BODY));
    }

    #[test]
    fn export_state_machine_gettop_repeats_until_update() {
        let (fake, tid) = with_task(25);
        let at = fake.issue_access_token();
        let top = |size: usize| {
            envelope_ok(&get(&fake, &at, &format!("/api/notexportdata/gettop?taskId={tid}&size={size}")))["data"].clone()
        };
        let all: Vec<Value> = fake.rows(tid).into_iter().map(|(m, _)| Value::Object(m)).collect();
        let a = top(10);
        assert_eq!(a["total"], 25);
        assert_eq!(a["currentTotal"], 10);
        assert_eq!(a["dataList"], json!(all[..10]));
        assert_eq!(fake.count(tid, RowState::Exporting), 10);
        let b = top(10);
        assert_eq!(a, b, "exporting rows come back until update");
        // A bigger batch returns the exporting rows first, then new ones.
        let c = top(12);
        assert_eq!(c["dataList"], json!(all[..12]));
        assert_eq!(fake.count(tid, RowState::Exporting), 12);
        envelope_ok(&post(&fake, &at, &format!("/api/notexportdata/update?taskId={tid}")));
        assert_eq!(fake.count(tid, RowState::Exported), 12);
        let mut seen: Vec<Value> = c["dataList"].as_array().expect("list").clone();
        for _ in 0..10 {
            let d = top(10);
            assert_eq!(d["total"], 25 - seen.len());
            if d["currentTotal"] == 0 {
                assert_eq!(d["dataList"], json!([]));
                break;
            }
            seen.extend(d["dataList"].as_array().expect("list").iter().cloned());
            envelope_ok(&post(&fake, &at, &format!("/api/notexportdata/update?taskId={tid}")));
        }
        assert_eq!(seen, all);
        assert_eq!(fake.count(tid, RowState::Exported), 25);
        // Paging by offset still sees everything; new rows start as new.
        fake.add_rows(tid, FakeOctoparse::make_rows(3, 9));
        assert_eq!(top(10)["currentTotal"], 3);
        let v = envelope_ok(&get(
            &fake,
            &at,
            &format!("/api/alldata/GetDataOfTaskByOffset?taskId={tid}&offset=0&size=100"),
        ));
        assert_eq!(v["data"]["total"], 28);
        // Clear removes rows in every state.
        let v = envelope_ok(&post(&fake, &at, &format!("/api/task/removeDataByTaskId?taskId={tid}")));
        assert!(v.get("data").is_none());
        assert!(fake.rows(tid).is_empty());
        assert_eq!(top(10)["total"], 0);
    }

    #[test]
    fn dropped_update_answer_is_applied() {
        let (fake, tid) = with_task(8);
        let at = fake.issue_access_token();
        let a = agent();
        envelope_ok(&get_with(
            &a,
            &fake,
            Some(&at),
            &format!("/api/notexportdata/gettop?taskId={tid}&size=5"),
        ));
        fake.drop_update_response_next();
        // Raw: not a single response byte, the connection just closes.
        let req = format!(
            "POST /api/notexportdata/update?taskId={tid} HTTP/1.1\r\nHost: x\r\nAuthorization: bearer {at}\r\nContent-Length: 0\r\n\r\n"
        );
        let got = raw(&fake, &req);
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
        assert_eq!(fake.count(tid, RowState::Exported), 5);
        assert_eq!(fake.count(tid, RowState::New), 3);
        let upd = fake.requests_to("/api/notexportdata/update");
        assert_eq!(upd.len(), 1);
        assert!(upd[0].dropped);

        // Through a pooled keep-alive connection with ureq: an error, the
        // update applied once; the next update answers normally.
        envelope_ok(&get_with(
            &a,
            &fake,
            Some(&at),
            &format!("/api/notexportdata/gettop?taskId={tid}&size=5"),
        ));
        fake.drop_update_response_next();
        let r = a
            .post(fake.url(&format!("/api/notexportdata/update?taskId={tid}")))
            .header("Authorization", &format!("bearer {at}"))
            .send_empty();
        assert!(r.is_err(), "expected a transport error");
        assert_eq!(fake.count(tid, RowState::Exported), 8);
        let n = fake.requests_to("/api/notexportdata/update").len();
        assert_eq!(n, 2, "ureq does not resend a POST whose pooled connection closed");
        envelope_ok(&get_with(
            &a,
            &fake,
            Some(&at),
            &format!("/api/notexportdata/gettop?taskId={tid}&size=5"),
        ));
        let g = done(
            a.post(fake.url(&format!("/api/notexportdata/update?taskId={tid}")))
                .header("Authorization", &format!("bearer {at}"))
                .send_empty(),
        );
        envelope_ok(&g);
    }

    #[test]
    fn leaky_bucket_429_and_server_side_state() {
        let fake = FakeOctoparse::start();
        fake.add_group(1, "G");
        let at = fake.issue_access_token();
        let a = agent();
        let t0 = Instant::now();
        let statuses: Vec<u16> =
            (0..150).map(|_| get_with(&a, &fake, Some(&at), "/api/taskgroup").status).collect();
        let burst = t0.elapsed().as_secs_f64();
        let ok = statuses.iter().filter(|&&s| s == 200).count();
        assert!(statuses.iter().all(|&s| s == 200 || s == 429));
        assert!(ok >= 100 && ok as f64 <= 100.0 + 20.0 * burst + 1.0, "{ok} ok in {burst:.3}s");
        assert_eq!(fake.rejected_by_bucket(), 150 - ok);
        let first429 = statuses.iter().position(|&s| s == 429).expect("some 429");
        assert!(statuses[..first429].iter().all(|&s| s == 200));
        // A slot frees every 50 ms, so look for the next 429 among a few calls.
        let next_429 = |a: &ureq::Agent, tok: &str| -> Got {
            for _ in 0..10 {
                let g = get_with(a, &fake, Some(tok), "/api/taskgroup");
                if g.status == 429 {
                    return g;
                }
            }
            panic!("no 429 in 10 calls");
        };
        let g = next_429(&a, &at);
        assert_eq!(g.text(), QUOTA_BODY);
        assert_eq!(g.header("retry-after"), None);
        assert_eq!(g.json()["error"], "quota_exceeded");

        // A "restarted" client (new agent, new login) gets no fresh credit;
        // /token is not limited.
        let t = Instant::now();
        let (at2, _) = login(&fake);
        let a2 = agent();
        let ok2 =
            (0..10).filter(|_| get_with(&a2, &fake, Some(&at2), "/api/taskgroup").status == 200).count();
        let el = t.elapsed().as_secs_f64();
        assert!(ok2 as f64 <= 20.0 * el + 2.0, "{ok2} of 10 ok after a restart ({el:.3}s)");

        fake.set_retry_after(Some(3));
        assert_eq!(next_429(&a, &at).header("retry-after"), Some("3"));
        fake.set_retry_after(None);

        let t1 = Instant::now();
        thread::sleep(Duration::from_secs(1));
        let more = (0..30).filter(|_| get_with(&a, &fake, Some(&at), "/api/taskgroup").status == 200).count();
        let el = t1.elapsed().as_secs_f64();
        assert!(more >= 19 && more as f64 <= 20.0 * el + 2.0, "{more} ok after {el:.3}s");

        // A custom bucket.
        fake.set_bucket(1000.0, 3.0);
        thread::sleep(Duration::from_millis(50));
        fake.set_bucket(0.001, 3.0);
        let s: Vec<u16> = (0..5).map(|_| get_with(&a, &fake, Some(&at), "/api/taskgroup").status).collect();
        assert_eq!(s, vec![200, 200, 200, 429, 429]);
    }

    #[test]
    fn business_errors_come_with_http_200() {
        let (fake, tid) = with_task(3);
        fake.add_foreign_task("aaaaaaaa-0000-0000-0000-000000000000");
        let at = fake.issue_access_token();
        for t in ["nope", "aaaaaaaa-0000-0000-0000-000000000000", ""] {
            for pq in [
                format!("/api/alldata/GetDataOfTaskByOffset?taskId={t}&offset=0&size=10"),
                format!("/api/notexportdata/gettop?taskId={t}&size=10"),
            ] {
                let g = get(&fake, &at, &pq);
                assert_eq!((g.status, g.text().as_str()), (200, TASKID_ERROR_BODY), "{pq}");
            }
            for pq in [
                format!("/api/notexportdata/update?taskId={t}"),
                format!("/api/task/removeDataByTaskId?taskId={t}"),
            ] {
                let g = post(&fake, &at, &pq);
                assert_eq!((g.status, g.text().as_str()), (200, TASKID_ERROR_BODY), "{pq}");
            }
        }
        for size in ["0", "1001", "-1"] {
            for pq in [
                format!("/api/alldata/GetDataOfTaskByOffset?taskId={tid}&offset=0&size={size}"),
                format!("/api/notexportdata/gettop?taskId={tid}&size={size}"),
            ] {
                let g = get(&fake, &at, &pq);
                assert_eq!((g.status, g.text().as_str()), (200, PAGESIZE_ERROR_BODY), "{pq}");
            }
        }
        assert_eq!(fake.count(tid, RowState::New), 3);
        for size in ["1", "1000"] {
            envelope_ok(&get(&fake, &at, &format!("/api/notexportdata/gettop?taskId={tid}&size={size}")));
        }

        // Wrong method both ways (even without a token), unknown path, advanced tier.
        let g = post(&fake, &at, "/api/taskgroup");
        assert_eq!(
            (g.status, g.text().as_str()),
            (405, r#"{"message":"Requested Resource Does Not Support HTTP Method 'POST'"}"#)
        );
        let g = get(&fake, "x", &format!("/api/notexportdata/update?taskId={tid}"));
        assert_eq!(g.status, 405);
        assert_eq!(g.json()["message"], "Requested Resource Does Not Support HTTP Method 'GET'");
        let g = get(&fake, &at, "/api/nothing");
        assert_eq!(g.status, 404);
        assert_eq!(g.json()["error"], "not_found");
        let g = post(&fake, &at, &format!("/api/task/startTask?taskId={tid}"));
        assert_eq!((g.status, g.text().as_str()), (403, NOT_ALLOWED_BODY));
        let calls = fake.requests();
        assert!(calls.iter().any(|c| c.status == 200 && c.error.as_deref() == Some("taskid_error")));
    }

    #[test]
    fn injected_failures_and_latency() {
        let (fake, tid) = with_task(3);
        let at = fake.issue_access_token();
        fake.fail_next(2, 500);
        // /token is never failed.
        assert_eq!(token_post(&fake, "username=user&password=pass&grant_type=password").status, 200);
        let g = get(&fake, &at, &format!("/api/notexportdata/gettop?taskId={tid}&size=2"));
        assert_eq!((g.status, g.text().as_str()), (500, SERVER_ERROR_BODY));
        assert_eq!(post(&fake, &at, &format!("/api/notexportdata/update?taskId={tid}")).status, 500);
        assert_eq!(fake.count(tid, RowState::New), 3, "failed calls are not applied");
        fake.fail_next(1, 503);
        let g = get(&fake, &at, "/api/taskgroup");
        assert_eq!((g.status, g.text().as_str()), (503, SERVICE_UNAVAILABLE_BODY));
        envelope_ok(&get(&fake, &at, "/api/taskgroup"));

        fake.set_latency(Duration::from_millis(300));
        let t = Instant::now();
        envelope_ok(&get(&fake, &at, "/api/taskgroup"));
        assert!(t.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn make_rows_is_deterministic_with_duplicates_and_csv_hazards() {
        let a = FakeOctoparse::make_rows(40, 7);
        assert_eq!(a, FakeOctoparse::make_rows(40, 7));
        assert_ne!(a, FakeOctoparse::make_rows(40, 8));
        assert_eq!(a[5], a[4]);
        assert_eq!(a[15], a[14]);
        let dups = (1..a.len()).filter(|&i| a[i] == a[i - 1]).count();
        assert_eq!(dups, 4);
        let notes: Vec<&str> = a.iter().filter_map(|r| r["Note"].as_str()).collect();
        assert!(notes.iter().any(|n| n.contains(',')));
        assert!(notes.iter().any(|n| n.contains('"')));
        assert!(notes.iter().any(|n| n.contains('\n')));
        assert!(notes.iter().any(|n| n.contains("\r\n")));
        assert!(a.iter().all(|r| r["Price"].is_number() && r["Stock"].is_i64() && r["名称"].is_string()));
        assert!(a.iter().any(|r| r["名称"].as_str().is_some_and(|s| !s.is_ascii())));
        assert_eq!(a[0].keys().count(), 6);
    }
}
