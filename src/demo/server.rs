//! A small HTTP/1.1 server for the demo: generated files, Range support,
//! and one deliberately flaky file that answers 503 once, so the demo
//! shows a retry.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

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

    /// The URL of file `n`.
    pub fn url(&self, n: usize) -> String {
        format!("http://127.0.0.1:{}/files/{n:03}.bin", self.port)
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
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
