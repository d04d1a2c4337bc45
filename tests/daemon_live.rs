//! Live recording through the real binary, with the configuration a user
//! gets: `demo.live` against a fake HLS and FLV server, killed and
//! resumed.

use std::time::Duration;

use serde_json::json;

use crate::support::http::{Body, Response};
use crate::support::live::{FakeLive, segment, segments_in};
use crate::util::{Env, wait_until};

fn hls_job(live: &FakeLive, path: &str) -> serde_json::Value {
    json!({"type": "demo.live", "url": live.url(path)})
}

/// The hidden sidecar of a recording exists and claims some bytes.
fn recording_started(env: &Env) -> bool {
    std::fs::read(env.job_dir("rec").join(".live.ts.rec"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["len"].as_u64().unwrap_or(0) > 0)
}

#[test]
fn an_hls_recording_killed_twice_holds_every_segment_once() {
    // 30 half-second segments, all of them listed while the stream runs:
    // nothing slides out during the short restarts.
    let live = FakeLive::start(Duration::from_millis(500), 30, 30);
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("rec", &hls_job(&live, "/master.m3u8"));
    for round in 0..2 {
        let mut d = env.daemon(&[]);
        let started = wait_until(Duration::from_secs(20), || recording_started(&env));
        assert!(started, "round {round}: no durable recording\n{}", d.log());
        std::thread::sleep(Duration::from_millis(2500));
        d.kill9();
        if round == 1 {
            assert!(d.log().contains("continuing the recording at segment"), "{}", d.log());
        }
    }
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let bytes = std::fs::read(env.job_dir("rec").join("live.ts")).expect("the recording");
    assert_eq!(segments_in(&bytes), (0..30).collect::<Vec<u64>>(), "{log}");
    assert!(!env.job_dir("rec").join(".live.ts.rec").exists(), "the sidecar is gone once finished");
    let s = env.status(1).expect("status");
    assert_eq!((s.state.as_str(), s.done), ("done", 1), "{log}");
}

#[test]
fn segments_that_slid_out_while_the_daemon_was_down_are_a_counted_gap() {
    let live = FakeLive::start(Duration::from_millis(500), 24, 4);
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("rec", &hls_job(&live, "/live/index.m3u8"));
    let mut d = env.daemon(&[]);
    let recording = wait_until(Duration::from_secs(20), || {
        env.status(1).is_some_and(|s| s.stage == "record") && recording_started(&env)
    });
    assert!(recording, "{:?}\n{}", env.status(1), d.log());
    d.kill9();
    // Four segments are listed at a time: after 4 s down, some are gone.
    std::thread::sleep(Duration::from_secs(4));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let got = segments_in(&std::fs::read(env.job_dir("rec").join("live.ts")).expect("the recording"));
    assert_eq!((got.first(), got.last()), (Some(&0), Some(&23)), "{got:?}");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order, each once: {got:?}");
    // Every gap the recorder logged, in either run (a slow machine may
    // also fall behind while recording): slid-out runs and single
    // vanished segments.
    let first_log = d.log();
    let all = format!("{first_log}\n{log}");
    let slid: u64 = all
        .split(" segments slid out of the playlist")
        .filter_map(|head| head.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()))
        .sum();
    let gone = all.matches("is gone (a gap in the recording)").count() as u64;
    let gap = slid + gone;
    assert!(gap > 0, "a gap is logged\n{log}");
    assert_eq!(gap + got.len() as u64, 24, "{got:?}\n{log}");
}

