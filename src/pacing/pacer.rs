//! The pacing thread of one account.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::job::JobFlags;
use crate::pacing::backoff::{backoff_delay, cap_retry_after};
use crate::pacing::body::Body;
use crate::pacing::request::{ApiError, ApiRequest, ApiResponse, Classify, Verdict};

/// How an account is paced. Built from the configuration and the
/// provider's defaults.
#[derive(Debug, Clone)]
pub struct AccountPolicy {
    /// Minimum gap between the end of one call and the start of the next.
    pub interval: Duration,
    /// Repeats of a call after a network error or a passing server error.
    pub retries: u32,
    /// First wait after a rate-limit answer without `Retry-After`.
    pub rate_limit_base: Duration,
    /// Longest wait (also caps `Retry-After`).
    pub backoff_max: Duration,
    /// Rate-limit answers in a row after which a call is given up.
    pub max_rate_limited: u32,
    /// Whole-call timeout of one API request.
    pub timeout: Duration,
    /// Largest body accepted.
    pub max_body: u64,
    /// A random extra gap of up to this much after each call, so that a
    /// site that looks for machine-regular timing does not see one.
    pub jitter: Duration,
    /// A request budget (requests per second, burst) on top of `interval`.
    pub bucket: Option<(f64, f64)>,
    /// After every `n` calls, a pause of this long (`(n, pause)`): sites
    /// that watch for long unbroken runs see a person's breaks.
    pub pause: Option<(u32, Duration)>,
}

/// A token bucket. It starts empty: a restarted process must not assume
/// burst credit, because the server still counts the calls of the process
/// that was just killed.
#[derive(Debug)]
struct Bucket {
    /// Tokens per second.
    rate: f64,
    /// Most tokens held.
    burst: f64,
    /// Tokens now.
    tokens: f64,
    /// When `tokens` was computed.
    at: Instant,
}

impl Bucket {
    /// Adds the tokens earned since the last look.
    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.at = now;
    }

    /// When a call may start.
    fn ready_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens >= 1.0 { now } else { now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate) }
    }

    /// Spends one token.
    fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }
}

/// Counters of one account, readable from any thread.
#[derive(Debug, Default)]
pub struct PacerStats {
    /// HTTP exchanges made.
    pub calls: AtomicU64,
    /// Rate-limit answers received.
    pub rate_limited: AtomicU64,
}

/// A message to the pacing thread.
enum PacerMsg {
    /// Make a call and answer on its `reply`.
    Call(Box<Call>),
    /// Stop the thread.
    Quit,
}

/// Handle to an account's pacing thread; cheap to clone.
#[derive(Clone)]
pub struct Pacer {
    /// The account's name, for logs.
    account: Arc<str>,
    /// Requests to the thread. Bounded: callers wait when many queue.
    tx: Sender<PacerMsg>,
    /// Counters.
    stats: Arc<PacerStats>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer").field("account", &self.account).finish()
    }
}

impl Pacer {
    /// Starts the pacing thread of `account`.
    pub fn spawn(
        account: &str,
        agent: ureq::Agent,
        policy: AccountPolicy,
        shutdown: Arc<AtomicBool>,
    ) -> std::io::Result<(Pacer, JoinHandle<()>)> {
        let (tx, rx) = bounded(64);
        let stats = Arc::new(PacerStats::default());
        let thread_stats = Arc::clone(&stats);
        let name: Arc<str> = Arc::from(account);
        let thread_name = Arc::clone(&name);
        let join = thread::Builder::new()
            .name(format!("pacer-{account}"))
            .spawn(move || run(&thread_name, &agent, &policy, &rx, &thread_stats, &shutdown))?;
        Ok((Pacer { account: name, tx, stats }, join))
    }

    /// Makes a call through the account's schedule; blocks until answered.
    pub fn call(
        &self,
        req: ApiRequest,
        classify: Classify,
        flags: &Arc<JobFlags>,
    ) -> Result<ApiResponse, ApiError> {
        let (reply, answer) = bounded(1);
        let msg = PacerMsg::Call(Box::new(Call { req, classify, flags: Arc::clone(flags), reply }));
        if self.tx.send(msg).is_err() {
            return Err(ApiError::ShuttingDown);
        }
        answer.recv().unwrap_or(Err(ApiError::ShuttingDown))
    }

    /// The account's counters.
    pub fn stats(&self) -> &PacerStats {
        &self.stats
    }

    /// Asks the thread to stop after the current call.
    pub fn quit(&self) {
        let _ = self.tx.send(PacerMsg::Quit);
    }
}

