//! Recurring jobs (`every`, `cron`, `jitter`): what is refused, at
//! `submit` and at claim, with which reason.

use std::fs;
use std::time::Duration;

use serde_json::json;

use crate::util::Env;

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

#[test]
fn daemon_recur_valid_recurring_jobs_are_refused_until_scheduled() {
    let env = Env::new();
    env.config_defaults(json!({}));
    let out = env.cli(&["submit", "http.files", "urls=http://127.0.0.1:9/a", "every=1s", "--name", "r"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("does not schedule recurring jobs yet"), "{}", text(&out.stderr));
    env.drop_job(
        "c",
        &json!({"type": "http.files", "urls": ["http://127.0.0.1:9/a"], "cron": "*/5 * * * *"}),
    );
    let (_, log) = env.run_once(Duration::from_secs(60));
    let failed = env.files_in("failed");
    let f =
        failed.iter().find(|f| f.ends_with(".c.json.reason")).unwrap_or_else(|| panic!("{failed:?}\n{log}"));
    let reason = fs::read_to_string(env.spool.join("failed").join(f)).expect("reason");
    assert!(reason.contains("does not schedule recurring jobs yet"), "{reason}");
}
