//! The `douyin` configuration section.

use std::path::PathBuf;
use std::sync::Arc;

use super::client::SignWith;
use super::sign::ExternalSigner;
use crate::config::{Config, KeyKind, KeySpec, SectionSpec};

/// F2's User-Agent (Edge 130 on Windows 10), the one its query block
/// describes; the signature covers it.
pub const DEFAULT_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0";

/// The section.
pub const SECTION: SectionSpec = SectionSpec {
    name: "douyin",
    keys: &[
        KeySpec::new("cookie", KeyKind::NonEmpty, "the browser cookie of www.douyin.com (also set by `douyin cookie`)")
            .env("SPOOLFETCH_DOUYIN_COOKIE")
            .secret()
            .example("ttwid=…; sessionid=…"),
        KeySpec::new("user_agent", KeyKind::NonEmpty, "the User-Agent every call sends and signs (the cookie's browser)")
            .default(DEFAULT_UA),
        KeySpec::new(
            "signer",
            KeyKind::NonEmpty,
            "a_bogus (default), x_bogus, or the path of a program that signs (query and User-Agent on stdin, the signature on stdout)",
        )
        .default("a_bogus"),
        KeySpec::new("web_url", KeyKind::Origin, "the web API's origin").default("https://www.douyin.com"),
        KeySpec::new("live_url", KeyKind::Origin, "the live web API's origin").default("https://live.douyin.com"),
        KeySpec::new("webcast_url", KeyKind::Origin, "the app live API's origin (room ids from app share links)")
            .default("https://webcast.amemv.com"),
        KeySpec::new("mssdk_url", KeyKind::Origin, "the msToken endpoint's origin (`/web/report` on it)")
            .default("https://mssdk.bytedance.com"),
        KeySpec::new("sso_url", KeyKind::Origin, "the QR-code login's origin (`douyin login`)")
            .default("https://sso.douyin.com"),
    ],
};

/// The resolved section.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The cookie (never logged).
    pub cookie: Option<String>,
    /// The User-Agent.
    pub user_agent: String,
    /// The signature.
    pub sign: SignWith,
    /// The web API's origin.
    pub web_url: String,
    /// The live web API's origin.
    pub live_url: String,
    /// The app live API's origin.
    pub webcast_url: String,
    /// The msToken endpoint's origin.
    pub mssdk_url: String,
    /// The QR-code login's origin.
    pub sso_url: String,
    /// Where the stored cookie lives.
    pub state_dir: PathBuf,
}

/// The file `spoolfetch douyin cookie` writes.
pub fn cookie_file(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("douyin-cookie.json")
}

impl Settings {
    /// The cookie to send now: the one `spoolfetch douyin cookie` stored
    /// last (read at every call, so a job waiting for a login goes on as
    /// soon as there is a new one), else the configured one.
    pub fn current_cookie(&self) -> Option<String> {
        stored_cookie(&self.state_dir).or_else(|| self.cookie.clone())
    }
}

/// The stored cookie, if any.
fn stored_cookie(state_dir: &std::path::Path) -> Option<String> {
    std::fs::read(cookie_file(state_dir))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["cookie"].as_str().map(str::to_string))
        .filter(|c| !c.trim().is_empty())
}

/// Reads the section; the stored cookie wins over the configured one.
pub fn settings(config: &Config) -> Settings {
    let v = config.values(SECTION);
    let sign = match v.str("signer").as_deref() {
        None | Some("a_bogus") => SignWith::ABogus,
        Some("x_bogus") => SignWith::XBogus,
        Some(cmd) => SignWith::External(Arc::new(ExternalSigner::new(PathBuf::from(cmd), Vec::new()))),
    };
    let stored = stored_cookie(&config.state_dir);
    Settings {
        cookie: stored.or_else(|| v.str("cookie")).filter(|c| !c.trim().is_empty()),
        user_agent: v.str("user_agent").unwrap_or_else(|| DEFAULT_UA.into()),
        sign,
        web_url: v.origin("web_url").unwrap_or_else(|| "https://www.douyin.com".into()),
        live_url: v.origin("live_url").unwrap_or_else(|| "https://live.douyin.com".into()),
        webcast_url: v.origin("webcast_url").unwrap_or_else(|| "https://webcast.amemv.com".into()),
        mssdk_url: v.origin("mssdk_url").unwrap_or_else(|| "https://mssdk.bytedance.com".into()),
        sso_url: v.origin("sso_url").unwrap_or_else(|| "https://sso.douyin.com".into()),
        state_dir: config.state_dir.clone(),
    }
}
