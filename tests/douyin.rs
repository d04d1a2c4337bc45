//! Douyin listings through the real binary, with the configuration a user
//! gets (only `douyin.web_url` points at loopback), against a small
//! signature-checking stand-in for the web API: pages past an empty page
//! that says `has_more`, a block (a 200 with an empty body) that makes the
//! job back off and go on with its cursor, videos from their candidate
//! URLs. The full fake Douyin lives in tests/support/douyin/. Every test
//! points `douyin.mssdk_url` (the msToken endpoint) at loopback too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use spoolfetch::providers::douyin::sign::verify_a_bogus;

use crate::support::http::{Body, Handler, Request, Response, Server, lock};
use crate::util::{Env, assert_file};

const SEC: &str = "MS4wLjABAAAAtest";

fn video_bytes(id: u64) -> Vec<u8> {
    format!("video {id}\n").repeat(500).into_bytes()
}

fn work(base: &str, id: u64) -> Value {
    json!({"aweme_id": id.to_string(), "aweme_type": 0, "create_time": 1_700_000_000 + id, "desc": format!("work {id}"),
        "author": {"uid": "42", "sec_uid": SEC, "nickname": "Nick"},
        "status": {"private_status": 0},
        "video": {"play_addr": {"url_list": [format!("{base}/playwm/{id}.mp4")]},
                  "bit_rate": [{"play_addr": {"url_list": [format!("{base}/expired/{id}.mp4"), format!("{base}/cdn/{id}.mp4")]}}]}})
}

/// The stand-in: three pages (the second empty with has_more 1), the
/// first `blocks` API answers empty.
struct Stand {
    server: Server,
    bad_signatures: Arc<AtomicUsize>,
    pages: Arc<Mutex<Vec<String>>>,
}

fn stand(blocks: usize) -> Stand {
    let base = Arc::new(Mutex::new(String::new()));
    let blocks = Arc::new(AtomicUsize::new(blocks));
    let bad = Arc::new(AtomicUsize::new(0));
    let pages = Arc::new(Mutex::new(Vec::new()));
    let (b, bl, bd, pg) = (Arc::clone(&base), Arc::clone(&blocks), Arc::clone(&bad), Arc::clone(&pages));
    let handler: Handler = Arc::new(move |req: &Request| {
        let base = lock(&b).clone();
        let path = req.path_only().to_string();
        if let Some(rest) = path.strip_prefix("/cdn/") {
            let id: u64 = rest.trim_end_matches(".mp4").parse().unwrap_or(0);
            return Response::new(200).with_body(Body::Bytes(video_bytes(id)));
        }
        if path.starts_with("/expired/") {
            return Response::text(403, "expired");
        }
        if path.starts_with("/playwm/") {
            return Response::new(200).with_body(Body::Bytes(b"watermarked".to_vec()));
        }
        if path != "/aweme/v1/web/aweme/post/" {
            return Response::text(404, "no");
        }
        let (q, sig) = req
            .path
            .split_once('?')
            .map(|(_, q)| q)
            .and_then(|q| q.rsplit_once("&a_bogus="))
            .unwrap_or(("", ""));
        let ua = req.header("user-agent").unwrap_or("");
        if verify_a_bogus(sig, q, "", ua, spoolfetch::providers::douyin::sign::now_ms()).is_none() {
            bd.fetch_add(1, Ordering::SeqCst);
            return Response::new(200);
        }
        if bl.load(Ordering::SeqCst) > 0 {
            bl.fetch_sub(1, Ordering::SeqCst);
            return Response::new(200);
        }
        let cursor = req.query("max_cursor").unwrap_or_default();
        lock(&pg).push(cursor.clone());
        let page = match cursor.as_str() {
            "0" => {
                json!({"status_code": 0, "aweme_list": [work(&base, 1), work(&base, 2)], "has_more": 1, "max_cursor": 1_700_000_000_000i64})
            }
            "1700000000000" => {
                json!({"status_code": 0, "aweme_list": [], "has_more": 1, "max_cursor": 1_600_000_000_000i64})
            }
            _ => json!({"status_code": 0, "aweme_list": [work(&base, 3)], "has_more": 0, "max_cursor": 0}),
        };
        Response::json(200, &page.to_string())
    });
    let server = Server::start(handler);
    *lock(&base) = server.base_url();
    Stand { server, bad_signatures: bad, pages }
}

