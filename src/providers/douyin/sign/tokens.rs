//! The tokens that go with a signed Douyin request: msToken, verify_fp
//! (also sent as the `s_v_web_id` cookie) and ttwid.
//!
//! Owns their formats and the requests that fetch the real ones
//! (docs/douyin.md, "Tokens"; the reference is F2's `TokenManager` and
//! `VerifyFpManager` in `f2/apps/douyin/utils.py`,
//! https://github.com/Johnserf-Seed/f2). The requests are described as
//! [`ApiRequest`]s, never sent from here: the provider sends them through
//! the account's pacer, and reads the answers back with the `*_from`
//! functions. Invariants: a generated value always has the documented
//! length and alphabet; a token read from an answer is checked the way F2
//! checks it (an msToken of 120 or 128 characters, a non-empty ttwid)
//! before it is used; randomness and the clock are arguments.

use std::fmt;

use crate::pacing::{ApiRequest, ApiResponse, Body};

/// Where F2 asks for a real msToken.
pub const MS_TOKEN_URL: &str = "https://mssdk.bytedance.com/web/report";
/// The opaque blob the web SDK reports (`strData`), F2 0.0.1.7's
/// `f2/conf/conf.yaml` value (`douyin.msToken.strData`), a public
/// constant: the endpoint hands out a token for it.
pub const MS_TOKEN_STR_DATA: &str = include_str!("ms_token_str_data.txt");
/// Where F2 registers a ttwid.
pub const TTWID_URL: &str = "https://ttwid.bytedance.com/ttwid/union/register/";
/// The ttwid registration body, byte for byte as F2 sends it.
pub const TTWID_BODY: &str = r#"{"region":"cn","aid":1768,"needFid":false,"service":"www.ixigua.com","migrate_info":{"ticket":"","source":"node"},"cbUrlProtocol":"https","union":true}"#;

/// The alphabet of a generated msToken.
const MS_TOKEN_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-";
/// The alphabet of verify_fp's random part (and of base 36, in order).
const FP_ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a token could not be read from an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The endpoint answered with this HTTP status.
    Status(u16),
    /// No `Set-Cookie` carried the cookie.
    Missing(&'static str),
    /// The msToken cookie has a length the site never issues (F2 accepts
    /// 120 and 128 only).
    BadLength(usize),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Status(s) => write!(f, "the token endpoint answered HTTP {s}"),
            TokenError::Missing(name) => write!(f, "the answer set no {name} cookie"),
            TokenError::BadLength(n) => {
                write!(f, "the msToken cookie is {n} characters long, not 120 or 128")
            }
        }
    }
}

impl std::error::Error for TokenError {}

/// A stand-in msToken for when the token endpoint cannot be reached: 126
/// characters from `[A-Za-z0-9+-]` then `==` (F2's `gen_false_msToken`).
/// It goes into the query unencoded, as F2 sends it.
pub fn fallback_ms_token(rng: &mut fastrand::Rng) -> String {
    let mut s: String = (0..126).map(|_| char::from(MS_TOKEN_ALPHABET[rng.usize(..64)])).collect();
    s.push_str("==");
    s
}

/// The request for a real msToken: a JSON POST to `url` ([`MS_TOKEN_URL`]
/// in production) with the opaque `str_data` blob the web SDK sends (F2
/// keeps one in its configuration) and the client's time in milliseconds.
/// The answer's `msToken` cookie is the token ([`ms_token_from`]).
pub fn ms_token_request(url: &str, user_agent: &str, str_data: &str, now_ms: u64) -> ApiRequest {
    // Keys in F2's order; serde_json only quotes the blob.
    let body = format!(
        r#"{{"magic":538969122,"version":1,"dataType":8,"strData":{},"tspFromClient":{now_ms}}}"#,
        serde_json::Value::from(str_data)
    );
    ApiRequest::new("POST", url)
        .header("Content-Type", "application/json; charset=utf-8")
        .header("User-Agent", user_agent)
        .with_body(Body::Bytes(body.into_bytes()))
        // A second report only yields a second token.
        .idempotent(true)
}

