//! The daemon as an operator meets it: spool changes picked up by events
//! or by polling (not by the periodic rescan), the signals (SIGINT, a
//! second SIGTERM, SIGHUP, the shutdown grace period) and systemd's
//! notification protocol.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::json;

use crate::support::fileserver::{Fault, FileServer};
use crate::util::{Daemon, Env, assert_file, bytes, wait_until};

/// Waits until the daemon logged that it watches the spool, then a little
/// longer, so that its first scan of the spool is over.
fn wait_watching(d: &Daemon) {
    assert!(wait_until(Duration::from_secs(10), || d.log().contains("watching")), "{}", d.log());
    std::thread::sleep(Duration::from_millis(400));
}

/// Sends SIGTERM and expects exit 0 within `within`.
fn stop_cleanly(d: &mut Daemon, within: Duration) {
    d.term();
    let status = d.wait(within).unwrap_or_else(|| panic!("no exit after SIGTERM:\n{}", d.log()));
    assert!(status.success(), "exit {status:?}\n{}", d.log());
}

/// True once job `name` was claimed: its file left the spool's top level
/// and it has a status.
fn claimed(env: &Env, name: &str, tid: u64) -> bool {
    !env.spool.join(format!("{name}.json")).exists() && env.status(tid).is_some()
}

/// Serves `n` files of `len` bytes under `/<prefix>NN.bin`, each sent at
/// `rate` bytes per second the first time; returns their URLs.
fn slow_files(server: &FileServer, prefix: &str, n: u64, len: usize, rate: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let p = format!("/{prefix}{i:02}.bin");
            server.add(&p, bytes(i, len));
            server.add_fault(&p, Fault::Drip(rate), 1);
            server.url(&p)
        })
        .collect()
}

/// With the periodic rescan an hour away, a dropped job and a pause
/// request from another process are still seen at once: through events,
/// or through `poll_ms` when polling.
fn changes_are_seen_without_the_rescan(watch: &str, poll_ms: u64) {
    let server = FileServer::start();
    // Job 1 stays in flight for a long while: 40 files of 1 s each, two
    // at a time.
    let long = slow_files(&server, "long", 40, 40_000, 40_000);
    server.add("/quick.bin", bytes(99, 3000));
    let env = Env::new();
    env.config(json!({
        "watch": watch,
        "rescan_secs": 3600,
        "poll_ms": poll_ms,
        "settle_ms": 100,
        "concurrency": 2,
    }));
    env.drop_job("long", &json!({"type": "http.files", "urls": long}));
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(10), || env.status(1).is_some_and(|s| s.state.as_str() == "running")),
        "{}",
        d.log()
    );
    // The first scans are over: only a change notice (or the poll) can
    // bring the next job in.
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    env.drop_job("quick", &json!({"type": "http.files", "urls": [server.url("/quick.bin")]}));
    assert!(
        wait_until(Duration::from_secs(2), || claimed(&env, "quick", 2)),
        "{watch}: a dropped job was not claimed within 2 s:\n{}",
        d.log()
    );
    let claim_took = t.elapsed();
    // Its end makes the daemon rescan; let that pass before the pause, so
    // that only the request itself can be what the daemon reacts to.
    assert!(
        wait_until(Duration::from_secs(5), || env.status(2).is_some_and(|s| s.state.as_str() == "done")),
        "{}",
        d.log()
    );
    assert_file(&env.job_dir("quick").join("quick.bin"), &bytes(99, 3000));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(env.status(1).expect("status").state.as_str(), "running", "job 1 ended too early");

    let t = Instant::now();
    let out = env.cli(&["pause", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        wait_until(Duration::from_secs(2), || env.status(1).is_some_and(|s| s.state.as_str() == "paused")),
        "{watch}: a pause request took effect later than 2 s (state {:?}):\n{}",
        env.status(1).map(|s| s.state),
        d.log()
    );
    let pause_took = t.elapsed();
    assert!(env.files_in("control").iter().all(|n| n.starts_with('.')), "request not consumed");
    eprintln!("{watch}: claimed in {claim_took:?}, paused in {pause_took:?}");
    stop_cleanly(&mut d, Duration::from_secs(10));
}

