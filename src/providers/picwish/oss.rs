//! Uploads to PicWish's Alibaba OSS bucket: the V1 signature and the
//! request that carries the file and the callback.
//!
//! Owns the string to sign (docs/picwish.md; the same bytes as `oss2`
//! 2.19.1 signs, pinned by a vector recorded from it) and the upload
//! request, signed again before every attempt so that `x-oss-date` is
//! always fresh. Invariant: the STS secret only ever enters the HMAC; the
//! request carries the access key id, the security token and the
//! signature, never the secret.

use std::time::SystemTime;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;

use crate::pacing::{ApiRequest, Body, Signer};

/// A short-lived upload grant from `authorizations/oss`.
#[derive(Clone)]
pub struct Grant {
    /// The bucket.
    pub bucket: String,
    /// The bucket's upload host suffix (`oss-accelerate.aliyuncs.com`).
    pub accelerate: String,
    /// The object key for the file.
    pub key: String,
    /// STS access key id.
    pub access_key_id: String,
    /// STS secret (never logged).
    pub secret: String,
    /// STS security token (never logged).
    pub token: String,
    /// The callback the bucket calls once the object is stored.
    pub callback: Value,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant").field("bucket", &self.bucket).field("key", &self.key).finish_non_exhaustive()
    }
}

impl Grant {
    /// Reads the `data` of an `authorizations/oss` answer for `filename`.
    pub fn from_answer(data: &Value, filename: &str) -> Option<Grant> {
        let s = |v: &Value| v.as_str().map(str::to_string);
        let cred = &data["credential"];
        let key = data["objects"][filename].as_str().or_else(|| {
            data["objects"].as_object().and_then(|o| o.values().next()).and_then(Value::as_str)
        })?;
        Some(Grant {
            bucket: s(&data["bucket"])?,
            accelerate: s(&data["accelerate"]).or_else(|| s(&data["endpoint"]))?,
            key: key.to_string(),
            access_key_id: s(&cred["access_key_id"])?,
            secret: s(&cred["access_key_secret"])?,
            token: s(&cred["security_token"])?,
            callback: data["callback"].clone(),
        })
    }

    /// The `x-oss-callback` header: base64 of the callback as OSS reads it.
    pub fn callback_header(&self) -> String {
        let cb = json!({
            "callbackUrl": self.callback["url"],
            "callbackBody": self.callback["body"],
            "callbackBodyType": self.callback["type"],
        });
        base64::engine::general_purpose::STANDARD.encode(cb.to_string())
    }

    /// Where the object is PUT: the bucket's own host, or `origin`
    /// path-style.
    pub fn url(&self, origin: Option<&str>) -> String {
        let key = encode_key(&self.key);
        match origin {
            Some(o) => format!("{}/{}/{key}", o.trim_end_matches('/'), self.bucket),
            None => format!("https://{}.{}/{key}", self.bucket, self.accelerate),
        }
    }

    /// The upload of `body` (of media type `mime`), on the account's
    /// `oss` lane, signed before every attempt.
    pub fn upload(&self, origin: Option<&str>, body: Body, mime: &str) -> ApiRequest {
        let grant = self.clone();
        let sign = Signer::new(move |req: &mut ApiRequest| {
            let date = httpdate::fmt_http_date(SystemTime::now());
            req.headers.retain(|(n, _)| {
                !n.eq_ignore_ascii_case("x-oss-date") && !n.eq_ignore_ascii_case("authorization")
            });
            req.headers.push(("x-oss-date".into(), date));
            let auth = authorization(&grant, &req.headers);
            req.headers.push(("Authorization".into(), auth));
            Ok(())
        });
        ApiRequest::new("PUT", self.url(origin))
            .header("Content-Type", mime)
            .header("x-oss-security-token", &self.token)
            .header("x-oss-callback", self.callback_header())
            .with_body(body)
            // A PUT of the same object is harmless, but its callback makes a
            // resource each time; uploads cost nothing, so a repeat is fine.
            .idempotent(true)
            .timeout(std::time::Duration::from_secs(300))
            .signed(sign)
            .on_lane("oss")
    }
}