/// A call waiting for its turn.
struct Call {
    /// The request.
    req: ApiRequest,
    /// The provider's reading of answers.
    classify: Classify,
    /// The calling job's stop flag.
    flags: Arc<JobFlags>,
    /// Where the answer goes.
    reply: Sender<Result<ApiResponse, ApiError>>,
}

/// The thread body: one call at a time, in arrival order.
fn run(
    account: &str,
    agent: &ureq::Agent,
    policy: &AccountPolicy,
    rx: &Receiver<PacerMsg>,
    stats: &PacerStats,
    shutdown: &AtomicBool,
) {
    let mut next_allowed = Instant::now();
    // Rate-limit answers in a row for the account (not per call): a new
    // call after a rate limit keeps the longer wait.
    let mut streak: u32 = 0;
    // Calls received but not yet made. They are taken off the channel
    // while the thread waits, so that a job paused behind another job's
    // long backoff is answered at once instead of after it.
    let mut queue: VecDeque<Call> = VecDeque::new();
    let mut quit = false;
    // Exchanges made, for the pause every N calls.
    let mut made: u64 = 0;
    let mut bucket = policy
        .bucket
        .filter(|(rate, burst)| *rate > 0.0 && *burst >= 1.0)
        .map(|(rate, burst)| Bucket { rate, burst, tokens: 0.0, at: Instant::now() });
    loop {
        if queue.is_empty() {
            if quit {
                break;
            }
            match rx.recv() {
                Ok(PacerMsg::Call(call)) => queue.push_back(*call),
                Ok(PacerMsg::Quit) | Err(_) => break,
            }
        }
        let Some(call) = queue.pop_front() else { continue };
        let mut failures: u32 = 0;
        let result = loop {
            let start_at = match &mut bucket {
                Some(b) => b.ready_at(Instant::now()).max(next_allowed),
                None => next_allowed,
            };
            if let Err(e) = wait_until(start_at, &call.flags, shutdown, rx, &mut queue, &mut quit) {
                break Err(e);
            }
            if let Some(b) = &mut bucket {
                b.take(Instant::now());
            }
            // Signed now, not when described: a backoff must not send a
            // stale timestamp.
            let req = match call.req.for_attempt() {
                Ok(r) => r,
                Err(reason) => {
                    break Err(ApiError::Transport {
                        reason: format!("cannot sign the request: {reason}"),
                        transient: false,
                    });
                }
            };
            let body = match Outgoing::of(&req) {
                Ok(b) => b,
                Err(e) => {
                    break Err(ApiError::Transport {
                        reason: format!("cannot read the body: {e}"),
                        transient: false,
                    });
                }
            };
            let sent = Instant::now();
            let outcome = execute(agent, &req, body, policy);
            let ended = Instant::now();
            log_exchange(account, &req, &outcome, ended - sent);
            next_allowed = ended + policy.interval + jitter(policy.jitter);
            made += 1;
            if let Some(pause) = pause_after(made, policy.pause) {
                log::info!("{account}: {made} calls made; pausing {:.1} s", pause.as_secs_f64());
                next_allowed = next_allowed.max(ended + pause);
            }
            stats.calls.fetch_add(1, Ordering::Relaxed);
            let once = !call.req.is_idempotent();
            match outcome {
                Ok(resp) => match (call.classify)(&resp) {
                    Verdict::Accept => {
                        streak = 0;
                        break Ok(resp);
                    }
                    Verdict::RateLimited(retry_after) => {
                        streak += 1;
                        stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                        let wait = match retry_after {
                            Some(d) => cap_retry_after(d, policy.backoff_max),
                            None => backoff_delay(streak, policy.rate_limit_base, policy.backoff_max),
                        };
                        // The wait holds for the whole account even when
                        // this call gives up: the server asked for it.
                        next_allowed = ended + wait.max(policy.interval);
                        if streak > policy.max_rate_limited {
                            log::warn!(
                                "{account}: still rate-limited after {streak} answers; giving up this call, next call in {:.1} s",
                                wait.as_secs_f64()
                            );
                            break Err(ApiError::RateLimited { answers: streak });
                        }
                        log::warn!(
                            "{account}: rate-limited (HTTP {}); pausing every call of this account for {:.1} s",
                            resp.status,
                            wait.as_secs_f64()
                        );
                    }
                    Verdict::Retry(reason) => {
                        failures += 1;
                        // A 5xx does not say the request was not carried
                        // out; only a rate-limit answer does.
                        if once {
                            break Err(ApiError::OutcomeUnknown { reason });
                        }
                        if failures > policy.retries {
                            break Err(ApiError::Transport { reason, transient: true });
                        }
                        let wait = backoff_delay(failures, Duration::from_secs(1), policy.backoff_max);
                        log::info!("{account}: {reason}; trying again in {:.1} s", wait.as_secs_f64());
                        next_allowed = ended + wait.max(policy.interval);
                    }
                },
                Err(e) => {
                    let reason = crate::http::describe(&e);
                    let transient = crate::http::is_transient(&e);
                    failures += 1;
                    if once && transient && !crate::http::never_sent(&e) {
                        break Err(ApiError::OutcomeUnknown { reason });
                    }
                    if !transient || failures > policy.retries {
                        break Err(ApiError::Transport { reason, transient });
                    }
                    let wait = backoff_delay(failures, Duration::from_secs(1), policy.backoff_max);
                    log::info!("{account}: {reason}; trying again in {:.1} s", wait.as_secs_f64());
                    next_allowed = ended + wait.max(policy.interval);
                }
            }
        };
        let _ = call.reply.send(result);
    }
    for call in queue {
        let _ = call.reply.send(Err(ApiError::ShuttingDown));
    }
}

