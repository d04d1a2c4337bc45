//! A small loopback-only HTTP/1.1 server for integration tests.
//!
//! One thread per connection, keep-alive with `Content-Length` framing,
//! and per-response fault controls (truncation, stalls, dripping, abrupt
//! close). Every socket has timeouts and every wait checks the server's stop
//! flag, so nothing here can hang a test for long.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

/// Poll interval for socket reads (how quickly a connection notices a stop).
const POLL: Duration = Duration::from_millis(100);
/// Socket write timeout.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle keep-alive connection is kept open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request (head and body) may take to arrive once it started.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest accepted request head.
const MAX_HEAD: usize = 64 * 1024;
/// Largest accepted request body.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Body write chunk when no drip is configured.
const CHUNK: usize = 64 * 1024;

/// Locks a mutex, ignoring poisoning (a panicking handler must not wedge
/// the server or the test that inspects it).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A parsed HTTP request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method, as sent (e.g. `GET`).
    pub method: String,
    /// Request target in origin form, including the query string.
    pub path: String,
    /// Header fields in arrival order; names are lowercased.
    pub headers: Vec<(String, String)>,
    /// Request body (framed by `Content-Length`).
    pub body: Vec<u8>,
}

impl Request {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The path without the query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// Percent-decoded value of the first query parameter named `key`
    /// (`+` decodes to a space).
    pub fn query(&self, key: &str) -> Option<String> {
        let (_, q) = self.path.split_once('?')?;
        q.split('&').filter(|p| !p.is_empty()).find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == key).then(|| percent_decode(v))
        })
    }

    /// All query parameters, percent-decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let Some((_, q)) = self.path.split_once('?') else {
            return Vec::new();
        };
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    }

    /// The body as (lossy) UTF-8 text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Decodes `%XX` escapes and `+` (as space); invalid escapes are kept as is.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex =
                    std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// How a response body is framed on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Normal body, framed by `Content-Length`.
    Bytes(Vec<u8>),
    /// Body sent without `Content-Length`, delimited by closing the
    /// connection.
    CloseDelimited(Vec<u8>),
}

/// A response, with optional fault injection.
///
/// `Content-Length` is added automatically as the FULL body length (unless
/// the handler set one itself, or `no_length` is set), even when
/// `truncate_after` cuts the body short.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields to send (any case). `Content-Length`, `Connection`
    /// and `Date` are added by the server unless present here.
    pub headers: Vec<(String, String)>,
    /// The full intended body (not sent for HEAD, 1xx, 204, 304).
    pub body: Vec<u8>,
    /// Send only this many body bytes, then close the connection.
    pub truncate_after: Option<usize>,
    /// After this many body bytes, flush and sleep for the duration
    /// (interrupted if the server stops), then continue.
    pub stall: Option<(usize, Duration)>,
    /// Pace the body to roughly this many bytes per second.
    pub drip_bytes_per_sec: Option<u64>,
    /// Close the connection after this response (sends `Connection: close`).
    pub close: bool,
    /// Omit `Content-Length` and delimit the body by closing the connection.
    pub no_length: bool,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            truncate_after: None,
            stall: None,
            drip_bytes_per_sec: None,
            close: false,
            no_length: false,
        }
    }

    /// A JSON response (`Content-Type: application/json`).
    pub fn json(status: u16, json: &str) -> Self {
        Response::new(status)
            .header("Content-Type", "application/json")
            .with_body(Body::Bytes(json.as_bytes().to_vec()))
    }

    /// A plain-text response.
    pub fn text(status: u16, text: &str) -> Self {
        Response::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .with_body(Body::Bytes(text.as_bytes().to_vec()))
    }

    /// Appends a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body and its framing.
    pub fn with_body(mut self, body: Body) -> Self {
        match body {
            Body::Bytes(b) => {
                self.body = b;
                self.no_length = false;
            }
            Body::CloseDelimited(b) => {
                self.body = b;
                self.no_length = true;
                self.close = true;
            }
        }
        self
    }

    /// Sets `truncate_after`.
    pub fn truncate_after(mut self, n: usize) -> Self {
        self.truncate_after = Some(n);
        self
    }

    /// Sets `stall`.
    pub fn stall(mut self, after: usize, dur: Duration) -> Self {
        self.stall = Some((after, dur));
        self
    }

    /// Sets `drip_bytes_per_sec`.
    pub fn drip(mut self, bytes_per_sec: u64) -> Self {
        self.drip_bytes_per_sec = Some(bytes_per_sec);
        self
    }

    /// Sets `close`.
    pub fn close(mut self) -> Self {
        self.close = true;
        self
    }

    /// First value of header `name` (case-insensitive).
    pub fn get_header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// A request handler. Called once per request, on the connection's thread.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A request as recorded in the server log.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// Method.
    pub method: String,
    /// Target including the query.
    pub path: String,
    /// Header fields (names lowercased).
    pub headers: Vec<(String, String)>,
    /// When the request head had fully arrived.
    pub at: Instant,
    /// 0-based index of the TCP connection it arrived on.
    pub connection: usize,
}

