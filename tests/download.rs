//! One download attempt (`download::fetch`) against a loopback file server
//! with fault injection, and the fair dispatch of the worker [`Pool`].
//!
//! Every test checks the bytes on disk byte for byte and what the server
//! was asked (`Range`, `If-Range`, number of hits).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Sender, unbounded};
use md5::{Digest, Md5};
use spoolfetch::download::{DownloadEvent, DownloadTask, Outcome, PartMeta, Pool, fetch, part_paths};
use tempfile::TempDir;

use crate::support::fileserver::{Fault, FileServer};
use crate::support::http::{Body, Handler, Request, Response, Server};

/// Size of a file large enough to be resumed with Range (≥ 1 MiB).
const BIG: usize = 2 * 1024 * 1024 + 12_345;
/// Where a truncated first attempt of a big file stops.
const CUT: usize = 700_000;
/// Size of a file small enough to be restarted instead of resumed.
const SMALL: usize = 100_000;

use crate::util::test_agent as agent;

/// Deterministic bytes without a short period, so that a splice or a
/// duplicated range can never look right by accident.
fn data(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

fn md5_hex(b: &[u8]) -> String {
    Md5::digest(b).iter().map(|b| format!("{b:02x}")).collect()
}

fn task_with(url: &str, dest: &Path, reply: Sender<DownloadEvent>) -> DownloadTask {
    DownloadTask { reply, ..crate::util::download_task(url, dest, Duration::from_secs(2)) }
}

fn task(url: &str, dest: &Path) -> DownloadTask {
    task_with(url, dest, unbounded().0)
}

/// A server with `body` at `/f`, a temporary folder, and the final path.
fn setup(body: &[u8]) -> (FileServer, TempDir, PathBuf) {
    let fs = FileServer::start();
    fs.add("/f", body.to_vec());
    let dir = tempfile::tempdir().expect("temporary folder");
    let dest = dir.path().join("out.bin");
    (fs, dir, dest)
}

/// Compares two byte strings without printing megabytes on failure.
fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!("{what}: {} bytes, expected {}; first difference at {first:?}", got.len(), want.len());
    }
}

fn assert_file(path: &Path, want: &[u8]) {
    let got = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_bytes(&got, want, &path.display().to_string());
}

fn assert_no_part(dest: &Path) {
    let (part, meta) = part_paths(dest);
    assert!(!part.exists(), "{} left behind", part.display());
    assert!(!meta.exists(), "{} left behind", meta.display());
}

fn read_meta(dest: &Path) -> Option<PartMeta> {
    let (_, meta) = part_paths(dest);
    serde_json::from_slice(&fs::read(meta).ok()?).ok()
}

fn part_len(dest: &Path) -> u64 {
    let (part, _) = part_paths(dest);
    fs::metadata(&part).map_or_else(|e| panic!("{}: {e}", part.display()), |m| m.len())
}

fn retry_reason(o: &Outcome) -> &str {
    match o {
        Outcome::Retry { reason, .. } => reason,
        other => panic!("expected Retry, got {other:?}"),
    }
}

/// The `If-Range` header of the last request to `path`.
fn last_if_range(fs: &FileServer, path: &str) -> Option<String> {
    fs.log().iter().rev().find(|r| r.path_only() == path)?.header("if-range").map(str::to_string)
}

/// A first attempt on a big file cut after [`CUT`] bytes: must be a Retry
/// that keeps a `.part` and a meta recording exactly what it holds.
fn truncated_first_attempt(fs: &FileServer, body: &[u8], dest: &Path, agent: &ureq::Agent) -> u64 {
    fs.add_fault("/f", Fault::Truncate(CUT), 1);
    let o = fetch(agent, &task(&fs.url("/f"), dest));
    assert!(matches!(o, Outcome::Retry { after: None, .. }), "{o:?}");
    assert!(!dest.exists(), "no final file after a cut transfer");
    let meta = read_meta(dest).expect("a big file keeps a .part.meta");
    let held = part_len(dest);
    assert!(held > 0 && held <= CUT as u64, "part holds {held}");
    assert_eq!(meta.durable, held, "meta records what the part holds");
    assert_eq!(meta.total, Some(body.len() as u64));
    assert_eq!(meta.etag, fs.etag("/f"));
    assert!(meta.is_for(&fs.url("/f")), "the meta names its URL by digest");
    let (_, meta_path) = part_paths(dest);
    let text = fs::read_to_string(meta_path).expect("meta text");
    assert!(!text.contains("127.0.0.1"), "the meta keeps no URL: {text}");
    let (part, _) = part_paths(dest);
    let on_disk = fs::read(part).expect("read part");
    assert_bytes(&on_disk, &body[..on_disk.len()], "part prefix");
    assert!(fs.range_requests("/f").is_empty(), "first attempt asks for the whole file");
    held
}

