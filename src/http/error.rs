//! What went wrong with a request, in two forms: a retry decision
//! ([`is_transient`], [`status_is_transient`], [`classify_status`]) and a
//! short lower-case sentence for users ([`describe`]).
//!
//! The rule of thumb: retry what can fix itself (timeouts, dropped or refused
//! connections, DNS hiccups, overloaded servers); fail fast on what needs a
//! human (certificate problems, bad URLs, bad proxy configuration), because
//! retrying those only hides the real problem behind a long back-off.
//! Callers cap the number of retries, so a wrong "transient" costs a few
//! attempts, while a wrong "fatal" loses a download: in doubt, transient.

use std::io;
use std::time::{Duration, SystemTime};

use ureq::{Error, Timeout};

use super::retry_after::parse_retry_after;

/// What an answer's status line says about repeating the request, before
/// anyone reads its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusClass {
    /// 429: the client is over its rate; wait this long if the server
    /// said (`Retry-After`), then repeat.
    RateLimited(Option<Duration>),
    /// 408, 425 or 5xx: passing trouble, worth repeating after a back-off.
    Transient,
    /// Anything else: the same request gets the same answer (the body may
    /// still say otherwise; API classifiers look there).
    Final,
}

/// The status-level reading every API classifier starts from: 429 is a
/// rate limit honouring `Retry-After` (read against `now`), the other
/// [`status_is_transient`] codes are passing, the rest final.
pub fn classify_status(status: u16, retry_after: Option<&str>, now: SystemTime) -> StatusClass {
    match status {
        429 => StatusClass::RateLimited(retry_after.and_then(|v| parse_retry_after(v, now))),
        s if status_is_transient(s) => StatusClass::Transient,
        _ => StatusClass::Final,
    }
}

/// Whether an HTTP status is worth retrying later: 408 (request timeout),
/// 425 (too early), 429 (too many requests) and every 5xx. Everything else
/// (notably 403/404/410) will answer the same next time.
pub fn status_is_transient(code: u16) -> bool {
    matches!(code, 408 | 425 | 429 | 500..=599)
}

/// Whether a failed request may succeed if simply tried again later.
pub fn is_transient(err: &Error) -> bool {
    match err {
        Error::StatusCode(code) => status_is_transient(*code),
        Error::Timeout(_) | Error::HostNotFound | Error::ConnectionFailed => true,
        Error::Io(e) => io_is_transient(e),
        // A garbled or cut-off response (bad chunking, truncated headers)
        // is almost always a dropped connection or a flaky server.
        Error::Protocol(_) | Error::BodyStalled => true,
        Error::ConnectProxyFailed(reason) => proxy_failure_is_transient(reason),
        // Certificates, TLS and PEM setup, invalid URLs/requests, proxy
        // configuration, redirect and size policy: retrying cannot help.
        Error::Tls(_)
        | Error::Rustls(_)
        | Error::Pem(_)
        | Error::BadUri(_)
        | Error::Http(_)
        | Error::InvalidProxyUrl
        | Error::RedirectFailed
        | Error::TooManyRedirects
        | Error::BodyExceedsLimit(_)
        | Error::RequireHttpsOnly(_)
        | Error::LargeResponseHeader(..)
        | Error::TlsRequired => false,
        // `Other` is never produced by ureq's own connectors, and variants
        // added later are unknown: treat as fatal rather than loop on them.
        _ => false,
    }
}

/// Whether a failed request provably never reached the server: the name
/// did not resolve, or no connection (direct or through the proxy) was
/// made. Only then may a request that must not run twice be sent again.
pub fn never_sent(err: &Error) -> bool {
    match err {
        Error::HostNotFound | Error::ConnectionFailed | Error::ConnectProxyFailed(_) => true,
        Error::Timeout(t) => matches!(t, Timeout::Resolve | Timeout::Connect),
        Error::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
        ),
        _ => false,
    }
}

