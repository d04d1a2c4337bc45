//! The per-account pacing thread (`pacing::Pacer`) against a loopback
//! server that records when each call arrived and when it was answered.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use spoolfetch::job::JobFlags;
use spoolfetch::pacing::{
    AccountPolicy, ApiError, ApiRequest, ApiResponse, Pacer, Verdict, default_classify,
};

use crate::support::http::{Handler, Request, Response, Server, lock};

/// Slack for "at least" comparisons of instants taken on different threads.
const SLACK: Duration = Duration::from_millis(5);

use crate::util::test_agent as agent;

/// Short waits everywhere, so that every test stays within a few seconds.
fn policy() -> AccountPolicy {
    AccountPolicy {
        interval: Duration::from_millis(10),
        retries: 2,
        rate_limit_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        max_rate_limited: 5,
        timeout: Duration::from_secs(2),
        max_body: 1 << 20,
        bucket: None,
        jitter: Duration::ZERO,
        pause: None,
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Hit {
    /// Path without the query.
    path: String,
    /// When the handler was called.
    arrived: Instant,
    /// When the handler returned (the client finished reading later).
    answered: Instant,
}

#[derive(Default)]
struct Recorder {
    hits: Mutex<Vec<Hit>>,
    per_path: Mutex<HashMap<String, usize>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Recorder {
    fn hits(&self) -> Vec<Hit> {
        let mut h = lock(&self.hits).clone();
        h.sort_by_key(|h| h.arrived);
        h
    }

    fn hits_of(&self, path: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.path == path).collect()
    }
}

/// Starts a server whose answer depends on the path and on how many
/// requests that path had before (0 for the first).
fn serve(respond: impl Fn(&str, usize) -> Response + Send + Sync + 'static) -> (Server, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let r = Arc::clone(&rec);
    let handler: Handler = Arc::new(move |req: &Request| {
        let arrived = Instant::now();
        let now = r.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        r.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let path = req.path_only().to_string();
        let n = {
            let mut m = lock(&r.per_path);
            let c = m.entry(path.clone()).or_default();
            *c += 1;
            *c - 1
        };
        let resp = respond(&path, n);
        r.in_flight.fetch_sub(1, Ordering::SeqCst);
        lock(&r.hits).push(Hit { path, arrived, answered: Instant::now() });
        resp
    });
    (Server::start(handler), rec)
}

fn ok() -> Response {
    Response::json(200, r#"{"ok":true}"#)
}

fn too_many(retry_after: Option<&str>) -> Response {
    let r = Response::text(429, "slow down\n");
    match retry_after {
        Some(v) => r.header("Retry-After", v),
        None => r,
    }
}

fn spawn(policy: AccountPolicy) -> (Pacer, JoinHandle<()>, Arc<AtomicBool>) {
    let shutdown = Arc::new(AtomicBool::new(false));
    let (p, j) = Pacer::spawn("acct", agent(), policy, Arc::clone(&shutdown)).expect("spawn pacer");
    (p, j, shutdown)
}

fn stop(p: &Pacer, j: JoinHandle<()>) {
    p.quit();
    j.join().expect("pacer thread ends cleanly");
}

fn flags() -> Arc<JobFlags> {
    Arc::new(JobFlags::default())
}

/// Makes a call on another thread; returns its result and when it returned.
fn call_in_thread(
    p: &Pacer,
    url: String,
    f: &Arc<JobFlags>,
) -> JoinHandle<(Result<ApiResponse, ApiError>, Instant)> {
    let p = p.clone();
    let f = Arc::clone(f);
    thread::spawn(move || {
        let r = p.call(ApiRequest::get(url), default_classify, &f);
        (r, Instant::now())
    })
}

fn status(r: &Result<ApiResponse, ApiError>) -> u16 {
    match r {
        Ok(resp) => resp.status,
        Err(e) => panic!("call failed: {e:?}"),
    }
}

/// Waits (bounded) until the server has seen `n` requests.
fn wait_for_hits(rec: &Recorder, n: usize) {
    let end = Instant::now() + Duration::from_secs(5);
    while lock(&rec.hits).len() < n {
        assert!(Instant::now() < end, "server never saw {n} requests");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn two_jobs_share_one_serialized_schedule() {
    let (server, rec) = serve(|_, _| {
        thread::sleep(Duration::from_millis(20));
        ok()
    });
    let interval = Duration::from_millis(150);
    let (p, j, _) = spawn(AccountPolicy { interval, ..policy() });
    let jobs: Vec<_> = ["/a", "/b"]
        .into_iter()
        .map(|path| {
            let p = p.clone();
            let url = format!("{}{path}", server.base_url());
            thread::spawn(move || {
                let f = flags();
                (0..3)
                    .map(|_| status(&p.call(ApiRequest::get(url.clone()), default_classify, &f)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for job in jobs {
        assert_eq!(job.join().expect("job thread"), vec![200, 200, 200]);
    }
    stop(&p, j);
    let hits = rec.hits();
    assert_eq!(hits.len(), 6);
    assert_eq!(rec.max_in_flight.load(Ordering::SeqCst), 1, "calls overlapped");
    assert_eq!(hits.iter().filter(|h| h.path == "/a").count(), 3);
    for w in hits.windows(2) {
        let gap = w[1].arrived.saturating_duration_since(w[0].answered);
        assert!(gap + SLACK >= interval, "{} came {gap:?} after {} ended", w[1].path, w[0].path);
    }
    assert_eq!(p.stats().calls.load(Ordering::Relaxed), 6);
    assert_eq!(p.stats().rate_limited.load(Ordering::Relaxed), 0);
}

#[test]
fn retry_after_delays_the_retry_and_the_other_job() {
    let (server, rec) = serve(|path, n| if path == "/a" && n == 0 { too_many(Some("1")) } else { ok() });
    let (p, j, _) = spawn(AccountPolicy { backoff_max: Duration::from_secs(5), ..policy() });
    let a = call_in_thread(&p, format!("{}/a", server.base_url()), &flags());
    wait_for_hits(&rec, 1);
    let b = call_in_thread(&p, format!("{}/b", server.base_url()), &flags());
    let (ra, _) = a.join().expect("job A");
    let (rb, _) = b.join().expect("job B");
    assert_eq!((status(&ra), status(&rb)), (200, 200));
    stop(&p, j);
    let a = rec.hits_of("/a");
    let b = rec.hits_of("/b");
    assert_eq!((a.len(), b.len()), (2, 1));
    let second = a[1].arrived.saturating_duration_since(a[0].answered);
    assert!(second + SLACK >= Duration::from_secs(1), "repeated after {second:?}");
    let other = b[0].arrived.saturating_duration_since(a[0].answered);
    assert!(other + SLACK >= Duration::from_secs(1), "other job went after {other:?}");
    assert_eq!(p.stats().rate_limited.load(Ordering::Relaxed), 1);
    assert_eq!(p.stats().calls.load(Ordering::Relaxed), 3);
}

/// The wait after a rate limit belongs to the account: it also holds back
/// the next call of another job when the limited call itself gave up.
#[test]
fn rate_limit_wait_outlives_the_call_that_got_it() {
    let (server, rec) = serve(|path, _| if path == "/a" { too_many(Some("1")) } else { ok() });
    let (p, j, _) =
        spawn(AccountPolicy { max_rate_limited: 0, backoff_max: Duration::from_secs(5), ..policy() });
    let r = p.call(ApiRequest::get(format!("{}/a", server.base_url())), default_classify, &flags());
    assert_eq!(r, Err(ApiError::RateLimited { answers: 1 }));
    let (rb, _) = call_in_thread(&p, format!("{}/b", server.base_url()), &flags()).join().expect("job B");
    assert_eq!(status(&rb), 200);
    stop(&p, j);
    let a = rec.hits_of("/a");
    let b = rec.hits_of("/b");
    assert_eq!((a.len(), b.len()), (1, 1));
    let gap = b[0].arrived.saturating_duration_since(a[0].answered);
    assert!(gap + SLACK >= Duration::from_secs(1), "other job went after {gap:?}");
}

/// Pixiv-style: a 403 whose body says "Rate Limit" is a rate limit.
fn rate_limit_in_403(resp: &ApiResponse) -> Verdict {
    if resp.status == 403 && resp.text().contains("Rate Limit") {
        Verdict::RateLimited(None)
    } else {
        default_classify(resp)
    }
}

const LIMITED_403: &str = r#"{"error":{"message":"Rate Limit"}}"#;

#[test]
fn custom_classifier_turns_403_into_a_rate_limit() {
    let (server, rec) = serve(|_, n| if n < 3 { Response::json(403, LIMITED_403) } else { ok() });
    let base = Duration::from_millis(100);
    let (p, j, _) =
        spawn(AccountPolicy { rate_limit_base: base, backoff_max: Duration::from_secs(2), ..policy() });
    let start = Instant::now();
    let r = p.call(ApiRequest::get(format!("{}/x", server.base_url())), rate_limit_in_403, &flags());
    assert_eq!(status(&r), 200);
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    stop(&p, j);
    assert_eq!(p.stats().rate_limited.load(Ordering::Relaxed), 3);
    assert_eq!(p.stats().calls.load(Ordering::Relaxed), 4);
    let hits = rec.hits();
    assert_eq!(hits.len(), 4);
    // Exponential from the base, with at least half of each step kept.
    for (k, w) in hits.windows(2).enumerate() {
        let gap = w[1].arrived.saturating_duration_since(w[0].answered);
        let floor = base * (1u32 << k) / 2;
        assert!(gap + SLACK >= floor, "wait {k}: {gap:?} < {floor:?}");
    }
}

#[test]
fn default_classifier_hands_a_403_to_the_job() {
    let (server, rec) = serve(|_, _| Response::json(403, LIMITED_403));
    let (p, j, _) = spawn(policy());
    let r = p.call(ApiRequest::get(format!("{}/x", server.base_url())), default_classify, &flags());
    stop(&p, j);
    let resp = r.expect("a 403 is an answer");
    assert_eq!(resp.status, 403);
    assert_eq!(resp.text(), LIMITED_403);
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    assert_eq!(rec.hits().len(), 1);
    assert_eq!(p.stats().rate_limited.load(Ordering::Relaxed), 0);
}

#[test]
fn gives_up_after_max_rate_limited() {
    let (server, rec) = serve(|_, _| too_many(None));
    let (p, j, _) =
        spawn(AccountPolicy { max_rate_limited: 2, rate_limit_base: Duration::from_millis(20), ..policy() });
    let r = p.call(ApiRequest::get(format!("{}/x", server.base_url())), default_classify, &flags());
    stop(&p, j);
    let err = r.expect_err("still rate-limited");
    assert_eq!(err, ApiError::RateLimited { answers: 3 });
    assert!(err.is_transient());
    assert_eq!(rec.hits().len(), 3);
    assert_eq!(p.stats().rate_limited.load(Ordering::Relaxed), 3);
}

#[test]
fn server_errors_are_retried_until_success() {
    let (server, rec) = serve(|_, n| if n < 2 { Response::text(500, "oops\n") } else { ok() });
    let (p, j, _) = spawn(AccountPolicy { retries: 2, backoff_max: Duration::from_millis(150), ..policy() });
    let r = p.call(ApiRequest::get(format!("{}/x", server.base_url())), default_classify, &flags());
    stop(&p, j);
    assert_eq!(status(&r), 200);
    assert_eq!(rec.hits().len(), 3);
    assert_eq!(p.stats().calls.load(Ordering::Relaxed), 3);
    assert_eq!(p.stats().rate_limited.load(Ordering::Relaxed), 0);
}

#[test]
fn server_errors_exhaust_retries() {
    let (server, rec) = serve(|_, _| Response::text(502, "bad gateway\n"));
    let (p, j, _) = spawn(AccountPolicy { retries: 2, backoff_max: Duration::from_millis(100), ..policy() });
    let r = p.call(ApiRequest::get(format!("{}/x", server.base_url())), default_classify, &flags());
    stop(&p, j);
    assert!(
        matches!(&r, Err(ApiError::Transport { transient: true, reason }) if reason.contains("502")),
        "{r:?}"
    );
    assert_eq!(rec.hits().len(), 3, "one call and two retries");
}

#[test]
fn post_body_is_sent_on_every_attempt() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let b = Arc::clone(&bodies);
    let handler: Handler = Arc::new(move |req: &Request| {
        let mut seen = lock(&b);
        seen.push((req.method.clone(), req.header("content-type").map(str::to_string), req.body_text()));
        // 429: the server says it did not process the POST, so the pacer
        // may send it again (a 5xx would leave that open).
        if seen.len() == 1 { Response::text(429, "busy\n") } else { ok() }
    });
    let server = Server::start(handler);
    let (p, j, _) = spawn(policy());
    let req =
        ApiRequest::post_form(format!("{}/auth", server.base_url()), &[("a b", "c&d")]).header("X-Test", "1");
    let r = p.call(req, default_classify, &flags());
    stop(&p, j);
    assert_eq!(status(&r), 200);
    let seen = lock(&bodies).clone();
    let want =
        ("POST".to_string(), Some("application/x-www-form-urlencoded".to_string()), "a+b=c%26d".to_string());
    assert_eq!(seen, vec![want.clone(), want]);
    assert!(server.log().iter().all(|l| l.header("x-test") == Some("1")));
}

#[test]
fn connection_refused_is_transient_after_retries() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (p, j, _) = spawn(AccountPolicy { retries: 2, backoff_max: Duration::from_millis(100), ..policy() });
    let start = Instant::now();
    let r = p.call(ApiRequest::get(format!("http://127.0.0.1:{port}/x")), default_classify, &flags());
    stop(&p, j);
    assert!(
        matches!(&r, Err(ApiError::Transport { transient: true, reason }) if reason.contains("refused")),
        "{r:?}"
    );
    assert_eq!(p.stats().calls.load(Ordering::Relaxed), 3, "one call and two retries");
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
}

#[test]
fn halting_a_job_ends_its_wait_behind_a_backoff() {
    let (server, rec) = serve(|_, _| too_many(Some("5")));
    let (p, j, _) = spawn(AccountPolicy { backoff_max: Duration::from_secs(10), ..policy() });
    let f = flags();
    let call = call_in_thread(&p, format!("{}/x", server.base_url()), &f);
    wait_for_hits(&rec, 1);
    thread::sleep(Duration::from_millis(100));
    let halted = Instant::now();
    f.set_halted(true);
    let (r, returned) = call.join().expect("job thread");
    assert_eq!(r, Err(ApiError::Interrupted));
    let lag = returned.saturating_duration_since(halted);
    assert!(lag < Duration::from_secs(1), "halt took {lag:?}");
    assert_eq!(rec.hits().len(), 1, "no second request");

    // A halted job makes no request at all, even when the account is free.
    let r = p.call(ApiRequest::get(format!("{}/y", server.base_url())), default_classify, &f);
    assert_eq!(r, Err(ApiError::Interrupted));
    assert_eq!(rec.hits().len(), 1);
    stop(&p, j);
}

#[test]
fn shutdown_ends_waiting_calls() {
    let (server, rec) = serve(|_, _| too_many(Some("5")));
    let (p, j, shutdown) = spawn(AccountPolicy { backoff_max: Duration::from_secs(10), ..policy() });
    let call = call_in_thread(&p, format!("{}/x", server.base_url()), &flags());
    wait_for_hits(&rec, 1);
    thread::sleep(Duration::from_millis(100));
    let raised = Instant::now();
    shutdown.store(true, Ordering::Release);
    let (r, returned) = call.join().expect("job thread");
    assert_eq!(r, Err(ApiError::ShuttingDown));
    assert!(returned.saturating_duration_since(raised) < Duration::from_secs(1));
    let r = p.call(ApiRequest::get(format!("{}/y", server.base_url())), default_classify, &flags());
    assert_eq!(r, Err(ApiError::ShuttingDown), "no new call during shutdown");
    stop(&p, j);
    // Once the thread is gone, calls fail at once instead of hanging.
    let r = p.call(ApiRequest::get(format!("{}/z", server.base_url())), default_classify, &flags());
    assert_eq!(r, Err(ApiError::ShuttingDown));
    assert_eq!(rec.hits().len(), 1);
}

/// A job paused while its call is queued behind another job's rate-limit
/// backoff should get its answer promptly (`JobFlags`: "a pause takes
/// effect within one read timeout at worst").
#[test]
fn halting_a_queued_job_does_not_wait_for_another_jobs_backoff() {
    let (server, rec) = serve(|path, n| if path == "/a" && n == 0 { too_many(Some("3")) } else { ok() });
    let (p, j, _) = spawn(AccountPolicy { backoff_max: Duration::from_secs(10), ..policy() });
    let a = call_in_thread(&p, format!("{}/a", server.base_url()), &flags());
    wait_for_hits(&rec, 1);
    let fb = flags();
    let b = call_in_thread(&p, format!("{}/b", server.base_url()), &fb);
    thread::sleep(Duration::from_millis(200));
    let halted = Instant::now();
    fb.set_halted(true);
    let (rb, returned) = b.join().expect("job B");
    let lag = returned.saturating_duration_since(halted);
    let (ra, _) = a.join().expect("job A");
    stop(&p, j);
    assert_eq!(rb, Err(ApiError::Interrupted));
    assert_eq!(status(&ra), 200);
    assert!(lag < Duration::from_secs(1), "halted job answered after {lag:?}");
}

#[test]
fn a_pause_falls_after_every_nth_call_of_the_account() {
    let (server, rec) = serve(|_, _| ok());
    let pause = Duration::from_millis(400);
    let (p, j, _) = spawn(AccountPolicy { pause: Some((2, pause)), ..policy() });
    let f = flags();
    for i in 0..5 {
        let url = format!("{}/c{i}", server.base_url());
        assert_eq!(status(&p.call(ApiRequest::get(url), default_classify, &f)), 200);
    }
    stop(&p, j);
    let hits = rec.hits();
    assert_eq!(hits.len(), 5);
    let gaps: Vec<Duration> =
        hits.windows(2).map(|w| w[1].arrived.saturating_duration_since(w[0].answered)).collect();
    // After calls 2 and 4 the pause; between the others the interval only.
    for (i, gap) in gaps.iter().enumerate() {
        if i % 2 == 1 {
            assert!(*gap + SLACK >= pause, "gap {i}: {gap:?}");
        } else {
            assert!(*gap < pause / 2, "gap {i}: {gap:?} (no pause due)");
        }
    }
}