fn configure(env: &Env, s: &Stand) {
    // The stand-in has no token endpoint: the queries carry a generated
    // msToken, as they do when Douyin's is down.
    let base = s.server.base_url();
    env.config_defaults(json!({"douyin": {"web_url": base, "mssdk_url": format!("{base}/mssdk")}}));
}

#[test]
fn a_users_works_are_listed_past_an_empty_page_and_saved_from_their_candidates() {
    let s = stand(0);
    let env = Env::new();
    configure(&env, &s);
    let url = format!("https://www.douyin.com/user/{SEC}?from_tab_name=main");
    env.drop_job("u", &json!({"type": "douyin.post", "url": url, "by_user": true}));
    let (status, log) = env.run_once(Duration::from_secs(90));
    assert!(status.success(), "{log}");
    assert_eq!(s.bad_signatures.load(Ordering::SeqCst), 0, "every call signed as Douyin checks\n{log}");
    assert_eq!(*lock(&s.pages), ["0", "1700000000000", "1600000000000"], "{log}");
    for id in [1u64, 2, 3] {
        let name = format!(
            "42/{}_work {id}_{id}_video.mp4",
            spoolfetch::providers::douyin::china_time(1_700_000_000 + id as i64)
        );
        assert_file(&env.job_dir("u").join(name), &video_bytes(id));
    }
}

#[test]
fn a_block_is_waited_out_with_the_cursor_kept_never_taken_for_the_end() {
    // As many empty answers in a row as the pacer tries (1 + 3 retries):
    // the job waits, and tries the same page again later.
    let s = stand(4);
    let env = Env::new();
    configure(&env, &s);
    env.drop_job("u", &json!({"type": "douyin.post", "sec_user_id": SEC}));
    let (_, log) = env.run_once(Duration::from_secs(120));
    let st = env.status(1).expect("status");
    assert_ne!(st.state.as_str(), "done", "{st:?}\n{log}");
    assert!(st.error.as_deref().is_some_and(|e| e.contains("blocked by Douyin")), "{st:?}");
    // The next run continues and finishes.
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    assert_eq!(env.status(1).map(|s| s.done), Some(3));
}

/// Every file under `dir`, relative, `/`-separated.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_users_works_against_the_fake_douyin_are_saved_whole_and_skipped_when_unavailable() {
    use crate::support::douyin::{Asset, FakeDouyin, Kind as WorkKind, asset_bytes};
    let fake = FakeDouyin::start();
    let env = Env::new();
    env.config_defaults(json!({"douyin": {"web_url": fake.web_url(), "mssdk_url": fake.mssdk_url()}}));
    let sec = fake.sec_uid(0);
    env.drop_job("u", &json!({"type": "douyin.post", "sec_user_id": sec}));
    let (_, log) = env.run_once(Duration::from_secs(180));
    assert_eq!(fake.bad_signatures(), 0, "{log}");
    let files = tree(&env.job_dir("u"));
    let mut videos = 0;
    for id in fake.works(&sec) {
        let w = fake.work(&id).expect("a fixture work");
        let mine: Vec<&String> = files.iter().filter(|f| f.contains(&format!("_{id}_"))).collect();
        if w.prohibited || w.deleted {
            assert!(mine.is_empty(), "{id} is not saved: {mine:?}");
            continue;
        }
        match w.kind {
            WorkKind::Video => {
                let v = mine
                    .iter()
                    .find(|f| f.ends_with("_video.mp4"))
                    .unwrap_or_else(|| panic!("{id}: {files:?}\n{log}"));
                assert_file(&env.job_dir("u").join(v), &asset_bytes(&id, Asset::Video));
                videos += 1;
            }
            WorkKind::Images => {
                assert!(mine.iter().filter(|f| f.contains("_image_")).count() >= 1, "{id}: {mine:?}")
            }
        }
    }
    assert!(videos > 0, "{files:?}");
    let st = env.status(1).expect("status");
    assert_eq!(st.failed, 0, "{st:?}\n{log}");
}

