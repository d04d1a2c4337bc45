//! Candidate URLs and fresh URLs through the real binary: a `demo.gallery`
//! job whose files list several URLs on a fake CDN, some of them expired,
//! and whose gallery gives fresh URLs (`refresh = true`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::support::http::{Body, Handler, Request, Response, Server, lock};
use crate::util::{Env, assert_file};

fn ok(bytes: &[u8]) -> Response {
    Response::new(200).with_body(Body::Bytes(bytes.to_vec()))
}

#[test]
fn expired_urls_are_passed_over_then_refreshed_once_and_journaled() {
    let refreshed = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&refreshed);
    let handler: Handler = Arc::new(move |req: &Request| {
        let host = format!("http://{}", req.header("host").unwrap_or_default());
        match req.path_only() {
            "/api/gallery" => Response::json(
                200,
                &json!({"files": [
                    // Second candidate works: no refresh.
                    {"name": "c.bin", "url": format!("{host}/cdn/c.bin?sig=old"),
                     "urls": [format!("{host}/mirror/c.bin")], "size": 3},
                    // An empty answer, then the file.
                    {"name": "d.bin", "url": format!("{host}/empty/d.bin"),
                     "urls": [format!("{host}/mirror/d.bin")]},
                    // Every URL expired; the fresh one works.
                    {"name": "a.bin", "url": format!("{host}/cdn/a.bin?sig=old"),
                     "urls": [format!("{host}/gone/a.bin")], "size": 5},
                    // Expired, and the fresh URL expired too.
                    {"name": "b.bin", "url": format!("{host}/cdn/b.bin?sig=old")},
                ], "total": 4})
                .to_string(),
            ),
            "/api/refresh" => {
                let name = req.query("name").unwrap_or_default();
                lock(&seen).push(name.clone());
                Response::json(200, &json!({"urls": [format!("{host}/cdn/{name}?sig=new")]}).to_string())
            }
            "/cdn/a.bin" if req.query("sig").as_deref() == Some("new") => ok(b"hello"),
            "/mirror/c.bin" => ok(b"abc"),
            "/mirror/d.bin" => ok(b"dddd"),
            "/empty/d.bin" => ok(b""),
            "/gone/a.bin" => Response::new(410),
            _ => Response::new(403),
        }
    });
    let server = Server::start(handler);
    let env = Env::new();
    env.drop_job("gallery", &json!({"type": "demo.gallery", "api": server.base_url(), "refresh": true}));
    let mut d = env.daemon(&["--once"]);
    let status = d.wait(Duration::from_secs(30));
    let Some(status) = status else { panic!("run --once ends\n{}", d.log()) };
    let log = d.log();
    assert!(!status.success(), "a job with a failed file fails the run: {log}");
    let dir = env.job_dir("gallery");
    assert_file(&dir.join("a.bin"), b"hello");
    assert_file(&dir.join("c.bin"), b"abc");
    assert_file(&dir.join("d.bin"), b"dddd");
    assert!(!dir.join("b.bin").exists());
    let mut asked = lock(&refreshed).clone();
    asked.sort();
    assert_eq!(asked, ["a.bin", "b.bin"], "asked once per expired file, never for the others\n{log}");
    let s = env.status(1).expect("status");
    let error = s.error.unwrap_or_default();
    assert_eq!(s.state.as_str(), "failed", "{log}");
    assert!(error.contains("1 of 4 files failed"), "{error}");
    assert!(error.contains("HTTP 403 Forbidden (with fresh URLs too)"), "{error}");
    assert!(log.contains("asking the provider for fresh URLs"), "{log}");
    // The fresh URLs are in the journal, so a replay downloads from them.
    let journal = read_all(&env.spool.join("state"));
    assert!(journal.contains(r#""t":"u""#) && journal.contains("sig=new"), "{journal}");
}

/// Every file below `dir`, concatenated as text.
fn read_all(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.push_str(&read_all(&path));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            out.push_str(&text);
        }
    }
    out
}