/// The object key in a URL path: every byte but unreserved ones and `/`
/// percent-encoded.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The string V1 signs for a PUT with these headers.
pub fn string_to_sign(bucket: &str, key: &str, headers: &[(String, String)]) -> String {
    let get = |name: &str| {
        headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v.as_str())
    };
    let mut oss: Vec<(String, &str)> = headers
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("x-oss-"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim()))
        .collect();
    oss.sort();
    // OSS (and oss2) put x-oss-date in the date slot when it is sent.
    let date = if get("x-oss-date").is_empty() { get("date") } else { get("x-oss-date") };
    let mut s = format!("PUT\n{}\n{}\n{date}\n", get("content-md5"), get("content-type"));
    for (n, v) in oss {
        s.push_str(&format!("{n}:{v}\n"));
    }
    s.push_str(&format!("/{bucket}/{key}"));
    s
}

/// The `Authorization` header for a PUT with these headers.
pub fn authorization(grant: &Grant, headers: &[(String, String)]) -> String {
    let sts = string_to_sign(&grant.bucket, &grant.key, headers);
    let mut mac = match Hmac::<Sha1>::new_from_slice(grant.secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(sts.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("OSS {}:{sig}", grant.access_key_id)
}

/// The `<Code>` of an OSS XML error answer.
pub fn error_code(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(text[start..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            bucket: "picwish-bucket".into(),
            accelerate: "oss-accelerate.aliyuncs.com".into(),
            key: "tmp/2026/a b.png".into(),
            access_key_id: "AKID".into(),
            secret: "secretKEY".into(),
            token: "TOKEN123".into(),
            callback: json!({"url": "https://gw/cb", "body": "object=${object}", "type": "application/x-www-form-urlencoded"}),
        }
    }

    /// Recorded from `oss2` 2.19.1: `StsAuth("AKID", "secretKEY",
    /// "TOKEN123")._sign_request` on a PUT of `tmp/2026/a b.png` to
    /// `picwish-bucket` with these headers.
    #[test]
    fn the_signature_is_the_one_oss2_computes() {
        let headers: Vec<(String, String)> = [
            ("Content-Type", "image/png"),
            ("x-oss-date", "Tue, 08 Dec 2026 00:30:00 GMT"),
            ("x-oss-callback", "eyJhIjoxfQ=="),
            ("x-oss-security-token", "TOKEN123"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .to_vec();
        assert_eq!(authorization(&grant(), &headers), "OSS AKID:fqso7+W8SSxQ7H3MmMKlN+St8SE=");
    }

    #[test]
    fn the_signer_dates_and_signs_each_attempt_and_never_sends_the_secret() {
        let req = grant().upload(Some("http://127.0.0.1:9"), Body::Bytes(b"png".to_vec()), "image/png");
        assert_eq!(req.url, "http://127.0.0.1:9/picwish-bucket/tmp/2026/a%20b.png");
        let sent = req.for_attempt().expect("signed");
        let auth =
            sent.headers.iter().find(|(n, _)| n == "Authorization").map(|(_, v)| v.clone()).expect("auth");
        assert!(auth.starts_with("OSS AKID:"), "{auth}");
        assert!(sent.headers.iter().any(|(n, _)| n == "x-oss-date"));
        assert!(!sent.headers.iter().any(|(_, v)| v.contains("secretKEY")));
        assert_eq!(
            grant().url(None),
            "https://picwish-bucket.oss-accelerate.aliyuncs.com/tmp/2026/a%20b.png"
        );
    }

    #[test]
    fn oss_error_codes_are_read_from_the_xml() {
        let body =
            b"<?xml version=\"1.0\"?><Error><Code>SecurityTokenExpired</Code><Message>x</Message></Error>";
        assert_eq!(error_code(body).as_deref(), Some("SecurityTokenExpired"));
        assert_eq!(error_code(b"{}"), None);
    }
}
