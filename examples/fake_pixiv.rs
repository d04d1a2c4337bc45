//! Runs the test suite's fake Pixiv (App API, OAuth and image hosts on one
//! loopback port) with some seeded data, to try real clients against it
//! (see `tests/fixtures/pixiv/pixivpy3_check.py`).
//!
//! ```text
//! cargo run --example fake_pixiv -- --port 0 [--seconds 600] [--refresh-token TOKEN]
//! ```
//!
//! Prints `BASE_URL=http://127.0.0.1:PORT`, `REFRESH_TOKEN=...` and `READY`,
//! then serves until standard input closes or `--seconds` pass.
//!
//! Seeded data:
//! - user 1 `fake_owner` owns the tokens; user 11 `fake_artist` has 95 works,
//!   ids 1001..=1095: every 10th+3 is a 3-page manga, every 10th+7 an
//!   ugoira, +5 png, +9 gif; 1050 is sanity-limited (left out of lists),
//!   1060 My-pixiv-only (placeholder). All are tagged `landscape`, the even
//!   ones also `blue` and `sky`.
//! - user 1 bookmarks: 1001..=1040 public (1002 tagged `fav`), 1041..=1045
//!   private, plus 999_999 (unknown: `user.id` 0 placeholder).
//! - ranking `day` 2025-02-04 and latest: 1095 down to 1031; follow feed:
//!   1095..=1061; illust series 77: 1001, 1011, 1021.
//! - novels 5001 (with two uploaded images, series 88), 5002 (series 88).
#![allow(missing_docs)]

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

#[path = "../tests/support/http.rs"]
mod http;
#[path = "../tests/support/pixiv.rs"]
mod pixiv;

/// `pixiv.rs` reaches the server core as `crate::support::http`, as in the
/// test crate.
mod support {
    pub(crate) use super::http;
}

use pixiv::{FakePixiv, Kind, Limit, Work};

fn usage() -> ! {
    eprintln!("usage: fake_pixiv --port 0 [--seconds N] [--refresh-token TOKEN]");
    std::process::exit(2);
}

fn main() {
    let mut seconds: u64 = 600;
    let mut refresh: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => {
                let p = args.next().unwrap_or_else(|| usage());
                if p != "0" {
                    eprintln!("fake_pixiv: only --port 0 (an ephemeral loopback port) is supported");
                    std::process::exit(2);
                }
            }
            "--seconds" => {
                seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| usage());
            }
            "--refresh-token" => refresh = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }

    let fake = FakePixiv::start();
    seed(&fake);
    if let Some(t) = refresh {
        fake.set_refresh_token(&t);
    }
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "BASE_URL={}", fake.base_url());
        let _ = writeln!(out, "REFRESH_TOKEN={}", fake.current_refresh_token());
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
    let calls = fake.api_calls();
    eprintln!(
        "fake_pixiv: {} API calls, {} image requests, {} token requests",
        calls.len(),
        fake.image_requests().len(),
        fake.token_requests().len()
    );
    for c in calls.iter().filter(|c| c.status != 200) {
        eprintln!("fake_pixiv: {} {} -> {}", c.method, c.target, c.status);
    }
}

fn seed(fake: &FakePixiv) {
    fake.add_user(1, "fake_owner", "fake_owner");
    fake.add_user(11, "fake_artist", "fake_artist");
    for id in 1001..=1095u64 {
        let mut w = Work::new(id, 11);
        match id % 10 {
            3 => {
                w.kind = Kind::Manga;
                w.pages = 3;
            }
            7 => w.kind = Kind::Ugoira,
            5 => w.ext = "png",
            9 => w.ext = "gif",
            _ => {}
        }
        w.tags = vec!["landscape".into()];
        if id % 2 == 0 {
            w.tags.extend(["blue".into(), "sky".into()]);
        }
        w.bookmarks = (id * 37) % 1000;
        if id == 1050 {
            w.limit = Some(Limit::Sanity);
        }
        if id == 1060 {
            w.limit = Some(Limit::Mypixiv);
        }
        fake.add_work(w);
    }
    for id in 1001..=1040u64 {
        fake.add_bookmark(1, id, false, if id == 1002 { &["fav"] } else { &[] });
    }
    for id in 1041..=1045u64 {
        fake.add_bookmark(1, id, true, &[]);
    }
    fake.add_bookmark(1, 999_999, false, &[]);
    let rank: Vec<u64> = (1031..=1095).rev().collect();
    fake.set_ranking("day", Some("2025-02-04"), &rank);
    fake.set_ranking("day", None, &rank);
    let feed: Vec<u64> = (1061..=1095).rev().collect();
    fake.set_follow_feed(&feed);
    fake.add_series(77, 11, "Fake series", &[1001, 1011, 1021]);
    fake.set_novel_series_title(88, "Fake novel series");
    fake.add_novel(
        5001,
        11,
        "Fake novel",
        "First line.\nSecond line.\n[uploadedimage:700001]\n[newpage]\nPage two.\n[uploadedimage:700002]",
        Some(88),
        &[(700_001, 1), (700_002, 2)],
    );
    fake.add_novel(5002, 11, "Fake novel 2", "No images here.", Some(88), &[]);
}
