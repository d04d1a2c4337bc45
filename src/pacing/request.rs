//! What a provider asks the pacer for, and what it gets back.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::http::StatusClass;
use crate::pacing::body::{Body, Multipart};

/// An API call, as data, so that the pacer can repeat it after a backoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The full URL.
    pub url: String,
    /// Request headers. Values may be secret: they are never logged.
    pub headers: Vec<(String, String)>,
    /// The body, for POST and PUT.
    pub body: Option<Body>,
    /// Whether sending it twice does no harm; `None`: every method but
    /// POST is. The pacer re-sends a request that is not idempotent only
    /// when it provably did not reach the server or the server said it
    /// did not process it (429, 503 with `Retry-After`).
    pub idempotent: Option<bool>,
    /// This request's whole-exchange timeout instead of the account's
    /// (a large upload needs longer than an API call).
    pub timeout: Option<Duration>,
    /// Run before every attempt, retries and backoffs included, so that a
    /// timestamp or signature in the request is fresh when it is sent.
    pub sign: Option<Signer>,
    /// The lane of the account it goes through; `None`: the account's API
    /// lane (see [`crate::providers::AccountSpec::lanes`]).
    pub lane: Option<&'static str>,
}

/// A signing hook: changes the request just before it is sent (headers,
/// query parameters), or refuses with a reason.
#[derive(Clone)]
pub struct Signer(pub Arc<SignFn>);

/// The function behind a [`Signer`].
pub type SignFn = dyn Fn(&mut ApiRequest) -> Result<(), String> + Send + Sync;

impl Signer {
    /// A hook from a function.
    pub fn new(f: impl Fn(&mut ApiRequest) -> Result<(), String> + Send + Sync + 'static) -> Signer {
        Signer(Arc::new(f))
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer")
    }
}

impl PartialEq for Signer {
    fn eq(&self, other: &Signer) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Signer {}

impl ApiRequest {
    /// A request without a body.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> ApiRequest {
        ApiRequest {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            idempotent: None,
            timeout: None,
            sign: None,
            lane: None,
        }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> ApiRequest {
        ApiRequest::new("GET", url)
    }

    /// A POST request with a form body.
    pub fn post_form(url: impl Into<String>, form: &[(&str, &str)]) -> ApiRequest {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", crate::http::form_encode(k), crate::http::form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        ApiRequest::new("POST", url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .with_body(Body::Bytes(body.into_bytes()))
    }

    /// A POST request with a `multipart/form-data` body.
    pub fn post_multipart(url: impl Into<String>, form: Multipart) -> ApiRequest {
        ApiRequest::new("POST", url)
            .header("Content-Type", form.content_type())
            .with_body(Body::Multipart(form))
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> ApiRequest {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn with_body(mut self, body: Body) -> ApiRequest {
        self.body = Some(body);
        self
    }

    /// Says whether the request may be sent twice.
    #[must_use]
    pub fn idempotent(mut self, yes: bool) -> ApiRequest {
        self.idempotent = Some(yes);
        self
    }

    /// Sets this request's timeout.
    #[must_use]
    pub fn timeout(mut self, t: Duration) -> ApiRequest {
        self.timeout = Some(t);
        self
    }

    /// Sets the signing hook.
    #[must_use]
    pub fn signed(mut self, sign: Signer) -> ApiRequest {
        self.sign = Some(sign);
        self
    }

    /// Sends it on another lane of the account.
    #[must_use]
    pub fn on_lane(mut self, lane: &'static str) -> ApiRequest {
        self.lane = Some(lane);
        self
    }

    /// Whether sending it twice does no harm.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent.unwrap_or(!self.method.eq_ignore_ascii_case("POST"))
    }

    /// The request as it goes out on one attempt: the signing hook applied
    /// to a copy, so that every attempt is signed afresh.
    pub fn for_attempt(&self) -> Result<ApiRequest, String> {
        let mut out = self.clone();
        if let Some(sign) = &self.sign {
            (sign.0)(&mut out)?;
        }
        Ok(out)
    }
}

/// A complete answer (the body is read in full, up to a limit).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers, names lowercased, every value of a repeated header kept
    /// in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The URL that answered, after redirects (empty when unknown).
    pub url: String,
}

impl ApiResponse {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in the order received (several
    /// `Set-Cookie` headers, for example).
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Returns true if and only if the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How a provider reads an answer, before the job sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the job.
    Accept,
    /// The account is rate-limited: wait (this long, if the server said)
    /// and repeat the call.
    RateLimited(Option<Duration>),
    /// A passing failure (5xx, a proxy's HTML page): back off and repeat.
    Retry(String),
}

/// A provider's classifier.
pub type Classify = fn(&ApiResponse) -> Verdict;

/// Reads an answer the way every classifier does: 429 is a rate limit
/// (honouring `Retry-After`); otherwise `body` may name a verdict the
/// status does not show (a rate limit inside a 403, an error code inside
/// a 200; it gets the parsed `Retry-After`); failing that, 408, 425 and
/// 5xx are passing and the rest goes to the job
/// ([`crate::http::classify_status`]).
pub fn classify_answer(
    resp: &ApiResponse,
    body: impl FnOnce(Option<Duration>) -> Option<Verdict>,
) -> Verdict {
    let now = SystemTime::now();
    let header = resp.header("retry-after");
    match crate::http::classify_status(resp.status, header, now) {
        StatusClass::RateLimited(after) => Verdict::RateLimited(after),
        class => {
            body(header.and_then(|v| crate::http::parse_retry_after(v, now))).unwrap_or_else(|| match class {
                StatusClass::Transient => Verdict::Retry(format!("HTTP {}", resp.status)),
                _ => Verdict::Accept,
            })
        }
    }
}

/// The classifier for APIs without quirks: 429 (and 503 with
/// `Retry-After`) is a rate limit, other 5xx, 408 and 425 are passing.
pub fn default_classify(resp: &ApiResponse) -> Verdict {
    classify_answer(resp, |retry_after| {
        (resp.status == 503 && retry_after.is_some()).then_some(Verdict::RateLimited(retry_after))
    })
}

/// Why a call produced no answer for the job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// The job was paused or cancelled while the call waited.
    Interrupted,
    /// The daemon is shutting down.
    ShuttingDown,
    /// Still rate-limited after every allowed wait.
    RateLimited {
        /// How many rate-limit answers in a row.
        answers: u32,
    },
    /// A request that is not idempotent failed in a way that leaves open
    /// whether the server acted on it (a timeout or a dropped connection
    /// after it was sent, a 5xx): it was not sent again. The caller must
    /// find out (for example by listing what exists) before it repeats it.
    OutcomeUnknown {
        /// One-line reason.
        reason: String,
    },
    /// Network or server failure after every retry; `transient` tells
    /// whether trying again later may help.
    Transport {
        /// One-line reason.
        reason: String,
        /// Whether it may pass.
        transient: bool,
    },
}

impl ApiError {
    /// Returns true if and only if the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Interrupted | ApiError::ShuttingDown | ApiError::RateLimited { .. } => true,
            ApiError::Transport { transient, .. } => *transient,
            ApiError::OutcomeUnknown { .. } => false,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Interrupted => f.write_str("interrupted"),
            ApiError::ShuttingDown => f.write_str("shutting down"),
            ApiError::RateLimited { answers } => {
                write!(f, "still rate-limited after {answers} answers in a row")
            }
            ApiError::Transport { reason, .. } => f.write_str(reason),
            ApiError::OutcomeUnknown { reason } => {
                write!(f, "{reason}; the request may have been carried out, so it was not sent again")
            }
        }
    }
}