#[test]
fn plain_200_writes_exact_bytes() {
    let body = data(SMALL, 1);
    let (fs, _dir, dest) = setup(&body);
    let t = task(&fs.url("/f"), &dest);
    let o = fetch(&agent(), &t);
    assert_eq!(o, Outcome::Done { bytes: SMALL as u64, already: false, saved_as: None });
    assert_file(&dest, &body);
    assert_no_part(&dest);
    assert_eq!(t.flags.bytes(), SMALL as u64, "live byte counter");
    assert_eq!(fs.hits("/f"), 1);
    assert!(fs.range_requests("/f").is_empty());
    let log = fs.log();
    assert_eq!(log[0].header("accept-encoding"), Some("identity"), "ranges count encoded bytes");
}

#[test]
fn big_plain_200_leaves_no_meta() {
    let body = data(BIG, 2);
    let (fs, _dir, dest) = setup(&body);
    let o = fetch(&agent(), &task(&fs.url("/f"), &dest));
    assert_eq!(o, Outcome::Done { bytes: BIG as u64, already: false, saved_as: None });
    assert_file(&dest, &body);
    assert_no_part(&dest);
}

#[test]
fn task_headers_are_sent() {
    let body = data(1000, 3);
    let (fs, _dir, dest) = setup(&body);
    fs.set_require_header("/f", "Referer", "https://www.pixiv.net/");
    let a = agent();
    let o = fetch(&a, &task(&fs.url("/f"), &dest));
    assert!(matches!(o, Outcome::Failed { .. }), "403 without the header: {o:?}");
    let mut t = task(&fs.url("/f"), &dest);
    t.headers = vec![("Referer".into(), "https://www.pixiv.net/".into())].into();
    assert_eq!(fetch(&a, &t), Outcome::Done { bytes: 1000, already: false, saved_as: None });
    assert_file(&dest, &body);
}

#[test]
fn existing_file_is_not_fetched_again() {
    let body = data(5000, 4);
    let (fs, _dir, dest) = setup(&body);
    fs::write(&dest, b"already here").expect("write");
    let a = agent();
    assert_eq!(
        fetch(&a, &task(&fs.url("/f"), &dest)),
        Outcome::Done { bytes: 0, already: true, saved_as: None }
    );
    let mut t = task(&fs.url("/f"), &dest);
    t.expected_size = Some(12);
    assert_eq!(fetch(&a, &t), Outcome::Done { bytes: 0, already: true, saved_as: None });
    assert_eq!(fs.hits("/f"), 0);
    assert_file(&dest, b"already here");
    assert_no_part(&dest);
}

#[test]
fn existing_file_of_wrong_size_is_fetched_again() {
    let body = data(5000, 5);
    let (fs, _dir, dest) = setup(&body);
    fs::write(&dest, b"stale, short").expect("write");
    let mut t = task(&fs.url("/f"), &dest);
    t.expected_size = Some(5000);
    assert_eq!(fetch(&agent(), &t), Outcome::Done { bytes: 5000, already: false, saved_as: None });
    assert_eq!(fs.hits("/f"), 1);
    assert_file(&dest, &body);
    assert_no_part(&dest);
}

#[test]
fn truncated_big_file_keeps_part_and_meta() {
    let body = data(BIG, 6);
    let (fs, _dir, dest) = setup(&body);
    truncated_first_attempt(&fs, &body, &dest, &agent());
}

/// The resume itself: `Range: bytes=N-` + `If-Range`, 206, exact bytes
/// (regression: the 206 body used to be written at offset 0).
#[test]
fn truncated_big_file_resumes_with_range() {
    let body = data(BIG, 7);
    let (fs, _dir, dest) = setup(&body);
    let a = agent();
    let held = truncated_first_attempt(&fs, &body, &dest, &a);
    let o = fetch(&a, &task(&fs.url("/f"), &dest));
    assert_eq!(fs.range_requests("/f"), vec![format!("bytes={held}-")]);
    assert_eq!(last_if_range(&fs, "/f"), fs.etag("/f"), "strong ETag as the validator");
    assert_eq!(
        o,
        Outcome::Done { bytes: BIG as u64 - held, already: false, saved_as: None },
        "only the rest was fetched"
    );
    assert_file(&dest, &body);
    assert_no_part(&dest);
}