#[test]
fn events_bring_in_jobs_and_requests_without_waiting_for_the_rescan() {
    // poll_ms is huge too: if events did not work, the watcher's fallback
    // (polling every poll_ms) would not rescue the test. (While the idle
    // scan loop below is not fixed, that loop also brings changes in.)
    changes_are_seen_without_the_rescan("events", 600_000);
}

#[test]
fn polling_brings_in_jobs_and_requests_without_events() {
    changes_are_seen_without_the_rescan("poll", 100);
}

/// A job of three small files and one large file sent slowly, so that a
/// signal finds the large one in flight. Returns the job's expected files.
fn job_with_a_slow_file(server: &FileServer, env: &Env, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut want = Vec::new();
    let mut urls = Vec::new();
    for i in 0..3u64 {
        let p = format!("/{name}-small{i}.bin");
        want.push((p[1..].to_string(), bytes(i, 10_000)));
        server.add(&p, bytes(i, 10_000));
        urls.push(server.url(&p));
    }
    let p = format!("/{name}-big.bin");
    want.push((p[1..].to_string(), bytes(50, 3 << 20)));
    server.add(&p, bytes(50, 3 << 20));
    server.add_fault(&p, Fault::Drip(500_000), 1);
    urls.push(server.url(&p));
    env.drop_job(name, &json!({"type": "http.files", "urls": urls}));
    want
}

/// The `.part` file of an in-flight download exists in `dir`.
fn has_part(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".part")))
        .unwrap_or(false)
}

#[test]
fn sigint_stops_like_sigterm_and_the_job_resumes() {
    let server = FileServer::start();
    let env = Env::new();
    env.config(json!({"timeout_secs": 10, "shutdown_grace_secs": 1}));
    let want = job_with_a_slow_file(&server, &env, "int");
    let dir = env.job_dir("int");
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(10), || has_part(&dir) && dir.join("int-small2.bin").exists()),
        "no download in flight:\n{}",
        d.log()
    );
    let t = Instant::now();
    d.signal(Signal::INT);
    let status =
        d.wait(Duration::from_secs(10)).unwrap_or_else(|| panic!("no exit after SIGINT:\n{}", d.log()));
    assert_eq!(status.code(), Some(0), "SIGINT must exit 0 like SIGTERM\n{}", d.log());
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?} to stop", t.elapsed());
    // The job stays this instance's, queued for the next start.
    assert_eq!(env.files_in("work/a").iter().filter(|n| n.ends_with(".json")).count(), 1);
    assert_eq!(env.status(1).expect("status").state.as_str(), "queued");
    assert!(!dir.join("int-big.bin").exists(), "the slow file cannot have finished");

    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    for (name, body) in &want {
        assert_file(&dir.join(name), body);
    }
    for i in 0..3 {
        assert_eq!(server.hits(&format!("/int-small{i}.bin")), 1, "small{i} fetched again");
    }
    assert_eq!(env.files_in("done"), vec!["1.int.json"]);
}

#[test]
fn a_second_sigterm_during_the_grace_period_exits_at_once_with_130() {
    let server = FileServer::start();
    server.add("/stuck.bin", bytes(3, 200_000));
    // It sends a little, then nothing for a minute: only the grace period
    // (30 s) or a second signal can end the shutdown.
    server.add_fault("/stuck.bin", Fault::Stall { after: 1000, dur: Duration::from_secs(60) }, 1);
    let env = Env::new();
    env.config(json!({"timeout_secs": 60, "shutdown_grace_secs": 30}));
    env.drop_job("stuck", &json!({"type": "http.files", "urls": [server.url("/stuck.bin")]}));
    let dir = env.job_dir("stuck");
    let mut d = env.daemon(&[]);
    assert!(wait_until(Duration::from_secs(10), || has_part(&dir)), "not in flight:\n{}", d.log());
    d.term();
    // The first signal waits for the in-flight file.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(d.running(), "the first SIGTERM must give in-flight files the grace period:\n{}", d.log());
    assert!(d.log().contains("stop signal received"), "{}", d.log());
    let t = Instant::now();
    d.term();
    let status = d
        .wait(Duration::from_secs(3))
        .unwrap_or_else(|| panic!("no exit after a second SIGTERM:\n{}", d.log()));
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
    assert_eq!(status.code(), Some(130), "{}", d.log());

    // Nothing was left inconsistent: the next start finishes the job.
    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert_file(&dir.join("stuck.bin"), &bytes(3, 200_000));
    assert_eq!(env.files_in("done"), vec!["1.stuck.json"]);
}

