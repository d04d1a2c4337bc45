//! `spoolfetch douyin cookie`: the Douyin login, a browser cookie checked
//! with Douyin before it is stored.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use spoolfetch::http::{NetOptions, build_agent};
use spoolfetch::pacing::send_once;
use spoolfetch::providers::douyin::{
    Answer, Caller, ClientProfile, Query, cookie_file, read, settings, sign,
};

use super::args::{DouyinArgs, DouyinCommand};
use super::{EXIT_USAGE, Exit};

/// Runs a `douyin` subcommand.
pub fn douyin(a: &DouyinArgs) -> Result<ExitCode> {
    let config = super::pixiv::daemon_config(&a.spool, a.config.as_deref())?;
    let s = settings(&config);
    let DouyinCommand::Cookie { cookie } = &a.command;
    let cookie = match cookie.as_deref() {
        None | Some("-") => super::secret::read_secret("Douyin cookie (not shown): ", "cookie")?,
        Some(c) => c.trim().to_string(),
    };
    if cookie.contains(['\r', '\n']) {
        return Err(Exit(EXIT_USAGE, "the cookie is one line (copy the Cookie header's value)".into()).into());
    }
    let agent =
        build_agent(&NetOptions::from_config(&config)).map_err(|e| Exit(EXIT_USAGE, e.to_string()))?;
    // The collection needs a login: a cookie Douyin takes there is good.
    let caller =
        Caller { user_agent: s.user_agent.clone(), cookie: Some(cookie.clone()), sign: s.sign.clone() };
    let ms_token = sign::fallback_ms_token(&mut fastrand::Rng::new());
    let q = Query::cursor_page(Query::common(&ClientProfile::default(), &ms_token), 0, 1);
    let req = caller
        .request(&format!("{}/aweme/v1/web/aweme/listcollection/", s.web_url), &q, true)
        .map_err(|e| Exit(1, e.to_string()))?;
    let resp = send_once(&agent, &req, Duration::from_secs(30), 1 << 20)
        .map_err(|e| Exit(1, format!("cannot reach Douyin: {}", spoolfetch::http::describe(&e))))?;
    match read(&resp) {
        Answer::Page(_) => {}
        Answer::Cookie(why) => return Err(Exit(1, format!("Douyin refused the cookie: {why}")).into()),
        Answer::Blocked(why) | Answer::NotFound(why) => {
            return Err(Exit(1, format!("cannot check the cookie: {why}; nothing was stored")).into());
        }
    }
    std::fs::create_dir_all(&s.state_dir)
        .map_err(|e| Exit(1, format!("cannot create {}: {e}", s.state_dir.display())))?;
    let path = cookie_file(&s.state_dir);
    let rec = serde_json::json!({"cookie": cookie, "saved": spoolfetch::job::unix_now()});
    spoolfetch::durable::atomic_write(&path, rec.to_string().as_bytes())
        .map_err(|e| Exit(1, format!("cannot save {}: {e}", path.display())))?;
    println!(
        "Douyin takes the cookie; it is saved in {} (mode 0600; state_dir {}).",
        path.display(),
        s.state_dir.display()
    );
    println!("New Douyin jobs use it; jobs waiting for a login go on at their next try.");
    Ok(ExitCode::SUCCESS)
}
