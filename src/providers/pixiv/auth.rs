//! Pixiv OAuth: the refresh-token grant, PKCE login, the stored token, and
//! the session every Pixiv job of the daemon shares.
//!
//! The session itself (single flight, generations, the token saved 0600
//! before a rotated token is used) is [`crate::session`]'s; this file is
//! Pixiv's half of it ([`PixivAuth`]). Invariants (protocol in
//! docs/pixiv.md): a rejected refresh token parks jobs instead of failing
//! them, until `spoolfetch pixiv refresh` stores a new one, which the
//! session picks up from the file without a restart; a token file whose
//! `config_md5` names another configured token yields to the
//! configuration.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::settings::Settings;
use crate::pacing::{ApiRequest, ApiResponse};
use crate::providers::WalkError;
pub use crate::session::Exchange;
use crate::session::{Authority, Grant as TokenGrant, Sessions, TokenStore};

/// The official app's client id (public, the same in every client).
pub const CLIENT_ID: &str = "MOBrBDS8blbauoSck0ZfDbtuzpyT";
/// The official app's client secret (public).
pub const CLIENT_SECRET: &str = "lsACyCD94FhDUtGTXi3QzcFE2uU1hqtDaKeqrdwj";
/// Salt of `X-Client-Hash`, all 64 hex digits (some published copies are truncated).
pub const HASH_SECRET: &str = "28c1fdd170a5204386cb1313c7077b34f83e4aaf4aa829ce78c231e05b0bae2c";
/// Redirect URI of the PKCE grant.
pub const REDIRECT_URI: &str = "https://app-api.pixiv.net/web/v1/users/auth/pixiv/callback";
/// The app identity sent with every request.
pub const USER_AGENT: &str = "PixivIOSApp/7.19.1 (iOS 16.7.2; iPhone12,8)";

/// Refresh this long before the access token expires.
const REFRESH_EARLY: Duration = Duration::from_secs(60);
/// How often a parked job looks for a new token.
const PARKED_RETRY: Duration = Duration::from_secs(5);
/// How long a job waits when the login server cannot be reached.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(60);

/// What a token answer gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Short-lived access token.
    pub access_token: String,
    /// The refresh token to keep (maybe a new one).
    pub refresh_token: String,
    /// Lifetime of the access token.
    pub expires_in: u64,
    /// The account's user id.
    pub user_id: u64,
    /// The account's name.
    pub user_name: String,
}