/// A short, one-line, lower-case reason for users and logs, e.g. "timed out
/// reading the response", "connection reset", "certificate not valid for
/// host images.test". It never contains the request URL.
pub fn describe(err: &Error) -> String {
    match err {
        Error::StatusCode(code) => format!("http status {code}"),
        Error::Timeout(t) => describe_timeout(*t).to_string(),
        Error::HostNotFound => "host name not found".to_string(),
        Error::ConnectionFailed => "connection failed".to_string(),
        Error::Io(e) => describe_io(e),
        Error::Protocol(e) => format!("malformed http response ({})", one_line(&e.to_string())),
        Error::BodyStalled => "response body stalled".to_string(),
        Error::ConnectProxyFailed(reason) => {
            format!("proxy connect failed ({})", one_line(reason))
        }
        Error::Tls(msg) => format!("tls error ({})", one_line(msg)),
        Error::Rustls(e) => describe_tls(&e.to_string()),
        Error::Pem(_) => "invalid pem data".to_string(),
        // The URI may carry credentials or tokens: do not echo it.
        Error::BadUri(_) => "invalid url".to_string(),
        Error::Http(e) => format!("invalid request ({})", one_line(&e.to_string())),
        Error::InvalidProxyUrl => "invalid proxy url".to_string(),
        Error::RedirectFailed => "cannot follow redirect".to_string(),
        Error::TooManyRedirects => "too many redirects".to_string(),
        Error::BodyExceedsLimit(limit) => {
            format!("response body larger than the {limit}-byte limit")
        }
        Error::RequireHttpsOnly(_) => "https required but the url is not https".to_string(),
        Error::LargeResponseHeader(..) => "response headers too large".to_string(),
        Error::TlsRequired => "tls required but the connection is not encrypted".to_string(),
        other => one_line(&other.to_string()),
    }
}

/// Timeout phases in user terms.
fn describe_timeout(t: Timeout) -> &'static str {
    match t {
        Timeout::Resolve => "timed out resolving the host name",
        Timeout::Connect => "timed out connecting",
        Timeout::SendRequest | Timeout::SendBody | Timeout::PerWrite => "timed out sending the request",
        Timeout::RecvResponse => "timed out waiting for the response",
        Timeout::RecvBody | Timeout::PerRead => "timed out reading the response",
        Timeout::Global | Timeout::PerCall => "request took too long",
        _ => "timed out",
    }
}

/// Retry decision for socket-level errors: transient unless it is a TLS
/// verification failure or a local misuse that will repeat identically.
fn io_is_transient(e: &io::Error) -> bool {
    if let Some(inner) = wrapped_ureq_error(e) {
        return is_transient(inner);
    }
    match e.kind() {
        // rustls reports handshake failures as InvalidData wrapping its error.
        io::ErrorKind::InvalidData => match inner_message(e) {
            Some(msg) => !tls_is_fatal(&msg),
            None => true,
        },
        io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied => false,
        // Resets, refusals, EOF, unreachable networks, NotConnected (after
        // `Agent::shutdown`; the job must stay retryable), …
        _ => true,
    }
}

/// Socket-level errors in user terms.
fn describe_io(e: &io::Error) -> String {
    if let Some(inner) = wrapped_ureq_error(e) {
        return describe(inner);
    }
    use io::ErrorKind as K;
    let fixed = match e.kind() {
        K::InvalidData => {
            return match inner_message(e) {
                Some(msg) => describe_tls(&msg),
                None => one_line(&e.to_string()),
            };
        }
        K::TimedOut | K::WouldBlock => "timed out",
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset",
        K::ConnectionAborted => "connection aborted",
        K::UnexpectedEof => "connection closed before the response was complete",
        K::BrokenPipe => "connection closed while sending",
        K::NotConnected => "not connected (shutting down?)",
        K::HostUnreachable => "host unreachable",
        K::NetworkUnreachable => "network unreachable",
        K::NetworkDown => "network down",
        K::AddrNotAvailable => "local address not available",
        K::PermissionDenied => "permission denied by the operating system",
        _ => return one_line(&e.to_string()),
    };
    fixed.to_string()
}

