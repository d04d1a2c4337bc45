//! `pixiv login` and `pixiv refresh` find the daemon's configuration, say
//! where they wrote, read secrets from stdin or a prompt, and take a
//! pasted callback URL; the real binary against the fake Pixiv.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::support::pixiv::{FakePixiv, GOOD_CODE};
use crate::util::{Env, bin, hermetic};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A spool whose configuration points at the fake, with no refresh token.
fn env_for(fake: &FakePixiv) -> Env {
    let env = Env::new();
    env.config_defaults(json!({"pixiv": {"api_url": fake.base_url(), "oauth_url": fake.base_url()}}));
    env
}

/// The stored refresh token under `state`.
fn stored(state: &Path) -> Value {
    serde_json::from_slice(&fs::read(state.join("pixiv-token.json")).expect("token")).expect("json")
}

/// Runs `spoolfetch ARGS` in `cwd` with `input` on stdin (a pipe).
fn with_stdin(cwd: &Path, args: &[&str], envs: &[(&str, &str)], input: &str) -> Output {
    let mut cmd = hermetic(Command::new(bin()));
    cmd.current_dir(cwd).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    child.wait_with_output().expect("wait")
}

#[test]
fn refresh_reads_the_token_from_stdin_and_says_where_it_went() {
    let fake = FakePixiv::start();
    fake.add_user(1, "me", "me1");
    let env = env_for(&fake);
    let token = "piped-refresh-token-1";
    fake.set_refresh_token(token);
    let spool = env.spool.display().to_string();
    let out =
        with_stdin(env.dir.path(), &["pixiv", "refresh", "-", "--spool", &spool], &[], &format!("{token}\n"));
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}{}", text(&out.stderr));
    let state = env.dir.path().join("state");
    let config = env.spool.join("spoolfetch.json");
    let want = format!(
        "state_dir {} (from config file {}; configuration: {})",
        state.display(),
        config.display(),
        config.display()
    );
    assert!(shown.contains(&want), "{want}\n{shown}");
    assert!(!shown.contains(token), "the token is not echoed: {shown}");
    assert_eq!(stored(&state)["refresh_token"], fake.current_refresh_token());

    // The same configuration named by --config, from anywhere, without
    // --spool; then by $SPOOLFETCH_CONFIG.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    fs::remove_file(state.join("pixiv-token.json")).expect("rm");
    let cfg = config.display().to_string();
    let current = fake.current_refresh_token();
    let out =
        with_stdin(elsewhere.path(), &["pixiv", "refresh", "--config", &cfg], &[], &format!("{current}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(state.join("pixiv-token.json").is_file(), "written to the configured state_dir");
    let current = fake.current_refresh_token();
    let out = with_stdin(
        elsewhere.path(),
        &["pixiv", "refresh", "-"],
        &[("SPOOLFETCH_CONFIG", &cfg)],
        &format!("{current}\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("configuration: {cfg}")), "{}", text(&out.stdout));
    // Nothing on stdin: a usage error.
    let out = with_stdin(env.dir.path(), &["pixiv", "refresh", "-", "--spool", &spool], &[], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no token given"), "{}", text(&out.stderr));
}

#[test]
fn refresh_prompts_on_a_terminal_without_echo() {
    let fake = FakePixiv::start();
    fake.add_user(1, "me", "me1");
    let env = env_for(&fake);
    let token = "typed-refresh-token-2";
    fake.set_refresh_token(token);
    // `script` gives the command a terminal and types its own stdin there.
    let line = format!("'{}' pixiv refresh --spool '{}'", bin().display(), env.spool.display());
    let mut cmd = hermetic(Command::new("script"));
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"]).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("script");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    // Wait for the prompt before typing, so that echo is off by then.
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).ends_with("(not shown): ") {
        let mut byte = [0u8; 1];
        let n = out.read(&mut byte).expect("read");
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.push(byte[0]);
    }
    writeln!(stdin, "{token}").expect("type");
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("read");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{rest}");
    assert!(rest.contains("Pixiv login works"), "{rest}");
    assert!(!rest.contains(token), "the typed token is not echoed: {rest}");
    assert_eq!(stored(&env.dir.path().join("state"))["refresh_token"], fake.current_refresh_token());
}

#[test]
fn login_takes_the_pasted_callback_url() {
    let fake = FakePixiv::start();
    fake.add_user(1, "me", "me1");
    let env = env_for(&fake);
    let mut child = hermetic(Command::new(bin()))
        .args(["pixiv", "login", "--spool"])
        .arg(&env.spool)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let challenge = loop {
        let line = lines.next().expect("a URL is printed").expect("read");
        if let Some(i) = line.find("code_challenge=") {
            break line[i + "code_challenge=".len()..].split('&').next().unwrap_or_default().to_string();
        }
    };
    fake.expect_pkce(&challenge);
    let pasted = format!("pixiv://account/login?code={GOOD_CODE}&via=login");
    writeln!(child.stdin.take().expect("stdin"), "{pasted}").expect("paste");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().expect("wait").success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("Pixiv login works")), "{rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("state_dir ")), "{rest:?}");
    assert_eq!(stored(&env.dir.path().join("state"))["refresh_token"], fake.current_refresh_token());
}
