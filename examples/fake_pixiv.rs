//! Runs the test suite's fake Pixiv (App API, OAuth and image hosts on one
//! loopback port) with some seeded data, to try real clients against it
//! (see `tests/fixtures/pixiv/pixivpy3_check.py`).
//!
//! ```text
//! cargo run --example fake_pixiv -- --port 0 [--seconds 600] [--refresh-token TOKEN]
//!     [--user-works N] [--api-latency-ms MS] [--image-latency-ms MS] [--call-log FILE]
//! ```
//!
//! Prints `BASE_URL=http://127.0.0.1:PORT`, `REFRESH_TOKEN=...` and `READY`,
//! then serves until standard input closes or `--seconds` pass. On exit it
//! prints `API_CALLS=n`, `IMAGE_REQUESTS=n` and `TOKEN_REQUESTS=n` on
//! standard output (plus a summary and every non-200 API call on standard
//! error), and with `--call-log FILE` writes every API, token and image
//! request as tab-separated lines:
//! `kind start_ms end_ms status target`, times in milliseconds since the
//! fake started (`start_ms` of an image or token request is its end; API
//! calls carry both ends, latency included), sorted by `start_ms`. The first
//! line is `# t0_unix_ms=<Unix time of 0 in ms>`.
//!
//! `--api-latency-ms` / `--image-latency-ms` delay every API / image answer
//! (benchmarks: `bench/pixiv.sh`).
//!
//! `--user-works N` replaces the seeded data below with a benchmark set:
//! user 1 `fake_owner` (owns the tokens) and user 11 `fake_artist` with N
//! works, ids 100001..=100000+N, a fixed mix decided by `id % 10`: 0..=6
//! one-page illusts (every 7th of them png, the rest jpg; 70 %), 7 and 8
//! manga of 2–5 pages (`2 + (id / 10) % 4`; 20 %), 9 ugoira (10 %).
//!
//! Seeded data (without `--user-works`):
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
    eprintln!(
        "usage: fake_pixiv --port 0 [--seconds N] [--refresh-token TOKEN] [--user-works N] \
         [--api-latency-ms MS] [--image-latency-ms MS] [--call-log FILE]"
    );
    std::process::exit(2);
}

/// The next argument as a number, or the usage message.
fn num_arg(args: &mut impl Iterator<Item = String>) -> u64 {
    args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| usage())
}

fn main() {
    let mut seconds: u64 = 600;
    let mut refresh: Option<String> = None;
    let mut user_works: Option<u64> = None;
    let mut api_latency = Duration::ZERO;
    let mut image_latency = Duration::ZERO;
    let mut call_log: Option<String> = None;
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
            "--seconds" => seconds = num_arg(&mut args),
            "--refresh-token" => refresh = Some(args.next().unwrap_or_else(|| usage())),
            "--user-works" => user_works = Some(num_arg(&mut args)),
            "--api-latency-ms" => api_latency = Duration::from_millis(num_arg(&mut args)),
            "--image-latency-ms" => image_latency = Duration::from_millis(num_arg(&mut args)),
            "--call-log" => call_log = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }

    let t0 = Instant::now();
    let t0_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let fake = FakePixiv::start();
    match user_works {
        Some(n) => seed_user_works(&fake, n),
        None => seed(&fake),
    }
    fake.set_api_latency(api_latency);
    fake.set_image_latency(image_latency);
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
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "API_CALLS={}", calls.len());
        let _ = writeln!(out, "IMAGE_REQUESTS={}", fake.image_requests().len());
        let _ = writeln!(out, "TOKEN_REQUESTS={}", fake.token_requests().len());
        let _ = out.flush();
    }
    if let Some(path) = call_log
        && let Err(e) = write_call_log(&fake, &path, t0, t0_unix)
    {
        eprintln!("fake_pixiv: cannot write {path}: {e}");
        std::process::exit(1);
    }
}

/// Writes the `--call-log` file (format in the module documentation).
fn write_call_log(fake: &FakePixiv, path: &str, t0: Instant, t0_unix: Duration) -> std::io::Result<()> {
    let ms = |t: Instant| t.saturating_duration_since(t0).as_secs_f64() * 1000.0;
    let mut rows: Vec<(f64, String)> = Vec::new();
    for c in fake.api_calls() {
        let (s, e) = (ms(c.started), ms(c.ended));
        rows.push((s, format!("api\t{s:.1}\t{e:.1}\t{}\t{} {}", c.status, c.method, c.target)));
    }
    for t in fake.token_requests() {
        let s = ms(t.at);
        rows.push((s, format!("token\t{s:.1}\t{s:.1}\t{}\t{}", t.status, t.grant_type)));
    }
    for r in fake.image_requests() {
        let s = ms(r.at);
        rows.push((s, format!("image\t{s:.1}\t{s:.1}\t{}\t{} {}", r.status, r.method, r.path)));
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "# t0_unix_ms={}", t0_unix.as_millis())?;
    for (_, line) in rows {
        writeln!(f, "{line}")?;
    }
    f.flush()
}

/// The `--user-works N` data set (see the module documentation).
fn seed_user_works(fake: &FakePixiv, n: u64) {
    fake.add_user(1, "fake_owner", "fake_owner");
    fake.add_user(11, "fake_artist", "fake_artist");
    fake.add_works((100_001..=100_000 + n).map(|id| {
        let w = Work::new(id, 11);
        let mut w = match id % 10 {
            0..=6 if id % 7 == 0 => w.ext("png"),
            0..=6 => w,
            7 | 8 => w.kind(Kind::Manga).pages(2 + (id / 10 % 4) as u32),
            _ => w.kind(Kind::Ugoira),
        };
        w.tags = vec!["landscape".into()];
        w.bookmarks = (id * 37) % 1000;
        w
    }));
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
