//! Douyin's SSO QR-code login: a code to scan with the app, its state
//! polled until the user confirms, then the redirect that sets the login
//! cookie.
//!
//! Owns the flow and the reading of its answers (docs/douyin.md, "QR-code
//! login"; the reference is F2 0.0.1.4's `handle_sso_login`,
//! `LoginGetQr`/`LoginCheckQr` and `GetQrcodeFilter`/`CheckQrcodeFilter`,
//! https://github.com/Johnserf-Seed/f2): `GET <sso>/get_qrcode/`, then
//! `GET <sso>/check_qrconnect/` every [`LoginOptions::poll`] until the
//! state is confirmed (3), with the redirect followed hop by hop so that
//! every `Set-Cookie` on the way is kept. Invariants: the cookie is only
//! ever returned, never logged or put into an error; the polling is
//! bounded (an overall timeout, at most [`LoginOptions::max_codes`] codes
//! when they expire); a refusal or an unknown state ends the login with
//! the reason, never a guess.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::Caller;
use super::query::Query;
use super::settings::Settings;
use super::sign::{now_ms, verify_fp};
use crate::pacing::{ApiResponse, send_once};

/// How the login polls.
#[derive(Debug, Clone, Copy)]
pub struct LoginOptions {
    /// The gap between two state checks (F2 waits 5 s).
    pub poll: Duration,
    /// The whole login, every code included.
    pub timeout: Duration,
    /// Codes shown at most (a new one each time one expires).
    pub max_codes: u32,
}

impl Default for LoginOptions {
    fn default() -> LoginOptions {
        LoginOptions { poll: Duration::from_secs(2), timeout: Duration::from_secs(300), max_codes: 3 }
    }
}

/// What the login tells its user as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A code to show.
    Code {
        /// The URL the app scans.
        url: String,
        /// Which code this is, from 1.
        n: u32,
    },
    /// Waiting for the scan (state 1).
    Waiting,
    /// Scanned; waiting for the confirmation in the app (state 2).
    Scanned,
    /// Confirmed (state 3): the login cookie is being collected.
    Confirmed,
    /// The code expired (state 5); a new one follows.
    Expired,
}

/// A code's state, as `check_qrconnect` answers it (`data.status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrState {
    /// `1`: not scanned yet.
    New,
    /// `2`: scanned, not confirmed.
    Scanned,
    /// `3`: confirmed; the login goes on at this URL.
    Confirmed(String),
    /// `4`: refused (F2 reads it as "too frequent, check the parameters";
    /// either way this code will not log in).
    Refused,
    /// `5`: expired.
    Expired,
    /// Anything else (F2 reads a missing status as 2046, "verify in the
    /// app"), with the answer's own words.
    Other(String),
}

/// Why the login failed. Never carries the cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Douyin could not be reached.
    Network(String),
    /// An answer the login cannot use.
    Answer(String),
    /// The login was refused in the app (state 4).
    Refused,
    /// Every code expired.
    Expired(u32),
    /// The overall time limit passed.
    TimedOut(Duration),
    /// Douyin wants something the terminal cannot do (state 2046, …).
    Unsupported(String),
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginError::Network(why) => write!(f, "cannot reach Douyin's login: {why}"),
            LoginError::Answer(why) => write!(f, "Douyin's login answered {why}"),
            LoginError::Refused => f.write_str("the login was refused in the app (state 4)"),
            LoginError::Expired(n) => write!(f, "{n} codes expired without a confirmation"),
            LoginError::TimedOut(d) => write!(f, "no confirmation within {} s", d.as_secs()),
            LoginError::Unsupported(why) => {
                write!(f, "Douyin asks for more than a scan ({why}); log in with `spoolfetch douyin cookie`")
            }
        }
    }
}

impl std::error::Error for LoginError {}

