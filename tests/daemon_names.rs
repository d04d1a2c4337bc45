//! `http.files` URLs without a file name, named by the server
//! (`Content-Disposition`), through the real binary with the defaults a
//! user gets: the saved names, `status --files`, and `kill -9` mid-transfer.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fileserver::{Fault, FileServer};
use crate::util::{Env, assert_file, bytes, wait_until};

/// Names in `dir`, sorted, hidden ones included.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// `status 1 --files --json`: item index → (state, path).
fn report(env: &Env) -> Vec<(u64, String, String)> {
    let out = env.cli(&["status", "1", "--files", "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    rows.iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (r["i"].as_u64().unwrap_or(u64::MAX), s("state"), s("path"))
        })
        .collect()
}

#[test]
fn server_names_reach_the_folder_and_status_files() {
    let server = FileServer::start();
    let cases: [(&str, Option<&str>); 6] = [
        ("/dl/a", Some("attachment; filename=\"report.pdf\"")),
        ("/dl/b", Some("attachment; filename=\"x.txt\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.txt")),
        ("/dl/c", Some("attachment; filename=\"../../etc/passwd\"")),
        ("/dl/d", Some("inline; filename=\"taken.txt\"")),
        ("/dl/e", None),
        ("/x.bin", Some("attachment; filename=\"other.bin\"")),
    ];
    let mut urls = Vec::new();
    for (k, (path, cd)) in cases.iter().enumerate() {
        server.add(path, bytes(k as u64, 10_000 + k));
        if let Some(v) = cd {
            server.set_disposition(path, v);
        }
        urls.push(server.url(&format!("{path}?id={k}")));
    }
    urls.push(server.url("/"));
    server.add("/", bytes(99, 77));
    server.set_disposition("/", "attachment; filename=\"root.bin\"");
    let env = Env::new();
    env.config_defaults(json!({}));
    let dir = env.job_dir("named");
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join("taken.txt"), b"a file of the user's").expect("user file");
    env.drop_job("named", &json!({"type": "http.files", "urls": urls}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let want = [
        (0, "report.pdf"),
        (1, "报告.txt"),
        (2, "___.._etc_passwd"),
        (3, "taken-3.txt"),
        (4, "e"),
        (5, "x.bin"),
        (6, "root.bin"),
    ];
    for (k, name) in want {
        let body = if k == 6 { bytes(99, 77) } else { bytes(k, 10_000 + k as usize) };
        assert_file(&dir.join(name), &body);
    }
    assert_file(&dir.join("taken.txt"), b"a file of the user's");
    let mut all: Vec<String> = want.iter().map(|(_, n)| n.to_string()).collect();
    all.push("taken.txt".into());
    all.sort();
    assert_eq!(names(&dir), all, "nothing else, no .part, no file-<i>");
    let rows = report(&env);
    let got: Vec<(u64, String, String)> = rows.into_iter().collect();
    let expect: Vec<(u64, String, String)> =
        want.iter().map(|(k, n)| (*k, "saved".to_string(), dir.join(n).display().to_string())).collect();
    assert_eq!(got, expect);
}

#[test]
fn kill9_mid_transfer_gives_one_file_under_the_servers_name() {
    let server = FileServer::start();
    let body = bytes(7, 6 << 20);
    server.add("/get", body.clone());
    server.set_disposition("/get", "attachment; filename=\"big.iso\"");
    // The first transfer crawls, so the kill lands in the middle.
    server.add_fault("/get", Fault::Drip(1_500_000), 1);
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("big", &json!({"type": "http.files", "urls": [server.url("/get?id=1")]}));
    let dir = env.job_dir("big");
    let mut d = env.daemon(&[]);
    let durable = |dir: &Path| {
        // `get` is an endpoint, not a file name: the provisional name.
        fs::read(dir.join(".get.part.meta"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["durable"].as_u64())
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(20), || durable(&dir) >= 1 << 20),
        "no durable progress in {:?} ({} hits, {:?}):\n{}",
        names(&dir),
        server.hits("/get"),
        server.range_requests("/get"),
        d.log()
    );
    d.kill9();
    assert!(!dir.join("big.iso").exists(), "a final name before the last byte");
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert_file(&dir.join("big.iso"), &body);
    assert_eq!(names(&dir), ["big.iso"]);
    assert!(
        server.range_requests("/get").iter().any(|r| r != "bytes=0-"),
        "no Range resume: {:?}",
        server.range_requests("/get")
    );
    let rows = report(&env);
    assert_eq!(rows, [(0, "saved".to_string(), dir.join("big.iso").display().to_string())]);
}
