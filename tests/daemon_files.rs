//! `http.files` through the real binary: faults on the wire, failures,
//! retry, status output and path safety.

use std::fs;
use std::time::Duration;

use serde_json::json;

use crate::support::fileserver::{Fault, FileServer};
use crate::util::{Env, assert_file, bytes, wait_until};

#[test]
fn once_survives_every_fault_and_saves_exact_bytes() {
    let server = FileServer::start();
    let mut urls = Vec::new();
    let mut want = Vec::new();
    for i in 0..24u64 {
        let body = bytes(i, (i as usize * 3331) % 70_000);
        let path = format!("/f/{i:02}.bin");
        server.add(&path, body.clone());
        urls.push(server.url(&path));
        want.push((format!("{i:02}.bin"), body));
    }
    let big = bytes(99, 3 << 20);
    server.add("/f/big.bin", big.clone());
    server.add_fault("/f/big.bin", Fault::Truncate(1_500_000), 1);
    urls.push(server.url("/f/big.bin"));
    want.push(("big.bin".into(), big));
    server.add_fault("/f/03.bin", Fault::Status { code: 429, retry_after: Some("1".into()) }, 1);
    server.add_fault("/f/04.bin", Fault::Status { code: 503, retry_after: None }, 2);
    server.add_fault("/f/05.bin", Fault::Stall { after: 10, dur: Duration::from_secs(5) }, 1);
    server.add_fault("/f/06.bin", Fault::Truncate(100), 1);

    let env = Env::new();
    env.drop_job("mixed", &json!({"type": "http.files", "urls": urls}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "exit {status:?}\n{log}");
    for (name, body) in &want {
        assert_file(&env.job_dir("mixed").join(name), body);
    }
    // The big file resumed where the cut left it, with a validator.
    let ranges = server.range_requests("/f/big.bin");
    assert!(
        ranges.iter().any(|r| r.starts_with("bytes=") && r != "bytes=0-"),
        "no resume: {ranges:?}\n{log}"
    );
    assert!(server.log().iter().any(|r| r.path_only() == "/f/big.bin" && r.header("if-range").is_some()));
    // No partial or temporary files are left in the output folder.
    let leftovers: Vec<String> = fs::read_dir(env.job_dir("mixed"))
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(env.files_in("done"), vec!["1.mixed.json"]);
    let s = env.status(1).expect("status");
    assert_eq!((s.state.as_str(), s.now, s.total, s.done), ("done", 25, 25, 25));
}

#[test]
fn a_missing_file_fails_the_job_and_retry_finishes_it() {
    let server = FileServer::start();
    server.add("/a.txt", b"alpha".to_vec());
    server.add("/c.txt", b"gamma".to_vec());
    let env = Env::new();
    env.drop_job("abc", &json!({"type": "http.files", "urls": [server.url("/a.txt"), server.url("/b.txt"), server.url("/c.txt")]}));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{log}");
    assert_eq!(env.files_in("failed"), vec!["1.abc.json", "1.abc.json.reason"]);
    let reason = fs::read_to_string(env.spool.join("failed/1.abc.json.reason")).expect("reason");
    assert!(
        reason.contains("1 of 3 files failed") && reason.contains("/b.txt") && reason.contains("404"),
        "{reason}"
    );
    let s = env.status(1).expect("status");
    assert_eq!(s.state.as_str(), "failed");
    assert!(s.error.as_deref().is_some_and(|e| e.contains("404")));
    assert_file(&env.job_dir("abc").join("a.txt"), b"alpha");

    // The server gets the file; `retry` requeues the job with its TID and
    // checkpoint, and only the missing file is fetched.
    server.add("/b.txt", b"beta".to_vec());
    let out = env.cli(&["retry", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(env.status(1).expect("status").state.as_str(), "queued");
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert_eq!(env.files_in("done"), vec!["1.abc.json"]);
    assert!(env.files_in("failed").is_empty());
    assert_file(&env.job_dir("abc").join("b.txt"), b"beta");
    assert_eq!(server.hits("/a.txt"), 1, "a completed file was fetched again");
    assert_eq!(server.hits("/c.txt"), 1, "a completed file was fetched again");
    // A done job cannot be retried.
    let out = env.cli(&["retry", "1"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn status_json_carries_the_contract_fields() {
    let server = FileServer::start();
    server.add("/x.bin", bytes(1, 1000));
    let env = Env::new();
    env.drop_job("one", &json!({"type": "http.files", "urls": [server.url("/x.bin")]}));
    let (status, _) = env.run_once(Duration::from_secs(30));
    assert!(status.success());
    let out = env.cli(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let obj = &v[0];
    for key in ["tid", "name", "type", "stage", "state", "running", "now", "total", "save_path", "error"] {
        assert!(obj.get(key).is_some(), "missing {key} in {obj}");
    }
    assert_eq!(obj["tid"], 1);
    assert_eq!(obj["type"], "http.files");
    assert_eq!(obj["state"], "done");
    assert_eq!(obj["running"], false);
    assert!(obj["error"].is_null());
    let table = String::from_utf8_lossy(&env.cli(&["status"]).stdout).into_owned();
    assert!(table.contains("one") && table.contains("done") && table.contains("1/1"), "{table}");
    // One line per job, the error at its end; unclaimed files as queued.
    env.drop_job("bad", &json!({"type": "http.files", "urls": ["https://h/x"], "colour": 1}));
    let (status, _) = env.run_once(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    env.drop_job("later", &json!({"type": "http.files", "urls": [server.url("/x.bin")]}));
    let table = String::from_utf8_lossy(&env.cli(&["status"]).stdout).into_owned();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "a header and one line per job: {table}");
    assert!(
        lines[2].starts_with("    2  bad ")
            && lines[2].contains("failed")
            && lines[2].contains("error: unknown key `colour`"),
        "{table}"
    );
    assert!(
        lines[3].contains("later.json") && lines[3].contains("claim") && lines[3].contains("queued"),
        "{table}"
    );
}

#[test]
fn names_and_urls_cannot_escape_the_save_path() {
    let server = FileServer::start();
    server.add("/..%2F..%2Fevil.txt", b"x".to_vec());
    server.add("/ok.txt", b"ok".to_vec());
    let env = Env::new();
    env.drop_job(
        "escape",
        &json!({"type": "http.files", "name": "../../outside", "urls": [server.url("/..%2F..%2Fevil.txt"), server.url("/ok.txt")]}),
    );
    env.drop_job(
        "abs",
        &json!({"type": "http.files", "save_path": "../up", "urls": [server.url("/ok.txt")]}),
    );
    let (status, log) = env.run_once(Duration::from_secs(30));
    // The second job is rejected for its save_path; the first completes
    // inside the save folder.
    assert_eq!(status.code(), Some(1), "{log}");
    let escaped = env.dir.path().join("outside");
    assert!(!escaped.exists(), "a job wrote outside its save path");
    let dirs: Vec<String> = fs::read_dir(&env.save)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let inside = env.save.join(&dirs[0]);
    assert!(inside.join("ok.txt").exists());
    let reason_file =
        env.files_in("failed").into_iter().find(|n| n.ends_with(".abs.json.reason")).expect("reason file");
    let reason = fs::read_to_string(env.spool.join("failed").join(reason_file)).expect("reason");
    assert!(reason.contains("`..`"), "{reason}");
}

#[test]
fn header_secrets_are_sent_but_never_logged() {
    let server = FileServer::start();
    server.add("/private.bin", bytes(3, 2000));
    server.set_require_header("/private.bin", "authorization", "Bearer SECRET-TOKEN-42");
    let env = Env::new();
    env.drop_job(
        "private",
        &json!({"type": "http.files", "urls": [server.url("/private.bin")],
                "headers": {"Authorization": "Bearer SECRET-TOKEN-42", "Cookie": "session=SECRET-COOKIE-7"}}),
    );
    let mut d = env.daemon_with(&["--once"], &[("RUST_LOG", "trace")]);
    let status = d.wait(Duration::from_secs(30)).expect("exit");
    let log = d.log();
    assert!(status.success(), "{log}");
    assert_file(&env.job_dir("private").join("private.bin"), &bytes(3, 2000));
    assert!(!log.contains("SECRET-TOKEN-42") && !log.contains("SECRET-COOKIE-7"), "a secret reached the log");
    let status_json = String::from_utf8_lossy(&env.cli(&["status", "--json"]).stdout).into_owned();
    assert!(!status_json.contains("SECRET"), "{status_json}");
}

#[test]
fn url_secrets_never_reach_logs_status_or_reasons() {
    let server = FileServer::start();
    let base = server.base_url();
    let (scheme, host) = base.split_once("://").expect("base URL");
    let url = format!("{scheme}://user:SECRET-PW-1@{host}/gone.bin?X-Amz-Signature=SECRET-SIG-2&size=2");
    let env = Env::new();
    env.drop_job("signed", &json!({"type": "http.files", "urls": [url]}));
    let mut d = env.daemon_with(&["--once"], &[("RUST_LOG", "trace")]);
    let status = d.wait(Duration::from_secs(30)).expect("exit");
    let log = d.log();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("gone.bin"), "the failure names the file: {log}");
    let reason = fs::read_to_string(env.spool.join("failed").join("1.signed.json.reason")).expect("reason");
    let status_json = String::from_utf8_lossy(&env.cli(&["status", "--json"]).stdout).into_owned();
    for (what, text) in [("log", &log), ("reason", &reason), ("status", &status_json)] {
        assert!(!text.contains("SECRET"), "a secret reached the {what}: {text}");
    }
    assert!(reason.contains("X-Amz-Signature=***&size=2"), "{reason}");
}

#[test]
fn retry_rounds_lengthen_the_timeout_when_increment_is_on() {
    // The server stalls 3 s before the body; the timeout is 2 s. Round 1
    // times out; round 2 waits 2 × 2 s and succeeds.
    let server = FileServer::start();
    server.add("/slow.bin", bytes(5, 3000));
    server.add_fault("/slow.bin", Fault::Stall { after: 0, dur: Duration::from_secs(3) }, 10);
    let env = Env::new();
    env.config(json!({"timeout_secs": 2, "retries": 1, "rounds": 2, "timeout_increment": true}));
    env.drop_job("slow", &json!({"type": "http.files", "urls": [server.url("/slow.bin")]}));
    let (status, log) = env.run_once(Duration::from_secs(40));
    assert!(status.success(), "{log}");
    assert!(log.contains("retry round 2 for 1 files (timeout 4 s)"), "{log}");
    assert_file(&env.job_dir("slow").join("slow.bin"), &bytes(5, 3000));

    // Without Increment the same file fails in both rounds.
    let server = FileServer::start();
    server.add("/slow.bin", bytes(5, 3000));
    server.add_fault("/slow.bin", Fault::Stall { after: 0, dur: Duration::from_secs(3) }, 10);
    let env = Env::new();
    env.config(json!({"timeout_secs": 2, "retries": 1, "rounds": 2, "timeout_increment": false}));
    env.drop_job("slow", &json!({"type": "http.files", "urls": [server.url("/slow.bin")]}));
    let (status, log) = env.run_once(Duration::from_secs(40));
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("timed out"), "{log}");
}

#[test]
fn demo_runs_offline_and_verifies_its_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = crate::util::hermetic(std::process::Command::new(crate::util::bin()))
        .args(["demo", "--files", "20", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("20/20 files verified"), "{stdout}");
    assert!(dir.path().join("jobs/done/1.demo.json").exists());
    // The listing went through the pacer (three pages, one rate-limited
    // once) and the downloads through the pool (one file retried).
    assert!(stderr.contains("rate-limited (HTTP 429)"), "{stderr}");
    assert!(stderr.contains("HTTP 503"), "{stderr}");
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("jobs/state/1/status.json")).expect("status"))
            .expect("status JSON");
    assert_eq!(
        (status["type"].as_str(), status["state"].as_str(), status["done"].as_u64()),
        (Some("demo.gallery"), Some("done"), Some(20))
    );
}

#[test]
fn a_long_listing_waits_for_the_downloads() {
    // 4,500 URLs: http.files plans them 2,000 a page, and the runner
    // takes no page while 4,000 planned items are unfinished. The first
    // four files stall, so every worker is busy and nothing finishes: the
    // listing must stop at 4,000 items instead of planning all 4,500.
    let server = FileServer::start();
    let n = 4500u64;
    let urls: Vec<String> = (0..n)
        .map(|i| {
            let path = format!("/m/{i:04}.bin");
            server.add(&path, i.to_le_bytes().to_vec());
            if i < 4 {
                server.add_fault(&path, Fault::Stall { after: 0, dur: Duration::from_secs(3) }, 1);
            }
            server.url(&path)
        })
        .collect();
    let env = Env::new();
    env.config(json!({"timeout_secs": 20}));
    env.drop_job("many", &json!({"type": "http.files", "urls": urls}));
    let mut d = env.daemon(&["--once"]);
    let held = wait_until(Duration::from_secs(20), || {
        env.status(1)
            .is_some_and(|s| s.found == 4000 && s.stage == "download" && s.state.as_str() == "running")
    });
    assert!(held, "{:?}\n{}", env.status(1), d.log());
    std::thread::sleep(Duration::from_millis(1000));
    let s = env.status(1).expect("status");
    assert_eq!((s.found, s.done, s.total), (4000, 0, n), "{s:?}");
    let status = d.wait(Duration::from_secs(120)).expect("run --once ends");
    assert!(status.success(), "{}", d.log());
    let s = env.status(1).expect("status");
    assert_eq!((s.state.as_str(), s.found, s.done), ("done", n, n));
    for i in [0u64, 3, 3999, 4000, 4499] {
        assert_file(&env.job_dir("many").join(format!("{i:04}.bin")), &i.to_le_bytes());
    }
    assert_eq!(fs::read_dir(env.job_dir("many")).expect("ls").count(), 4500);
}

#[test]
fn a_very_long_file_name_is_cut_and_downloads() {
    let server = FileServer::start();
    let long = format!("/{}.bin", "a".repeat(300));
    server.add(&long, bytes(5, 3 << 20));
    // Big enough to leave `.part` and `.part.meta` while it downloads.
    server.add_fault(&long, Fault::Truncate(1_200_000), 1);
    let env = Env::new();
    env.drop_job("long", &json!({"type": "http.files", "urls": [server.url(&long)]}));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    let names: Vec<String> = fs::read_dir(env.job_dir("long"))
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // 255 bytes less room for `.<name>.part.meta`.
    assert_eq!(names[0].len(), 244);
    assert!(names[0].ends_with(".bin"));
    assert_file(&env.job_dir("long").join(&names[0]), &bytes(5, 3 << 20));
}
