//! `spoolfetch pixiv login` and `spoolfetch pixiv refresh [TOKEN|-]`.
//!
//! They find the configuration the daemon uses (`--config`,
//! `$SPOOLFETCH_CONFIG`, `<spool>/spoolfetch.json`, else the systemd
//! unit's `/etc/spoolfetch/config.json` when present) and say which
//! `state_dir` they wrote to and why.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use spoolfetch::config::Overrides;
use spoolfetch::http::{NetOptions, build_agent};
use spoolfetch::pacing::{ApiError, ApiRequest, ApiResponse, send_once};
use spoolfetch::providers::pixiv::{
    Exchange, Grant, code_request, login_url, parse_grant, pkce_pair, refresh_request, settings, store_token,
    token_path,
};

use super::args::{PixivArgs, PixivCommand};
use super::run::load_config;
use super::{EXIT_USAGE, Exit};

/// One-off calls straight through the agent (no pacing: the CLI makes one).
pub(super) struct Direct(pub(super) ureq::Agent);

impl Exchange for Direct {
    fn exchange(&self, req: ApiRequest) -> Result<ApiResponse, ApiError> {
        send_once(&self.0, &req, Duration::from_secs(30), 1 << 20).map_err(|e| ApiError::Transport {
            reason: spoolfetch::http::describe(&e),
            transient: spoolfetch::http::is_transient(&e),
        })
    }
}

/// The configuration file of the systemd unit in contrib/.
pub(super) const SYSTEM_CONFIG: &str = "/etc/spoolfetch/config.json";

/// The configuration file to name explicitly: `--config`, else the
/// system one when nothing the loader looks for (`$SPOOLFETCH_CONFIG`,
/// `<spool>/spoolfetch.json`) is there and `system` exists.
pub(super) fn config_file(
    given: Option<&Path>,
    spool: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    system: &Path,
) -> Option<PathBuf> {
    if let Some(c) = given {
        return Some(c.to_path_buf());
    }
    let loader_finds_one = env("SPOOLFETCH_CONFIG").is_some_and(|v| !v.is_empty())
        || spool.join(spoolfetch::spool::CONFIG_FILE_NAME).is_file();
    (!loader_finds_one && system.is_file()).then(|| system.to_path_buf())
}

/// The configuration a daemon of this spool uses, found the same way for
/// every login command (`pixiv`, `picwish`, `douyin`): `--config`, the
/// loader's own places, else the systemd unit's file.
pub(super) fn daemon_config(
    spool: &super::args::SpoolArg,
    given: Option<&Path>,
) -> Result<spoolfetch::config::Config> {
    let spool = super::spool::path(spool, given)?;
    let env = |k: &str| std::env::var(k).ok();
    let file = config_file(given, &spool, &env, Path::new(SYSTEM_CONFIG));
    let overrides = Overrides { config_file: file, ..Overrides::default() };
    load_config(&spool, &overrides)
}

