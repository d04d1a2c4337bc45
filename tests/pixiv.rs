//! Pixiv end to end: the real binary and spool against the fake App API
//! (tests/support/pixiv.rs), for every job type and the failure modes of
//! docs/pixiv.md.

use std::fs;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::pixiv::{FakePixiv, Kind, Limit, Work, default_refresh_token};
use crate::util::{Env, assert_file, wait_until};

/// A spool configured for the fake.
fn env_for(fake: &FakePixiv, extra: Value) -> Env {
    let env = Env::new();
    let mut cfg = json!({
        "interval_ms": 20,
        "pixiv": {
            "api_url": fake.base_url(),
            "oauth_url": fake.base_url(),
            "refresh_token": default_refresh_token(),
            "rate_limit_secs": 0.2,
        },
    });
    if let (Value::Object(base), Value::Object(more)) = (&mut cfg, extra) {
        for (k, v) in more {
            match (base.get_mut(&k), v) {
                (Some(Value::Object(b)), Value::Object(m)) => b.extend(m),
                (_, v) => {
                    base.insert(k, v);
                }
            }
        }
    }
    env.config(cfg);
    env
}

/// The originals a work should produce, as (file name, bytes).
fn originals(w: &Work) -> Vec<(String, Vec<u8>)> {
    (0..w.pages)
        .map(|p| (format!("{}_p{p}.{}", w.id, w.ext), FakePixiv::image_bytes(w.id, p, w.ext)))
        .collect()
}

