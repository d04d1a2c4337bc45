//! What the pacer does with a request beyond pacing it: when it may send a
//! request again, signing before every attempt, per-request timeouts,
//! streamed and multipart bodies, the final URL and repeated headers.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use spoolfetch::job::JobFlags;
use spoolfetch::pacing::{
    AccountPolicy, ApiError, ApiRequest, ApiResponse, Body, Multipart, Pacer, Signer, default_classify,
};

use crate::support::http::{Handler, Request, Response, Server, lock};
use crate::util::test_agent as agent;

fn policy() -> AccountPolicy {
    AccountPolicy {
        interval: Duration::from_millis(10),
        retries: 3,
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

fn spawn() -> (Pacer, JoinHandle<()>) {
    Pacer::spawn("acct", agent(), policy(), Arc::new(AtomicBool::new(false))).expect("spawn pacer")
}

fn call(p: &Pacer, req: ApiRequest) -> Result<ApiResponse, ApiError> {
    p.call(req, default_classify, &Arc::new(JobFlags::default()))
}

fn stop(p: &Pacer, j: JoinHandle<()>) {
    p.quit();
    j.join().expect("pacer thread ends cleanly");
}

/// A server that answers the `n`-th request (from 0) with `respond(n)` and
/// keeps every request.
fn serve(
    respond: impl Fn(usize, &Request) -> Response + Send + Sync + 'static,
) -> (Server, Arc<Mutex<Vec<Request>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let handler: Handler = Arc::new(move |req: &Request| {
        let n = {
            let mut v = lock(&s);
            v.push(req.clone());
            v.len() - 1
        };
        respond(n, req)
    });
    (Server::start(handler), seen)
}

#[test]
fn a_post_answered_with_a_5xx_is_not_sent_again() {
    let (server, seen) =
        serve(|n, _| if n == 0 { Response::text(500, "oops\n") } else { Response::json(200, "{}") });
    let (p, j) = spawn();
    let r = call(&p, ApiRequest::post_form(format!("{}/create", server.base_url()), &[("a", "1")]));
    stop(&p, j);
    match &r {
        Err(e @ ApiError::OutcomeUnknown { .. }) => {
            assert!(!e.is_transient());
            assert!(e.to_string().contains("not sent again"), "{e}");
        }
        other => panic!("expected an unknown outcome, got {other:?}"),
    }
    assert_eq!(lock(&seen).len(), 1, "the create was sent once");
}

#[test]
fn a_post_whose_answer_is_lost_is_not_sent_again() {
    // The server carries the request out, then the connection drops
    // halfway through the answer.
    let (server, seen) = serve(|_, _| Response::json(200, r#"{"task_id":"t-1"}"#).truncate_after(3));
    let (p, j) = spawn();
    let r = call(&p, ApiRequest::post_form(format!("{}/create", server.base_url()), &[("a", "1")]));
    stop(&p, j);
    assert!(matches!(r, Err(ApiError::OutcomeUnknown { .. })), "{r:?}");
    assert_eq!(lock(&seen).len(), 1);
}

#[test]
fn a_post_that_timed_out_is_not_sent_again() {
    let (server, seen) = serve(|_, _| Response::json(200, r#"{"ok":1}"#).stall(0, Duration::from_secs(3)));
    let (p, j) = spawn();
    let req = ApiRequest::post_form(format!("{}/create", server.base_url()), &[])
        .timeout(Duration::from_millis(300));
    let started = Instant::now();
    let r = call(&p, req);
    stop(&p, j);
    assert!(matches!(r, Err(ApiError::OutcomeUnknown { .. })), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the request's own timeout holds: {:?}",
        started.elapsed()
    );
    assert_eq!(lock(&seen).len(), 1);
}

#[test]
fn a_post_the_server_refused_to_process_is_sent_again() {
    // 429 and 503 with Retry-After say the request was not carried out.
    let (server, seen) = serve(|n, _| match n {
        0 => Response::text(429, "slow down\n"),
        1 => Response::text(503, "busy\n").header("Retry-After", "0"),
        _ => Response::json(200, "{}"),
    });
    let (p, j) = spawn();
    let r = call(&p, ApiRequest::post_form(format!("{}/create", server.base_url()), &[("a", "1")]));
    stop(&p, j);
    assert_eq!(r.map(|r| r.status), Ok(200));
    assert_eq!(lock(&seen).len(), 3);
}

#[test]
fn a_post_that_never_reached_the_server_is_sent_again() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (p, j) = spawn();
    let r = call(&p, ApiRequest::post_form(format!("http://127.0.0.1:{port}/create"), &[]));
    stop(&p, j);
    assert!(matches!(&r, Err(ApiError::Transport { transient: true, .. })), "{r:?}");
    assert_eq!(p.stats().calls.load(Ordering::Relaxed), 4, "one call and three retries");
}

#[test]
fn a_post_marked_idempotent_is_retried_like_a_get() {
    let (server, seen) =
        serve(|n, _| if n < 2 { Response::text(502, "bad gateway\n") } else { Response::json(200, "{}") });
    let (p, j) = spawn();
    let r = call(&p, ApiRequest::post_form(format!("{}/mark", server.base_url()), &[]).idempotent(true));
    stop(&p, j);
    assert_eq!(r.map(|r| r.status), Ok(200));
    assert_eq!(lock(&seen).len(), 3);
}

#[test]
fn the_signing_hook_runs_before_every_attempt() {
    let (server, seen) =
        serve(|n, _| if n < 2 { Response::text(503, "busy\n") } else { Response::json(200, "{}") });
    let (p, j) = spawn();
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&attempts);
    let sign = Signer::new(move |req: &mut ApiRequest| {
        let n = a.fetch_add(1, Ordering::SeqCst);
        req.headers.retain(|(k, _)| k != "X-Sig");
        req.headers.push(("X-Sig".into(), format!("sig-{n}")));
        req.url.push_str(&format!("&ts={n}"));
        Ok(())
    });
    let r = call(&p, ApiRequest::get(format!("{}/list?a=1", server.base_url())).signed(sign));
    stop(&p, j);
    assert_eq!(r.map(|r| r.status), Ok(200));
    let seen = lock(&seen).clone();
    let sigs: Vec<(Option<String>, Option<String>)> =
        seen.iter().map(|r| (r.header("x-sig").map(str::to_string), r.query("ts"))).collect();
    let want: Vec<(Option<String>, Option<String>)> =
        (0..3).map(|n| (Some(format!("sig-{n}")), Some(n.to_string()))).collect();
    assert_eq!(sigs, want, "each attempt signed afresh, never twice on one request");
}

#[test]
fn a_hook_that_refuses_fails_the_call_without_sending() {
    let (server, seen) = serve(|_, _| Response::json(200, "{}"));
    let (p, j) = spawn();
    let sign = Signer::new(|_: &mut ApiRequest| Err("no key".into()));
    let r = call(&p, ApiRequest::get(format!("{}/x", server.base_url())).signed(sign));
    stop(&p, j);
    assert!(
        matches!(&r, Err(ApiError::Transport { transient: false, reason }) if reason.contains("no key")),
        "{r:?}"
    );
    assert!(lock(&seen).is_empty());
}

#[test]
fn the_final_url_and_every_repeated_header_reach_the_caller() {
    let (server, _) = serve(|_, req| {
        if req.path_only() == "/start" {
            Response::new(302).header("Location", "/end?x=1")
        } else {
            Response::json(200, "{}").header("Set-Cookie", "a=1; Path=/").header("Set-Cookie", "b=2; Path=/")
        }
    });
    let (p, j) = spawn();
    let r = call(&p, ApiRequest::get(format!("{}/start", server.base_url()))).expect("answer");
    stop(&p, j);
    assert_eq!(r.url, format!("{}/end?x=1", server.base_url()));
    assert_eq!(r.header_all("set-cookie").collect::<Vec<_>>(), vec!["a=1; Path=/", "b=2; Path=/"]);
}

#[test]
fn a_file_and_a_multipart_form_are_streamed_with_their_length_on_every_attempt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("photo.jpg");
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &content).expect("write");
    let (server, seen) =
        serve(|n, _| if n == 0 { Response::text(429, "wait\n") } else { Response::json(200, "{}") });
    let (p, j) = spawn();
    let form = Multipart::new().text("sync", "0").file(
        "image_file",
        &file,
        content.len() as u64,
        "photo.jpg",
        "image/jpeg",
    );
    let r = call(&p, ApiRequest::post_multipart(format!("{}/upload", server.base_url()), form));
    assert_eq!(r.map(|r| r.status), Ok(200));
    let put = ApiRequest::new("PUT", format!("{}/object", server.base_url()))
        .with_body(Body::File { path: file.clone(), len: content.len() as u64 });
    assert_eq!(call(&p, put).map(|r| r.status), Ok(200));
    stop(&p, j);
    let seen = lock(&seen).clone();
    assert_eq!(seen.len(), 3, "the 429 made the upload go again");
    for up in &seen[..2] {
        let ct = up.header("content-type").expect("content type").to_string();
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").expect("multipart").to_string();
        assert_eq!(up.header("content-length"), Some(up.body.len().to_string().as_str()));
        let mut want = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"sync\"\r\n\r\n0\r\n--{boundary}\r\n\
             Content-Disposition: form-data; name=\"image_file\"; filename=\"photo.jpg\"\r\n\
             Content-Type: image/jpeg\r\n\r\n"
        )
        .into_bytes();
        want.extend_from_slice(&content);
        want.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        assert!(up.body == want, "the multipart body as RFC 7578 frames it");
    }
    assert_eq!(seen[2].method, "PUT");
    assert!(seen[2].body == content, "the file as it is");
}

#[test]
fn an_upload_whose_file_changed_is_not_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a.bin");
    std::fs::write(&file, b"12345").expect("write");
    let (server, seen) = serve(|_, _| Response::json(200, "{}"));
    let (p, j) = spawn();
    let put = ApiRequest::new("PUT", format!("{}/o", server.base_url()))
        .with_body(Body::File { path: file, len: 9 });
    let r = call(&p, put);
    stop(&p, j);
    assert!(
        matches!(&r, Err(ApiError::Transport { transient: false, reason }) if reason.contains("changed size")),
        "{r:?}"
    );
    assert!(lock(&seen).is_empty());
}

