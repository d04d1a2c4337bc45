//! Scripting the command line: `wait`, `submit --wait`, `-q`, and the
//! generated completions and manual page.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::fileserver::FileServer;
use crate::util::{Env, bin, bytes, hermetic};

#[test]
fn submit_wait_prints_the_tid_and_exits_with_the_jobs_end() {
    let server = FileServer::start();
    server.add("/a.bin", bytes(1, 2000));
    let env = Env::new();
    env.config_defaults(json!({}));
    let mut d = env.daemon(&[]);
    let out = env.cli(&[
        "submit",
        "http.files",
        &format!("urls={}", server.url("/a.bin")),
        "--name",
        "w",
        "--wait",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}\n{}", String::from_utf8_lossy(&out.stderr), d.log());
    assert!(stdout.contains("claimed as job 1") && stdout.contains("job 1 done: 1 saved"), "{stdout}");
    // A job that fails: exit 1 with the reason.
    let out = env.cli(&[
        "submit",
        "http.files",
        &format!("urls={}", server.url("/missing.bin")),
        "--name",
        "x",
        "--wait",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("job 2 failed") && stdout.contains("404"), "{stdout}");
    // `wait` on ended jobs answers at once, by their end.
    assert_eq!(env.cli(&["wait", "1"]).status.code(), Some(0));
    assert_eq!(env.cli(&["wait", "2"]).status.code(), Some(1));
    let out = env.cli(&["wait", "9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no job 9"));
    // A recurring job: `submit --wait` returns when its first run ends,
    // with that run's status; the series goes on.
    let out = env.cli(&[
        "submit",
        "http.files",
        &format!("urls={}", server.url("/a.bin")),
        "every=1h",
        "--name",
        "r",
        "--wait",
        "--timeout",
        "60",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", d.log());
    assert!(stdout.contains("job 3 run 1 done") && stdout.contains("next run"), "{stdout}");
    let s = env.status(3).expect("status");
    assert_eq!(s.stage, "scheduled", "{s:?}");
    d.term();
    let _ = d.wait(Duration::from_secs(20));
}

#[test]
fn wait_gives_up_at_its_timeout_with_status_3() {
    let env = Env::new();
    env.config_defaults(json!({}));
    // No daemon: the job is never claimed.
    let out =
        env.cli(&["submit", "demo.tasks", "api=http://127.0.0.1:9", "inputs=a", "--wait", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("was not claimed; is a daemon running"));
}

#[test]
fn quiet_run_once_with_nothing_to_do_prints_nothing() {
    let env = Env::new();
    env.config_defaults(json!({}));
    let out = hermetic(Command::new(bin()))
        .args(["-q", "run", "--once", "--spool"])
        .arg(&env.spool)
        .env("RUST_LOG", "info")
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "silent for cron");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn completions_parse_and_the_manual_page_renders() {
    let out = Command::new(bin()).args(["completions", "bash"]).output().expect("completions");
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(script.contains("spoolfetch") && script.contains("submit"), "{script}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("spoolfetch.bash");
    std::fs::write(&path, &script).expect("write");
    let check = Command::new("bash").arg("-n").arg(&path).output().expect("bash -n");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    for shell in ["zsh", "fish"] {
        let out = Command::new(bin()).args(["completions", shell]).output().expect("completions");
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    let man = Command::new(bin()).arg("man").output().expect("man");
    let text = String::from_utf8_lossy(&man.stdout);
    assert!(man.status.success() && text.contains(".TH spoolfetch") && text.contains("submit"), "{text}");
}

#[test]
fn retry_wait_waits_for_the_requeued_job_to_end_and_wait_takes_a_name() {
    let server = FileServer::start();
    let env = Env::new();
    env.config_defaults(json!({}));
    let mut d = env.daemon(&[]);
    let url = format!("urls={}", server.url("/late.bin"));
    let out = env.cli(&["submit", "http.files", &url, "--name", "late", "--wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    // The file appears; retry --wait returns only when the job is done.
    server.add("/late.bin", bytes(7, 5000));
    let out = env.cli(&["retry", "1", "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}\n{}", String::from_utf8_lossy(&out.stderr), d.log());
    assert!(stdout.contains("job 1 requeued") && stdout.contains("job 1 done: 1 saved"), "{stdout}");
    assert_eq!(env.status(1).map(|s| s.state.as_str()), Some("done"));
    // wait by name: the latest job of that name.
    let out = env.cli(&["wait", "late"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("job 1 done"));
    let out = env.cli(&["wait", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no job named \"nosuch\""));
    d.term();
    let _ = d.wait(Duration::from_secs(20));

    // No daemon: a retried job stays queued; --timeout gives up with 3,
    // and `wait NAME` on a job file nobody claimed does the same.
    server.remove("/late.bin");
    let mut d = env.daemon(&[]);
    let out = env.cli(&["submit", "http.files", &url, "--name", "again", "--wait"]);
    assert_eq!(out.status.code(), Some(1));
    d.term();
    let _ = d.wait(Duration::from_secs(20));
    let out = env.cli(&["retry", "2", "--wait", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("job 2 is still queued"));
    env.drop_job("unclaimed", &json!({"type": "http.files", "urls": [server.url("/x")]}));
    let out = env.cli(&["wait", "unclaimed", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unclaimed.json was not claimed"));
}
