//! The harness for tests that run the real binary: a temporary spool with
//! a fast configuration, job droppers, a daemon process that can be
//! killed, and waiting helpers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spoolfetch::job::JobStatus;
use spoolfetch::spool::{Spool, list_statuses};

/// Clears the variables that would override a test's configuration file
/// (CI machines often set `SSL_CERT_FILE` and proxies), and systemd's.
pub fn hermetic(mut cmd: Command) -> Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        // A test run under systemd must not let its daemons notify the
        // real service manager.
        let systemd = matches!(k.as_str(), "NOTIFY_SOCKET" | "WATCHDOG_USEC" | "WATCHDOG_PID");
        if k.starts_with("SPOOLFETCH_")
            || k == "SSL_CERT_FILE"
            || k.to_ascii_lowercase().ends_with("_proxy")
            || systemd
        {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spoolfetch"))
}

/// A temporary spool plus download folder.
pub struct Env {
    /// Keeps the folder alive.
    pub dir: tempfile::TempDir,
    /// The spool.
    pub spool: PathBuf,
    /// Where files land.
    pub save: PathBuf,
}

impl Env {
    /// A spool with a configuration tuned for fast tests.
    pub fn new() -> Env {
        let dir = tempfile::Builder::new().prefix("spoolfetch-test-").tempdir().expect("tempdir");
        let spool = dir.path().join("jobs");
        let save = dir.path().join("downloads");
        fs::create_dir_all(&spool).expect("spool");
        let env = Env { dir, spool, save };
        env.config(json!({}));
        env
    }

    /// Writes `<spool>/spoolfetch.json`: the fast defaults plus `extra`.
    pub fn config(&self, extra: Value) {
        let mut cfg = json!({
            "save_path": self.save.display().to_string(),
            "state_dir": self.dir.path().join("state").display().to_string(),
            "instance": "a",
            "concurrency": 4,
            "interval_ms": 0,
            "timeout_secs": 2,
            "settle_ms": 100,
            "poll_ms": 100,
            "rescan_secs": 1,
            "shutdown_grace_secs": 1,
            "retries": 3,
            "rounds": 2,
        });
        if let (Value::Object(base), Value::Object(more)) = (&mut cfg, extra) {
            base.extend(more);
        }
        fs::write(self.spool.join("spoolfetch.json"), serde_json::to_vec_pretty(&cfg).expect("json"))
            .expect("write config");
    }

    /// Writes `<spool>/spoolfetch.json` with the defaults a user gets:
    /// only the folders and the instance name, plus `extra`.
    pub fn config_defaults(&self, extra: Value) {
        let mut cfg = json!({
            "save_path": self.save.display().to_string(),
            "state_dir": self.dir.path().join("state").display().to_string(),
            "instance": "a",
        });
        if let (Value::Object(base), Value::Object(more)) = (&mut cfg, extra) {
            base.extend(more);
        }
        fs::write(self.spool.join("spoolfetch.json"), serde_json::to_vec_pretty(&cfg).expect("json"))
            .expect("write config");
    }

    /// Drops a job the safe way (dotfile, then rename).
    pub fn drop_job(&self, name: &str, job: &Value) -> PathBuf {
        self.drop_raw(name, &serde_json::to_vec(job).expect("json"))
    }

    /// Drops raw bytes as `<name>.json` (write, then rename).
    pub fn drop_raw(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let tmp = self.spool.join(format!(".{name}.tmp"));
        let dst = self.spool.join(format!("{name}.json"));
        fs::write(&tmp, bytes).expect("write job");
        fs::rename(&tmp, &dst).expect("rename job");
        dst
    }

