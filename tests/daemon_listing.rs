//! A listing through trouble, with the configuration a user gets: a
//! transient API failure that outlasts the pacer's retries backs the
//! listing off (status `retrying: …`) instead of failing the job.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::support::http::{Handler, Request, Response, Server};
use crate::util::{Env, assert_file, wait_until};

#[test]
fn a_listing_outlasting_the_pacers_retries_backs_off_and_the_job_completes() {
    // The gallery API answers 503 to the first five calls: the pacer's
    // first call and its three retries, then the lister's first retry of
    // the page; the sixth call succeeds.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let handler: Handler = Arc::new(move |req: &Request| match req.path_only() {
        "/api/gallery" => {
            if c.fetch_add(1, Ordering::SeqCst) < 5 {
                Response::text(503, "maintenance\n")
            } else {
                let port = req.header("host").unwrap_or_default().to_string();
                Response::json(
                    200,
                    &json!({"files": [{"name": "a.bin", "url": format!("http://{port}/f/a.bin"), "size": 5}], "total": 1})
                        .to_string(),
                )
            }
        }
        "/f/a.bin" => Response::new(200).with_body(crate::support::http::Body::Bytes(b"hello".to_vec())),
        _ => Response::new(404),
    });
    let server = Server::start(handler);
    let env = Env::new();
    env.config_defaults(json!({}));
    env.drop_job("gallery", &json!({"type": "demo.gallery", "api": server.base_url()}));
    let mut d = env.daemon(&["--once"]);
    let retrying = wait_until(Duration::from_secs(30), || {
        env.status(1).and_then(|s| s.error).is_some_and(|e| e.starts_with("retrying: HTTP 503"))
    });
    assert!(retrying, "{:?}\n{}", env.status(1), d.log());
    let status = d.wait(Duration::from_secs(90)).expect("run --once ends");
    let log = d.log();
    assert!(status.success(), "{log}");
    let s = env.status(1).expect("status");
    assert_eq!((s.state.as_str(), s.error.as_deref()), ("done", None), "{log}");
    assert_file(&env.job_dir("gallery").join("a.bin"), b"hello");
    assert!(log.contains("trying the page again in"), "{log}");
    assert!(log.contains("the listing continues"), "{log}");
    assert_eq!(calls.load(Ordering::SeqCst), 6);
}
