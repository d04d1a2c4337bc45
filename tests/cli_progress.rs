//! Live progress and the per-file report through the real binary: bytes,
//! total, rate and ETA while a throttled server sends a large file;
//! `status --watch` on a terminal and through a pipe, ending with the job;
//! `status TID --files` after a job with saved, skipped and failed items.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli_ops::in_pty;
use crate::support::fileserver::{Fault, FileServer};
use crate::support::pixiv::{FakePixiv, ImageFault, Work, default_refresh_token};
use crate::util::{Env, bin, bytes, hermetic, wait_until};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The `status --json` object of job 1 (null until it is claimed).
fn job1(env: &Env) -> Value {
    let out = env.cli(&["status", "1", "--json"]);
    if !out.status.success() {
        return Value::Null;
    }
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    rows.into_iter().next().expect("one row")
}

#[test]
fn a_large_file_counts_in_bytes_while_it_downloads_and_watch_ends_with_the_job() {
    const LEN: usize = 3_000_000;
    let server = FileServer::start();
    server.add("/big.bin", bytes(7, LEN));
    server.add_fault("/big.bin", Fault::Drip(500_000), 1);
    let env = Env::new();
    env.config_defaults(json!({}));
    let mut d = env.daemon(&[]);
    env.drop_job("big", &json!({"type": "http.files", "urls": [server.url("/big.bin")]}));
    // Bytes show before the file is complete, with the server's total.
    let mut first = 0;
    assert!(
        wait_until(Duration::from_secs(15), || {
            let s = job1(&env);
            first = s["bytes"].as_u64().unwrap_or(0);
            first > 0 && s["state"] == "running"
        }),
        "{}",
        d.log()
    );
    assert!(first < LEN as u64, "{first}");
    // Meanwhile the file is pending, with the path it will have.
    let out = env.cli(&["status", "1", "--files", "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("files json");
    let want = env.job_dir("big").join("big.bin").display().to_string();
    assert_eq!(
        (rows.len(), rows[0]["state"].clone(), rows[0]["path"].clone()),
        (1, json!("pending"), json!(want))
    );
    // Watchers started now end when the job ends.
    let spool = env.spool.display().to_string();
    let piped = hermetic(Command::new(bin()))
        .args(["status", "--watch", "--spool", &spool])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch");
    let cwd = env.dir.path().to_path_buf();
    let tty = std::thread::spawn(move || in_pty(&cwd, &["status", "1", "--watch", "--spool", &spool]));
    let mut seen = Value::Null;
    assert!(
        wait_until(Duration::from_secs(10), || {
            seen = job1(&env);
            seen["bytes"].as_u64().unwrap_or(0) > first && seen["rate"].as_u64().unwrap_or(0) > 0
        }),
        "bytes grow and a rate shows: {seen}"
    );
    assert_eq!(seen["bytes_total"], LEN as u64, "{seen}");
    let eta = seen["eta_secs"].as_u64().expect("an ETA");
    assert!((1..60).contains(&eta), "{seen}");
    let rate = seen["rate"].as_u64().unwrap_or(0);
    assert!((100_000..2_000_000).contains(&rate), "about 500 kB/s: {seen}");
    let table = text(&env.cli(&["status"]).stdout);
    assert!(table.contains(" of 2.9 MiB, ") && table.contains("/s, ") && table.contains(" left"), "{table}");
    assert!(table.contains("0/1 file "), "{table}");

    let out = piped.wait_with_output().expect("watch ends");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = text(&out.stdout);
    assert!(!lines.contains('\x1b'), "no control sequences in a pipe: {lines:?}");
    assert!(lines.lines().count() >= 2, "a line per change: {lines}");
    assert!(lines.lines().all(|l| l.starts_with("job 1 big: ")), "{lines}");
    let last = lines.lines().last().unwrap_or_default();
    assert!(last.contains("done, finished 1/1 file, 2.9 MiB"), "{last}");
    let (code, shown) = tty.join().expect("pty");
    assert_eq!(code, Some(0));
    assert!(shown.contains("\x1b[3A") && shown.contains("NOW/TOTAL"), "redrawn in place: {shown:?}");
    assert!(shown.contains("] 100%") && shown.contains(" done "), "{shown}");
    assert!(shown.contains("% ") && shown.contains("/s, "), "a bar and a rate on the way: {shown}");
    let s = job1(&env);
    assert_eq!(
        (s["bytes"].clone(), s["bytes_total"].clone(), s["rate"].clone()),
        (json!(LEN), json!(LEN), json!(0))
    );
    assert!(s["eta_secs"].is_null());
    // A watch of ended jobs prints them once and returns.
    let out = env.cli(&["status", "1", "--watch"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).lines().count(), 1, "{}", text(&out.stdout));
    d.term();
    let _ = d.wait(Duration::from_secs(20));
}

#[test]
fn files_lists_saved_skipped_and_failed_items_and_the_log_says_what_was_saved() {
    let fake = FakePixiv::start();
    fake.add_user(20, "other", "other20");
    fake.add_work(Work::new(5001, 20).pages(2));
    let mut gone = Work::new(5002, 20);
    gone.deleted = true;
    fake.add_work(gone);
    fake.add_work(Work::new(5003, 20));
    for _ in 0..40 {
        fake.image_fault_for("5003_p0", ImageFault::Status(404));
    }
    let env = Env::new();
    env.config_defaults(json!({
        "pixiv": {
            "api_url": fake.base_url(),
            "oauth_url": fake.base_url(),
            "refresh_token": default_refresh_token(),
        },
    }));
    env.drop_job("mix", &json!({"type": "pixiv.illust", "illust_ids": [5001, 5002, 5003]}));
    let (_, log) = env.run_once(Duration::from_secs(90));
    let st = env.status(1).expect("status");
    assert_eq!((st.done, st.skipped, st.failed), (2, 1, 1), "{log}");
    // The log: every saved file, and every API request with its answer.
    let dir = env.job_dir("mix");
    let saved = dir.join("5001_p0.jpg");
    assert!(log.contains(&format!("saved {}, ", saved.display())), "{log}");
    assert!(
        log.lines().any(|l| l.contains("DEBUG") && l.contains(" GET ") && l.contains(": HTTP 200, ")),
        "{log}"
    );
    // The downloads too, with their answers (the 404s as well).
    let download = |file: &str, answer: &str| {
        log.lines()
            .any(|l| l.contains("DEBUG") && l.contains("GET ") && l.contains(file) && l.contains(answer))
    };
    assert!(download("5001_p0", ": HTTP 200 in "), "{log}");
    assert!(download("5003_p0", ": HTTP 404 in "), "{log}");

    let out = env.cli(&["status", "1", "--files"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "a header and one line per item: {table}");
    let row = |needle: &str| {
        lines.iter().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}: {table}"))
    };
    let size = std::fs::metadata(&saved).expect("saved").len();
    assert!(
        row("5001_p0.jpg").contains(" saved ") && row("5001_p0.jpg").contains(&saved.display().to_string())
    );
    assert!(row("5001_p1.jpg").contains(" saved "), "{table}");
    assert!(row(" skipped ").contains("gone: "), "{table}");
    assert!(row(" failed ").contains("5003_p0") && row(" failed ").contains("404"), "{table}");
    assert!(
        text(&out.stderr).contains("job 1: 2 saved, 1 skipped, 1 failed, 0 pending"),
        "{}",
        text(&out.stderr)
    );

    let out = env.cli(&["status", "1", "--files", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    let by = |state: &str| rows.iter().filter(|r| r["state"] == state).cloned().collect::<Vec<_>>();
    assert_eq!((by("saved").len(), by("skipped").len(), by("failed").len()), (2, 1, 1), "{rows:?}");
    let first =
        by("saved").into_iter().find(|r| r["path"] == saved.display().to_string()).expect("saved row");
    assert_eq!(first["size"], size);
    assert!(first["reason"].is_null());
    let failed = &by("failed")[0];
    assert!(
        failed["reason"].as_str().is_some_and(|r| r.contains("404")) && failed["size"].is_null(),
        "{failed}"
    );
    assert_eq!(failed["permanent"], true);
    assert!(by("skipped")[0]["reason"].as_str().is_some_and(|r| r.starts_with("gone: ")));
    // The report is a documented file in the state folder.
    let report =
        std::fs::read_to_string(env.dir.path().join("jobs/state/1/files.jsonl")).expect("files.jsonl");
    assert_eq!(report.lines().count(), 4, "{report}");
    // --files needs a TID.
    let out = env.cli(&["status", "--files"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_server_without_range_support_forcing_a_restart_is_said_at_info() {
    const LEN: usize = 3_000_000;
    let server = FileServer::start();
    server.add("/big.bin", bytes(9, LEN));
    server.add_fault("/big.bin", Fault::Truncate(1_500_000), 1);
    server.add_fault("/big.bin", Fault::IgnoreRange, 1);
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("big", &json!({"type": "http.files", "urls": [server.url("/big.bin")]}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert_eq!(server.range_requests("/big.bin").len(), 1, "a resume was asked: {log}");
    let line =
        log.lines().find(|l| l.contains("does not resume downloads")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(" INFO ") && line.contains("starting over, 1.4 MiB on disk discarded"), "{line}");
    assert_eq!(std::fs::read(env.job_dir("big").join("big.bin")).expect("file"), bytes(9, LEN));
}

#[test]
fn the_demo_draws_its_table_in_place_on_a_terminal_and_lines_when_piped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tty_dir = dir.path().join("tty").display().to_string();
    let (code, shown) = in_pty(dir.path(), &["demo", "--files", "8", "--dir", &tty_dir]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("\x1b[3A") && shown.contains("] 100%"), "{shown:?}");
    assert!(!shown.contains(" INFO "), "no log line tears the table: {shown}");
    assert!(shown.contains("8/8 files verified"), "{shown}");
    let pipe_dir = dir.path().join("pipe");
    let out = hermetic(Command::new(bin()))
        .args(["demo", "--files", "8", "--dir"])
        .arg(&pipe_dir)
        .output()
        .expect("demo");
    assert!(out.status.success());
    let shown = text(&out.stdout);
    assert!(!shown.contains('\x1b'), "{shown:?}");
    let progress: Vec<&str> = shown.lines().filter(|l| l.starts_with("job 1 demo: ")).collect();
    assert!(progress.last().is_some_and(|l| l.contains("done, finished 8/8 files")), "{shown}");
    let distinct: std::collections::BTreeSet<&&str> = progress.iter().collect();
    assert_eq!(distinct.len(), progress.len(), "a line per change only: {shown}");
}

#[test]
fn files_of_a_remote_task_job_list_the_outputs_saved_and_no_task_pending() {
    use crate::support::picwish::FakePicwish;
    let fake = FakePicwish::start(&["k"]);
    let env = Env::new();
    let root = env.dir.path().join("inputs");
    let dir = root.join("photos");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (name, seed) in [("a.png", 3u8), ("b.png", 5)] {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, 8, 8);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut wr = enc.write_header().expect("png header");
            wr.write_image_data(&[seed; 8 * 8 * 3]).expect("png data");
        }
        std::fs::write(dir.join(name), out).expect("input");
    }
    env.config_defaults(json!({
        "input_roots": [root.display().to_string()],
        "picwish": {"api_url": fake.api_url(), "web_url": fake.web_url(), "oss_url": fake.oss_url(), "api_key": "k"},
    }));
    env.drop_job(
        "p",
        &json!({"type": "picwish.process", "op": "remove_background", "input_dir": dir.display().to_string()}),
    );
    let (status, log) = env.run_once(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    let out = env.cli(&["status", "1", "--files", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    let states: Vec<&str> = rows.iter().filter_map(|r| r["state"].as_str()).collect();
    assert!(!states.contains(&"pending") && !states.contains(&"failed"), "{rows:?}");
    let saved: Vec<&Value> = rows.iter().filter(|r| r["state"] == "saved").collect();
    assert_eq!(saved.len(), 2, "{rows:?}");
    assert!(saved.iter().all(|r| r["size"].as_u64().is_some_and(|n| n > 0)), "{rows:?}");
    let tasks = rows
        .iter()
        .filter(|r| r["reason"].as_str().is_some_and(|x| x.starts_with("remote task done")))
        .count();
    assert_eq!(tasks, 2, "{rows:?}");
}

#[test]
fn watch_says_when_the_daemon_of_a_watched_job_is_gone() {
    use std::io::BufRead;
    let server = FileServer::start();
    server.add("/slow.bin", bytes(3, 200_000));
    server.add_fault("/slow.bin", Fault::Stall { after: 1000, dur: Duration::from_secs(30) }, 5);
    let env = Env::new();
    env.config_defaults(json!({}));
    let mut d = env.daemon(&[]);
    env.drop_job("slow", &json!({"type": "http.files", "urls": [server.url("/slow.bin")]}));
    assert!(wait_until(Duration::from_secs(15), || job1(&env)["state"] == "running"), "{}", d.log());
    d.kill9();
    let s = job1(&env);
    assert_eq!(
        (s["stale"].clone(), s["rate"].clone(), s["eta_secs"].clone()),
        (json!(true), json!(0), Value::Null)
    );
    let spool = env.spool.display().to_string();
    let mut watch = hermetic(Command::new(bin()))
        .args(["status", "1", "--watch", "--spool", &spool])
        .stdout(Stdio::piped())
        .spawn()
        .expect("watch");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).expect("a line");
    assert!(
        first.starts_with("job 1 slow: running, ")
            && first.contains("error: stale: daemon \"a\" not running"),
        "{first}"
    );
    assert!(watch.try_wait().expect("try_wait").is_none(), "the watch goes on: the job may resume");
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn the_file_report_survives_kill_9_and_is_never_behind_the_checkpoint() {
    let server = FileServer::start();
    let urls: Vec<String> = (0..24)
        .map(|i| {
            let path = format!("/k/{i:02}.bin");
            server.add(&path, bytes(i, 40_000));
            server.add_fault(&path, Fault::Drip(100_000), 1);
            server.url(&path)
        })
        .collect();
    let env = Env::new();
    env.config_defaults(json!({}));
    let mut d = env.daemon(&[]);
    env.drop_job("k", &json!({"type": "http.files", "urls": urls}));
    assert!(
        wait_until(Duration::from_secs(30), || env.status(1).is_some_and(|s| s.done >= 4)),
        "{}",
        d.log()
    );
    d.kill9();
    let saved = |env: &Env| -> Vec<Value> {
        let out = env.cli(&["status", "1", "--files", "--json"]);
        let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("files json");
        rows.into_iter().filter(|r| r["state"] == "saved").collect()
    };
    // The status file may be ahead of both (it is written from memory);
    // the checkpoint is what a restart believes.
    let done =
        spoolfetch::checkpoint::peek_progress(&env.spool.join("state/1")).expect("checkpoint").done.len();
    let before = saved(&env);
    assert!(
        before.len() as u64 >= done,
        "the report ({}) is not behind the checkpoint ({done})",
        before.len()
    );
    for r in &before {
        let path = r["path"].as_str().expect("path");
        assert_eq!(std::fs::metadata(path).map(|m| m.len()).ok(), r["size"].as_u64(), "{r}");
    }
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(60), || env.status(1).is_some_and(|s| s.state.as_str() == "done")),
        "{}",
        d.log()
    );
    let after = saved(&env);
    assert_eq!(after.len(), 24, "{after:?}");
    assert!(after.iter().all(|r| r["size"] == 40_000), "{after:?}");
    d.term();
    let _ = d.wait(Duration::from_secs(20));
}
