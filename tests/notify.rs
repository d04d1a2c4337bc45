//! Notifications through the real binary: a webhook receiver on loopback
//! that records what it gets (and fails or hangs on demand), an exec
//! target that writes its input to a file, a job that silences them, and
//! an undelivered notification that survives a restart.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::fileserver::FileServer;
use crate::support::http::{Handler, Request, Response, Server, lock};
use crate::util::{Env, wait_until};

/// A webhook receiver: the bodies it accepted; the first `fail` posts
/// answer 500, and with `hang` every post is held 30 s.
struct Hook {
    server: Server,
    got: Arc<Mutex<Vec<Value>>>,
    fail: Arc<AtomicUsize>,
}

impl Hook {
    fn start(fail: usize, hang: bool) -> Hook {
        let got = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(AtomicUsize::new(fail));
        let (g, f) = (Arc::clone(&got), Arc::clone(&fail));
        let handler: Handler = Arc::new(move |req: &Request| {
            if hang {
                std::thread::sleep(Duration::from_secs(30));
            }
            if f.load(Ordering::SeqCst) > 0 {
                f.fetch_sub(1, Ordering::SeqCst);
                return Response::text(500, "down");
            }
            if let Ok(v) = serde_json::from_slice::<Value>(&req.body) {
                lock(&g).push(v);
            }
            Response::text(200, "ok")
        });
        Hook { server: Server::start(handler), got, fail }
    }

    fn url(&self) -> String {
        format!("{}/hook?token=s3cret", self.server.base_url())
    }

    fn got(&self) -> Vec<Value> {
        lock(&self.got).clone()
    }
}

fn files(server: &FileServer) -> (String, String) {
    server.add("/a.bin", vec![7u8; 1000]);
    (server.url("/a.bin"), server.url("/missing.bin"))
}

#[test]
fn a_webhook_gets_done_and_failed_with_the_status_object_and_its_secret_is_never_logged() {
    let hook = Hook::start(0, false);
    let fs = FileServer::start();
    let (ok, missing) = files(&fs);
    let env = Env::new();
    env.config_defaults(json!({"notify": [{"events": ["done", "failed"], "webhook": hook.url()}]}));
    env.drop_job("good", &json!({"type": "http.files", "urls": [ok]}));
    env.drop_job("bad", &json!({"type": "http.files", "urls": [missing]}));
    let (_, log) = env.run_once(Duration::from_secs(60));
    let got = hook.got();
    assert_eq!(got.len(), 2, "{got:?}\n{log}");
    let by = |name: &str| got.iter().find(|v| v["name"] == name).cloned().unwrap_or(Value::Null);
    assert_eq!(
        (by("good")["event"].as_str(), by("good")["state"].as_str()),
        (Some("done"), Some("done")),
        "{got:?}"
    );
    assert_eq!(by("bad")["event"], "failed");
    assert!(by("bad")["error"].as_str().is_some_and(|e| e.contains("404")), "{got:?}");
    assert!(by("good")["tid"].as_u64().is_some());
    assert!(log.contains("notify: job") && !log.contains("s3cret"), "{log}");
}

#[test]
fn an_exec_target_gets_the_status_on_stdin_and_a_job_can_silence_or_replace_targets() {
    let fs = FileServer::start();
    let (ok, _) = files(&fs);
    let env = Env::new();
    let out = env.dir.path().join("events.log");
    let script =
        format!("cat >> '{0}'; echo \" $SPOOLFETCH_EVENT $SPOOLFETCH_NAME\" >> '{0}'", out.display());
    env.config_defaults(json!({"notify": [{"events": ["done"], "exec": ["/bin/sh", "-c", script]}]}));
    env.drop_job("loud", &json!({"type": "http.files", "urls": [ok.clone()]}));
    env.drop_job(
        "quiet",
        &json!({"type": "http.files", "urls": [ok.clone()], "notify": false, "name": "quiet"}),
    );
    let own = env.dir.path().join("own.log");
    let own_script = format!("cat > '{}'", own.display());
    env.drop_job(
        "own",
        &json!({"type": "http.files", "urls": [ok], "name": "own",
                "notify": [{"events": ["done"], "exec": ["/bin/sh", "-c", own_script]}]}),
    );
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(text.contains(" done loud"), "{text}\n{log}");
    assert!(!text.contains("quiet") && !text.contains(" done own"), "{text}");
    let own_got: Value =
        serde_json::from_str(&std::fs::read_to_string(&own).unwrap_or_default()).unwrap_or(Value::Null);
    assert_eq!(own_got["name"], "own", "{log}");
}

#[test]
fn a_failing_webhook_is_retried_and_an_undelivered_notification_survives_a_restart() {
    let hook = Hook::start(1000, false);
    let fs = FileServer::start();
    let (ok, _) = files(&fs);
    let env = Env::new();
    env.config_defaults(json!({"notify": [{"events": ["done"], "webhook": hook.url()}]}));
    env.drop_job("j", &json!({"type": "http.files", "urls": [ok]}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "a failing target never fails the job\n{log}");
    assert!(hook.got().is_empty());
    assert!(log.contains("failed (HTTP 500)"), "{log}");
    let outbox = env.dir.path().join("state/notify");
    assert_eq!(std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0), 1, "kept for the next start");
    // The target comes back; the next start delivers it, once.
    hook.fail.store(0, Ordering::SeqCst);
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert_eq!(hook.got().len(), 1, "{log}");
    assert_eq!(hook.got()[0]["event"], "done");
    assert_eq!(std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0), 0);
    // Retried within a run, too: one failure, then delivered 5 s later.
    hook.fail.store(1, Ordering::SeqCst);
    let d = env.daemon(&[]);
    env.drop_job("k", &json!({"type": "http.files", "urls": [fs.url("/a.bin")], "name": "k"}));
    let delivered = wait_until(Duration::from_secs(40), || hook.got().len() == 2);
    assert!(delivered, "{}", d.log());
    d.term();
}

