//! A stateful fake of PicWish for integration tests and benchmarks
//! (protocol: `docs/picwish.md`). Both interfaces, the OSS upload and the
//! result storage share ONE loopback port:
//! `api_url() == web_url() == oss_url() == base_url()`.
//!
//! Routing (first match wins):
//! - `Host: <bucket>.<ACCELERATE>` (virtual-host OSS) or a path `/<BUCKET>/…`
//!   (path-style OSS): the upload, [`oss`].
//! - `/api/tasks/visual/<op>[/<task_id>]`: the official API, [`api`].
//! - `/base/passport/v1/api/login` and `/app/picwish/…`: the web flow,
//!   [`web`] (the OSS callback lands at `/app/picwish/oss/callback`).
//! - `/results/<token>`: result objects (GET only: like signed OSS URLs, a
//!   HEAD answers 403); `/cdn/<name>`: bytes published with
//!   [`FakePicwish::publish`], what `image_url` inputs point at.
//!
//! Files: `state.rs` (what the fake remembers, the task clock), `api.rs`,
//! `web.rs`, `oss.rs` (the three faces), `multipart.rs` (form bodies); this
//! file holds [`FakePicwish`] (start, knobs, inspectors), the routing, the
//! result and CDN objects and [`result_bytes`].
//!
//! Tasks are computed lazily from the wall clock: a task is in state 4
//! (processing) with `progress` rising until `process_ms` have passed since
//! its creation, then settles to 1 or to its failure state. Every request
//! and every inspector settles what is due first, so a task whose create
//! answer was dropped still completes (and charges) unseen.
//!
//! Choices where the real service is unknown (documented here once):
//! - failures (`fail_state`, state -7 for a non-image, -3 for an unknown
//!   `/cdn/` URL) surface when processing ends, not at once;
//! - `fail_state` markers match as a substring of the input bytes OR as the
//!   input's sha256 hex (either hits);
//! - the passport login answers a wrong password with HTTP 200 and body
//!   `{"status":401,…}` (the gateway style the `picwish` package checks:
//!   the body `status` counts, not only the HTTP code);
//! - balances and the token bucket apply to the official API only; the web
//!   flow is unmetered (`web_storm` injects its 429s); a create is refused
//!   (402) when the key's balance is below the op's cost, and the cost is
//!   charged when the task settles to 1;
//! - result bytes are small deterministic PNGs ([`result_bytes`]) whatever
//!   the requested `format`;
//! - `drop_create_answer` sends the status line and headers, then closes
//!   before any body byte (the server core always writes a head).
#![allow(dead_code)]

pub mod api;
pub mod multipart;
pub mod oss;
pub mod state;
pub mod web;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support::http::{Body, Handler, Request, Response, Server, lock};

// Re-exports for the tests and examples that use the fake (not all do).
#[allow(unused_imports)]
pub use multipart::{Part, parse_form, parse_urlencoded};
#[allow(unused_imports)]
pub use oss::{sign, string_to_sign};
#[allow(unused_imports)]
pub use state::{FailRule, Grant, Origin, State, Stored, Task};

/// The phone number the fake passport accepts.
pub const PHONE: &str = "13800000000";
/// The password the fake passport accepts.
pub const PASSWORD: &str = "correct horse";
/// The country code the fake passport expects.
pub const COUNTRY_CODE: &str = "86";
/// The bucket of every upload grant.
pub const BUCKET: &str = "picwish-fake-hk";
/// The accelerate domain of every grant (virtual-host OSS is
/// `<BUCKET>.<ACCELERATE>`).
pub const ACCELERATE: &str = "oss-accelerate.aliyuncs.com";
/// The endpoint of every grant.
pub const ENDPOINT: &str = "oss-cn-hongkong.aliyuncs.com";
/// The web flow's product id (query `product_id`).
pub const PRODUCT_ID: &str = "482";
/// Largest accepted input (15 MB, docs/picwish.md).
pub const MAX_FILE: usize = 15 * 1024 * 1024;
/// Default processing time of a task.
pub const DEFAULT_PROCESS_MS: u64 = 1500;
/// Default per-key rate of the official API (requests per second) and burst.
pub const DEFAULT_RATE: f64 = 2.0;
/// Default life of a result URL.
pub const DEFAULT_RESULT_TTL: Duration = Duration::from_secs(3600);
/// Default life of a task (a query after it answers 404).
pub const DEFAULT_TASK_TTL: Duration = Duration::from_secs(3600);
/// Life of an upload grant.
pub const GRANT_TTL: Duration = Duration::from_secs(900);
/// Largest accepted clock skew of an OSS request.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The bytes of a result: `kind` is `"image"`, `"mask"` or `"preview"` (the
/// web poll's watermarked image), `op` the official op path or the web
/// route's last segment (`segmentation`, `scale`, `colorization`, …).
/// A 32×32 RGBA PNG whose pixels come from sha256(kind, op, sha256(input)).
pub fn result_bytes(kind: &str, op: &str, input: &[u8]) -> Vec<u8> {
    let seed = Sha256::new()
        .chain_update(kind.as_bytes())
        .chain_update([0])
        .chain_update(op.as_bytes())
        .chain_update([0])
        .chain_update(Sha256::digest(input))
        .finalize();
    let mut px = Vec::with_capacity(32 * 32 * 4);
    let mut block = seed.to_vec();
    while px.len() < 32 * 32 * 4 {
        block = Sha256::digest(&block).to_vec();
        px.extend_from_slice(&block);
    }
    px.truncate(32 * 32 * 4);
    let mut out = Vec::new();
    let encoded = (|| -> Result<(), png::EncodingError> {
        let mut enc = png::Encoder::new(&mut out, 32, 32);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&px)?;
        w.finish()
    })();
    if encoded.is_err() {
        // Cannot happen with a Vec sink; stay deterministic anyway.
        return px;
    }
    out
}