#[test]
fn douyin_cookie_checks_and_stores_the_cookie_and_a_refused_one_parks_the_job_until_then() {
    use crate::support::douyin::FakeDouyin;
    use std::io::Write;
    use std::process::{Command, Stdio};
    let fake = FakeDouyin::start();
    let env = Env::new();
    env.config_defaults(json!({"douyin": {"web_url": fake.web_url(), "mssdk_url": fake.mssdk_url()}}));
    let store = |cookie: &str| {
        let mut cmd = crate::util::hermetic(Command::new(crate::util::bin()));
        cmd.args(["douyin", "cookie", "-", "--spool"])
            .arg(&env.spool)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        child.stdin.take().expect("stdin").write_all(format!("{cookie}\n").as_bytes()).expect("write");
        child.wait_with_output().expect("wait")
    };
    let bad = store("sessionid=wrong");
    assert_eq!(bad.status.code(), Some(1), "{}", String::from_utf8_lossy(&bad.stderr));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("refused the cookie"));
    let file = env.dir.path().join("state/douyin-cookie.json");
    assert!(!file.exists());
    // Without a login the likes wait for one.
    env.drop_job("l", &json!({"type": "douyin.like", "sec_user_id": fake.sec_uid(0)}));
    let (_, log) = env.run_once(Duration::from_secs(60));
    let st = env.status(1).expect("status");
    assert!(st.error.as_deref().is_some_and(|e| e.contains("spoolfetch douyin cookie")), "{st:?}\n{log}");
    let ok = store(&fake.login_cookie());
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let mode =
        std::fs::metadata(&file).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    assert!(!log.contains(crate::support::douyin::SESSION_ID), "the cookie never reaches the log");
    assert!(env.status(1).is_some_and(|s| s.done > 0), "{log}");
}

fn full_config(env: &Env, fake: &crate::support::douyin::FakeDouyin, cookie: bool) {
    let mut d = json!({"web_url": fake.web_url(), "live_url": fake.live_url(),
        "webcast_url": fake.webcast_url(), "mssdk_url": fake.mssdk_url(), "sso_url": fake.sso_url()});
    if cookie {
        d["cookie"] = json!(fake.login_cookie());
    }
    env.config_defaults(json!({"douyin": d}));
}

#[test]
fn the_collection_the_favourites_folders_and_the_feed_are_listed_with_the_login() {
    use crate::support::douyin::FakeDouyin;
    let fake = FakeDouyin::start();
    let env = Env::new();
    full_config(&env, &fake, true);
    env.drop_job("c", &json!({"type": "douyin.collection"}));
    env.drop_job("f", &json!({"type": "douyin.collects", "name": "f"}));
    env.drop_job("h", &json!({"type": "douyin.feed", "max_items": 5, "name": "h"}));
    let (status, log) = env.run_once(Duration::from_secs(180));
    assert!(status.success(), "{log}");
    assert_eq!(fake.bad_signatures(), 0, "{log}");
    let count = |job: &str, ids: &[String]| {
        ids.iter().filter(|id| tree(&env.job_dir(job)).iter().any(|f| f.contains(id.as_str()))).count()
    };
    let collection = fake.collection();
    assert!(count("c", &collection) > 0, "{log}");
    let in_folders: Vec<String> = fake.collects().into_iter().flat_map(|(_, _, ids)| ids).collect();
    assert!(count("f", &in_folders) > 0, "{log}");
    let feed = env.statuses().into_iter().find(|s| s.name == "h").expect("feed status");
    assert!(feed.found >= 1 && feed.found <= 5 * 6, "{feed:?}");
}

#[test]
fn a_live_room_is_recorded_until_it_ends_and_an_ended_room_is_skipped_with_the_reason() {
    use crate::support::douyin::FakeDouyin;
    let fake = FakeDouyin::start();
    fake.hls_refreshes(3);
    let env = Env::new();
    full_config(&env, &fake, false);
    let (rid, _) = fake.live_room();
    let (ended, _) = fake.ended_room();
    env.drop_job("live", &json!({"type": "douyin.live", "web_rid": rid}));
    env.drop_job(
        "gone",
        &json!({"type": "douyin.live", "url": format!("https://live.douyin.com/{ended}"), "name": "gone"}),
    );
    let (_, log) = env.run_once(Duration::from_secs(120));
    let live = env.statuses().into_iter().find(|s| s.name == "live").expect("status");
    assert_eq!(live.state.as_str(), "done", "{live:?}\n{log}");
    let files = tree(&env.job_dir("live"));
    let ts = files.iter().find(|f| f.ends_with("_live.ts")).unwrap_or_else(|| panic!("{files:?}\n{log}"));
    assert!(std::fs::metadata(env.job_dir("live").join(ts)).map(|m| m.len()).unwrap_or(0) > 0);
    let gone = env.statuses().into_iter().find(|s| s.name == "gone").expect("status");
    assert_eq!((gone.skipped, gone.failed), (1, 0), "{gone:?}\n{log}");
    assert!(log.contains("has ended") || gone.error.is_none(), "{log}");
}