#[test]
fn user_job_saves_every_page_of_every_kind_and_skips_placeholders() {
    let fake = FakePixiv::start();
    fake.add_user(11, "artist", "artist11");
    let mut works = Vec::new();
    for i in 0..40u64 {
        let w = match i % 4 {
            0 => Work::new(1000 + i, 11).kind(Kind::Manga).pages(3),
            1 => Work::new(1000 + i, 11).ext("png"),
            2 => Work::new(1000 + i, 11).pages(2).ext("gif"),
            _ => Work::new(1000 + i, 11),
        };
        works.push(w.clone());
        fake.add_work(w);
    }
    fake.add_work(Work::new(2000, 11).kind(Kind::Ugoira));
    fake.add_work(Work::new(2001, 11).limit(Limit::Sanity));
    let env = env_for(&fake, json!({"pixiv": {"ugoira_format": "gif"}}));
    env.drop_job("artist", &json!({"type": "pixiv.user", "user_id": 11, "sidecar": true}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let dir = env.job_dir("artist");
    for w in &works {
        for (name, bytes) in originals(w) {
            assert_file(&dir.join(&name), &bytes);
        }
        assert!(dir.join(format!("{}.json", w.id)).exists(), "sidecar of {}", w.id);
    }
    assert_file(&dir.join("2000_ugoira1920x1080.zip"), &FakePixiv::ugoira_zip(2000));
    let frames: Value =
        serde_json::from_slice(&fs::read(dir.join("2000_ugoira1920x1080.json")).expect("frames"))
            .expect("json");
    assert_eq!(frames["frames"].as_array().map(Vec::len), Some(FakePixiv::ugoira_frames(2000).len()));
    let gif = fs::read(dir.join("2000_ugoira1920x1080.gif")).expect("converted gif");
    assert!(gif.starts_with(b"GIF89a"), "not a GIF");
    // No placeholder was saved, every image request carried a pixiv Referer,
    // and manga came along (no `type` filter was sent).
    assert!(
        fs::read_dir(&dir).expect("ls").flatten().all(|e| !e.file_name().to_string_lossy().contains("2001"))
    );
    for r in fake.image_requests() {
        assert!(
            r.referer.as_deref().is_some_and(|x| x.contains("pixiv.net")),
            "{} without a pixiv Referer",
            r.path
        );
    }
    assert!(fake.api_calls_to("/v1/user/illusts").iter().all(|c| c.param("type").is_none()));
    let s = env.status(1).expect("status");
    assert_eq!(s.state.as_str(), "done");
    assert!(s.done > 0);
}

#[test]
fn every_other_job_type_works() {
    let fake = FakePixiv::start();
    fake.add_user(1, "me", "me1");
    fake.add_user(20, "other", "other20");
    for id in 3000..3010u64 {
        fake.add_work(Work::new(id, 20).tags(&["cat"]));
    }
    fake.add_work(Work::new(3010, 20).tags(&["dog"]));
    let mut gone = Work::new(3011, 20);
    gone.deleted = true;
    fake.add_work(gone);
    fake.add_work(Work::new(3012, 20).limit(Limit::Mypixiv));
    for id in [3000, 3001, 3012] {
        fake.add_bookmark(1, id, false, &[]);
    }
    fake.add_bookmark(1, 3002, true, &["fav"]);
    fake.set_ranking("day", None, &[3003, 3004]);
    fake.set_follow_feed(&[3005]);
    fake.add_series(77, 20, "series", &[3006, 3007]);
    fake.add_novel(500, 20, "novel", "line one\n[uploadedimage:9]\n[newpage]line two", None, &[(9, 42)]);
    let env = env_for(&fake, json!({}));
    let jobs = [
        ("ids", json!({"type": "pixiv.illust", "illust_ids": [3008, 3011]})),
        ("bm", json!({"type": "pixiv.bookmarks"})),
        ("bm-private", json!({"type": "pixiv.bookmarks", "restrict": "private", "tag": "fav"})),
        // Other jobs save some of the same works first; without the archive
        // this one saves them again into its own folder.
        (
            "search",
            json!({"type": "pixiv.search", "word": "cat", "search_target": "exact_match_for_tags", "archive": false}),
        ),
        ("rank", json!({"type": "pixiv.ranking", "mode": "day"})),
        ("follow", json!({"type": "pixiv.follow"})),
        ("series", json!({"type": "pixiv.series", "series_id": 77})),
        ("novel", json!({"type": "pixiv.novel", "novel_id": 500})),
        ("info", json!({"type": "pixiv.info", "illust_id": 3009})),
    ];
    for (name, job) in &jobs {
        env.drop_job(name, job);
    }
    let (status, log) = env.run_once(Duration::from_secs(90));
    assert!(status.success(), "{log}");
    let file = |job: &str, id: u64| env.job_dir(job).join(format!("{id}_p0.jpg"));
    assert_file(&file("ids", 3008), &FakePixiv::image_bytes(3008, 0, "jpg"));
    assert_file(&file("bm", 3000), &FakePixiv::image_bytes(3000, 0, "jpg"));
    assert_file(&file("bm", 3001), &FakePixiv::image_bytes(3001, 0, "jpg"));
    assert!(!file("bm", 3012).exists(), "a My-pixiv placeholder was saved");
    assert_file(&file("bm-private", 3002), &FakePixiv::image_bytes(3002, 0, "jpg"));
    for id in 3000..3010 {
        assert_file(&file("search", id), &FakePixiv::image_bytes(id, 0, "jpg"));
    }
    assert!(!file("search", 3010).exists(), "a work without the tag matched");
    assert_file(&file("rank", 3004), &FakePixiv::image_bytes(3004, 0, "jpg"));
    assert_file(&file("follow", 3005), &FakePixiv::image_bytes(3005, 0, "jpg"));
    assert_file(&file("series", 3007), &FakePixiv::image_bytes(3007, 0, "jpg"));
    let text = fs::read_to_string(env.job_dir("novel").join("500.txt")).expect("novel text");
    assert!(text.contains("line one") && text.contains("line two"), "{text}");
    assert!(env.job_dir("novel").join("500.json").exists());
    let img = fs::read_dir(env.job_dir("novel"))
        .expect("ls")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("500_img9.")))
        .expect("the embedded image was saved");
    assert_file(&img, &FakePixiv::novel_image_bytes(42));
    let info: Value = serde_json::from_slice(&fs::read(env.job_dir("info").join("3009.json")).expect("info"))
        .expect("json");
    assert_eq!(info["id"], 3009);
    assert_eq!(fs::read_dir(env.job_dir("info")).expect("ls").count(), 1, "pixiv.info downloads nothing");
    // The deleted work is recorded as gone, not retried, and the job is done.
    let ids = env.statuses().into_iter().find(|s| s.name == "ids").expect("status");
    assert_eq!((ids.state.as_str(), ids.skipped), ("done", 1));
    assert_eq!(fake.api_calls().iter().filter(|c| c.param("illust_id") == Some("3011")).count(), 1);
}

