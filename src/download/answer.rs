//! Reading what a server answered: `Content-Range` values, reason
//! phrases, and short descriptions of body read errors, kept apart from
//! the attempt itself so that `fetch` stays about the transfer.

use std::io;

/// Whether a body read failed on its timeout (ureq wraps its errors in
/// `io::Error`).
pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
        || describe_io(e).starts_with("timed out")
}

/// Parses `bytes START-END/TOTAL` (TOTAL may be `*`).
pub(super) fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let total = if total.trim() == "*" { None } else { Some(total.trim().parse().ok()?) };
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total))
}

/// Parses `bytes */TOTAL` of a 416.
pub(super) fn parse_unsatisfied_range(v: &str) -> Option<u64> {
    v.trim().strip_prefix("bytes */")?.trim().parse().ok()
}

/// A short description of a body read error (ureq wraps its own errors in
/// `io::Error`).
pub(super) fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out reading the response".into(),
        io::ErrorKind::UnexpectedEof => "connection closed early".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => {
            let s = e.to_string();
            if s.to_ascii_lowercase().contains("timeout") || s.contains("timed out") {
                "timed out reading the response".into()
            } else {
                format!("read failed: {s}")
            }
        }
    }
}

/// The reason phrase of common statuses.
pub(super) fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(parse_content_range("bytes 10-19/100"), Some((10, 19, Some(100))));
        assert_eq!(parse_content_range("bytes 10-19/*"), Some((10, 19, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
        assert_eq!(parse_content_range("bytes x-19/100"), None);
        assert_eq!(parse_unsatisfied_range("bytes */100"), Some(100));
    }
}
