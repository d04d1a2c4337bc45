//! Recurring jobs (`every`, `cron`, `jitter`): what is refused, at
//! `submit` and at claim, with which reason.

use std::fs;
use std::time::Duration;

use serde_json::json;

use crate::support::pixiv::{FakePixiv, Work, default_refresh_token};
use crate::util::{Env, assert_file, wait_until};

/// Bad values and the words their reason must hold.
const BAD: &[(&str, &str, &str)] = &[
    ("every", "0s", "at least one second"),
    ("every", "-1h", "negative"),
    ("every", "garbage", "not a duration"),
    ("every", "10", "\"10s\""),
    ("cron", "61 * * * *", "cron minute field"),
    ("cron", "* * *", "five fields"),
    ("cron", "0 0 30 2 *", "never matches"),
    ("jitter", "1m", "needs `every` or `cron`"),
];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn daemon_recur_bad_every_and_cron_are_refused_at_submit() {
    let env = Env::new();
    env.config_defaults(json!({}));
    for (i, (key, value, want)) in BAD.iter().enumerate() {
        let kv = format!("{key}={value}");
        let name = format!("s{i}");
        let out = env.cli(&["submit", "http.files", "urls=http://127.0.0.1:9/a", &kv, "--name", &name]);
        assert_eq!(out.status.code(), Some(2), "{kv}: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(err.contains(want) && err.contains(&format!("`{key}`")), "{kv}: {err}");
    }
    let out = env.cli(&[
        "submit",
        "http.files",
        "urls=http://127.0.0.1:9/a",
        "every=1h",
        "cron=0 * * * *",
        "--name",
        "both",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not both"), "{}", text(&out.stderr));
    // Nothing reached the spool.
    let dropped: Vec<_> = fs::read_dir(&env.spool)
        .expect("spool")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n != "spoolfetch.json")
        .collect();
    assert!(dropped.is_empty(), "{dropped:?}");
}

#[test]
fn daemon_recur_bad_every_and_cron_are_refused_at_claim_and_other_jobs_run() {
    let server = crate::support::fileserver::FileServer::start();
    server.add("/ok.bin", crate::util::bytes(1, 1000));
    let env = Env::new();
    env.config_defaults(json!({}));
    for (i, (key, value, _)) in BAD.iter().enumerate() {
        env.drop_job(
            &format!("b{i}"),
            &json!({"type": "http.files", "urls": [server.url("/x.bin")], (*key): value}),
        );
    }
    env.drop_job(
        "both",
        &json!({"type": "http.files", "urls": [server.url("/x.bin")], "every": "1h", "cron": "0 * * * *"}),
    );
    env.drop_job("num", &json!({"type": "http.files", "urls": [server.url("/x.bin")], "every": 60}));
    env.drop_job("ok", &json!({"type": "http.files", "urls": [server.url("/ok.bin")]}));
    let (_, log) = env.run_once(Duration::from_secs(60));
    let failed = env.files_in("failed");
    let reason_of = |stem: &str| {
        let f = failed
            .iter()
            .find(|f| f.ends_with(&format!(".{stem}.json.reason")))
            .unwrap_or_else(|| panic!("{stem} not refused: {failed:?}\n{log}"));
        fs::read_to_string(env.spool.join("failed").join(f)).expect("reason")
    };
    for (i, (key, value, want)) in BAD.iter().enumerate() {
        let reason = reason_of(&format!("b{i}"));
        assert!(reason.contains(want) && reason.contains(&format!("`{key}`")), "{key}={value}: {reason}");
    }
    assert!(reason_of("both").contains("not both"));
    assert!(reason_of("num").contains("not the number 60"));
    // The job without recurrence keys ran as usual.
    assert!(env.files_in("done").iter().any(|f| f.ends_with(".ok.json")), "{log}");
    assert_eq!(server.hits("/x.bin"), 0);
}

/// The runs in a job's history, as (run, state).
fn history(env: &Env, tid: u64) -> Vec<(u64, String)> {
    let text = fs::read_to_string(env.spool.join("state").join(tid.to_string()).join("history.jsonl"))
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| (v["run"].as_u64().unwrap_or(0), v["state"].as_str().unwrap_or("").to_string()))
        .collect()
}

/// The TID of the job called `name`, once claimed.
fn tid_of(env: &Env, name: &str) -> u64 {
    let mut tid = None;
    assert!(
        wait_until(Duration::from_secs(30), || {
            tid = env.statuses().into_iter().find(|s| s.name == name).map(|s| s.tid);
            tid.is_some()
        }),
        "{name} was not claimed"
    );
    tid.unwrap_or(0)
}

/// Runs are numbered 1, 2, 3, … without a gap or a repeat.
fn assert_consecutive(runs: &[(u64, String)]) {
    for (i, (run, _)) in runs.iter().enumerate() {
        assert_eq!(*run, i as u64 + 1, "runs out of order or repeated: {runs:?}");
    }
}

fn pixiv_env(fake: &FakePixiv) -> Env {
    let env = Env::new();
    env.config_defaults(json!({
        "pixiv": {
            "api_url": fake.base_url(),
            "oauth_url": fake.base_url(),
            "refresh_token": default_refresh_token(),
        },
    }));
    env
}

#[test]
fn daemon_recur_a_recurring_user_job_fetches_only_new_works_across_runs_and_a_restart() {
    let fake = FakePixiv::start();
    fake.add_user(11, "a", "a");
    // 40 works: two list pages of 30, so a run that read every page
    // would make two list calls.
    fake.add_works((0..40u64).map(|i| Work::new(11_000 + i, 11)));
    let env = pixiv_env(&fake);
    env.drop_job("artist", &json!({"type": "pixiv.user", "user_id": 11, "every": "1s"}));
    let mut d = env.daemon(&[]);
    let tid = tid_of(&env, "artist");
    assert!(wait_until(Duration::from_secs(60), || !history(&env, tid).is_empty()), "{}", d.log());
    assert_eq!(fake.image_requests().len(), 40);
    // Between runs the job stays claimed, scheduled, with its history.
    let s = env.status(tid).expect("status");
    let sched = s.schedule.clone().expect("a schedule in the status");
    assert_eq!(sched.rule, "every 1s");
    assert!(env.files_in("done").is_empty(), "a recurring job is not filed as done");

    // New works appear: a later run fetches them and only them.
    fake.add_works((40..42u64).map(|i| Work::new(11_000 + i, 11)));
    assert!(wait_until(Duration::from_secs(60), || fake.image_requests().len() == 42), "{}", d.log());
    let before = history(&env, tid).len();
    assert!(wait_until(Duration::from_secs(60), || history(&env, tid).len() > before + 1), "{}", d.log());
    // A run with nothing new costs one listing call: it ends at the first
    // archived works (`stop_after_seen` is on for recurring jobs).
    let lists = fake.api_calls_to("/v1/user/illusts").len();
    let runs = history(&env, tid).len();
    assert!(wait_until(Duration::from_secs(60), || history(&env, tid).len() > runs), "{}", d.log());
    assert_eq!(fake.api_calls_to("/v1/user/illusts").len(), lists + 1, "one list call per quiet run");

    // A restart between runs: the series goes on where it was.
    d.term();
    assert!(d.wait(Duration::from_secs(30)).is_some(), "the daemon did not stop");
    let runs_before = history(&env, tid);
    assert_consecutive(&runs_before);
    fake.add_work(Work::new(11_100, 11));
    let mut d = env.daemon(&[]);
    // The image is asked for, then fsynced and renamed into place.
    let new_file = env.job_dir("artist").join("11100_p0.jpg");
    assert!(wait_until(Duration::from_secs(60), || new_file.exists()), "{}", d.log());
    assert_eq!(fake.image_requests().len(), 43, "{}", d.log());
    assert!(
        wait_until(Duration::from_secs(60), || history(&env, tid).len() > runs_before.len()),
        "{}",
        d.log()
    );
    let runs = history(&env, tid);
    assert_consecutive(&runs);
    assert!(runs.iter().all(|(_, st)| st == "done"), "{runs:?}");
    // No work was fetched twice.
    let mut ids: Vec<String> = fake.image_requests().iter().map(|r| r.path.clone()).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "an image was fetched twice");

    // `status` shows the series; cancel ends it.
    let out = env.cli(&["status"]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.contains("every 1s"), "{table}");
    let out = env.cli(&["cancel", &tid.to_string(), "--wait"]);
    assert!(out.status.success() || out.status.code() == Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        wait_until(Duration::from_secs(30), || env
            .files_in("failed")
            .iter()
            .any(|f| f.ends_with(".artist.json"))),
        "{}",
        d.log()
    );
    let ended = history(&env, tid).len();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(history(&env, tid).len(), ended, "a cancelled series ran again");
    let s = env.status(tid).expect("status");
    assert_eq!(s.state, spoolfetch::job::JobState::Cancelled, "{s:?}");
    d.term();
    let _ = d.wait(Duration::from_secs(30));
}

