//! The spool under abuse: a corpus of bad job files, half-written files,
//! two daemons on one spool, and task control from another process.

use std::fs;
use std::time::Duration;

use serde_json::json;

use crate::support::fileserver::{Fault, FileServer};
use crate::util::{Env, assert_file, bytes, wait_until};

#[test]
fn bad_job_files_go_to_failed_with_reasons_and_good_ones_complete() {
    let server = FileServer::start();
    server.add("/good.bin", bytes(1, 5000));
    let env = Env::new();
    let good = json!({"type": "http.files", "urls": [server.url("/good.bin")]});
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let huge = format!("{{\"type\": \"http.files\", \"urls\": [\"{}\"]}}", "x".repeat(300_000));
    let mut utf16 = vec![0xFF, 0xFE];
    for c in "{\"type\": \"http.files\"}".encode_utf16() {
        utf16.extend_from_slice(&c.to_le_bytes());
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("invalid", b"{\"type\": http.files}".to_vec(), "not valid JSON"),
        ("empty", Vec::new(), "empty"),
        ("array", b"[1, 2, 3]".to_vec(), "must be a JSON object"),
        ("string", b"\"http.files\"".to_vec(), "must be a JSON object"),
        ("notype", b"{\"urls\": []}".to_vec(), "`type` is missing"),
        ("unknown-type", b"{\"type\": \"ftp.files\"}".to_vec(), "unknown job type"),
        ("no-urls", b"{\"type\": \"http.files\"}".to_vec(), "`urls` is missing"),
        ("wrong-type", b"{\"type\": \"http.files\", \"urls\": \"https://x/y\"}".to_vec(), "must be an array"),
        (
            "unknown-key",
            b"{\"type\": \"http.files\", \"urls\": [\"https://x/y\"], \"colour\": 1}".to_vec(),
            "unknown key `colour`",
        ),
        (
            "file-scheme",
            b"{\"type\": \"http.files\", \"urls\": [\"file:///etc/passwd\"]}".to_vec(),
            "only http and https",
        ),
        ("binary", vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0xff, 0x00, 0x12], "NUL"),
        ("nul", b"{\"type\": \"http.files\x00\"}".to_vec(), "NUL"),
        ("deep", deep.into_bytes(), "nested too deeply"),
        ("huge", huge.into_bytes(), "limit is"),
        ("utf16", utf16, "UTF-16"),
        ("truncated", b"{\"type\": \"http.files\", \"urls\": [".to_vec(), "incomplete JSON"),
        (
            "content-length",
            b"{\"type\": \"http.files\", \"urls\": [\"https://x/y\"], \"headers\": {\"Content-Length\": \"5\"}}".to_vec(),
            "Content-Length is set by the HTTP client",
        ),
        (
            "transfer-encoding",
            b"{\"type\": \"http.files\", \"urls\": [\"https://x/y\"], \"headers\": {\"transfer-ENCODING\": \"chunked\"}}".to_vec(),
            "transfer-ENCODING is set by the HTTP client",
        ),
        (
            "host-header",
            b"{\"type\": \"http.files\", \"urls\": [\"https://x/y\"], \"headers\": {\"HOST\": \"evil\"}}".to_vec(),
            "HOST is set by the HTTP client",
        ),
    ];
    env.config(json!({"max_job_bytes": 100_000, "settle_ms": 50}));
    for (name, body, _) in &cases {
        env.drop_raw(name, body);
    }
    // A symlink to a valid job is refused too (links are not followed).
    let target = env.dir.path().join("elsewhere.json");
    fs::write(&target, serde_json::to_vec(&good).expect("json")).expect("write");
    std::os::unix::fs::symlink(&target, env.spool.join("link.json")).expect("symlink");
    // A FIFO would block whoever reads it; it is refused unread.
    let fifo =
        std::process::Command::new("mkfifo").arg(env.spool.join("fifo.json")).status().expect("mkfifo");
    assert!(fifo.success());
    // A name of 255 bytes still fits in work/, failed/ and the reason file.
    let long = format!("{}.json", "n".repeat(250));
    env.drop_raw(&long[..250], b"{\"type\": \"http.files\", \"urls\": 3}");
    env.drop_job("good", &good);

    let (status, log) = env.run_once(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "some jobs failed, so --once exits 1\n{log}");
    assert_file(&env.job_dir("good").join("good.bin"), &bytes(1, 5000));
    let done = env.files_in("done");
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(done[0].ends_with(".good.json"));
    let failed = env.files_in("failed");
    let mut all = cases.iter().map(|(n, _, w)| (*n, *w)).collect::<Vec<_>>();
    all.push(("link", "symbolic link"));
    all.push(("fifo", "not a regular file"));
    let long_stem = "n".repeat(200);
    all.push((long_stem.as_str(), "must be an array"));
    for (name, want) in all {
        let job = failed
            .iter()
            .find(|f| f.ends_with(&format!("{name}.json")))
            .unwrap_or_else(|| panic!("{name}.json is not in failed/: {failed:?}\n{log}"));
        let reason =
            fs::read_to_string(env.spool.join("failed").join(format!("{job}.reason"))).expect("reason");
        assert!(reason.contains(want), "{name}: reason {reason:?} lacks {want:?}");
        assert_eq!(reason.lines().count(), 1, "{name}: reason must be one line: {reason:?}");
    }
    // Nothing was deleted: every dropped file is in done/ or failed/.
    let jobs_kept = failed.iter().filter(|f| f.ends_with(".json")).count() + done.len();
    assert_eq!(jobs_kept, cases.len() + 4);
    // The target of the symlink is untouched.
    assert!(target.exists());
    // Every rejected job shows in status with its reason.
    let statuses = env.statuses();
    assert_eq!(
        statuses.iter().filter(|s| s.state.as_str() == "failed" && s.error.is_some()).count(),
        cases.len() + 3
    );
    // A job refused by its provider still shows its type and save path;
    // one that did not parse shows its file name.
    let by_name =
        |n: &str| statuses.iter().find(|s| s.name == n).unwrap_or_else(|| panic!("{n}: {statuses:?}"));
    let scheme = by_name("file-scheme");
    assert_eq!(scheme.job_type, "http.files");
    assert_eq!(scheme.save_path, env.save.display().to_string());
    assert_eq!(by_name("invalid").job_type, "");
}

