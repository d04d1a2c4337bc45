//! DataAPI calls: the `{"data", "error", "error_Description"}` envelope,
//! error codes, and the pacer's reading of answers.

use std::sync::Arc;

use serde_json::Value;

use super::auth::Session;
use super::settings::Settings;
use crate::http::encode_query;
use crate::pacing::{ApiRequest, ApiResponse, Body, Verdict, classify_answer};
use crate::providers::{Api, WalkError};
use crate::session::{Failure, call_with_reauth};

/// The pacer's reading: 429 (`quota_exceeded`) is a rate limit; 5xx and
/// `server_error`/`service_unavailable` (also inside a 200) are passing.
pub fn classify(resp: &ApiResponse) -> Verdict {
    classify_answer(resp, |retry_after| {
        let code = serde_json::from_slice::<Value>(&resp.body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_ascii_lowercase));
        match code.as_deref() {
            Some("quota_exceeded") => Some(Verdict::RateLimited(retry_after)),
            Some(c @ ("server_error" | "service_unavailable")) => Some(Verdict::Retry(c.to_string())),
            _ => None,
        }
    })
}

/// An authorized DataAPI client for one job.
#[derive(Debug, Clone)]
pub struct Client {
    /// Paced calls.
    pub api: Api,
    /// The shared login.
    pub session: Arc<Session>,
    /// Settings.
    pub settings: Arc<Settings>,
}

/// A clear one-line message for a documented error code.
fn explain(code: &str, description: &str) -> String {
    let hint = match code {
        "invalid_grant" => "the user name or password is wrong, or the token was revoked",
        "unsupported_grant_type" => "the login request was malformed",
        "unauthorized" => "the access token was not accepted",
        "user_not_allowed" => "this account may not use the DataAPI (check the plan)",
        "not_found" => "the API path does not exist (wrong base_url?)",
        "method_not_allowed" | "method_not_allow" => "the API refused the request method",
        "quota_exceeded" => "the request quota is used up",
        "service_unavailable" => "the service is unavailable",
        "taskid_error" => "the task id is wrong or the task belongs to another account",
        "export_pagesize_error" => "the batch size must be from 1 to 1000",
        _ => "",
    };
    match (description.is_empty(), hint.is_empty()) {
        (false, _) => format!("Octoparse {code}: {description}"),
        (true, false) => format!("Octoparse {code}: {hint}"),
        (true, true) => format!("Octoparse {code}"),
    }
}

impl Client {
    /// Calls an endpoint; the envelope's `data` on success.
    pub fn call(&self, method: &str, path: &str, query: &[(String, String)]) -> Result<Value, WalkError> {
        let url = format!("{}/{path}?{}", self.settings.base_url, encode_query(query));
        call_with_reauth(&self.session, &self.api, |access| {
            let mut req =
                ApiRequest::get(url.clone()).header("Authorization", format!("bearer {}", access.token));
            req.method = method.to_string();
            if method == "POST" {
                // Both POSTs of this API (`notexportdata/update`,
                // `removeDataByTaskId`) have the same effect when repeated
                // (docs/octoparse.md), so a timeout may send them again.
                req = req.with_body(Body::Bytes(Vec::new())).idempotent(true);
            }
            let resp = self.api.call(req).map_err(|e| Failure::Other(WalkError::Api(e)))?;
            let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            let code = v.get("error").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
            let description = v
                .get("error_Description")
                .or_else(|| v.get("error_description"))
                .or_else(|| v.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if resp.is_success() && code == "success" {
                return Ok(v.get("data").cloned().unwrap_or(Value::Null));
            }
            let unauthorized = resp.status == 401 || code == "unauthorized";
            let code = if code.is_empty() {
                match resp.status {
                    400 => "client_error".to_string(),
                    401 => "unauthorized".into(),
                    404 => "not_found".into(),
                    405 => "method_not_allowed".into(),
                    s => format!("HTTP {s}"),
                }
            } else {
                code
            };
            let failure = WalkError::Invalid(explain(&code, &description));
            Err(if unauthorized { Failure::Unauthorized(failure) } else { Failure::Other(failure) })
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
    fn classification() {
        assert_eq!(classify(&resp(429, r#"{"error":"quota_exceeded"}"#)), Verdict::RateLimited(None));
        assert!(matches!(classify(&resp(200, r#"{"error":"server_error"}"#)), Verdict::Retry(_)));
        assert!(matches!(classify(&resp(503, "")), Verdict::Retry(_)));
        assert_eq!(classify(&resp(200, r#"{"error":"taskid_error"}"#)), Verdict::Accept);
    }

    #[test]
    fn messages_are_clear() {
        assert_eq!(
            explain("taskid_error", ""),
            "Octoparse taskid_error: the task id is wrong or the task belongs to another account"
        );
        assert_eq!(
            explain("export_pagesize_error", "Size range from 1 to 1000"),
            "Octoparse export_pagesize_error: Size range from 1 to 1000"
        );
    }
}
