//! Runs the test suite's fake PicWish (`tests/support/picwish/`) for
//! benchmarks, the Python oracles (`bench/oracles/`) and trying clients.
//!
//! ```text
//! cargo run --example fake_picwish -- [--keys K1,K2] [--process-ms N] [--rate R]
//! ```
//!
//! `--keys`: the accepted `X-API-KEY`s (default `test-key`); `--process-ms`:
//! how long a task processes (default 1500); `--rate`: the official API's
//! per-key requests per second, also the burst (default 2; 0 = unlimited).
//! Prints `BASE_URL=http://127.0.0.1:PORT` and `READY`, serves until
//! standard input closes, then prints `REQUESTS=n` (official API calls),
//! `CREATES=n` (tasks made, both interfaces), `POLLS=n` (task queries, both
//! interfaces) and `RATE_LIMITED=n`.
#![allow(missing_docs)]

use std::io::Read;

#[path = "../tests/support/http.rs"]
mod http;
#[path = "../tests/support/picwish/mod.rs"]
mod picwish;

/// The fake reaches the server core as `crate::support::http`, as in the
/// test crate.
mod support {
    pub(crate) use super::http;
}

fn usage() -> ! {
    eprintln!("usage: fake_picwish [--keys K1,K2] [--process-ms N] [--rate R]");
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut opts = picwish::Options::default();
    while let Some(a) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--keys" => opts.keys = value.split(',').filter(|k| !k.is_empty()).map(str::to_string).collect(),
            "--process-ms" => opts.process_ms = value.parse().unwrap_or_else(|_| usage()),
            "--rate" => opts.rate = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let fake = picwish::FakePicwish::start_with(opts);
    println!("BASE_URL={}", fake.base_url());
    println!("READY");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    println!("REQUESTS={}", fake.api_requests());
    println!("CREATES={}", fake.creates());
    println!("POLLS={}", fake.polls());
    println!("RATE_LIMITED={}", fake.rate_limited());
}
