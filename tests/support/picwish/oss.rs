//! The fake PicWish's OSS: `PUT` of an upload (virtual-host
//! `<bucket>.<ACCELERATE>` or path-style `/<bucket>/<key>`), its V1
//! signature check (as `oss2` 2.19.1 computes it, docs/picwish.md step 3)
//! and the `x-oss-callback` to the gateway.
//!
//! Order of checks: method (405), bucket (404 `NoSuchBucket`), the
//! `Authorization` form (403 `AccessDenied`), the access key id and its
//! security token (403 `InvalidAccessKeyId`), the grant's expiration (403
//! `SecurityTokenExpired`), the date's skew (403 `RequestTimeTooSkewed`),
//! the signature (403 `SignatureDoesNotMatch`, with the expected
//! `StringToSign` in the body as real OSS does), the key being the grant's
//! (403 `AccessDenied`), `Content-MD5` (400 `InvalidDigest`). Then the
//! object is stored and the callback runs in-process; its failure answers
//! HTTP 203 `CallbackFailed` (the object stays stored).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::Value;
use sha1::Sha1;

use super::{BUCKET, MAX_SKEW, State, oss_error, oss_error_with};
use crate::support::http::{Request, Response, lock};

/// The V1 string to sign: `VERB\nContent-MD5\nContent-Type\nDate\n`, then
/// every `x-oss-*` header as `name:value\n` (names lower-cased, sorted),
/// then `/bucket/key` with the decoded key.
pub fn string_to_sign(
    method: &str,
    content_md5: &str,
    content_type: &str,
    date: &str,
    headers: &[(String, String)],
    bucket: &str,
    key: &str,
) -> String {
    let mut oss: Vec<(String, &str)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .filter(|(k, _)| k.starts_with("x-oss-"))
        .collect();
    oss.sort_by(|a, b| a.0.cmp(&b.0));
    let mut s = format!("{method}\n{content_md5}\n{content_type}\n{date}\n");
    for (k, v) in oss {
        s.push_str(&k);
        s.push(':');
        s.push_str(v);
        s.push('\n');
    }
    s.push('/');
    s.push_str(bucket);
    s.push('/');
    s.push_str(key);
    s
}

/// `base64(HMAC-SHA1(secret, string_to_sign))`.
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    // HMAC takes keys of any length; the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(string_to_sign.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// Percent-decodes a URL path (unlike a form, `+` stays `+`), so a key's
/// slashes may come raw or as `%2F`.
pub fn decode_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks a request's V1 signature against `secret`: `Ok` or the expected
/// string to sign.
pub fn verify(req: &Request, secret: &str, bucket: &str, key: &str) -> Result<(), String> {
    let date = req.header("x-oss-date").filter(|d| !d.is_empty()).or(req.header("date")).unwrap_or("");
    let sts = string_to_sign(
        &req.method,
        req.header("content-md5").unwrap_or(""),
        req.header("content-type").unwrap_or(""),
        date,
        &req.headers,
        bucket,
        key,
    );
    let got = req.header("authorization").and_then(|a| a.rsplit_once(':')).map(|(_, s)| s).unwrap_or("");
    if got == sign(secret, &sts) { Ok(()) } else { Err(sts) }
}

/// Substitutes the OSS callback placeholders in `body`.
pub fn substitute(body: &str, vars: &[(&str, String)], custom: &serde_json::Map<String, Value>) -> String {
    let mut out = body.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    // `${x:name}` come from `x-oss-callback-var`; unknown ones go empty.
    while let Some(start) = out.find("${x:") {
        let Some(len) = out[start..].find('}') else { break };
        let name = &out[start + 2..start + len];
        let value = custom.get(name).and_then(Value::as_str).unwrap_or("").to_string();
        out.replace_range(start..start + len + 1, &value);
    }
    out
}

