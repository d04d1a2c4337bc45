//! An external signer: a program the user names (`douyin.signer`) that
//! computes the signature when Douyin has changed its algorithm and this
//! release has not caught up.
//!
//! Owns the protocol (docs/douyin.md, "External signer"): the program is
//! run directly, without a shell, with two lines on standard input, the
//! exact query and the exact User-Agent; it prints the signature value on
//! one line on standard output and exits 0. Invariants: it never runs
//! longer than its time limit (it gets its own process group, and the
//! whole group is killed, so a shell script's children die with it);
//! never more than `max_output` bytes of its output are kept; whatever it
//! prints is checked to be one line of characters that go into a query
//! unencoded, so the signed query is still the exact bytes sent.

use std::fmt;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a signer may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much standard output a signer may write by default (an A-Bogus
/// value is under 200 bytes).
pub const DEFAULT_MAX_OUTPUT: usize = 16 * 1024;
/// How much of its standard error is kept for the error message.
const STDERR_KEPT: usize = 2048;

/// Why the external signer gave no signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerError {
    /// The query or User-Agent has a line break, which the one-line-each
    /// protocol cannot carry.
    BadInput(&'static str),
    /// The program could not be started.
    Spawn {
        /// The program.
        program: String,
        /// The system's reason.
        reason: String,
    },
    /// It was still running at the time limit, and was killed.
    Timeout(Duration),
    /// It wrote more than this many bytes, and was killed.
    TooMuchOutput(usize),
    /// It exited unsuccessfully.
    Failed {
        /// How it ended (`exit status: 3`, `signal: 9`, …).
        status: String,
        /// The start of its standard error.
        stderr: String,
    },
    /// It exited 0 but printed no usable signature.
    BadOutput(String),
    /// Talking to it failed.
    Io(String),
}

impl fmt::Display for SignerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignerError::BadInput(what) => {
                write!(f, "the {what} has a line break and cannot be sent to the signer")
            }
            SignerError::Spawn { program, reason } => write!(f, "cannot run signer {program}: {reason}"),
            SignerError::Timeout(t) => {
                write!(f, "the signer took longer than {:.1} s and was killed", t.as_secs_f64())
            }
            SignerError::TooMuchOutput(n) => write!(f, "the signer wrote more than {n} bytes and was killed"),
            SignerError::Failed { status, stderr } if stderr.is_empty() => {
                write!(f, "the signer failed ({status})")
            }
            SignerError::Failed { status, stderr } => write!(f, "the signer failed ({status}): {stderr}"),
            SignerError::BadOutput(why) => write!(f, "the signer's output is not a signature: {why}"),
            SignerError::Io(e) => write!(f, "talking to the signer failed: {e}"),
        }
    }
}

impl std::error::Error for SignerError {}

/// A signer program and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalSigner {
    /// The program (a path, or a name looked up in `PATH`).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The time limit.
    pub timeout: Duration,
    /// The most standard output kept.
    pub max_output: usize,
}

impl ExternalSigner {
    /// A signer with the default limits.
    pub fn new(program: impl Into<PathBuf>, args: Vec<String>) -> ExternalSigner {
        ExternalSigner {
            program: program.into(),
            args,
            timeout: DEFAULT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
        }
    }

    /// The signature for `query` and `user_agent` (both exactly as sent).
    pub fn sign(&self, query: &str, user_agent: &str) -> Result<String, SignerError> {
        for (text, what) in [(query, "query"), (user_agent, "user agent")] {
            if text.contains(['\n', '\r']) {
                return Err(SignerError::BadInput(what));
            }
        }
        let deadline = Instant::now() + self.timeout;
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that a timeout kills what it started too.
            .process_group(0)
            .spawn()
            .map_err(|e| SignerError::Spawn {
                program: self.program.display().to_string(),
                reason: e.to_string(),
            })?;
        let input = format!("{query}\n{user_agent}\n");
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            kill(&mut child);
            return Err(SignerError::Io("no pipes to the signer".into()));
        };
        // A thread per pipe, so that neither side can block the other; a
        // signer that never reads its input only makes the write fail.
        thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let out = bounded_reader(stdout, self.max_output, false);
        let err = bounded_reader(stderr, STDERR_KEPT, true);