#[test]
fn an_flv_stream_that_breaks_off_continues_in_a_new_piece() {
    let live = FakeLive::start(Duration::from_millis(500), 1, 1);
    let first: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let second: Vec<u8> = (0..20_000u32).map(|i| (i % 7) as u8).collect();
    // The first connection breaks after 30,000 of its announced bytes; the
    // second ends cleanly (the broadcast is over).
    live.push_flv(Response::new(200).with_body(Body::Bytes(first.clone())).truncate_after(30_000));
    live.push_flv(Response::new(200).with_body(Body::CloseDelimited(second.clone())));
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("rec", &json!({"type": "demo.live", "url": live.url("/live.flv"), "protocol": "flv"}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let dir = env.job_dir("rec");
    assert!(std::fs::read(dir.join("live.flv")).expect("piece 1") == first[..30_000], "{log}");
    assert!(std::fs::read(dir.join("live.002.flv")).expect("piece 2") == second, "{log}");
    assert!(log.contains("reconnecting in a new piece"), "{log}");
}

#[test]
fn a_stream_that_is_not_hls_ends_with_a_reason() {
    let live = FakeLive::start(Duration::from_millis(500), 10, 10);
    live.override_playlist(Response::text(200, "<html>please log in</html>"));
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("rec", &hls_job(&live, "/live/index.m3u8"));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{log}");
    let s = env.status(1).expect("status");
    let err = s.error.unwrap_or_default();
    assert!(err.contains("not an HLS playlist") && err.contains("before anything was recorded"), "{err}");
    assert!(!env.job_dir("rec").join("live.ts").exists());
    let _ = segment(0);
}

#[test]
fn sigterm_keeps_what_was_recorded_and_the_next_start_continues_it() {
    let live = FakeLive::start(Duration::from_millis(500), 16, 16);
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("rec", &hls_job(&live, "/live/index.m3u8"));
    let mut d = env.daemon(&[]);
    let started = wait_until(Duration::from_secs(20), || recording_started(&env));
    assert!(started, "{}", d.log());
    d.term();
    let status = d.wait(Duration::from_secs(30)).expect("the daemon stops");
    assert!(status.success(), "{}", d.log());
    let sidecar: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.job_dir("rec").join(".live.ts.rec")).expect("the sidecar stays"),
    )
    .expect("sidecar JSON");
    let kept =
        std::fs::metadata(env.job_dir("rec").join(".live.ts.part")).expect("the recording stays").len();
    assert_eq!(Some(kept), sidecar["len"].as_u64(), "everything recorded was made durable at the stop");
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let got = segments_in(&std::fs::read(env.job_dir("rec").join("live.ts")).expect("the recording"));
    assert_eq!(got, (0..16).collect::<Vec<u64>>(), "{log}");
}

#[test]
fn an_expired_stream_url_is_refreshed_and_the_recording_goes_on() {
    let live = FakeLive::start(Duration::from_millis(500), 16, 16);
    live.expire_after(Duration::from_secs(3));
    live.fresh(&json!({"url": live.url("/live2/index.m3u8")}).to_string());
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job(
        "rec",
        &json!({"type": "demo.live", "url": live.url("/live/index.m3u8"), "refresh": live.url("/api/fresh")}),
    );
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert!(log.contains("asking the provider for fresh URLs"), "{log}");
    let got = segments_in(&std::fs::read(env.job_dir("rec").join("live.ts")).expect("the recording"));
    assert_eq!(got, (0..16).collect::<Vec<u64>>(), "one file, every segment once\n{log}");
}

#[test]
fn when_the_provider_says_the_stream_is_over_the_recording_is_finished() {
    let live = FakeLive::start(Duration::from_millis(500), 100, 100);
    live.expire_after(Duration::from_secs(3));
    live.fresh(r#"{"over": true}"#);
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job(
        "rec",
        &json!({"type": "demo.live", "url": live.url("/live/index.m3u8"), "refresh": live.url("/api/fresh")}),
    );
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert!(log.contains("the provider says the stream is over"), "{log}");
    let got = segments_in(&std::fs::read(env.job_dir("rec").join("live.ts")).expect("the recording"));
    assert!(!got.is_empty() && got.len() < 100, "{got:?}");
    assert_eq!(got, (0..got.len() as u64).collect::<Vec<u64>>());
    assert!(!env.job_dir("rec").join(".live.ts.rec").exists());
}
