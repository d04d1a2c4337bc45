//! Redirects through the real binary: which headers go where, refused
//! schemes, loops, and relative locations, with two loopback servers
//! (two origins) that record every header they get.

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::support::http::{Body, Response, Server};
use crate::util::{Env, assert_file, bytes};

/// The job's credential headers, one of each kind a user may send.
fn secret_headers() -> serde_json::Value {
    json!({
        "Authorization": "Bearer SECRET-AUTH",
        "X-Api-Key": "SECRET-KEY",
        "Cookie": "sid=SECRET-COOKIE",
        "Referer": "https://example.org/SECRET-REF",
    })
}

/// Whether a logged request carried any of the job's headers.
fn carried(r: &crate::support::http::LoggedRequest) -> Vec<&'static str> {
    ["authorization", "x-api-key", "cookie", "referer"]
        .into_iter()
        .filter(|h| r.header(h).is_some())
        .collect()
}

/// The origin server: `/cross` sends to the other server, `/same` to a
/// relative path on itself, `/file` to a `file:` URL, `/loop` to itself.
fn origin(cdn: &Server) -> Server {
    let cdn_base = cdn.base_url();
    Server::start(Arc::new(move |req| match req.path_only() {
        "/cross/a.bin" => Response::new(302).header("Location", &format!("{cdn_base}/store/a.bin?sig=x")),
        "/same/s.bin" => Response::new(301).header("Location", "../real/./s.bin"),
        "/real/s.bin" => Response::new(200).with_body(Body::Bytes(bytes(2, 3000))),
        "/file/f.bin" => Response::new(302).header("Location", "file:///etc/passwd"),
        "/loop/l.bin" => Response::new(307).header("Location", "/loop/l.bin"),
        _ => Response::text(404, "no\n"),
    }))
}

fn cdn() -> Server {
    Server::start(Arc::new(|req| match req.path_only() {
        "/store/a.bin" => Response::new(200).with_body(Body::Bytes(bytes(1, 5000))),
        _ => Response::text(404, "no\n"),
    }))
}

#[test]
fn job_headers_stay_with_their_origin_and_bad_redirects_fail_with_a_reason() {
    let cdn = cdn();
    let origin = origin(&cdn);
    let base = origin.base_url();
    let env = Env::new();
    let urls: Vec<String> = ["/cross/a.bin", "/same/s.bin", "/file/f.bin", "/loop/l.bin"]
        .iter()
        .map(|p| format!("{base}{p}"))
        .collect();
    env.drop_job("r", &json!({"type": "http.files", "urls": urls, "headers": secret_headers()}));
    let (_, log) = env.run_once(Duration::from_secs(60));
    let dir = env.job_dir("r");
    assert_file(&dir.join("a.bin"), &bytes(1, 5000));
    assert_file(&dir.join("s.bin"), &bytes(2, 3000));
    assert!(!dir.join("f.bin").exists() && !dir.join("l.bin").exists());
    // The other origin got none of the job's headers.
    let at_cdn = cdn.log();
    assert!(!at_cdn.is_empty(), "{log}");
    for r in &at_cdn {
        assert!(carried(r).is_empty(), "{} got {:?}", r.path, carried(r));
    }
    // The same origin got all of them, Authorization included, on the
    // relative hop.
    let real: Vec<_> = origin.log().into_iter().filter(|r| r.path_only() == "/real/s.bin").collect();
    assert_eq!(real.len(), 1);
    assert_eq!(carried(&real[0]), vec!["authorization", "x-api-key", "cookie", "referer"]);
    // A loop is cut after ten hops; the file: URL is never followed.
    let hops = origin.log().iter().filter(|r| r.path_only() == "/loop/l.bin").count();
    assert!((11..=33).contains(&hops), "{hops} requests for the loop");
    let reasons: String = env
        .files_in("failed")
        .iter()
        .filter(|n| n.ends_with(".reason"))
        .map(|n| fs::read_to_string(env.spool.join("failed").join(n)).expect("reason"))
        .collect();
    assert!(reasons.contains("redirect to a file: URL refused"), "{reasons}\n{log}");
    assert!(log.contains("too many redirects (more than 10)"), "{log}");
    assert!(!reasons.contains("SECRET") && !log.contains("SECRET"), "{reasons}\n{log}");
    assert_eq!(env.status(1).expect("status").state.as_str(), "failed");
}

#[test]
fn a_job_may_let_its_headers_follow_redirects_to_another_origin() {
    let cdn = cdn();
    let origin = origin(&cdn);
    let env = Env::new();
    let job = json!({
        "type": "http.files",
        "urls": [format!("{}/cross/a.bin", origin.base_url())],
        "headers": secret_headers(),
        "forward_headers": true,
    });
    env.drop_job("fwd", &job);
    let (status, log) = env.run_once(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert_file(&env.job_dir("fwd").join("a.bin"), &bytes(1, 5000));
    let at_cdn = cdn.log();
    assert_eq!(at_cdn.len(), 1);
    assert_eq!(carried(&at_cdn[0]), vec!["authorization", "x-api-key", "cookie", "referer"]);
    assert_eq!(at_cdn[0].header("x-api-key"), Some("SECRET-KEY"));
}

#[test]
fn forward_headers_must_be_a_boolean() {
    let env = Env::new();
    let out = env.cli(&["submit", "http.files", "urls=https://example.org/a.jpg", "forward_headers=yes"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`forward_headers` must be true or false"), "{err}");
    let out = env.cli(&["submit", "http.files", "urls=https://example.org/a.jpg", "forward_headers=true"]);
    assert!(out.status.success(), "{out:?}");
}
