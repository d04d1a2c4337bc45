//! Runs the test suite's fake remote-task service (`tests/support/tasks.rs`)
//! for benchmarks and trying clients against it.
//!
//! ```text
//! cargo run --example fake_tasks -- [--polls N]
//! ```
//!
//! A task answers `processing` for its first N looks (default 1), then
//! `done`. Prints `BASE_URL=http://127.0.0.1:PORT` and `READY`, serves until
//! standard input closes, then prints `REQUESTS=n` (every call to the task
//! API, result downloads excluded), `CREATES=n` and `POLLS=n`.
#![allow(missing_docs)]

use std::io::Read;

#[path = "../tests/support/http.rs"]
mod http;
#[path = "../tests/support/tasks.rs"]
mod tasks;

/// `tasks.rs` reaches the server core as `crate::support::http`, as in the
/// test crate.
mod support {
    pub(crate) use super::http;
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut polls = 1usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--polls" => polls = args.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            _ => {
                eprintln!("usage: fake_tasks [--polls N]");
                std::process::exit(2);
            }
        }
    }
    let fake = tasks::FakeTasks::start(polls);
    println!("BASE_URL={}", fake.base_url());
    println!("READY");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    let log = fake.log();
    let api: Vec<_> = log.iter().filter(|(_, p)| p.starts_with("/api/")).collect();
    let creates = api.iter().filter(|(m, _)| m == "POST").count();
    println!("REQUESTS={}", api.len());
    println!("CREATES={creates}");
    println!("POLLS={}", api.len() - creates);
}
