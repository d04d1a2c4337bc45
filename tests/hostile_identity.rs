//! Job identity and bounded shutdown through the real binary: a TID names
//! one job, a checkpoint belongs to one job file, and SIGTERM ends the
//! daemon whatever a transfer is stuck in.

use std::fs;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::fileserver::{Fault, FileServer};
use crate::util::{Env, assert_file, wait_until};

#[test]
fn an_edited_failed_job_replans_on_retry_and_keeps_saved_files() {
    let server = FileServer::start();
    server.add("/a.txt", b"alpha".to_vec());
    server.add("/b.txt", b"beta".to_vec());
    let env = Env::new();
    env.drop_job(
        "ab",
        &json!({"type": "http.files", "urls": [server.url("/a.txt"), server.url("/typo.txt")]}),
    );
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{log}");
    assert_file(&env.job_dir("ab").join("a.txt"), b"alpha");

    // The user fixes the URL in the failed job file, then retries.
    let failed = env.spool.join("failed/1.ab.json");
    let fixed = json!({"type": "http.files", "urls": [server.url("/a.txt"), server.url("/b.txt")]});
    fs::write(&failed, serde_json::to_vec(&fixed).expect("json")).expect("edit");
    let typo_hits = server.hits("/typo.txt");
    let out = env.cli(&["retry", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert_eq!(env.files_in("done"), vec!["1.ab.json"]);
    assert_file(&env.job_dir("ab").join("a.txt"), b"alpha");
    assert_file(&env.job_dir("ab").join("b.txt"), b"beta");
    assert!(log.contains("belonged to another job file"), "{log}");
    assert_eq!(server.hits("/typo.txt"), typo_hits, "the retry followed the old plan");
    assert_eq!(server.hits("/a.txt"), 1, "a saved file was downloaded again");
}

#[test]
fn a_deleted_tids_folder_never_hands_a_new_job_an_old_checkpoint() {
    let server = FileServer::start();
    server.add("/old.txt", b"old".to_vec());
    server.add("/new.txt", b"new".to_vec());
    let env = Env::new();
    env.drop_job("old", &json!({"type": "http.files", "urls": [server.url("/old.txt")]}));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    // The user tidies up: tids/ and done/ go, state/ stays.
    fs::remove_dir_all(env.spool.join("tids")).expect("rm tids");
    fs::remove_dir_all(env.spool.join("done")).expect("rm done");
    env.drop_job("new", &json!({"type": "http.files", "urls": [server.url("/new.txt")]}));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert_eq!(env.files_in("done"), vec!["2.new.json"], "{log}");
    assert_file(&env.job_dir("new").join("new.txt"), b"new");
    assert_eq!(server.hits("/new.txt"), 1);
}

#[test]
fn a_checkpoint_of_another_job_file_is_set_aside_not_replayed() {
    let server = FileServer::start();
    server.add("/one.txt", b"one".to_vec());
    server.add("/two.txt", b"two".to_vec());
    let env = Env::new();
    env.drop_job("one", &json!({"type": "http.files", "urls": [server.url("/one.txt")]}));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    // A different job file arrives under TID 1 (as a stale retry/ entry
    // would): it must fetch its own file, not end done from job 1's state.
    fs::remove_file(env.spool.join("done/1.one.json")).expect("rm");
    let job = json!({"type": "http.files", "urls": [server.url("/two.txt")]});
    fs::write(env.spool.join("retry/1.one.json"), serde_json::to_vec(&job).expect("json")).expect("write");
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert_file(&env.job_dir("one").join("two.txt"), b"two");
    assert_eq!(server.hits("/two.txt"), 1);
    let aside = fs::read_dir(env.spool.join("state"))
        .expect("state")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("1.stale-"));
    assert!(aside, "the old state folder is kept aside");
}

#[test]
fn a_retry_of_a_running_tid_waits_until_the_job_ends() {
    let server = FileServer::start();
    server.add("/slow.bin", vec![7u8; 4000]);
    server.add_fault("/slow.bin", Fault::Stall { after: 100, dur: Duration::from_secs(3) }, 1);
    server.add("/other.txt", b"other".to_vec());
    let env = Env::new();
    env.config(json!({"timeout_secs": 10}));
    env.drop_job("slow", &json!({"type": "http.files", "urls": [server.url("/slow.bin")]}));
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(10), || server.hits("/slow.bin") >= 1),
        "the job starts:\n{}",
        d.log()
    );
    // A retry request for TID 1 while job 1 is running.
    let job = json!({"type": "http.files", "urls": [server.url("/other.txt")]});
    fs::write(env.spool.join("retry/1.slow.json"), serde_json::to_vec(&job).expect("json")).expect("write");
    assert!(
        wait_until(Duration::from_secs(20), || env.files_in("done").contains(&"1.slow.json".to_string())
            && !env.spool.join("retry/1.slow.json").exists()
            && env.job_dir("slow").join("other.txt").exists()),
        "{}",
        d.log()
    );
    d.term();
    assert!(d.wait(Duration::from_secs(15)).is_some());
    let log = d.log();
    assert_eq!(fs::read(env.job_dir("slow").join("slow.bin")).expect("slow.bin").len(), 4000, "{log}");
    assert!(log.contains("retry of job 1 waits"), "{log}");
}

