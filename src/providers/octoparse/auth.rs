//! Octoparse tokens: the password grant, single-use refresh tokens, and
//! the session all jobs of an account share.
//!
//! A refresh token works once (docs/octoparse.md). The session
//! ([`crate::session`]) saves the new one atomically, mode 0600, before the
//! new access token is used, and holds its lock across a refresh so two
//! jobs never spend the same token; this file is Octoparse's half of it
//! ([`OctoAuth`]). A refused refresh falls back to the password grant.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::settings::Settings;
use crate::pacing::{ApiRequest, ApiResponse};
use crate::providers::WalkError;
use crate::session::{Authority, Exchange, Grant as TokenGrant, Sessions, TokenStore};

/// The token answer.
#[derive(Debug, Default, Deserialize)]
struct TokenBody {
    /// Access token.
    #[serde(default)]
    access_token: Option<String>,
    /// Lifetime in seconds.
    #[serde(default)]
    expires_in: Option<u64>,
    /// The next refresh token.
    #[serde(default)]
    refresh_token: Option<String>,
    /// Error code.
    #[serde(default)]
    error: Option<String>,
    /// Error text (lower-case d on the token endpoint).
    #[serde(default)]
    error_description: Option<String>,
}

/// The stored refresh token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredToken {
    /// The refresh token to use next.
    refresh_token: String,
    /// The account it belongs to.
    username: String,
    /// When it was saved.
    saved: u64,
}

/// The token file of an account.
fn token_path(state_dir: &Path, base_url: &str, username: &str) -> PathBuf {
    let host = base_url.split("://").nth(1).unwrap_or(base_url).replace([':', '/'], "_");
    let user: String = username.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    state_dir.join(format!("octoparse-token-{host}-{user}.json"))
}

/// Octoparse's half of a session: the refresh grant, falling back to the
/// password grant.
#[derive(Debug)]
pub struct OctoAuth {
    /// Settings.
    settings: Settings,
}

/// What an Octoparse session keeps between token requests.
#[derive(Debug, Default)]
pub struct OctoState {
    /// The single-use refresh token.
    refresh: Option<String>,
}

/// The login shared by every job of one account.
pub type Session = crate::session::Session<OctoAuth>;

/// How long a job waits when the login cannot be reached.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(30);

impl Authority for OctoAuth {
    type State = OctoState;
    type Record = StoredToken;
    type Error = WalkError;

    fn name(&self) -> &'static str {
        "octoparse"
    }

    fn refresh(&self, ex: &dyn Exchange, st: &mut OctoState) -> Result<TokenGrant<StoredToken>, WalkError> {
        let (Some(user), Some(pass)) = (self.settings.username.as_deref(), self.settings.password.as_deref())
        else {
            return Err(WalkError::Invalid(
                "Octoparse needs octoparse.username and octoparse.password in the configuration".into(),
            ));
        };
        let url = format!("{}/token", self.settings.base_url);
        // Taken, not cloned: a refresh token works once, whatever answer
        // comes back.
        if let Some(rt) = st.refresh.take() {
            let req = ApiRequest::post_form(
                url.clone(),
                &[("refresh_token", &rt), ("grant_type", "refresh_token")],
            );
            match grant(ex, req)? {
                Ok(body) => return self.accept(user, body),
                Err(why) => log::info!(
                    "octoparse: the refresh token was refused ({why}); logging in with the password"
                ),
            }
        }
        let req =
            ApiRequest::post_form(url, &[("username", user), ("password", pass), ("grant_type", "password")]);
        match grant(ex, req)? {
            Ok(body) => self.accept(user, body),
            Err(why) => Err(WalkError::Invalid(format!("Octoparse login failed: {why}"))),
        }
    }

    fn adopt(&self, st: &mut OctoState, record: StoredToken) {
        st.refresh = Some(record.refresh_token);
    }
}

impl OctoAuth {
    /// The grant of a token answer; its refresh token is saved by the
    /// session before the access token is handed out.
    fn accept(&self, user: &str, body: TokenBody) -> Result<TokenGrant<StoredToken>, WalkError> {
        let access = body.access_token.filter(|a| !a.is_empty()).ok_or_else(|| {
            WalkError::Invalid("Octoparse answered the login without an access_token".into())
        })?;
        let ttl = body.expires_in.unwrap_or(86_399);
        Ok(TokenGrant {
            access,
            // Refreshed at 90 % of its lifetime.
            valid_for: Duration::from_secs(ttl * 9 / 10),
            record: body.refresh_token.map(|rt| StoredToken {
                refresh_token: rt,
                username: user.to_string(),
                saved: crate::job::unix_now(),
            }),
        })
    }
}

impl crate::session::Session<OctoAuth> {
    /// The session of an account in `sessions`, made on first use from
    /// the stored refresh token.
    pub fn shared(sessions: &Sessions, settings: &Settings) -> Arc<Session> {
        let user = settings.username.clone().unwrap_or_default();
        let key = format!("{}\n{}\n{user}", settings.state_dir.display(), settings.base_url);
        sessions.get_or_insert(&key, || {
            let store = TokenStore::new(token_path(&settings.state_dir, &settings.base_url, &user));
            let refresh = store
                .load::<StoredToken>()
                .filter(|t| settings.username.is_some() && t.username == user)
                .map(|t| t.refresh_token);
            Session::new(OctoAuth { settings: settings.clone() }, store, OctoState { refresh })
        })
    }
}

/// Makes a token request; `Ok(Err(reason))` when the server refused it.
fn grant(ex: &dyn Exchange, req: ApiRequest) -> Result<Result<TokenBody, String>, WalkError> {
    let resp: ApiResponse = ex
        .exchange(req)
        .map_err(|e| WalkError::login_unreachable(e, "the Octoparse login", UNAVAILABLE_RETRY))?;
    let body: TokenBody = serde_json::from_slice(&resp.body).unwrap_or_default();
    if resp.is_success() && body.access_token.is_some() {
        return Ok(Ok(body));
    }
    let code = body.error.unwrap_or_else(|| format!("HTTP {}", resp.status));
    Ok(Err(match body.error_description {
        Some(d) => format!("{code}: {d}"),
        None => code,
    }))
}
