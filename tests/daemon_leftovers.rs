//! What interrupted and cancelled jobs leave behind: temporaries of a
//! killed daemon go at the next start, a cancelled job leaves no empty
//! partial files, and nothing the user put there is touched.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::support::fileserver::{Fault, FileServer};
use crate::support::http::{Response, Server};
use crate::util::{Env, assert_file, bytes, wait_until};

/// Hidden files in `dir` with their lengths.
fn hidden(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| {
                    let len = e.metadata().map_or(0, |m| m.len());
                    (e.file_name().to_string_lossy().into_owned(), len)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn temporaries_of_a_killed_daemon_go_at_the_next_start_and_user_files_stay() {
    let server = FileServer::start();
    let body = bytes(3, 4 << 20);
    server.add("/big.bin", body.clone());
    server.add_fault("/big.bin", Fault::Drip(1_000_000), 1);
    let env = Env::new();
    env.config(json!({"timeout_secs": 10}));
    env.drop_job("left", &json!({"type": "http.files", "urls": [server.url("/big.bin")]}));
    let dir = env.job_dir("left");
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || hidden(&dir)
            .iter()
            .any(|(n, len)| n == ".big.bin.part" && *len > 0)),
        "no partial:\n{}",
        d.log()
    );
    let pid = d.pid();
    d.kill9();
    // What the killed daemon could have left mid-write: the metadata of a
    // partial (it names the URL), a status, a checkpoint snapshot, a token.
    let planted = [
        dir.join(format!(".big.bin.part.meta.{pid}.123456.tmp")),
        env.spool.join(format!("state/1/.status.json.{pid}.77.tmp")),
        env.spool.join(format!("state/1/.checkpoint.json.{pid}.8.tmp")),
        env.dir.path().join(format!("state/.token.json.{pid}.9.tmp")),
    ];
    // Names that are not the daemon's temporaries stay, whatever they hold.
    let users = [
        dir.join(format!(".notes.{pid}.draft.tmp")),
        dir.join(format!("photo.{pid}.1.tmp")),
        dir.join(".big.bin.tmp"),
    ];
    for p in planted.iter().chain(&users) {
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, b"https://example.org/?token=secret").expect("plant");
    }
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    for p in &planted {
        assert!(!p.exists(), "{} was left behind\n{log}", p.display());
    }
    for p in &users {
        assert!(p.exists(), "{} (not a temporary of the daemon) was removed", p.display());
    }
    assert_file(&dir.join("big.bin"), &body);
    assert_eq!(env.files_in("done"), vec!["1.left.json"]);
}

#[test]
fn a_cancelled_job_leaves_no_empty_partial_files_and_keeps_the_others() {
    // This server answers only after the client's timeout: its files
    // never get a byte, so their partials stay empty.
    let mute = Server::start(Arc::new(|_| {
        std::thread::sleep(Duration::from_secs(3));
        Response::new(200).with_body(crate::support::http::Body::Bytes(b"late".to_vec()))
    }));
    let server = FileServer::start();
    let body = bytes(5, 4 << 20);
    server.add("/big.bin", body.clone());
    server.add_fault("/big.bin", Fault::Drip(500_000), 1);
    let env = Env::new();
    env.config(json!({"timeout_secs": 2}));
    let urls = vec![
        format!("{}/mute1.bin", mute.base_url()),
        format!("{}/mute2.bin", mute.base_url()),
        server.url("/big.bin"),
    ];
    env.drop_job("cancel", &json!({"type": "http.files", "urls": urls}));
    let dir = env.job_dir("cancel");
    let d = env.daemon(&[]);
    let started = wait_until(Duration::from_secs(20), || {
        let h = hidden(&dir);
        h.iter().any(|(n, _)| n == ".mute1.bin.part")
            && h.iter().any(|(n, len)| n == ".big.bin.part" && *len > 0)
    });
    assert!(started, "{:?}\n{}", hidden(&dir), d.log());
    let out = env.cli(&["cancel", "1", "--wait"]);
    assert!(out.status.success(), "{out:?}\n{}", d.log());
    assert_eq!(env.status(1).expect("status").state.as_str(), "cancelled");
    let left = hidden(&dir);
    assert!(left.iter().all(|(n, len)| !n.starts_with(".mute") && *len > 0), "{left:?}\n{}", d.log());
    assert!(left.iter().any(|(n, _)| n == ".big.bin.part"), "the partial with bytes went: {left:?}");
}
