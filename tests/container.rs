//! The container image, checked without building it (the CI machine has no
//! Docker daemon): the Dockerfile's lint rules, its commands and
//! variables against the real binary, the entry point run for real.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::util::{Env, bin, hermetic, wait_until};

fn repo(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Dockerfile's instructions, continuation lines joined.
fn instructions() -> Vec<(String, String)> {
    let text = repo("Dockerfile").replace("\\\n", " ");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' ').map(|(k, v)| (k.to_ascii_uppercase(), v.trim().to_string())))
        .collect()
}

/// An exec-form instruction's arguments.
fn exec_form(v: &str) -> Vec<String> {
    let json = v.trim_start_matches(|c: char| c != '[');
    serde_json::from_str::<Vec<String>>(json).unwrap_or_else(|e| panic!("not exec form: {v}: {e}"))
}

#[test]
fn the_dockerfile_follows_the_lint_rules() {
    let ins = instructions();
    let froms: Vec<&String> = ins.iter().filter(|(k, _)| k == "FROM").map(|(_, v)| v).collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage");
    for f in &froms {
        let image = f.split_whitespace().next().unwrap_or("");
        assert!(image.contains(':') && !image.ends_with(":latest"), "pinned base image: {f}");
    }
    // The toolchain is at least the crate's rust-version.
    let want = repo("Cargo.toml")
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string());
    let have = froms[0].split(':').nth(1).and_then(|t| t.split('-').next()).unwrap_or("");
    let ver = |s: &str| s.split('.').map(|p| p.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>();
    assert!(ver(have) >= ver(want.as_deref().unwrap_or("0")), "rust {have} < {want:?}");
    for (k, v) in &ins {
        if k == "RUN" && v.contains("apt-get install") {
            assert!(v.contains("--no-install-recommends") && v.contains("rm -rf /var/lib/apt/lists"), "{v}");
            assert!(v.contains("apt-get update"), "update in the same layer: {v}");
        }
        if k == "COPY" && !v.starts_with("--from") {
            let parts: Vec<&str> = v.split_whitespace().collect();
            for src in &parts[..parts.len() - 1] {
                assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(src).exists(), "COPY source {src} exists");
            }
        }
        if k == "ADD" {
            panic!("COPY, not ADD: {v}");
        }
    }
    for k in ["ENTRYPOINT", "CMD", "HEALTHCHECK"] {
        let v =
            ins.iter().find(|(i, _)| i == k).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("{k} missing"));
        exec_form(&v);
    }
    assert!(ins.iter().any(|(k, v)| k == "VOLUME"
        && v.contains("/spool")
        && v.contains("/state")
        && v.contains("/downloads")));
    assert!(!ins.iter().any(|(k, _)| k == "USER"), "the entry point drops to PUID/PGID itself");
}

#[test]
fn the_images_commands_and_variables_are_the_binarys() {
    let ins = instructions();
    let get = |k: &str| ins.iter().find(|(i, _)| i == k).map(|(_, v)| v.clone()).unwrap_or_default();
    // CMD and the health check name real subcommands.
    let cmd = exec_form(&get("CMD"));
    let health = exec_form(&get("HEALTHCHECK"));
    for sub in [&cmd[0], health.last().expect("health argument")] {
        let out = hermetic(Command::new(bin())).args([sub.as_str(), "--help"]).output().expect("run");
        assert!(out.status.success(), "`spoolfetch {sub} --help`: {}", String::from_utf8_lossy(&out.stderr));
    }
    // Every SPOOLFETCH_ variable set is one the binary reads.
    let env = Env::new();
    let mut c = hermetic(Command::new(bin()));
    c.args(["config", "--json"]).current_dir(env.dir.path());
    let mut names = Vec::new();
    for (k, v) in &ins {
        if k != "ENV" {
            continue;
        }
        for pair in v.split_whitespace() {
            if let Some((name, value)) = pair.split_once('=')
                && name.starts_with("SPOOLFETCH_")
            {
                names.push(name.to_string());
                let value = if name == "SPOOLFETCH_SPOOL" {
                    env.spool.display().to_string()
                } else if value.starts_with('/') {
                    env.dir.path().join(value.trim_start_matches('/')).display().to_string()
                } else {
                    value.to_string()
                };
                c.env(name, value);
            }
        }
    }
    assert!(names.contains(&"SPOOLFETCH_SPOOL".to_string()), "{names:?}");
    let out = c.output().expect("config");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    for name in names.iter().filter(|n| *n != "SPOOLFETCH_SPOOL") {
        assert!(text.contains(name.as_str()), "{name} is not a source in `spoolfetch config`: {parsed}");
    }
}

#[test]
fn the_entry_point_runs_the_health_check_against_the_daemons_lock() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/docker-entrypoint.sh");
    let syntax = Command::new("sh").arg("-n").arg(&script).status().expect("sh");
    assert!(syntax.success());
    let env = Env::new();
    env.config_defaults(serde_json::json!({}));
    let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    let run = |args: &[&str], puid: &str| {
        let mut c = hermetic(Command::new("sh"));
        c.arg(&script)
            .args(args)
            .env("SPOOLFETCH_BIN", bin())
            .env("SPOOLFETCH_SPOOL", &env.spool)
            .env("SPOOLFETCH_STATE_DIR", env.dir.path().join("state"))
            .env("SPOOLFETCH_SAVE_PATH", &env.save)
            .env("PUID", puid)
            .env("PGID", gid.to_string());
        c.output().expect("entry point")
    };
    let me = uid.to_string();
    let out = run(&["health"], &me);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not running"));
    let out = run(&["health"], "abc");
    assert_eq!(out.status.code(), Some(2), "PUID must be a number");
    let d = env.daemon(&[]);
    let up = wait_until(Duration::from_secs(20), || run(&["health"], &me).status.success());
    assert!(up, "{}", d.log());
    d.term();
}

#[test]
fn the_compose_example_mounts_the_three_volumes_as_puid() {
    let c = repo("compose.yaml");
    for needle in [":/spool", ":/state", ":/downloads", "PUID", "PGID", "build: ."] {
        assert!(c.contains(needle), "compose.yaml lacks {needle}");
    }
}
