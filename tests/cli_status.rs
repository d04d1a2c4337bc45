//! `status` and the daemons behind the jobs: alive, gone (stale rows), or
//! none at all.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cli_ops::in_pty;
use crate::support::fileserver::{Fault, FileServer};
use crate::util::{Env, bytes, wait_until};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The `status --json` objects.
fn json_rows(env: &Env) -> Vec<Value> {
    let out = env.cli(&["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn a_killed_daemons_jobs_are_stale_and_queued_jobs_without_a_daemon_are_said() {
    let server = FileServer::start();
    server.add("/slow.bin", bytes(3, 200_000));
    server.add_fault("/slow.bin", Fault::Stall { after: 1000, dur: Duration::from_secs(30) }, 5);
    let env = Env::new();
    env.config_defaults(json!({}));
    let mut d = env.daemon(&[]);
    env.drop_job("slow", &json!({"type": "http.files", "urls": [server.url("/slow.bin")]}));
    assert!(
        wait_until(Duration::from_secs(15), || env.status(1).is_some_and(|s| s.state.as_str() == "running")),
        "{}",
        d.log()
    );
    let rows = json_rows(&env);
    assert_eq!((rows[0]["daemon_alive"].clone(), rows[0]["stale"].clone()), (json!(true), json!(false)));
    let out = env.cli(&["status"]);
    let table = text(&out.stdout);
    assert!(table.contains(" running ") && !table.contains("not running"), "{table}");

    d.kill9();
    let out = env.cli(&["status"]);
    let table = text(&out.stdout);
    let row = table.lines().find(|l| l.contains("slow")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(" stale ") && row.ends_with("daemon \"a\" not running"), "{row}");
    let rows = json_rows(&env);
    assert_eq!(rows[0]["state"], "running", "the status file's state, as the contract lists states");
    assert_eq!(
        (rows[0]["daemon_alive"].clone(), rows[0]["stale"].clone(), rows[0]["running"].clone()),
        (json!(false), json!(true), json!(false))
    );
    // On a terminal too.
    let spool = env.spool.display().to_string();
    let (code, shown) = in_pty(env.dir.path(), &["status", "--spool", &spool]);
    assert_eq!(code, Some(0));
    assert!(shown.contains(" stale ") && shown.contains("daemon \"a\" not running"), "{shown}");

    // A job nobody claims: said once, under the table.
    env.drop_job("later", &json!({"type": "http.files", "urls": [server.url("/slow.bin")]}));
    let out = env.cli(&["status"]);
    let note = text(&out.stderr);
    assert!(note.contains("no daemon is running on this spool: 1 queued job(s) wait for one"), "{note}");
    assert!(!text(&out.stdout).contains("no daemon"), "stdout stays one line per job");
    // A daemon again: the stale job resumes, nothing is said.
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(15), || {
            let out = env.cli(&["status"]);
            !text(&out.stdout).contains("stale") && !text(&out.stderr).contains("no daemon")
        }),
        "{}",
        d.log()
    );
    d.term();
    let _ = d.wait(Duration::from_secs(20));
}

#[test]
fn an_empty_spool_without_a_daemon_says_nothing_extra() {
    let env = Env::new();
    let out = env.cli(&["status"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).lines().count(), 1, "the header only: {}", text(&out.stdout));
    assert_eq!(text(&out.stderr), "");
}