/// Why a token request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The server rejected the token or code (`invalid_grant`).
    Rejected(String),
    /// The exchange failed or the answer was unusable (Cloudflare page,
    /// network); trying later may help.
    Unavailable(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Rejected(m) => write!(f, "Pixiv rejected the token: {m}"),
            AuthError::Unavailable(m) => write!(f, "cannot reach Pixiv's login server: {m}"),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS+00:00` for a Unix time (UTC), as `X-Client-Time`.
pub fn client_time(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let secs = unix % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// `md5_hex(time + HASH_SECRET)`.
pub fn client_hash(time: &str) -> String {
    let mut h = Md5::new();
    h.update(time.as_bytes());
    h.update(HASH_SECRET.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Adds the app identity headers.
pub fn app_headers(req: ApiRequest, language: &str) -> ApiRequest {
    req.header("User-Agent", USER_AGENT)
        .header("App-OS", "ios")
        .header("App-OS-Version", "16.7.2")
        .header("App-Version", "7.19.1")
        .header("Accept-Language", language)
}

/// The token request of a grant, with `X-Client-Time` and `X-Client-Hash`.
fn token_request(settings: &Settings, form: &[(&str, &str)]) -> ApiRequest {
    let time = client_time(crate::job::unix_now());
    let hash = client_hash(&time);
    let req = ApiRequest::post_form(format!("{}/auth/token", settings.oauth_url), form)
        .header("X-Client-Time", time)
        .header("X-Client-Hash", hash);
    app_headers(req, &settings.accept_language)
}

/// The refresh-token grant.
pub fn refresh_request(settings: &Settings, refresh_token: &str) -> ApiRequest {
    token_request(
        settings,
        &[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("include_policy", "true"),
            ("get_secure_url", "1"),
        ],
    )
}

/// The authorization-code grant of the PKCE login.
pub fn code_request(settings: &Settings, code: &str, verifier: &str) -> ApiRequest {
    token_request(
        settings,
        &[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", code),
            ("code_verifier", verifier),
            ("grant_type", "authorization_code"),
            ("include_policy", "true"),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
}

/// The token answer (fields appear at the top level and under `response`;
/// either copy is accepted; docs/pixiv.md).
#[derive(Debug, Default, Deserialize)]
struct TokenBody {
    /// Top-level copy.
    #[serde(flatten)]
    top: TokenFields,
    /// The `response` copy.
    #[serde(default)]
    response: Option<TokenFields>,
    /// `invalid_grant`, … on errors.
    #[serde(default)]
    error: Option<serde_json::Value>,
    /// Error details.
    #[serde(default)]
    errors: Option<serde_json::Value>,
}

/// The token fields.
#[derive(Debug, Default, Clone, Deserialize)]
struct TokenFields {
    /// Access token.
    #[serde(default)]
    access_token: Option<String>,
    /// Refresh token.
    #[serde(default)]
    refresh_token: Option<String>,
    /// Lifetime in seconds.
    #[serde(default)]
    expires_in: Option<u64>,
    /// The account.
    #[serde(default)]
    user: Option<super::model::User>,
}

/// Reads a token answer.
pub fn parse_grant(resp: &ApiResponse) -> Result<Grant, AuthError> {
    let body: TokenBody = serde_json::from_slice(&resp.body).map_err(|_| {
        AuthError::Unavailable(format!(
            "HTTP {} with a non-JSON answer (a proxy or Cloudflare page?)",
            resp.status
        ))
    })?;
    if !resp.is_success() || body.error.is_some() {
        let message = body
            .errors
            .as_ref()
            .and_then(|e| e.pointer("/system/message"))
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .or_else(|| body.error.as_ref().map(|e| e.to_string()))
            .unwrap_or_else(|| format!("HTTP {}", resp.status));
        return Err(if (400..500).contains(&resp.status) {
            AuthError::Rejected(message)
        } else {
            AuthError::Unavailable(message)
        });
    }
    let f = body.response.clone().unwrap_or_default();
    let pick = |a: Option<String>, b: Option<String>| a.or(b).filter(|s| !s.is_empty());
    let access_token = pick(f.access_token, body.top.access_token)
        .ok_or_else(|| AuthError::Unavailable("the token answer has no access_token".into()))?;
    let refresh_token = pick(f.refresh_token, body.top.refresh_token)
        .ok_or_else(|| AuthError::Unavailable("the token answer has no refresh_token".into()))?;
    let user = f.user.or(body.top.user).unwrap_or_default();
    Ok(Grant {
        access_token,
        refresh_token,
        expires_in: f.expires_in.or(body.top.expires_in).unwrap_or(3600),
        user_id: user.id,
        user_name: user.name,
    })
}

/// The stored token, `state_dir/pixiv-token.json` (mode 0600).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredToken {
    /// The refresh token to use next.
    pub refresh_token: String,
    /// The account's user id.
    #[serde(default)]
    pub user_id: u64,
    /// MD5 of the configured `pixiv.refresh_token` this one descends from:
    /// when the configuration names a different token, the user changed it
    /// on purpose and the configuration wins.
    #[serde(default)]
    pub config_md5: Option<String>,
    /// When it was saved (Unix seconds).
    #[serde(default)]
    pub saved: u64,
}

/// The token file's path.
pub fn token_path(state_dir: &Path) -> PathBuf {
    state_dir.join("pixiv-token.json")
}

/// MD5 hex of a token (stored instead of the token itself).
fn md5_hex(s: &str) -> String {
    let mut h = Md5::new();
    h.update(s.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Saves a refresh token durably and privately.
pub fn store_token(
    state_dir: &Path,
    refresh_token: &str,
    user_id: u64,
    config_token: Option<&str>,
) -> std::io::Result<()> {
    let t = StoredToken {
        refresh_token: refresh_token.to_string(),
        user_id,
        config_md5: config_token.map(md5_hex),
        saved: crate::job::unix_now(),
    };
    TokenStore::new(token_path(state_dir)).save(&t).map_err(|e| e.source)
}

/// Reads the stored token, if any.
pub fn load_token(state_dir: &Path) -> Option<StoredToken> {
    TokenStore::new(token_path(state_dir)).load()
}

/// The refresh token to start from: the stored one unless the
/// configuration names a different token than the one it descends from.
fn initial_token(settings: &Settings) -> Option<String> {
    let stored = load_token(&settings.state_dir);
    match (&settings.refresh_token, stored) {
        (None, Some(s)) => Some(s.refresh_token),
        (Some(c), Some(s))
            if s.config_md5.as_deref() == Some(md5_hex(c).as_str()) || s.config_md5.is_none() =>
        {
            Some(s.refresh_token)
        }
        (Some(c), _) => Some(c.clone()),
        (None, None) => None,
    }
}

/// Pixiv's half of a session: the refresh-token grant against the
/// configured OAuth origin.
#[derive(Debug)]
pub struct PixivAuth {
    /// The settings.
    settings: Settings,
}

/// What a Pixiv session keeps between refreshes.
#[derive(Debug, Default)]
pub struct PixivState {
    /// The refresh token in use.
    refresh: Option<String>,
    /// The account's user id.
    user_id: u64,
    /// Why the refresh token was rejected, while it is.
    rejected: Option<String>,
}

/// The login state shared by every Pixiv job of one configuration.
pub type Session = crate::session::Session<PixivAuth>;

impl Authority for PixivAuth {
    type State = PixivState;
    type Record = StoredToken;
    type Error = WalkError;

    fn name(&self) -> &'static str {
        "pixiv"
    }

    fn refresh(&self, ex: &dyn Exchange, st: &mut PixivState) -> Result<TokenGrant<StoredToken>, WalkError> {
        let Some(refresh) = st.refresh.clone() else {
            return Err(park(
                "no Pixiv refresh token is configured; set pixiv.refresh_token or run `spoolfetch pixiv login`",
            ));
        };
        if let Some(why) = &st.rejected {
            return Err(park(why));
        }
        let resp = ex
            .exchange(refresh_request(&self.settings, &refresh))
            .map_err(|e| WalkError::login_unreachable(e, "Pixiv's login server", UNAVAILABLE_RETRY))?;
        match parse_grant(&resp) {
            Ok(g) => Ok(TokenGrant {
                access: g.access_token,
                valid_for: Duration::from_secs(g.expires_in).saturating_sub(REFRESH_EARLY),
                record: Some(StoredToken {
                    refresh_token: g.refresh_token,
                    user_id: g.user_id,
                    config_md5: self.settings.refresh_token.as_deref().map(md5_hex),
                    saved: crate::job::unix_now(),
                }),
            }),
            Err(AuthError::Rejected(m)) => {
                let why = format!(
                    "the Pixiv refresh token was rejected ({m}); run `spoolfetch pixiv refresh TOKEN` or `spoolfetch pixiv login`"
                );
                log::error!("pixiv: {why}");
                st.rejected = Some(why.clone());
                Err(park(&why))
            }
            Err(e @ AuthError::Unavailable(_)) => {
                Err(WalkError::Wait { reason: e.to_string(), retry_in: UNAVAILABLE_RETRY })
            }
        }
    }

    fn adopt(&self, st: &mut PixivState, record: StoredToken) {
        if st.refresh.as_deref() != Some(record.refresh_token.as_str()) {
            log::info!("pixiv: the refresh token was rotated; the new one is saved");
        }
        st.refresh = Some(record.refresh_token);
        st.user_id = record.user_id;
    }

    fn stored_elsewhere(&self, st: &mut PixivState, record: StoredToken) -> bool {
        // `spoolfetch pixiv refresh` (or another daemon) stored a token.
        if st.refresh.as_deref() == Some(record.refresh_token.as_str()) {
            return false;
        }
        log::info!(
            "pixiv: using the refresh token stored in {}",
            token_path(&self.settings.state_dir).display()
        );
        st.refresh = Some(record.refresh_token);
        st.rejected = None;
        true
    }
}

impl crate::session::Session<PixivAuth> {
    /// The session of these settings in `sessions`, made on first use.
    pub fn shared(sessions: &Sessions, settings: &Settings) -> Arc<Session> {
        let key = format!("{}\n{}", settings.state_dir.display(), settings.oauth_url);
        sessions.get_or_insert(&key, || Session::open(settings))
    }

    /// A session starting from the stored or configured token.
    pub fn open(settings: &Settings) -> Session {
        let state = PixivState {
            refresh: initial_token(settings),
            user_id: load_token(&settings.state_dir).map_or(0, |t| t.user_id),
            rejected: None,
        };
        Session::new(
            PixivAuth { settings: settings.clone() },
            TokenStore::new(token_path(&settings.state_dir)),
            state,
        )
    }

    /// The token owner's user id (0 until the first refresh).
    pub fn user_id(&self) -> u64 {
        self.inspect(|st| st.user_id)
    }
}

/// A parked job's wait.
fn park(reason: &str) -> WalkError {
    WalkError::Wait { reason: reason.to_string(), retry_in: PARKED_RETRY }
}

/// PKCE: a verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let bytes: Vec<u8> = (0..32).map(|_| fastrand::u8(..)).collect();
    let verifier = base64url(&bytes);
    let challenge = pkce_challenge(&verifier);
    (verifier, challenge)
}

/// `base64url(sha256(verifier))` without padding.
pub fn pkce_challenge(verifier: &str) -> String {
    use sha2::Sha256;
    let mut h = Sha256::new();
    h.update(verifier.as_bytes());
    base64url(&h.finalize())
}

/// The browser URL of the PKCE login.
pub fn login_url(challenge: &str) -> String {
    format!(
        "https://app-api.pixiv.net/web/v1/login?code_challenge={challenge}&code_challenge_method=S256&client=pixiv-android"
    )
}

/// Base64url without padding (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 2);
    for chunk in bytes.chunks(3) {
        let n = match chunk.len() {
            3 => u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]),
            2 => u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8,
            _ => u32::from(chunk[0]) << 16,
        };
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_time_and_hash() {
        assert_eq!(client_time(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(client_time(1_735_734_896), "2025-01-01T12:34:56+00:00");
        assert_eq!(client_time(951_782_400), "2000-02-29T00:00:00+00:00");
        let h = client_hash("2025-01-01T12:34:56+00:00");
        assert_eq!(h.len(), 32);
        assert_eq!(h, md5_hex(&format!("2025-01-01T12:34:56+00:00{HASH_SECRET}")));
    }

    #[test]
    fn pkce_challenge_matches_a_reference() {
        // Reference value from Python: base64.urlsafe_b64encode(
        // hashlib.sha256(verifier).digest()) without the padding.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU-p1r_mW1gZ-Q1n1iY"),
            "zwMFrE5B40bpSkzU3Ejf0EJdZs2lI3ByGpVqiI6JrWc"
        );
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
    }

    #[test]
    fn grants_parse_either_copy_and_errors() {
        let ok = ApiResponse {
            status: 200,
            body: br#"{"access_token":"A","expires_in":3600,"refresh_token":"R","user":{"id":"123","name":"n"},
                      "response":{"access_token":"A","expires_in":3600,"refresh_token":"R","user":{"id":"123","name":"n"}}}"#
                .to_vec(),
            ..ApiResponse::default()
        };
        let g = parse_grant(&ok).expect("grant");
        assert_eq!((g.access_token.as_str(), g.refresh_token.as_str(), g.user_id), ("A", "R", 123));
        let top_only = ApiResponse {
            status: 200,
            body: br#"{"access_token":"B","refresh_token":"S","expires_in":60}"#.to_vec(),
            ..ApiResponse::default()
        };
        assert_eq!(parse_grant(&top_only).expect("top").access_token, "B");
        let bad = ApiResponse {
            status: 400,
            body: br#"{"has_error":true,"errors":{"system":{"message":"Invalid refresh token","code":1508}},"error":"invalid_grant"}"#.to_vec(),
            ..ApiResponse::default()
        };
        assert_eq!(parse_grant(&bad), Err(AuthError::Rejected("Invalid refresh token".into())));
        let html =
            ApiResponse { status: 403, body: b"<html>captcha</html>".to_vec(), ..ApiResponse::default() };
        assert!(matches!(parse_grant(&html), Err(AuthError::Unavailable(_))));
    }

    #[test]
    fn stored_token_is_private_and_config_changes_win() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        store_token(dir.path(), "rotated", 7, Some("configured")).expect("store");
        let mode = std::fs::metadata(token_path(dir.path())).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "token file mode {mode:o}");
        let mut s = crate::providers::pixiv::settings(&crate::config::Config::default_for(&|_| None));
        s.state_dir = dir.path().to_path_buf();
        s.refresh_token = Some("configured".into());
        assert_eq!(initial_token(&s).as_deref(), Some("rotated"));
        s.refresh_token = Some("a-new-one".into());
        assert_eq!(initial_token(&s).as_deref(), Some("a-new-one"));
    }
}
