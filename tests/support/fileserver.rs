//! A static file server with fault injection, for integration tests.
//!
//! Serves in-memory files at exact paths (query strings are ignored) with
//! RFC 9110 range semantics: single `Range: bytes=` ranges (`N-`, `N-M`,
//! `-S`), `If-Range` with a strong ETag or the exact `Last-Modified` date,
//! 416 for unsatisfiable ranges, `Accept-Ranges: bytes`. Faults can be queued
//! per path and are consumed one per request.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::http::{Body, Handler, LoggedRequest, Request, Response, Server, lock};

/// A fault applied to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Send the normal headers (full `Content-Length`), then only `n` body
    /// bytes, then close the connection.
    Truncate(usize),
    /// Send `after` body bytes, flush, pause for `dur`, then continue.
    Stall {
        /// Body bytes sent before the pause.
        after: usize,
        /// Length of the pause.
        dur: Duration,
    },
    /// Answer with this status (and optional `Retry-After` value) instead.
    /// Works even for paths that have no file.
    Status {
        /// Status code.
        code: u16,
        /// `Retry-After` value: delay seconds (`"1"`) or an HTTP date.
        retry_after: Option<String>,
    },
    /// Answer 200 with the full body even when a range was asked.
    IgnoreRange,
    /// Answer 206 whose range starts at another offset than asked (`N/2`
    /// for `N > 0`, else `TOTAL/2`), with a correct length and body for that
    /// wrong range. Needs a file of at least 2 bytes.
    WrongContentRange,
    /// Answer 206 for the asked range (or `0-` without `Range`) but with a
    /// `Content-Range` total of `TOTAL + 1000`.
    WrongTotal,
    /// Answer 200 with the full body, no `Content-Length`, delimited by
    /// closing the connection.
    NoLength,
    /// Send the (normal) body at this many bytes per second.
    Drip(u64),
    /// Normal response but with `Content-Encoding: gzip` on a body that is
    /// not gzip.
    Gzip,
}

/// `Last-Modified` of a freshly added file: 2020-01-01T00:00:00Z.
const BASE_MTIME_SECS: u64 = 1_577_836_800;

struct Entry {
    body: Arc<Vec<u8>>,
    etag: String,
    last_modified: SystemTime,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Entry>,
    faults: HashMap<String, VecDeque<Fault>>,
    /// (path prefix, lowercase header name, required value)
    require: Vec<(String, String, String)>,
    hits: HashMap<String, usize>,
    ranges: HashMap<String, Vec<String>>,
    /// path → `Content-Disposition` value sent with its answers.
    dispositions: HashMap<String, String>,
}

/// A running static file server on `127.0.0.1`. Stops on drop.
pub struct FileServer {
    server: Server,
    state: Arc<Mutex<State>>,
}

/// FNV-1a 64-bit hash.
fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The strong ETag the server uses for `body` (with quotes).
pub fn etag_for(body: &[u8]) -> String {
    format!("\"{:016x}-{:x}\"", fnv1a(body), body.len())
}