/// Messages of rustls errors (see rustls `Error`'s `Display`) that mean the
/// server's identity cannot be established; these never fix themselves.
///
/// Matching text is a deliberate trade-off: naming `rustls::Error` would need
/// rustls as a direct dependency in lock-step with ureq's; the tests pin the
/// behaviour for the ureq/rustls versions in use.
fn tls_is_fatal(msg: &str) -> bool {
    [
        "invalid peer certificate",
        "peer sent no certificates",
        "peer is incompatible",
        "received fatal alert",
        "presented server name type",
    ]
    .iter()
    .any(|p| msg.starts_with(p))
}

/// rustls error text in user terms; unknown texts are passed through.
fn describe_tls(msg: &str) -> String {
    let Some(cert) = msg.strip_prefix("invalid peer certificate: ") else {
        if let Some(alert) = msg.strip_prefix("received fatal alert: ") {
            return format!("tls handshake rejected by the server ({})", one_line(alert));
        }
        if msg.starts_with("peer is incompatible") {
            return "server offers no compatible tls version or cipher".to_string();
        }
        return format!("tls error ({})", one_line(msg));
    };
    // rustls: `certificate not valid for name "images.test"; certificate is only valid for ...`
    if let Some(rest) = cert.strip_prefix("certificate not valid for name \"") {
        let name = rest.split('"').next().unwrap_or_default();
        return format!("certificate not valid for host {name}");
    }
    if cert.starts_with("UnknownIssuer") {
        return "certificate not trusted (unknown issuer; add its ca to ca_file?)".to_string();
    }
    if cert.starts_with("certificate expired") || cert.starts_with("Expired") {
        return "certificate expired".to_string();
    }
    if cert.starts_with("certificate not valid yet") || cert.starts_with("NotValidYet") {
        return "certificate not yet valid (is the system clock right?)".to_string();
    }
    if cert.starts_with("Revoked") {
        return "certificate revoked".to_string();
    }
    format!("invalid certificate ({})", one_line(cert))
}

/// Whether a CONNECT proxy failure may go away: no answer, or a 5xx from the
/// proxy (its upstream is down), yes; 407 (authentication) or 403, no.
/// ureq's reason reads "proxy server responded 407/Proxy Authentication Required".
fn proxy_failure_is_transient(reason: &str) -> bool {
    match reason.strip_prefix("proxy server responded ") {
        Some(rest) => {
            rest.split('/').next().and_then(|code| code.parse::<u16>().ok()).is_none_or(status_is_transient)
        }
        None => true,
    }
}

/// ureq sometimes carries its own error inside an `io::Error`.
fn wrapped_ureq_error(e: &io::Error) -> Option<&Error> {
    e.get_ref()?.downcast_ref::<Error>()
}

/// The message of the error wrapped by an `io::Error`, if any.
fn inner_message(e: &io::Error) -> Option<String> {
    e.get_ref().map(|inner| inner.to_string())
}

/// Collapses whitespace (including newlines) and lower-cases, so foreign
/// messages fit the one-line lower-case style.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // panicking is how tests fail
mod tests {
    use super::super::agent::{Route, build_agent};
    use super::super::pinning::tests::opts;
    use super::*;
    use std::io::Read;
    use std::net::{Ipv4Addr, TcpListener};
    use std::thread;
    use std::time::Duration;

    #[test]
    fn statuses() {
        for c in [408, 425, 429, 500, 501, 502, 503, 504, 599] {
            assert!(status_is_transient(c), "{c}");
        }
        for c in [200, 206, 301, 400, 401, 403, 404, 410, 416, 451, 600] {
            assert!(!status_is_transient(c), "{c}");
        }
    }

    #[test]
    fn status_classes() {
        let now = std::time::SystemTime::UNIX_EPOCH;
        assert_eq!(
            classify_status(429, Some("7"), now),
            StatusClass::RateLimited(Some(Duration::from_secs(7)))
        );
        assert_eq!(classify_status(429, Some("soon"), now), StatusClass::RateLimited(None));
        assert_eq!(classify_status(429, None, now), StatusClass::RateLimited(None));
        for c in [408, 425, 500, 502, 503, 599] {
            assert_eq!(classify_status(c, Some("7"), now), StatusClass::Transient, "{c}");
        }
        for c in [200, 301, 400, 401, 403, 404] {
            assert_eq!(classify_status(c, None, now), StatusClass::Final, "{c}");
        }
    }

