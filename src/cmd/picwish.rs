//! `spoolfetch picwish login`: the web flow's account token.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use spoolfetch::config::Overrides;
use spoolfetch::http::{NetOptions, build_agent};
use spoolfetch::providers::picwish::{login, settings};

use super::args::{PicwishArgs, PicwishCommand};
use super::pixiv::Direct;
use super::run::load_config;
use super::{EXIT_USAGE, Exit};

/// Runs a `picwish` subcommand.
pub fn picwish(a: &PicwishArgs) -> Result<ExitCode> {
    let overrides = Overrides { config_file: a.config.clone(), ..Overrides::default() };
    let config = load_config(&a.spool.spool, &overrides)?;
    let s = settings(&config);
    let agent =
        build_agent(&NetOptions::from_config(&config)).map_err(|e| Exit(EXIT_USAGE, e.to_string()))?;
    let PicwishCommand::Login { phone, country_code } = &a.command;
    let phone = phone.trim();
    if phone.is_empty() || !phone.chars().all(|c| c.is_ascii_digit()) {
        return Err(Exit(EXIT_USAGE, "--phone takes the number's digits only".into()).into());
    }
    let password = read_password()?;
    if password.is_empty() {
        return Err(Exit(EXIT_USAGE, "no password given".into()).into());
    }
    let file = login(&Direct(agent), &s.web_url, phone, country_code.trim(), &password, &s.state_dir)
        .map_err(|e| Exit(1, e))?;
    println!("PicWish login works; the token is saved in {} (mode 0600).", file.display());
    println!("Web-interface jobs use it from their next call; jobs waiting for a login go on by themselves.");
    Ok(ExitCode::SUCCESS)
}

/// The password: one line of standard input, or asked for without echo
/// when standard input is a terminal (so it never lands in shell history).
fn read_password() -> Result<String> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let saved = if tty {
        eprint!("PicWish password: ");
        let _ = std::io::stderr().flush();
        let fd = std::io::stdin();
        let old = rustix::termios::tcgetattr(&fd).ok();
        if let Some(t) = &old {
            let mut quiet = t.clone();
            quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
            let _ = rustix::termios::tcsetattr(&fd, rustix::termios::OptionalActions::Now, &quiet);
        }
        old
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = rustix::termios::tcsetattr(std::io::stdin(), rustix::termios::OptionalActions::Now, &t);
        eprintln!();
    }
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
