//! Octoparse tokens: the password grant, single-use refresh tokens, and
//! the session all jobs of an account share.
//!
//! A refresh token works once (docs/octoparse.md): the new one is saved atomically,
//! mode 0600, before the new access token is used, and the session's mutex
//! is held across a refresh so two jobs never spend the same token. A
//! refused refresh falls back to the password grant.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::settings::Settings;
use crate::durable::atomic_write_mode;
use crate::pacing::{ApiError, ApiRequest, ApiResponse};
use crate::providers::{Api, WalkError};

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
struct StoredToken {
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

/// Session state.
#[derive(Debug, Default)]
struct State {
    /// The access token.
    access: Option<String>,
    /// When to refresh it (90 % of its lifetime).
    refresh_at: Option<Instant>,
    /// The single-use refresh token.
    refresh: Option<String>,
    /// Bumped per access token.
    generation: u64,
}

/// The login shared by every job of one account.
#[derive(Debug)]
pub struct Session {
    /// Settings.
    settings: Settings,
    /// State; the lock is held across a token request.
    state: Mutex<State>,
}

/// Sessions by (state folder, origin, user).
type Sessions = Mutex<HashMap<(PathBuf, String, String), Arc<Session>>>;

/// Every session of the process.
static SESSIONS: OnceLock<Sessions> = OnceLock::new();

impl Session {
    /// The shared session of an account.
    pub fn shared(settings: &Settings) -> Arc<Session> {
        let map = SESSIONS.get_or_init(|| Mutex::new(HashMap::new()));
        let key = (
            settings.state_dir.clone(),
            settings.base_url.clone(),
            settings.username.clone().unwrap_or_default(),
        );
        let mut m = match map.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        Arc::clone(m.entry(key).or_insert_with(|| {
            let stored = settings.username.as_deref().and_then(|u| {
                let bytes = std::fs::read(token_path(&settings.state_dir, &settings.base_url, u)).ok()?;
                serde_json::from_slice::<StoredToken>(&bytes).ok().filter(|t| t.username == u)
            });
            Arc::new(Session {
                settings: settings.clone(),
                state: Mutex::new(State { refresh: stored.map(|t| t.refresh_token), ..State::default() }),
            })
        }))
    }

    /// Locks the state.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A valid access token and its generation.
    pub fn access(&self, api: &Api) -> Result<(String, u64), WalkError> {
        let mut st = self.lock();
        if let (Some(a), Some(at)) = (&st.access, st.refresh_at)
            && Instant::now() < at
        {
            return Ok((a.clone(), st.generation));
        }
        let (Some(user), Some(pass)) = (self.settings.username.clone(), self.settings.password.clone())
        else {
            return Err(WalkError::Invalid(
                "Octoparse needs octoparse.username and octoparse.password in the configuration".into(),
            ));
        };
        let url = format!("{}/token", self.settings.base_url);
        if let Some(rt) = st.refresh.take() {
            let req = ApiRequest::post_form(
                url.clone(),
                &[("refresh_token", &rt), ("grant_type", "refresh_token")],
            );
            match grant(api, req)? {
                Ok(body) => return self.accept(&mut st, &user, body),
                Err(why) => log::info!(
                    "octoparse: the refresh token was refused ({why}); logging in with the password"
                ),
            }
        }
        let req = ApiRequest::post_form(
            url,
            &[("username", &user), ("password", &pass), ("grant_type", "password")],
        );
        match grant(api, req)? {
            Ok(body) => self.accept(&mut st, &user, body),
            Err(why) => Err(WalkError::Invalid(format!("Octoparse login failed: {why}"))),
        }
    }

    /// Stores a granted token: the refresh token is durable before the
    /// access token is handed out.
    fn accept(&self, st: &mut State, user: &str, body: TokenBody) -> Result<(String, u64), WalkError> {
        let access = body.access_token.filter(|a| !a.is_empty()).ok_or_else(|| {
            WalkError::Invalid("Octoparse answered the login without an access_token".into())
        })?;
        if let Some(rt) = &body.refresh_token {
            let stored = StoredToken {
                refresh_token: rt.clone(),
                username: user.to_string(),
                saved: crate::job::unix_now(),
            };
            let path = token_path(&self.settings.state_dir, &self.settings.base_url, user);
            let saved = std::fs::create_dir_all(&self.settings.state_dir)
                .and_then(|()| serde_json::to_vec_pretty(&stored).map_err(std::io::Error::other))
                .and_then(|b| atomic_write_mode(&path, &b, 0o600));
            if let Err(e) = saved {
                return Err(WalkError::Invalid(format!(
                    "cannot save the Octoparse refresh token in {}: {e}",
                    path.display()
                )));
            }
        }
        let ttl = body.expires_in.unwrap_or(86_399);
        st.refresh = body.refresh_token;
        st.access = Some(access.clone());
        st.refresh_at = Some(Instant::now() + Duration::from_secs(ttl * 9 / 10));
        st.generation += 1;
        Ok((access, st.generation))
    }

    /// Forgets the access token of `generation` after a 401.
    pub fn invalidate(&self, generation: u64) {
        let mut st = self.lock();
        if st.generation == generation {
            st.access = None;
        }
    }
}

/// Makes a token request; `Ok(Err(reason))` when the server refused it.
fn grant(api: &Api, req: ApiRequest) -> Result<Result<TokenBody, String>, WalkError> {
    let resp: ApiResponse = api.call(req).map_err(|e| match e {
        ApiError::Interrupted | ApiError::ShuttingDown => WalkError::Api(e),
        other => WalkError::Wait {
            reason: format!("cannot reach the Octoparse login: {other}"),
            retry_in: Duration::from_secs(30),
        },
    })?;
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