    /// Runs a CLI command against this spool and waits for it.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = hermetic(Command::new(bin()));
        cmd.args(args).arg("--spool").arg(&self.spool).env("RUST_LOG", "info");
        cmd.output().expect("run spoolfetch")
    }

    /// `run --once` to completion (bounded).
    pub fn run_once(&self, timeout: Duration) -> (ExitStatus, String) {
        let mut d = self.daemon(&["--once"]);
        let status = d
            .wait(timeout)
            .unwrap_or_else(|| panic!("run --once did not finish in {timeout:?}:\n{}", d.log()));
        (status, d.log())
    }

    /// Starts `run` in the background with extra arguments.
    pub fn daemon(&self, extra: &[&str]) -> Daemon {
        self.daemon_with(extra, &[])
    }

    /// Starts `run` with extra arguments and environment variables.
    pub fn daemon_with(&self, extra: &[&str], envs: &[(&str, &str)]) -> Daemon {
        let log = self.dir.path().join(format!("daemon-{}.log", fastrand::u32(..)));
        let file = fs::File::create(&log).expect("log file");
        let mut cmd = hermetic(Command::new(bin()));
        cmd.arg("run").arg("--spool").arg(&self.spool).args(extra);
        cmd.env("RUST_LOG", "debug");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(file);
        let child = cmd.spawn().expect("spawn daemon");
        Daemon { child, log, exited: None }
    }

    /// Every status file.
    pub fn statuses(&self) -> Vec<JobStatus> {
        list_statuses(&Spool::new(&self.spool)).expect("statuses")
    }

    /// The status of one job, if written.
    pub fn status(&self, tid: u64) -> Option<JobStatus> {
        self.statuses().into_iter().find(|s| s.tid == tid)
    }

    /// Files in a spool subfolder, sorted.
    pub fn files_in(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.spool.join(sub))
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The folder a job named `name` saves into.
    pub fn job_dir(&self, name: &str) -> PathBuf {
        self.save.join(name)
    }
}

/// A daemon process.
pub struct Daemon {
    /// The process.
    child: Child,
    /// Its stderr.
    log: PathBuf,
    /// Its exit status once known.
    exited: Option<ExitStatus>,
}

impl Daemon {
    /// Kills it with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        self.exited = self.child.wait().ok();
    }

    /// Sends SIGTERM.
    pub fn term(&self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }

    /// Sends `sig` (for example `Signal::INT` or `Signal::HUP`).
    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, sig);
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns true while the process has not exited.
    pub fn running(&mut self) -> bool {
        if self.exited.is_none()
            && let Ok(Some(s)) = self.child.try_wait()
        {
            self.exited = Some(s);
        }
        self.exited.is_none()
    }

    /// Waits for exit up to `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.exited = Some(s);
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `f` every 20 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Asserts that `path` holds exactly `want`.
pub fn assert_file(path: &Path, want: &[u8]) {
    let got = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        got == want,
        "{}: {} bytes on disk, expected {} (content differs)",
        path.display(),
        got.len(),
        want.len()
    );
}

/// A direct agent with short timeouts, for tests that drive the library.
pub fn test_agent() -> ureq::Agent {
    spoolfetch::http::build_agent(&spoolfetch::http::NetOptions {
        route: spoolfetch::http::Route::Direct,
        ca_file: None,
        timeout: Duration::from_secs(2),
        user_agent: "test".into(),
        max_idle_per_host: 8,
    })
    .expect("build the agent")
}

/// A download task for the library-level tests: one URL into `dest`, no
/// headers, limits or checks, its events dropped. Tests set what they
/// need on top (`DownloadTask { reply, ..download_task(…) }`).
pub fn download_task(url: &str, dest: &Path, timeout: Duration) -> spoolfetch::download::DownloadTask {
    spoolfetch::download::DownloadTask {
        job: 1,
        item: 0,
        url: url.to_string(),
        also: Vec::new(),
        refreshable: false,
        dest: dest.to_path_buf(),
        server_name: false,
        names: None,
        headers: Vec::new().into(),
        forward_headers: false,
        expected_size: None,
        md5: None,
        inline: None,
        copy_from: None,
        timeout,
        min_speed: 1024,
        min_speed_time: Duration::from_secs(30),
        flags: std::sync::Arc::new(spoolfetch::job::JobFlags::default()),
        limits: Vec::new().into(),
        reply: crossbeam_channel::unbounded().0,
    }
}
