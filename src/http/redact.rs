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

/// Names that contain a secret-looking word but never carry a secret
/// (Douyin's query block sends `version_code` with every call; masking it
/// only makes debug logs harder to compare with F2's).
const HARMLESS_PARAMS: &[&str] =
    &["version_code", "status_code", "error_code", "country_code", "region_code"];

/// `url` with its whole userinfo (a token may be the user name) and the
/// values of secret-looking parameters, in the query or the fragment
/// (`#access_token=`), `&`- or `;`-separated, replaced by `***`.
pub fn display_url(url: &str) -> String {
    let url = mask_userinfo(&redact_url(url));
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let (base, mut rest) = url.split_at(cut);
    let mut out = base.to_string();
    while let Some(sep) = rest.chars().next() {
        rest = &rest[1..];
        let end = if sep == '?' { rest.find('#').unwrap_or(rest.len()) } else { rest.len() };
        out.push(sep);
        out.push_str(&mask_params(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

/// `scheme://user:pass@host` becomes `scheme://***@host`.
fn mask_userinfo(url: &str) -> String {
    let Some((scheme, after)) = url.split_once("://") else { return url.to_string() };
    let auth_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    match after[..auth_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &after[at..]),
        None => url.to_string(),
    }
}

/// Masks the values of secret-looking `name=value` pairs.
fn mask_params(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let mut start = 0;
    for (i, c) in part.char_indices().chain(std::iter::once((part.len(), '&'))) {
        if c == '&' || c == ';' {
            let pair = &part[start..i];
            match pair.split_once('=') {
                Some((name, value)) if !value.is_empty() && is_secret(name) => {
                    out.push_str(name);
                    out.push_str("=***");
                }
                _ => out.push_str(pair),
            }
            if i < part.len() {
                out.push(c);
            }
            start = i + c.len_utf8();
        }
    }
    out
}

/// Returns true if and only if a parameter of this name may hold a secret;
/// the name is percent-decoded first (`%74oken`).
fn is_secret(name: &str) -> bool {
    let name = crate::naming::percent_decode_lossy(name).to_ascii_lowercase();
    if HARMLESS_PARAMS.contains(&name.as_str()) {
        return false;
    }
    SECRET_PARAMS.iter().any(|s| name.contains(s)) || matches!(name.as_str(), "pwd" | "sid" | "jwt" | "sign")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harmless_codes_stay_and_an_oauth_code_goes() {
        assert_eq!(
            display_url("https://h/a?version_code=290100&code=abc&auth_code=x&msToken=m"),
            "https://h/a?version_code=290100&code=***&auth_code=***&msToken=***"
        );
    }

    #[test]
    fn hides_credentials_and_keeps_the_rest() {
        let cases = [
            ("https://h/a.jpg", "https://h/a.jpg"),
            ("https://u:pw@h/a.jpg?size=2", "https://***@h/a.jpg?size=2"),
            ("https://TOKEN@h/a.jpg", "https://***@h/a.jpg"),
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
            ("https://h/cb#access_token=t&state=s", "https://h/cb#access_token=***&state=s"),
            ("https://h/f?a=1;sid=x;pwd=y", "https://h/f?a=1;sid=***;pwd=***"),
            ("https://h/f?%74oken=t&p=1", "https://h/f?%74oken=***&p=1"),
            (
                "https://h/f?JWT=j&Refresh_Token=r&X-Api-Key=k&expires=9",
                "https://h/f?JWT=***&Refresh_Token=***&X-Api-Key=***&expires=9",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(display_url(url), want, "{url}");
        }
    }
}