/// F2's `BaseLoginModel` block, in its order, then the model's fields.
fn login_query(fields: &[(&'static str, &str)]) -> Query {
    let mut q = Query::new()
        .text("service", "https://www.douyin.com")
        .text("need_logo", "false")
        .text("need_short_url", "true")
        .text("device_platform", "web_app")
        .text("aid", "6383")
        .text("account_sdk_source", "sso")
        .text("sdk_version", "2.2.7-beta.6")
        .text("language", "zh");
    for (k, v) in fields {
        q = q.text(k, *v);
    }
    q
}

/// The query of `get_qrcode` (`LoginGetQr`).
pub fn qrcode_query(fp: &str) -> Query {
    login_query(&[("verifyFp", fp), ("fp", fp)])
}

/// The query of `check_qrconnect` (`LoginCheckQr`).
pub fn check_query(token: &str, fp: &str) -> Query {
    login_query(&[("token", token), ("verifyFp", fp), ("fp", fp)])
}

/// A code: the token its checks name, and the URL the app scans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrCode {
    /// `data.token`.
    pub token: String,
    /// `data.qrcode_index_url`.
    pub url: String,
}

/// The answer's text for messages: its `description` or `message`,
/// without control characters, short.
fn words(v: &Value) -> String {
    let w =
        v["description"].as_str().filter(|s| !s.is_empty()).or_else(|| v["message"].as_str()).unwrap_or("");
    w.chars().filter(|c| !c.is_control()).take(120).collect()
}

/// Reads a `get_qrcode` answer.
pub fn read_qrcode(body: &[u8]) -> Result<QrCode, LoginError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| LoginError::Answer("something that is not JSON".into()))?;
    if let Some(code) = v["error_code"].as_i64().filter(|c| *c != 0) {
        return Err(LoginError::Answer(format!("error_code {code} ({})", words(&v))));
    }
    let token = v["data"]["token"].as_str().filter(|t| !t.is_empty());
    let url = v["data"]["qrcode_index_url"].as_str().filter(|u| u.starts_with("http"));
    match (token, url) {
        (Some(t), Some(u)) => Ok(QrCode { token: t.to_string(), url: u.to_string() }),
        _ => Err(LoginError::Answer("a code without its token or URL".into())),
    }
}

/// Reads a `check_qrconnect` answer.
pub fn read_state(body: &[u8]) -> Result<QrState, LoginError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| LoginError::Answer("something that is not JSON".into()))?;
    let status = match &v["data"]["status"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    Ok(match status.as_str() {
        "1" => QrState::New,
        "2" => QrState::Scanned,
        "3" => match v["data"]["redirect_url"].as_str().filter(|u| u.starts_with("http")) {
            Some(u) => QrState::Confirmed(u.to_string()),
            None => return Err(LoginError::Answer("a confirmation without its redirect".into())),
        },
        "4" => QrState::Refused,
        "5" => QrState::Expired,
        "" => QrState::Other(format!("no state: error_code {} ({})", v["error_code"], words(&v))),
        s => QrState::Other(format!("state {s} ({})", words(&v))),
    })
}

/// The cookies the login collects, in the order first set; a later
/// `Set-Cookie` of the same name replaces the value, an empty one drops it.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct CookieJar(Vec<(String, String)>);

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(n, _)| n)).finish()
    }
}

impl CookieJar {
    /// Takes one `Set-Cookie` header value (its `name=value`; the
    /// attributes are the browser's business).
    pub fn set(&mut self, header: &str) {
        let Some((name, value)) = header.split(';').next().and_then(|p| p.split_once('=')) else { return };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || name.contains(|c: char| c.is_control() || c == ' ') {
            return;
        }
        self.0.retain(|(n, _)| n != name);
        if !value.is_empty() {
            self.0.push((name.to_string(), value.to_string()));
        }
    }

    /// Whether a cookie of this name is held.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// The `Cookie` header value: `a=1; b=2`.
    pub fn header(&self) -> String {
        self.0.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }
}

/// Redirect hops followed at most after the confirmation.
const MAX_HOPS: usize = 10;
/// The time limit of one exchange.
const EXCHANGE: Duration = Duration::from_secs(30);

