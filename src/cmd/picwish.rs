//! `spoolfetch picwish login`: the web flow's account token.

use std::process::ExitCode;

use anyhow::Result;
use spoolfetch::http::{NetOptions, build_agent};
use spoolfetch::providers::picwish::{login, settings};

use super::args::{PicwishArgs, PicwishCommand};
use super::pixiv::Direct;
use super::{EXIT_USAGE, Exit};

/// Runs a `picwish` subcommand.
pub fn picwish(a: &PicwishArgs) -> Result<ExitCode> {
    // The configuration the daemon uses, found as `pixiv login` finds it.
    let config = super::pixiv::daemon_config(&a.spool, a.config.as_deref())?;
    let s = settings(&config);
    let agent =
        build_agent(&NetOptions::from_config(&config)).map_err(|e| Exit(EXIT_USAGE, e.to_string()))?;
    let PicwishCommand::Login { phone, country_code } = &a.command;
    let phone = phone.trim();
    if phone.is_empty() || !phone.chars().all(|c| c.is_ascii_digit()) {
        return Err(Exit(EXIT_USAGE, "--phone takes the number's digits only".into()).into());
    }
    let password = super::secret::read_secret("PicWish password (not shown): ", "password")?;
    if password.is_empty() {
        return Err(Exit(EXIT_USAGE, "no password given".into()).into());
    }
    let file = login(&Direct(agent), &s.web_url, phone, country_code.trim(), &password, &s.state_dir)
        .map_err(|e| Exit(1, e))?;
    println!(
        "PicWish login works; the token is saved in {} (mode 0600; state_dir {}).",
        file.display(),
        s.state_dir.display()
    );
    println!("Web-interface jobs use it from their next call; jobs waiting for a login go on by themselves.");
    Ok(ExitCode::SUCCESS)
}
