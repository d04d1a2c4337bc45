//! Download attempts against hostile servers and planted files in the
//! download folder: symbolic links, FIFOs, content codings, drips,
//! redirects.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spoolfetch::download::{DownloadTask, Outcome, fetch, part_paths};

use crate::support::fileserver::FileServer;
use crate::support::http::{Response, Server};
use crate::util::test_agent as agent;

fn task(url: &str, dest: &Path) -> DownloadTask {
    crate::util::download_task(url, dest, Duration::from_secs(5))
}

fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8).collect()
}

/// Links at `.part` and `.part.meta` pointing at files outside the folder
/// leave those files untouched, for a small and a resumable size.
#[test]
fn planted_links_at_part_and_meta_never_touch_their_target() {
    for size in [10_000usize, 2 * 1024 * 1024 + 7] {
        let server = FileServer::start();
        let want = body(size);
        server.add("/f", want.clone());
        let victims = tempfile::tempdir().expect("tempdir");
        let victim = victims.path().join("victim");
        let victim_meta = victims.path().join("victim-meta");
        fs::write(&victim, b"precious").expect("victim");
        fs::write(&victim_meta, b"{\"durable\":3}").expect("victim meta");
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("out.bin");
        let (part, meta) = part_paths(&dest);
        symlink(&victim, &part).expect("plant part");
        symlink(&victim_meta, &meta).expect("plant meta");
        let out = fetch(&agent(), &task(&server.url("/f"), &dest));
        assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
        assert_eq!(fs::read(&victim).expect("victim"), b"precious");
        assert_eq!(fs::read(&victim_meta).expect("victim meta"), b"{\"durable\":3}");
        assert!(fs::read(&dest).expect("final") == want, "final file differs (size {size})");
        assert!(!fs::symlink_metadata(&dest).expect("final").file_type().is_symlink());
    }
}

/// A link at the final name is not "already complete", even when its target
/// has the announced size; the download replaces the link, not its target.
#[test]
fn planted_link_at_final_name_is_not_done() {
    let server = FileServer::start();
    let want = body(8);
    server.add("/f", want.clone());
    let victims = tempfile::tempdir().expect("tempdir");
    let victim = victims.path().join("victim");
    fs::write(&victim, b"precious").expect("victim");
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("out.bin");
    symlink(&victim, &dest).expect("plant final");
    let mut t = task(&server.url("/f"), &dest);
    t.expected_size = Some(8);
    let out = fetch(&agent(), &t);
    assert_eq!(out, Outcome::Done { bytes: 8, already: false, saved_as: None });
    assert_eq!(fs::read(&victim).expect("victim"), b"precious");
    assert_eq!(fs::read(&dest).expect("final"), want);
}

/// A FIFO at the `.part` name neither hangs the worker nor gets written.
#[test]
fn planted_fifo_at_part_does_not_hang() {
    let server = FileServer::start();
    let want = body(5000);
    server.add("/f", want.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("out.bin");
    let (part, meta) = part_paths(&dest);
    rustix::fs::mkfifoat(rustix::fs::CWD, &part, rustix::fs::Mode::from_raw_mode(0o600)).expect("fifo");
    rustix::fs::mkfifoat(rustix::fs::CWD, &meta, rustix::fs::Mode::from_raw_mode(0o600)).expect("fifo");
    let started = Instant::now();
    let out = fetch(&agent(), &task(&server.url("/f"), &dest));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    assert_eq!(fs::read(&dest).expect("final"), want);
}

/// A file sent with `Content-Encoding: gzip` is saved as the gzip bytes,
/// and a resume after a cut first answer counts those bytes.
#[test]
fn gzip_coded_file_is_saved_byte_for_byte_and_resumed() {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::support::http::{Body, Response, Server};

    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    enc.write_all(&body(2 * 1024 * 1024 + 99)).expect("encode");
    let gz = Arc::new(enc.finish().expect("encode"));
    let hits = Arc::new(AtomicUsize::new(0));
    let (g, h) = (gz.clone(), hits.clone());
    let server = Server::start(Arc::new(move |req| {
        let first = h.fetch_add(1, Ordering::SeqCst) == 0;
        let start = req
            .header("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok())
            .unwrap_or(0)
            .min(g.len());
        let resp = if start > 0 {
            Response::new(206).header("Content-Range", &format!("bytes {start}-{}/{}", g.len() - 1, g.len()))
        } else {
            Response::new(200)
        };
        let resp = resp
            .header("Content-Encoding", "gzip")
            .header("ETag", "\"v1\"")
            .with_body(Body::Bytes(g[start..].to_vec()));
        if first { resp.truncate_after(1_500_000) } else { resp }
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.tar.gz");
    let t = task(&format!("{}/a.tar.gz", server.base_url()), &dest);
    let first = fetch(&agent(), &t);
    assert!(matches!(first, Outcome::Retry { .. }), "{first:?}");
    let second = fetch(&agent(), &t);
    assert!(matches!(second, Outcome::Done { .. }), "{second:?}");
    assert!(fs::read(&dest).expect("final") == *gz, "saved bytes differ from the gzip bytes sent");
}

/// A resumed transfer that the job's URL redirects keeps its `Range` and
/// `If-Range` on the hop, so it continues where it stopped.
#[test]
fn a_resume_through_a_redirect_keeps_its_range() {
    let cdn = FileServer::start();
    let want = body(3 << 20);
    cdn.add("/big.bin", want.clone());
    cdn.add_fault("/big.bin", crate::support::fileserver::Fault::Truncate(1 << 20), 1);
    let target = cdn.url("/big.bin");
    let origin = Server::start(Arc::new(move |_| Response::new(302).header("Location", &target)));
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("big.bin");
    let url = format!("{}/file", origin.base_url());
    let out = fetch(&agent(), &task(&url, &dest));
    assert!(matches!(out, Outcome::Retry { .. }), "{out:?}");
    let out = fetch(&agent(), &task(&url, &dest));
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    assert_eq!(fs::read(&dest).expect("final"), want);
    let ranges = cdn.range_requests("/big.bin");
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    assert!(ranges[0].starts_with("bytes=") && !ranges[0].starts_with("bytes=0-"), "{ranges:?}");
    let resumed = cdn.log().into_iter().filter(|r| r.header("range").is_some()).collect::<Vec<_>>();
    assert!(resumed[0].header("if-range").is_some(), "the validator went along");
}

/// A pooled keep-alive connection that the server closes as the next
/// request arrives is replaced at once by a fresh one: the download does
/// not cost a retry round.
#[test]
fn a_keep_alive_connection_closed_by_the_server_is_replaced_at_once() {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut served = 0;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.clear();
                    if served == 1 {
                        // The second request on a connection: hang up
                        // without a byte, as a server whose idle timeout
                        // fired just then does.
                        return;
                    }
                    served += 1;
                    let head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello";
                    if stream.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let agent = agent();
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["a.txt", "b.txt", "c.txt"] {
        let dest = dir.path().join(name);
        let out = fetch(&agent, &task(&format!("http://127.0.0.1:{port}/{name}"), &dest));
        assert!(matches!(out, Outcome::Done { .. }), "{name}: {out:?}");
        assert_eq!(fs::read(&dest).expect("file"), b"hello");
    }
}