impl FileServer {
    /// Starts an empty file server on an ephemeral loopback port.
    pub fn start() -> FileServer {
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let handler: Handler = Arc::new(move |req: &Request| handle(&st, req));
        FileServer { server: Server::start(handler), state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Full URL for `path` (a leading `/` is added if missing).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{}", self.base_url(), path)
        } else {
            format!("{}/{}", self.base_url(), path)
        }
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The underlying generic server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Serves `body` at `path` for GET/HEAD. Same as [`FileServer::replace`]
    /// if the path already exists.
    pub fn add(&self, path: &str, body: Vec<u8>) {
        let mut st = lock(&self.state);
        let last_modified = match st.files.get(path) {
            Some(old) => old.last_modified + Duration::from_secs(3600),
            None => UNIX_EPOCH + Duration::from_secs(BASE_MTIME_SECS),
        };
        st.files
            .insert(path.to_string(), Entry { etag: etag_for(&body), body: Arc::new(body), last_modified });
    }

    /// Changes the content at `path`: new ETag (if the bytes differ) and a
    /// `Last-Modified` one hour later than before.
    pub fn replace(&self, path: &str, body: Vec<u8>) {
        self.add(path, body);
    }

    /// Stops serving `path` (404 from now on).
    pub fn remove(&self, path: &str) {
        lock(&self.state).files.remove(path);
    }

    /// Queues `fault` for the next `times` requests to `path` (GET or HEAD
    /// that passed the required-header check). Faults queued earlier are
    /// used first.
    pub fn add_fault(&self, path: &str, fault: Fault, times: usize) {
        let mut st = lock(&self.state);
        let q = st.faults.entry(path.to_string()).or_default();
        for _ in 0..times {
            q.push_back(fault.clone());
        }
    }

    /// Sends `Content-Disposition: value` with every answer for `path`
    /// (200, 206 and 416).
    pub fn set_disposition(&self, path: &str, value: &str) {
        lock(&self.state).dispositions.insert(path.to_string(), value.to_string());
    }

    /// Faults still queued for `path`.
    pub fn pending_faults(&self, path: &str) -> usize {
        lock(&self.state).faults.get(path).map_or(0, VecDeque::len)
    }

    /// Answers 403 to requests whose path starts with `path_prefix` unless
    /// header `name` is present with exactly `value`. Setting the same
    /// prefix and name again replaces the value.
    pub fn set_require_header(&self, path_prefix: &str, name: &str, value: &str) {
        let mut st = lock(&self.state);
        let name = name.to_ascii_lowercase();
        st.require.retain(|(p, n, _)| !(p == path_prefix && *n == name));
        st.require.push((path_prefix.to_string(), name, value.to_string()));
    }

    /// Requests received for `path` (any method or outcome; query ignored).
    pub fn hits(&self, path: &str) -> usize {
        lock(&self.state).hits.get(path).copied().unwrap_or(0)
    }

    /// `Range` header values received for `path`, in order.
    pub fn range_requests(&self, path: &str) -> Vec<String> {
        lock(&self.state).ranges.get(path).cloned().unwrap_or_default()
    }

    /// The current ETag of `path` (with quotes).
    pub fn etag(&self, path: &str) -> Option<String> {
        lock(&self.state).files.get(path).map(|e| e.etag.clone())
    }

    /// The current `Last-Modified` value of `path` (HTTP date).
    pub fn last_modified(&self, path: &str) -> Option<String> {
        lock(&self.state).files.get(path).map(|e| httpdate::fmt_http_date(e.last_modified))
    }

    /// Every request received, in order.
    pub fn log(&self) -> Vec<LoggedRequest> {
        self.server.log()
    }

    /// Number of TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    /// Response body bytes actually written to sockets (all paths).
    pub fn bytes_sent(&self) -> u64 {
        self.server.bytes_sent()
    }
}

/// What a (possibly absent) `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ranged {
    Full,
    Partial(u64, u64),
    Unsatisfiable,
}

/// Parses a single-range `bytes=` value against `total`. Anything invalid or
/// multi-range yields `Full` (the server may ignore Range).
fn parse_range(value: &str, total: u64) -> Ranged {
    let v = value.trim();
    let Some((unit, spec)) = v.split_once('=') else {
        return Ranged::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return Ranged::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ranged::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return Ranged::Full;
        };
        if n == 0 || total == 0 {
            return Ranged::Unsatisfiable;
        }
        return Ranged::Partial(total - n.min(total), total - 1);
    }
    let Ok(start) = a.parse::<u64>() else {
        return Ranged::Full;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return Ranged::Full,
        }
    };
    if start >= total {
        return Ranged::Unsatisfiable;
    }
    Ranged::Partial(start, end.min(total - 1))
}

/// RFC 9110 §13.1.5: does the `If-Range` validator match the current
/// representation? Weak ETags never match.
fn if_range_matches(value: &str, etag: &str, last_modified: SystemTime) -> bool {
    let v = value.trim();
    if v.starts_with("W/") {
        return false;
    }
    if v.starts_with('"') {
        return v == etag;
    }
    httpdate::parse_http_date(v).is_ok_and(|t| t == last_modified)
}

