//! One download attempt over several candidate URLs (`DownloadTask::also`)
//! against loopback file servers: which answers move on to the next URL,
//! which end the attempt, the zero-byte rule, resume of a partial written
//! from another URL, and redirects on a candidate.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use spoolfetch::download::{DownloadTask, Outcome, PartMeta, fetch, part_paths};
use tempfile::TempDir;

use crate::support::fileserver::{Fault, FileServer};
use crate::support::http::{Response, Server};
use crate::util::test_agent as agent;

/// Large enough to be resumed with Range (≥ 1 MiB).
const BIG: usize = 2 * 1024 * 1024 + 777;
/// Bytes of the partial left by an earlier attempt.
const CUT: usize = 900_000;

fn data(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

fn task(urls: &[String], dest: &Path) -> DownloadTask {
    DownloadTask {
        also: urls[1..].to_vec(),
        ..crate::util::download_task(&urls[0], dest, Duration::from_secs(2))
    }
}

fn setup() -> (FileServer, TempDir, PathBuf) {
    let fs = FileServer::start();
    let dir = tempfile::tempdir().expect("temporary folder");
    let dest = dir.path().join("out.bin");
    (fs, dir, dest)
}

fn expire(fs: &FileServer, path: &str, code: u16) {
    fs.add_fault(path, Fault::Status { code, retry_after: None }, 100);
}

fn assert_file(path: &Path, want: &[u8]) {
    let got = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(got == want, "{}: {} bytes, expected {}", path.display(), got.len(), want.len());
}

#[test]
fn a_refused_first_url_moves_on_to_the_second() {
    let (fs, _dir, dest) = setup();
    let body = data(5000, 1);
    fs.add("/b", body.clone());
    for code in [403, 404, 410] {
        let _ = fs::remove_file(&dest);
        expire(&fs, "/a", code);
        let o = fetch(&agent(), &task(&[fs.url("/a"), fs.url("/b")], &dest));
        assert_eq!(
            o,
            Outcome::Done { bytes: 5000, already: false, saved_as: None },
            "first URL answered {code}"
        );
        assert_file(&dest, &body);
    }
}

#[test]
fn a_passing_failure_of_the_first_url_ends_the_attempt() {
    let (fs, _dir, dest) = setup();
    fs.add("/b", data(100, 2));
    fs.add_fault("/a", Fault::Status { code: 503, retry_after: None }, 1);
    let o = fetch(&agent(), &task(&[fs.url("/a"), fs.url("/b")], &dest));
    assert!(matches!(&o, Outcome::Retry { reason, .. } if reason.contains("503")), "{o:?}");
    assert_eq!(fs.hits("/b"), 0, "a 503 is retried later, not passed over");
}

#[test]
fn every_url_expired_fails_naming_each_answer() {
    let (fs, _dir, dest) = setup();
    expire(&fs, "/a", 403);
    expire(&fs, "/b", 410);
    let urls = [fs.url("/a?sig=SECRET"), fs.url("/b")];
    let o = fetch(&agent(), &task(&urls, &dest));
    let Outcome::Failed { reason } = &o else { panic!("a lasting failure: {o:?}") };
    assert!(reason.contains("/a") && reason.contains("HTTP 403 Forbidden"), "{reason}");
    assert!(reason.contains("/b: HTTP 410 Gone"), "{reason}");
    assert!(!reason.contains("SECRET"), "URLs are redacted: {reason}");
    let (part, _) = part_paths(&dest);
    assert!(!part.exists() && !dest.exists());
    // A task whose runner can ask for fresh URLs learns they expired.
    let mut t = task(&urls, &dest);
    t.refreshable = true;
    assert!(matches!(fetch(&agent(), &t), Outcome::Expired { reason } if reason.contains("410")));
    // So does a single URL, which keeps its plain reason.
    let mut t = task(&urls[1..], &dest);
    t.refreshable = true;
    assert_eq!(fetch(&agent(), &t), Outcome::Expired { reason: "HTTP 410 Gone".into() });
}

#[test]
fn an_empty_200_on_a_candidate_moves_on() {
    let (fs, _dir, dest) = setup();
    let body = data(3000, 3);
    fs.add("/empty", Vec::new());
    fs.add("/b", body.clone());
    let o = fetch(&agent(), &task(&[fs.url("/empty"), fs.url("/b")], &dest));
    assert_eq!(o, Outcome::Done { bytes: 3000, already: false, saved_as: None });
    assert_file(&dest, &body);
    // Empty everywhere: a passing failure, never an empty final file.
    let _ = fs::remove_file(&dest);
    fs.add_fault("/empty", Fault::NoLength, 1);
    let o = fetch(&agent(), &task(&[fs.url("/empty"), fs.url("/empty")], &dest));
    assert!(matches!(&o, Outcome::Retry { reason, .. } if reason.contains("empty answer")), "{o:?}");
    assert!(!dest.exists());
}

#[test]
fn zero_bytes_are_a_file_only_where_zero_is_expected() {
    let (fs, _dir, dest) = setup();
    fs.add("/empty", Vec::new());
    // A single URL that says Content-Length: 0 gives an empty file.
    let o = fetch(&agent(), &task(&[fs.url("/empty")], &dest));
    assert_eq!(o, Outcome::Done { bytes: 0, already: false, saved_as: None });
    assert_eq!(fs::metadata(&dest).expect("file").len(), 0);
    fs::remove_file(&dest).expect("remove");
    // No length and no byte, size unknown: not done.
    fs.add_fault("/empty", Fault::NoLength, 1);
    let o = fetch(&agent(), &task(&[fs.url("/empty")], &dest));
    assert_eq!(o, Outcome::Retry { reason: "empty answer".into(), after: None });
    assert!(!dest.exists());
    // The same answer where the API announced zero bytes is the file.
    fs.add_fault("/empty", Fault::NoLength, 1);
    let mut t = task(&[fs.url("/empty"), fs.url("/other")], &dest);
    t.expected_size = Some(0);
    assert_eq!(fetch(&agent(), &t), Outcome::Done { bytes: 0, already: false, saved_as: None });
    assert_eq!(fs.hits("/other"), 0);
}

/// The first URL expired; the partial on disk came from a third URL (an
/// older signature). The second continues it with Range + If-Range.
#[test]
fn a_partial_from_an_expired_url_resumes_from_the_next() {
    let (fs, _dir, dest) = setup();
    let body = data(BIG, 4);
    fs.add("/old", body.clone());
    fs.add("/new", body.clone());
    let (part, meta) = part_paths(&dest);
    fs::write(&part, &body[..CUT]).expect("part");
    let mut m =
        PartMeta::new(&fs.url("/old?sig=1"), fs.etag("/old"), fs.last_modified("/old"), Some(BIG as u64));
    m.durable = CUT as u64;
    fs::write(&meta, serde_json::to_vec(&m).expect("json")).expect("meta");
    expire(&fs, "/expired", 403);
    let before = fs.bytes_sent();
    let o = fetch(&agent(), &task(&[fs.url("/expired"), fs.url("/new?sig=2")], &dest));
    assert_eq!(o, Outcome::Done { bytes: (BIG - CUT) as u64, already: false, saved_as: None });
    assert_file(&dest, &body);
    assert_eq!(fs.range_requests("/new"), [format!("bytes={CUT}-")]);
    let served = fs.bytes_sent() - before;
    assert!(served < (BIG - CUT + 10_000) as u64, "only the rest was served: {served} bytes");
}

/// An expired URL that answers an empty 200 (with its length) leaves the
/// partial for the next candidate.
#[test]
fn an_empty_answer_does_not_cost_the_partial() {
    let (fs, _dir, dest) = setup();
    let body = data(BIG, 8);
    fs.add("/new", body.clone());
    fs.add("/empty", Vec::new());
    let (part, meta) = part_paths(&dest);
    fs::write(&part, &body[..CUT]).expect("part");
    let mut m = PartMeta::new(&fs.url("/old"), fs.etag("/new"), None, Some(BIG as u64));
    m.durable = CUT as u64;
    fs::write(&meta, serde_json::to_vec(&m).expect("json")).expect("meta");
    let o = fetch(&agent(), &task(&[fs.url("/empty"), fs.url("/new")], &dest));
    assert_eq!(o, Outcome::Done { bytes: (BIG - CUT) as u64, already: false, saved_as: None });
    assert_file(&dest, &body);
}

/// A server that ignores If-Range and sends a range of another file under
/// another URL: its own validators give it away and the partial goes.
#[test]
fn another_url_whose_range_is_of_another_file_starts_over() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let dest = dir.path().join("out.bin");
    let body = data(BIG, 5);
    let server = Server::start(Arc::new(move |_req| {
        Response::new(206)
            .header("Content-Range", &format!("bytes {CUT}-{}/{BIG}", BIG - 1))
            .header("ETag", "\"another\"")
            .with_body(crate::support::http::Body::Bytes(data(BIG - CUT, 6)))
    }));
    let (part, meta) = part_paths(&dest);
    fs::write(&part, &body[..CUT]).expect("part");
    let mut m = PartMeta::new("http://old.invalid/f", Some("\"mine\"".into()), None, Some(BIG as u64));
    m.durable = CUT as u64;
    fs::write(&meta, serde_json::to_vec(&m).expect("json")).expect("meta");
    let o = fetch(&agent(), &task(&[format!("{}/f", server.base_url())], &dest));
    assert!(matches!(&o, Outcome::Retry { reason, .. } if reason.contains("different range")), "{o:?}");
    assert_eq!(fs::metadata(&part).expect("part").len(), 0, "the partial was emptied");
    assert!(!dest.exists());
}

#[test]
fn a_candidate_that_redirects_is_followed() {
    let (fs, _dir, dest) = setup();
    let body = data(4000, 7);
    fs.add("/store/b", body.clone());
    expire(&fs, "/a", 404);
    let target = fs.url("/store/b");
    let hop = Server::start(Arc::new(move |_req| Response::new(302).header("Location", &target)));
    let o = fetch(&agent(), &task(&[fs.url("/a"), format!("{}/b", hop.base_url())], &dest));
    assert_eq!(o, Outcome::Done { bytes: 4000, already: false, saved_as: None });
    assert_file(&dest, &body);
    // A redirect to something other than http(s) still ends the attempt.
    let bad = Server::start(Arc::new(|_req| Response::new(302).header("Location", "file:///etc/passwd")));
    let _ = fs::remove_file(&dest);
    let o = fetch(&agent(), &task(&[format!("{}/x", bad.base_url()), fs.url("/store/b")], &dest));
    assert!(matches!(&o, Outcome::Failed { reason } if reason.contains("file: URL refused")), "{o:?}");
}
