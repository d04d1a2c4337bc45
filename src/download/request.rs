//! The GET of one download attempt, with redirects followed by hand.
//!
//! Owns which headers go where: the transport's own (`Accept-Encoding:
//! identity`, `Range`, `If-Range`) go to every hop, because the ranges a
//! resume asks for are the same whichever server answers; the job's
//! headers (a Referer, an `Authorization`, a `Cookie`, an API key under any
//! name) go only to the origin of the job's URL, unless the job says they
//! may follow the file anywhere. A redirect to anything but http or https
//! is refused with a reason, and at most [`MAX_REDIRECTS`] hops are
//! followed. A request that fails before any byte of an answer on a
//! connection the server had already closed is sent again at once on a
//! fresh one, as curl does, instead of costing a retry round.

use std::time::{Duration, Instant};

use ureq::Body;
use ureq::http::{Response, Uri};

use crate::download::task::Outcome;
use crate::http::display_url;

/// The most redirect hops one attempt follows (curl's and ureq's default).
pub const MAX_REDIRECTS: usize = 10;

/// What one attempt asks for.
pub(super) struct Get<'a> {
    /// The job's URL.
    pub url: &'a str,
    /// The job's headers.
    pub headers: &'a [(String, String)],
    /// Whether the job's headers follow a redirect to another origin.
    pub forward_headers: bool,
    /// Resume offset and its `If-Range` validator.
    pub range: Option<(u64, Option<&'a str>)>,
    /// Connect, response and per-read timeout.
    pub timeout: Duration,
}

/// Why no answer came.
#[derive(Debug)]
pub(super) enum NoAnswer {
    /// A reason, as the attempt's outcome.
    Over(Outcome),
    /// A timeout that ran out while the process itself was stopped
    /// (SIGSTOP, a suspended machine): not the server's fault.
    Suspended,
}

/// Sends the GET and follows redirects; returns the final answer.
pub(super) fn get(agent: &ureq::Agent, g: &Get<'_>) -> Result<Response<Body>, NoAnswer> {
    let first = origin(g.url);
    let mut url = g.url.to_string();
    let mut hops = 0;
    let mut resent = false;
    loop {
        let same_origin = first.is_some() && origin(&url) == first;
        let request = build(g, &url, same_origin || g.forward_headers)
            .map_err(|reason| NoAnswer::Over(Outcome::Failed { reason }))?;
        let request = agent
            .configure_request(request)
            .timeout_connect(Some(g.timeout))
            .timeout_recv_response(Some(g.timeout))
            .timeout_per_read(Some(g.timeout))
            .max_redirects(0)
            .build();
        let started = Instant::now();
        let resp = match agent.run(request) {
            Ok(r) => r,
            Err(e) if !resent && closed_before_answer(&e) => {
                log::debug!(
                    "{}: the connection was closed before an answer; sending again",
                    display_url(&url)
                );
                resent = true;
                continue;
            }
            Err(e) if stopped_meanwhile(&e, started.elapsed(), g.timeout) => return Err(NoAnswer::Suspended),
            Err(e) => return Err(NoAnswer::Over(network_failure(&e))),
        };
        resent = false;
        let status = resp.status().as_u16();
        if log::log_enabled!(log::Level::Debug) {
            let range = g.range.map_or(String::new(), |(offset, _)| format!(" from byte {offset}"));
            log::debug!(
                "GET {}{range}: HTTP {status} in {} ms",
                display_url(&url),
                started.elapsed().as_millis()
            );
        }
        if !matches!(status, 301 | 302 | 303 | 307 | 308) {
            return Ok(resp);
        }
        let Some(location) = resp.headers().get("location").and_then(|v| v.to_str().ok()) else {
            return Ok(resp);
        };
        let next = follow(&url, location).map_err(|reason| NoAnswer::Over(Outcome::Failed { reason }))?;
        hops += 1;
        if hops > MAX_REDIRECTS {
            return Err(NoAnswer::Over(Outcome::Failed {
                reason: format!("too many redirects (more than {MAX_REDIRECTS}) from {}", display_url(g.url)),
            }));
        }
        log::debug!("{} redirects ({status}) to {}", display_url(&url), display_url(&next));
        url = next;
    }
}

/// The request to one hop.
fn build(g: &Get<'_>, url: &str, job_headers: bool) -> Result<ureq::http::Request<()>, String> {
    let mut builder =
        ureq::http::Request::builder().method("GET").uri(url).header("Accept-Encoding", "identity");
    if job_headers {
        for (k, v) in g.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
    }
    if let Some((offset, validator)) = g.range {
        builder = builder.header("Range", format!("bytes={offset}-"));
        if let Some(v) = validator {
            builder = builder.header("If-Range", v);
        }
    }
    builder.body(()).map_err(|e| format!("invalid request: {e}"))
}

/// The next hop's URL, or the reason it is not followed.
fn follow(from: &str, location: &str) -> Result<String, String> {
    let next = resolve(from, location.trim());
    let scheme = next.split_once(':').map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
    if scheme != "http" && scheme != "https" {
        let shown = if scheme.is_empty() || !is_scheme(&scheme) {
            "non-http".to_string()
        } else {
            format!("{scheme}:")
        };
        return Err(format!("redirect to a {shown} URL refused (from {})", display_url(from)));
    }
    if next.parse::<Uri>().is_err() {
        return Err(format!("redirect to an invalid URL refused (from {})", display_url(from)));
    }
    Ok(next)
}

/// Scheme, host and port of a URL, lower case, with the default port
/// filled in; `None` when it does not parse.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
    Some((scheme, host, port))
}