#[test]
fn short_links_expired_first_urls_and_missing_things_end_clearly() {
    use crate::support::douyin::{DELETED_USER, FakeDouyin, MISSING_MIX};
    let fake = FakeDouyin::start();
    fake.expire_primary_urls(true);
    let env = Env::new();
    full_config(&env, &fake, true);
    // A mix through its short link, pasted inside share text; every
    // video's first URL has expired, the second serves it.
    let share = format!("复制打开抖音，看看【合集】 {} 一起看", fake.short_link_mix());
    env.drop_job("mix", &json!({"type": "douyin.mix", "url": share}));
    env.drop_job("nouser", &json!({"type": "douyin.post", "sec_user_id": DELETED_USER, "name": "nouser"}));
    env.drop_job("nomix", &json!({"type": "douyin.mix", "mix_id": MISSING_MIX, "name": "nomix"}));
    env.drop_job(
        "private",
        &json!({"type": "douyin.like", "sec_user_id": fake.sec_uid(1), "name": "private"}),
    );
    let (_, log) = env.run_once(Duration::from_secs(180));
    let by =
        |n: &str| env.statuses().into_iter().find(|s| s.name == n).unwrap_or_else(|| panic!("{n}\n{log}"));
    let mix = by("mix");
    assert_eq!((mix.state.as_str(), mix.failed), ("done", 0), "{mix:?}\n{log}");
    let files = tree(&env.job_dir("mix"));
    for id in fake.mix_works(&fake.mix_id()) {
        if let Some(v) = files.iter().find(|f| f.contains(&format!("_{id}_")) && f.ends_with("_video.mp4")) {
            use crate::support::douyin::{Asset, asset_bytes};
            assert_file(&env.job_dir("mix").join(v), &asset_bytes(&id, Asset::Video));
        }
    }
    assert!(files.iter().any(|f| f.ends_with("_video.mp4")), "{files:?}");
    // A user or mix that does not exist fails its job with the reason; a
    // private like list is an empty one.
    for (n, says) in [("nouser", "not found"), ("nomix", "not found")] {
        let s = by(n);
        assert_eq!(s.state.as_str(), "failed", "{s:?}");
        assert!(s.error.as_deref().is_some_and(|e| e.contains(says)), "{s:?}");
    }
    let p = by("private");
    assert_eq!((p.state.as_str(), p.done), ("done", 0), "{p:?}");
}

#[test]
fn kill_9_mid_listing_and_mid_video_loses_nothing_and_saves_nothing_twice() {
    use crate::support::douyin::{Asset, FakeDouyin, Kind as WorkKind, Options, asset_bytes};
    let fake = FakeDouyin::start_with(Options {
        users: 2,
        works_per_user: 60,
        api_latency: Duration::from_millis(30),
        media_latency: Duration::from_millis(200),
    });
    let env = Env::new();
    full_config(&env, &fake, false);
    let sec = fake.sec_uid(0);
    env.drop_job("u", &json!({"type": "douyin.post", "sec_user_id": sec}));
    let mut d = env.daemon(&[]);
    // Some files saved, the listing not finished (60 works, 20 a page,
    // 1.5 s apart).
    let some = crate::util::wait_until(Duration::from_secs(60), || {
        env.status(1).is_some_and(|s| s.done >= 3 && s.found < 60)
    });
    assert!(some, "{:?}\n{}", env.status(1), d.log());
    d.kill9();
    let (status, log) = env.run_once(Duration::from_secs(180));
    assert!(status.success(), "{log}");
    let files = tree(&env.job_dir("u"));
    assert!(!files.iter().any(|f| f.contains(".part")), "{files:?}");
    for id in fake.works(&sec) {
        let w = fake.work(&id).expect("work");
        if w.prohibited || w.deleted || !matches!(w.kind, WorkKind::Video) {
            continue;
        }
        let v = files.iter().find(|f| f.contains(&format!("_{id}_")) && f.ends_with("_video.mp4"));
        let v = v.unwrap_or_else(|| panic!("{id} missing\n{log}"));
        assert_file(&env.job_dir("u").join(v), &asset_bytes(&id, Asset::Video));
    }
}

