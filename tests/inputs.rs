//! URL inputs staged into a job's scratch folder before an upload.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use spoolfetch::inputs::stage_url;

use crate::support::http::{Body, Handler, Request, Response, Server};
use crate::util::test_agent;

#[test]
fn a_url_input_is_fetched_once_complete_and_read_like_a_local_file() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    let handler: Handler = Arc::new(move |req: &Request| {
        h.fetch_add(1, Ordering::SeqCst);
        match req.path_only() {
            "/photo.jpg" => Response::new(200).with_body(Body::Bytes(b"\xff\xd8jpeg".to_vec())),
            "/big.jpg" => Response::new(200).with_body(Body::Bytes(vec![7; 5000])),
            "/cut.jpg" => Response::new(200).with_body(Body::Bytes(vec![1; 4000])).truncate_after(100),
            _ => Response::new(404),
        }
    });
    let server = Server::start(handler);
    let dir = tempfile::tempdir().expect("tempdir");
    let scratch = dir.path().join("scratch");
    let agent = test_agent();
    let t = Duration::from_secs(5);
    let url = format!("{}/photo.jpg?token=secret", server.base_url());
    let first = stage_url(&agent, &url, &scratch, 1000, t).expect("staged");
    assert_eq!(first.len, 6);
    assert!(first.path.starts_with(&scratch) && first.path.extension().is_some_and(|e| e == "jpg"));
    let again = stage_url(&agent, &url, &scratch, 1000, t).expect("staged again");
    assert_eq!((again.path.clone(), hits.load(Ordering::SeqCst)), (first.path.clone(), 1), "fetched once");
    assert!(!first.given.to_string_lossy().contains("secret"), "the URL is shown redacted");
    let mut s = Vec::new();
    std::io::Read::read_to_end(&mut again.open().expect("open"), &mut s).expect("read");
    assert_eq!(s, b"\xff\xd8jpeg");
    let e =
        stage_url(&agent, &format!("{}/big.jpg", server.base_url()), &scratch, 1000, t).expect_err("large");
    assert!(e.to_string().contains("more than the 1000-byte limit"), "{e}");
    let e =
        stage_url(&agent, &format!("{}/gone.jpg", server.base_url()), &scratch, 1000, t).expect_err("404");
    assert!(e.to_string().ends_with("HTTP 404"), "{e}");
    let e =
        stage_url(&agent, &format!("{}/cut.jpg", server.base_url()), &scratch, 10_000, t).expect_err("cut");
    assert!(e.to_string().contains("reading it"), "{e}");
    let left: Vec<_> =
        std::fs::read_dir(&scratch).expect("scratch").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(left.len(), 1, "only the complete input is there: {left:?}");
}