/// Whether `s` is a URL scheme (RFC 3986 §3.1).
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Resolves a `Location` against the URL it came from (RFC 3986 §5.2,
/// for the forms servers send: absolute, `//host/…`, `/path`, `?query`,
/// relative paths with `.` and `..`). The fragment is dropped: it is
/// never sent.
pub(crate) fn resolve(base: &str, reference: &str) -> String {
    let reference = reference.split('#').next().unwrap_or_default();
    if let Some((scheme, _)) = reference.split_once(':')
        && is_scheme(scheme)
    {
        return reference.to_string();
    }
    let base = base.split('#').next().unwrap_or_default();
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if let Some(net) = reference.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(auth_end);
    let (path, _) = path_query.split_once('?').unwrap_or((path_query, ""));
    let prefix = format!("{scheme}://{authority}");
    if reference.is_empty() {
        return base.to_string();
    }
    if reference.starts_with('?') {
        let path = if path.is_empty() { "/" } else { path };
        return format!("{prefix}{path}{reference}");
    }
    let (ref_path, query) = match reference.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (reference, None),
    };
    let merged = if ref_path.starts_with('/') {
        ref_path.to_string()
    } else {
        let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
        format!("{dir}{ref_path}")
    };
    let mut out = prefix + &remove_dot_segments(&merged);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// RFC 3986 §5.2.4 on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing = i == last,
            ".." => {
                kept.pop();
                trailing = i == last;
            }
            s => {
                kept.push(s);
                trailing = false;
            }
        }
    }
    let mut out = String::from("/");
    out.push_str(&kept.join("/"));
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// Whether a request failed before any byte of an answer because the
/// server had closed the connection (a pooled keep-alive connection it
/// timed out as we sent on it). A fresh connection answers.
fn closed_before_answer(e: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    match e {
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionReset
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof
                | ErrorKind::ConnectionAborted
        ),
        _ => false,
    }
}

/// Whether a timeout ran out while this process could not run: a wait
/// that is bounded by `timeout` but took far longer means the clock kept
/// going while the process was stopped. Linux wakes a stopped socket read
/// with `EINTR` on SIGCONT, and the time left of its timeout is gone by
/// then.
pub(super) fn stopped_meanwhile(e: &ureq::Error, took: Duration, timeout: Duration) -> bool {
    matches!(e, ureq::Error::Timeout(_)) && took > suspended_after(timeout)
}

/// How long a wait bounded by `timeout` may take before it can only be
/// explained by a stopped process (scheduling noise allowed for).
pub(super) fn suspended_after(timeout: Duration) -> Duration {
    timeout + timeout / 2 + Duration::from_secs(1)
}

/// Classifies a failed exchange.
pub(super) fn network_failure(e: &ureq::Error) -> Outcome {
    let reason = crate::http::describe(e);
    if crate::http::is_transient(e) {
        Outcome::Retry { reason, after: None }
    } else {
        Outcome::Failed { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_url_they_came_from() {
        let base = "http://h:8080/a/b/c.bin?x=1";
        let cases = [
            ("https://cdn/f", "https://cdn/f"),
            ("//cdn/f?q", "http://cdn/f?q"),
            ("/f", "http://h:8080/f"),
            ("f", "http://h:8080/a/b/f"),
            ("./f", "http://h:8080/a/b/f"),
            ("../f", "http://h:8080/a/f"),
            ("../../../../f", "http://h:8080/f"),
            ("d/../e/./f?y=2", "http://h:8080/a/b/e/f?y=2"),
            ("?z=3", "http://h:8080/a/b/c.bin?z=3"),
            ("f#frag", "http://h:8080/a/b/f"),
            ("..", "http://h:8080/a/"),
        ];
        for (loc, want) in cases {
            assert_eq!(resolve(base, loc), want, "{loc}");
        }
        assert_eq!(resolve("http://h", "f"), "http://h/f");
        assert_eq!(resolve("http://h?q", "?r"), "http://h/?r");
    }

    #[test]
    fn only_http_and_https_are_followed() {
        let from = "http://h/a?token=SECRET";
        for loc in ["file:///etc/passwd", "data:text/plain,hi", "FTP://h/f", "javascript:alert(1)"] {
            let reason = follow(from, loc).expect_err(loc);
            assert!(reason.contains("URL refused"), "{reason}");
            assert!(!reason.contains("SECRET"), "{reason}");
        }
        assert!(follow(from, "file:///x").expect_err("file").contains("redirect to a file: URL refused"));
        assert_eq!(follow(from, "HTTPS://cdn/f").as_deref(), Ok("HTTPS://cdn/f"));
        assert_eq!(follow(from, "/b").as_deref(), Ok("http://h/b"));
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(origin("http://H:80/a"), origin("http://h/b"));
        assert_ne!(origin("http://h/a"), origin("https://h/a"));
        assert_ne!(origin("http://h:81/a"), origin("http://h/a"));
        assert_ne!(origin("http://h/a"), origin("http://g/a"));
        assert_eq!(origin("https://h:443/"), origin("https://h/"));
    }

    #[test]
    fn a_timeout_counts_as_a_stop_only_when_it_took_far_longer_than_it_can() {
        let t = Duration::from_secs(2);
        let timeout = ureq::Error::Timeout(ureq::Timeout::PerRead);
        assert!(!stopped_meanwhile(&timeout, Duration::from_millis(2100), t));
        assert!(stopped_meanwhile(&timeout, Duration::from_secs(10), t));
        assert!(!stopped_meanwhile(&ureq::Error::HostNotFound, Duration::from_secs(10), t));
    }
}