/// A resume with `expected_size` known: the resumed file passes the final
/// length check (a mis-placed append would be caught there and discarded).
#[test]
fn truncated_big_file_resumes_with_expected_size() {
    let body = data(BIG, 8);
    let (fs, _dir, dest) = setup(&body);
    let a = agent();
    truncated_first_attempt(&fs, &body, &dest, &a);
    let mut t = task(&fs.url("/f"), &dest);
    t.expected_size = Some(BIG as u64);
    let o = fetch(&a, &t);
    assert!(matches!(o, Outcome::Done { already: false, .. }), "{o:?}");
    assert_file(&dest, &body);
}

#[test]
fn truncated_small_file_restarts_without_range() {
    let body = data(SMALL, 9);
    let (fs, _dir, dest) = setup(&body);
    fs.add_fault("/f", Fault::Truncate(SMALL / 2), 1);
    let a = agent();
    let o = fetch(&a, &task(&fs.url("/f"), &dest));
    assert!(matches!(o, Outcome::Retry { .. }), "{o:?}");
    assert!(read_meta(&dest).is_none(), "small files keep no resume record");
    assert!(!dest.exists());
    let o = fetch(&a, &task(&fs.url("/f"), &dest));
    assert_eq!(o, Outcome::Done { bytes: SMALL as u64, already: false, saved_as: None });
    assert!(fs.range_requests("/f").is_empty(), "small files start over");
    assert_eq!(fs.hits("/f"), 2);
    assert_file(&dest, &body);
    assert_no_part(&dest);
}

#[test]
fn stall_beyond_timeout_is_a_quick_retry() {
    let body = data(SMALL, 10);
    let (fs, _dir, dest) = setup(&body);
    fs.add_fault("/f", Fault::Stall { after: 1000, dur: Duration::from_secs(8) }, 1);
    let mut t = task(&fs.url("/f"), &dest);
    t.timeout = Duration::from_secs(1);
    let start = Instant::now();
    let o = fetch(&agent(), &t);
    let took = start.elapsed();
    let reason = retry_reason(&o);
    assert!(reason.contains("timed out"), "{reason}");
    assert!(took >= Duration::from_millis(900), "gave up before the timeout: {took:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(!dest.exists());
}

#[test]
fn status_429_with_retry_after_seconds() {
    let (fs, _dir, dest) = setup(&data(100, 11));
    fs.add_fault("/f", Fault::Status { code: 429, retry_after: Some("1".into()) }, 1);
    let o = fetch(&agent(), &task(&fs.url("/f"), &dest));
    assert_eq!(
        o,
        Outcome::Retry { reason: "HTTP 429 Too Many Requests".into(), after: Some(Duration::from_secs(1)) }
    );
    assert!(!dest.exists());
}

#[test]
fn status_429_with_retry_after_date() {
    let (fs, _dir, dest) = setup(&data(100, 12));
    let when = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    fs.add_fault("/f", Fault::Status { code: 429, retry_after: Some(when) }, 1);
    let o = fetch(&agent(), &task(&fs.url("/f"), &dest));
    let Outcome::Retry { after: Some(after), .. } = o else { panic!("expected Retry with a delay: {o:?}") };
    // The date has one-second resolution.
    assert!(after >= Duration::from_millis(500) && after <= Duration::from_secs(2), "{after:?}");
}

#[test]
fn passing_server_errors_are_retries() {
    let (fs, _dir, dest) = setup(&data(100, 13));
    let a = agent();
    for code in [503, 500, 502, 408] {
        fs.add_fault("/f", Fault::Status { code, retry_after: None }, 1);
        let o = fetch(&a, &task(&fs.url("/f"), &dest));
        assert!(
            matches!(&o, Outcome::Retry { after: None, reason } if reason.contains(&code.to_string())),
            "{code}: {o:?}"
        );
    }
    assert!(!dest.exists());
    assert_eq!(fs.hits("/f"), 4);
}

#[test]
fn client_errors_fail() {
    let (fs, _dir, dest) = setup(&data(100, 14));
    let a = agent();
    let o = fetch(&a, &task(&fs.url("/missing"), &dest));
    assert_eq!(o, Outcome::Failed { reason: "HTTP 404 Not Found".into() });
    fs.add_fault("/f", Fault::Status { code: 403, retry_after: None }, 1);
    let o = fetch(&a, &task(&fs.url("/f"), &dest));
    assert_eq!(o, Outcome::Failed { reason: "HTTP 403 Forbidden".into() });
    fs.add_fault("/f", Fault::Status { code: 410, retry_after: None }, 1);
    assert!(matches!(fetch(&a, &task(&fs.url("/f"), &dest)), Outcome::Failed { .. }));
    assert!(!dest.exists());
}

/// A permanent failure should not litter the download folder.
#[test]
fn failed_item_leaves_no_part() {
    let (fs, _dir, dest) = setup(&data(100, 15));
    let o = fetch(&agent(), &task(&fs.url("/missing"), &dest));
    assert!(matches!(o, Outcome::Failed { .. }), "{o:?}");
    assert_no_part(&dest);
}

#[test]
fn connection_refused_is_a_retry() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tempfile::tempdir().expect("temporary folder");
    let dest = dir.path().join("x");
    let o = fetch(&agent(), &task(&format!("http://127.0.0.1:{port}/x"), &dest));
    assert!(retry_reason(&o).contains("refused"), "{o:?}");
}