/// The msToken of every web API query the fake saw.
fn query_tokens(fake: &crate::support::douyin::FakeDouyin) -> Vec<String> {
    fake.request_log()
        .iter()
        .filter(|l| l.area == "web" && l.path.starts_with("/aweme/v1/web/"))
        .filter_map(|l| l.query.split('&').find_map(|p| p.strip_prefix("msToken=")).map(str::to_string))
        .collect()
}

#[test]
fn the_queries_carry_the_token_the_endpoint_served_fetched_once_for_the_account() {
    use crate::support::douyin::FakeDouyin;
    let fake = FakeDouyin::start();
    let env = Env::new();
    full_config(&env, &fake, false);
    env.drop_job("u", &json!({"type": "douyin.post", "sec_user_id": fake.sec_uid(0)}));
    env.drop_job("p", &json!({"type": "douyin.profile", "sec_user_id": fake.sec_uid(1), "name": "p"}));
    let (status, log) = env.run_once(Duration::from_secs(180));
    assert!(status.success(), "{log}");
    let served = fake.ms_tokens();
    assert_eq!(served.len(), 1, "one token for the account's two jobs\n{log}");
    assert_eq!(fake.requests("ms_token"), 1);
    let sent = query_tokens(&fake);
    assert!(sent.len() >= 3, "{sent:?}");
    assert!(sent.iter().all(|t| *t == served[0]), "every query carries the served token\n{log}");
    assert_eq!(fake.bad_signatures(), 0, "{log}");
    assert!(!log.contains("no msToken"), "{log}");
}

#[test]
fn a_token_endpoint_that_is_down_or_sets_a_wrong_length_leaves_the_generated_token_warned_once() {
    use crate::support::douyin::{FakeDouyin, TokenFault};
    for fault in [TokenFault::Down, TokenFault::WrongLength] {
        let fake = FakeDouyin::start();
        fake.ms_token_fault(Some(fault));
        let env = Env::new();
        full_config(&env, &fake, false);
        env.drop_job("u", &json!({"type": "douyin.post", "sec_user_id": fake.sec_uid(0)}));
        let (status, log) = env.run_once(Duration::from_secs(180));
        assert!(status.success(), "{fault:?}\n{log}");
        let sent = query_tokens(&fake);
        assert!(sent.len() >= 2, "{fault:?}: {sent:?}");
        let first = &sent[0];
        assert_eq!(first.len(), 128, "{fault:?}: {first}");
        assert!(
            first.ends_with("==")
                && first[..126].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-')
        );
        assert!(sent.iter().all(|t| t == first), "one stand-in for the account, not one per call");
        assert!(!fake.ms_tokens().contains(first), "{fault:?}: not a served token");
        assert_eq!(log.matches("no msToken from").count(), 1, "{fault:?}: one warning\n{log}");
        assert!(fake.requests("ms_token") >= 1, "{fault:?}: the endpoint was asked");
    }
}

#[test]
fn a_pause_every_n_calls_set_for_douyin_falls_between_the_pages() {
    use crate::support::douyin::{FakeDouyin, Options};
    let fake = FakeDouyin::start_with(Options { users: 1, works_per_user: 45, ..Options::default() });
    fake.empty_page_every(0);
    let env = Env::new();
    let pause = Duration::from_secs(6);
    env.config_defaults(json!({"douyin": {"web_url": fake.web_url(), "mssdk_url": fake.mssdk_url(),
        "pause_every": 2, "pause_ms": pause.as_millis() as u64}}));
    env.drop_job("u", &json!({"type": "douyin.post", "sec_user_id": fake.sec_uid(0)}));
    let (status, log) = env.run_once(Duration::from_secs(180));
    assert!(status.success(), "{log}");
    let at: Vec<std::time::Instant> = fake
        .server()
        .log()
        .iter()
        .filter(|r| r.path.starts_with("/web/aweme/v1/web/aweme/post/"))
        .map(|r| r.at)
        .collect();
    assert_eq!(at.len(), 3, "three pages of 20\n{log}");
    let first = at[1] - at[0];
    let second = at[2] - at[1];
    // Douyin's own pacing (1.5 s plus up to 1 s) between the first two,
    // the pause after the second.
    assert!(first >= Duration::from_millis(1400) && first < pause, "{first:?}");
    assert!(second >= pause, "{second:?}\n{log}");
    assert!(log.contains("calls made; pausing 6.0 s"), "{log}");
}