#[test]
fn token_expiry_and_rotation_mid_job() {
    let fake = FakePixiv::start();
    fake.add_user(11, "a", "a");
    fake.add_works((0..90u64).map(|i| Work::new(5000 + i, 11)));
    fake.set_rotate_refresh_tokens(true);
    fake.set_api_latency(Duration::from_millis(30));
    let env = env_for(&fake, json!({}));
    env.drop_job("u", &json!({"type": "pixiv.user", "user_id": 11}));
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || !fake.api_calls_to("/v1/user/illusts").is_empty()),
        "{}",
        d.log()
    );
    fake.expire_access_tokens();
    assert!(wait_until(Duration::from_secs(40), || env.files_in("done").len() == 1), "{}", d.log());
    d.term();
    assert!(d.wait(Duration::from_secs(10)).is_some());
    for i in 0..90u64 {
        assert_file(
            &env.job_dir("u").join(format!("{}_p0.jpg", 5000 + i)),
            &FakePixiv::image_bytes(5000 + i, 0, "jpg"),
        );
    }
    // The token was refreshed (proactively or after the 400), the rotated
    // token is what is stored, and no call was retried more than once.
    let refreshes = fake.token_requests().len();
    assert!(refreshes >= 2, "only {refreshes} token requests");
    let stored: Value =
        serde_json::from_slice(&fs::read(env.dir.path().join("state/pixiv-token.json")).expect("token file"))
            .expect("json");
    assert_eq!(stored["refresh_token"], fake.current_refresh_token());
    use std::os::unix::fs::PermissionsExt;
    let mode =
        fs::metadata(env.dir.path().join("state/pixiv-token.json")).expect("stat").permissions().mode();
    assert_eq!(mode & 0o077, 0, "token file is readable by others: {mode:o}");
    assert!(fake.token_requests().iter().all(|t| t.hash_ok != Some(false)), "X-Client-Hash mismatch");
}

