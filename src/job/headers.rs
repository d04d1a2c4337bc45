//! Which extra request headers a job may set, for every provider.
//!
//! Headers that frame or route the message belong to the HTTP client: a
//! job's `Content-Length` on a bodiless GET makes the client wait for body
//! bytes that never come, `Range` or `Accept-Encoding` break byte-exact
//! resumable downloads, `Host` or `Proxy-*` reroute the request. See
//! RFC 9110 section 7.6.1 (connection-specific fields) and RFC 9112.

use super::RejectReason;

/// Header names (lowercase) that only the transport may set.
const TRANSPORT_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "host",
    "range",
    "if-range",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "trailers",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "expect",
    "content-encoding",
    "accept-encoding",
    "http2-settings",
];

/// Largest accepted value of one header, in bytes.
pub const MAX_HEADER_VALUE: usize = 8 * 1024;
/// Largest accepted sum of names and values, in bytes.
pub const MAX_HEADERS_TOTAL: usize = 32 * 1024;

/// Checks one header a job asks to send; the reason names the header but
/// never its value (values may be tokens).
pub fn check_header(name: &str, value: &str) -> Result<(), RejectReason> {
    let shown = crate::job::spec::truncate_for_message(name);
    let valid_name = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_name {
        return Err(RejectReason(format!("headers: {shown:?} is not a valid header name")));
    }
    let lower = name.to_ascii_lowercase();
    if TRANSPORT_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
        return Err(RejectReason(format!(
            "headers: {name} is set by the HTTP client and must not be given in a job"
        )));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(RejectReason(format!("headers.{name} must not contain line breaks or NUL")));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(RejectReason(format!("headers.{name} must not contain control characters")));
    }
    if value.len() > MAX_HEADER_VALUE {
        return Err(RejectReason(format!(
            "headers.{name} is {} bytes; the limit is {MAX_HEADER_VALUE}",
            value.len()
        )));
    }
    Ok(())
}

/// Checks every header and their total size.
pub fn check_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<(), RejectReason> {
    let mut total = 0usize;
    for (k, v) in headers {
        check_header(k, v)?;
        total += k.len() + v.len();
    }
    if total > MAX_HEADERS_TOTAL {
        return Err(RejectReason(format!("headers total {total} bytes; the limit is {MAX_HEADERS_TOTAL}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_headers_are_refused_in_any_case() {
        for n in [
            "Content-Length",
            "content-length",
            "TRANSFER-ENCODING",
            "Host",
            "rAnGe",
            "If-Range",
            "Connection",
            "keep-alive",
            "TE",
            "Trailer",
            "Upgrade",
            "Proxy-Authorization",
            "proxy-connection",
            "Expect",
            "Content-Encoding",
            "Accept-Encoding",
            "Proxy-Foo",
        ] {
            let e = check_header(n, "5").expect_err(n);
            assert!(e.0.contains(n), "{n}: {e}");
        }
    }

    #[test]
    fn bad_names_values_and_sizes_are_refused() {
        assert!(check_header("Bad Name", "v").is_err());
        assert!(check_header("X:Y", "v").is_err());
        assert!(check_header("", "v").is_err());
        assert!(check_header("X-Ä", "v").is_err());
        for v in ["a\r\nB: c", "a\nb", "a\rb", "a\0b", "a\x7fb"] {
            assert!(check_header("X-A", v).is_err(), "{v:?}");
        }
        assert!(check_header("X-A", &"a".repeat(MAX_HEADER_VALUE + 1)).is_err());
        let big = "a".repeat(MAX_HEADER_VALUE);
        let names: Vec<String> = (0..5).map(|i| format!("X-{i}")).collect();
        assert!(check_headers(names.iter().map(|n| (n.as_str(), big.as_str()))).is_err());
        assert!(
            check_headers([("Authorization", "Bearer x"), ("User-Agent", "u"), ("Referer", "https://h/")])
                .is_ok()
        );
    }
}