#[test]
fn ignored_range_on_resume_restarts_from_zero() {
    let body = data(BIG, 16);
    let (fs, _dir, dest) = setup(&body);
    let a = agent();
    let held = truncated_first_attempt(&fs, &body, &dest, &a);
    fs.add_fault("/f", Fault::IgnoreRange, 1);
    let o = fetch(&a, &task(&fs.url("/f"), &dest));
    assert_eq!(fs.range_requests("/f"), vec![format!("bytes={held}-")], "a resume was asked");
    assert_eq!(
        o,
        Outcome::Done { bytes: BIG as u64, already: false, saved_as: None },
        "the whole file came again"
    );
    assert_file(&dest, &body);
    assert_no_part(&dest);
}

/// A 206 that does not continue our bytes must empty the `.part`; the next
/// attempt starts over.
fn bad_206_on_resume(fault: Fault, seed: u32) {
    let body = data(BIG, seed);
    let (fs, _dir, dest) = setup(&body);
    let a = agent();
    let held = truncated_first_attempt(&fs, &body, &dest, &a);
    fs.add_fault("/f", fault.clone(), 1);
    let o = fetch(&a, &task(&fs.url("/f"), &dest));
    let reason = retry_reason(&o);
    assert!(reason.contains("range"), "{fault:?}: {reason}");
    assert_eq!(part_len(&dest), 0, "{fault:?}: untrusted bytes dropped");
    assert!(read_meta(&dest).is_none(), "{fault:?}: meta dropped");
    assert!(!dest.exists());
    let o = fetch(&a, &task(&fs.url("/f"), &dest));
    assert_eq!(o, Outcome::Done { bytes: BIG as u64, already: false, saved_as: None }, "{fault:?}");
    assert_eq!(
        fs.range_requests("/f"),
        vec![format!("bytes={held}-")],
        "{fault:?}: third attempt starts over"
    );
    assert_file(&dest, &body);
    assert_no_part(&dest);
}

#[test]
fn wrong_content_range_on_resume_starts_over() {
    bad_206_on_resume(Fault::WrongContentRange, 17);
}

#[test]
fn wrong_total_on_resume_starts_over() {
    bad_206_on_resume(Fault::WrongTotal, 18);
}

#[test]
fn changed_file_fails_if_range_and_new_content_is_fetched() {
    let v1 = data(BIG, 19);
    let (fs, _dir, dest) = setup(&v1);
    let a = agent();
    let held = truncated_first_attempt(&fs, &v1, &dest, &a);
    let old_etag = fs.etag("/f");
    let v2 = data(BIG + 5000, 20);
    fs.replace("/f", v2.clone());
    assert_ne!(fs.etag("/f"), old_etag);
    let o = fetch(&a, &task(&fs.url("/f"), &dest));
    assert_eq!(fs.range_requests("/f"), vec![format!("bytes={held}-")]);
    assert_eq!(last_if_range(&fs, "/f"), old_etag, "the old validator was sent");
    assert_eq!(o, Outcome::Done { bytes: v2.len() as u64, already: false, saved_as: None });
    assert_file(&dest, &v2);
    assert_no_part(&dest);
}

/// Writes a `.part` and a meta as a crash would leave them.
fn plant_part(fs: &FileServer, dest: &Path, bytes: &[u8], total: u64) {
    let (part, meta) = part_paths(dest);
    fs::write(&part, bytes).expect("write part");
    let mut m = PartMeta::new(&fs.url("/f"), fs.etag("/f"), fs.last_modified("/f"), Some(total));
    m.durable = bytes.len() as u64;
    fs::write(&meta, serde_json::to_vec(&m).expect("serialize meta")).expect("write meta");
}

