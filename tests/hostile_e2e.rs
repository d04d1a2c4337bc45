//! Hostile servers and planted files through the real binary, with the
//! configuration a user gets (no speed or header knobs set).

use std::fs;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::fileserver::{Fault, FileServer};
use crate::util::{Env, assert_file, bytes, wait_until};

/// Four files that drip at 10 bytes a second hold every download thread
/// (the test configuration has `concurrency` 4). With the default minimum
/// speed (1 KiB/s over 30 s) they are cut and retried later, so a second
/// job's files get the threads; without it they would be held for minutes.
#[test]
fn slow_drips_cannot_hold_the_pool_at_the_defaults() {
    let server = FileServer::start();
    let mut slow = Vec::new();
    for i in 0..4 {
        let path = format!("/slow/{i}.bin");
        server.add(&path, bytes(i, 3000));
        server.add_fault(&path, Fault::Drip(10), 1000);
        slow.push(server.url(&path));
    }
    let mut fast = Vec::new();
    for i in 0..6u64 {
        let path = format!("/fast/{i}.bin");
        server.add(&path, bytes(100 + i, 5000));
        fast.push(server.url(&path));
    }
    let env = Env::new();
    let mut daemon = env.daemon(&[]);
    env.drop_job("slow", &json!({"type": "http.files", "urls": slow}));
    let started =
        wait_until(Duration::from_secs(20), || (0..4).all(|i| server.hits(&format!("/slow/{i}.bin")) >= 1));
    assert!(started, "the slow transfers did not start\n{}", daemon.log());
    let t = Instant::now();
    env.drop_job("fast", &json!({"type": "http.files", "urls": fast}));
    let fast_done = wait_until(Duration::from_secs(75), || {
        env.statuses().iter().any(|s| s.name == "fast" && s.state.as_str() == "done")
    });
    let log = daemon.log();
    assert!(fast_done, "the fast job starved behind the slow one\n{log}");
    assert!(t.elapsed() >= Duration::from_secs(20), "the slow transfers were cut too early\n{log}");
    assert!(log.contains("slower than"), "no reason for the cut transfers in the log\n{log}");
    for i in 0..6u64 {
        assert_file(&env.job_dir("fast").join(format!("{i}.bin")), &bytes(100 + i, 5000));
    }
    daemon.term();
    assert!(daemon.wait(Duration::from_secs(30)).is_some(), "daemon did not stop\n{}", daemon.log());
}

/// A server that gzips a `.tar.gz` on the wire: the file is saved as the
/// bytes sent, not decoded.
#[test]
fn content_encoding_is_saved_as_sent() {
    let server = FileServer::start();
    // Bytes that are not gzip: a decoder would fail or change them.
    let body = bytes(7, 40_000);
    server.add("/a.tar.gz", body.clone());
    server.add_fault("/a.tar.gz", Fault::Gzip, 10);
    let env = Env::new();
    env.drop_job("gz", &json!({"type": "http.files", "urls": [server.url("/a.tar.gz")]}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert_file(&env.job_dir("gz").join("a.tar.gz"), &body);
}

/// Links planted at the partial and meta names of a download never let
/// the daemon write through them.
#[test]
fn planted_links_in_a_download_folder_are_not_written_through() {
    let server = FileServer::start();
    let body = bytes(3, 2 << 20);
    server.add("/big.bin", body.clone());
    server.add("/small.bin", b"small".to_vec());
    let env = Env::new();
    let victim = env.dir.path().join("victim.txt");
    fs::write(&victim, b"precious").expect("victim");
    let dir = env.job_dir("links");
    fs::create_dir_all(&dir).expect("dir");
    for name in [".big.bin.part", ".big.bin.part.meta", ".small.bin.part"] {
        std::os::unix::fs::symlink(&victim, dir.join(name)).expect("symlink");
    }
    env.drop_job(
        "links",
        &json!({"type": "http.files", "urls": [server.url("/big.bin"), server.url("/small.bin")]}),
    );
    let (_status, log) = env.run_once(Duration::from_secs(60));
    assert_eq!(fs::read(&victim).expect("victim"), b"precious", "{log}");
    assert!(fs::symlink_metadata(&victim).expect("victim").is_file());
    // Whether the items failed or went on with fresh files, the link never
    // became a final name.
    for name in ["big.bin", "small.bin"] {
        if let Ok(m) = fs::symlink_metadata(dir.join(name)) {
            assert!(m.is_file(), "{name} is not a regular file\n{log}");
        }
    }
}

/// SIGSTOP for longer than the timeouts, then SIGCONT (a suspended VM, a
/// NAS that froze the process): the transfers in flight, and a request
/// still waiting for its answer, carry on with fresh timeouts instead of
/// all failing at once.
#[test]
fn a_stopped_and_continued_daemon_carries_on_with_its_transfers() {
    use crate::support::http::{Body, Response, Server};
    let server = FileServer::start();
    let mut urls = Vec::new();
    for i in 0..3u64 {
        let path = format!("/drip/{i}.bin");
        server.add(&path, bytes(40 + i, 300_000));
        server.add_fault(&path, Fault::Drip(100_000), 1);
        urls.push(server.url(&path));
    }
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&asked);
    let late = Server::start(std::sync::Arc::new(move |_| {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(1500));
        Response::new(200).with_body(Body::Bytes(bytes(9, 1000)))
    }));
    urls.push(format!("{}/late.bin", late.base_url()));
    let env = Env::new();
    env.drop_job("stop", &json!({"type": "http.files", "urls": urls}));
    let mut daemon = env.daemon(&[]);
    let dir = env.job_dir("stop");
    let started = wait_until(Duration::from_secs(20), || {
        asked.load(std::sync::atomic::Ordering::SeqCst)
            && (0..3).all(|i| fs::metadata(dir.join(format!(".{i}.bin.part"))).is_ok_and(|m| m.len() > 0))
    });
    assert!(started, "the transfers did not start\n{}", daemon.log());
    daemon.signal(rustix::process::Signal::STOP);
    std::thread::sleep(Duration::from_secs(5));
    daemon.signal(rustix::process::Signal::CONT);
    let done =
        wait_until(Duration::from_secs(60), || env.status(1).is_some_and(|s| s.state.as_str() == "done"));
    let log = daemon.log();
    assert!(done, "{log}");
    assert!(
        !log.contains("timed out") && !log.contains("retrying"),
        "a transfer failed after SIGCONT\n{log}"
    );
    for i in 0..3u64 {
        assert_file(&dir.join(format!("{i}.bin")), &bytes(40 + i, 300_000));
    }
    assert_file(&dir.join("late.bin"), &bytes(9, 1000));
    eprintln!("{log}");
    daemon.term();
    assert!(daemon.wait(Duration::from_secs(30)).is_some(), "daemon did not stop\n{}", daemon.log());
}