#[test]
fn a_second_sigint_also_exits_at_once() {
    let server = FileServer::start();
    server.add("/stuck.bin", bytes(4, 200_000));
    server.add_fault("/stuck.bin", Fault::Stall { after: 1000, dur: Duration::from_secs(60) }, 1);
    let env = Env::new();
    env.config(json!({"timeout_secs": 60, "shutdown_grace_secs": 30}));
    env.drop_job("stuck", &json!({"type": "http.files", "urls": [server.url("/stuck.bin")]}));
    let mut d = env.daemon(&[]);
    assert!(wait_until(Duration::from_secs(10), || has_part(&env.job_dir("stuck"))), "{}", d.log());
    d.signal(Signal::INT);
    std::thread::sleep(Duration::from_millis(500));
    assert!(d.running(), "{}", d.log());
    d.signal(Signal::INT);
    let status = d.wait(Duration::from_secs(3)).unwrap_or_else(|| panic!("no exit:\n{}", d.log()));
    assert_eq!(status.code(), Some(130), "{}", d.log());
}

#[test]
fn sighup_rescans_the_spool() {
    let server = FileServer::start();
    server.add("/hup.bin", bytes(5, 5000));
    let env = Env::new();
    // Neither events, nor a poll, nor the periodic rescan within the test.
    env.config(json!({"watch": "poll", "poll_ms": 600_000, "rescan_secs": 3600, "settle_ms": 100}));
    let mut d = env.daemon(&[]);
    wait_watching(&d);
    env.drop_job("hup", &json!({"type": "http.files", "urls": [server.url("/hup.bin")]}));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(env.spool.join("hup.json").exists(), "claimed without a scan being due:\n{}", d.log());
    assert!(env.statuses().is_empty());

    let t = Instant::now();
    d.signal(Signal::HUP);
    assert!(
        wait_until(Duration::from_secs(2), || claimed(&env, "hup", 1)),
        "SIGHUP did not make the daemon scan:\n{}",
        d.log()
    );
    eprintln!("claimed {:?} after SIGHUP", t.elapsed());
    assert!(wait_until(Duration::from_secs(10), || env.files_in("done") == ["1.hup.json"]), "{}", d.log());
    assert_file(&env.job_dir("hup").join("hup.bin"), &bytes(5, 5000));
    // SIGHUP did not stop it.
    assert!(d.running(), "{}", d.log());
    stop_cleanly(&mut d, Duration::from_secs(10));
}

