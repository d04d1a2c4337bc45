//! Octoparse end to end: the real binary and spool against the fake
//! DataAPI (tests/support/octoparse.rs).

use std::fs;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::support::octoparse::{FakeOctoparse, RowState};
use crate::util::{Env, wait_until};

/// A spool configured for the fake with the defaults a user gets: the
/// account's pacing is Octoparse's own token bucket, not a knob the test
/// turns.
fn env_for(fake: &FakeOctoparse) -> Env {
    let env = Env::new();
    env.config_defaults(json!({
        "octoparse": {"base_url": fake.base_url(), "username": "user", "password": "pass"},
    }));
    env
}

/// The JSON Lines of an output file.
fn jsonl(path: &std::path::Path) -> Vec<Map<String, Value>> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            serde_json::from_str::<Map<String, Value>>(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}"))
        })
        .collect()
}

#[test]
fn tasks_are_listed_as_json() {
    let fake = FakeOctoparse::start();
    fake.add_group(84, "shops");
    fake.add_task(84, "t-1", "prices");
    fake.add_task(84, "t-2", "reviews");
    let env = env_for(&fake);
    env.drop_job("tasks", &json!({"type": "octoparse.tasks"}));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    let v: Value =
        serde_json::from_slice(&fs::read(env.job_dir("tasks").join("tasks.json")).expect("tasks.json"))
            .expect("json");
    assert_eq!(v[0]["taskGroupName"], "shops");
    assert_eq!(v[0]["tasks"].as_array().map(Vec::len), Some(2));
    assert!(!log.contains("pass\""), "a password reached the log");
}

#[test]
fn export_all_survives_kill9_and_is_complete_without_duplicates() {
    let fake = FakeOctoparse::start();
    fake.add_group(1, "g");
    fake.add_task(1, "big", "big");
    let rows = FakeOctoparse::make_rows(25_000, 7);
    fake.add_rows("big", rows.clone());
    fake.set_latency(Duration::from_millis(60));
    let env = env_for(&fake);
    env.drop_job("all", &json!({"type": "octoparse.export", "task_id": "big", "mode": "all"}));
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(30), || fake.requests_to("api/alldata/GetDataOfTaskByOffset").len()
            >= 8),
        "{}",
        d.log()
    );
    d.kill9();
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let out = jsonl(&env.job_dir("all").join("big.jsonl"));
    assert_eq!(out.len(), 25_000, "rows written");
    assert!(out == rows, "the output differs from the task's rows (order, duplicates or loss)");
    // Offsets were always the server's: every request after the first sent
    // back an offset the server had returned (gappy, above 2^32).
    let offsets: Vec<u64> = fake
        .requests_to("api/alldata/GetDataOfTaskByOffset")
        .iter()
        .filter_map(|c| c.param("offset").and_then(|o| o.parse().ok()))
        .collect();
    assert!(offsets.iter().any(|o| *o > u64::from(u32::MAX)), "offsets never exceeded 32 bits: {offsets:?}");
    let s = env.status(1).expect("status");
    assert_eq!((s.state.as_str(), s.now, s.total), ("done", 25_000, 25_000));
}

#[test]
fn export_new_survives_kill9_and_a_lost_update_answer() {
    let fake = FakeOctoparse::start();
    fake.add_group(1, "g");
    fake.add_task(1, "t", "t");
    let rows = FakeOctoparse::make_rows(25_000, 11);
    fake.add_rows("t", rows.clone());
    fake.set_latency(Duration::from_millis(60));
    let env = env_for(&fake);
    env.drop_job("new", &json!({"type": "octoparse.export", "task_id": "t", "mode": "new"}));
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(30), || fake.requests_to("api/notexportdata/update").len() >= 4),
        "{}",
        d.log()
    );
    d.kill9();
    // The next update is applied but its answer never arrives.
    fake.drop_update_response_next();
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || fake.requests_to("api/notexportdata/update").len() >= 9),
        "{}",
        d.log()
    );
    d.kill9();
    let (status, log) = env.run_once(Duration::from_secs(90));
    assert!(status.success(), "{log}");
    let out = jsonl(&env.job_dir("new").join("t.jsonl"));
    assert_eq!(out.len(), 25_000, "rows written");
    assert!(out == rows, "the output differs from the task's rows (order, duplicates or loss)");
    assert_eq!(fake.count("t", RowState::Exported), 25_000, "every row is marked exported");
    // `update` only ever followed a durable batch: never two updates
    // without a gettop between them, except the repeat after the lost answer
    // or a kill.
    assert!(fake.requests().iter().any(|c| c.dropped), "the lost answer was not exercised");
}

#[test]
fn token_expiry_mid_export_and_rotation_are_handled() {
    let fake = FakeOctoparse::start();
    fake.add_group(1, "g");
    fake.add_task(1, "t", "t");
    fake.add_rows("t", FakeOctoparse::make_rows(6_000, 3));
    fake.set_latency(Duration::from_millis(40));
    let env = env_for(&fake);
    env.drop_job("e", &json!({"type": "octoparse.export", "task_id": "t", "size": 500}));
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || fake.requests_to("api/alldata/GetDataOfTaskByOffset").len()
            >= 3),
        "{}",
        d.log()
    );
    fake.expire_access_tokens();
    assert!(wait_until(Duration::from_secs(30), || env.files_in("done").len() == 1), "{}", d.log());
    d.term();
    assert!(d.wait(Duration::from_secs(10)).is_some());
    assert_eq!(jsonl(&env.job_dir("e").join("t.jsonl")).len(), 6_000);
    let grants: Vec<String> =
        fake.token_requests().iter().filter(|t| t.ok).map(|t| t.grant_type.clone()).collect();
    assert_eq!(grants.first().map(String::as_str), Some("password"));
    assert!(grants.iter().any(|g| g == "refresh_token"), "no refresh after the expiry: {grants:?}");
    let file = fs::read_dir(env.dir.path().join("state"))
        .expect("state")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("octoparse-token"))
        .expect("token file");
    let stored: Value = serde_json::from_slice(&fs::read(file.path()).expect("read")).expect("json");
    assert_eq!(
        stored["refresh_token"].as_str(),
        fake.current_refresh_token().as_deref(),
        "the newest refresh token is stored"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(file.path()).expect("stat").permissions().mode() & 0o077, 0);
}