/// `PUT` of `key` (still encoded) into `bucket`.
pub fn put(state: &Mutex<State>, req: &Request, bucket: &str, raw_key: &str) -> Response {
    if req.method != "PUT" {
        return oss_error(
            405,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        );
    }
    if bucket != BUCKET {
        return oss_error(404, "NoSuchBucket", "The specified bucket does not exist.");
    }
    let key = decode_path(raw_key);
    let Some((akid, _)) =
        req.header("authorization").and_then(|a| a.strip_prefix("OSS ")).and_then(|a| a.split_once(':'))
    else {
        return oss_error(403, "AccessDenied", "Authorization header is missing or malformed.");
    };
    let mut s = lock(state);
    let Some(grant) = s.grants.get(akid).cloned() else {
        return oss_error(
            403,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
        );
    };
    if req.header("x-oss-security-token") != Some(grant.security_token.as_str()) {
        return oss_error(403, "InvalidAccessKeyId", "The security token you provided is invalid.");
    }
    let now = SystemTime::now();
    if grant.expires <= now {
        return oss_error(403, "SecurityTokenExpired", "The security token you provided has expired.");
    }
    let date = req.header("x-oss-date").filter(|d| !d.is_empty()).or(req.header("date")).unwrap_or("");
    let Ok(t) = httpdate::parse_http_date(date) else {
        return oss_error(403, "AccessDenied", "Missing or invalid date.");
    };
    let skew = now.duration_since(t).or_else(|_| t.duration_since(now)).unwrap_or(Duration::ZERO);
    if skew > MAX_SKEW {
        return oss_error(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        );
    }
    if let Err(sts) = verify(req, &grant.secret, bucket, &key) {
        let extra =
            format!("  <StringToSign>{}</StringToSign>\n", sts.replace('&', "&amp;").replace('<', "&lt;"));
        return oss_error_with(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
            &extra,
        );
    }
    if !grant.objects.contains(&key) {
        return oss_error(403, "AccessDenied", "The object key is not covered by this grant.");
    }
    let md5 = Md5::digest(&req.body);
    if let Some(want) = req.header("content-md5")
        && want != B64.encode(md5)
    {
        return oss_error(400, "InvalidDigest", "The Content-MD5 you specified is not valid.");
    }
    let etag = super::hex(&md5).to_ascii_uppercase();
    s.objects.insert(key.clone(), Arc::new(req.body.clone()));
    let Some(cb) = req.header("x-oss-callback") else {
        s.uploads += 1;
        return Response::new(200).header("ETag", &format!("\"{etag}\""));
    };
    let decoded = B64.decode(cb.trim()).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let Some(cb) = decoded else {
        return oss_error(400, "InvalidArgument", "The callback configuration is not json format.");
    };
    let custom = req
        .header("x-oss-callback-var")
        .and_then(|v| B64.decode(v.trim()).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let url = cb.get("callbackUrl").and_then(Value::as_str).unwrap_or("");
    let body_type =
        cb.get("callbackBodyType").and_then(Value::as_str).unwrap_or("application/x-www-form-urlencoded");
    let mime = req.header("content-type").unwrap_or("").to_string();
    let vars = [
        ("object", key.clone()),
        ("size", req.body.len().to_string()),
        ("mimeType", mime),
        ("bucket", bucket.to_string()),
        ("etag", etag.clone()),
    ];
    let body = substitute(cb.get("callbackBody").and_then(Value::as_str).unwrap_or(""), &vars, &custom);
    let answer = if s.fail_callbacks > 0 {
        s.fail_callbacks -= 1;
        Err("injected callback failure".to_string())
    } else {
        super::web::callback(&mut s, url, &body, body_type)
    };
    match answer {
        Ok(v) => {
            s.uploads += 1;
            Response::json(200, &v.to_string()).header("ETag", &format!("\"{etag}\""))
        }
        Err(e) => oss_error(203, "CallbackFailed", &format!("Error status : 502. {e}")),
    }
}