impl std::error::Error for ApiError {}

/// Reads an API answer's body, at most `limit` bytes, and undoes a gzip
/// content coding (RFC 9110 §8.4): ureq is built without its own decoder
/// so that file downloads keep the bytes as sent, and API calls ask for
/// gzip themselves. The limit holds for the encoded and the decoded size,
/// so a small compressed body cannot expand without bound.
pub(crate) fn read_api_body(
    resp: &mut ureq::http::Response<ureq::Body>,
    limit: u64,
) -> Result<Vec<u8>, ureq::Error> {
    use std::io::Read;
    let coding = resp
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let raw = resp.body_mut().with_config().limit(limit).read_to_vec()?;
    if coding != "gzip" && coding != "x-gzip" {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(raw.as_slice())
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| {
            ureq::Error::Io(io::Error::new(io::ErrorKind::InvalidData, format!("gzip decoding failed: {e}")))
        })?;
    if out.len() as u64 > limit {
        return Err(ureq::Error::BodyExceedsLimit(limit));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_api_bodies_are_decoded_within_the_limit() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&[b'a'; 10_000]).expect("encode");
        let gz = enc.finish().expect("encode");
        let answer = |body: Vec<u8>| {
            ureq::http::Response::builder()
                .header("Content-Encoding", "gzip")
                .body(ureq::Body::builder().data(body))
                .expect("response")
        };
        assert_eq!(read_api_body(&mut answer(gz.clone()), 20_000).expect("decoded"), vec![b'a'; 10_000]);
        assert!(matches!(read_api_body(&mut answer(gz), 5_000), Err(ureq::Error::BodyExceedsLimit(5_000))));
    }

    #[test]
    fn form_encoding() {
        let r = ApiRequest::post_form("http://h/t", &[("a b", "x&y=z"), ("k", "ü")]);
        assert_eq!(r.body.as_ref().and_then(Body::as_bytes), Some(&b"a+b=x%26y%3Dz&k=%C3%BC"[..]));
        assert!(!r.is_idempotent());
        assert!(ApiRequest::get("http://h/").is_idempotent());
        assert!(ApiRequest::new("PUT", "http://h/").is_idempotent());
        assert!(ApiRequest::get("http://h/").idempotent(false).idempotent == Some(false));
    }

    #[test]
    fn classify_defaults() {
        let r = |status, ra: Option<&str>| ApiResponse {
            status,
            headers: ra.map(|v| vec![("retry-after".to_string(), v.to_string())]).unwrap_or_default(),
            ..ApiResponse::default()
        };
        assert_eq!(default_classify(&r(429, Some("3"))), Verdict::RateLimited(Some(Duration::from_secs(3))));
        assert_eq!(default_classify(&r(429, None)), Verdict::RateLimited(None));
        assert!(matches!(default_classify(&r(502, None)), Verdict::Retry(_)));
        assert_eq!(default_classify(&r(404, None)), Verdict::Accept);
        assert_eq!(default_classify(&r(503, Some("2"))), Verdict::RateLimited(Some(Duration::from_secs(2))));
        assert!(matches!(default_classify(&r(503, None)), Verdict::Retry(_)));
        let body_says = classify_answer(&r(403, Some("4")), |ra| Some(Verdict::RateLimited(ra)));
        assert_eq!(
            body_says,
            Verdict::RateLimited(Some(Duration::from_secs(4))),
            "the body gets Retry-After"
        );
        assert_eq!(classify_answer(&r(429, None), |_| Some(Verdict::Accept)), Verdict::RateLimited(None));
        assert_eq!(classify_answer(&r(502, None), |_| None), Verdict::Retry("HTTP 502".into()));
    }
}
