//! Reading PicWish's answers: the envelope, the task states, and what
//! each HTTP status means for an input.
//!
//! Owns the mapping docs/picwish.md tabulates. Invariant: every answer
//! ends as exactly one of "go on", "poll again", "try a new task",
//! "this input fails" or "the job waits", with a one-line reason that
//! never quotes a key or token.

use serde_json::Value;

use crate::pacing::{ApiResponse, Verdict, classify_answer};

/// Reads an answer's rate limits: HTTP 429, or a body whose `status` is
/// 429 (the body mirrors the HTTP status, and a proxy may answer 200).
fn rate_limited_body(resp: &ApiResponse) -> bool {
    resp.status != 429
        && serde_json::from_slice::<Value>(&resp.body).is_ok_and(|v| v["status"].as_i64() == Some(429))
}

/// The official API's classifier.
pub fn classify_api(resp: &ApiResponse) -> Verdict {
    classify_answer(resp, |after| rate_limited_body(resp).then_some(Verdict::RateLimited(after)))
}

/// The web gateway's classifier.
pub fn classify_web(resp: &ApiResponse) -> Verdict {
    classify_api(resp)
}

/// An answer's JSON (`Null` when it is none).
pub fn body(resp: &ApiResponse) -> Value {
    serde_json::from_slice(&resp.body).unwrap_or(Value::Null)
}

/// The server's own words, cut to one short line.
pub fn message(v: &Value) -> String {
    let m = v["message"].as_str().or_else(|| v["msg"].as_str()).unwrap_or("");
    let m: String = m.chars().filter(|c| !c.is_control()).take(160).collect();
    if m.is_empty() { String::new() } else { format!(": {m}") }
}

/// Whether an answer says the account's credits are used up.
pub fn out_of_credits(resp: &ApiResponse, v: &Value) -> bool {
    if resp.status == 402 || v["status"].as_i64() == Some(402) {
        return true;
    }
    let m = v["message"].as_str().unwrap_or("").to_ascii_lowercase();
    m.contains("insufficient credit")
        || m.contains("credits are not enough")
        || m.contains("not enough credit")
}

/// What a task's `state` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Finished: the result is there.
    Done,
    /// Queued, preparing, waiting or processing.
    Working,
    /// Failed in a way a new task may not: `-1`, `-2`, `-8`.
    Retryable(String),
    /// Failed for this input for good.
    Failed(String),
}

/// Reads a task's `state` (and its detail, for the reason).
pub fn task_state(state: i64, detail: &str) -> TaskState {
    let detail = if detail.is_empty() { String::new() } else { format!(", {detail}") };
    match state {
        1 => TaskState::Done,
        0 | 2 | 3 | 4 => TaskState::Working,
        -1 => TaskState::Retryable(format!("PicWish failed the task (state -1{detail})")),
        -2 => TaskState::Retryable(format!("PicWish could not store the result (state -2{detail})")),
        -8 => TaskState::Retryable(format!("PicWish timed out processing it (state -8{detail})")),
        -3 => TaskState::Failed(format!("PicWish could not download the source URL (state -3{detail})")),
        -5 => TaskState::Failed(format!("the image is over PicWish's 15 MB limit (state -5{detail})")),
        -7 => TaskState::Failed(format!("PicWish says it is not a valid image (state -7{detail})")),
        n if n < 0 => TaskState::Failed(format!("PicWish failed the task (state {n}{detail})")),
        // A state this build does not know: keep looking, bounded by the
        // task's lifetime.
        _ => TaskState::Working,
    }
}

/// What an HTTP status other than 200 means for an input (the job-level
/// cases, 402 and 429, are handled before).
pub fn http_failure(status: u16, v: &Value) -> (String, bool) {
    let m = message(v);
    match status {
        400 => (format!("PicWish refused the request as invalid (HTTP 400{m})"), true),
        401 => (format!("PicWish refused the API key (HTTP 401{m}); check picwish.api_key"), false),
        404 => (format!("PicWish does not know the task (HTTP 404{m})"), false),
        413 => (format!("the file is too large for PicWish (HTTP 413{m})"), true),
        s if s >= 500 => (format!("PicWish had a server error (HTTP {s}{m})"), false),
        s => (format!("PicWish answered HTTP {s}{m}"), s < 500),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resp(status: u16, body: Value) -> ApiResponse {
        ApiResponse { status, body: body.to_string().into_bytes(), ..ApiResponse::default() }
    }

    #[test]
    fn every_documented_state_has_its_meaning() {
        assert_eq!(task_state(1, ""), TaskState::Done);
        for s in [0, 2, 3, 4] {
            assert_eq!(task_state(s, ""), TaskState::Working);
        }
        for s in [-1, -2, -8] {
            assert!(matches!(task_state(s, ""), TaskState::Retryable(_)), "{s}");
        }
        for s in [-3, -5, -7, -9, -10, -11, -13, -14, -15, -16, -17] {
            assert!(matches!(task_state(s, ""), TaskState::Failed(_)), "{s}");
        }
        let TaskState::Failed(r) = task_state(-7, "invalid image") else { panic!("failed") };
        assert!(r.contains("state -7, invalid image"), "{r}");
    }

    #[test]
    fn rate_limits_and_credits_are_read_from_status_and_body() {
        assert!(matches!(classify_api(&resp(429, json!({"status": 429}))), Verdict::RateLimited(_)));
        assert!(matches!(classify_api(&resp(200, json!({"status": 429}))), Verdict::RateLimited(_)));
        assert_eq!(classify_api(&resp(200, json!({"status": 200}))), Verdict::Accept);
        assert!(out_of_credits(&resp(402, json!({})), &json!({})));
        let v = json!({"status": 400, "message": "Insufficient credits"});
        assert!(out_of_credits(&resp(400, v.clone()), &v));
        let v = json!({"status": 400, "message": "bad"});
        assert!(!out_of_credits(&resp(400, v.clone()), &v));
    }

    #[test]
    fn http_statuses_fail_an_input_for_good_or_for_now() {
        assert!(http_failure(400, &json!({})).1);
        assert!(http_failure(413, &json!({})).1);
        assert!(!http_failure(401, &json!({})).1);
        assert!(!http_failure(500, &json!({})).1);
        assert!(http_failure(401, &json!({"message": "key disabled"})).0.contains("key disabled"));
    }
}
