//! Crash safety as a user meets it: `kill -9` at any moment, SIGTERM, then
//! a restart, and a byte-for-byte comparison.

use std::collections::HashMap;
use std::fs;
use std::time::Duration;

use serde_json::json;

use crate::support::fileserver::{Fault, FileServer};
use crate::util::{Env, assert_file, bytes, wait_until};

/// Largest `durable` offset recorded in any `.part.meta` under `dir`.
fn max_durable(dir: &std::path::Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".part.meta"))
                .filter_map(|e| fs::read(e.path()).ok())
                .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .filter_map(|v| v["durable"].as_u64())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// Final (non-hidden) files present in `dir`.
fn finals(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn kill9_mid_download_resumes_by_range_and_refetches_nothing() {
    let server = FileServer::start();
    let mut urls = Vec::new();
    let mut want = HashMap::new();
    for i in 0..4u64 {
        let body = bytes(i, 20_000 + i as usize);
        let path = format!("/small{i}.bin");
        server.add(&path, body.clone());
        urls.push(server.url(&path));
        want.insert(format!("small{i}.bin"), body);
    }
    for i in 0..2u64 {
        let body = bytes(100 + i, 6 << 20);
        let path = format!("/big{i}.bin");
        server.add(&path, body.clone());
        // The first transfer crawls, so the kill lands in the middle.
        server.add_fault(&path, Fault::Drip(1_500_000), 1);
        urls.push(server.url(&path));
        want.insert(format!("big{i}.bin"), body);
    }
    let env = Env::new();
    env.config(json!({"timeout_secs": 10}));
    env.drop_job("crash", &json!({"type": "http.files", "urls": urls}));
    let dir = env.job_dir("crash");
    let mut d = env.daemon(&[]);
    // Wait until a big file has made progress durable and the small ones
    // are done.
    assert!(
        wait_until(Duration::from_secs(20), || max_durable(&dir) >= 1 << 20 && finals(&dir).len() >= 4),
        "no durable progress:\n{}",
        d.log()
    );
    d.kill9();
    let complete_before = finals(&dir);
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    for (name, body) in &want {
        assert_file(&dir.join(name), body);
    }
    for name in &complete_before {
        let path = format!("/{name}");
        assert_eq!(server.hits(&path), 1, "{name} was complete before the kill but fetched again");
    }
    let resumed = ["/big0.bin", "/big1.bin"]
        .iter()
        .flat_map(|p| server.range_requests(p))
        .filter(|r| r.starts_with("bytes=") && !r.starts_with("bytes=0-"))
        .count();
    assert!(resumed >= 1, "no Range resume after kill -9\n{log}");
    assert_eq!(env.files_in("done"), vec!["1.crash.json"]);
}

#[test]
fn kill9_again_and_again_loses_nothing_and_duplicates_nothing() {
    let server = FileServer::start();
    let files = 150u64;
    let mut urls = Vec::new();
    for i in 0..files {
        let path = format!("/f{i:03}.bin");
        server.add(&path, bytes(i, 30_000 + (i as usize * 97) % 20_000));
        // Every file takes a little while, so kills land mid-transfer.
        server.add_fault(&path, Fault::Drip(400_000), 1);
        urls.push(server.url(&path));
    }
    let env = Env::new();
    env.config(json!({"concurrency": 6, "timeout_secs": 10}));
    env.drop_job("storm", &json!({"type": "http.files", "urls": urls}));
    let kills = 4;
    for k in 0..kills {
        let mut d = env.daemon(&[]);
        let before = finals(&env.job_dir("storm")).len();
        // Let it make some progress, then pull the plug.
        let _ = wait_until(Duration::from_secs(10), || finals(&env.job_dir("storm")).len() >= before + 10);
        std::thread::sleep(Duration::from_millis(50 + 70 * k));
        d.kill9();
        // Every checkpoint file must still parse.
        let state = env.spool.join("state/1/checkpoint.json");
        if state.exists() {
            let v: serde_json::Value =
                serde_json::from_slice(&fs::read(&state).expect("read")).expect("checkpoint parses");
            assert!(v["progress"].is_object());
        }
    }
    let (status, log) = env.run_once(Duration::from_secs(90));
    assert!(status.success(), "{log}");
    for i in 0..files {
        assert_file(
            &env.job_dir("storm").join(format!("f{i:03}.bin")),
            &bytes(i, 30_000 + (i as usize * 97) % 20_000),
        );
        let hits = server.hits(&format!("/f{i:03}.bin"));
        assert!(hits <= 1 + kills as usize, "f{i:03}.bin fetched {hits} times");
    }
    assert_eq!(env.files_in("done"), vec!["1.storm.json"]);
    assert!(env.files_in(&format!("work/{}", "a")).iter().all(|n| n.starts_with('.')), "job left in work/");
    let s = env.status(1).expect("status");
    assert_eq!((s.state.as_str(), s.done), ("done", files));
}

#[test]
fn kill9_between_a_groups_writes_and_its_flush_leaves_no_final_name_without_its_bytes() {
    // The debug build's fault point holds each finisher group after every
    // byte was written and before its fdatasync, while the gate file
    // exists: the kill lands exactly there.
    let server = FileServer::start();
    let files = 24u64;
    let body = |i: u64| bytes(i, 20_000 + i as usize * 111);
    let mut urls = Vec::new();
    for i in 0..files {
        let path = format!("/g{i:02}.bin");
        server.add(&path, body(i));
        urls.push(server.url(&path));
    }
    let env = Env::new();
    env.config(json!({"concurrency": 4}));
    env.drop_job("gate", &json!({"type": "http.files", "urls": urls}));
    let gate = env.dir.path().join("flush-gate");
    fs::write(&gate, b"").expect("gate");
    let held = env.dir.path().join("flush-gate.held");
    let gate_env = gate.display().to_string();
    let mut d = env.daemon_with(&[], &[("SPOOLFETCH_TEST_FLUSH_GATE", gate_env.as_str())]);
    let dir = env.job_dir("gate");
    let parts = |dir: &std::path::Path| {
        fs::read_dir(dir)
            .map(|rd| rd.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".part")).count())
            .unwrap_or(0)
    };
    // Every worker's file is written and waits in a held group (or in the
    // finishers' queue behind one).
    assert!(
        wait_until(Duration::from_secs(20), || held.exists() && parts(&dir) >= 4),
        "no group reached its flush:\n{}",
        d.log()
    );
    assert!(finals(&dir).is_empty(), "a final name before its group was flushed: {:?}", finals(&dir));
    d.kill9();
    assert!(finals(&dir).is_empty(), "{:?}", finals(&dir));
    fs::remove_file(&gate).expect("open the gate");
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    for i in 0..files {
        assert_file(&dir.join(format!("g{i:02}.bin")), &body(i));
    }
    assert_eq!(finals(&dir).len(), files as usize);
    assert_eq!(env.files_in("done"), vec!["1.gate.json"]);
}

