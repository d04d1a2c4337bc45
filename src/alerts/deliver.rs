//! Delivering one notification: a webhook POST or a command.
//!
//! Owns the limits that keep a broken target harmless: a webhook gets 10 s
//! and its answer is read up to 64 KiB; a command runs without a shell,
//! gets the status object on stdin and its facts in its environment, has
//! its output thrown away (so megabytes on stdout cannot block it or the
//! daemon) and is killed after its time limit. Invariant: a failure is a
//! one-line reason, never a panic, and never names a webhook's secrets.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::target::{Event, Target, Via};
use crate::pacing::{ApiRequest, Body, send_once};

/// How long a webhook may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a command may run.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `status` (a job's status object) for `event` to `target`.
pub fn deliver(agent: &ureq::Agent, target: &Target, event: Event, status: &Value) -> Result<(), String> {
    match &target.via {
        Via::Webhook(url) => webhook(agent, url, event, status),
        Via::Exec(argv) => exec(argv, event, status, EXEC_TIMEOUT),
    }
}

/// The POST.
fn webhook(agent: &ureq::Agent, url: &str, event: Event, status: &Value) -> Result<(), String> {
    let mut body = status.clone();
    if let Some(m) = body.as_object_mut() {
        m.insert("event".into(), Value::String(event.name().into()));
    }
    let req = ApiRequest::new("POST", url)
        .header("Content-Type", "application/json")
        .header("User-Agent", concat!("spoolfetch/", env!("CARGO_PKG_VERSION")))
        .with_body(Body::Bytes(body.to_string().into_bytes()));
    let resp = send_once(agent, &req, WEBHOOK_TIMEOUT, 64 * 1024).map_err(|e| crate::http::describe(&e))?;
    if (200..300).contains(&resp.status) { Ok(()) } else { Err(format!("HTTP {}", resp.status)) }
}

/// The command, with a time limit.
pub fn exec(argv: &[String], event: Event, status: &Value, limit: Duration) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else { return Err("no program".into()) };
    let text = |k: &str| status[k].as_str().unwrap_or("").to_string();
    let mut child = Command::new(program)
        .args(args)
        .env("SPOOLFETCH_EVENT", event.name())
        .env("SPOOLFETCH_TID", status["tid"].as_u64().map_or(String::new(), |t| t.to_string()))
        .env("SPOOLFETCH_NAME", text("name"))
        .env("SPOOLFETCH_STATE", text("state"))
        .env("SPOOLFETCH_ERROR", text("error"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", crate::naming::escape_display(program)))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is fine: a broken pipe
        // is not its failure.
        let _ = stdin.write_all(status.to_string().as_bytes());
    }
    let until = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("the command exited with {st}")),
            Ok(None) if Instant::now() >= until => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the command ran longer than {} s and was stopped", limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for the command: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn a_command_gets_the_status_on_stdin_and_the_facts_in_its_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("got");
        let script = format!(
            "cat > '{}'; echo \"$SPOOLFETCH_EVENT $SPOOLFETCH_TID $SPOOLFETCH_NAME\" >> '{}'",
            out.display(),
            out.display()
        );
        let status = json!({"tid": 7, "name": "cats", "state": "done", "error": null});
        exec(&sh(&script), Event::Done, &status, Duration::from_secs(5)).expect("ran");
        let got = std::fs::read_to_string(&out).expect("written");
        assert!(got.starts_with("{") && got.contains("\"cats\"") && got.ends_with("done 7 cats\n"), "{got}");
    }

    #[test]
    fn a_hanging_missing_failing_or_chatty_command_is_a_reason_not_a_hang() {
        let s = json!({"tid": 1});
        let start = Instant::now();
        let e = exec(&sh("sleep 30"), Event::Failed, &s, Duration::from_millis(300)).expect_err("stopped");
        assert!(e.contains("longer than") && start.elapsed() < Duration::from_secs(5), "{e}");
        let e = exec(&["/nonexistent/notifier".into()], Event::Failed, &s, Duration::from_secs(1))
            .expect_err("missing");
        assert!(e.contains("cannot run"), "{e}");
        let e = exec(&sh("exit 3"), Event::Failed, &s, Duration::from_secs(5)).expect_err("failed");
        assert!(e.contains("exit"), "{e}");
        exec(&sh("head -c 20000000 /dev/zero"), Event::Done, &s, Duration::from_secs(20))
            .expect("output is dropped");
    }
}
