//! Backoff arithmetic, kept free of threads and clocks so it is easy to
//! test.

use std::time::Duration;

/// The wait before retry number `attempt` (from 1): exponential from
/// `base`, capped at `cap`, with "equal jitter" (half fixed, half random)
/// so that many clients that failed together do not retry together, yet
/// no wait collapses to almost nothing.
pub fn backoff_delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(attempt.saturating_sub(1).min(20)).unwrap_or(u32::MAX));
    let full = exp.min(cap);
    let half = full / 2;
    let jitter = Duration::from_nanos(fastrand::u64(..=u64::try_from(half.as_nanos()).unwrap_or(u64::MAX)));
    half + jitter
}

/// Caps a server's `Retry-After` so that a broken or hostile value cannot
/// park a job for days; logs when it had to.
pub fn cap_retry_after(wait: Duration, cap: Duration) -> Duration {
    if wait > cap {
        log::warn!("server asked to wait {} s; waiting {} s instead", wait.as_secs(), cap.as_secs());
        cap
    } else {
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        for attempt in 1..40 {
            let d = backoff_delay(attempt, base, cap);
            let full = (base * 2u32.pow((attempt - 1).min(10))).min(cap);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?} vs {full:?}");
        }
        assert_eq!(cap_retry_after(Duration::from_secs(5000), cap), cap);
    }
}