/// Lowercase hex sha256 of `data` (the key of the per-input counters).
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether `b` starts with the magic of a PNG, JPEG, WebP, BMP or GIF.
pub fn is_image(b: &[u8]) -> bool {
    b.starts_with(b"\x89PNG\r\n\x1a\n")
        || b.starts_with(&[0xff, 0xd8, 0xff])
        || (b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP")
        || b.starts_with(b"BM")
        || b.starts_with(b"GIF87a")
        || b.starts_with(b"GIF89a")
}

/// The OSS error answer (`<Error><Code>…`), as OSS writes it.
pub fn oss_error(status: u16, code: &str, message: &str) -> Response {
    oss_error_with(status, code, message, "")
}

/// [`oss_error`] with extra elements (already XML) after `Message`.
pub fn oss_error_with(status: u16, code: &str, message: &str, extra: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>{code}</Code>\n  \
         <Message>{message}</Message>\n{extra}  <RequestId>5F0000000000000000000000</RequestId>\n  \
         <HostId>{BUCKET}.{ACCELERATE}</HostId>\n</Error>\n"
    );
    Response::new(status).header("Content-Type", "application/xml").with_body(Body::Bytes(body.into_bytes()))
}

/// A JSON answer whose body `status` mirrors the HTTP status.
pub fn status_json(status: u16, message: &str) -> Response {
    Response::json(status, &serde_json::json!({"status": status, "message": message}).to_string())
}

/// Start options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Allowed API keys.
    pub keys: Vec<String>,
    /// Processing time in milliseconds.
    pub process_ms: u64,
    /// Per-key requests per second (and burst) of the official API.
    pub rate: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { keys: vec!["test-key".into()], process_ms: DEFAULT_PROCESS_MS, rate: DEFAULT_RATE }
    }
}

/// The running fake.
pub struct FakePicwish {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl FakePicwish {
    /// Starts with default options and these API keys.
    pub fn start(keys: &[&str]) -> FakePicwish {
        FakePicwish::start_with(Options {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            ..Options::default()
        })
    }

    /// Starts with `opts`.
    pub fn start_with(opts: Options) -> FakePicwish {
        let state = Arc::new(Mutex::new(State {
            base: String::new(),
            keys: opts.keys.into_iter().collect(),
            process: Duration::from_millis(opts.process_ms),
            rate: opts.rate,
            buckets: HashMap::new(),
            balances: HashMap::new(),
            tasks: HashMap::new(),
            task_ttl: DEFAULT_TASK_TTL,
            results: HashMap::new(),
            result_ttl: DEFAULT_RESULT_TTL,
            cdn: HashMap::new(),
            storm: 0,
            web_storm: 0,
            fail_rules: Vec::new(),
            drop_create: 0,
            stall_create: None,
            expire_grants: 0,
            expire_fetches: 0,
            fail_callbacks: 0,
            login_tokens: HashSet::new(),
            grants: HashMap::new(),
            objects: HashMap::new(),
            resources: HashMap::new(),
            creates: 0,
            creates_by: HashMap::new(),
            polls: 0,
            api_requests: 0,
            rate_limited: 0,
            charged: 0,
            charged_by: HashMap::new(),
            credits: 0,
            uploads: 0,
            logins: 0,
            log: Vec::new(),
            seq: 0,
        }));
        let s = Arc::clone(&state);
        let handler: Handler = Arc::new(move |req: &Request| route(&s, req));
        let server = Server::start(handler);
        lock(&state).base = server.base_url();
        FakePicwish { server, state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }
    /// The official API's base (`picwish.api_url`).
    pub fn api_url(&self) -> String {
        self.base_url()
    }
    /// The web gateway's base (`picwish.web_url`; routes under `/app/picwish`).
    pub fn web_url(&self) -> String {
        self.base_url()
    }
    /// The OSS origin (`picwish.oss_url`; path-style objects).
    pub fn oss_url(&self) -> String {
        self.base_url()
    }
    /// The server core (its raw request log, connection counts).
    pub fn server(&self) -> &Server {
        &self.server
    }
    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        let mut s = lock(&self.state);
        s.settle();
        s
    }

