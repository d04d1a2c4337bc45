//! The command line as a user meets it: help, usage errors, configuration
//! validation, submit, `types`, and the example job files.

use std::fs;

use serde_json::json;

use crate::util::{Env, bin};

/// The subcommands a `--help` text lists (without `help`).
fn commands_in(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

#[test]
fn every_command_has_help() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(bin()).args(args).arg("--help").output().expect("run");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success() && text.contains("Usage"), "{args:?} --help: {text}");
        text
    };
    // Taken from the help itself, so that a new command cannot skip this.
    let top = commands_in(&help(&[]));
    for want in ["run", "submit", "types", "status", "pause", "resume", "cancel", "retry", "demo", "pixiv"] {
        assert!(top.iter().any(|c| c == want), "{want} missing from {top:?}");
    }
    let mut checked = 0;
    for cmd in &top {
        for sub in commands_in(&help(&[cmd])) {
            help(&[cmd, &sub]);
            checked += 1;
        }
    }
    assert!(checked >= 2, "pixiv login and refresh have help too");
}

#[test]
fn bad_usage_exits_2() {
    let out = std::process::Command::new(bin()).args(["run", "--bogus"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = std::process::Command::new(bin()).args(["pause", "notanumber"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_errors_are_clear_and_exit_2() {
    let env = Env::new();
    let cases = [
        (json!({"concurency": 3}), "unknown key `concurency` (did you mean `concurrency`?)"),
        (json!({"concurrency": "lots"}), "key `concurrency`: expected an integer from 1 to 256"),
        (json!({"proxy_mode": 1}), "no `proxy` URL"),
        (json!({"proxy_mode": 1, "proxy": "gopher://x"}), "expected an http://"),
        (json!({"timeout_increment": "yes"}), "key `timeout_increment`: expected true or false"),
        (json!({"ca_file": "/nonexistent/ca.pem"}), "ca"),
    ];
    for (cfg, want) in cases {
        env.config(cfg.clone());
        let out = env.cli(&["run", "--once"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cfg}: {err}");
        assert!(err.contains(want), "{cfg}: stderr was {err}");
        assert_eq!(err.lines().filter(|l| l.starts_with("spoolfetch:")).count(), 1, "one line: {err}");
    }
    // Environment variables are checked too and named in the message.
    env.config(json!({}));
    let out = crate::util::hermetic(std::process::Command::new(bin()))
        .args(["run", "--once", "--spool"])
        .arg(&env.spool)
        .env("SPOOLFETCH_CONCURRENCY", "zero")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SPOOLFETCH_CONCURRENCY"));
}

#[test]
fn provider_sections_are_checked_from_their_declarations() {
    let env = Env::new();
    for (cfg, want) in [
        (json!({"octoparse": {"burst": 500}}), "key `octoparse.burst`: expected a number from 1 to 100"),
        (
            json!({"octoparse": {"requests_per_sec": 0}}),
            "key `octoparse.requests_per_sec`: expected a number above 0",
        ),
        (
            json!({"pixiv": {"refresh_tokn": "x"}}),
            "unknown key `pixiv.refresh_tokn` (did you mean `pixiv.refresh_token`?)",
        ),
        (
            json!({"pixiv": {"ugoira_format": "mp4"}}),
            "key `pixiv.ugoira_format`: expected one of zip, gif, apng, webp",
        ),
        (json!({"pixiv": {"sidecar": "yes"}}), "key `pixiv.sidecar`: expected true or false"),
        (json!({"pixiv": []}), "key `pixiv` must be an object"),
    ] {
        env.config(cfg.clone());
        let out = env.cli(&["run", "--once"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cfg}: {err}");
        assert!(err.contains(want), "{cfg}: stderr was {err}");
    }
    // A secret in the wrong type is not echoed; a variable is named.
    env.config(json!({"octoparse": {"password": 987654321}}));
    let err = String::from_utf8_lossy(&env.cli(&["run", "--once"]).stderr).into_owned();
    assert!(err.contains("octoparse.password") && !err.contains("987654321"), "{err}");
    env.config(json!({}));
    let out = crate::util::hermetic(std::process::Command::new(bin()))
        .args(["run", "--once", "--spool"])
        .arg(&env.spool)
        .env("SPOOLFETCH_OCTOPARSE_USERNAME", "me")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn secrets_never_reach_error_messages() {
    let env = Env::new();
    env.config(json!({"proxy_mode": 1, "proxy": "socks9://user:hunter2secret@proxy:1080"}));
    let out = env.cli(&["run", "--once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(!err.contains("hunter2secret"), "{err}");
}

#[test]
fn submit_writes_a_checked_job_atomically() {
    let env = Env::new();
    let out = env.cli(&[
        "submit",
        "http.files",
        "urls=https://example.org/a.jpg",
        "urls=https://example.org/b.jpg",
        "--name",
        "pics",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(path.ends_with("pics.json"), "{path}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "job files may hold tokens");
    }
    let job: serde_json::Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    assert_eq!(job["type"], "http.files");
    assert_eq!(job["urls"].as_array().map(Vec::len), Some(2));
    // A second job with the same name does not replace the first.
    let again = env.cli(&["submit", "http.files", "urls=https://example.org/c.jpg", "--name", "pics"]);
    assert!(again.status.success());
    let second = String::from_utf8_lossy(&again.stdout).trim().to_string();
    assert!(second.ends_with("pics-2.json"), "{second}");
    assert!(fs::read_to_string(&path).expect("first kept").contains("a.jpg"));
    // A bad job is refused before it reaches the spool.
    let out = env.cli(&["submit", "http.files", "urls=file:///etc/passwd"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only http and https"));
    for h in [
        r#"headers={"Content-Length":"5"}"#,
        r#"headers={"accept-encoding":"gzip"}"#,
        r#"headers={"RANGE":"bytes=0-"}"#,
    ] {
        let out = env.cli(&["submit", "http.files", "urls=https://example.org/a.jpg", h]);
        assert_eq!(out.status.code(), Some(2), "{h}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is set by the HTTP client") && err.lines().count() == 1, "{h}: {err}");
    }
    let out =
        env.cli(&["submit", "http.files", "urls=https://example.org/a.jpg", "--save-path", "/etc/cron.d"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("save_path /etc/cron.d is outside save_roots"));
    let out = env.cli(&["submit", "no.such.type"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("known types: http.files"));
    // No temporary file is left behind.
    let names: Vec<String> = fs::read_dir(&env.spool)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

/// A configuration with what every provider declares a job needs before
/// it can be planned (an account), from the providers' own declarations.
fn planning_config() -> spoolfetch::config::Config {
    let mut cfg = spoolfetch::config::Config::default_for(&|_| None);
    // Jobs that read local inputs are refused without input_roots.
    cfg.input_roots = vec![std::path::PathBuf::from("/tmp")];
    for spec in spoolfetch::providers::section_specs() {
        let example = spec.example();
        spec.check(&example, "example").unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        if !example.is_empty() {
            cfg.sections.insert(spec.name.to_string(), example);
        }
    }
    cfg
}

#[test]
fn every_job_type_has_an_example_that_plans() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/examples");
    let cfg = planning_config();
    let mut covered = std::collections::HashSet::new();
    for entry in fs::read_dir(&dir).expect("jobs/examples exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes = fs::read(&path).expect("read");
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let spec = spoolfetch::job::parse_job_bytes(
            &bytes,
            &stem,
            std::path::Path::new("/tmp"),
            &[std::path::PathBuf::from("/tmp"), std::path::PathBuf::from("/srv/spoolfetch/downloads")],
            &|t| spoolfetch::providers::find_job_type(t).is_some(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (provider, _) = spoolfetch::providers::find_job_type(&spec.job_type).expect("type");
        provider
            .plan(&spec, &spoolfetch::providers::PlanContext { config: &cfg })
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        covered.insert(spec.job_type.clone());
    }
    for p in spoolfetch::providers::PROVIDERS {
        for t in p.job_types() {
            assert!(covered.contains(t.name), "{} has no example in {}", t.name, dir.display());
        }
    }
}

#[test]
fn types_lists_every_job_type_and_key() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin()).args(args).output().expect("run");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = run(&["types"]);
    let json: serde_json::Value = serde_json::from_str(&run(&["types", "--json"])).expect("JSON");
    let listed = json.as_array().expect("an array");
    let mut n = 0;
    for p in spoolfetch::providers::PROVIDERS {
        for t in p.job_types() {
            assert!(text.lines().any(|l| l.starts_with(&format!("{}: {}", t.name, t.summary))), "{}", t.name);
            let entry = listed.iter().find(|e| e["type"] == t.name).unwrap_or_else(|| panic!("{}", t.name));
            for k in t.keys() {
                assert!(
                    text.lines().any(|l| l.trim_start().starts_with(&format!("{} ", k.name))),
                    "{}.{} missing from the text",
                    t.name,
                    k.name
                );
                let key = entry["keys"].as_array().and_then(|ks| ks.iter().find(|x| x["name"] == k.name));
                let key = key.unwrap_or_else(|| panic!("{}.{} missing from --json", t.name, k.name));
                assert_eq!(key["required"], k.required, "{}.{}", t.name, k.name);
                assert_eq!(key["doc"], k.doc);
            }
            n += 1;
        }
    }
    assert_eq!(listed.len(), n, "no other types");
    // One type alone; an unknown one is a usage error naming the known ones.
    let one = run(&["types", "http.files"]);
    assert!(one.contains("urls") && !one.contains("pixiv.user"), "{one}");
    let out = std::process::Command::new(bin()).args(["types", "no.such"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("known types: http.files"));
    let help = std::process::Command::new(bin()).args(["submit", "--help"]).output().expect("run");
    assert!(String::from_utf8_lossy(&help.stdout).contains("spoolfetch types"));
}

#[test]
fn status_of_an_empty_spool() {
    let env = Env::new();
    let out = env.cli(&["status", "--json"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let out = env.cli(&["pause", "7"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no job with TID 7"));
}