#[test]
fn files_that_finish_within_the_grace_period_are_kept_and_not_fetched_again() {
    let server = FileServer::start();
    // About 1.2 s to send: it finishes within the 4 s grace period.
    server.add("/soon.bin", bytes(6, 300_000));
    server.add_fault("/soon.bin", Fault::Drip(250_000), 1);
    // Stalled past the grace period: cut, and resumed at the next start.
    server.add("/late.bin", bytes(7, 200_000));
    server.add_fault("/late.bin", Fault::Stall { after: 1000, dur: Duration::from_secs(30) }, 1);
    let env = Env::new();
    env.config(json!({"timeout_secs": 30, "shutdown_grace_secs": 4}));
    env.drop_job(
        "grace",
        &json!({"type": "http.files", "urls": [server.url("/soon.bin"), server.url("/late.bin")]}),
    );
    let dir = env.job_dir("grace");
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(10), || server.hits("/soon.bin") == 1
            && server.hits("/late.bin") == 1),
        "{}",
        d.log()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(!dir.join("soon.bin").exists(), "finished before the signal: the test proves nothing");
    let t = Instant::now();
    d.term();
    let status = d.wait(Duration::from_secs(15)).unwrap_or_else(|| panic!("no exit:\n{}", d.log()));
    let took = t.elapsed();
    assert!(status.success(), "exit {status:?}\n{}", d.log());
    // The stalled file held the shutdown for the grace period, then was cut.
    assert!(took >= Duration::from_secs(3), "stopped after {took:?}, before the grace period ended");
    assert!(took < Duration::from_secs(8), "stopped after {took:?}");
    assert_file(&dir.join("soon.bin"), &bytes(6, 300_000));
    assert!(!dir.join("late.bin").exists());

    let (status, log) = env.run_once(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert_file(&dir.join("soon.bin"), &bytes(6, 300_000));
    assert_file(&dir.join("late.bin"), &bytes(7, 200_000));
    assert_eq!(server.hits("/soon.bin"), 1, "a file finished in the grace period was fetched again\n{log}");
    assert_eq!(env.files_in("done"), vec!["1.grace.json"]);
}

/// The messages a daemon sends to `NOTIFY_SOCKET`.
struct NotifySocket {
    sock: UnixDatagram,
    path: std::path::PathBuf,
    got: Vec<(Instant, String)>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
        NotifySocket { sock, path, got: Vec::new() }
    }

    /// Reads what arrived (without blocking for long).
    fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            for line in msg.lines() {
                self.got.push((Instant::now(), line.to_string()));
            }
        }
    }

    /// Waits up to `timeout` for a line for which `f` is true; returns it.
    fn wait_for(&mut self, timeout: Duration, f: impl Fn(&str) -> bool) -> Option<String> {
        let until = Instant::now() + timeout;
        loop {
            if let Some((_, l)) = self.got.iter().find(|(_, l)| f(l)) {
                return Some(l.clone());
            }
            if Instant::now() >= until {
                return None;
            }
            self.drain();
        }
    }

    fn count(&self, line: &str) -> usize {
        self.got.iter().filter(|(_, l)| l == line).count()
    }

    fn lines(&self) -> Vec<String> {
        self.got.iter().map(|(_, l)| l.clone()).collect()
    }
}