/// The `.part` is created with its folder on first use (no per-file
/// `create_dir_all`): missing folders, several levels deep, appear.
#[test]
fn missing_folders_are_created_for_the_part() {
    let body = data(SMALL, 27);
    let (fs, dir, _) = setup(&body);
    let dest = dir.path().join("a/b/c/out.bin");
    let a = agent();
    assert_eq!(
        fetch(&a, &task(&fs.url("/f"), &dest)),
        Outcome::Done { bytes: SMALL as u64, already: false, saved_as: None }
    );
    assert_file(&dest, &body);
    assert_no_part(&dest);
    // A folder removed between two files of a job is created again.
    fs::remove_dir_all(dir.path().join("a")).expect("remove folders");
    assert_eq!(
        fetch(&a, &task(&fs.url("/f"), &dest)),
        Outcome::Done { bytes: SMALL as u64, already: false, saved_as: None }
    );
    assert_file(&dest, &body);
}

/// A small file never writes a meta file, but a `.part` found on disk may
/// have one (planted here): it is honoured (resume) and removed at the end.
#[test]
fn small_part_with_meta_resumes_and_cleans_up() {
    let body = data(SMALL, 28);
    let (fs, _dir, dest) = setup(&body);
    plant_part(&fs, &dest, &body[..5000], SMALL as u64);
    let o = fetch(&agent(), &task(&fs.url("/f"), &dest));
    assert_eq!(o, Outcome::Done { bytes: SMALL as u64 - 5000, already: false, saved_as: None });
    assert_eq!(fs.range_requests("/f"), vec!["bytes=5000-".to_string()]);
    assert_file(&dest, &body);
    assert_no_part(&dest);
}

/// A partial left by a version that kept the whole URL in its meta file
/// resumes with Range, and its rewritten meta keeps only a digest.
#[test]
fn a_meta_that_holds_the_url_in_the_old_form_still_resumes() {
    let body = data(BIG, 31);
    let (fs, _dir, dest) = setup(&body);
    let (part, meta) = part_paths(&dest);
    fs::write(&part, &body[..CUT]).expect("write part");
    let old = serde_json::json!({
        "url": fs.url("/f"),
        "etag": fs.etag("/f"),
        "last_modified": fs.last_modified("/f"),
        "total": BIG,
        "durable": CUT,
    });
    fs::write(&meta, old.to_string()).expect("write meta");
    fs.add_fault("/f", Fault::Truncate(CUT), 1);
    let o = fetch(&agent(), &task(&fs.url("/f"), &dest));
    assert!(matches!(o, Outcome::Retry { .. }), "{o:?}");
    assert_eq!(fs.range_requests("/f"), vec![format!("bytes={CUT}-")], "resumed from the old meta");
    let text = fs::read_to_string(&meta).expect("rewritten meta");
    assert!(!text.contains("127.0.0.1") && text.contains("url_sha256"), "{text}");
    let o = fetch(&agent(), &task(&fs.url("/f"), &dest));
    assert!(matches!(o, Outcome::Done { .. }), "{o:?}");
    assert_file(&dest, &body);
}

/// A meta file without a `.part` (crash between rename and unlink, then the
/// final file deleted) never makes a fresh transfer send `Range`.
#[test]
fn stale_meta_without_part_is_ignored() {
    let body = data(BIG, 29);
    let (fs, _dir, dest) = setup(&body);
    plant_part(&fs, &dest, &body[..CUT], BIG as u64);
    let (part, _) = part_paths(&dest);
    fs::remove_file(&part).expect("remove part");
    let o = fetch(&agent(), &task(&fs.url("/f"), &dest));
    assert_eq!(o, Outcome::Done { bytes: BIG as u64, already: false, saved_as: None });
    assert!(fs.range_requests("/f").is_empty(), "nothing to resume");
    assert_file(&dest, &body);
    assert_no_part(&dest);
}

#[test]
fn complete_part_and_416_finalizes_without_body() {
    let body = data(BIG, 21);
    let (fs, _dir, dest) = setup(&body);
    plant_part(&fs, &dest, &body, BIG as u64);
    let o = fetch(&agent(), &task(&fs.url("/f"), &dest));
    assert_eq!(o, Outcome::Done { bytes: 0, already: false, saved_as: None });
    assert_eq!(fs.range_requests("/f"), vec![format!("bytes={BIG}-")]);
    assert_eq!(fs.bytes_sent(), 0, "no body was sent");
    assert_file(&dest, &body);
    assert_no_part(&dest);
}

#[test]
fn oversized_part_and_416_starts_over() {
    let body = data(BIG, 22);
    let (fs, _dir, dest) = setup(&body);
    let mut longer = body.clone();
    longer.extend_from_slice(&[7u8; 100]);
    plant_part(&fs, &dest, &longer, longer.len() as u64);
    let a = agent();
    let o = fetch(&a, &task(&fs.url("/f"), &dest));
    assert!(retry_reason(&o).contains("range"), "{o:?}");
    assert_eq!(part_len(&dest), 0);
    assert!(read_meta(&dest).is_none());
    assert_eq!(
        fetch(&a, &task(&fs.url("/f"), &dest)),
        Outcome::Done { bytes: BIG as u64, already: false, saved_as: None }
    );
    assert_file(&dest, &body);
}