impl LoggedRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The path without the query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
}

struct Shared {
    stop: AtomicBool,
    log: Mutex<Vec<LoggedRequest>>,
    connections: AtomicUsize,
    bytes_sent: AtomicU64,
    open: Mutex<HashMap<usize, TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// A running server bound to `127.0.0.1` on an ephemeral port. Dropping it
/// closes the listener, shuts down open connections and tells every thread
/// to quit.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `127.0.0.1:0` and starts serving with `handler`.
    pub fn start(handler: Handler) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            log: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            bytes_sent: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
        });
        let sh = shared.clone();
        let accept = thread::Builder::new()
            .name(format!("testhttp-accept-{}", addr.port()))
            .spawn(move || accept_loop(listener, sh, handler))
            .expect("spawn accept thread");
        Server { addr, shared, accept: Some(accept) }
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// Every request received so far, in arrival order.
    pub fn log(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.log).clone()
    }

    /// Number of TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Response body bytes actually written to sockets so far.
    pub fn bytes_sent(&self) -> u64 {
        self.shared.bytes_sent.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for (_, s) in lock(&self.shared.open).drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
        join_within(lock(&self.shared.threads).drain(..).collect(), Duration::from_secs(2));
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, handler: Handler) {
    for stream in listener.incoming() {
        if shared.stopped() {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(_) => {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let id = shared.connections.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.open).insert(id, clone);
        }
        let sh = shared.clone();
        let h = handler.clone();
        let spawned = thread::Builder::new().name(format!("testhttp-conn-{id}")).spawn(move || {
            serve_connection(stream, id, &sh, &h);
            lock(&sh.open).remove(&id);
        });
        match spawned {
            Ok(jh) => {
                let mut threads = lock(&shared.threads);
                threads.retain(|t| !t.is_finished());
                threads.push(jh);
            }
            Err(_) => {
                if let Some(s) = lock(&shared.open).remove(&id) {
                    let _ = s.shutdown(Shutdown::Both);
                }
            }
        }
    }
}

/// Why reading a request stopped.
enum ReadOutcome {
    Request(Request, bool /* http/1.0 */),
    /// Peer closed, timed out, or the server stopped: just close.
    Close,
    /// Malformed request: answer with this status and close.
    Bad(u16),
}

fn find_subslice(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads more bytes into `buf`. `Ok(false)` on EOF; `Err` when the deadline
/// passed or the server stopped or the socket failed.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, shared: &Shared, deadline: Instant) -> Result<bool, ()> {
    let mut tmp = [0u8; 16 * 1024];
    loop {
        if shared.stopped() || Instant::now() >= deadline {
            return Err(());
        }
        match stream.read(&mut tmp) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                return Ok(true);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return Err(()),
        }
    }
}

fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>, shared: &Shared) -> ReadOutcome {
    let idle_deadline = Instant::now() + IDLE_TIMEOUT;
    let mut req_deadline = if buf.is_empty() { idle_deadline } else { Instant::now() + REQUEST_TIMEOUT };
    let head_end = loop {
        if let Some(p) = find_subslice(buf, b"\r\n\r\n") {
            break p;
        }
        if buf.len() > MAX_HEAD {
            return ReadOutcome::Bad(431);
        }
        let was_empty = buf.is_empty();
        match fill(stream, buf, shared, req_deadline) {
            Ok(true) => {
                if was_empty {
                    req_deadline = Instant::now() + REQUEST_TIMEOUT;
                }
            }
            _ => return ReadOutcome::Close,
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return ReadOutcome::Bad(400);
    };
    if method.is_empty() || !version.starts_with("HTTP/1.") {
        return ReadOutcome::Bad(400);
    }
    let http10 = version == "HTTP/1.0";
    let mut headers = Vec::new();
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            return ReadOutcome::Bad(400);
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    // Absolute-form target -> origin form.
    let mut path = target.to_string();
    if let Some(rest) = path.strip_prefix("http://").or_else(|| path.strip_prefix("https://")) {
        path = match rest.find('/') {
            Some(i) => rest[i..].to_string(),
            None => "/".to_string(),
        };
    }
    buf.drain(..head_end + 4);
    if find_header(&headers, "transfer-encoding").is_some() {
        return ReadOutcome::Bad(501);
    }
    let len = match find_header(&headers, "content-length") {
        None => 0,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= MAX_BODY => n,
            _ => return ReadOutcome::Bad(400),
        },
    };
    if len > 0
        && find_header(&headers, "expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        && buf.len() < len
    {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    while buf.len() < len {
        match fill(stream, buf, shared, req_deadline) {
            Ok(true) => {}
            _ => return ReadOutcome::Close,
        }
    }
    let body: Vec<u8> = buf.drain(..len).collect();
    ReadOutcome::Request(Request { method: method.to_string(), path, headers, body }, http10)
}

fn serve_connection(mut stream: TcpStream, id: usize, shared: &Shared, handler: &Handler) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(POLL));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut buf = Vec::new();
    loop {
        let (req, http10) = match read_request(&mut stream, &mut buf, shared) {
            ReadOutcome::Request(r, v) => (r, v),
            ReadOutcome::Close => return,
            ReadOutcome::Bad(code) => {
                let resp = Response::text(code, "bad request\n").close();
                let _ = write_response(&mut stream, shared, &resp, false);
                graceful_close(&mut stream, shared);
                return;
            }
        };
        lock(&shared.log).push(LoggedRequest {
            method: req.method.clone(),
            path: req.path.clone(),
            headers: req.headers.clone(),
            at: Instant::now(),
            connection: id,
        });
        let mut resp = match catch_unwind(AssertUnwindSafe(|| handler(&req))) {
            Ok(r) => r,
            Err(_) => Response::text(500, "handler panicked\n").close(),
        };
        let conn_hdr = req.header("connection").unwrap_or("").to_ascii_lowercase();
        let client_close = if http10 {
            !conn_hdr.contains("keep-alive")
        } else {
            conn_hdr.split(',').any(|t| t.trim() == "close")
        };
        if client_close || resp.no_length {
            resp.close = true;
        }
        let head = req.method.eq_ignore_ascii_case("HEAD");
        match write_response(&mut stream, shared, &resp, head) {
            Ok(true) if !resp.close => {}
            Ok(_) => {
                graceful_close(&mut stream, shared);
                return;
            }
            Err(_) => {
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// Half-closes, then drains input briefly so the peer gets a FIN (and all
/// the data before it) rather than a RST.
fn graceful_close(stream: &mut TcpStream, shared: &Shared) {
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut tmp = [0u8; 4096];
    while Instant::now() < deadline && !shared.stopped() {
        match stream.read(&mut tmp) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
}

/// Sleeps `dur` in small steps; `false` if the server stopped meanwhile.
fn sleep_unless_stopped(dur: Duration, shared: &Shared) -> bool {
    let end = Instant::now() + dur;
    loop {
        if shared.stopped() {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// Standard reason phrase for a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Writes one response. `Ok(true)` if the whole body was sent (connection
/// reusable unless `close`), `Ok(false)` if it was truncated on purpose.
fn write_response(
    stream: &mut TcpStream,
    shared: &Shared,
    resp: &Response,
    head_only: bool,
) -> io::Result<bool> {
    let no_body_status = resp.status < 200 || resp.status == 204 || resp.status == 304;
    let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if find_header(&resp.headers, "date").is_none() {
        out.push_str(&format!("Date: {}\r\n", httpdate::fmt_http_date(SystemTime::now())));
    }
    if !resp.no_length && !no_body_status && find_header(&resp.headers, "content-length").is_none() {
        out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    }
    if resp.close && find_header(&resp.headers, "connection").is_none() {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes())?;
    if head_only || no_body_status {
        stream.flush()?;
        return Ok(true);
    }

    let body = &resp.body;
    let limit = resp.truncate_after.map_or(body.len(), |t| t.min(body.len()));
    let rate = resp.drip_bytes_per_sec.map(|r| r.max(1));
    let chunk = match rate {
        Some(r) => (r / 20).clamp(1, 16 * 1024) as usize,
        None => CHUNK,
    };
    let mut stall = resp.stall;
    let mut pos = 0usize;
    let mut drip_start = Instant::now();
    let mut drip_sent = 0u64;
    loop {
        if let Some((after, dur)) = stall
            && pos >= after
        {
            stream.flush()?;
            if !sleep_unless_stopped(dur, shared) {
                return Err(io::Error::other("server stopped during stall"));
            }
            stall = None;
            drip_start = Instant::now();
            drip_sent = 0;
        }
        if pos >= limit {
            break;
        }
        if shared.stopped() {
            return Err(io::Error::other("server stopped"));
        }
        let mut end = limit.min(pos + chunk);
        if let Some((after, _)) = stall
            && after > pos
        {
            end = end.min(after);
        }
        stream.write_all(&body[pos..end])?;
        shared.bytes_sent.fetch_add((end - pos) as u64, Ordering::SeqCst);
        drip_sent += (end - pos) as u64;
        pos = end;
        if let Some(r) = rate {
            stream.flush()?;
            let due = drip_start + Duration::from_secs_f64(drip_sent as f64 / r as f64);
            let now = Instant::now();
            if due > now && !sleep_unless_stopped(due - now, shared) {
                return Err(io::Error::other("server stopped during drip"));
            }
        }
    }
    stream.flush()?;
    Ok(limit == body.len())
}

/// Joins the threads that end within `within`; the others (stuck on a
/// client that never closes) are left to the process's end.
pub fn join_within(handles: Vec<thread::JoinHandle<()>>, within: Duration) {
    let deadline = Instant::now() + within;
    for h in handles {
        while !h.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }
}
