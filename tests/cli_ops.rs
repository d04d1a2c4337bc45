//! The command line as an operator meets it from cron, systemd or a
//! terminal: timestamped logs, `-q`/`-v`, the start-up line, `config`,
//! and spools that must exist (`init`, `SPOOLFETCH_SPOOL`).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::fileserver::FileServer;
use crate::util::{Env, bin, bytes, hermetic};

/// Runs the binary with `args` through pipes, without `RUST_LOG` (the
/// defaults a user gets), in `cwd`.
fn plain(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = hermetic(Command::new(bin()));
    cmd.current_dir(cwd).args(args).env_remove("RUST_LOG").env_remove("JOURNAL_STREAM");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run spoolfetch")
}

/// Runs `spoolfetch ARGS` in a pseudo-terminal (`script`), as from an
/// interactive shell, and returns everything the terminal showed.
pub fn in_pty(cwd: &Path, args: &[&str]) -> (Option<i32>, String) {
    let line = std::iter::once(bin().display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = hermetic(Command::new("script"));
    cmd.current_dir(cwd).args(["-q", "-e", "-c", &line, "/dev/null"]);
    cmd.env_remove("RUST_LOG").env_remove("JOURNAL_STREAM");
    let out = cmd.output().expect("script");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn log_lines_carry_timestamps_and_the_start_up_line_says_where_things_are() {
    let env = Env::new();
    env.config_defaults(json!({}));
    let spool = env.spool.display().to_string();
    let out = plain(env.dir.path(), &["run", "--once", "--spool", &spool], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = text(&out.stderr);
    let lines: Vec<&str> = log.lines().collect();
    assert!(!lines.is_empty(), "info lines by default");
    for l in &lines {
        // [2026-12-08T00:20:05.123Z INFO ] …
        let stamp = l.strip_prefix('[').and_then(|r| r.get(..24)).unwrap_or("");
        let ok = stamp.len() == 24
            && stamp.as_bytes()[4] == b'-'
            && stamp.as_bytes()[10] == b'T'
            && stamp.ends_with('Z')
            && stamp[..4].parse::<u32>().is_ok_and(|y| y >= 2024);
        assert!(ok, "no timestamp on {l:?}");
    }
    let start = lines.iter().find(|l| l.contains("watching")).expect("start-up line");
    let config = env.spool.join("spoolfetch.json");
    assert!(start.contains(&format!("config {}", config.display())), "{start}");
    assert!(start.contains(&format!("save_path {}", env.save.display())), "{start}");
    assert!(start.contains(&format!("state_dir {}", env.dir.path().join("state").display())), "{start}");

    // Under journald: priorities, no timestamps.
    let out = plain(env.dir.path(), &["run", "--once", "--spool", &spool], &[("JOURNAL_STREAM", "8:1")]);
    let log = text(&out.stderr);
    assert!(log.lines().all(|l| l.starts_with("<6>") || l.starts_with("<4>")), "{log}");

    // A relative save_path is shown absolute, resolved against the
    // working folder; without a config file the line says so.
    std::fs::remove_file(&config).expect("rm config");
    let out = plain(env.dir.path(), &["run", "--once", "--spool", "jobs"], &[("SPOOLFETCH_STATE_DIR", "st")]);
    let log = text(&out.stderr);
    let want = format!(
        "config none (defaults), save_path {}, state_dir {}",
        env.dir.path().join("downloads").display(),
        env.dir.path().join("st").display()
    );
    assert!(log.contains(&want), "{want}\n{log}");
}

#[test]
fn quiet_prints_nothing_and_verbose_shows_debug_in_a_terminal_and_through_pipes() {
    let env = Env::new();
    env.config_defaults(json!({}));
    let spool = env.spool.display().to_string();
    let out = plain(env.dir.path(), &["-q", "run", "--once", "--spool", &spool], &[]);
    assert!(out.status.success());
    assert_eq!((text(&out.stdout), text(&out.stderr)), (String::new(), String::new()));
    let (code, shown) = in_pty(env.dir.path(), &["run", "--once", "--quiet", "--spool", &spool]);
    assert_eq!(code, Some(0));
    assert_eq!(shown, "", "silent on a terminal too");
    // Without -q the same run says what it did, on the terminal too.
    let (_, shown) = in_pty(env.dir.path(), &["run", "--once", "--spool", &spool]);
    assert!(shown.contains("INFO") && shown.contains("finished: 0 done"), "{shown}");
    // A warning still shows under -q.
    let out = plain(env.dir.path(), &["-q", "status", "--spool", "missing"], &[]);
    assert!(text(&out.stderr).contains("does not exist"));
    // -v: debug lines (every request and its outcome); RUST_LOG=error
    // loses to it.
    let server = FileServer::start();
    server.add("/a.bin", bytes(1, 100));
    env.drop_job("v", &json!({"type": "http.files", "urls": [server.url("/a.bin")]}));
    env.drop_job("p", &json!({"type": "demo.gallery", "api": server.base_url()}));
    let out = plain(env.dir.path(), &["run", "-v", "--once", "--spool", &spool], &[("RUST_LOG", "error")]);
    assert!(text(&out.stderr).contains(" DEBUG] "), "{}", text(&out.stderr));
    let log = text(&out.stderr);
    assert!(log.contains("done: 1 file, 100 B in ") && log.contains(" ms; checkpoint "), "{log}");
    let out = plain(env.dir.path(), &["run", "--once", "--spool", &spool], &[]);
    assert!(!text(&out.stderr).contains("DEBUG"), "info by default");
}

#[test]
fn small_things_help_help_dotted_keys_and_demo_files_0() {
    let env = Env::new();
    let cwd = env.dir.path();
    let out = plain(cwd, &["help", "--help"], &[]);
    assert!(
        out.status.success() && text(&out.stdout).contains("Usage: spoolfetch help"),
        "{}",
        text(&out.stderr)
    );
    let out = plain(cwd, &["help", "pixiv", "refresh"], &[]);
    assert!(out.status.success() && text(&out.stdout).contains("Usage: spoolfetch pixiv refresh"));
    let out = plain(cwd, &["help", "nope"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = plain(cwd, &["demo", "--files", "0"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("0 is not in 1..=10000"), "{}", text(&out.stderr));
    env.config_defaults(json!({"pixiv.refresh_token": "abc"}));
    let spool = env.spool.display().to_string();
    let out = plain(cwd, &["run", "--once", "--spool", &spool], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(r#"unknown key `pixiv.refresh_token`: a dotted key is written nested, as {"pixiv": {"refresh_token": …}}"#), "{err}");
    assert!(!err.contains("abc"));
}

#[test]
fn config_prints_each_value_with_its_source_and_masks_secrets() {
    let env = Env::new();
    env.config_defaults(json!({"concurrency": 3, "pixiv": {"template": "{id}.{ext}"}}));
    let spool = env.spool.display().to_string();
    let envs = [("SPOOLFETCH_TIMEOUT", "7"), ("SPOOLFETCH_PIXIV_REFRESH_TOKEN", "tok-very-secret-123")];
    let out = plain(env.dir.path(), &["config", "--spool", &spool], &envs);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let file = env.spool.join("spoolfetch.json");
    assert!(shown.contains(&format!("# config file: {}", file.display())), "{shown}");
    let line = |k: &str| {
        shown
            .lines()
            .find(|l| l.split_whitespace().next() == Some(k))
            .unwrap_or_else(|| panic!("{k}: {shown}"))
    };
    assert!(line("concurrency").contains(&format!("3  (config file {})", file.display())), "{shown}");
    assert!(line("timeout_secs").ends_with("7  (environment variable SPOOLFETCH_TIMEOUT)"), "{shown}");
    assert!(line("retries").ends_with("(default)"), "{shown}");
    assert!(line("pixiv.template").contains("\"{id}.{ext}\""), "{shown}");
    assert!(line("pixiv.refresh_token").contains("\"***\""), "{shown}");
    assert!(!shown.contains("very-secret"), "{shown}");
    let out = plain(env.dir.path(), &["config", "--json", "--spool", &spool, "--config"], &[]);
    assert_eq!(out.status.code(), Some(2), "--config needs a value");
    let out = plain(env.dir.path(), &["config", "--json", "--spool", &spool], &envs);
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    let token = all.iter().find(|s| s["key"] == "pixiv.refresh_token").expect("token");
    assert_eq!(token["value"], "***");
    assert_eq!(token["source"], "environment variable SPOOLFETCH_PIXIV_REFRESH_TOKEN");
    assert!(!text(&out.stdout).contains("very-secret"));
}

#[test]
fn a_missing_spool_is_refused_until_init_creates_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    let missing = cwd.join("nas/jobs");
    let m = missing.display().to_string();
    for args in [
        vec!["run", "--once", "--spool", &m],
        vec!["run", "--spool", &m],
        vec!["submit", "http.files", "urls=https://example.org/a", "--spool", &m],
        vec!["status", "--spool", &m],
        vec!["pause", "1", "--spool", &m],
        vec!["cancel", "1", "--spool", &m],
        vec!["retry", "1", "--spool", &m],
        vec!["wait", "1", "--spool", &m],
    ] {
        let out = plain(cwd, &args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("spool folder {m} does not exist")) && err.contains("spoolfetch init"),
            "{err}"
        );
        assert!(!cwd.join("nas").exists(), "{args:?} created the spool");
    }
    // The default spool, ./jobs, is refused the same way.
    let out = plain(cwd, &["run", "--once"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("spool folder jobs does not exist"));
    assert!(!cwd.join("jobs").exists());

    // A file is not a folder.
    std::fs::write(cwd.join("afile"), b"x").expect("write");
    for args in
        [vec!["run", "--once", "--spool", "afile"], vec!["status", "--spool", "afile"], vec!["init", "afile"]]
    {
        let out = plain(cwd, &args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("afile is not a folder"), "{}", text(&out.stderr));
    }

    // init creates it; then run and submit work.
    let out = plain(cwd, &["init", &m], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("spool {m} created")), "{}", text(&out.stdout));
    assert!(missing.join("done").is_dir() && missing.join("failed").is_dir());
    let out = plain(cwd, &["init", &m], &[]);
    assert!(out.status.success() && text(&out.stdout).contains("ready"));
    let out = plain(cwd, &["status", "--spool", &m], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn the_default_spool_comes_from_the_environment_or_the_config_file() {
    let env = Env::new();
    env.config_defaults(json!({}));
    let cwd = env.dir.path();
    let spool = env.spool.display().to_string();
    // $SPOOLFETCH_SPOOL: no --spool needed.
    let out = plain(
        cwd,
        &["submit", "demo.tasks", "api=http://127.0.0.1:9", "inputs=a", "--name", "e"],
        &[("SPOOLFETCH_SPOOL", &spool)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), env.spool.join("e.json").display().to_string());
    let out = plain(cwd, &["status"], &[("SPOOLFETCH_SPOOL", &spool)]);
    assert!(text(&out.stdout).contains("e.json"), "{}", text(&out.stdout));
    // The `spool` key of the file named by $SPOOLFETCH_CONFIG.
    let cfg = cwd.join("etc.json");
    let mut c: Value =
        serde_json::from_slice(&std::fs::read(env.spool.join("spoolfetch.json")).expect("read"))
            .expect("json");
    c["spool"] = json!(spool);
    std::fs::write(&cfg, serde_json::to_vec(&c).expect("json")).expect("write");
    let cfg_s = cfg.display().to_string();
    let out = plain(cwd, &["status"], &[("SPOOLFETCH_CONFIG", &cfg_s)]);
    assert!(out.status.success() && text(&out.stdout).contains("e.json"), "{}", text(&out.stderr));
    let out = plain(cwd, &["config"], &[("SPOOLFETCH_CONFIG", &cfg_s)]);
    assert!(text(&out.stdout).contains(&format!("# spool: {spool}")), "{}", text(&out.stdout));
    // --spool wins over both.
    let out = plain(
        cwd,
        &["status", "--spool", "elsewhere"],
        &[("SPOOLFETCH_SPOOL", &spool), ("SPOOLFETCH_CONFIG", &cfg_s)],
    );
    assert_eq!(out.status.code(), Some(2));
}
