//! `picwish.process` through the real binary, with the configuration a
//! user gets, against the fake PicWish (`tests/support/picwish/`): both
//! interfaces, `kill -9` with tasks in flight, the same folder again, an
//! expired result URL, state -7, a 429 storm, credits, bad inputs.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::picwish::{FakePicwish, Options, result_bytes, sha256_hex};
use crate::util::{Env, assert_file, wait_until};

const KEY: &str = "test-key";

/// A small, valid PNG whose pixels depend on `seed`.
fn png(seed: u8, w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().expect("png header");
        let data: Vec<u8> = (0..w * h * 3).map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed)).collect();
        wr.write_image_data(&data).expect("png data");
    }
    out
}

/// An input root with a folder of images; returns (root, folder).
fn photos(env: &Env, files: &[(&str, &[u8])]) -> (PathBuf, PathBuf) {
    let root = env.dir.path().join("inputs");
    let dir = root.join("photos");
    for (name, bytes) in files {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, bytes).expect("write input");
    }
    (root, dir)
}

/// The configuration a user writes: input roots and the PicWish section,
/// nothing tuned.
fn configure(env: &Env, fake: &FakePicwish, root: &Path) {
    env.config_defaults(json!({
        "input_roots": [root.display().to_string()],
        "picwish": {"api_url": fake.api_url(), "web_url": fake.web_url(), "oss_url": fake.oss_url(), "api_key": KEY},
    }));
}