/// The QR-code login: shows codes through `on`, and returns the login
/// cookie once the user confirmed in the app.
pub fn qr_login(
    s: &Settings,
    agent: &ureq::Agent,
    opts: &LoginOptions,
    on: &mut dyn FnMut(Event),
) -> Result<String, LoginError> {
    let deadline = Instant::now() + opts.timeout;
    let fp = verify_fp(now_ms(), &mut fastrand::Rng::new());
    let mut jar = CookieJar::default();
    for n in 1..=opts.max_codes.max(1) {
        let resp = sso_get(s, agent, "get_qrcode", &qrcode_query(&fp), &mut jar)?;
        let code = read_qrcode(&resp.body)?;
        on(Event::Code { url: code.url.clone(), n });
        let mut last = None;
        loop {
            if Instant::now() >= deadline {
                return Err(LoginError::TimedOut(opts.timeout));
            }
            let resp = sso_get(s, agent, "check_qrconnect", &check_query(&code.token, &fp), &mut jar)?;
            let state = read_state(&resp.body)?;
            let event = match &state {
                QrState::New => Some(Event::Waiting),
                QrState::Scanned => Some(Event::Scanned),
                _ => None,
            };
            if let Some(e) = event
                && last.as_ref() != Some(&e)
            {
                on(e.clone());
                last = Some(e);
            }
            match state {
                QrState::New | QrState::Scanned => {}
                QrState::Confirmed(url) => {
                    on(Event::Confirmed);
                    follow_redirects(s, agent, &url, &mut jar)?;
                    return Ok(jar.header());
                }
                QrState::Refused => return Err(LoginError::Refused),
                QrState::Expired => {
                    on(Event::Expired);
                    break;
                }
                QrState::Other(why) => return Err(LoginError::Unsupported(why)),
            }
            std::thread::sleep(opts.poll.min(deadline.saturating_duration_since(Instant::now())));
        }
    }
    Err(LoginError::Expired(opts.max_codes.max(1)))
}

/// A signed GET of `path` on the SSO origin, its cookies kept.
fn sso_get(
    s: &Settings,
    agent: &ureq::Agent,
    path: &str,
    query: &Query,
    jar: &mut CookieJar,
) -> Result<ApiResponse, LoginError> {
    let cookie = Some(jar.header()).filter(|c| !c.is_empty());
    let caller = Caller { user_agent: s.user_agent.clone(), cookie, sign: s.sign.clone() };
    let req = caller
        .request(&format!("{}/{path}/", s.sso_url), query, false)
        .map_err(|e| LoginError::Answer(e.to_string()))?;
    let resp = send_once(agent, &req, EXCHANGE, 1 << 20)
        .map_err(|e| LoginError::Network(crate::http::describe(&e)))?;
    if !resp.is_success() {
        return Err(LoginError::Answer(format!("HTTP {} to {path}", resp.status)));
    }
    for h in resp.header_all("set-cookie") {
        jar.set(h);
    }
    Ok(resp)
}

/// Follows the confirmation's redirect one hop at a time (an HTTP client
/// following them itself would drop the cookies set on the way).
fn follow_redirects(
    s: &Settings,
    agent: &ureq::Agent,
    start: &str,
    jar: &mut CookieJar,
) -> Result<(), LoginError> {
    let mut url = start.to_string();
    for _ in 0..=MAX_HOPS {
        let mut b = ureq::http::Request::builder()
            .method("GET")
            .uri(url.as_str())
            .header("User-Agent", s.user_agent.as_str())
            .header("Referer", "https://www.douyin.com/");
        let cookie = jar.header();
        if !cookie.is_empty() {
            b = b.header("Cookie", cookie.as_str());
        }
        let req = b.body(()).map_err(|_| LoginError::Answer("a redirect to an invalid URL".into()))?;
        let resp = agent
            .run(agent.configure_request(req).max_redirects(0).timeout_global(Some(EXCHANGE)).build())
            .map_err(|e| LoginError::Network(crate::http::describe(&e)))?;
        for h in resp.headers().get_all("set-cookie") {
            if let Ok(v) = h.to_str() {
                jar.set(v);
            }
        }
        let status = resp.status().as_u16();
        if !matches!(status, 301 | 302 | 303 | 307 | 308) {
            return if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(LoginError::Answer(format!("HTTP {status} at the end of the login's redirects")))
            };
        }
        let Some(location) = resp.headers().get("location").and_then(|v| v.to_str().ok()) else {
            return Err(LoginError::Answer("a redirect without a Location".into()));
        };
        url = next_url(&url, location.trim())?;
    }
    Err(LoginError::Answer(format!("more than {MAX_HOPS} redirects after the confirmation")))
}