        let left = deadline.saturating_duration_since(Instant::now());
        let stdout = match out.recv_timeout(left) {
            Ok(Piped::Done(bytes)) => bytes,
            Ok(Piped::Over) => {
                kill(&mut child);
                return Err(SignerError::TooMuchOutput(self.max_output));
            }
            Ok(Piped::Failed(e)) => {
                kill(&mut child);
                return Err(SignerError::Io(e));
            }
            Err(_) => {
                kill(&mut child);
                return Err(SignerError::Timeout(self.timeout));
            }
        };
        let status = match wait_until(&mut child, deadline) {
            Ok(Some(status)) => status,
            Ok(None) => {
                kill(&mut child);
                return Err(SignerError::Timeout(self.timeout));
            }
            Err(e) => {
                kill(&mut child);
                return Err(SignerError::Io(e.to_string()));
            }
        };
        if !status.success() {
            let stderr = match err.recv_timeout(Duration::from_millis(500)) {
                Ok(Piped::Done(b)) => String::from_utf8_lossy(&b).trim().to_string(),
                _ => String::new(),
            };
            return Err(SignerError::Failed { status: status.to_string(), stderr });
        }
        signature_from(&stdout)
    }
}

/// What a pipe reader saw.
enum Piped {
    /// End of file, with everything read.
    Done(Vec<u8>),
    /// More than the limit.
    Over,
    /// A read error.
    Failed(String),
}

/// Reads `pipe` to its end on a thread, keeping at most `limit` bytes; past
/// the limit it reports [`Piped::Over`] at once, or with `drain` keeps
/// reading so that the writer is never blocked (stderr is only a message).
fn bounded_reader(
    mut pipe: impl std::io::Read + Send + 'static,
    limit: usize,
    drain: bool,
) -> mpsc::Receiver<Piped> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        let result = loop {
            match pipe.read(&mut buf) {
                Ok(0) => break Piped::Done(kept),
                Ok(n) => {
                    let room = limit.saturating_sub(kept.len());
                    if n > room && !drain {
                        break Piped::Over;
                    }
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Piped::Failed(e.to_string()),
            }
        };
        let _ = tx.send(result);
    });
    rx
}