/// A 403 that carries a rate limit, as some APIs send it.
fn api_classifier(resp: &ApiResponse) -> spoolfetch::pacing::Verdict {
    if resp.status == 403 {
        spoolfetch::pacing::Verdict::RateLimited(Some(Duration::from_secs(5)))
    } else {
        spoolfetch::pacing::Verdict::Accept
    }
}

#[test]
fn a_lane_has_its_own_pacer_and_classifier() {
    // The API lane is busy with a slow call; an upload on the storage lane
    // goes at once, and its 403 is the storage server's answer, not the
    // API's rate limit.
    let (server, seen) = serve(|_, req| match req.path_only() {
        "/api/slow" => Response::json(200, "{}").stall(0, Duration::from_millis(1500)),
        "/bucket/object" => Response::text(403, "signature mismatch\n"),
        _ => Response::new(404),
    });
    let shutdown = Arc::new(AtomicBool::new(false));
    let (api_pacer, j1) = Pacer::spawn("acct", agent(), policy(), Arc::clone(&shutdown)).expect("api lane");
    let (store_pacer, j2) =
        Pacer::spawn("acct#storage", agent(), policy(), Arc::clone(&shutdown)).expect("lane");
    let lanes = spoolfetch::providers::Lanes::api(api_pacer.clone(), api_classifier).with(
        "storage",
        store_pacer.clone(),
        default_classify,
    );
    let api = spoolfetch::providers::Api::new(lanes, Arc::new(JobFlags::default()), None, Arc::default());
    let slow = {
        let api = api.clone();
        let url = format!("{}/api/slow", server.base_url());
        std::thread::spawn(move || api.call(ApiRequest::get(url)))
    };
    while lock(&seen).is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    let put = ApiRequest::new("PUT", format!("{}/bucket/object", server.base_url()))
        .with_body(Body::Bytes(b"x".to_vec()))
        .on_lane("storage");
    let r = api.call(put).expect("the storage server's answer");
    assert_eq!(r.status, 403, "the API's classifier did not read it");
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "it did not wait for the API lane: {:?}",
        started.elapsed()
    );
    assert_eq!(slow.join().expect("slow call").map(|r| r.status), Ok(200));
    let none = api.call(ApiRequest::get(format!("{}/x", server.base_url())).on_lane("nope"));
    assert!(
        matches!(&none, Err(ApiError::Transport { transient: false, reason }) if reason.contains("no lane")),
        "{none:?}"
    );
    stop(&api_pacer, j1);
    stop(&store_pacer, j2);
}
