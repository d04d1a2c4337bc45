//! The msToken an account's queries carry, fetched from the token endpoint
//! and kept for a while.
//!
//! Owns the per-account cache (process-wide: every job of one login sends
//! the same token, as one browser would) and the fallback. The token is
//! asked for with F2's report (`sign::ms_token_request`, docs/douyin.md
//! "Tokens") on the account's own `mssdk` lane, so it is paced with the
//! account and never read by the web API's classifier. Invariants: at
//! most one fetch per account at a time (the others wait for its result);
//! a token is used for at most [`LIFETIME`]; when the endpoint fails or
//! hands out a token of a length the site never issues, the queries carry
//! a generated one (F2's fallback) and the endpoint is asked again after
//! [`RETRY_AFTER`], with one warning per account and process, not one per
//! call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::sign::{MS_TOKEN_STR_DATA, fallback_ms_token, ms_token_from, ms_token_request, now_ms};
use crate::pacing::{ApiError, ApiRequest};
use crate::providers::Api;

/// How long a served token is used. F2 asks once per run; a daemon runs
/// for weeks, and the token endpoint sets the cookie for a day.
pub const LIFETIME: Duration = Duration::from_secs(3600);
/// How long a generated token stands in before the endpoint is asked again.
pub const RETRY_AFTER: Duration = Duration::from_secs(600);
/// The lane the token requests go on.
pub const LANE: &str = "mssdk";

/// One account's token.
#[derive(Debug, Default)]
struct Slot {
    /// The token, until when it is used, and whether it is a generated one.
    token: Option<(String, Instant, bool)>,
    /// Whether the fallback was announced for this account already.
    warned: bool,
}

/// Every account's slot.
fn slots() -> &'static Mutex<HashMap<String, Arc<Mutex<Slot>>>> {
    static SLOTS: OnceLock<Mutex<HashMap<String, Arc<Mutex<Slot>>>>> = OnceLock::new();
    SLOTS.get_or_init(Mutex::default)
}

/// The request for a token from the endpoint at `mssdk_url`.
pub fn request(mssdk_url: &str, user_agent: &str) -> ApiRequest {
    ms_token_request(&format!("{mssdk_url}/web/report"), user_agent, MS_TOKEN_STR_DATA, now_ms())
        .on_lane(LANE)
}

/// The msToken of `account` now: the cached one, else one fetched from
/// `mssdk_url` through `api`, else a generated one.
pub fn ms_token(account: &str, mssdk_url: &str, user_agent: &str, api: &Api) -> String {
    let slot = {
        let mut all = slots().lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(all.entry(account.to_string()).or_default())
    };
    let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((token, until, _)) = &slot.token
        && Instant::now() < *until
    {
        return token.clone();
    }
    let fetched = match api.call(request(mssdk_url, user_agent)) {
        Ok(resp) => ms_token_from(&resp).map_err(|e| e.to_string()),
        // The job stops: its next call fails the same way, nothing to
        // remember or announce.
        Err(ApiError::Interrupted | ApiError::ShuttingDown) => {
            return fallback_ms_token(&mut fastrand::Rng::new());
        }
        Err(e) => Err(e.to_string()),
    };
    let (token, lifetime, generated) = match fetched {
        Ok(t) => {
            log::debug!("{account}: a fresh msToken from the token endpoint");
            (t, LIFETIME, false)
        }
        Err(why) => {
            if !slot.warned {
                slot.warned = true;
                log::warn!(
                    "{account}: no msToken from {}/web/report ({why}); queries carry a generated one, as F2's do, and the endpoint is asked again every {} minutes",
                    crate::http::display_url(mssdk_url),
                    RETRY_AFTER.as_secs() / 60
                );
            }
            // The stand-in is kept until the next try: a browser does not
            // change its token from one call to the next.
            let kept = slot.token.as_ref().filter(|(_, _, generated)| *generated).map(|(t, _, _)| t.clone());
            (kept.unwrap_or_else(|| fallback_ms_token(&mut fastrand::Rng::new())), RETRY_AFTER, true)
        }
    };
    slot.token = Some((token.clone(), Instant::now() + lifetime, generated));
    token
}