#[test]
fn a_file_being_written_is_not_taken_early() {
    let server = FileServer::start();
    server.add("/a.bin", bytes(2, 100));
    let env = Env::new();
    env.config(json!({"settle_ms": 300}));
    let mut d = env.daemon(&[]);
    // A producer writes the job in place, slowly, under its final name.
    let job =
        serde_json::to_vec(&json!({"type": "http.files", "urls": [server.url("/a.bin")]})).expect("json");
    let path = env.spool.join("slow.json");
    let (head, tail) = job.split_at(job.len() / 2);
    fs::write(&path, head).expect("write half");
    std::thread::sleep(Duration::from_millis(900));
    assert!(path.exists(), "a half-written job was claimed:\n{}", d.log());
    assert!(env.files_in("failed").is_empty(), "a half-written job was rejected:\n{}", d.log());
    let mut whole = head.to_vec();
    whole.extend_from_slice(tail);
    fs::write(&path, &whole).expect("write whole");
    assert!(wait_until(Duration::from_secs(10), || env.files_in("done").len() == 1), "{}", d.log());
    d.term();
    assert!(d.wait(Duration::from_secs(10)).is_some_and(|s| s.success()));
}

#[test]
fn run_once_takes_job_files_left_alone_long_enough_without_waiting_to_settle() {
    let server = FileServer::start();
    server.add("/a.bin", bytes(4, 100));
    let env = Env::new();
    // A long settle time makes the old two-scan wait obvious: it alone
    // would take 5 s.
    env.config(json!({"settle_ms": 5000}));
    env.drop_job("old", &json!({"type": "http.files", "urls": [server.url("/a.bin")]}));
    std::thread::sleep(Duration::from_millis(5200));
    let started = std::time::Instant::now();
    let (status, log) = env.run_once(Duration::from_secs(30));
    let took = started.elapsed();
    assert!(status.success(), "{log}");
    assert_file(&env.job_dir("old").join("a.bin"), &bytes(4, 100));
    assert!(took < Duration::from_millis(4000), "run --once waited to settle ({took:?}):\n{log}");
}

