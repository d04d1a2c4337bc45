//! App API calls: authorization, the error envelope, and the classifier
//! that lets the pacer see rate limits hidden in 403 bodies.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::auth::{Session, app_headers};
use super::model::ErrorBody;
use super::settings::Settings;
use crate::http::encode_query;
use crate::pacing::{ApiError, ApiRequest, ApiResponse, Verdict, classify_answer};
use crate::providers::{Api, WalkError};
use crate::session::{Failure, call_with_reauth};

/// The Referer the image host requires: without one on a pixiv host it answers 403.
pub const REFERER: &str = "https://app-api.pixiv.net/";

/// How a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// 404: the work or user is gone.
    NotFound(String),
    /// Another API error, with the server's message.
    Api(String),
    /// The listing must stop or wait (transport, shutdown, login).
    Walk(WalkError),
}

impl From<WalkError> for CallError {
    fn from(e: WalkError) -> Self {
        CallError::Walk(e)
    }
}

impl CallError {
    /// Turns any failure into a listing error (for calls whose failure
    /// ends the listing).
    pub fn into_walk(self, what: &str) -> WalkError {
        match self {
            CallError::Walk(w) => w,
            CallError::NotFound(m) => WalkError::Invalid(format!("{what}: not found ({m})")),
            CallError::Api(m) => WalkError::Invalid(format!("{what}: {m}")),
        }
    }
}

/// The pacer's reading of Pixiv answers: "Rate Limit" in the error body is
/// a rate limit whatever the status (docs/pixiv.md); a non-JSON error
/// page (Cloudflare, a proxy) and 5xx are passing failures.
pub fn classify(resp: &ApiResponse) -> Verdict {
    classify_answer(resp, |retry_after| {
        if resp.is_success() {
            return Some(Verdict::Accept);
        }
        // Any JSON body is Pixiv talking (the OAuth endpoint's errors have
        // another shape than the API's envelope); its status decides.
        match serde_json::from_slice::<serde_json::Value>(&resp.body) {
            Ok(v) => v
                .pointer("/error/message")
                .and_then(|m| m.as_str())
                .is_some_and(|m| m.to_ascii_lowercase().contains("rate limit"))
                .then_some(Verdict::RateLimited(retry_after)),
            // Anything else is not Pixiv talking.
            Err(_) => Some(Verdict::Retry(format!(
                "HTTP {} with a non-JSON answer (a proxy or Cloudflare page?)",
                resp.status
            ))),
        }
    })
}

/// An authorized App API client for one job.
#[derive(Debug, Clone)]
pub struct Client {
    /// Paced calls for this job.
    pub api: Api,
    /// The shared login.
    pub session: Arc<Session>,
    /// Settings.
    pub settings: Arc<Settings>,
}

impl Client {
    /// GETs `path` with `query` and decodes the answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str, query: &[(String, String)]) -> Result<T, CallError> {
        let resp = self.get_raw(path, query)?;
        serde_json::from_slice(&resp.body).map_err(|e| {
            CallError::Walk(WalkError::Api(ApiError::Transport {
                reason: format!("unexpected answer from {path}: {e}"),
                transient: true,
            }))
        })
    }

    /// GETs `path` with `query`; the body of a 2xx answer.
    pub fn get_raw(&self, path: &str, query: &[(String, String)]) -> Result<ApiResponse, CallError> {
        let url = if query.is_empty() {
            format!("{}{path}", self.settings.api_url)
        } else {
            format!("{}{path}?{}", self.settings.api_url, encode_query(query))
        };
        // One retry after a refresh, never more: refreshing on every 400
        // can get a refresh token revoked (docs/pixiv.md).
        call_with_reauth(&self.session, &self.api, |access| {
            let req = app_headers(ApiRequest::get(url.clone()), &self.settings.accept_language)
                .header("Authorization", format!("Bearer {}", access.token))
                .header("Referer", REFERER);
            let resp = self.api.call(req).map_err(|e| Failure::Other(CallError::Walk(WalkError::Api(e))))?;
            if resp.is_success() {
                return Ok(resp);
            }
            let err = serde_json::from_slice::<ErrorBody>(&resp.body).unwrap_or_default().error;
            let failure = match resp.status {
                404 => CallError::NotFound(err.text()),
                s => CallError::Api(format!("HTTP {s}: {}", err.text())),
            };
            // An expired token is a 400 with this message, not a 401.
            Err(if err.message.contains("Error occurred at the OAuth process") {
                Failure::Unauthorized(failure)
            } else {
                Failure::Other(failure)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> ApiResponse {
        ApiResponse { status, body: body.as_bytes().to_vec(), ..ApiResponse::default() }
    }

    #[test]
    fn rate_limit_is_read_from_the_body() {
        let rl =
            r#"{"error":{"user_message":"","message":"Rate Limit","reason":"","user_message_details":{}}}"#;
        let oauth = r#"{"has_error":true,"errors":{"system":{"message":"Invalid refresh token","code":1508}},"error":"invalid_grant"}"#;
        assert_eq!(classify(&resp(400, oauth)), Verdict::Accept, "the caller reads OAuth errors");
        assert_eq!(classify(&resp(403, rl)), Verdict::RateLimited(None));
        assert_eq!(classify(&resp(400, rl)), Verdict::RateLimited(None));
        assert!(matches!(classify(&resp(403, "<html>cf</html>")), Verdict::Retry(_)));
        assert_eq!(classify(&resp(404, r#"{"error":{"user_message":"gone"}}"#)), Verdict::Accept);
        assert_eq!(classify(&resp(200, "<html>novel</html>")), Verdict::Accept);
        assert!(matches!(classify(&resp(502, r#"{"error":{}}"#)), Verdict::Retry(_)));
    }
}