/// The msToken set by an answer to [`ms_token_request`].
pub fn ms_token_from(resp: &ApiResponse) -> Result<String, TokenError> {
    let token = cookie_from(resp, "msToken")?;
    match token.len() {
        120 | 128 => Ok(token),
        n => Err(TokenError::BadLength(n)),
    }
}

/// The request that registers a ttwid: a JSON POST of [`TTWID_BODY`] to
/// `url` ([`TTWID_URL`] in production). The answer's `ttwid` cookie is the
/// value ([`ttwid_from`]).
pub fn ttwid_request(url: &str, user_agent: &str) -> ApiRequest {
    ApiRequest::new("POST", url)
        .header("User-Agent", user_agent)
        .header("Content-Type", "application/json; charset=utf-8")
        .with_body(Body::Bytes(TTWID_BODY.as_bytes().to_vec()))
        .idempotent(true)
}

/// The ttwid set by an answer to [`ttwid_request`].
pub fn ttwid_from(resp: &ApiResponse) -> Result<String, TokenError> {
    cookie_from(resp, "ttwid")
}

/// The value of cookie `name` in the answer's `Set-Cookie` headers (the
/// last one wins, as in a browser); an empty value counts as missing.
fn cookie_from(resp: &ApiResponse, name: &'static str) -> Result<String, TokenError> {
    if !resp.is_success() {
        return Err(TokenError::Status(resp.status));
    }
    resp.header_all("set-cookie")
        .filter_map(|h| {
            let pair = h.split(';').next()?;
            let (k, v) = pair.split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
        })
        .filter(|v| !v.is_empty())
        .last()
        .ok_or(TokenError::Missing(name))
}

/// A verify_fp value (the `verifyFp` query parameter and the `s_v_web_id`
/// cookie): `verify_` + the time in milliseconds in lowercase base 36 +
/// `_` + 36 characters shaped like a UUID: `_` at 8, 13, 18 and 23, `4` at
/// 14, position 19 from `[89AB]`, the rest from `[0-9A-Za-z]`.
pub fn verify_fp(now_ms: u64, rng: &mut fastrand::Rng) -> String {
    let mut out = format!("verify_{}_", base36(now_ms));
    for i in 0..36 {
        let c = match i {
            8 | 13 | 18 | 23 => b'_',
            14 => b'4',
            // F2's `3 & n | 8`: the UUID variant nibble.
            19 => FP_ALPHABET[(rng.usize(..62) & 3) | 8],
            _ => FP_ALPHABET[rng.usize(..62)],
        };
        out.push(char::from(c));
    }
    out
}

/// The `s_v_web_id` cookie: the same value as [`verify_fp`].
pub fn s_v_web_id(now_ms: u64, rng: &mut fastrand::Rng) -> String {
    verify_fp(now_ms, rng)
}

