//! `spoolfetch pixiv login` and `spoolfetch pixiv refresh TOKEN`.

use std::io::BufRead;
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
struct Direct(ureq::Agent);

impl Exchange for Direct {
    fn exchange(&self, req: ApiRequest) -> Result<ApiResponse, ApiError> {
        send_once(&self.0, &req, Duration::from_secs(30), 1 << 20).map_err(|e| ApiError::Transport {
            reason: spoolfetch::http::describe(&e),
            transient: spoolfetch::http::is_transient(&e),
        })
    }
}

/// Runs a `pixiv` subcommand.
pub fn pixiv(a: &PixivArgs) -> Result<ExitCode> {
    let overrides = Overrides { config_file: a.config.clone(), ..Overrides::default() };
    let spool = super::spool::path(&a.spool, a.config.as_deref())?;
    let config = load_config(&spool, &overrides)?;
    let s = settings(&config);
    let agent =
        build_agent(&NetOptions::from_config(&config)).map_err(|e| Exit(EXIT_USAGE, e.to_string()))?;
    let ex = Direct(agent);
    let grant = match &a.command {
        PixivCommand::Refresh { token } => {
            let token = token.trim();
            if token.is_empty() {
                return Err(Exit(EXIT_USAGE, "the token is empty".into()).into());
            }
            exchange(&ex, refresh_request(&s, token))?
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
            println!("Paste the code here and press Enter:");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("cannot read the code")?;
            let code = line.trim();
            if code.is_empty() {
                return Err(Exit(EXIT_USAGE, "no code given".into()).into());
            }
            exchange(&ex, code_request(&s, code, &verifier))?
        }
    };
    store_token(&s.state_dir, &grant.refresh_token, grant.user_id, s.refresh_token.as_deref())
        .with_context(|| format!("cannot save the token in {}", s.state_dir.display()))?;
    println!(
        "Pixiv login works for {} (user id {}); the refresh token is saved in {} (mode 0600).",
        if grant.user_name.is_empty() { "this account" } else { &grant.user_name },
        grant.user_id,
        token_path(&s.state_dir).display()
    );
    println!("Running daemons pick it up within seconds; parked Pixiv jobs continue by themselves.");
    Ok(ExitCode::SUCCESS)
}

/// Makes a token request and reads the grant.
fn exchange(ex: &Direct, req: ApiRequest) -> Result<Grant> {
    let resp = ex.exchange(req).map_err(|e| Exit(1, format!("cannot reach Pixiv: {e}")))?;
    parse_grant(&resp).map_err(|e| Exit(1, e.to_string()).into())
}