/// Where a `Location` leads from `from`: an absolute http(s) URL, or a
/// path on the same origin.
fn next_url(from: &str, location: &str) -> Result<String, LoginError> {
    if location.starts_with("https://") || location.starts_with("http://") {
        return Ok(location.to_string());
    }
    if location.starts_with('/') && !location.starts_with("//") {
        let scheme_end = from.find("://").map_or(0, |i| i + 3);
        let origin_end = from[scheme_end..].find('/').map_or(from.len(), |i| scheme_end + i);
        return Ok(format!("{}{location}", &from[..origin_end]));
    }
    Err(LoginError::Answer("a redirect the login cannot follow".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queries_are_f2s_login_models_in_order() {
        let q = check_query("tok", "verify_x").encode().expect("encodes");
        assert_eq!(
            q,
            "service=https://www.douyin.com&need_logo=false&need_short_url=true&device_platform=web_app&aid=6383\
             &account_sdk_source=sso&sdk_version=2.2.7-beta.6&language=zh&token=tok&verifyFp=verify_x&fp=verify_x"
        );
        assert!(qrcode_query("v").encode().expect("encodes").ends_with("&language=zh&verifyFp=v&fp=v"));
    }

    #[test]
    fn codes_and_states_are_read_as_f2_reads_them() {
        let code = br#"{"data":{"token":"t1","qrcode_index_url":"https://aweme.snssdk.com/magic/x?token=t1","qrcode":"iVBO"},"error_code":0}"#;
        assert_eq!(
            read_qrcode(code),
            Ok(QrCode { token: "t1".into(), url: "https://aweme.snssdk.com/magic/x?token=t1".into() })
        );
        assert!(
            matches!(read_qrcode(br#"{"error_code":7,"description":"busy"}"#), Err(LoginError::Answer(m)) if m.contains("busy"))
        );
        assert!(read_qrcode(br#"{"data":{"token":""}}"#).is_err());
        assert!(read_qrcode(b"<html>").is_err());
        let st = |s: &str| read_state(s.as_bytes());
        assert_eq!(st(r#"{"data":{"status":"1"}}"#), Ok(QrState::New));
        assert_eq!(st(r#"{"data":{"status":2}}"#), Ok(QrState::Scanned));
        assert_eq!(
            st(r#"{"data":{"status":"3","redirect_url":"https://www.douyin.com/login/?t=1"}}"#),
            Ok(QrState::Confirmed("https://www.douyin.com/login/?t=1".into()))
        );
        assert!(st(r#"{"data":{"status":"3"}}"#).is_err());
        assert_eq!(st(r#"{"data":{"status":"4"}}"#), Ok(QrState::Refused));
        assert_eq!(st(r#"{"data":{"status":"5"}}"#), Ok(QrState::Expired));
        assert!(
            matches!(st(r#"{"error_code":2046,"description":"verify"}"#), Ok(QrState::Other(m)) if m.contains("2046"))
        );
    }

    #[test]
    fn the_jar_keeps_the_last_value_of_each_name_and_never_shows_values() {
        let mut jar = CookieJar::default();
        jar.set("passport_csrf_token=abc; Path=/; Domain=douyin.com");
        jar.set("sessionid=s1; Path=/; HttpOnly");
        jar.set("sessionid=s2; Path=/");
        jar.set("gone=x");
        jar.set("gone=; Max-Age=0");
        jar.set("garbage");
        assert_eq!(jar.header(), "passport_csrf_token=abc; sessionid=s2");
        assert!(jar.has("sessionid") && !jar.has("gone"));
        assert!(!format!("{jar:?}").contains("s2"));
    }

    #[test]
    fn locations_lead_to_absolute_urls_or_the_same_origin() {
        assert_eq!(next_url("http://h:1/a/b?x", "/c?d").ok().as_deref(), Some("http://h:1/c?d"));
        assert_eq!(next_url("http://h/a", "https://o/p").ok().as_deref(), Some("https://o/p"));
        assert!(next_url("http://h/a", "//evil/p").is_err());
        assert!(next_url("http://h/a", "javascript:x").is_err());
    }
}