#[test]
fn a_hanging_webhook_holds_up_neither_jobs_nor_the_exit_for_long() {
    let hook = Hook::start(0, true);
    let fs = FileServer::start();
    let (ok, _) = files(&fs);
    let env = Env::new();
    env.config_defaults(json!({"notify": [{"events": ["done"], "webhook": hook.url()}]}));
    for n in 0..3 {
        env.drop_job(
            &format!("j{n}"),
            &json!({"type": "http.files", "urls": [ok.clone()], "name": format!("j{n}")}),
        );
    }
    let start = Instant::now();
    let (status, log) = env.run_once(Duration::from_secs(90));
    assert!(status.success(), "{log}");
    assert!(start.elapsed() < Duration::from_secs(45), "{:?}\n{log}", start.elapsed());
    assert_eq!(env.statuses().iter().filter(|s| s.state.as_str() == "done").count(), 3);
}

#[test]
fn bad_targets_are_refused_with_the_key_that_is_wrong() {
    let env = Env::new();
    env.config_defaults(json!({"notify": [{"events": ["finished"], "webhook": "https://x"}]}));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("notify[0]") && log.contains("unknown event"), "{log}");
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job(
        "j",
        &json!({"type": "http.files", "urls": ["http://127.0.0.1:9/a"], "notify": [{"events": ["done"]}]}),
    );
    let (_, _) = env.run_once(Duration::from_secs(30));
    let failed = env.files_in("failed");
    assert!(failed.iter().any(|f| f.ends_with(".reason") || f.contains("j")), "{failed:?}");
}

#[test]
fn a_job_that_waits_is_told_once_per_reason_across_runs() {
    use crate::support::picwish::FakePicwish;
    let fake = FakePicwish::start(&["k"]);
    fake.balance("k", 0);
    let env = Env::new();
    let root = env.dir.path().join("in");
    std::fs::create_dir_all(&root).expect("mkdir");
    // A 1×1 PNG.
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xff\xff?\0\x05\xfe\x02\xfe\xa7\x35\x81\x84\0\0\0\0IEND\xaeB`\x82";
    std::fs::write(root.join("a.png"), png).expect("write");
    let out = env.dir.path().join("events.log");
    let script = format!("echo \"$SPOOLFETCH_EVENT $SPOOLFETCH_ERROR\" >> '{}'", out.display());
    env.config_defaults(json!({
        "input_roots": [root.display().to_string()],
        "picwish": {"api_url": fake.api_url(), "api_key": "k"},
        "notify": [{"events": ["waiting"], "exec": ["/bin/sh", "-c", script]}],
    }));
    env.drop_job("p", &json!({"type": "picwish.process", "op": "remove_background", "input_dir": root.display().to_string()}));
    for _ in 0..2 {
        let (_, log) = env.run_once(Duration::from_secs(60));
        assert!(log.contains("credits are used up"), "{log}");
    }
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("waiting ") && text.contains("credits"), "{text}");
}

#[test]
fn a_failed_run_of_a_recurring_job_sends_recurring_failed_and_the_series_goes_on() {
    let hook = Hook::start(0, false);
    let fs = FileServer::start();
    let (ok, missing) = files(&fs);
    let env = Env::new();
    env.config_defaults(json!({
        "notify": [{"events": ["done", "failed", "recurring_failed"], "webhook": hook.url()}]
    }));
    env.drop_job("good", &json!({"type": "http.files", "urls": [ok], "every": "1h"}));
    env.drop_job("bad", &json!({"type": "http.files", "urls": [missing], "every": "1h"}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "a failed run fails `run --once`: {log}");
    assert!(wait_until(Duration::from_secs(10), || hook.got().len() >= 2), "{:?}\n{log}", hook.got());
    let got = hook.got();
    let by = |name: &str| got.iter().find(|v| v["name"] == name).cloned().unwrap_or(Value::Null);
    assert_eq!(by("good")["event"], "done", "{got:?}");
    assert_eq!(by("bad")["event"], "recurring_failed", "{got:?}");
    assert!(
        by("bad")["schedule"]["last_run"]["error"].as_str().is_some_and(|e| e.contains("404")),
        "{got:?}"
    );
    assert_eq!(got.len(), 2, "{got:?}");
    // Both series go on: neither file was filed as ended.
    assert!(env.files_in("done").is_empty() && env.files_in("failed").is_empty(), "{log}");
}

#[test]
fn a_job_file_that_is_refused_sends_failed_with_the_reason() {
    let hook = Hook::start(0, false);
    let env = Env::new();
    env.config_defaults(json!({"notify": [{"events": ["failed"], "webhook": hook.url()}]}));
    env.drop_raw("broken", b"{\"type\": \"http.files\", \"urls\": [");
    env.drop_job("typo", &json!({"type": "http.files", "urls": ["http://127.0.0.1:9/a"], "max_item": 3}));
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(wait_until(Duration::from_secs(10), || hook.got().len() >= 2), "{:?}\n{log}", hook.got());
    let got = hook.got();
    let by = |name: &str| got.iter().find(|v| v["name"] == name).cloned().unwrap_or(Value::Null);
    assert_eq!(by("broken")["event"], "failed", "{got:?}");
    assert_eq!(by("broken")["state"], "failed", "{got:?}");
    assert!(by("typo")["error"].as_str().is_some_and(|e| e.contains("max_items")), "{got:?}");
}