fn job(dir: &Path, op: &str, extra: Value) -> Value {
    let mut j = json!({"type": "picwish.process", "op": op, "input_dir": dir.display().to_string()});
    if let (Some(m), Some(e)) = (j.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    j
}

fn status_json(env: &Env, tid: u64) -> Value {
    let out = env.cli(&["status", &tid.to_string(), "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if v.is_array() { v[0].clone() } else { v }
}

#[test]
fn a_folder_is_processed_once_mirrored_and_a_non_image_fails_alone() {
    let fake = FakePicwish::start(&[KEY]);
    let env = Env::new();
    let (a, b) = (png(3, 40, 30), png(5, 20, 20));
    let (root, dir) =
        photos(&env, &[("a.png", &a), ("sub/b.png", &b), ("copy of a.png", &a), ("notes.txt", b"hello")]);
    configure(&env, &fake, &root);
    env.drop_job("p", &job(&dir, "remove_background", json!({})));
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert_eq!(status.code(), Some(1), "the text file fails the job\n{log}");
    let s = env.status(1).expect("status");
    assert_eq!((s.state.as_str(), s.failed), ("failed", 1), "{log}");
    let err = s.error.clone().unwrap_or_default();
    assert!(err.contains("1 of") && err.contains("notes.txt") && err.contains("not an image"), "{err}");
    let out = env.job_dir("p");
    assert_file(&out.join("a.png"), &result_bytes("image", "segmentation", &a));
    assert_file(&out.join("copy of a.png"), &result_bytes("image", "segmentation", &a));
    assert_file(&out.join("sub/b.png"), &result_bytes("image", "segmentation", &b));
    assert_eq!(fake.creates_for(&sha256_hex(&a)), 1, "the same bytes twice make one task\n{log}");
    assert_eq!(fake.creates(), 2, "{log}");
    assert!(!log.contains(KEY), "the key never reaches the log");
    let v = status_json(&env, 1);
    assert_eq!(v["cost"]["estimate"], 2, "{v}");
    assert_eq!(v["cost"]["committed"], 2, "{v}");

    // The same folder again, as the same job and as another: no task.
    env.drop_job(
        "p2",
        &json!({"type": "picwish.process", "op": "remove_background",
        "input_dir": dir.display().to_string(), "name": "p"}),
    );
    let (_, log) = env.run_once(Duration::from_secs(60));
    env.drop_job("q", &job(&dir, "remove_background", json!({"name": "q"})));
    let (_, log2) = env.run_once(Duration::from_secs(60));
    assert_eq!(fake.creates(), 2, "nothing sent again\n{log}\n{log2}");
    assert_file(&env.job_dir("q").join("sub/b.png"), &result_bytes("image", "segmentation", &b));
    assert_file(&env.job_dir("q").join("a.png"), &result_bytes("image", "segmentation", &a));
    // Another op, or other options, is other work.
    env.drop_job("r", &job(&dir, "remove_background", json!({"name": "r", "op_type": "person"})));
    let (_, log3) = env.run_once(Duration::from_secs(120));
    assert_eq!(fake.creates(), 4, "{log3}");
}

#[test]
fn the_web_flow_uploads_to_storage_and_saves_the_watermark_free_result() {
    let fake = FakePicwish::start(&[KEY]);
    let env = Env::new();
    let (a, b) = (png(7, 30, 30), png(9, 16, 24));
    let (root, dir) = photos(&env, &[("a.png", &a), ("b.png", &b)]);
    configure(&env, &fake, &root);
    env.drop_job("w", &job(&dir, "enhance", json!({"interface": "web"})));
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    assert_file(&env.job_dir("w").join("a.png"), &result_bytes("image", "scale", &a));
    assert_file(&env.job_dir("w").join("b.png"), &result_bytes("image", "scale", &b));
    assert_eq!((fake.uploads(), fake.creates()), (2, 2), "{log}");
    let token = env.dir.path().join("state/picwish-anonymous.json");
    let mode =
        fs::metadata(&token).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "the anonymous token is private");
}

#[test]
fn expired_upload_grants_and_a_failed_callback_are_recovered() {
    let fake = FakePicwish::start(&[KEY]);
    fake.expire_next_grants(1);
    fake.fail_callbacks(1);
    let env = Env::new();
    let a = png(11, 10, 10);
    let (root, dir) = photos(&env, &[("a.png", &a)]);
    configure(&env, &fake, &root);
    env.drop_job("w", &job(&dir, "remove_background", json!({"interface": "web", "keep_mask": true})));
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    assert_file(&env.job_dir("w").join("a.png"), &result_bytes("image", "segmentation", &a));
    assert_file(&env.job_dir("w").join("a.mask.png"), &result_bytes("mask", "segmentation", &a));
    assert_eq!(fake.creates(), 1, "{log}");
}

#[test]
fn kill_9_with_tasks_in_flight_charges_no_image_twice() {
    // Tasks take 4 s: the kill comes while every one is processing.
    let fake =
        FakePicwish::start_with(Options { keys: vec![KEY.into()], process_ms: 4000, ..Options::default() });
    let env = Env::new();
    let imgs: Vec<Vec<u8>> = (0..4).map(|i| png(20 + i, 12, 12)).collect();
    let files: Vec<(String, &[u8])> =
        imgs.iter().enumerate().map(|(i, b)| (format!("{i}.png"), b.as_slice())).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let (root, dir) = photos(&env, &refs);
    configure(&env, &fake, &root);
    env.drop_job("k", &job(&dir, "remove_background", json!({})));
    let mut d = env.daemon(&[]);
    // Every task created and its id journaled (status shows it).
    let journaled = wait_until(Duration::from_secs(60), || {
        env.status(1).is_some_and(|s| s.phases.get("processing").copied() == Some(4))
    });
    assert!(journaled, "{:?}\n{}", env.status(1), d.log());
    d.kill9();
    let mut again = env.daemon(&["--once"]);
    let status = again.wait(Duration::from_secs(120)).expect("run --once ends");
    let log = again.log();
    assert!(status.success(), "{log}");
    for (i, b) in imgs.iter().enumerate() {
        assert_eq!(fake.charged_for(&sha256_hex(b)), 1, "{i} charged once\n{log}");
        assert_file(&env.job_dir("k").join(format!("{i}.png")), &result_bytes("image", "segmentation", b));
    }
    assert_eq!(fake.creates(), 4, "{log}");
}

#[test]
fn a_lost_create_answer_is_sent_again_once_and_counted() {
    let fake = FakePicwish::start(&[KEY]);
    fake.drop_create_answer(1);
    let env = Env::new();
    let a = png(31, 10, 10);
    let (root, dir) = photos(&env, &[("a.png", &a)]);
    configure(&env, &fake, &root);
    env.drop_job("l", &job(&dir, "colorize", json!({})));
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    assert_file(&env.job_dir("l").join("a.jpg"), &result_bytes("image", "colorization", &a));
    assert_eq!(fake.creates(), 2, "{log}");
    let v = status_json(&env, 1);
    assert_eq!(v["possible_extra_charges"], 1, "{v}");
}

#[test]
fn an_expired_result_url_is_refreshed_by_asking_for_the_task_again() {
    let fake = FakePicwish::start(&[KEY]);
    fake.expire_next_fetches(1);
    let env = Env::new();
    let a = png(41, 10, 10);
    let (root, dir) = photos(&env, &[("a.png", &a)]);
    configure(&env, &fake, &root);
    env.drop_job("e", &job(&dir, "remove_background", json!({})));
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    assert_file(&env.job_dir("e").join("a.png"), &result_bytes("image", "segmentation", &a));
    assert_eq!(fake.creates(), 1, "refreshed, not processed again\n{log}");
}

#[test]
fn state_minus_7_fails_its_input_without_a_retry_and_the_rest_complete() {
    let fake = FakePicwish::start(&[KEY]);
    let (good, bad) = (png(51, 10, 10), png(53, 10, 10));
    fake.fail_state(&sha256_hex(&bad), -7);
    let env = Env::new();
    let (root, dir) = photos(&env, &[("good.png", &good), ("bad.png", &bad)]);
    configure(&env, &fake, &root);
    env.drop_job("s", &job(&dir, "remove_background", json!({})));
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert_eq!(status.code(), Some(1), "{log}");
    let err = env.status(1).and_then(|s| s.error).unwrap_or_default();
    assert!(err.contains("state -7"), "{err}");
    assert_eq!(fake.creates_for(&sha256_hex(&bad)), 1, "no retry\n{log}");
    assert_file(&env.job_dir("s").join("good.png"), &result_bytes("image", "segmentation", &good));
}

#[test]
fn a_429_storm_slows_the_job_down_and_loses_nothing() {
    let fake = FakePicwish::start(&[KEY]);
    fake.storm(8);
    let env = Env::new();
    let imgs: Vec<Vec<u8>> = (0..3).map(|i| png(60 + i, 8, 8)).collect();
    let (root, dir) = photos(&env, &[("0.png", &imgs[0]), ("1.png", &imgs[1]), ("2.png", &imgs[2])]);
    configure(&env, &fake, &root);
    env.drop_job("r", &job(&dir, "face_cutout", json!({})));
    let (status, log) = env.run_once(Duration::from_secs(180));
    assert!(status.success(), "{log}");
    assert!(fake.rate_limited() >= 8, "{}", fake.rate_limited());
    assert_eq!(fake.creates(), 3, "a 429 is not a create\n{log}");
    for (i, b) in imgs.iter().enumerate() {
        assert_file(
            &env.job_dir("r").join(format!("{i}.png")),
            &result_bytes("image", "self-face-cutout", b),
        );
    }
}

#[test]
fn max_credits_stops_creating_at_the_cap_and_keeps_what_was_done() {
    let fake = FakePicwish::start(&[KEY]);
    let env = Env::new();
    let imgs: Vec<Vec<u8>> = (0..3).map(|i| png(70 + i, 8, 8)).collect();
    let (root, dir) = photos(&env, &[("0.png", &imgs[0]), ("1.png", &imgs[1]), ("2.png", &imgs[2])]);
    configure(&env, &fake, &root);
    env.drop_job("c", &job(&dir, "remove_background", json!({"max_credits": 2})));
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert_eq!(status.code(), Some(1), "{log}");
    assert_eq!(fake.creates(), 2, "{log}");
    let v = status_json(&env, 1);
    assert_eq!(
        (v["cost"]["estimate"].as_u64(), v["cost"]["committed"].as_u64(), v["cost"]["cap"].as_u64()),
        (Some(3), Some(2), Some(2)),
        "{v}"
    );
    assert!(v["error"].as_str().is_some_and(|e| e.contains("budget of 2")), "{v}");
    let saved = (0..3).filter(|i| env.job_dir("c").join(format!("{i}.png")).exists()).count();
    assert_eq!(saved, 2);
    let table = String::from_utf8_lossy(&env.cli(&["status"]).stdout).into_owned();
    assert!(table.contains("credits: 2 of 3 estimated, cap 2"), "{table}");
}

#[test]
fn used_up_credits_park_the_job_instead_of_failing_every_input() {
    // Quick tasks: the first is charged before the second create arrives.
    let fake =
        FakePicwish::start_with(Options { keys: vec![KEY.into()], process_ms: 100, ..Options::default() });
    fake.balance(KEY, 1);
    let env = Env::new();
    let imgs: Vec<Vec<u8>> = (0..3).map(|i| png(80 + i, 8, 8)).collect();
    let (root, dir) = photos(&env, &[("0.png", &imgs[0]), ("1.png", &imgs[1]), ("2.png", &imgs[2])]);
    configure(&env, &fake, &root);
    env.drop_job("b", &job(&dir, "remove_background", json!({})));
    let (_, log) = env.run_once(Duration::from_secs(120));
    let s = env.status(1).expect("status");
    assert_ne!(s.state.as_str(), "failed", "{s:?}\n{log}");
    assert!(s.error.as_deref().is_some_and(|e| e.contains("waiting") && e.contains("credits")), "{s:?}");
    assert_eq!((s.done, s.failed), (1, 0), "{s:?}\n{log}");
}

#[test]
fn bad_inputs_fail_alone_and_nothing_outside_the_roots_is_read() {
    let fake = FakePicwish::start(&[KEY]);
    let env = Env::new();
    let good = png(90, 8, 8);
    let mut cut = png(91, 8, 8);
    cut.truncate(cut.len() - 6);
    let (root, _) = photos(&env, &[("good.png", &good), ("cut.png", &cut)]);
    let outside = env.dir.path().join("secret.png");
    fs::write(&outside, png(92, 8, 8)).expect("write");
    std::os::unix::fs::symlink(&outside, root.join("photos/link.png")).expect("symlink");
    configure(&env, &fake, &root);
    let missing = fake.cdn_url("missing.png");
    let inputs = [
        root.join("photos/good.png"),
        root.join("photos/cut.png"),
        root.join("photos/link.png"),
        outside.clone(),
    ];
    let mut list: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    list.push(missing);
    env.drop_job("bad", &json!({"type": "picwish.process", "op": "remove_background", "inputs": list}));
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert_eq!(status.code(), Some(1), "{log}");
    let s = env.status(1).expect("status");
    assert_eq!(s.failed, 4, "{s:?}\n{log}");
    assert!(s.error.as_deref().is_some_and(|e| e.starts_with("4 of 5 files failed")), "{s:?}");
    assert_file(&env.job_dir("bad").join("good.png"), &result_bytes("image", "segmentation", &good));
    // One create for the good image and one for the URL (which fails
    // on PicWish's side with -3); nothing from outside the roots.
    assert_eq!(fake.creates(), 2, "{log}");
    assert!(log.contains("truncated"), "{log}");
    assert!(log.contains("outside the configured input_roots"), "{log}");
}

#[test]
fn a_refused_key_fails_the_inputs_with_the_reason() {
    let fake = FakePicwish::start(&["another-key"]);
    let env = Env::new();
    let (root, dir) = photos(&env, &[("a.png", &png(99, 8, 8))]);
    configure(&env, &fake, &root);
    env.drop_job("k", &job(&dir, "remove_background", json!({})));
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert_eq!(status.code(), Some(1), "{log}");
    let err = env.status(1).and_then(|s| s.error).unwrap_or_default();
    assert!(err.contains("refused the API key (HTTP 401"), "{err}");
    assert!(!err.contains(KEY) && !log.contains(KEY), "{err}");
}

#[test]
fn picwish_login_stores_a_private_token_that_web_jobs_use_and_wait_for_when_refused() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let fake = FakePicwish::start(&[KEY]);
    let env = Env::new();
    let a = png(101, 8, 8);
    let (root, dir) = photos(&env, &[("a.png", &a)]);
    configure(&env, &fake, &root);
    let login = |password: &str| {
        let mut cmd = crate::util::hermetic(Command::new(crate::util::bin()));
        cmd.args(["picwish", "login", "--phone", crate::support::picwish::PHONE, "--spool"])
            .arg(&env.spool)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write");
        child.wait_with_output().expect("wait")
    };
    let bad = login("wrong");
    assert_eq!(bad.status.code(), Some(1), "{}", String::from_utf8_lossy(&bad.stderr));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("refused the login"));
    let ok = login(crate::support::picwish::PASSWORD);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let file = env.dir.path().join("state/picwish-token.json");
    let mode = fs::metadata(&file).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    env.drop_job("w", &job(&dir, "colorize", json!({"interface": "web"})));
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    assert!(!env.dir.path().join("state/picwish-anonymous.json").exists(), "the login was used");
    // A refused login parks the job until a new one.
    fake.revoke_logins();
    let b = png(102, 8, 8);
    fs::write(dir.join("b.png"), &b).expect("write");
    env.drop_job("w2", &job(&dir, "colorize", json!({"interface": "web", "name": "w2"})));
    let (_, log) = env.run_once(Duration::from_secs(120));
    let s = env.status(2).expect("status");
    assert!(s.error.as_deref().is_some_and(|e| e.contains("spoolfetch picwish login")), "{s:?}\n{log}");
    assert_ne!(s.state.as_str(), "failed", "{s:?}");
}
