//! Douyin web API calls as F2 makes them, and what their answers mean.
//!
//! Owns the signed request (the query in F2's order, the signature over
//! its exact bytes appended last, computed again before every attempt so
//! a retry never sends a stale one; the User-Agent it was computed with;
//! the Referer; the cookie, which is never logged) and the reading of an
//! answer. Invariant: an answer that is not a usable page — a 200 with an
//! empty or non-JSON body, a `status_code` other than 0, a 403 from the
//! gateway — is *blocked*, never an empty page: the listing backs off and
//! keeps its cursor, and only a page that says `has_more: 0` ends it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::query::{Query, SignatureParam, signed_url};
use super::sign::{ABogusInputs, ExternalSigner, XBogusInputs, a_bogus, now_ms, x_bogus};
use crate::pacing::{ApiRequest, ApiResponse, Body, Signer, Verdict, classify_answer};
use crate::providers::WalkError;

/// Which signature requests carry.
#[derive(Debug, Clone)]
pub enum SignWith {
    /// A-Bogus (F2's default).
    ABogus,
    /// X-Bogus.
    XBogus,
    /// An external command (`douyin.signer`), sent as `a_bogus`.
    External(Arc<ExternalSigner>),
}

impl SignWith {
    /// The signature of `query` for `user_agent`.
    fn sign(&self, query: &str, user_agent: &str) -> Result<String, String> {
        match self {
            SignWith::ABogus => {
                let inputs = ABogusInputs::random(&mut fastrand::Rng::new());
                a_bogus(query, "", user_agent, &inputs, &mut now_ms).map_err(|e| e.to_string())
            }
            SignWith::XBogus => x_bogus(query, user_agent, XBogusInputs::now()).map_err(|e| e.to_string()),
            SignWith::External(cmd) => cmd.sign(query, user_agent).map_err(|e| e.to_string()),
        }
    }

    /// The parameter the signature goes under.
    fn param(&self) -> SignatureParam {
        match self {
            SignWith::XBogus => SignatureParam::XBogus,
            _ => SignatureParam::ABogus,
        }
    }
}

/// What every request of a job carries.
#[derive(Clone)]
pub struct Caller {
    /// The User-Agent, byte for byte the one signed.
    pub user_agent: String,
    /// The browser cookie (a secret: never logged or journaled).
    pub cookie: Option<String>,
    /// The signature.
    pub sign: SignWith,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("user_agent", &self.user_agent)
            .field("cookie", &self.cookie.is_some())
            .finish()
    }
}

impl Caller {
    /// A signed request of `query` to `endpoint` (a full URL without a
    /// query); `post` sends the query's fields as a JSON body too (the
    /// collection endpoint wants both).
    pub fn request(&self, endpoint: &str, query: &Query, post: bool) -> Result<ApiRequest, WalkError> {
        let encoded = query
            .encode()
            .map_err(|e| WalkError::Invalid(format!("a value Douyin's query cannot carry: {e}")))?;
        let unsigned = format!("{endpoint}?{encoded}");
        let mut req = if post {
            ApiRequest::new("POST", unsigned)
                .header("Content-Type", "application/json")
                .with_body(Body::Bytes(query.json_body().into_bytes()))
                // A listing call changes nothing on the server.
                .idempotent(true)
        } else {
            ApiRequest::get(unsigned)
        };
        req = req.header("User-Agent", &self.user_agent).header("Referer", "https://www.douyin.com/");
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        let (sign, ua, endpoint) = (self.sign.clone(), self.user_agent.clone(), endpoint.to_string());
        Ok(req.signed(Signer::new(move |r: &mut ApiRequest| {
            let sig = sign.sign(&encoded, &ua)?;
            r.url = signed_url(&endpoint, &encoded, sign.param(), &sig);
            Ok(())
        })))
    }
}

/// What an answer is.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A usable JSON answer.
    Page(Value),
    /// Blocked or rejected: back off, keep the cursor.
    Blocked(String),
    /// The login cookie is missing, expired or refused.
    Cookie(String),
    /// What was asked for does not exist.
    NotFound(String),
}

/// Reads an answer.
pub fn read(resp: &ApiResponse) -> Answer {
    match resp.status {
        401 => return Answer::Cookie("Douyin refused the login cookie (HTTP 401)".into()),
        403 => return Answer::Blocked("HTTP 403 from Douyin's gateway".into()),
        404 => return Answer::NotFound("Douyin answered 404".into()),
        200..=299 => {}
        s => return Answer::Blocked(format!("HTTP {s}")),
    }
    if resp.body.iter().all(u8::is_ascii_whitespace) {
        return Answer::Blocked("an empty answer (Douyin's way of refusing a signature or a cookie)".into());
    }
    let Ok(v) = serde_json::from_slice::<Value>(&resp.body) else {
        return Answer::Blocked("an answer that is not JSON".into());
    };
    match v["status_code"].as_i64() {
        Some(0) | None => Answer::Page(v),
        Some(8) => Answer::Cookie("Douyin wants a login (status_code 8)".into()),
        Some(n) => {
            let msg = v["status_msg"].as_str().unwrap_or("");
            let msg: String = msg.chars().filter(|c| !c.is_control()).take(120).collect();
            Answer::Blocked(if msg.is_empty() {
                format!("status_code {n}")
            } else {
                format!("status_code {n}: {msg}")
            })
        }
    }
}