#[test]
fn daemon_recur_two_daemons_on_one_spool_start_each_run_once() {
    let server = crate::support::fileserver::FileServer::start();
    server.add("/r.bin", crate::util::bytes(7, 2000));
    let env = Env::new();
    env.config_defaults(json!({}));
    let mut d1 = env.daemon(&["--instance", "alpha"]);
    let mut d2 = env.daemon(&["--instance", "beta"]);
    env.drop_job("r", &json!({"type": "http.files", "urls": [server.url("/r.bin")], "every": "1s"}));
    let tid = tid_of(&env, "r");
    assert!(
        wait_until(Duration::from_secs(60), || history(&env, tid).len() >= 4),
        "{}\n{}",
        d1.log(),
        d2.log()
    );
    d1.term();
    d2.term();
    let _ = d1.wait(Duration::from_secs(30));
    let _ = d2.wait(Duration::from_secs(30));
    let runs = history(&env, tid);
    assert_consecutive(&runs);
    assert!(runs.iter().all(|(_, st)| st == "done"), "{runs:?}");
    // One daemon owns the series: each run began once, in one place.
    let begun = d1.log().matches(&format!("job {tid} (r): run ")).count()
        + d2.log().matches(&format!("job {tid} (r): run ")).count();
    let owners = [("alpha", &d1), ("beta", &d2)]
        .iter()
        .filter(|(_, d)| d.log().contains(&format!("job {tid} (r): run 1 begins")))
        .count();
    assert_eq!(owners, 1, "{}\n{}", d1.log(), d2.log());
    assert!(begun >= runs.len(), "{}\n{}", d1.log(), d2.log());
    assert_file(&env.job_dir("r").join("r.bin"), &crate::util::bytes(7, 2000));
}

