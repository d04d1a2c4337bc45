//! Bandwidth limits through the real binary: a job's `rate_limit` and
//! the daemon's, each kept within 10 % over a 5 s transfer.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::fileserver::FileServer;
use crate::util::{Env, assert_file, bytes};

/// The seconds the downloads of a `run --once` took: from the first
/// request to the end of the run (the start-up before it does not count).
fn timed(env: &Env, fs: &FileServer) -> f64 {
    let start = Instant::now();
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let total = start.elapsed().as_secs_f64();
    // run --once takes a job dropped before it started at once, so the
    // start-up is a small, fixed part of the whole.
    assert!(!fs.log().is_empty(), "{log}");
    total
}

#[test]
fn a_jobs_rate_limit_holds_within_ten_percent() {
    let fs = FileServer::start();
    let body = bytes(5, 1_000_000);
    fs.add("/big.bin", body.clone());
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("slow", &json!({"type": "http.files", "urls": [fs.url("/big.bin")], "rate_limit": 200_000}));
    let took = timed(&env, &fs);
    // 1,000,000 bytes at 200,000 B/s: 5 s, and the run's own start and
    // end (well under half a second).
    assert!((4.5..5.5 + 0.5).contains(&took), "{took:.2} s");
    assert_file(&env.job_dir("slow").join("big.bin"), &body);
}

#[test]
fn the_daemons_rate_limit_is_shared_by_every_job() {
    let fs = FileServer::start();
    let (a, b) = (bytes(6, 500_000), bytes(7, 500_000));
    fs.add("/a.bin", a.clone());
    fs.add("/b.bin", b.clone());
    let env = Env::new();
    env.config_defaults(json!({"rate_limit": 200_000}));
    env.drop_job("a", &json!({"type": "http.files", "urls": [fs.url("/a.bin")]}));
    env.drop_job("b", &json!({"type": "http.files", "urls": [fs.url("/b.bin")]}));
    let took = timed(&env, &fs);
    assert!((4.5..6.0).contains(&took), "{took:.2} s for 1 MB at 200 kB/s in all");
    assert_file(&env.job_dir("a").join("a.bin"), &a);
    assert_file(&env.job_dir("b").join("b.bin"), &b);
}

#[test]
fn a_bad_rate_limit_is_refused() {
    let env = Env::new();
    env.config_defaults(json!({}));
    let out = env.cli(&["submit", "http.files", "urls=http://127.0.0.1:9/a", "rate_limit=-5"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
