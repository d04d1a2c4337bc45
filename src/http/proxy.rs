//! Proxy URLs: which schemes are accepted, how they are checked before
//! ureq sees them, and how a proxy URL with a password is shown.

use ureq::Proxy;

use super::agent::SetupError;

/// Proxy schemes accepted in [`Route::Proxy`]; listed in error messages.
///
/// ureq also understands `socks4a://` and `socks://`, but a short,
/// documented list is easier to support; `socks5h` covers the "let the proxy
/// resolve" case.
const PROXY_SCHEMES: [&str; 5] = ["http", "https", "socks4", "socks5", "socks5h"];

/// Hides the password of a URL's userinfo: `http://user:pw@host:8080` →
/// `http://user:***@host:8080`.
///
/// This works on the raw string and errs on the side of hiding: everything
/// up to the *last* `@` counts as userinfo, so a password containing an
/// unencoded `@` or `/` is still hidden, even though that can over-redact a
/// URL whose path contains `@` with a `:` before it. A URL without `:` in the
/// userinfo (no password) is returned unchanged.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let Some(at) = rest.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!("{scheme}{}:***{}", &userinfo[..colon], &rest[at..]),
        None => url.to_string(),
    }
}

/// Validates the proxy URL and turns it into a `ureq::Proxy`.
///
/// The scheme is checked here instead of relying on ureq, because ureq
/// silently treats a URL without scheme as `http://` and its own error says
/// only "invalid proxy url".
pub(super) fn parse_proxy(url: &str) -> Result<Proxy, SetupError> {
    let fail = |reason: String| SetupError::Proxy { url_redacted: redact_url(url), reason };
    let allowed = PROXY_SCHEMES.join(", ");
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(fail(format!("missing scheme; use one of {allowed}")));
    };
    let scheme = scheme.to_ascii_lowercase();
    if !PROXY_SCHEMES.contains(&scheme.as_str()) {
        return Err(fail(format!("unsupported scheme {scheme:?}; use one of {allowed}")));
    }
    // ureq accepts an empty host and then fails on every request; catch it now.
    let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    if host_part.is_empty() || host_part.starts_with(':') || host_part.starts_with('/') {
        return Err(fail("missing proxy host".to_string()));
    }
    Proxy::new(url).map_err(|_| {
        fail(
            "not a valid proxy url (expected scheme://[user:password@]host[:port], \
             with special characters in user or password percent-encoded)"
                .to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_password_only() {
        let cases = [
            ("http://user:secret@proxy:3128", "http://user:***@proxy:3128"),
            ("socks5h://u:p@ss:w/rd@10.0.0.1:1080/", "socks5h://u:***@10.0.0.1:1080/"),
            ("http://user:@proxy", "http://user:***@proxy"),
            ("user:pw@proxy:8080", "user:***@proxy:8080"),
            ("http://token@proxy:3128", "http://token@proxy:3128"),
            ("http://proxy:3128", "http://proxy:3128"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
        }
    }
}