#[test]
fn daemon_recur_run_once_runs_a_due_run_and_leaves_the_series_scheduled() {
    let server = crate::support::fileserver::FileServer::start();
    server.add("/o.bin", crate::util::bytes(3, 500));
    let env = Env::new();
    env.config_defaults(json!({}));
    let out = env.cli(&[
        "submit",
        "http.files",
        &format!("urls={}", server.url("/o.bin")),
        "every=1h",
        "--name",
        "o",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let tid = tid_of(&env, "o");
    assert_eq!(history(&env, tid), vec![(1, "done".to_string())]);
    let s = env.status(tid).expect("status");
    assert_eq!((s.state, s.stage.as_str()), (spoolfetch::job::JobState::Queued, "scheduled"), "{s:?}");
    let next = s.schedule.as_ref().and_then(|x| x.next_run).expect("next run");
    let now = spoolfetch::job::unix_now();
    assert!(next > now && next <= now + 3600 + 360, "next run {next} vs now {now}");
    // Not due yet: a second `run --once` does nothing to it.
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert_eq!(history(&env, tid).len(), 1, "{log}");
    assert_eq!(server.hits("/o.bin"), 1);
    let json = env.cli(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v[0]["schedule"]["last_run"]["run"], 1, "{v}");
}

#[test]
fn daemon_recur_kill9_mid_run_resumes_that_run_and_never_begins_it_twice() {
    let fake = FakePixiv::start();
    fake.add_user(11, "a", "a");
    let works: Vec<Work> = (0..40u64).map(|i| Work::new(12_000 + i, 11)).collect();
    fake.add_works(works.clone());
    let env = pixiv_env(&fake);
    env.drop_job("artist", &json!({"type": "pixiv.user", "user_id": 11, "every": "1h"}));
    let mut d = env.daemon(&[]);
    let tid = tid_of(&env, "artist");
    assert!(wait_until(Duration::from_secs(60), || fake.image_requests().len() >= 5), "{}", d.log());
    assert!(history(&env, tid).is_empty(), "run 1 ended before the kill: {}", d.log());
    d.kill9();
    let mut d = env.daemon(&[]);
    assert!(wait_until(Duration::from_secs(60), || !history(&env, tid).is_empty()), "{}", d.log());
    assert_eq!(history(&env, tid), vec![(1, "done".to_string())], "{}", d.log());
    assert!(!d.log().contains("run 2 begins"), "{}", d.log());
    for w in &works {
        let name = format!("{}_p0.{}", w.id, w.ext);
        assert_file(&env.job_dir("artist").join(&name), &FakePixiv::image_bytes(w.id, 0, w.ext));
    }
    // The history is written first, the status the job keeps between runs
    // just after it.
    assert!(
        wait_until(Duration::from_secs(10), || env.status(tid).is_some_and(|s| s.stage == "scheduled")),
        "{:?}",
        env.status(tid)
    );
    d.term();
    let _ = d.wait(Duration::from_secs(30));
}

#[test]
fn daemon_recur_run_once_begins_one_run_of_a_series_even_when_it_outlasts_its_period() {
    use crate::support::fileserver::{Fault, FileServer};
    let server = FileServer::start();
    server.add("/slow.bin", crate::util::bytes(5, 4000));
    server.add_fault("/slow.bin", Fault::Stall { after: 100, dur: Duration::from_millis(2500) }, 1);
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("slow", &json!({"type": "http.files", "urls": [server.url("/slow.bin")], "every": "1s"}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let tid = tid_of(&env, "slow");
    assert_eq!(history(&env, tid), vec![(1, "done".to_string())], "{log}");
    assert_file(&env.job_dir("slow").join("slow.bin"), &crate::util::bytes(5, 4000));
    // The run that is due now is the next `run --once`'s.
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert_eq!(history(&env, tid).len(), 2, "{log}");
}

#[test]
fn daemon_recur_a_clock_behind_the_last_start_begins_nothing_until_the_next_slot() {
    let server = crate::support::fileserver::FileServer::start();
    server.add("/c.bin", crate::util::bytes(9, 300));
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("c", &json!({"type": "http.files", "urls": [server.url("/c.bin")], "every": "1m"}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let tid = tid_of(&env, "c");
    assert_eq!(history(&env, tid).len(), 1);
    // As if the clock had jumped back an hour since run 1 began: its mark
    // lies an hour ahead of the clock.
    let mark_path = env.spool.join("state").join(tid.to_string()).join("run.json");
    let mut mark: serde_json::Value =
        serde_json::from_slice(&fs::read(&mark_path).expect("mark")).expect("json");
    let ahead = spoolfetch::job::unix_now() + 3600;
    mark["started"] = json!(ahead);
    fs::write(&mark_path, serde_json::to_vec(&mark).expect("json")).expect("write");
    let mut d = env.daemon(&[]);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(history(&env, tid).len(), 1, "a run began although its slot has not come: {}", d.log());
    let s = env.status(tid).expect("status");
    let next = s.schedule.and_then(|x| x.next_run).expect("next run");
    assert!(next > ahead && next <= ahead + 60, "next run {next}, mark {ahead}");
    d.term();
    let _ = d.wait(Duration::from_secs(30));
}
