//! `spoolfetch douyin cookie` and `spoolfetch douyin login`: the Douyin
//! login, a browser cookie or one collected through the app's QR-code
//! login, checked with Douyin before it is stored.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use spoolfetch::http::{NetOptions, build_agent};
use spoolfetch::pacing::send_once;
use spoolfetch::providers::douyin::{
    Answer, Caller, ClientProfile, Event, LoginOptions, Query, Settings, cookie_file, qr_login, read,
    settings, sign,
};

use super::args::{DouyinArgs, DouyinCommand};
use super::{EXIT_USAGE, Exit};

/// Runs a `douyin` subcommand.
pub fn douyin(a: &DouyinArgs) -> Result<ExitCode> {
    let config = super::pixiv::daemon_config(&a.spool, a.config.as_deref())?;
    let s = settings(&config);
    let agent =
        build_agent(&NetOptions::from_config(&config)).map_err(|e| Exit(EXIT_USAGE, e.to_string()))?;
    let cookie = match &a.command {
        DouyinCommand::Cookie { cookie } => {
            let cookie = match cookie.as_deref() {
                None | Some("-") => super::secret::read_secret("Douyin cookie (not shown): ", "cookie")?,
                Some(c) => c.trim().to_string(),
            };
            if cookie.contains(['\r', '\n']) {
                return Err(Exit(
                    EXIT_USAGE,
                    "the cookie is one line (copy the Cookie header's value)".into(),
                )
                .into());
            }
            cookie
        }
        DouyinCommand::Login => login(&s, &agent)?,
    };
    check_and_store(&s, &agent, &cookie)
}

/// The QR-code login, shown on standard error.
fn login(s: &Settings, agent: &ureq::Agent) -> Result<String> {
    let opts = LoginOptions::default();
    let mut err = std::io::stderr();
    let mut show = |e: Event| {
        let line = match e {
            Event::Code { url, n } => {
                let qr = match qrcode::QrCode::new(url.as_bytes()) {
                    Ok(code) => code
                        .render::<qrcode::render::unicode::Dense1x2>()
                        .dark_color(qrcode::render::unicode::Dense1x2::Light)
                        .light_color(qrcode::render::unicode::Dense1x2::Dark)
                        .build(),
                    Err(e) => {
                        format!("(the code cannot be drawn here: {e}; open the URL below on the phone)")
                    }
                };
                let again = if n > 1 { " (a new one: the last expired)" } else { "" };
                format!(
                    "{qr}\nScan this code with the Douyin app and confirm the login there{again}.\n{url}\n"
                )
            }
            Event::Waiting => "Waiting for the scan…".into(),
            Event::Scanned => "Scanned: confirm the login in the app.".into(),
            Event::Confirmed => "Confirmed: collecting the login cookie.".into(),
            Event::Expired => "The code expired.".into(),
        };
        let _ = writeln!(err, "{line}");
    };
    qr_login(s, agent, &opts, &mut show).map_err(|e| Exit(1, e.to_string()).into())
}

/// Checks `cookie` with Douyin and stores it in state_dir (mode 0600).
fn check_and_store(s: &Settings, agent: &ureq::Agent, cookie: &str) -> Result<ExitCode> {
    // The collection needs a login: a cookie Douyin takes there is good.
    let caller =
        Caller { user_agent: s.user_agent.clone(), cookie: Some(cookie.to_string()), sign: s.sign.clone() };
    let ms_token = sign::fallback_ms_token(&mut fastrand::Rng::new());
    let q = Query::cursor_page(Query::common(&ClientProfile::default(), &ms_token), 0, 1);
    let req = caller
        .request(&format!("{}/aweme/v1/web/aweme/listcollection/", s.web_url), &q, true)
        .map_err(|e| Exit(1, e.to_string()))?;
    let resp = send_once(agent, &req, Duration::from_secs(30), 1 << 20)
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