/// `spoolfetch douyin login` on the test spool: (exit code, stdout, stderr).
fn douyin_login(env: &Env) -> (Option<i32>, String, String) {
    use std::process::{Command, Stdio};
    let mut cmd = crate::util::hermetic(Command::new(crate::util::bin()));
    cmd.args(["douyin", "login", "--spool"]).arg(&env.spool).stdin(Stdio::null());
    let out = cmd.output().expect("run douyin login");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn douyin_login_shows_a_code_follows_it_to_the_confirmation_and_the_cookie_it_stores_works() {
    use crate::support::douyin::{FakeDouyin, SESSION_ID};
    let fake = FakeDouyin::start();
    let env = Env::new();
    full_config(&env, &fake, false);
    let (code, out, err) = douyin_login(&env);
    assert_eq!(code, Some(0), "{out}\n{err}");
    // The code is drawn with block characters, and the states are told.
    assert!(err.contains('\u{2580}') || err.contains('\u{2584}') || err.contains('\u{2588}'), "{err}");
    assert!(err.contains("token=qrtoken0000"), "{err}");
    for says in ["Waiting for the scan", "Scanned", "Confirmed"] {
        assert!(err.contains(says), "{says}: {err}");
    }
    assert_eq!((fake.requests("sso_qrcode"), fake.requests("sso_check")), (1, 3));
    assert_eq!(fake.requests("sso_callback"), 2, "the callback and its landing page, hop by hop");
    let state = env.dir.path().join("state");
    assert!(out.contains(&state.display().to_string()), "says which state_dir: {out}");
    assert!(!out.contains(SESSION_ID) && !err.contains(SESSION_ID), "the cookie is never shown");
    let file = state.join("douyin-cookie.json");
    let mode =
        std::fs::metadata(&file).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).expect("cookie file")).expect("JSON");
    let cookie = stored["cookie"].as_str().unwrap_or("");
    assert!(
        cookie.contains(&format!("sessionid={SESSION_ID}")) && cookie.contains("passport_csrf_token="),
        "{stored}"
    );
    // The stored login reads the account's collection.
    env.drop_job("c", &json!({"type": "douyin.collection"}));
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    assert!(!log.contains(SESSION_ID), "the cookie never reaches the log");
    let st = env.status(1).expect("status");
    assert!(st.done > 0 && st.failed == 0, "{st:?}\n{log}");
}

#[test]
fn douyin_login_takes_a_new_code_when_one_expires_and_stops_when_refused() {
    use crate::support::douyin::FakeDouyin;
    let fake = FakeDouyin::start();
    fake.sso_script(&[&["1", "5"], &["2", "3"]]);
    let env = Env::new();
    full_config(&env, &fake, false);
    let (code, out, err) = douyin_login(&env);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(err.contains("expired") && err.contains("token=qrtoken0001"), "{err}");
    assert_eq!(fake.requests("sso_qrcode"), 2);
    assert!(env.dir.path().join("state/douyin-cookie.json").exists());

    let fake = FakeDouyin::start();
    fake.sso_script(&[&["2", "4"]]);
    let env = Env::new();
    full_config(&env, &fake, false);
    let (code, out, err) = douyin_login(&env);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(err.contains("refused in the app"), "{err}");
    assert_eq!(fake.requests("sso_callback"), 0);
    assert!(!env.dir.path().join("state/douyin-cookie.json").exists(), "nothing stored");
}