    #[test]
    fn classification_of_synthetic_errors() {
        let io = |k: io::ErrorKind| Error::Io(io::Error::new(k, "x"));
        let transient = [
            Error::Timeout(Timeout::PerRead),
            Error::Timeout(Timeout::Connect),
            Error::HostNotFound,
            Error::ConnectionFailed,
            Error::StatusCode(503),
            io(io::ErrorKind::ConnectionReset),
            io(io::ErrorKind::ConnectionRefused),
            io(io::ErrorKind::UnexpectedEof),
            io(io::ErrorKind::NotConnected),
            Error::ConnectProxyFailed("proxy server did not respond".into()),
            Error::ConnectProxyFailed("proxy server responded 502/Bad Gateway".into()),
            Error::Io(io::Error::other(Error::HostNotFound)),
        ];
        for e in &transient {
            assert!(is_transient(e), "{e:?}");
        }
        let fatal = [
            Error::StatusCode(404),
            Error::BadUri("x".into()),
            Error::InvalidProxyUrl,
            Error::TooManyRedirects,
            Error::Tls("Rustls invalid dns name error"),
            Error::ConnectProxyFailed("proxy server responded 407/Proxy Authentication Required".into()),
            Error::Io(io::Error::new(io::ErrorKind::InvalidData, "invalid peer certificate: UnknownIssuer")),
        ];
        for e in &fatal {
            assert!(!is_transient(e), "{e:?}");
        }
    }

    #[test]
    fn descriptions() {
        let io = |k: io::ErrorKind| Error::Io(io::Error::new(k, "x"));
        let cases = [
            (Error::Timeout(Timeout::PerRead), "timed out reading the response"),
            (Error::Timeout(Timeout::Connect), "timed out connecting"),
            (io(io::ErrorKind::ConnectionReset), "connection reset"),
            (Error::HostNotFound, "host name not found"),
            (Error::StatusCode(503), "http status 503"),
            (Error::BadUri("http://user:pw@x".into()), "invalid url"),
            (
                Error::ConnectProxyFailed("proxy server responded 407/Proxy Authentication Required".into()),
                "proxy connect failed (proxy server responded 407/proxy authentication required)",
            ),
            (
                Error::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "invalid peer certificate: certificate not valid for name \"a.test\"; \
                     certificate is only valid for b.test",
                )),
                "certificate not valid for host a.test",
            ),
            (
                Error::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "received fatal alert: HandshakeFailure",
                )),
                "tls handshake rejected by the server (handshakefailure)",
            ),
            (Error::Io(io::Error::other("Multi\nLine")), "multi line"),
        ];
        for (e, want) in cases {
            assert_eq!(describe(&e), want, "{e:?}");
        }
    }

    #[test]
    fn real_refused_connection() {
        let port = {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        let agent = build_agent(&opts(Route::Direct)).unwrap();
        let err = agent.get(&format!("http://127.0.0.1:{port}/")).call().unwrap_err();
        assert!(is_transient(&err), "{err:?}");
        assert_eq!(describe(&err), "connection refused");
    }

    #[test]
    fn real_stalled_body_times_out() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ =
                std::io::Write::write_all(&mut s, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
            thread::sleep(Duration::from_secs(3));
        });
        let agent = build_agent(&opts(Route::Direct)).unwrap();
        let mut resp = agent
            .get(&format!("http://127.0.0.1:{port}/"))
            .config()
            .timeout_per_read(Some(Duration::from_millis(300)))
            .build()
            .call()
            .unwrap();
        let err = resp.body_mut().read_to_vec().unwrap_err();
        assert!(is_transient(&err), "{err:?}");
        assert_eq!(describe(&err), "timed out reading the response");
    }
}
