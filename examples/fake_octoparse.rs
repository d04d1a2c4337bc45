//! Runs the test suite's fake Octoparse DataAPI (`tests/support/octoparse.rs`)
//! with some seeded data, to try real clients against it (see
//! `tests/fixtures/octoparse/octoparse_check.py`).
//!
//! ```text
//! cargo run --example fake_octoparse -- --port 0 [--seconds 600] [--username U] [--password P]
//!     [--rows N] [--access-ttl S] [--latency-ms MS] [--call-log FILE]
//! ```
//!
//! Prints `BASE_URL=http://127.0.0.1:PORT`, `USERNAME=…`, `PASSWORD=…`,
//! one `TASK=<group id> <task id> <row count>` line per task, then `READY`,
//! and serves until standard input closes or `--seconds` pass. On exit it
//! prints `REQUESTS=n`, `TOKEN_REQUESTS=n`, `REJECTED_BY_BUCKET=n` and, per
//! task, `ROWS=<task id> new=n exporting=n exported=n`, on standard output
//! (every non-200 call on standard error). With `--call-log FILE` it writes
//! every request as a tab-separated line
//! `ms status error method target content-type auth-scheme` (`error` is the
//! answer's `error` field, `content-type` the request's header, `auth-scheme`
//! the first word of its `Authorization`, each `-` when absent; a dropped
//! answer has status `dropped`).
//!
//! Seeded data (default user `user` / `pass`):
//! - group 84 `Group A`: task `337fd7d7-aded-4081-9104-2b551161ccc8`
//!   `Task 1` with `--rows` rows (default 2500, `make_rows(N, 1)`), task
//!   `4adf489b-f883-43fa-b958-0cfde945ddb7` `Task 2` with 25 rows
//!   (`make_rows(25, 2)`);
//! - group 85 `Group B`: task `9c0e6d3a-51f2-4b8e-a0c4-2f4be2d1a001`
//!   `Empty task`, no rows;
//! - a foreign task `aaaaaaaa-0000-0000-0000-000000000000` (`taskid_error`).
#![allow(missing_docs)]

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

#[path = "../tests/support/http.rs"]
mod http;
#[path = "../tests/support/octoparse.rs"]
mod octoparse;

/// `octoparse.rs` reaches the server core as `crate::support::http`, as in
/// the test crate.
mod support {
    pub(crate) use super::http;
}

use octoparse::{FakeOctoparse, RowState};

const TASK1: &str = "337fd7d7-aded-4081-9104-2b551161ccc8";
const TASK2: &str = "4adf489b-f883-43fa-b958-0cfde945ddb7";
const TASK3: &str = "9c0e6d3a-51f2-4b8e-a0c4-2f4be2d1a001";
const FOREIGN: &str = "aaaaaaaa-0000-0000-0000-000000000000";

fn usage() -> ! {
    eprintln!(
        "usage: fake_octoparse --port 0 [--seconds N] [--username U] [--password P] [--rows N] \
         [--access-ttl S] [--latency-ms MS] [--call-log FILE]"
    );
    std::process::exit(2);
}

fn num_arg(args: &mut impl Iterator<Item = String>) -> u64 {
    args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| usage())
}

fn main() {
    let mut seconds: u64 = 600;
    let mut username = "user".to_string();
    let mut password = "pass".to_string();
    let mut rows: u64 = 2500;
    let mut ttl: Option<u64> = None;
    let mut latency = Duration::ZERO;
    let mut call_log: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => {
                if args.next().as_deref() != Some("0") {
                    eprintln!("fake_octoparse: only --port 0 (an ephemeral loopback port) is supported");
                    std::process::exit(2);
                }
            }
            "--seconds" => seconds = num_arg(&mut args),
            "--username" => username = args.next().unwrap_or_else(|| usage()),
            "--password" => password = args.next().unwrap_or_else(|| usage()),
            "--rows" => rows = num_arg(&mut args),
            "--access-ttl" => ttl = Some(num_arg(&mut args)),
            "--latency-ms" => latency = Duration::from_millis(num_arg(&mut args)),
            "--call-log" => call_log = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }

    let t0 = Instant::now();
    let fake = FakeOctoparse::start();
    fake.set_credentials(&username, &password);
    if let Some(s) = ttl {
        fake.set_access_ttl(s);
    }
    fake.set_latency(latency);
    fake.add_group(84, "Group A");
    fake.add_group(85, "Group B");
    fake.add_task(84, TASK1, "Task 1");
    fake.add_task(84, TASK2, "Task 2");
    fake.add_task(85, TASK3, "Empty task");
    fake.add_foreign_task(FOREIGN);
    fake.add_rows(TASK1, FakeOctoparse::make_rows(rows as usize, 1));
    fake.add_rows(TASK2, FakeOctoparse::make_rows(25, 2));
    let tasks = [(84, TASK1), (84, TASK2), (85, TASK3)];
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "BASE_URL={}", fake.base_url());
        let _ = writeln!(out, "USERNAME={username}");
        let _ = writeln!(out, "PASSWORD={password}");
        for (g, t) in tasks {
            let _ = writeln!(out, "TASK={g} {t} {}", fake.rows(t).len());
        }
        let _ = writeln!(out, "READY");
        let _ = out.flush();
    }

    let eof = Arc::new(AtomicBool::new(false));
    let e = eof.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        e.store(true, Ordering::SeqCst);
    });
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline && !eof.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(100));
    }

    let calls = fake.requests();
    for c in calls.iter().filter(|c| c.status != 200 || c.dropped) {
        let dropped = if c.dropped { " (dropped)" } else { "" };
        eprintln!("fake_octoparse: {} {} -> {}{dropped}", c.method, c.path, c.status);
    }
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "REQUESTS={}", calls.len());
        let _ = writeln!(out, "TOKEN_REQUESTS={}", fake.token_requests().len());
        let _ = writeln!(out, "REJECTED_BY_BUCKET={}", fake.rejected_by_bucket());
        for (_, t) in tasks {
            let _ = writeln!(
                out,
                "ROWS={t} new={} exporting={} exported={}",
                fake.count(t, RowState::New),
                fake.count(t, RowState::Exporting),
                fake.count(t, RowState::Exported)
            );
        }
        let _ = out.flush();
    }
    if let Some(path) = call_log {
        let write = || -> std::io::Result<()> {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
            for c in &calls {
                let ms = c.at.saturating_duration_since(t0).as_secs_f64() * 1000.0;
                let status = if c.dropped { "dropped".to_string() } else { c.status.to_string() };
                let q: Vec<String> = c.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let target =
                    if q.is_empty() { c.path.clone() } else { format!("{}?{}", c.path, q.join("&")) };
                let header = |name: &str| {
                    c.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("-")
                };
                let scheme = header("authorization").split(' ').next().unwrap_or("-");
                writeln!(
                    f,
                    "{ms:.1}\t{status}\t{}\t{}\t{target}\t{}\t{scheme}",
                    c.error.as_deref().unwrap_or("-"),
                    c.method,
                    header("content-type")
                )?;
            }
            f.flush()
        };
        if let Err(e) = write() {
            eprintln!("fake_octoparse: cannot write {path}: {e}");
            std::process::exit(1);
        }
    }
}