/// The pacer's reading: a block counts as a passing failure, so every call
/// of the account backs off together, and 429 as a rate limit.
pub fn classify(resp: &ApiResponse) -> Verdict {
    classify_answer(resp, |_| match read(resp) {
        Answer::Blocked(why) if resp.status != 403 => Some(Verdict::Retry(why)),
        _ => None,
    })
}

/// How long a job waits after Douyin kept refusing a page.
pub const BLOCKED_WAIT: Duration = Duration::from_secs(600);

/// What a listing does with an answer: a page, or why it waits.
pub fn page(resp: &ApiResponse) -> Result<Value, WalkError> {
    match read(resp) {
        Answer::Page(v) => Ok(v),
        Answer::Blocked(why) => {
            Err(WalkError::Wait { reason: format!("blocked by Douyin ({why})"), retry_in: BLOCKED_WAIT })
        }
        Answer::Cookie(why) => Err(WalkError::Wait {
            reason: format!("{why}; store a fresh browser cookie with `spoolfetch douyin cookie`"),
            retry_in: Duration::from_secs(300),
        }),
        Answer::NotFound(why) => Err(WalkError::Invalid(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::douyin::ClientProfile;
    use crate::providers::douyin::sign::verify_a_bogus;
    use serde_json::json;

    const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0";

    fn resp(status: u16, body: &[u8]) -> ApiResponse {
        ApiResponse { status, body: body.to_vec(), ..ApiResponse::default() }
    }

    #[test]
    fn every_attempt_is_signed_over_the_exact_query_sent() {
        let caller =
            Caller { user_agent: UA.into(), cookie: Some("sessionid=s3cret".into()), sign: SignWith::ABogus };
        let q = Query::user_posts(
            Query::common(&ClientProfile::default(), &"M".repeat(126)),
            0,
            20,
            "MS4wLjABAAAAfake",
        );
        let req =
            caller.request("https://www.douyin.com/aweme/v1/web/aweme/post/", &q, false).expect("request");
        let a = req.for_attempt().expect("signed");
        let b = req.for_attempt().expect("signed again");
        assert_ne!(a.url, b.url, "a fresh signature each attempt");
        let (head, sig) = a.url.rsplit_once("&a_bogus=").expect("signature last");
        let query = head.split_once('?').map(|(_, q)| q).expect("query");
        assert_eq!(query, q.encode().expect("encode"));
        assert!(verify_a_bogus(sig, query, "", UA, now_ms()).is_some(), "the signature verifies");
        assert!(a.headers.iter().any(|(n, v)| n == "User-Agent" && v == UA));
        assert!(!format!("{caller:?}").contains("s3cret"));
        let x =
            Caller { sign: SignWith::XBogus, ..caller }.request("https://h/p", &q, true).expect("request");
        let x = x.for_attempt().expect("signed");
        assert!(x.url.contains("&X-Bogus=") && x.method == "POST");
    }

    #[test]
    fn blocks_are_told_apart_from_pages_and_never_read_as_the_end() {
        assert!(matches!(read(&resp(200, b"")), Answer::Blocked(_)));
        assert!(matches!(read(&resp(200, b"  \n")), Answer::Blocked(_)));
        assert!(matches!(read(&resp(200, b"<html>verify</html>")), Answer::Blocked(_)));
        assert!(matches!(read(&resp(403, b"")), Answer::Blocked(_)));
        let code = json!({"status_code": 2154, "status_msg": "too frequent"}).to_string();
        assert!(matches!(read(&resp(200, code.as_bytes())), Answer::Blocked(r) if r.contains("2154")));
        assert!(matches!(read(&resp(200, br#"{"status_code":8}"#)), Answer::Cookie(_)));
        assert!(matches!(read(&resp(401, b"")), Answer::Cookie(_)));
        let empty_page = json!({"status_code": 0, "aweme_list": [], "has_more": 1});
        assert_eq!(read(&resp(200, empty_page.to_string().as_bytes())), Answer::Page(empty_page));
        assert!(
            matches!(page(&resp(200, b"")), Err(WalkError::Wait { reason, .. }) if reason.starts_with("blocked by Douyin"))
        );
        assert!(matches!(classify(&resp(200, b"")), Verdict::Retry(_)));
        assert!(matches!(classify(&resp(429, b"")), Verdict::RateLimited(_)));
        assert_eq!(classify(&resp(200, br#"{"status_code":0}"#)), Verdict::Accept);
    }
}