#[test]
fn run_once_at_the_defaults_sends_its_first_request_at_once() {
    // Issue 15, item 1: with the configuration a user gets, a job file
    // dropped before the start is taken at once and its first file asked
    // for within 50 ms of the process start (a release build takes
    // 20-50 ms here, BENCHMARKS.md). Timing on a shared machine is noisy,
    // so the best of three starts counts, and an unoptimized build gets
    // three times the budget.
    let mut best = Duration::MAX;
    for k in 0..3u64 {
        let server = FileServer::start();
        server.add("/a.bin", bytes(k, 100));
        let env = Env::new();
        env.config_defaults(json!({}));
        env.drop_job("early", &json!({"type": "http.files", "urls": [server.url("/a.bin")]}));
        // Older than the default settle time (500 ms), by mtime and ctime.
        std::thread::sleep(Duration::from_millis(700));
        let started = std::time::Instant::now();
        let (status, log) = env.run_once(Duration::from_secs(30));
        assert!(status.success(), "{log}");
        let first = server.log().first().map(|r| r.at).expect("a request");
        best = best.min(first.saturating_duration_since(started));
    }
    let budget = Duration::from_millis(if cfg!(debug_assertions) { 150 } else { 50 });
    assert!(best < budget, "first request {best:?} after the start (budget {budget:?})");
}

#[test]
fn two_daemons_share_a_spool_and_run_each_job_exactly_once() {
    let server = FileServer::start();
    let env = Env::new();
    env.config(json!({"jobs": 3, "settle_ms": 50}));
    let mut d1 = env.daemon(&["--instance", "alpha"]);
    let mut d2 = env.daemon(&["--instance", "beta"]);
    for j in 0..20u64 {
        let mut urls = Vec::new();
        for f in 0..5u64 {
            let p = format!("/j{j}/f{f}.bin");
            server.add(&p, bytes(j * 100 + f, 4000));
            server.add_fault(&p, Fault::Drip(200_000), 1);
            urls.push(server.url(&p));
        }
        env.drop_job(&format!("job{j:02}"), &json!({"type": "http.files", "urls": urls}));
    }
    assert!(
        wait_until(Duration::from_secs(60), || env.files_in("done").len() == 20),
        "done: {:?}\nalpha:\n{}\nbeta:\n{}",
        env.files_in("done"),
        d1.log(),
        d2.log()
    );
    d1.term();
    d2.term();
    assert!(d1.wait(Duration::from_secs(10)).is_some_and(|s| s.success()));
    assert!(d2.wait(Duration::from_secs(10)).is_some_and(|s| s.success()));
    // Every file was fetched once: no job ran twice.
    for j in 0..20u64 {
        for f in 0..5u64 {
            assert_eq!(server.hits(&format!("/j{j}/f{f}.bin")), 1, "job {j} file {f}");
        }
    }
    let statuses = env.statuses();
    assert_eq!(statuses.len(), 20);
    let mut tids: Vec<u64> = statuses.iter().map(|s| s.tid).collect();
    tids.dedup();
    assert_eq!(tids.len(), 20, "TIDs are unique");
    let by_alpha = statuses.iter().filter(|s| s.instance == "alpha").count();
    let by_beta = statuses.iter().filter(|s| s.instance == "beta").count();
    assert_eq!(by_alpha + by_beta, 20);
    assert!(by_alpha > 0 && by_beta > 0, "both daemons should have worked: {by_alpha}/{by_beta}");
}