#[test]
fn sigterm_ends_the_daemon_while_a_server_never_answers() {
    // Accepts connections and never writes a byte.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(8) {
            match s {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_secs(60));
        drop(held);
    });
    let env = Env::new();
    env.config(json!({"timeout_secs": 600}));
    env.drop_job("hang", &json!({"type": "http.files", "urls": [format!("http://127.0.0.1:{port}/x.bin")]}));
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(10), || env
            .files_in("work/a")
            .iter()
            .any(|f| f.ends_with("hang.json"))),
        "{}",
        d.log()
    );
    std::thread::sleep(Duration::from_millis(800));
    let t = Instant::now();
    d.term();
    // shutdown_grace_secs is 1 in the test configuration.
    let status = d.wait(Duration::from_secs(20)).unwrap_or_else(|| panic!("no exit:\n{}", d.log()));
    assert!(t.elapsed() < Duration::from_secs(15), "took {:?}", t.elapsed());
    assert!(status.success(), "{status:?}\n{}", d.log());
    assert!(env.files_in("work/a").iter().any(|f| f.ends_with("hang.json")), "the job stays to resume");
    drop(hold);
}

#[test]
fn a_framing_header_is_refused_at_claim_and_never_spins() {
    // A GET that announces a request body it never has made the HTTP
    // library wait for those bytes in a loop that looked at no flag; such
    // headers are now refused before any request is made.
    let server = FileServer::start();
    server.add("/x.bin", b"x".to_vec());
    let env = Env::new();
    env.config(json!({"timeout_secs": 600}));
    env.drop_job(
        "spin",
        &json!({"type": "http.files", "urls": [server.url("/x.bin")], "headers": {"content-LENGTH": "5"}}),
    );
    let t = Instant::now();
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(t.elapsed() < Duration::from_secs(20), "took {:?}", t.elapsed());
    let reason = fs::read_to_string(env.spool.join("failed/1.spin.json.reason")).expect("reason");
    assert!(reason.to_ascii_lowercase().contains("content-length"), "{reason}");
    assert_eq!(server.hits("/x.bin"), 0, "{log}");
}

/// Starts a daemon, removes `victim` (inside the spool) once it serves,
/// and checks that it stops soon with one clear error.
fn stops_when_removed(victim: &str, says: &str) {
    let env = Env::new();
    let mut d = env.daemon(&[]);
    assert!(wait_until(Duration::from_secs(10), || d.log().contains("watching")), "{}", d.log());
    let path = if victim.is_empty() { env.spool.clone() } else { env.spool.join(victim) };
    if path.is_dir() {
        fs::remove_dir_all(&path).expect("remove");
    } else {
        fs::remove_file(&path).expect("remove");
    }
    let status = d.wait(Duration::from_secs(10)).unwrap_or_else(|| panic!("still running:\n{}", d.log()));
    let log = d.log();
    assert!(!status.success(), "{status:?}\n{log}");
    // Once in the log, once as the exit message.
    assert_eq!(log.matches(says).count(), 2, "{log}");
    let warnings = log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).count();
    assert!(warnings <= 6, "the error repeats:\n{log}");
}

#[test]
fn a_deleted_spool_stops_the_daemon_with_one_error() {
    stops_when_removed("", "disappeared; stopping");
}

#[test]
fn a_deleted_work_folder_stops_the_daemon_with_one_error() {
    stops_when_removed("work", "disappeared; stopping");
}

#[test]
fn a_removed_instance_lock_stops_the_daemon_with_one_error() {
    // Else a second daemon of the same instance could take a new lock.
    stops_when_removed("work/a/.lock", "was removed; stopping");
}