#[test]
fn sigterm_mid_job_checkpoints_exits_0_and_resumes() {
    let server = FileServer::start();
    let body = bytes(7, 8 << 20);
    server.add("/huge.bin", body.clone());
    server.add_fault("/huge.bin", Fault::Drip(1_000_000), 1);
    let env = Env::new();
    env.config(json!({"timeout_secs": 10, "shutdown_grace_secs": 1}));
    env.drop_job("term", &json!({"type": "http.files", "urls": [server.url("/huge.bin")]}));
    let dir = env.job_dir("term");
    let mut d = env.daemon(&[]);
    assert!(wait_until(Duration::from_secs(20), || max_durable(&dir) > 0), "no progress:\n{}", d.log());
    let t = std::time::Instant::now();
    d.term();
    let status =
        d.wait(Duration::from_secs(10)).unwrap_or_else(|| panic!("no exit after SIGTERM:\n{}", d.log()));
    assert!(status.success(), "exit {status:?}\n{}", d.log());
    assert!(t.elapsed() < Duration::from_secs(6), "took {:?} to stop", t.elapsed());
    // The job is still ours, queued for the next start, with durable
    // progress on disk.
    assert_eq!(env.files_in("work/a").iter().filter(|n| n.ends_with(".json")).count(), 1);
    assert_eq!(env.status(1).expect("status").state.as_str(), "queued");
    let durable = max_durable(&dir);
    assert!(durable > 0);
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert_file(&dir.join("huge.bin"), &body);
    let ranges = server.range_requests("/huge.bin");
    assert!(
        ranges.iter().any(|r| r == &format!("bytes={durable}-")),
        "expected bytes={durable}-, got {ranges:?}"
    );
}