#[test]
fn the_same_instance_name_cannot_run_twice() {
    let env = Env::new();
    let mut d1 = env.daemon(&[]);
    assert!(wait_until(Duration::from_secs(5), || d1.log().contains("watching")));
    let out = env.cli(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    d1.term();
    assert!(d1.wait(Duration::from_secs(10)).is_some());
}

#[test]
fn pause_resume_cancel_and_retry_from_another_process() {
    let server = FileServer::start();
    let mut urls = Vec::new();
    for i in 0..40u64 {
        let p = format!("/p{i:02}.bin");
        server.add(&p, bytes(i, 50_000));
        server.add_fault(&p, Fault::Drip(250_000), 1);
        urls.push(server.url(&p));
    }
    let env = Env::new();
    env.config(json!({"concurrency": 2}));
    env.drop_job("ctl", &json!({"type": "http.files", "urls": urls.clone()}));
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(10), || env.status(1).is_some_and(|s| s.done >= 2)),
        "{}",
        d.log()
    );

    // Pause: requests stop within a second, progress is kept.
    let out = env.cli(&["pause", "1", "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::thread::sleep(Duration::from_millis(1000));
    let requests_at_pause = server.log().len();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(server.log().len(), requests_at_pause, "requests continued while paused");
    let s = env.status(1).expect("status");
    assert_eq!((s.state.as_str(), s.running), ("paused", false));
    let done_at_pause = s.done;

    // A pause survives a restart of the daemon.
    d.term();
    assert!(d.wait(Duration::from_secs(10)).is_some_and(|s| s.success()), "{}", d.log());
    let mut d = env.daemon(&[]);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(env.status(1).expect("status").state.as_str(), "paused", "{}", d.log());
    assert_eq!(server.log().len(), requests_at_pause, "a paused job made requests after a restart");

    // Resume: it continues from where it was.
    let out = env.cli(&["resume", "1", "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(wait_until(Duration::from_secs(10), || env
        .status(1)
        .is_some_and(|s| s.done > done_at_pause + 2)));

    // Cancel: it stops, keeps completed files, ends cancelled in failed/.
    let out = env.cli(&["cancel", "1", "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = env.status(1).expect("status");
    assert_eq!(s.state.as_str(), "cancelled");
    assert!(s.done > 0 && s.done < 40, "{s:?}");
    assert!(env.files_in("failed").contains(&"1.ctl.json".to_string()));
    let kept = s.done;
    let files_on_disk = fs::read_dir(env.job_dir("ctl"))
        .expect("ls")
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(files_on_disk as u64, kept, "completed files must be kept");

    // Retry: the job comes back with its TID and checkpoint and finishes;
    // completed files are not fetched again.
    let out = env.cli(&["retry", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        wait_until(Duration::from_secs(30), || env.status(1).is_some_and(|s| s.state.as_str() == "done")),
        "{}",
        d.log()
    );
    for i in 0..40u64 {
        assert_file(&env.job_dir("ctl").join(format!("p{i:02}.bin")), &bytes(i, 50_000));
        assert!(server.hits(&format!("/p{i:02}.bin")) <= 2, "p{i:02} fetched too often");
    }
    assert_eq!(env.files_in("done"), vec!["1.ctl.json"]);
    d.term();
    assert!(d.wait(Duration::from_secs(10)).is_some());
}

#[test]
fn a_job_cancelled_while_paused_runs_again_after_retry() {
    let server = FileServer::start();
    let mut urls = Vec::new();
    for i in 0..12u64 {
        let p = format!("/q{i:02}.bin");
        server.add(&p, bytes(i, 20_000));
        server.add_fault(&p, Fault::Drip(100_000), 1);
        urls.push(server.url(&p));
    }
    let env = Env::new();
    env.config(json!({"concurrency": 1}));
    env.drop_job("pc", &json!({"type": "http.files", "urls": urls}));
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(10), || env.status(1).is_some_and(|s| s.done >= 1)),
        "{}",
        d.log()
    );
    for cmd in ["pause", "cancel"] {
        let out = env.cli(&[cmd, "1", "--wait"]);
        assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(env.status(1).expect("status").state.as_str(), "cancelled");
    d.term();
    assert!(d.wait(Duration::from_secs(10)).is_some());
    let out = env.cli(&["retry", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // `run --once` must run it to the end, not find it paused and idle.
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert_eq!(env.status(1).expect("status").state.as_str(), "done", "{log}");
    for i in 0..12u64 {
        assert_file(&env.job_dir("pc").join(format!("q{i:02}.bin")), &bytes(i, 20_000));
    }
}

#[test]
fn what_the_daemon_keeps_of_a_job_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    let server = FileServer::start();
    server.add("/a.bin", bytes(1, 1000));
    let env = Env::new();
    // Dropped the usual way, readable by everybody (umask 022).
    let ok = env.drop_job("ok", &json!({"type": "http.files", "urls": [server.url("/a.bin")]}));
    fs::set_permissions(&ok, fs::Permissions::from_mode(0o644)).expect("chmod");
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    let bad = env.drop_raw("bad", br#"{"type": "http.files", "urls": "not a list"}"#);
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o664)).expect("chmod");
    // The run reports the rejected job in its exit status.
    let (_, log) = env.run_once(Duration::from_secs(30));
    assert!(log.contains("rejected"), "{log}");
    assert_eq!(mode(&env.spool.join("done/1.ok.json")), 0o600);
    assert_eq!(mode(&env.spool.join("failed/2.bad.json")), 0o600);
    assert_eq!(mode(&env.spool.join("failed/2.bad.json.reason")), 0o600);
    for tid in [1, 2] {
        let state = env.spool.join(format!("state/{tid}"));
        assert_eq!(mode(&state), 0o700, "{}", state.display());
        for e in fs::read_dir(&state).expect("list").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("journal.") {
                assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
            }
        }
    }
}
