//! URLs as they may be shown: in logs, job status and `failed/` reasons.
//!
//! Status files and reasons are often read on a share by other people, so
//! a URL never shows a password or a credential-like query value there. A
//! signed download URL (S3 or OSS `Signature`, a `token=`, an API key) keeps
//! its host, path and harmless parameters, enough to recognise the file.

use crate::http::redact_url;

/// Query parameter names (lower case) that carry secrets when they contain
/// one of these.
const SECRET_PARAMS: &[&str] =
    &["sig", "token", "key", "secret", "pass", "auth", "credential", "session", "code", "ticket"];

/// `url` with the password of its userinfo and the values of secret-looking
/// query parameters replaced by `***`.
pub fn display_url(url: &str) -> String {
    let url = redact_url(url);
    let Some((base, rest)) = url.split_once('?') else {
        return url;
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() && is_secret(name) => format!("{name}=***"),
            _ => pair.to_string(),
        })
        .collect();
    let mut out = format!("{base}?{}", masked.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Returns true if and only if a parameter of this name may hold a secret.
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_credentials_and_keeps_the_rest() {
        let cases = [
            ("https://h/a.jpg", "https://h/a.jpg"),
            ("https://u:pw@h/a.jpg?size=2", "https://u:***@h/a.jpg?size=2"),
            (
                "https://b.s3.amazonaws.com/k.png?X-Amz-Credential=AK%2F1&X-Amz-Signature=abc&X-Amz-Expires=60",
                "https://b.s3.amazonaws.com/k.png?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Expires=60",
            ),
            (
                "https://o.oss-cn-hangzhou.aliyuncs.com/r.png?OSSAccessKeyId=LT&Expires=1&Signature=x%3D",
                "https://o.oss-cn-hangzhou.aliyuncs.com/r.png?OSSAccessKeyId=***&Expires=1&Signature=***",
            ),
            ("https://h/f?access_token=t&page=2#top", "https://h/f?access_token=***&page=2#top"),
            ("https://h/f?token=&flag", "https://h/f?token=&flag"),
        ];
        for (url, want) in cases {
            assert_eq!(display_url(url), want, "{url}");
        }
    }
}