#[test]
fn the_request_rate_never_exceeds_the_bucket() {
    let fake = FakeOctoparse::start();
    fake.add_group(1, "g");
    fake.add_task(1, "t", "t");
    fake.add_rows("t", FakeOctoparse::make_rows(2_400, 5));
    let env = env_for(&fake);
    // 120 small batches: more calls than the server's bucket holds.
    env.drop_job("rate", &json!({"type": "octoparse.export", "task_id": "t", "size": 20}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert_eq!(fake.rejected_by_bucket(), 0, "the server answered 429");
    assert_eq!(jsonl(&env.job_dir("rate").join("t.jsonl")).len(), 2_400);
    let calls = fake.requests();
    for (i, c) in calls.iter().enumerate() {
        let in_window =
            calls[i..].iter().take_while(|x| x.at.duration_since(c.at) < Duration::from_secs(1)).count();
        assert!(in_window <= 21, "{in_window} calls within one second");
    }
}

#[test]
fn a_429_storm_backs_off_and_completes() {
    let fake = FakeOctoparse::start();
    fake.add_group(1, "g");
    fake.add_task(1, "t", "t");
    fake.add_rows("t", FakeOctoparse::make_rows(3_000, 9));
    // The server's bucket is much smaller than documented.
    fake.set_bucket(5.0, 3.0);
    let env = env_for(&fake);
    env.drop_job("storm", &json!({"type": "octoparse.export", "task_id": "t", "size": 200}));
    let (status, log) = env.run_once(Duration::from_secs(90));
    assert!(status.success(), "{log}");
    assert!(fake.rejected_by_bucket() > 0, "the storm did not happen");
    assert_eq!(jsonl(&env.job_dir("storm").join("t.jsonl")).len(), 3_000);
}

#[test]
fn csv_output_has_a_stable_header_and_quoting() {
    let fake = FakeOctoparse::start();
    fake.add_group(1, "g");
    fake.add_task(1, "t", "t");
    let rows = FakeOctoparse::make_rows(1_500, 2);
    fake.add_rows("t", rows.clone());
    let env = env_for(&fake);
    env.drop_job(
        "csv",
        &json!({"type": "octoparse.export", "task_id": "t", "format": "csv", "size": 400, "mode": "new"}),
    );
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let text = fs::read_to_string(env.job_dir("csv").join("t.csv")).expect("csv");
    let header = text.lines().next().unwrap_or_default().to_string();
    let columns: Vec<&str> = header.split(',').collect();
    for k in rows[0].keys() {
        assert!(columns.contains(&k.as_str()), "{k} missing from {header}");
    }
    assert_eq!(text.matches(&format!("{header}\n")).count(), 1, "the header is written once");
    // Quoted newlines make lines != rows; count records by parsing quotes.
    let mut records = 0;
    let mut quoted = false;
    for ch in text.chars() {
        match ch {
            '"' => quoted = !quoted,
            '\n' if !quoted => records += 1,
            _ => {}
        }
    }
    assert_eq!(records, 1_501, "header + rows");
}

#[test]
fn errors_are_clear_and_clear_needs_confirmation() {
    let fake = FakeOctoparse::start();
    fake.add_group(1, "g");
    fake.add_task(1, "t", "t");
    fake.add_rows("t", FakeOctoparse::make_rows(10, 1));
    let env = env_for(&fake);
    env.drop_job("wrong", &json!({"type": "octoparse.export", "task_id": "nope"}));
    env.drop_job("unconfirmed", &json!({"type": "octoparse.clear", "task_id": "t"}));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{log}");
    let reasons: Vec<String> = env
        .files_in("failed")
        .iter()
        .filter(|f| f.ends_with(".reason"))
        .map(|f| fs::read_to_string(env.spool.join("failed").join(f)).expect("reason"))
        .collect();
    assert!(reasons.iter().any(|r| r.contains("taskid_error")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("\"confirm\": true")), "{reasons:?}");
    assert_eq!(fake.rows("t").len(), 10, "nothing was cleared without confirmation");
    env.drop_job("confirmed", &json!({"type": "octoparse.clear", "task_id": "t", "confirm": true}));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert!(fake.rows("t").is_empty());
    // Bad credentials (and no stored refresh token) fail the job with the
    // server's reason.
    fake.set_credentials("user", "other");
    fake.expire_access_tokens();
    for e in fs::read_dir(env.dir.path().join("state")).expect("state").flatten() {
        if e.file_name().to_string_lossy().starts_with("octoparse-token") {
            fs::remove_file(e.path()).expect("rm token");
        }
    }
    env.drop_job("denied", &json!({"type": "octoparse.tasks"}));
    let (status, _) = env.run_once(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    let reason = env
        .files_in("failed")
        .iter()
        .find(|f| f.ends_with(".denied.json.reason"))
        .map(|f| fs::read_to_string(env.spool.join("failed").join(f)).expect("reason"))
        .unwrap_or_default();
    assert!(reason.contains("invalid_grant"), "{reason}");
}