/// Sleeps until `t` in short slices, giving up early when the job is
/// halted or the daemon shuts down. Meanwhile it moves new calls from the
/// channel to `queue` and answers those whose job was halted.
fn wait_until(
    t: Instant,
    flags: &JobFlags,
    shutdown: &AtomicBool,
    rx: &Receiver<PacerMsg>,
    queue: &mut VecDeque<Call>,
    quit: &mut bool,
) -> Result<(), ApiError> {
    loop {
        while let Ok(msg) = rx.try_recv() {
            match msg {
                PacerMsg::Call(call) => queue.push_back(*call),
                PacerMsg::Quit => *quit = true,
            }
        }
        queue.retain(|c| {
            if c.flags.halted() {
                let _ = c.reply.send(Err(ApiError::Interrupted));
                false
            } else {
                true
            }
        });
        if shutdown.load(Ordering::Acquire) || *quit {
            return Err(ApiError::ShuttingDown);
        }
        if flags.halted() {
            return Err(ApiError::Interrupted);
        }
        let now = Instant::now();
        if now >= t {
            return Ok(());
        }
        thread::sleep((t - now).min(Duration::from_millis(50)));
    }
}

/// The pause due after the `made`-th call: `pause` after every `n`-th
/// one (a backoff that asks for longer still wins, being a maximum).
fn pause_after(made: u64, pause: Option<(u32, Duration)>) -> Option<Duration> {
    match pause {
        Some((n, d)) if n > 0 && !d.is_zero() && made > 0 && made.is_multiple_of(u64::from(n)) => Some(d),
        _ => None,
    }
}

/// A random gap from zero to `max`.
fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        Duration::ZERO
    } else {
        Duration::from_micros(fastrand::u64(0..=max.as_micros() as u64))
    }
}

/// Makes one HTTP exchange without pacing (for one-off calls such as the
/// CLI's token check) and reads the whole body, up to `max_body` bytes.
pub fn send_once(
    agent: &ureq::Agent,
    req: &ApiRequest,
    timeout: Duration,
    max_body: u64,
) -> Result<ApiResponse, ureq::Error> {
    let policy = AccountPolicy {
        interval: Duration::ZERO,
        jitter: Duration::ZERO,
        retries: 0,
        rate_limit_base: Duration::ZERO,
        backoff_max: Duration::ZERO,
        max_rate_limited: 0,
        timeout,
        max_body,
        bucket: None,
        pause: None,
    };
    let req = req.for_attempt().map_err(|e| ureq::Error::Io(std::io::Error::other(e)))?;
    let body = Outgoing::of(&req).map_err(ureq::Error::Io)?;
    execute(agent, &req, body, &policy)
}

/// A request's body, ready for one attempt.
enum Outgoing {
    /// No body.
    None,
    /// In memory.
    Bytes(Vec<u8>),
    /// Streamed, with its length.
    Stream(Box<dyn std::io::Read + Send>, u64),
}

impl Outgoing {
    /// Opens the body of `req` (its files are opened now, so that a file
    /// that cannot be read fails before anything is sent).
    fn of(req: &ApiRequest) -> std::io::Result<Outgoing> {
        Ok(match &req.body {
            None => Outgoing::None,
            Some(Body::Bytes(b)) => Outgoing::Bytes(b.clone()),
            Some(b) => Outgoing::Stream(b.reader()?, b.len()),
        })
    }
}