/// A checkpoint that a newer spoolfetch wrote (a journal record this
/// binary does not know) is not cut off as a torn tail: the job fails
/// with a reason that names the cause, and the journal keeps the line.
#[test]
fn a_checkpoint_of_a_newer_spoolfetch_fails_the_job_with_that_reason() {
    let server = FileServer::start();
    server.add("/a.bin", bytes(1, 2000));
    server.add("/slow.bin", bytes(2, 2_000_000));
    server.add_fault("/slow.bin", Fault::Stall { after: 1000, dur: Duration::from_secs(30) }, 1);
    let env = Env::new();
    env.drop_job(
        "newer",
        &json!({"type": "http.files", "urls": [server.url("/a.bin"), server.url("/slow.bin")]}),
    );
    let mut d = env.daemon(&[]);
    let dir = env.job_dir("newer");
    let started = wait_until(Duration::from_secs(20), || {
        dir.join("a.bin").exists() && fs::metadata(dir.join(".slow.bin.part")).is_ok_and(|m| m.len() > 0)
    });
    assert!(started, "{}", d.log());
    std::thread::sleep(Duration::from_millis(500));
    d.kill9();
    let state = env.spool.join("state/1");
    let journal = fs::read_dir(&state)
        .expect("state")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("journal.")))
        .expect("a journal");
    let mut text = fs::read_to_string(&journal).expect("journal");
    text.push_str("{\"t\":\"zz_future\",\"x\":1}\n");
    fs::write(&journal, &text).expect("append");
    let (_, log) = env.run_once(Duration::from_secs(60));
    let s = env.status(1).expect("status");
    assert_eq!(s.state.as_str(), "failed", "{log}");
    let reason = s.error.unwrap_or_default();
    assert!(reason.contains("written by a newer spoolfetch"), "{reason}\n{log}");
    assert!(fs::read_to_string(&journal).expect("journal").ends_with("{\"t\":\"zz_future\",\"x\":1}\n"));
    assert_file(&dir.join("a.bin"), &bytes(1, 2000));
}

/// A job checkpointed by a build that wrote format 1 (journals without a
/// header; `tests/fixtures/checkpoint-v1`) and killed in flight resumes
/// under this build: its done files are not fetched again, the rest
/// complete byte for byte.
#[test]
fn a_job_checkpointed_by_format_1_resumes() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoint-v1");
    let server = FileServer::start();
    let body = |i: u64| bytes(100 + i, 3000 + i as usize);
    for i in 0..6u64 {
        server.add(&format!("/f/{i}.bin"), body(i));
    }
    let host = server.url("/").trim_start_matches("http://").trim_end_matches('/').to_string();
    let read =
        |rel: &str| fs::read_to_string(fixture.join(rel)).expect(rel).replace("127.0.0.1:42811", &host);
    let env = Env::new();
    let job = read("work/a/1.v1job.json");
    let state = env.spool.join("state/1");
    fs::create_dir_all(env.spool.join("work/a")).expect("work");
    fs::create_dir_all(&state).expect("state");
    fs::write(env.spool.join("work/a/1.v1job.json"), &job).expect("job");
    fs::write(state.join("journal.0"), read("state/1/journal.0")).expect("journal");
    let id = spoolfetch::checkpoint::JobIdentity::new(1, job.as_bytes());
    fs::write(state.join("identity.json"), format!("{{\"tid\":1,\"sha256\":\"{}\"}}", id.sha256))
        .expect("identity");
    // What the killed run left in the download folder.
    let dir = env.job_dir("v1job");
    fs::create_dir_all(&dir).expect("downloads");
    for i in 0..3u64 {
        fs::write(dir.join(format!("{i}.bin")), body(i)).expect("done file");
    }
    for i in 3..6u64 {
        fs::write(dir.join(format!(".{i}.bin.part")), b"").expect("partial");
    }
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert_eq!(env.status(1).expect("status").state.as_str(), "done", "{log}");
    for i in 0..6u64 {
        assert_file(&dir.join(format!("{i}.bin")), &body(i));
        let hits = server.hits(&format!("/f/{i}.bin"));
        assert_eq!(hits, usize::from(i >= 3), "file {i}: {hits} requests\n{log}");
    }
}
