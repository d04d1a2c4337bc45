//! Remote tasks through the real binary, with the configuration a user
//! gets: `demo.tasks` against a fake task service. Each task is created
//! once, also across `kill -9` and a lost answer, and its result is saved.

use std::time::Duration;

use serde_json::json;

use crate::support::tasks::{FakeTasks, result_of};
use crate::util::{Env, assert_file, wait_until};

fn job(fake: &FakeTasks, inputs: &[&str]) -> serde_json::Value {
    json!({"type": "demo.tasks", "api": fake.base_url(), "inputs": inputs})
}

#[test]
fn remote_tasks_are_created_once_polled_and_their_results_saved() {
    let fake = FakeTasks::start(2);
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("t", &job(&fake, &["a", "b", "c"]));
    let mut d = env.daemon(&["--once"]);
    let processing = wait_until(Duration::from_secs(30), || {
        env.status(1)
            .is_some_and(|s| s.stage == "process" && s.phases.get("processing").is_some_and(|n| *n > 0))
    });
    assert!(processing, "{:?}\n{}", env.status(1), d.log());
    let status = d.wait(Duration::from_secs(90)).expect("run --once ends");
    let log = d.log();
    assert!(status.success(), "{log}");
    let s = env.status(1).expect("status");
    assert_eq!(
        (s.state.as_str(), s.done, s.failed),
        ("done", 3, 0),
        "three results (a finished task counts as the files it made)\n{log}"
    );
    for name in ["a", "b", "c"] {
        assert_file(&env.job_dir("t").join(format!("{name}.out")), &result_of(name));
        assert_eq!(fake.creates(name), 1, "{name} created once\n{log}");
    }
}

#[test]
fn a_create_whose_answer_was_lost_is_found_not_made_again() {
    let fake = FakeTasks::start(1);
    fake.drop_create_answer("b");
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("t", &job(&fake, &["a", "b"]));
    let (status, log) = env.run_once(Duration::from_secs(90));
    assert!(status.success(), "{log}");
    assert_eq!((fake.creates("a"), fake.creates("b")), (1, 1), "{log}");
    assert!(log.contains("looking for the task before creating it again"), "{log}");
    assert_file(&env.job_dir("t").join("b.out"), &result_of("b"));
}

#[test]
fn kill_9_while_tasks_are_in_flight_creates_nothing_twice() {
    let fake = FakeTasks::start(3);
    // The create of `c` is answered only after 20 s: a kill meanwhile
    // leaves a task the client never learned about.
    fake.stall_create("c", Duration::from_secs(20));
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("t", &job(&fake, &["a", "b", "c"]));
    let mut d = env.daemon(&[]);
    // The creates go through the account's pacer in whatever order the
    // steps reach it: once `c`'s is at the server, every other task is
    // either created or announced (an intent) behind it.
    let started = wait_until(Duration::from_secs(30), || fake.creates("c") == 1);
    assert!(started, "{}", d.log());
    d.kill9();
    let mut again = env.daemon(&["--once"]);
    let status = again.wait(Duration::from_secs(90)).expect("run --once ends");
    let log = again.log();
    assert!(status.success(), "{log}");
    for name in ["a", "b", "c"] {
        assert_eq!(fake.creates(name), 1, "{name} created once\n{log}");
        assert_file(&env.job_dir("t").join(format!("{name}.out")), &result_of(name));
    }
    assert!(log.contains("the previous run stopped after announcing a call"), "{log}");
}

#[test]
fn a_failed_task_fails_its_item_with_the_reason_and_the_others_complete() {
    let fake = FakeTasks::start(1);
    fake.fail("bad");
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("t", &job(&fake, &["ok", "bad"]));
    let (status, log) = env.run_once(Duration::from_secs(90));
    assert_eq!(status.code(), Some(1), "{log}");
    let s = env.status(1).expect("status");
    assert_eq!(s.state.as_str(), "failed", "{log}");
    assert!(s.error.as_deref().is_some_and(|e| e.contains("the input is not an image")), "{s:?}");
    assert_file(&env.job_dir("t").join("ok.out"), &result_of("ok"));
    assert_eq!(fake.creates("bad"), 1);
}