    // ---- knobs ----

    /// Adds an allowed API key.
    pub fn add_key(&self, key: &str) {
        self.st().keys.insert(key.to_string());
    }
    /// Removes an API key (it answers 401 from now on).
    pub fn remove_key(&self, key: &str) {
        self.st().keys.remove(key);
    }
    /// Sets the processing time of tasks (including running ones).
    pub fn process_ms(&self, ms: u64) {
        self.st().process = Duration::from_millis(ms);
    }
    /// Sets the per-key rate (requests per second, also the burst).
    pub fn rate(&self, per_sec: f64) {
        let mut s = self.st();
        s.rate = per_sec;
        s.buckets.clear();
    }
    /// Publishes `bytes` at `/cdn/<name>`; answers the URL.
    pub fn publish(&self, name: &str, bytes: &[u8]) -> String {
        let mut s = self.st();
        s.cdn.insert(name.to_string(), bytes.to_vec());
        format!("{}/cdn/{name}", s.base)
    }
    /// The URL `/cdn/<name>` would have (published or not).
    pub fn cdn_url(&self, name: &str) -> String {
        format!("{}/cdn/{name}", self.base_url())
    }
    /// Sets the life of result URLs (applies to existing ones too).
    pub fn result_ttl(&self, ttl: Duration) {
        self.st().result_ttl = ttl;
    }
    /// Sets the life of tasks (applies to existing ones too).
    pub fn task_ttl(&self, ttl: Duration) {
        self.st().task_ttl = ttl;
    }
    /// Expires every result URL issued so far (403 AccessDenied).
    pub fn expire_results(&self) {
        for r in self.st().results.values_mut() {
            r.expired = true;
        }
    }
    /// The next `n` result downloads find their URL expired (403), as a
    /// URL fetched after its hour would; a new query gives fresh URLs.
    pub fn expire_next_fetches(&self, n: usize) {
        self.st().expire_fetches = n;
    }
    /// Forgets every task (queries answer 404).
    pub fn forget_tasks(&self) {
        self.st().tasks.clear();
    }
    /// Sets `key`'s balance in credits (a create answers 402 at 0).
    pub fn balance(&self, key: &str, credits: i64) {
        self.st().balances.insert(key.to_string(), credits);
    }
    /// `key`'s balance (`None`: unlimited).
    pub fn balance_of(&self, key: &str) -> Option<i64> {
        self.st().balances.get(key).copied()
    }
    /// The next `n` official API requests answer 429.
    pub fn storm(&self, n: usize) {
        self.st().storm = n;
    }
    /// Tasks whose input contains `marker` (or whose sha256 hex is
    /// `marker`) settle to `state`, always.
    pub fn fail_state(&self, marker: &str, state: i64) {
        self.st().fail_rules.push(FailRule { marker: marker.to_string(), state, left: None });
    }
    /// Like [`FakePicwish::fail_state`], for the next `n` matching tasks.
    pub fn fail_state_times(&self, marker: &str, state: i64, n: usize) {
        self.st().fail_rules.push(FailRule { marker: marker.to_string(), state, left: Some(n) });
    }
    /// The next `n` creates (either interface) make the task, then close
    /// the connection before the answer's body.
    pub fn drop_create_answer(&self, n: usize) {
        self.st().drop_create = n;
    }
    /// Holds every official create answer for `d` after making the task
    /// (a client that gives up meanwhile never learns the id; zero: no
    /// hold).
    pub fn stall_create(&self, d: Duration) {
        self.st().stall_create = (!d.is_zero()).then_some(d);
    }
    /// The next `n` gateway requests (web flow, after the token check)
    /// answer HTTP 429 `{"status":429}`.
    pub fn web_storm(&self, n: usize) {
        self.st().web_storm = n;
    }
    /// The next `n` upload grants are issued already expired.
    pub fn expire_next_grants(&self, n: usize) {
        self.st().expire_grants = n;
    }
    /// The next `n` OSS callbacks fail (the PUT answers 203 CallbackFailed).
    pub fn fail_callbacks(&self, n: usize) {
        self.st().fail_callbacks = n;
    }
    /// Revokes every token the login issued (they answer 401).
    pub fn revoke_logins(&self) {
        self.st().login_tokens.clear();
    }

