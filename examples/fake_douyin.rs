//! Runs the test suite's fake Douyin (`tests/support/douyin/`) for
//! benchmarks, the F2 oracle (`bench/oracles/douyin_f2.py`) and trying
//! clients.
//!
//! ```text
//! cargo run --example fake_douyin -- [--users N] [--works N] [--api-latency-ms N]
//!     [--media-latency-ms N] [--no-signature-check] [--no-empty-pages]
//! ```
//!
//! `--users`: fixture users (default 3, at least 2); `--works`: works per
//! user (default 25); `--api-latency-ms` / `--media-latency-ms`: delay
//! before every API / media answer (default 0); `--no-signature-check`:
//! accept unsigned calls; `--no-empty-pages`: no empty `has_more: 1` pages.
//! Prints `BASE_URL=http://127.0.0.1:PORT`, the other base URLs
//! (`WEB_URL=`, `SHORT_URL=`, `LIVE_URL=`, `WEBCAST_URL=`, `MS_TOKEN_URL=`,
//! `TTWID_URL=`), the fixture (`SEC_UID_0=`, `MIX_ID=`, `LOGIN_COOKIE=`)
//! and `READY`, serves until standard input closes, then prints
//! `API_CALLS=n`, `REJECTED=n`, `BAD_SIGNATURES=n`, `MEDIA_BYTES=n` and one
//! `REQUESTS_<endpoint>=n` line per endpoint.
#![allow(missing_docs)]

use std::io::Read;
use std::time::Duration;

#[path = "../tests/support/douyin/mod.rs"]
mod douyin;
#[path = "../tests/support/http.rs"]
mod http;

/// The fake reaches the server core as `crate::support::http`, as in the
/// test crate.
mod support {
    pub(crate) use super::http;
}

fn usage() -> ! {
    eprintln!(
        "usage: fake_douyin [--users N] [--works N] [--api-latency-ms N] [--media-latency-ms N] \
         [--no-signature-check] [--no-empty-pages]"
    );
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut opts = douyin::Options::default();
    let (mut check, mut empty_pages) = (true, true);
    while let Some(a) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| usage());
        match a.as_str() {
            "--users" => opts.users = value() as usize,
            "--works" => opts.works_per_user = value() as usize,
            "--api-latency-ms" => opts.api_latency = Duration::from_millis(value()),
            "--media-latency-ms" => opts.media_latency = Duration::from_millis(value()),
            "--no-signature-check" => check = false,
            "--no-empty-pages" => empty_pages = false,
            _ => usage(),
        }
    }
    let fake = douyin::FakeDouyin::start_with(opts);
    fake.check_signatures(check);
    if !empty_pages {
        fake.empty_page_every(0);
    }
    println!("BASE_URL={}", fake.base_url());
    println!("WEB_URL={}", fake.web_url());
    println!("SHORT_URL={}", fake.short_url());
    println!("LIVE_URL={}", fake.live_url());
    println!("WEBCAST_URL={}", fake.webcast_url());
    println!("MS_TOKEN_URL={}", fake.ms_token_url());
    println!("TTWID_URL={}", fake.ttwid_url());
    println!("SEC_UID_0={}", fake.sec_uid(0));
    println!("MIX_ID={}", fake.mix_id());
    println!("LOGIN_COOKIE={}", fake.login_cookie());
    println!("READY");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    println!("API_CALLS={}", fake.api_calls());
    println!("REJECTED={}", fake.rejections().len());
    println!("BAD_SIGNATURES={}", fake.bad_signatures());
    println!("MEDIA_BYTES={}", fake.media_bytes());
    for (k, v) in fake.request_counts() {
        println!("REQUESTS_{k}={v}");
    }
}