/// `n` in lowercase base 36 (`""` for 0, as F2's loop gives).
fn base36(mut n: u64) -> String {
    let mut digits = Vec::new();
    while n > 0 {
        let d = (n % 36) as usize;
        digits.push(if d < 10 { FP_ALPHABET[d] } else { b'a' + (d as u8 - 10) });
        n /= 36;
    }
    digits.iter().rev().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, cookies: &[&str]) -> ApiResponse {
        ApiResponse {
            status,
            headers: cookies.iter().map(|c| ("set-cookie".to_string(), c.to_string())).collect(),
            ..ApiResponse::default()
        }
    }

    #[test]
    fn a_fallback_ms_token_is_126_token_characters_and_two_equals() {
        let mut rng = fastrand::Rng::with_seed(1);
        let t = fallback_ms_token(&mut rng);
        assert_eq!(t.len(), 128);
        assert!(t.ends_with("=="));
        assert!(t[..126].bytes().all(|b| MS_TOKEN_ALPHABET.contains(&b)));
        assert_ne!(t, fallback_ms_token(&mut rng), "fresh every time");
        // Over many draws every character of the alphabet turns up.
        let all: String = (0..50).map(|_| fallback_ms_token(&mut rng)).collect();
        assert!(MS_TOKEN_ALPHABET.iter().all(|b| all.as_bytes().contains(b)));
    }

    #[test]
    fn verify_fp_has_f2s_shape() {
        let mut rng = fastrand::Rng::with_seed(2);
        let now = 1_700_000_000_500;
        for _ in 0..500 {
            let v = verify_fp(now, &mut rng);
            let rest = v.strip_prefix("verify_loyw3vg4_").expect("prefix with base-36 ms");
            let t = rest.as_bytes();
            assert_eq!(t.len(), 36);
            for (i, &c) in t.iter().enumerate() {
                match i {
                    8 | 13 | 18 | 23 => assert_eq!(c, b'_'),
                    14 => assert_eq!(c, b'4'),
                    19 => assert!(b"89AB".contains(&c), "{v}"),
                    _ => assert!(c.is_ascii_alphanumeric()),
                }
            }
        }
        assert_eq!(s_v_web_id(now, &mut rng).len(), "verify_loyw3vg4_".len() + 36);
    }

    #[test]
    fn base36_is_lowercase_and_matches_known_values() {
        assert_eq!(base36(0), "");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(1_700_000_000_500), "loyw3vg4");
    }

    #[test]
    fn the_ttwid_request_is_f2s_post() {
        let r = ttwid_request(TTWID_URL, "UA/1");
        assert_eq!((r.method.as_str(), r.url.as_str()), ("POST", TTWID_URL));
        assert_eq!(r.body, Some(Body::Bytes(TTWID_BODY.as_bytes().to_vec())));
        assert!(r.headers.contains(&("User-Agent".into(), "UA/1".into())));
        assert!(r.headers.contains(&("Content-Type".into(), "application/json; charset=utf-8".into())));
        let body: serde_json::Value = serde_json::from_str(TTWID_BODY).expect("JSON");
        assert_eq!(body["aid"], 1768);
        assert_eq!(body["service"], "www.ixigua.com");
        assert_eq!(body["union"], true);
    }

    #[test]
    fn the_ms_token_request_carries_the_blob_and_the_time() {
        let r = ms_token_request("http://127.0.0.1:9/web/report", "UA/1", "a\"b/c+=", 1_700_000_000_500);
        let Some(Body::Bytes(b)) = &r.body else { panic!("a byte body") };
        let text = std::str::from_utf8(b).expect("UTF-8");
        assert!(text.starts_with(r#"{"magic":538969122,"version":1,"dataType":8,"strData":"#));
        let v: serde_json::Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(v["strData"], "a\"b/c+=");
        assert_eq!(v["tspFromClient"], 1_700_000_000_500u64);
    }

    #[test]
    fn the_str_data_is_f2s_blob_byte_for_byte() {
        use sha2::Digest;
        assert_eq!(MS_TOKEN_STR_DATA.len(), 4036);
        let digest: String =
            sha2::Sha256::digest(MS_TOKEN_STR_DATA.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digest, "40f1898d8afe3388c257341c006557fb8c2723f0a4b7b7556964f268838823a3");
    }

    #[test]
    fn tokens_are_read_from_set_cookie_and_checked() {
        let good = "A".repeat(128);
        let r = answer(200, &["other=1; Path=/", &format!("msToken={good}; Path=/; Secure")]);
        assert_eq!(ms_token_from(&r), Ok(good));
        let r = answer(200, &[&format!("msToken={}; Path=/", "B".repeat(120))]);
        assert_eq!(ms_token_from(&r).map(|t| t.len()), Ok(120));
        assert_eq!(ms_token_from(&answer(200, &["msToken=short"])), Err(TokenError::BadLength(5)));
        assert_eq!(ms_token_from(&answer(200, &["msToken=; Path=/"])), Err(TokenError::Missing("msToken")));
        assert_eq!(ms_token_from(&answer(200, &[])), Err(TokenError::Missing("msToken")));
        assert_eq!(ms_token_from(&answer(503, &[])), Err(TokenError::Status(503)));
        let r = answer(200, &["ttwid=1%7Cabc%7C1700000000%7Cdef; Path=/; HttpOnly"]);
        assert_eq!(ttwid_from(&r).as_deref(), Ok("1%7Cabc%7C1700000000%7Cdef"));
        assert_eq!(ttwid_from(&answer(200, &["msToken=x"])), Err(TokenError::Missing("ttwid")));
    }
}