#[test]
fn systemd_hears_ready_status_watchdog_and_stopping() {
    let server = FileServer::start();
    let env = Env::new();
    env.config(json!({"timeout_secs": 10, "shutdown_grace_secs": 1}));
    // An unfinished job for recovery: a first run is stopped mid-job.
    let urls = slow_files(&server, "n", 60, 100_000, 100_000);
    env.drop_job("sd", &json!({"type": "http.files", "urls": urls}));
    let mut first = env.daemon(&[]);
    assert!(wait_until(Duration::from_secs(10), || has_part(&env.job_dir("sd"))), "{}", first.log());
    stop_cleanly(&mut first, Duration::from_secs(10));
    assert_eq!(env.status(1).expect("status").state.as_str(), "queued");

    let mut ns = NotifySocket::bind(env.dir.path());
    let sock = ns.path.display().to_string();
    // No WATCHDOG_PID: the sd-notify crate then accepts WATCHDOG_USEC for
    // any process (systemd sets it to the main PID, which a test cannot
    // know before the spawn). 1 s: a ping every half second at most.
    let mut d = env.daemon_with(&[], &[("NOTIFY_SOCKET", &sock), ("WATCHDOG_USEC", "1000000")]);
    let ready = ns.wait_for(Duration::from_secs(10), |l| l == "READY=1");
    assert!(ready.is_some(), "no READY=1: {:?}\n{}", ns.lines(), d.log());
    // READY comes after the recovery and after the watcher started.
    let log = d.log();
    assert!(log.contains("resuming 1 unfinished job"), "READY before the recovery:\n{log}");
    assert!(log.contains("watching"), "READY before the watcher started:\n{log}");

    // While it works, the status shows the running job and the watchdog
    // is fed about once a second.
    let status = ns.wait_for(Duration::from_secs(5), |l| l.starts_with("STATUS=1 running"));
    assert!(status.is_some(), "no STATUS with the running job: {:?}\n{}", ns.lines(), d.log());
    let t = Instant::now();
    let pings_before = ns.count("WATCHDOG=1");
    while t.elapsed() < Duration::from_millis(3500) {
        ns.drain();
    }
    let pings = ns.count("WATCHDOG=1") - pings_before;
    assert!((2..=8).contains(&pings), "{pings} WATCHDOG=1 in 3.5 s: {:?}\n{}", ns.lines(), d.log());
    assert_eq!(ns.count("READY=1"), 1, "READY=1 is sent once: {:?}", ns.lines());
    assert!(!ns.lines().iter().any(|l| l == "STOPPING=1"), "STOPPING=1 too early: {:?}", ns.lines());

    // A pause shows in the status line.
    let out = env.cli(&["pause", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let paused = ns.wait_for(Duration::from_secs(5), |l| l == "STATUS=0 running, 1 paused, 0 waiting");
    assert!(paused.is_some(), "no STATUS with the paused job: {:?}\n{}", ns.lines(), d.log());

    d.term();
    let stopping = ns.wait_for(Duration::from_secs(5), |l| l == "STOPPING=1");
    assert!(stopping.is_some(), "no STOPPING=1 after SIGTERM: {:?}\n{}", ns.lines(), d.log());
    let status = d.wait(Duration::from_secs(10)).unwrap_or_else(|| panic!("no exit:\n{}", d.log()));
    assert!(status.success(), "{}", d.log());
    ns.drain();
    let last = ns.lines().last().cloned();
    assert_eq!(last.as_deref(), Some("STOPPING=1"), "nothing after STOPPING=1: {:?}", ns.lines());
}

#[test]
fn watchdog_settings_without_a_notify_socket_are_harmless() {
    // The daemon must not depend on systemd: with WATCHDOG_USEC but no
    // NOTIFY_SOCKET it runs and stops normally.
    let env = Env::new();
    let mut d = env.daemon_with(&[], &[("WATCHDOG_USEC", "1000000")]);
    wait_watching(&d);
    std::thread::sleep(Duration::from_millis(1200));
    assert!(d.running(), "{}", d.log());
    stop_cleanly(&mut d, Duration::from_secs(10));
}

/// How often the spool folder itself is opened (each scan opens it) during
/// `window`, seen through our own inotify watch.
fn spool_opens(spool: &Path, window: Duration) -> usize {
    use notify::event::{AccessKind, EventKind};
    use notify::{RecursiveMode, Watcher as _};
    let (tx, rx) = crossbeam_channel::unbounded::<notify::Result<notify::Event>>();
    let mut w = notify::recommended_watcher(tx).expect("inotify");
    w.watch(spool, RecursiveMode::NonRecursive).expect("watch the spool");
    std::thread::sleep(window);
    drop(w);
    rx.try_iter()
        .flatten()
        .filter(|e| matches!(e.kind, EventKind::Access(AccessKind::Open(_))))
        .filter(|e| e.paths.iter().any(|p| p == spool))
        .count()
}

#[test]
fn an_idle_daemon_with_events_does_not_scan_in_a_loop() {
    let env = Env::new();
    env.config(json!({"watch": "events", "rescan_secs": 3600, "poll_ms": 600_000}));
    let mut d = env.daemon(&[]);
    wait_watching(&d);
    // Nothing changes in the spool and the rescan is an hour away: the
    // daemon has no reason to look at the spool at all.
    let opens = spool_opens(&env.spool, Duration::from_secs(2));
    assert!(opens <= 4, "an idle daemon opened the spool {opens} times in 2 s:\n{}", d.log());
    stop_cleanly(&mut d, Duration::from_secs(10));
}
