//! A small HTTP/1.1 server for the demo: a paginated JSON gallery API
//! (`/api/gallery?page=N`, [`PAGE_SIZE`] files a page, whose page 2 answers
//! 429 once, so the demo shows the pacer backing off), generated files with
//! Range support, and one deliberately flaky file that answers 503 once,
//! so the demo shows a download retry.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Files per gallery page.
pub const PAGE_SIZE: usize = 8;

/// The content of demo file `n`: deterministic, so it can be verified.
pub fn demo_bytes(n: usize) -> Vec<u8> {
    let len = 16 * 1024 + (n * 7919) % (96 * 1024);
    let mut x = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x & 0xFF) as u8
        })
        .collect()
}

/// The running demo server; stops when dropped.
#[derive(Debug)]
pub struct DemoServer {
    /// The bound port.
    port: u16,
    /// Raised to stop the accept loop.
    stop: Arc<AtomicBool>,
}

impl DemoServer {
    /// Starts serving `/files/<n>.bin` for `n < files` on 127.0.0.1.
    /// `/files/<flaky>.bin` answers 503 with `Retry-After: 1` the first
    /// time.
    pub fn start(files: usize, flaky: usize) -> std::io::Result<DemoServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let failed_once = Arc::new(Mutex::new(HashSet::new()));
        thread::Builder::new().name("demo-server".into()).spawn(move || {
            while !thread_stop.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let failed_once = Arc::clone(&failed_once);
                        let _ = thread::Builder::new().name("demo-conn".into()).spawn(move || {
                            let _ = serve(stream, files, flaky, &failed_once);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        })?;
        Ok(DemoServer { port, stop })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The URL of file `n`.
    pub fn url(&self, n: usize) -> String {
        file_url(self.port, n)
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// The URL of file `n` on the server at `port`.
fn file_url(port: u16, n: usize) -> String {
    format!("http://127.0.0.1:{port}/files/{n:03}.bin")
}

/// The gallery's page `page` (from 1) as JSON.
fn gallery_page(port: u16, files: usize, page: usize) -> Vec<u8> {
    use md5::{Digest, Md5};
    let first = (page.max(1) - 1) * PAGE_SIZE;
    let list: Vec<serde_json::Value> = (first..(first + PAGE_SIZE).min(files))
        .map(|n| {
            let body = demo_bytes(n);
            let md5: String = Md5::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
            serde_json::json!({"name": format!("{n:03}.bin"), "url": file_url(port, n), "size": body.len(), "md5": md5})
        })
        .collect();
    let next = (first + PAGE_SIZE < files).then_some(page + 1);
    serde_json::to_vec(&serde_json::json!({"files": list, "next": next, "total": files})).unwrap_or_default()
}

/// Serves requests on one connection (keep-alive).
fn serve(
    stream: TcpStream,
    files: usize,
    flaky: usize,
    failed_once: &Mutex<HashSet<usize>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut range: Option<u64> = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("range: bytes=") {
                range = v.trim().trim_end_matches('-').parse().ok();
            }
        }
        if let Some(page) = path.strip_prefix("/api/gallery?page=") {
            let page: usize = page.parse().unwrap_or(1);
            // Page 2 is rate-limited once: the pacer waits and asks again.
            let first = page == 2 && failed_once.lock().map(|mut s| s.insert(usize::MAX)).unwrap_or(false);
            if first {
                out.write_all(
                    b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
                )?;
                continue;
            }
            let port = out.local_addr()?.port();
            let body = gallery_page(port, files, page);
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            out.write_all(&body)?;
            out.flush()?;
            continue;
        }
        let n = path
            .strip_prefix("/files/")
            .and_then(|p| p.strip_suffix(".bin"))
            .and_then(|p| p.parse::<usize>().ok())
            .filter(|n| *n < files);
        let Some(n) = n else {
            out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        };
        if n == flaky {
            let first = failed_once.lock().map(|mut s| s.insert(n)).unwrap_or(false);
            if first {
                out.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
                )?;
                continue;
            }
        }
        let body = demo_bytes(n);
        let etag = format!("\"demo-{n}\"");
        match range.filter(|r| *r > 0 && (*r as usize) < body.len()) {
            Some(start) => {
                let start = start as usize;
                write!(
                    out,
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\n\r\n",
                    body.len() - start,
                    body.len() - 1,
                    body.len()
                )?;
                out.write_all(&body[start..])?;
            }
            None => {
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\n\r\n",
                    body.len()
                )?;
                out.write_all(&body)?;
            }
        }
        out.flush()?;
    }
}