    // ---- inspectors ----

    /// Tasks created (both interfaces).
    pub fn creates(&self) -> usize {
        self.st().creates
    }
    /// Tasks created for the input with this sha256 hex.
    pub fn creates_for(&self, sha256_hex: &str) -> usize {
        self.st().creates_by.get(sha256_hex).copied().unwrap_or(0)
    }
    /// Task queries (both interfaces, answered or not).
    pub fn polls(&self) -> usize {
        self.st().polls
    }
    /// Official API requests (creates and queries, rejected ones included).
    pub fn api_requests(&self) -> usize {
        self.st().api_requests
    }
    /// Official API requests answered 429.
    pub fn rate_limited(&self) -> usize {
        self.st().rate_limited
    }
    /// Tasks that succeeded (each charged).
    pub fn charged(&self) -> usize {
        self.st().charged
    }
    /// Succeeded tasks of the input with this sha256 hex.
    pub fn charged_for(&self, sha256_hex: &str) -> usize {
        self.st().charged_by.get(sha256_hex).copied().unwrap_or(0)
    }
    /// Credits charged in all (docs/picwish.md credits table).
    pub fn credits_used(&self) -> i64 {
        self.st().credits
    }
    /// Successful OSS uploads.
    pub fn uploads(&self) -> usize {
        self.st().uploads
    }
    /// Successful logins.
    pub fn logins(&self) -> usize {
        self.st().logins
    }
    /// (method, path) of every request, secrets removed from the query.
    pub fn request_log(&self) -> Vec<(String, String)> {
        self.st().log.clone()
    }
    /// A task's (state, progress) now, if it is known.
    pub fn task_state(&self, task_id: &str) -> Option<(i64, u64)> {
        let s = self.st();
        s.tasks.get(task_id).map(|t| s.view(t))
    }
}

/// Query parameters whose values are secrets (never logged).
const SECRET_PARAMS: [&str; 4] = ["security-token", "signature", "ossaccesskeyid", "api_token"];

fn loggable(path: &str) -> String {
    let Some((p, q)) = path.split_once('?') else { return path.to_string() };
    let q: Vec<String> = q
        .split('&')
        .map(|kv| {
            let k = kv.split('=').next().unwrap_or("");
            if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) {
                format!("{k}=***")
            } else {
                kv.into()
            }
        })
        .collect();
    format!("{p}?{}", q.join("&"))
}

fn route(state: &Mutex<State>, req: &Request) -> Response {
    {
        let mut s = lock(state);
        s.log.push((req.method.clone(), loggable(&req.path)));
        s.settle();
    }
    let host = req.header("host").unwrap_or("");
    let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h).to_ascii_lowercase();
    let path = req.path_only().to_string();
    if let Some(bucket) = hostname.strip_suffix(&format!(".{ACCELERATE}")) {
        return oss::put(state, req, bucket, path.strip_prefix('/').unwrap_or(&path));
    }
    if let Some(rest) = path.strip_prefix('/')
        && let Some((bucket, key)) = rest.split_once('/')
        && bucket == BUCKET
    {
        return oss::put(state, req, bucket, key);
    }
    if path.starts_with("/api/tasks/visual/") {
        return api::handle(state, req);
    }
    if path == "/base/passport/v1/api/login" || path.starts_with("/app/picwish/") {
        return web::handle(state, req);
    }
    if let Some(token) = path.strip_prefix("/results/") {
        return serve_result(state, req, token);
    }
    if let Some(name) = path.strip_prefix("/cdn/") {
        let s = lock(state);
        return match s.cdn.get(&crate::support::http::percent_decode(name)) {
            Some(b) => Response::new(200)
                .header("Content-Type", "application/octet-stream")
                .with_body(Body::Bytes(b.clone())),
            None => Response::text(404, "not found\n"),
        };
    }
    status_json(404, "not found")
}

fn serve_result(state: &Mutex<State>, req: &Request, token: &str) -> Response {
    let mut s = lock(state);
    if s.expire_fetches > 0 && req.method == "GET" && s.results.contains_key(token) {
        s.expire_fetches -= 1;
        if let Some(r) = s.results.get_mut(token) {
            r.expired = true;
        }
    }
    let Some(r) = s.results.get(token) else {
        return oss_error(404, "NoSuchKey", "The specified key does not exist.");
    };
    if req.method != "GET" {
        // The URLs are signed for GET, as on real OSS.
        return oss_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match.",
        );
    }
    if r.expired || r.created.elapsed() >= s.result_ttl {
        return oss_error(403, "AccessDenied", "Request has expired.");
    }
    Response::new(200).header("Content-Type", "image/png").with_body(Body::Bytes(r.bytes.clone()))
}
