//! The one-shot `status` table through the real binary: whole lines and
//! no escapes through a pipe, 80 columns and colours in a pseudo-terminal
//! (none with `NO_COLOR`), absolute save paths, `--state` and `--active`
//! (with `--json` too), and `spoolfetch prune`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use spoolfetch::job::{JobState, JobStatus, unix_now};
use spoolfetch::spool::{Spool, write_status};

use crate::support::fileserver::FileServer;
use crate::util::{Env, bin, hermetic};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A day in seconds.
const DAY: u64 = 86_400;

/// Writes job `tid`'s status: `state`, ended (or last updated) `age`
/// seconds ago, with `error`; its file goes where a job in that state is.
fn job(env: &Env, tid: u64, name: &str, state: JobState, age: u64, error: Option<&str>) {
    let spool = Spool::new(&env.spool);
    spool.ensure("a").expect("layout");
    let file = format!("{name}.json");
    let mut s = JobStatus::claimed(tid, name, "http.files", &env.save.display().to_string(), "a", &file);
    s.state = state;
    s.stage = if state.is_terminal() { "finished" } else { "download" }.into();
    s.total = 3;
    s.now = 1;
    s.error = error.map(str::to_string);
    s.updated = unix_now() - age;
    write_status(&spool, &s).expect("status");
    std::fs::write(spool.state_dir(tid).join("checkpoint.json"), b"{}").expect("checkpoint");
    let claimed = Spool::claimed_name(tid, &file);
    let dir = match state {
        JobState::Done => spool.done_dir(),
        JobState::Failed | JobState::Cancelled => spool.failed_dir(),
        _ => spool.work_dir("a"),
    };
    std::fs::write(dir.join(&claimed), br#"{"type":"http.files","urls":[]}"#).expect("job file");
    if matches!(state, JobState::Failed | JobState::Cancelled) {
        std::fs::write(dir.join(format!("{claimed}.reason")), format!("{}\n", error.unwrap_or("failed")))
            .expect("reason");
    }
}

/// A spool with a done, a failed (long reason), a waiting and a paused
/// job, and a job file not claimed yet.
fn sample() -> Env {
    let env = Env::new();
    job(&env, 1, "pictures", JobState::Done, 40 * DAY, None);
    let reason = format!("HTTP 404 from example.org for {}", "every remaining file ".repeat(4).trim_end());
    job(&env, 2, "broken-downloads-with-a-long-name", JobState::Failed, 40 * DAY, Some(&reason));
    job(&env, 3, "pixiv-bookmarks", JobState::Queued, 0, Some("waiting: a Pixiv login (pixiv login)"));
    job(&env, 4, "held", JobState::Paused, 0, None);
    env.drop_job("later", &json!({"type": "http.files", "urls": ["http://127.0.0.1:9/x"]}));
    env
}

/// `status ARGS` in a pseudo-terminal (`script`) with `envs`: what the
/// terminal showed.
fn in_pty(env: &Env, args: &[&str], envs: &[(&str, &str)]) -> String {
    let line = std::iter::once(bin().display().to_string())
        .chain(["status", "--spool"].into_iter().map(str::to_string))
        .chain(std::iter::once(env.spool.display().to_string()))
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = hermetic(Command::new("script"));
    cmd.current_dir(env.dir.path()).args(["-q", "-e", "-c", &line, "/dev/null"]);
    cmd.env_remove("RUST_LOG").env_remove("NO_COLOR").env_remove("COLUMNS");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("script");
    assert!(out.status.success(), "{}", text(&out.stdout));
    text(&out.stdout).replace("\r\n", "\n")
}

/// `line` without its SGR colour sequences.
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('m').map_or(after.len(), |j| j + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn piped_rows_are_whole_lines_without_escapes_and_terminals_get_80_columns_in_colour() {
    let env = sample();
    let out = env.cli(&["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let piped = text(&out.stdout);
    assert!(!piped.contains('\x1b'), "{piped:?}");
    let failed = piped.lines().find(|l| l.contains("broken-downloads")).unwrap_or_else(|| panic!("{piped}"));
    assert!(failed.chars().count() > 80 && failed.contains(" http.files "), "a whole row: {failed}");
    assert!(
        failed
            .ends_with("every remaining file every remaining file every remaining file every remaining file")
    );
    assert!(failed.contains(&env.save.display().to_string()), "{failed}");
    assert_eq!(piped.lines().count(), 6, "a header, four jobs and the unclaimed file: {piped}");

    for tty in [in_pty(&env, &[], &[("COLUMNS", "80")]), in_pty(&env, &[], &[])] {
        // The note on stderr (a message, not a row) wraps as messages do.
        for l in tty.lines().filter(|l| !l.starts_with("no daemon is running")) {
            assert!(plain(l).chars().count() <= 80, "wider than 80: {l:?}");
        }
        let red = tty.lines().find(|l| l.contains("broken-down")).unwrap_or_else(|| panic!("{tty}"));
        assert!(red.starts_with("\x1b[31m") && red.ends_with("\x1b[0m"), "{red:?}");
        let yellow = tty.lines().find(|l| l.contains("pixiv-bookmarks")).unwrap_or_else(|| panic!("{tty}"));
        assert!(yellow.starts_with("\x1b[33m"), "{yellow:?}");
        assert!(tty.contains("\x1b[33m       error: waiting: a Pixiv login"), "its details too: {tty:?}");
        let done = tty.lines().find(|l| l.contains("pictures")).unwrap_or_else(|| panic!("{tty}"));
        assert!(!done.contains('\x1b') && done.ends_with("downloads"), "{done:?}");
        assert!(!tty.contains("http.files"), "TYPE is dropped at 80 columns: {tty}");
    }
    let wide = in_pty(&env, &[], &[("COLUMNS", "200")]);
    assert!(wide.contains(" http.files ") && wide.contains(&env.save.display().to_string()), "{wide}");
    let bare = in_pty(&env, &[], &[("COLUMNS", "80"), ("NO_COLOR", "1")]);
    assert!(!bare.contains('\x1b') && bare.contains("broken-down"), "{bare:?}");
}

#[test]
fn relative_save_paths_show_absolute() {
    let env = Env::new();
    let spool = Spool::new(&env.spool);
    let s = JobStatus::claimed(1, "rel", "http.files", "rel/dl", "a", "rel.json");
    write_status(&spool, &s).expect("status");
    let out = env.cli(&["status"]);
    let want = std::env::current_dir().expect("cwd").join("rel/dl").display().to_string();
    assert!(text(&out.stdout).contains(&format!("  {want}")), "{}", text(&out.stdout));
}

/// The TIDs `status ARGS --json` lists.
fn tids(env: &Env, args: &[&str]) -> Vec<u64> {
    let mut all = vec!["status", "--json"];
    all.extend_from_slice(args);
    let out = env.cli(&all);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    rows.iter().filter_map(|r| r["tid"].as_u64()).collect()
}

/// The first column of `status ARGS`, header left out.
fn table_tids(env: &Env, args: &[&str]) -> Vec<String> {
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    let out = env.cli(&all);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn filters_by_state_and_active_in_the_table_and_in_json() {
    let env = sample();
    assert_eq!(tids(&env, &["--state", "failed"]), [2]);
    assert_eq!(tids(&env, &["--state", "done,failed"]), [1, 2]);
    assert_eq!(tids(&env, &["--state", "done", "--state", "failed"]), [1, 2]);
    assert_eq!(tids(&env, &["--state", "waiting"]), [3]);
    assert_eq!(tids(&env, &["--state", "queued"]), [3], "a waiting job keeps its state");
    assert_eq!(tids(&env, &["--active"]), [3, 4]);
    assert_eq!(tids(&env, &[]), [1, 2, 3, 4]);
    assert_eq!(table_tids(&env, &["--state", "failed"]), ["2"]);
    assert_eq!(table_tids(&env, &["--active"]), ["3", "4", "-"], "the unclaimed file is queued");
    assert_eq!(table_tids(&env, &["--state", "paused,cancelled"]), ["4"]);
    let bad = env.cli(&["status", "--state", "broken"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    let both = env.cli(&["status", "--state", "failed", "--active"]);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn prune_removes_old_ended_jobs_and_nothing_else() {
    let env = sample();
    job(&env, 5, "recent", JobState::Done, DAY, None);
    job(&env, 6, "old-cancelled", JobState::Cancelled, 31 * DAY, Some("cancelled"));
    job(&env, 7, "old-running", JobState::Running, 60 * DAY, None);
    // Requeued by `retry` (its file in retry/), its status not yet queued.
    job(&env, 8, "requeued", JobState::Failed, 60 * DAY, Some("x"));
    let spool = Spool::new(&env.spool);
    std::fs::create_dir_all(spool.retry_dir()).expect("retry/");
    let name = Spool::claimed_name(8, "requeued.json");
    std::fs::rename(spool.failed_dir().join(&name), spool.retry_dir().join(&name)).expect("requeue");
    std::fs::remove_file(spool.failed_dir().join(format!("{name}.reason"))).expect("as retry does");
    // A state folder whose job file is gone, and one a prune was removing.
    job(&env, 9, "orphan", JobState::Done, 50 * DAY, None);
    std::fs::remove_file(spool.done_dir().join(Spool::claimed_name(9, "orphan.json"))).expect("rm");
    std::fs::create_dir_all(spool.state_root().join(".pruned-10")).expect("trash");
    // A status without its time (an older version's) is dated by its file:
    // written just now, it is kept.
    job(&env, 11, "undated", JobState::Done, unix_now(), None);
    std::fs::create_dir_all(env.job_dir("pictures")).expect("downloads");
    std::fs::write(env.job_dir("pictures").join("a.jpg"), b"jpg").expect("download");
    let listing = |env: &Env| (env.files_in("done"), env.files_in("failed"), env.files_in("state"));
    let before = listing(&env);

    let dry = env.cli(&["prune", "--older-than", "30d", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let said = text(&dry.stdout);
    assert_eq!(listing(&env), before, "a dry run removes nothing");
    for tid in [1, 2, 6, 9] {
        assert!(said.contains(&format!("would remove job {tid} (")), "{said}");
    }
    assert!(said.contains("would remove job 2 (failed, ended 40 d ago): failed/2.broken"), "{said}");
    assert!(!said.contains("job 5 ") && !said.contains("job 7 ") && !said.contains("job 8 "), "{said}");

    let out = env.cli(&["prune", "--older-than", "30d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert_eq!(summary.lines().count(), 1, "{summary}");
    assert!(
        summary.starts_with(
            "removed 4 jobs that ended more than 30d ago (2 done, 1 failed, 1 cancelled); 2 newer ended jobs kept; removed 1 state folder left by an interrupted prune"
        ),
        "{summary}"
    );
    assert_eq!(
        env.files_in("done"),
        [Spool::claimed_name(11, "undated.json"), Spool::claimed_name(5, "recent.json")]
    );
    assert!(env.files_in("failed").is_empty(), "{:?}", env.files_in("failed"));
    assert_eq!(env.files_in("state"), ["11", "3", "4", "5", "7", "8"]);
    assert_eq!(
        env.files_in("work/a").len(),
        3,
        "queued, paused and running jobs stay: {:?}",
        env.files_in("work/a")
    );
    assert!(env.job_dir("pictures").join("a.jpg").exists(), "downloads are never touched");
    assert!(env.spool.join("later.json").exists(), "job files not claimed yet stay");
    let again = env.cli(&["prune", "--older-than", "30d"]);
    assert!(text(&again.stdout).starts_with("removed 0 jobs that ended"), "{}", text(&again.stdout));
}

#[test]
fn prune_refuses_a_missing_spool_and_ages_without_a_unit() {
    let env = Env::new();
    let missing = env.dir.path().join("nowhere");
    let out = hermetic(Command::new(bin()))
        .args(["prune", "--older-than", "1d", "--spool"])
        .arg(&missing)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("does not exist") && !Path::new(&missing).exists());
    for bad in ["30", "30x", "d"] {
        let out = env.cli(&["prune", "--older-than", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out.stderr));
    }
}

#[test]
fn a_job_run_by_the_daemon_is_pruned_with_its_state_and_its_download_kept() {
    let server = FileServer::start();
    server.add("/a.bin", vec![7; 1000]);
    let env = Env::new();
    env.drop_job("one", &json!({"type": "http.files", "urls": [server.url("/a.bin")]}));
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    let shown = text(&env.cli(&["status"]).stdout);
    assert!(shown.contains("1/1 file "), "singular: {shown}");
    let keep = env.cli(&["prune", "--older-than", "1h"]);
    assert!(text(&keep.stdout).starts_with("removed 0 jobs"), "{}", text(&keep.stdout));
    let out = env.cli(&["prune", "--older-than", "0s"]);
    assert!(
        text(&out.stdout).starts_with("removed 1 job that ended more than 0s ago (1 done"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        env.files_in("done").is_empty() && env.files_in("state").is_empty(),
        "{:?}",
        env.files_in("state")
    );
    assert!(env.job_dir("one").join("a.bin").exists());
    assert_eq!(text(&env.cli(&["status"]).stdout).lines().count(), 1, "the header only");
}