#[test]
fn a_revoked_token_parks_jobs_until_pixiv_refresh() {
    let fake = FakePixiv::start();
    fake.add_user(11, "a", "a");
    fake.add_works((0..5u64).map(|i| Work::new(6000 + i, 11)));
    fake.revoke_refresh_token();
    let env = env_for(&fake, json!({}));
    env.drop_job("u", &json!({"type": "pixiv.user", "user_id": 11}));
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || env.status(1).is_some_and(|s| s
            .error
            .as_deref()
            .is_some_and(|e| e.contains("waiting") && e.contains("rejected")))),
        "{}",
        d.log()
    );
    assert_eq!(env.status(1).expect("status").state.as_str(), "running", "a parked job is not failed");
    // A good token arrives through the CLI; the job continues by itself.
    let good = "fresh-refresh-token-123";
    fake.set_refresh_token(good);
    let out = env.cli(&["pixiv", "refresh", good]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Pixiv login works"));
    assert!(wait_until(Duration::from_secs(30), || env.files_in("done").len() == 1), "{}", d.log());
    assert_file(&env.job_dir("u").join("6000_p0.jpg"), &FakePixiv::image_bytes(6000, 0, "jpg"));
    // A bad token is refused by the CLI with Pixiv's reason.
    fake.revoke_refresh_token();
    let out = env.cli(&["pixiv", "refresh", "nonsense"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rejected"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.term();
    assert!(d.wait(Duration::from_secs(10)).is_some());
}

#[test]
fn a_rate_limit_storm_slows_the_account_and_the_job_continues() {
    let fake = FakePixiv::start();
    fake.add_user(11, "a", "a");
    fake.add_works((0..70u64).map(|i| Work::new(7000 + i, 11)));
    fake.rate_limit_next(4);
    let env = env_for(&fake, json!({"pixiv": {"rate_limit_secs": 0.3}}));
    env.drop_job("u", &json!({"type": "pixiv.user", "user_id": 11}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert!(log.contains("rate-limited"), "{log}");
    let calls = fake.api_calls();
    let limited: Vec<_> = calls.iter().filter(|c| c.status == 403).collect();
    assert_eq!(limited.len(), 4);
    // After each rate-limit answer the next call waited at least half the
    // (jittered, doubling) backoff.
    for w in calls.windows(2) {
        if w[0].status == 403 {
            let gap = w[1].started.duration_since(w[0].ended);
            assert!(gap >= Duration::from_millis(140), "only {gap:?} after a rate limit");
        }
    }
    for i in 0..70u64 {
        assert_file(
            &env.job_dir("u").join(format!("{}_p0.jpg", 7000 + i)),
            &FakePixiv::image_bytes(7000 + i, 0, "jpg"),
        );
    }
}

#[test]
fn two_jobs_of_one_account_keep_the_interval() {
    let fake = FakePixiv::start();
    fake.add_user(11, "a", "a");
    fake.add_user(12, "b", "b");
    fake.add_works((0..100u64).map(|i| Work::new(8000 + i, 11)));
    fake.add_works((0..100u64).map(|i| Work::new(9000 + i, 12)));
    let env = env_for(&fake, json!({"interval_ms": 150}));
    env.drop_job("a", &json!({"type": "pixiv.user", "user_id": 11}));
    env.drop_job("b", &json!({"type": "pixiv.user", "user_id": 12}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let mut calls = fake.api_calls();
    calls.sort_by_key(|c| c.started);
    assert!(calls.len() >= 6);
    for w in calls.windows(2) {
        let gap = w[1].started.saturating_duration_since(w[0].ended);
        assert!(
            gap >= Duration::from_millis(145),
            "two calls of one account {gap:?} apart: {} then {}",
            w[0].target,
            w[1].target
        );
    }
}

#[test]
fn kill9_mid_listing_continues_from_the_cursor() {
    let fake = FakePixiv::start();
    fake.add_user(11, "a", "a");
    fake.add_works((0..150u64).map(|i| Work::new(10_000 + i, 11)));
    fake.set_api_latency(Duration::from_millis(300));
    let env = env_for(&fake, json!({}));
    env.drop_job("u", &json!({"type": "pixiv.user", "user_id": 11}));
    let mut d = env.daemon(&[]);
    // Let two pages be listed (and journaled), then kill.
    assert!(
        wait_until(Duration::from_secs(20), || fake.api_calls_to("/v1/user/illusts").len() >= 3),
        "{}",
        d.log()
    );
    d.kill9();
    let pages_before = fake.api_calls_to("/v1/user/illusts").len();
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    for i in 0..150u64 {
        assert_file(
            &env.job_dir("u").join(format!("{}_p0.jpg", 10_000 + i)),
            &FakePixiv::image_bytes(10_000 + i, 0, "jpg"),
        );
    }
    // The first page was not walked again: 150 works are 5 pages; the
    // restart fetched at most the page in flight again.
    let first_pages =
        fake.api_calls_to("/v1/user/illusts").iter().filter(|c| c.param("offset").is_none()).count();
    assert_eq!(first_pages, 1, "the listing started over");
    let total_pages = fake.api_calls_to("/v1/user/illusts").len();
    assert!(total_pages <= 6, "{total_pages} list pages for 5 (before the kill: {pages_before})");
    // No image was fetched twice unless it was in flight at the kill.
    let mut hits = std::collections::HashMap::new();
    for r in fake.image_requests() {
        *hits.entry(r.path).or_insert(0) += 1;
    }
    assert!(hits.values().filter(|n| **n > 1).count() <= 8, "{hits:?}");
}

#[test]
fn the_archive_skips_moved_files_and_stop_after_seen_ends_early() {
    let fake = FakePixiv::start();
    fake.add_user(11, "a", "a");
    fake.add_works((0..40u64).map(|i| Work::new(11_000 + i, 11)));
    let env = env_for(&fake, json!({}));
    env.drop_job("first", &json!({"type": "pixiv.user", "user_id": 11}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let images = fake.image_requests().len();
    assert_eq!(images, 40);
    // The user moves the files away; a new job for the same artist fetches
    // nothing again, and stops listing after 5 known works.
    fs::remove_dir_all(env.job_dir("first")).expect("rm");
    fake.add_work(Work::new(11_100, 11));
    env.drop_job("second", &json!({"type": "pixiv.user", "user_id": 11, "stop_after_seen": 5}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert_eq!(fake.image_requests().len(), images + 1, "only the new work is fetched");
    assert!(env.job_dir("second").join("11100_p0.jpg").exists());
    let s = env.statuses().into_iter().find(|s| s.name == "second").expect("status");
    assert!(s.found <= 8, "stop_after_seen did not end the listing: {} found", s.found);
    assert_eq!(fake.api_calls_to("/v1/user/illusts").len(), 3, "the second job needed one list page");
}

#[test]
fn filters_and_templates() {
    let fake = FakePixiv::start();
    fake.add_user(11, "Some Artist", "acct");
    let mut ai = Work::new(12_000, 11);
    ai.ai_type = 2;
    let mut r18 = Work::new(12_001, 11);
    r18.x_restrict = 1;
    let mut popular = Work::new(12_002, 11);
    popular.bookmarks = 500;
    popular.title = "a/b title".into();
    fake.add_works([ai, r18, popular, Work::new(12_003, 11).kind(Kind::Manga).pages(2)]);
    let env = env_for(&fake, json!({}));
    env.drop_job(
        "f",
        &json!({"type": "pixiv.user", "user_id": 11, "ai": "exclude", "x_restrict": [0], "types": ["illust"],
                "by_user": true, "template": "{id}_p{page} {title}.{ext}"}),
    );
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let dir = env.job_dir("f").join("11");
    let names: Vec<String> = fs::read_dir(&dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["12002_p0 a_b title.jpg"], "{names:?}");
    let s = env.status(1).expect("status");
    assert_eq!(s.skipped, 3);
}

#[test]
fn search_goes_past_5000_results_by_moving_the_date_window() {
    let fake = FakePixiv::start();
    fake.add_user(11, "a", "a");
    fake.add_works((0..5100u64).map(|i| Work::new(20_000 + i, 11).tags(&["cat"])));
    let env = env_for(&fake, json!({"interval_ms": 0}));
    // A filter no work passes keeps this a listing test: 5,100 works are
    // found and recorded as skipped, nothing is downloaded.
    env.drop_job("s", &json!({"type": "pixiv.search", "word": "cat", "min_bookmarks": 1_000_000_000}));
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    let s = env.status(1).expect("status");
    assert_eq!(s.found, 5100, "every work exactly once");
    let calls = fake.api_calls_to("/v1/search/illust");
    assert!(calls.iter().all(|c| c.status == 200), "a call hit the offset cap");
    assert!(calls.iter().any(|c| c.param("end_date").is_some()), "the date window never moved");
    assert!(fake.image_requests().is_empty());
}

#[test]
fn pixiv_login_runs_the_pkce_flow() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let fake = FakePixiv::start();
    fake.add_user(1, "me", "me1");
    let env = env_for(&fake, json!({}));
    let mut child = crate::util::hermetic(Command::new(crate::util::bin()))
        .args(["pixiv", "login", "--spool"])
        .arg(&env.spool)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    // The browser URL carries the S256 challenge of a fresh verifier.
    let challenge = loop {
        let line = lines.next().expect("a URL is printed").expect("read");
        if let Some(i) = line.find("code_challenge=") {
            let rest = &line[i + "code_challenge=".len()..];
            break rest.split('&').next().unwrap_or_default().to_string();
        }
    };
    assert!(challenge.len() >= 43, "{challenge}");
    fake.expect_pkce(&challenge);
    writeln!(child.stdin.take().expect("stdin"), "{}", crate::support::pixiv::GOOD_CODE).expect("write code");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("Pixiv login works")), "{rest:?}");
    let stored: Value =
        serde_json::from_slice(&fs::read(env.dir.path().join("state/pixiv-token.json")).expect("token"))
            .expect("json");
    assert_eq!(stored["refresh_token"], fake.current_refresh_token());
    let grant = fake.token_requests().into_iter().last().expect("a token request");
    assert_eq!(grant.grant_type, "authorization_code");
}

#[test]
fn run_once_does_not_hang_on_a_parked_job() {
    let fake = FakePixiv::start();
    fake.add_user(11, "a", "a");
    fake.add_works((0..3u64).map(|i| Work::new(13_000 + i, 11)));
    fake.revoke_refresh_token();
    let env = env_for(&fake, json!({}));
    env.drop_job("u", &json!({"type": "pixiv.user", "user_id": 11}));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "a job that waits for a login is not done\n{log}");
    let s = env.status(1).expect("status");
    assert_eq!(s.state.as_str(), "queued");
    assert!(s.error.as_deref().is_some_and(|e| e.contains("rejected")), "{s:?}");
    assert!(env.files_in("work/a").iter().any(|f| f.ends_with(".u.json")), "the job stays claimed");
    // With a good token the next cron run finishes it.
    fake.set_refresh_token("good-again");
    assert!(env.cli(&["pixiv", "refresh", "good-again"]).status.success());
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert_file(&env.job_dir("u").join("13000_p0.jpg"), &FakePixiv::image_bytes(13_000, 0, "jpg"));
}

#[test]
fn a_deleted_user_fails_and_an_empty_one_is_done() {
    let fake = FakePixiv::start();
    fake.add_user(11, "gone", "gone");
    fake.add_work(Work::new(14_000, 11));
    fake.delete_user(11);
    fake.add_user(12, "empty", "empty");
    let env = env_for(&fake, json!({}));
    env.drop_job("gone", &json!({"type": "pixiv.user", "user_id": 11}));
    env.drop_job("empty", &json!({"type": "pixiv.user", "user_id": 12}));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{log}");
    let by_name = |n: &str| env.statuses().into_iter().find(|s| s.name == n).expect("status");
    let gone = by_name("gone");
    assert_eq!(gone.state.as_str(), "failed");
    assert!(gone.error.as_deref().is_some_and(|e| e.contains("user 11 not found")), "{gone:?}");
    assert_eq!(by_name("empty").state.as_str(), "done");
    // A user with works needs no profile call.
    assert_eq!(fake.api_calls_to("/v1/user/detail").len(), 2);
}