/// The sidecar of a recording in `dir` and the bytes it claims.
fn recorded_len(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_live.ts.rec"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter_map(|v| v["len"].as_u64())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_live_recording_killed_9_continues_after_the_restart_with_every_segment_once() {
    use crate::support::douyin::{FakeDouyin, segment_bytes};
    let fake = FakeDouyin::start();
    // About 24 s of stream (one segment a second); eight segments listed
    // at a time, so the restart finds the ones not yet recorded still
    // there.
    let (refreshes, window) = (24, 8);
    fake.hls_refreshes(refreshes);
    fake.hls_window(window);
    let env = Env::new();
    full_config(&env, &fake, false);
    let (rid, room_id) = fake.live_room();
    env.drop_job("live", &json!({"type": "douyin.live", "web_rid": rid}));
    let dir = env.job_dir("live");
    let seg = segment_bytes(&room_id, "FULL_HD1", 0).len() as u64;
    let mut d = env.daemon(&[]);
    let recording = crate::util::wait_until(Duration::from_secs(60), || recorded_len(&dir) >= 3 * seg);
    assert!(recording, "{:?}\n{}", env.status(1), d.log());
    d.kill9();
    let before = fake.requests("hls");
    assert!(before < refreshes, "killed mid-recording ({before} playlist fetches)");
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    assert!(log.contains("continuing the recording at segment"), "{log}");
    let files = tree(&dir);
    let ts: Vec<&String> = files.iter().filter(|f| f.ends_with("_live.ts")).collect();
    assert_eq!(ts.len(), 1, "one recording: {files:?}");
    assert!(!files.iter().any(|f| f.ends_with(".rec") || f.ends_with(".part")), "{files:?}");
    let got = std::fs::read(dir.join(ts[0])).expect("the recording");
    // Every segment the stream ever listed, each once, in order.
    let last = (refreshes + window - 1) as u64;
    let want: Vec<u8> = (0..last).flat_map(|n| segment_bytes(&room_id, "FULL_HD1", n)).collect();
    assert_eq!(got.len(), want.len(), "{} of {} segments\n{log}", got.len() as u64 / seg, last);
    assert!(got == want, "the bytes the fake served, in order\n{log}");
    let st = env.status(1).expect("status");
    assert_eq!((st.state.as_str(), st.done), ("done", 1), "{st:?}");
}

#[test]
fn a_cookie_that_expires_mid_job_parks_it_and_a_new_one_finishes_it_with_nothing_missing() {
    use crate::support::douyin::FakeDouyin;
    let fake = FakeDouyin::start();
    let env = Env::new();
    full_config(&env, &fake, true);
    assert!(fake.collection().len() > 20, "the collection needs more than one page");
    // Prohibited and deleted works are skipped, never saved.
    let want: Vec<String> = fake
        .collection()
        .into_iter()
        .filter(|id| fake.work(id).is_some_and(|w| !w.prohibited && !w.deleted))
        .collect();
    env.drop_job("c", &json!({"type": "douyin.collection"}));
    let mut d = env.daemon(&["--once"]);
    // The first page comes with the cookie; then it expires.
    assert!(
        crate::util::wait_until(Duration::from_secs(60), || fake.requests("listcollection") >= 1),
        "{}",
        d.log()
    );
    fake.expire_cookie();
    let status = d.wait(Duration::from_secs(120)).unwrap_or_else(|| panic!("run --once hung:\n{}", d.log()));
    let log = d.log();
    assert_eq!(status.code(), Some(1), "a parked job is not a success: {log}");
    let st = env.status(1).expect("status");
    assert_ne!(st.state.as_str(), "done", "{st:?}\n{log}");
    assert!(st.error.as_deref().is_some_and(|e| e.contains("douyin cookie")), "{st:?}\n{log}");
    // A fresh cookie: the job continues where it was and ends with every work.
    fake.renew_cookie();
    let (status, log) = env.run_once(Duration::from_secs(180));
    assert!(status.success(), "{log}");
    let files = tree(&env.job_dir("c"));
    let missing: Vec<&String> =
        want.iter().filter(|id| !files.iter().any(|f| f.contains(id.as_str()))).collect();
    assert!(missing.is_empty(), "missing works {missing:?}\n{log}");
    assert!(!log.contains(crate::support::douyin::SESSION_ID), "the cookie never reaches the log");
}