#[test]
fn part_without_validators_starts_over() {
    let body = data(BIG, 23);
    let (fs, _dir, dest) = setup(&body);
    let (part, meta) = part_paths(&dest);
    fs::write(&part, &body[..CUT]).expect("write part");
    let mut m = PartMeta::new(&fs.url("/f"), None, None, Some(BIG as u64));
    m.durable = CUT as u64;
    fs::write(&meta, serde_json::to_vec(&m).expect("serialize")).expect("write meta");
    let o = fetch(&agent(), &task(&fs.url("/f"), &dest));
    assert_eq!(o, Outcome::Done { bytes: BIG as u64, already: false, saved_as: None });
    assert!(fs.range_requests("/f").is_empty(), "no resume without a validator");
    assert_file(&dest, &body);
}

/// Resume is keyed by the destination and the validators, not the URL: a
/// re-signed URL of the same file continues the partial (this replaced
/// `part_of_another_url_is_not_resumed`).
#[test]
fn part_of_another_url_with_the_same_validators_is_resumed() {
    let body = data(BIG, 24);
    let (fs, _dir, dest) = setup(&body);
    fs.add("/other", body.clone());
    plant_part(&fs, &dest, &body[..CUT], BIG as u64);
    let o = fetch(&agent(), &task(&fs.url("/other"), &dest));
    assert_eq!(o, Outcome::Done { bytes: (BIG - CUT) as u64, already: false, saved_as: None });
    assert_eq!(fs.range_requests("/other"), [format!("bytes={CUT}-")]);
    assert_eq!(last_if_range(&fs, "/other"), fs.etag("/f"));
    assert_file(&dest, &body);
}

#[test]
fn part_of_another_url_with_other_validators_starts_over() {
    let body = data(BIG, 24);
    let other = data(BIG, 124);
    let (fs, _dir, dest) = setup(&body);
    fs.add("/other", other.clone());
    plant_part(&fs, &dest, &body[..CUT], BIG as u64);
    let o = fetch(&agent(), &task(&fs.url("/other"), &dest));
    assert_eq!(o, Outcome::Done { bytes: BIG as u64, already: false, saved_as: None });
    assert_file(&dest, &other);
}

/// Documents: a close-delimited body (no `Content-Length`) is accepted as
/// complete when the server closes the connection.
#[test]
fn close_delimited_body_completes() {
    let body = data(SMALL, 25);
    let (fs, _dir, dest) = setup(&body);
    fs.add_fault("/f", Fault::NoLength, 1);
    let o = fetch(&agent(), &task(&fs.url("/f"), &dest));
    assert_eq!(o, Outcome::Done { bytes: SMALL as u64, already: false, saved_as: None });
    assert_file(&dest, &body);
    assert_no_part(&dest);
}

#[test]
fn close_delimited_body_checked_against_expected_size() {
    let body = data(SMALL, 26);
    let (fs, _dir, dest) = setup(&body);
    fs.add_fault("/f", Fault::NoLength, 1);
    let mut t = task(&fs.url("/f"), &dest);
    t.expected_size = Some(SMALL as u64 + 1);
    let o = fetch(&agent(), &t);
    assert!(retry_reason(&o).contains("expected"), "{o:?}");
    assert!(!dest.exists());
}

#[test]
fn md5_match_completes() {
    let body = data(SMALL, 27);
    let (fs, _dir, dest) = setup(&body);
    let mut t = task(&fs.url("/f"), &dest);
    t.md5 = Some(md5_hex(&body).to_ascii_uppercase());
    assert_eq!(fetch(&agent(), &t), Outcome::Done { bytes: SMALL as u64, already: false, saved_as: None });
    assert_file(&dest, &body);
    assert_no_part(&dest);
}

#[test]
fn md5_mismatch_is_a_retry_without_final_file() {
    let body = data(SMALL, 28);
    let (fs, _dir, dest) = setup(&body);
    let mut t = task(&fs.url("/f"), &dest);
    t.md5 = Some(md5_hex(b"something else"));
    let o = fetch(&agent(), &t);
    assert!(retry_reason(&o).contains("MD5 mismatch"), "{o:?}");
    assert!(!dest.exists());
    assert_eq!(part_len(&dest), 0, "bad bytes dropped");
}

#[test]
fn expected_size_differing_from_content_length_fails() {
    let body = data(SMALL, 29);
    let (fs, _dir, dest) = setup(&body);
    let mut t = task(&fs.url("/f"), &dest);
    t.expected_size = Some(SMALL as u64 - 1);
    let o = fetch(&agent(), &t);
    assert!(matches!(&o, Outcome::Failed { reason } if reason.contains("announced")), "{o:?}");
    assert!(!dest.exists());
}

