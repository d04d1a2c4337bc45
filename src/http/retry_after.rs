//! Parsing of the `Retry-After` response header (RFC 9110 §10.2.3).
//!
//! Servers send it with 429 and 503 responses. Honouring it is what keeps a
//! polite client from being banned, so a bad value must never crash the
//! caller: anything unparsable yields `None` and the caller falls back to its
//! own back-off.

use std::time::{Duration, SystemTime};

/// Turns a `Retry-After` value into a delay measured from `now`.
///
/// Accepts both forms the RFC allows:
/// * delay-seconds (`"120"`); a fractional (`"1.5"`) or negative (`"-3"`)
///   number is accepted too, because some servers send them and the intent is
///   obvious;
/// * an HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`, plus the obsolete
///   RFC 850 and asctime forms, via `httpdate`).
///
/// A date in the past, or a negative number, gives `Duration::ZERO` ("retry
/// now") rather than `None`: the server did express an opinion. There is no
/// upper cap here on purpose — how long is too long is policy, and callers
/// apply it (e.g. `min(delay, max_backoff)`). `now` is a parameter so callers
/// can use one clock reading for a whole decision and tests are deterministic.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+')) {
        return parse_seconds(value);
    }
    let when = httpdate::parse_http_date(value).ok()?;
    // `duration_since` fails exactly when `when` is before `now`: clamp to zero.
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses the delay-seconds form, tolerating fractions and signs.
fn parse_seconds(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let secs = value.parse::<f64>().ok()?;
    if secs.is_nan() {
        return None;
    }
    if secs <= 0.0 {
        return Some(Duration::ZERO);
    }
    // Absurdly large numbers saturate instead of panicking in `from_secs_f64`;
    // the caller's cap turns them into something sensible.
    Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // panicking is how tests fail
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    // 2015-10-21T07:28:00Z
    const DATE: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
    const DATE_SECS: u64 = 1_445_412_480;

    #[test]
    fn delay_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5", now), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("-3", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::MAX),
            "saturates, the caller caps"
        );
        assert_eq!(parse_retry_after("1e999", now), None, "not digits-only");
    }

    #[test]
    fn http_date_in_future() {
        assert_eq!(parse_retry_after(DATE, at(DATE_SECS - 90)), Some(Duration::from_secs(90)));
        // Obsolete RFC 850 form is still accepted by httpdate.
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", at(DATE_SECS - 5)),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn http_date_in_past_is_zero() {
        assert_eq!(parse_retry_after(DATE, at(DATE_SECS + 3600)), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(DATE, SystemTime::now()), Some(Duration::ZERO));
    }

    #[test]
    fn garbage_is_none() {
        let now = SystemTime::now();
        for v in ["", "   ", "soon", "1.2.3", "--1", "NaN", "Wed, 32 Oct 2015 07:28:00 GMT", "12 s"] {
            assert_eq!(parse_retry_after(v, now), None, "{v:?}");
        }
    }
}