/// `RUST_LOG=debug`: every API request and its answer, one line each
/// (the URL with its secret-looking values masked).
fn log_exchange(account: &str, req: &ApiRequest, outcome: &Result<ApiResponse, ureq::Error>, took: Duration) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let url = crate::http::display_url(&req.url);
    let ms = took.as_millis();
    match outcome {
        Ok(r) => log::debug!(
            "{account}: {} {url}: HTTP {}, {} in {ms} ms",
            req.method.as_str(),
            r.status,
            crate::job::units::human_bytes(r.body.len() as u64)
        ),
        Err(e) => log::debug!(
            "{account}: {} {url}: {} after {ms} ms",
            req.method.as_str(),
            crate::http::describe(e)
        ),
    }
}

/// Makes one HTTP exchange and reads the whole body.
fn execute(
    agent: &ureq::Agent,
    req: &ApiRequest,
    body: Outgoing,
    policy: &AccountPolicy,
) -> Result<ApiResponse, ureq::Error> {
    use ureq::ResponseExt;
    let mut builder = ureq::http::Request::builder().method(req.method.as_str()).uri(req.url.as_str());
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    if !req.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("accept-encoding")) {
        builder = builder.header("Accept-Encoding", "gzip");
    }
    let timeout = Some(req.timeout.unwrap_or(policy.timeout));
    let mut resp = match body {
        Outgoing::Bytes(bytes) => {
            let request = builder.body(bytes).map_err(ureq::Error::Http)?;
            agent.run(agent.configure_request(request).timeout_global(timeout).build())?
        }
        Outgoing::Stream(reader, len) => {
            // The length is known, so it is announced rather than sent
            // chunked (storage services refuse chunked uploads).
            builder = builder.header("Content-Length", len.to_string());
            let request =
                builder.body(ureq::SendBody::from_owned_reader(reader)).map_err(ureq::Error::Http)?;
            agent.run(agent.configure_request(request).timeout_global(timeout).build())?
        }
        Outgoing::None => {
            let request = builder.body(()).map_err(ureq::Error::Http)?;
            agent.run(agent.configure_request(request).timeout_global(timeout).build())?
        }
    };
    let status = resp.status().as_u16();
    let url = resp.get_uri().to_string();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = crate::pacing::request::read_api_body(&mut resp, policy.max_body)?;
    Ok(ApiResponse { status, headers, body, url })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_bound_and_varies() {
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        let max = Duration::from_millis(1000);
        let draws: Vec<Duration> = (0..200).map(|_| jitter(max)).collect();
        assert!(draws.iter().all(|d| *d <= max));
        let mean = draws.iter().sum::<Duration>() / 200;
        assert!(mean > Duration::from_millis(300) && mean < Duration::from_millis(700), "{mean:?}");
    }

    #[test]
    fn the_pause_falls_after_every_nth_call_only() {
        let d = Duration::from_secs(30);
        let due: Vec<u64> = (0..=12).filter(|&m| pause_after(m, Some((4, d))).is_some()).collect();
        assert_eq!(due, [4, 8, 12]);
        assert_eq!(pause_after(4, Some((4, d))), Some(d));
        assert_eq!(pause_after(1, Some((1, d))), Some(d), "every call");
        assert_eq!(pause_after(4, None), None);
        assert_eq!(pause_after(4, Some((0, d))), None, "0 turns it off");
        assert_eq!(pause_after(4, Some((4, Duration::ZERO))), None);
        assert_eq!(pause_after(u64::from(u32::MAX) * 2, Some((u32::MAX, d))), Some(d));
    }

    #[test]
    fn the_bucket_starts_empty_and_refills_to_its_burst() {
        let t0 = Instant::now();
        let mut b = Bucket { rate: 20.0, burst: 100.0, tokens: 0.0, at: t0 };
        // Empty at start: the first call waits one token's time.
        let first = b.ready_at(t0);
        assert!(first >= t0 + Duration::from_millis(49));
        // After 10 s idle the credit is capped at the burst.
        let later = t0 + Duration::from_secs(10);
        b.refill(later);
        assert!((b.tokens - 100.0).abs() < 1e-9);
        for _ in 0..100 {
            assert_eq!(b.ready_at(later), later);
            b.take(later);
        }
        assert!(b.ready_at(later) > later);
    }
}