/// Starts a slow download of a big file and halts it from another thread
/// after `delay`; returns the outcome and how long the halt took to work.
fn halted_attempt(fs: &FileServer, dest: &Path, a: &ureq::Agent, delay: Duration) -> (Outcome, Duration) {
    fs.add_fault("/f", Fault::Drip(256 * 1024), 1);
    let t = task(&fs.url("/f"), dest);
    let flags = Arc::clone(&t.flags);
    let halter = thread::spawn(move || {
        thread::sleep(delay);
        flags.set_halted(true);
        Instant::now()
    });
    let o = fetch(a, &t);
    let returned = Instant::now();
    let halted_at = halter.join().expect("halter thread");
    (o, returned.saturating_duration_since(halted_at))
}

#[test]
fn halt_interrupts_quickly_and_keeps_part() {
    let body = data(BIG, 30);
    let (fs, _dir, dest) = setup(&body);
    let a = agent();
    let start = Instant::now();
    let (o, lag) = halted_attempt(&fs, &dest, &a, Duration::from_millis(500));
    assert_eq!(o, Outcome::Interrupted);
    assert!(lag < Duration::from_secs(2), "halt took {lag:?}");
    assert!(start.elapsed() < Duration::from_secs(5), "the drip would take ~8 s");
    assert!(!dest.exists());
    let held = part_len(&dest);
    assert!(held > 0 && held < BIG as u64, "part holds {held}");
    let meta = read_meta(&dest).expect("meta kept");
    assert_eq!(meta.durable, held);
    let (part, _) = part_paths(&dest);
    let on_disk = fs::read(part).expect("read part");
    assert_bytes(&on_disk, &body[..on_disk.len()], "part prefix");
}

#[test]
fn halt_then_resume_completes_with_range() {
    let body = data(BIG, 31);
    let (fs, _dir, dest) = setup(&body);
    let a = agent();
    let (o, _) = halted_attempt(&fs, &dest, &a, Duration::from_millis(500));
    assert_eq!(o, Outcome::Interrupted);
    let held = part_len(&dest);
    let t = task(&fs.url("/f"), &dest);
    let o = fetch(&a, &t);
    assert_eq!(fs.range_requests("/f"), vec![format!("bytes={held}-")]);
    assert_eq!(o, Outcome::Done { bytes: BIG as u64 - held, already: false, saved_as: None });
    assert_file(&dest, &body);
    assert_no_part(&dest);
}

#[test]
fn inline_task_writes_text() {
    let fs = FileServer::start();
    let dir = tempfile::tempdir().expect("temporary folder");
    let dest = dir.path().join("new/sub/info.txt");
    let mut t = task("", &dest);
    t.inline = Some("title: ü\nline 2\n".into());
    assert_eq!(fetch(&agent(), &t), Outcome::Done { bytes: 0, already: false, saved_as: None });
    assert_file(&dest, "title: ü\nline 2\n".as_bytes());
    assert_no_part(&dest);
    assert_eq!(fs.log().len(), 0);
}

#[test]
fn a_saved_file_takes_the_servers_last_modified_time() {
    let body = data(10_000, 3);
    let (fs, _dir, dest) = setup(&body);
    assert_eq!(
        fetch(&agent(), &task(&fs.url("/f"), &dest)),
        Outcome::Done { bytes: 10_000, already: false, saved_as: None }
    );
    let want = httpdate::parse_http_date(&fs.last_modified("/f").expect("date")).expect("parse");
    let got = fs::metadata(&dest).and_then(|m| m.modified()).expect("mtime");
    assert_eq!(got, want, "2020-01-01, as the server says");
}

#[test]
fn copy_task_copies_an_earlier_output_whole_and_refuses_a_link() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let src = dir.path().join("earlier/out.png");
    fs::create_dir_all(src.parent().expect("parent")).expect("mkdir");
    let body = data(300_000, 7);
    fs::write(&src, &body).expect("write");
    let dest = dir.path().join("new/sub/out.png");
    let mut t = task("", &dest);
    t.copy_from = Some(src.clone());
    assert_eq!(fetch(&agent(), &t), Outcome::Done { bytes: 0, already: false, saved_as: None });
    assert_file(&dest, &body);
    // Once there, it is not copied again.
    assert_eq!(fetch(&agent(), &t), Outcome::Done { bytes: 0, already: true, saved_as: None });
    // A source that became a link is not followed.
    let link = dir.path().join("link.png");
    std::os::unix::fs::symlink(&src, &link).expect("symlink");
    let mut t = task("", &dir.path().join("third.png"));
    t.copy_from = Some(link);
    assert!(matches!(fetch(&agent(), &t), Outcome::Failed { .. }));
    assert!(!dir.path().join("third.png").exists());
}