/// Waits for the child until `deadline`; `None` if it is still running.
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Kills the child's whole process group and reaps the child.
fn kill(child: &mut Child) {
    let pid = rustix::process::Pid::from_child(child);
    if rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// The signature in a signer's output: one non-empty line (a final line
/// break allowed, `\r\n` too) of characters that a query carries as they
/// are.
fn signature_from(out: &[u8]) -> Result<String, SignerError> {
    let text = std::str::from_utf8(out).map_err(|_| SignerError::BadOutput("not UTF-8".into()))?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(SignerError::BadOutput("empty".into()));
    }
    if line.contains(['\n', '\r']) {
        return Err(SignerError::BadOutput("more than one line".into()));
    }
    if let Some(c) = line.chars().find(|c| !(c.is_ascii_alphanumeric() || "-._~+/=%".contains(*c))) {
        return Err(SignerError::BadOutput(format!("{c:?} cannot go into the query unencoded")));
    }
    Ok(line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A signer script in its own temporary folder (kept alive with it).
    fn script(body: &str) -> (tempfile::TempDir, ExternalSigner) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("signer.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut s = ExternalSigner::new(&path, Vec::new());
        s.timeout = Duration::from_secs(5);
        (dir, s)
    }

    #[test]
    fn reads_both_lines_and_returns_the_printed_signature() {
        let (_d, s) = script(r#"read q; read ua; echo "sig-${#q}-${#ua}-$1""#);
        assert_eq!(s.sign("a=1&b=2", "Mozilla/5.0 X").as_deref(), Ok("sig-7-13-"));
        let s = ExternalSigner { args: vec!["v2".into()], ..s };
        assert_eq!(s.sign("a=1", "UA").as_deref(), Ok("sig-3-2-v2"));
    }

    #[test]
    fn the_exact_bytes_reach_the_signer() {
        let (d, s) = script(r#"cat > "$(dirname "$0")/seen"; echo ok"#);
        let q = "device_platform=webapp&msToken=ab+c/d==";
        assert_eq!(s.sign(q, "UA 1.0").as_deref(), Ok("ok"));
        let seen = std::fs::read_to_string(d.path().join("seen")).expect("seen");
        assert_eq!(seen, format!("{q}\nUA 1.0\n"));
    }

    #[test]
    fn a_signer_that_ignores_its_input_still_works() {
        let (_d, s) = script("echo 'DFSzswVY4/iANJXJtmWx-e9WX7rB'");
        assert_eq!(s.sign(&"q".repeat(200_000), "UA").as_deref(), Ok("DFSzswVY4/iANJXJtmWx-e9WX7rB"));
    }

    #[test]
    fn a_slow_signer_is_killed_at_the_limit_with_its_children() {
        // `sleep` is a child of the shell: killing only the shell would
        // leave it holding the pipe open for 30 s.
        let (_d, mut s) = script("sleep 30; echo late");
        s.timeout = Duration::from_millis(300);
        let t = Instant::now();
        assert_eq!(s.sign("a=1", "UA"), Err(SignerError::Timeout(Duration::from_millis(300))));
        assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
        // Closing its output early does not buy time either.
        let (_d, mut s) = script("exec >&-; sleep 30");
        s.timeout = Duration::from_millis(300);
        assert_eq!(s.sign("a=1", "UA"), Err(SignerError::Timeout(Duration::from_millis(300))));
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_signer_that_writes_megabytes_is_cut_off() {
        let (_d, s) = script("head -c 8000000 /dev/zero | tr '\\0' a; sleep 30");
        let t = Instant::now();
        assert_eq!(s.sign("a=1", "UA"), Err(SignerError::TooMuchOutput(DEFAULT_MAX_OUTPUT)));
        assert!(t.elapsed() < Duration::from_secs(5));
        // Megabytes on stderr are drained, not an obstacle.
        let (_d, s) = script("head -c 3000000 /dev/zero >&2; echo fine");
        assert_eq!(s.sign("a=1", "UA").as_deref(), Ok("fine"));
    }

    #[test]
    fn a_failing_signer_reports_its_status_and_stderr() {
        let (_d, s) = script("echo 'no key for this UA' >&2; exit 3");
        let err = s.sign("a=1", "UA").expect_err("fails");
        assert_eq!(
            err,
            SignerError::Failed { status: "exit status: 3".into(), stderr: "no key for this UA".into() }
        );
        assert!(err.to_string().contains("no key for this UA"));
    }

    #[test]
    fn unusable_output_is_refused() {
        for (body, why) in [
            ("true", "empty"),
            ("printf 'a\\nb\\n'", "more than one line"),
            ("echo 'a b'", "' ' cannot go into the query unencoded"),
            ("echo 'a&X-Bogus=b'", "'&' cannot go into the query unencoded"),
            ("printf '\\377\\n'", "not UTF-8"),
        ] {
            let (_d, s) = script(body);
            assert_eq!(s.sign("a=1", "UA"), Err(SignerError::BadOutput(why.into())), "{body}");
        }
        let (_d, s) = script("printf 'abc=\\r\\n'");
        assert_eq!(s.sign("a=1", "UA").as_deref(), Ok("abc="));
    }

    #[test]
    fn bad_input_and_missing_programs_are_typed_errors() {
        let (_d, s) = script("echo x");
        assert_eq!(s.sign("a=1\n", "UA"), Err(SignerError::BadInput("query")));
        assert_eq!(s.sign("a=1", "U\rA"), Err(SignerError::BadInput("user agent")));
        let s = ExternalSigner::new("/nonexistent/signer", Vec::new());
        assert!(matches!(s.sign("a=1", "UA"), Err(SignerError::Spawn { .. })));
    }
}