fn handle(state: &Mutex<State>, req: &Request) -> Response {
    let path = req.path_only().to_string();
    let method = req.method.to_ascii_uppercase();
    let (file, fault, disposition) = {
        let mut st = lock(state);
        *st.hits.entry(path.clone()).or_default() += 1;
        if let Some(r) = req.header("range") {
            st.ranges.entry(path.clone()).or_default().push(r.to_string());
        }
        if method != "GET" && method != "HEAD" {
            return Response::text(405, "method not allowed\n").header("Allow", "GET, HEAD");
        }
        for (prefix, name, value) in &st.require {
            if path.starts_with(prefix.as_str()) && req.header(name) != Some(value.as_str()) {
                return Response::text(403, "forbidden\n");
            }
        }
        let fault = st.faults.get_mut(&path).and_then(VecDeque::pop_front);
        let file = st.files.get(&path).map(|e| (e.body.clone(), e.etag.clone(), e.last_modified));
        (file, fault, st.dispositions.get(&path).cloned())
    };
    if let Some(Fault::Status { code, retry_after }) = &fault {
        let mut r = Response::text(*code, "injected fault\n");
        if let Some(ra) = retry_after {
            r = r.header("Retry-After", ra);
        }
        return r;
    }
    let Some((body, etag, last_modified)) = file else {
        return Response::text(404, "not found\n");
    };
    let total = body.len() as u64;
    let base = Response::new(200)
        .header("Content-Type", "application/octet-stream")
        .header("Accept-Ranges", "bytes")
        .header("ETag", &etag)
        .header("Last-Modified", &httpdate::fmt_http_date(last_modified));
    let base = match &disposition {
        Some(v) => base.header("Content-Disposition", v),
        None => base,
    };

    // Range is only defined for GET (RFC 9110 §14.2); HEAD ignores it.
    let mut ranged = match req.header("range") {
        Some(r) if method == "GET" => {
            let validated = req.header("if-range").is_none_or(|v| if_range_matches(v, &etag, last_modified));
            if validated { parse_range(r, total) } else { Ranged::Full }
        }
        _ => Ranged::Full,
    };

    let full = |r: Response| r.with_body(Body::Bytes(body.to_vec()));
    let partial = |r: Response, s: u64, e: u64, reported_total: u64| {
        let mut r = r
            .header("Content-Range", &format!("bytes {s}-{e}/{reported_total}"))
            .with_body(Body::Bytes(body[s as usize..=e as usize].to_vec()));
        r.status = 206;
        r
    };
    // The range asked for, as a 206 would serve it (for the 206 faults).
    let asked = |ranged: Ranged| match ranged {
        Ranged::Partial(s, e) => Some((s, e)),
        _ if total > 0 => Some((0, total - 1)),
        _ => None,
    };

    match fault {
        Some(Fault::IgnoreRange) => ranged = Ranged::Full,
        Some(Fault::NoLength) => {
            return base.with_body(Body::CloseDelimited(body.to_vec()));
        }
        Some(Fault::WrongContentRange) if ranged != Ranged::Unsatisfiable => {
            if let Some((s, e)) = asked(ranged) {
                let ws = if s > 0 { s / 2 } else { total / 2 };
                let we = if e >= ws { e } else { total - 1 };
                return partial(base, ws, we, total);
            }
        }
        Some(Fault::WrongTotal) if ranged != Ranged::Unsatisfiable => {
            if let Some((s, e)) = asked(ranged) {
                return partial(base, s, e, total + 1000);
            }
        }
        _ => {}
    }

    let mut resp = match ranged {
        Ranged::Full => full(base),
        Ranged::Partial(s, e) => partial(base, s, e, total),
        Ranged::Unsatisfiable => {
            let mut r = base.header("Content-Range", &format!("bytes */{total}"));
            r.status = 416;
            r
        }
    };
    match fault {
        Some(Fault::Truncate(n)) => {
            resp.truncate_after = Some(n);
            resp.close = true;
        }
        Some(Fault::Stall { after, dur }) => resp.stall = Some((after, dur)),
        Some(Fault::Drip(rate)) => resp.drip_bytes_per_sec = Some(rate),
        Some(Fault::Gzip) => resp = resp.header("Content-Encoding", "gzip"),
        _ => {}
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    const T: Duration = Duration::from_secs(10);

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(T)).build().new_agent()
    }

    type Headers = Vec<(String, String)>;

    /// (status, headers, body) via ureq; body read errors give `Err`.
    fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Headers, Result<Vec<u8>, String>) {
        let mut req = agent().get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut resp = req.call().expect("request failed");
        let status = resp.status().as_u16();
        let hdrs = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = resp.body_mut().read_to_vec().map_err(|e| e.to_string());
        (status, hdrs, body)
    }

    fn h<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A raw response: status, headers, body bytes, and whether the peer
    /// closed (EOF) right after.
    struct Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    fn connect(port: u16) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(T)).expect("timeout");
        s.set_write_timeout(Some(T)).expect("timeout");
        s
    }

    fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
        let mut tmp = [0u8; 8192];
        match s.read(&mut tmp) {
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// Reads one response head from `s` (leftover bytes stay in `buf`).
    fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, Vec<(String, String)>) {
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            assert!(read_more(s, buf) > 0, "EOF before response head");
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status =
            lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).expect("status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers)
    }

    /// Reads one response; the body is read up to Content-Length (or EOF,
    /// whichever comes first), or to EOF without Content-Length.
    fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>, head_req: bool) -> Raw {
        let (status, headers) = read_head(s, buf);
        let want = if head_req || status == 204 || status == 304 {
            Some(0)
        } else {
            h(&headers, "content-length").map(|v| v.parse::<usize>().expect("content-length"))
        };
        loop {
            if want.is_some_and(|w| buf.len() >= w) {
                break;
            }
            if read_more(s, buf) == 0 {
                break;
            }
        }
        let n = want.map_or(buf.len(), |w| w.min(buf.len()));
        let body = buf.drain(..n).collect();
        Raw { status, headers, body }
    }

    fn raw(port: u16, request: &str) -> (Raw, TcpStream, Vec<u8>) {
        let mut s = connect(port);
        s.write_all(request.as_bytes()).expect("write");
        let mut buf = Vec::new();
        let r = read_response(&mut s, &mut buf, request.starts_with("HEAD"));
        (r, s, buf)
    }

    fn get_req(path: &str, extra: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n")
    }

    /// True if the peer closes the connection (EOF or reset) within 3 s.
    /// Polls `cond` for up to two seconds.
    fn wait_for(cond: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !cond() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    fn closes_soon(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
        s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        let mut tmp = [0u8; 4096];
        loop {
            match s.read(&mut tmp) {
                Ok(0) => return true,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    #[test]
    fn full_get_and_head() {
        let fs = FileServer::start();
        let body = data(1000);
        fs.add("/f.bin", body.clone());
        let (st, hd, b) = get(&fs.url("/f.bin"), &[]);
        assert_eq!(st, 200);
        assert_eq!(b.expect("body"), body);
        assert_eq!(h(&hd, "accept-ranges"), Some("bytes"));
        assert_eq!(h(&hd, "etag"), Some(etag_for(&body).as_str()));
        assert_eq!(h(&hd, "last-modified"), Some("Wed, 01 Jan 2020 00:00:00 GMT"));
        assert_eq!(h(&hd, "content-length"), Some("1000"));

        let (r, ..) = raw(fs.port(), "HEAD /f.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=5-\r\n\r\n");
        assert_eq!(r.status, 200, "Range is ignored for HEAD");
        assert_eq!(h(&r.headers, "content-length"), Some("1000"));
        assert!(r.body.is_empty());

        let (st, _, _) = get(&fs.url("/nope"), &[]);
        assert_eq!(st, 404);
        let (st, _, _) = get(&fs.url("/f.bin?x=1"), &[]);
        assert_eq!(st, 200, "query is ignored");
        assert_eq!(fs.hits("/f.bin"), 3);
        let settled = wait_for(|| fs.bytes_sent() == 2000 + "not found\n".len() as u64);
        assert!(settled, "bytes sent: {}", fs.bytes_sent());
    }

    #[test]
    fn method_not_allowed() {
        let fs = FileServer::start();
        fs.add("/f", data(10));
        let mut resp = agent().post(&fs.url("/f")).send("x").expect("post");
        assert_eq!(resp.status().as_u16(), 405);
        assert_eq!(resp.headers().get("allow").and_then(|v| v.to_str().ok()), Some("GET, HEAD"));
        let _ = resp.body_mut().read_to_vec();
    }

    #[test]
    fn range_206() {
        let fs = FileServer::start();
        let body = data(1000);
        fs.add("/r", body.clone());
        let url = fs.url("/r");

        let (st, hd, b) = get(&url, &[("Range", "bytes=100-")]);
        assert_eq!(st, 206);
        assert_eq!(h(&hd, "content-range"), Some("bytes 100-999/1000"));
        assert_eq!(h(&hd, "content-length"), Some("900"));
        assert_eq!(h(&hd, "accept-ranges"), Some("bytes"));
        assert_eq!(b.expect("body"), &body[100..]);

        let (st, hd, b) = get(&url, &[("Range", "bytes=10-19")]);
        assert_eq!(st, 206);
        assert_eq!(h(&hd, "content-range"), Some("bytes 10-19/1000"));
        assert_eq!(b.expect("body"), &body[10..20]);

        let (st, hd, b) = get(&url, &[("Range", "bytes=990-5000")]);
        assert_eq!(st, 206);
        assert_eq!(h(&hd, "content-range"), Some("bytes 990-999/1000"));
        assert_eq!(b.expect("body"), &body[990..]);

        let (st, hd, b) = get(&url, &[("Range", "bytes=-5")]);
        assert_eq!(st, 206);
        assert_eq!(h(&hd, "content-range"), Some("bytes 995-999/1000"));
        assert_eq!(b.expect("body"), &body[995..]);

        // Invalid and multi-range values are ignored -> 200.
        for v in ["bytes=20-10", "bytes=0-1,5-6", "items=0-1", "bytes=x-"] {
            let (st, _, b) = get(&url, &[("Range", v)]);
            assert_eq!(st, 200, "{v}");
            assert_eq!(b.expect("body").len(), 1000);
        }
        assert_eq!(fs.range_requests("/r")[..3], ["bytes=100-", "bytes=10-19", "bytes=990-5000"]);
        assert_eq!(fs.range_requests("/r").len(), 8);
    }

    #[test]
    fn range_416() {
        let fs = FileServer::start();
        fs.add("/r", data(1000));
        fs.add("/empty", Vec::new());
        for v in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
            let (st, hd, b) = get(&fs.url("/r"), &[("Range", v)]);
            assert_eq!(st, 416, "{v}");
            assert_eq!(h(&hd, "content-range"), Some("bytes */1000"));
            assert_eq!(b.expect("body").len(), 0);
        }
        let (st, hd, _) = get(&fs.url("/empty"), &[("Range", "bytes=0-")]);
        assert_eq!(st, 416);
        assert_eq!(h(&hd, "content-range"), Some("bytes */0"));
    }

    #[test]
    fn if_range() {
        let fs = FileServer::start();
        let v1 = data(1000);
        fs.add("/r", v1.clone());
        let url = fs.url("/r");
        let etag1 = fs.etag("/r").expect("etag");
        let date1 = fs.last_modified("/r").expect("date");

        let (st, _, b) = get(&url, &[("Range", "bytes=500-"), ("If-Range", &etag1)]);
        assert_eq!(st, 206);
        assert_eq!(b.expect("body"), &v1[500..]);
        let (st, _, _) = get(&url, &[("Range", "bytes=500-"), ("If-Range", &date1)]);
        assert_eq!(st, 206);
        let weak = format!("W/{etag1}");
        let (st, _, _) = get(&url, &[("Range", "bytes=500-"), ("If-Range", &weak)]);
        assert_eq!(st, 200, "weak validators never match");

        let v2: Vec<u8> = v1.iter().map(|b| b ^ 0xff).collect();
        fs.replace("/r", v2.clone());
        assert_ne!(fs.etag("/r"), Some(etag1.clone()));
        assert_ne!(fs.last_modified("/r"), Some(date1.clone()));
        for validator in [&etag1, &date1] {
            let (st, hd, b) = get(&url, &[("Range", "bytes=500-"), ("If-Range", validator)]);
            assert_eq!(st, 200, "{validator}");
            assert_eq!(h(&hd, "content-range"), None);
            assert_eq!(b.expect("body"), v2);
        }
    }

    #[test]
    fn require_header() {
        let fs = FileServer::start();
        fs.add("/img/a.jpg", data(10));
        fs.add("/other", data(10));
        fs.set_require_header("/img/", "Referer", "https://www.pixiv.net/");
        let (st, _, _) = get(&fs.url("/img/a.jpg"), &[]);
        assert_eq!(st, 403);
        let (st, _, _) = get(&fs.url("/img/a.jpg"), &[("Referer", "https://evil/")]);
        assert_eq!(st, 403);
        let (st, _, _) = get(&fs.url("/img/a.jpg"), &[("Referer", "https://www.pixiv.net/")]);
        assert_eq!(st, 200);
        let (st, _, _) = get(&fs.url("/other"), &[]);
        assert_eq!(st, 200);
        assert_eq!(fs.hits("/img/a.jpg"), 3);
        let log = fs.log();
        assert_eq!(log.len(), 4);
        assert_eq!(log[2].header("referer"), Some("https://www.pixiv.net/"));
    }

    #[test]
    fn fault_truncate() {
        let fs = FileServer::start();
        let body = data(1000);
        fs.add("/t", body.clone());
        fs.add_fault("/t", Fault::Truncate(300), 2);

        let (r, mut s, mut buf) = raw(fs.port(), &get_req("/t", ""));
        assert_eq!(r.status, 200);
        assert_eq!(h(&r.headers, "content-length"), Some("1000"));
        assert_eq!(r.body, &body[..300]);
        assert!(closes_soon(&mut s, &mut buf) && buf.is_empty());

        // ureq sees a short body as an error.
        let (st, _, b) = get(&fs.url("/t"), &[("Range", "bytes=100-")]);
        assert_eq!(st, 206);
        assert!(b.is_err(), "truncated body must be an error");
        // Fault used up: back to normal.
        let (st, _, b) = get(&fs.url("/t"), &[]);
        assert_eq!(st, 200);
        assert_eq!(b.expect("body"), body);
        // The server counts a chunk after its write returns, which may be
        // after the client has read it.
        let settled = wait_for(|| fs.bytes_sent() == 300 + 300 + 1000);
        assert!(settled, "bytes sent: {}", fs.bytes_sent());
    }

    #[test]
    fn fault_stall() {
        let fs = FileServer::start();
        let body = data(1000);
        fs.add("/s", body.clone());
        fs.add_fault("/s", Fault::Stall { after: 100, dur: Duration::from_millis(400) }, 1);
        let mut s = connect(fs.port());
        s.write_all(get_req("/s", "").as_bytes()).expect("write");
        let mut buf = Vec::new();
        let (st, _) = read_head(&mut s, &mut buf);
        assert_eq!(st, 200);
        while buf.len() < 100 {
            assert!(read_more(&mut s, &mut buf) > 0);
        }
        let t1 = Instant::now();
        assert_eq!(buf.len(), 100, "nothing past the stall point yet");
        while buf.len() < 1000 {
            assert!(read_more(&mut s, &mut buf) > 0);
        }
        assert!(t1.elapsed() >= Duration::from_millis(300), "{:?}", t1.elapsed());
        assert_eq!(buf, body);
    }

    #[test]
    fn stall_gives_up_when_dropped() {
        let fs = FileServer::start();
        fs.add("/s", data(1000));
        fs.add_fault("/s", Fault::Stall { after: 10, dur: Duration::from_secs(60) }, 1);
        let mut s = connect(fs.port());
        s.write_all(get_req("/s", "").as_bytes()).expect("write");
        let mut buf = Vec::new();
        let _ = read_head(&mut s, &mut buf);
        while buf.len() < 10 {
            assert!(read_more(&mut s, &mut buf) > 0);
        }
        let t = Instant::now();
        drop(fs);
        assert!(t.elapsed() < Duration::from_secs(3), "drop took {:?}", t.elapsed());
        assert!(closes_soon(&mut s, &mut buf), "connection not closed");
        assert_eq!(buf.len(), 10);
        assert!(t.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn fault_status_and_retry_after() {
        let fs = FileServer::start();
        fs.add("/f", data(10));
        fs.add_fault("/f", Fault::Status { code: 429, retry_after: Some("1".into()) }, 1);
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        fs.add_fault("/f", Fault::Status { code: 503, retry_after: Some(date.into()) }, 1);
        fs.add_fault("/api", Fault::Status { code: 500, retry_after: None }, 1);
        let (st, hd, _) = get(&fs.url("/f"), &[]);
        assert_eq!((st, h(&hd, "retry-after")), (429, Some("1")));
        let (st, hd, _) = get(&fs.url("/f"), &[]);
        assert_eq!((st, h(&hd, "retry-after")), (503, Some(date)));
        let (st, hd, _) = get(&fs.url("/api"), &[]);
        assert_eq!((st, h(&hd, "retry-after")), (500, None));
        let (st, _, _) = get(&fs.url("/api"), &[]);
        assert_eq!(st, 404);
    }

    #[test]
    fn faults_consumed_in_order_and_count() {
        let fs = FileServer::start();
        fs.add("/f", data(10));
        fs.add_fault("/f", Fault::Status { code: 500, retry_after: None }, 2);
        fs.add_fault("/f", Fault::Status { code: 503, retry_after: None }, 1);
        fs.add_fault("/f", Fault::IgnoreRange, 1);
        assert_eq!(fs.pending_faults("/f"), 4);
        let statuses: Vec<u16> = (0..6).map(|_| get(&fs.url("/f"), &[("Range", "bytes=2-")]).0).collect();
        assert_eq!(statuses, [500, 500, 503, 200, 206, 206]);
        assert_eq!(fs.pending_faults("/f"), 0);
        assert_eq!(fs.hits("/f"), 6);
    }

    #[test]
    fn fault_ignore_range() {
        let fs = FileServer::start();
        let body = data(1000);
        fs.add("/f", body.clone());
        fs.add_fault("/f", Fault::IgnoreRange, 1);
        let (st, hd, b) = get(&fs.url("/f"), &[("Range", "bytes=100-")]);
        assert_eq!(st, 200);
        assert_eq!(h(&hd, "content-range"), None);
        assert_eq!(b.expect("body"), body);
    }

    #[test]
    fn fault_wrong_content_range() {
        let fs = FileServer::start();
        let body = data(1000);
        fs.add("/f", body.clone());
        fs.add_fault("/f", Fault::WrongContentRange, 2);
        let (st, hd, b) = get(&fs.url("/f"), &[("Range", "bytes=600-")]);
        assert_eq!(st, 206);
        assert_eq!(h(&hd, "content-range"), Some("bytes 300-999/1000"));
        assert_eq!(h(&hd, "content-length"), Some("700"));
        assert_eq!(b.expect("body"), &body[300..]);
        let (st, hd, _) = get(&fs.url("/f"), &[("Range", "bytes=0-99")]);
        assert_eq!(st, 206);
        assert_eq!(h(&hd, "content-range"), Some("bytes 500-999/1000"));
    }

    #[test]
    fn fault_wrong_total() {
        let fs = FileServer::start();
        let body = data(1000);
        fs.add("/f", body.clone());
        fs.add_fault("/f", Fault::WrongTotal, 1);
        let (st, hd, b) = get(&fs.url("/f"), &[("Range", "bytes=100-")]);
        assert_eq!(st, 206);
        assert_eq!(h(&hd, "content-range"), Some("bytes 100-999/2000"));
        assert_eq!(b.expect("body"), &body[100..]);
    }

    #[test]
    fn fault_no_length() {
        let fs = FileServer::start();
        let body = data(1000);
        fs.add("/f", body.clone());
        fs.add_fault("/f", Fault::NoLength, 1);
        let (r, ..) = raw(fs.port(), &get_req("/f", "Range: bytes=100-\r\n"));
        assert_eq!(r.status, 200);
        assert_eq!(h(&r.headers, "content-length"), None);
        assert_eq!(h(&r.headers, "connection"), Some("close"));
        assert_eq!(r.body, body, "read to EOF");
    }

    #[test]
    fn fault_drip() {
        let fs = FileServer::start();
        let body = data(1000);
        fs.add("/f", body.clone());
        fs.add_fault("/f", Fault::Drip(4000), 1);
        let t = Instant::now();
        let (st, _, b) = get(&fs.url("/f"), &[]);
        let took = t.elapsed();
        assert_eq!(st, 200);
        assert_eq!(b.expect("body"), body);
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn fault_gzip() {
        let fs = FileServer::start();
        let body = data(100);
        fs.add("/f", body.clone());
        fs.add_fault("/f", Fault::Gzip, 1);
        let (r, ..) = raw(fs.port(), &get_req("/f", "Accept-Encoding: identity\r\n"));
        assert_eq!(r.status, 200);
        assert_eq!(h(&r.headers, "content-encoding"), Some("gzip"));
        assert_eq!(r.body, body);
    }

    #[test]
    fn keep_alive_and_connection_close() {
        let fs = FileServer::start();
        let body = data(500);
        fs.add("/a", body.clone());
        let mut s = connect(fs.port());
        let mut buf = Vec::new();
        for _ in 0..2 {
            s.write_all(get_req("/a", "").as_bytes()).expect("write");
            let r = read_response(&mut s, &mut buf, false);
            assert_eq!((r.status, r.body.as_slice()), (200, body.as_slice()));
        }
        // Pipelined requests are answered in order.
        s.write_all(format!("{}{}", get_req("/a", "Range: bytes=0-0\r\n"), get_req("/nope", "")).as_bytes())
            .expect("write");
        assert_eq!(read_response(&mut s, &mut buf, false).status, 206);
        assert_eq!(read_response(&mut s, &mut buf, false).status, 404);
        s.write_all(get_req("/a", "Connection: close\r\n").as_bytes()).expect("write");
        let r = read_response(&mut s, &mut buf, false);
        assert_eq!(h(&r.headers, "connection"), Some("close"));
        assert!(closes_soon(&mut s, &mut buf) && buf.is_empty());
        assert_eq!(fs.connections(), 1);
        let log = fs.log();
        assert_eq!(log.len(), 5);
        assert!(log.iter().all(|l| l.connection == 0));
        assert!(log.windows(2).all(|w| w[0].at <= w[1].at));

        // ureq's pooled agent reuses the connection too.
        let fs = FileServer::start();
        fs.add("/a", body.clone());
        let a = agent();
        for _ in 0..3 {
            let mut resp = a.get(&fs.url("/a")).call().expect("get");
            assert_eq!(resp.body_mut().read_to_vec().expect("body"), body);
        }
        assert_eq!(fs.connections(), 1);
    }

    #[test]
    fn generic_server_core() {
        let handler: Handler = Arc::new(|req: &Request| match req.path_only() {
            "/echo" => Response::json(
                201,
                &format!(
                    "{{\"m\":\"{}\",\"q\":\"{}\",\"len\":{}}}",
                    req.method,
                    req.query("q").unwrap_or_default(),
                    req.body.len()
                ),
            )
            .header("X-Body", &req.body_text()),
            "/panic" => panic!("handler panic (expected in this test)"),
            "/none" => Response::new(204),
            _ => Response::text(404, "no"),
        });
        let srv = Server::start(handler);
        assert_eq!(srv.base_url(), format!("http://127.0.0.1:{}", srv.port()));
        let mut resp = agent()
            .post(&format!("{}/echo?a=1&q=hello%20w%C3%B6rld+x&b", srv.base_url()))
            .send("a=b&c=d")
            .expect("post");
        assert_eq!(resp.status().as_u16(), 201);
        assert_eq!(
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        assert_eq!(
            resp.body_mut().read_to_string().expect("body"),
            "{\"m\":\"POST\",\"q\":\"hello wörld x\",\"len\":7}"
        );
        let (r, ..) = raw(srv.port(), "GET /none HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 204);
        let (r, mut s, mut buf) = raw(srv.port(), "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 500);
        assert!(closes_soon(&mut s, &mut buf));
        let (r, mut s, mut buf) = raw(srv.port(), "BROKEN\r\n\r\n");
        assert_eq!(r.status, 400);
        assert!(closes_soon(&mut s, &mut buf));
        let log = srv.log();
        assert_eq!(log.len(), 3);
        assert_eq!(log[0].method, "POST");
        assert_eq!(log[0].path_only(), "/echo");
        assert_eq!(log[0].header("Content-Length"), Some("7"));

        let req = Request {
            method: "GET".into(),
            path: "/p?x=%2Fa%2Fb&e=&flag&bad=%zz%4".into(),
            headers: vec![],
            body: vec![],
        };
        assert_eq!(req.query("x").as_deref(), Some("/a/b"));
        assert_eq!(req.query("e").as_deref(), Some(""));
        assert_eq!(req.query("flag").as_deref(), Some(""));
        assert_eq!(req.query("bad").as_deref(), Some("%zz%4"));
        assert_eq!(req.query("missing"), None);
    }
}