/// Two jobs share two workers: job B's few tasks, queued after job A's
/// many, are served round-robin rather than after all of A's.
#[test]
fn pool_serves_jobs_round_robin() {
    let handler: Handler = Arc::new(|_: &Request| {
        thread::sleep(Duration::from_millis(25));
        Response::new(200).with_body(Body::Bytes(b"0123456789".to_vec()))
    });
    let server = Server::start(handler);
    let dir = tempfile::tempdir().expect("temporary folder");
    let (fatal_tx, fatal_rx) = unbounded::<String>();
    let (tx, rx) = unbounded::<DownloadEvent>();
    let pool = Pool::start(2, &agent(), &fatal_tx).expect("start pool");
    assert_eq!(pool.size(), 2);
    let qa = pool.register(1, 64);
    let qb = pool.register(2, 64);
    let mk = |job: u64, item: u64| {
        let mut t = task_with(
            &format!("{}/{job}/{item}", server.base_url()),
            &dir.path().join(format!("{job}-{item}")),
            tx.clone(),
        );
        t.job = job;
        t.item = item;
        t
    };
    for i in 0..40 {
        qa.try_send(mk(1, i)).expect("room in job A's queue");
    }
    for i in 1000..1005 {
        qb.try_send(mk(2, i)).expect("room in job B's queue");
    }
    let mut order = Vec::new();
    for _ in 0..45 {
        let ev = rx.recv_timeout(Duration::from_secs(8)).expect("an event from the pool");
        assert_eq!(
            ev.outcome,
            Outcome::Done { bytes: 10, already: false, saved_as: None },
            "item {}",
            ev.item
        );
        assert_file(&ev.dest, b"0123456789");
        order.push(ev.item);
    }
    pool.shutdown();
    assert!(fatal_rx.try_recv().is_err(), "no worker panicked");
    let last_b = order.iter().rposition(|&i| i >= 1000).expect("B's items");
    let a_before = order[..last_b].iter().filter(|&&i| i < 1000).count();
    assert!(a_before <= 30, "job B finished only after {a_before} of A's 40 tasks: {order:?}");
    let mut sorted = order.clone();
    sorted.sort_unstable();
    let want: Vec<u64> = (0..40).chain(1000..1005).collect();
    assert_eq!(sorted, want, "every task exactly once");
}

/// Shutdown lets the finishers fsync, rename and report every file the
/// workers handed them: afterwards each final file has its `Done` event, no
/// event is missing or late, and no `.part` is left.
#[test]
fn pool_shutdown_drains_the_finishers() {
    let server = FileServer::start();
    for i in 0..60 {
        server.add(&format!("/s/{i}"), data(SMALL, 100 + i));
    }
    let dir = tempfile::tempdir().expect("temporary folder");
    let (fatal_tx, fatal_rx) = unbounded::<String>();
    let (tx, rx) = unbounded::<DownloadEvent>();
    let pool = Pool::start(4, &agent(), &fatal_tx).expect("start pool");
    let q = pool.register(1, 64);
    for i in 0..60 {
        let mut t = task_with(&server.url(&format!("/s/{i}")), &dir.path().join(format!("{i}")), tx.clone());
        t.item = i;
        q.try_send(t).expect("room in the queue");
    }
    rx.recv_timeout(Duration::from_secs(8)).expect("a first event");
    pool.shutdown();
    drop(tx);
    assert!(fatal_rx.try_recv().is_err(), "no thread panicked");
    // Items reported done (the first one was consumed above).
    let mut done: Vec<u64> = rx
        .try_iter()
        .map(|ev| {
            assert_eq!(
                ev.outcome,
                Outcome::Done { bytes: SMALL as u64, already: false, saved_as: None },
                "item {}",
                ev.item
            );
            ev.item
        })
        .collect();
    let mut on_disk = Vec::new();
    for entry in fs::read_dir(dir.path()).expect("list output") {
        let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "{name} left behind");
        let i: u64 = name.parse().expect("numeric name");
        assert_file(&dir.path().join(&name), &data(SMALL, 100 + i as u32));
        on_disk.push(i);
    }
    on_disk.sort_unstable();
    done.sort_unstable();
    // Exactly one final file is not in `done`: the first event's.
    assert_eq!(on_disk.len(), done.len() + 1, "every file but the first was reported after it");
    assert!(done.iter().all(|i| on_disk.contains(i)), "a reported file is missing");
}