/// Runs a `pixiv` subcommand.
pub fn pixiv(a: &PixivArgs) -> Result<ExitCode> {
    let config = daemon_config(&a.spool, a.config.as_deref())?;
    let s = settings(&config);
    let agent =
        build_agent(&NetOptions::from_config(&config)).map_err(|e| Exit(EXIT_USAGE, e.to_string()))?;
    let ex = Direct(agent);
    let grant = match &a.command {
        PixivCommand::Refresh { token } => {
            let token = match token.as_deref() {
                None | Some("-") => super::secret::read_secret("Pixiv refresh token (not shown): ", "token")?,
                Some(t) => t.trim().to_string(),
            };
            if token.is_empty() {
                return Err(Exit(EXIT_USAGE, "the token is empty".into()).into());
            }
            exchange(&ex, refresh_request(&s, &token))?
        }
        PixivCommand::Login => {
            let (verifier, challenge) = pkce_pair();
            println!("1. Open this URL in a browser and log in to Pixiv:\n\n   {}\n", login_url(&challenge));
            println!(
                "2. Before logging in, open the browser's developer tools (Network tab, \"Preserve log\" on)."
            );
            println!(
                "3. After logging in, find the request to .../callback?...&code=... and copy the `code` value."
            );
            println!("   The code expires about 30 seconds after login.\n");
            println!("Paste the code (or the whole callback URL) here and press Enter:");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("cannot read the code")?;
            let code = code_from(&line);
            if code.is_empty() {
                return Err(Exit(EXIT_USAGE, "no code given".into()).into());
            }
            exchange(&ex, code_request(&s, &code, &verifier))?
        }
    };
    store_token(&s.state_dir, &grant.refresh_token, grant.user_id, s.refresh_token.as_deref())
        .with_context(|| format!("cannot save the token in {}", s.state_dir.display()))?;
    println!(
        "Pixiv login works for {} (user id {}); the refresh token is saved in {} (mode 0600).",
        if grant.user_name.is_empty() { "this account" } else { &grant.user_name },
        grant.user_id,
        absolute(&token_path(&s.state_dir)).display()
    );
    let state_from = config.origins.get("state_dir").map_or("the default", String::as_str);
    let config_from = config
        .source
        .as_ref()
        .map_or_else(|| "no config file".to_string(), |p| absolute(p).display().to_string());
    println!(
        "state_dir {} (from {state_from}; configuration: {config_from})",
        absolute(&s.state_dir).display()
    );
    if config.source.as_deref() == Some(Path::new(SYSTEM_CONFIG)) && !config.origins.contains_key("state_dir")
    {
        println!(
            "note: the systemd unit's daemon keeps its state in $STATE_DIRECTORY (/var/lib/spoolfetch); \
             for that daemon run: sudo -u spoolfetch STATE_DIRECTORY=/var/lib/spoolfetch spoolfetch pixiv login"
        );
    }
    println!("Running daemons pick it up within seconds; parked Pixiv jobs continue by themselves.");
    Ok(ExitCode::SUCCESS)
}

/// Makes a token request and reads the grant.
fn exchange(ex: &Direct, req: ApiRequest) -> Result<Grant> {
    let resp = ex.exchange(req).map_err(|e| Exit(1, format!("cannot reach Pixiv: {e}")))?;
    parse_grant(&resp).map_err(|e| Exit(1, e.to_string()).into())
}

/// A path made absolute against the working folder, for messages.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The authorization code in what was pasted: the code itself, or a
/// callback URL (`pixiv://account/login?code=…&via=login`, the
/// `…/callback?state=…&code=…` of the browser's network tab) that carries
/// it as its `code` parameter.
fn code_from(pasted: &str) -> String {
    let s = pasted.trim();
    let Some((_, query)) = s.split_once('?') else { return s.to_string() };
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("code="))
        .map_or_else(|| s.to_string(), |v| percent_decode(v.trim()))
}

/// `%2D` → `-`; anything that is not a valid escape stays as it is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_come_from_callback_urls_too() {
        assert_eq!(code_from("  abc-DEF_123\n"), "abc-DEF_123");
        assert_eq!(code_from("pixiv://account/login?code=Xy%2DZ&via=login"), "Xy-Z");
        assert_eq!(
            code_from("https://app-api.pixiv.net/web/v1/users/auth/pixiv/callback?state=s&code=C0de#x"),
            "C0de"
        );
        assert_eq!(code_from("https://example.org/?nocode=1"), "https://example.org/?nocode=1");
    }

    #[test]
    fn the_system_configuration_is_the_last_resort() {
        let dir = tempfile::tempdir().expect("tempdir");
        let system = dir.path().join("config.json");
        let spool = dir.path().join("jobs");
        std::fs::create_dir(&spool).expect("mkdir");
        let none = |_: &str| None;
        assert_eq!(config_file(None, &spool, &none, &system), None, "absent");
        std::fs::write(&system, "{}").expect("write");
        assert_eq!(config_file(None, &spool, &none, &system), Some(system.clone()));
        let given = dir.path().join("given.json");
        assert_eq!(config_file(Some(&given), &spool, &none, &system), Some(given));
        let env = |k: &str| (k == "SPOOLFETCH_CONFIG").then(|| "/x.json".to_string());
        assert_eq!(config_file(None, &spool, &env, &system), None, "the loader takes $SPOOLFETCH_CONFIG");
        std::fs::write(spool.join("spoolfetch.json"), "{}").expect("write");
        assert_eq!(config_file(None, &spool, &none, &system), None, "the loader takes the spool's");
    }
}
