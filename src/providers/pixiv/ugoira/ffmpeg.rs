//! Animated WebP through an external `ffmpeg` (no well-kept pure-Rust
//! animated WebP encoder exists).
//!
//! The frames are copied out of the zip, byte for byte under names of our
//! own (`000000.jpg`, …; never the zip's names), into a temporary folder
//! beside the output, with an ffconcat file that gives each its duration.
//! The child gets no stdin, its stderr goes to a file in that folder, and it
//! is killed when it runs past [`FFMPEG_TIMEOUT`].
//!
//! ffmpeg's own timing is not exact (it rounds to its input time base and
//! gives the last frame one tick), so after it exits the duration field of
//! each `ANMF` chunk is overwritten in place with the frame's delay, and a
//! frame count other than the plan's is an error. Needs ffmpeg 5.1 or later
//! (`-fps_mode`).

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::ConvertError;
use super::decode::Kind;
use super::output::{TempDir, TempOut};
use super::source::UgoiraZip;

/// Longest an ffmpeg run may take before it is killed.
pub(crate) const FFMPEG_TIMEOUT: Duration = Duration::from_secs(600);

/// How much of ffmpeg's stderr an error message quotes (its end).
const STDERR_TAIL: u64 = 1000;

/// Returns true if and only if an `ffmpeg` executable is on `PATH`.
///
/// Looked up once per process: installing ffmpeg later needs a restart.
pub fn ffmpeg_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| find_executable("ffmpeg", std::env::var_os("PATH").as_deref()).is_some())
}

/// The first file called `name` with an execute bit in the folders of
/// `path` (a `PATH`-style list).
fn find_executable(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path?)
        .map(|dir| dir.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Converts every planned frame of `src` to an endlessly looping animated
/// WebP at `out`, through ffmpeg.
pub(crate) fn write_webp(src: &mut UgoiraZip, out: &Path) -> Result<(), ConvertError> {
    if !ffmpeg_available() {
        return Err(ConvertError::FfmpegMissing);
    }
    let dir = TempDir::create(out)?;
    let list = extract(src, dir.path())?;
    let tmp = TempOut::reserve(out)?;
    let log = dir.path().join("ffmpeg.log");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-y", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i"])
        .arg(&list)
        .args(["-fps_mode", "passthrough", "-c:v", "libwebp", "-lossless", "0", "-q:v", "90", "-loop", "0"])
        .args(["-f", "webp"])
        .arg(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log)?);
    let status = match run_with_timeout(&mut cmd, FFMPEG_TIMEOUT) {
        Ok(Some(status)) => status,
        Ok(None) => {
            return Err(ConvertError::Ffmpeg(format!("killed after {} s", FFMPEG_TIMEOUT.as_secs())));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ConvertError::FfmpegMissing),
        Err(e) => return Err(ConvertError::Io(e)),
    };
    if !status.success() {
        return Err(ConvertError::Ffmpeg(format!("{status}: {}", tail(&log))));
    }
    let delays: Vec<u32> = src.plan().iter().map(|p| p.delay).collect();
    set_webp_durations(tmp.path(), &delays)?;
    tmp.commit()
}

/// Writes the planned frames into `dir` as `000000.<ext>`, … and an
/// ffconcat list of them with their durations; returns the list's path.
///
/// `option framerate 1000` gives each image a 1 ms time base, so that short
/// delays keep distinct timestamps and no frame is dropped or merged.
fn extract(src: &mut UgoiraZip, dir: &Path) -> Result<PathBuf, ConvertError> {
    let mut list = String::from("ffconcat version 1.0\n");
    for i in 0..src.plan().len() {
        let bytes = src.read(i)?;
        let p = &src.plan()[i];
        let kind = Kind::sniff(&bytes)
            .ok_or_else(|| ConvertError::frame(&p.file, "not a jpeg, png or gif image"))?;
        let name = format!("{i:06}.{}", kind.extension());
        fs::write(dir.join(&name), &bytes)?;
        // At least 1 ms: equal timestamps would merge frames.
        let ms = p.delay.max(1);
        list.push_str(&format!(
            "file '{name}'\noption framerate 1000\nduration {}.{:03}\n",
            ms / 1000,
            ms % 1000
        ));
    }
    let path = dir.join("frames.ffconcat");
    let mut f = File::create(&path)?;
    f.write_all(list.as_bytes())?;
    Ok(path)
}

/// Largest duration an `ANMF` chunk can hold (24 bits of milliseconds).
const WEBP_MAX_DURATION: u32 = 0xFF_FFFF;

/// Overwrites the duration of the `i`th `ANMF` chunk of the WebP at `path`
/// with `delays[i]`, in place, reading only chunk headers.
///
/// A file with as many `ANMF` chunks as delays, or a still image for one
/// delay, is accepted; anything else is an [`ConvertError::Ffmpeg`] error.
pub(crate) fn set_webp_durations(path: &Path, delays: &[u32]) -> Result<(), ConvertError> {
    let bad = |what: &str| ConvertError::Ffmpeg(format!("wrote a webp that {what}"));
    let mut f = fs::OpenOptions::new().read(true).write(true).open(path)?;
    let len = f.metadata()?.len();
    let mut head = [0u8; 12];
    f.read_exact(&mut head).map_err(|_| bad("is truncated"))?;
    if &head[..4] != b"RIFF" || &head[8..] != b"WEBP" {
        return Err(bad("is not a webp"));
    }
    let (mut at, mut count) = (12u64, 0usize);
    while at + 8 <= len {
        let mut chunk = [0u8; 8];
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(&mut chunk)?;
        let size = u64::from(u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]));
        if &chunk[..4] == b"ANMF" {
            let Some(&delay) = delays.get(count) else {
                return Err(bad(&format!("has more than the {} frames asked for", delays.len())));
            };
            if size < 16 {
                return Err(bad("has a truncated ANMF chunk"));
            }
            f.seek(SeekFrom::Start(at + 8 + 12))?;
            f.write_all(&delay.min(WEBP_MAX_DURATION).to_le_bytes()[..3])?;
            count += 1;
        }
        at += 8 + size + (size & 1);
    }
    if count != delays.len() && !(count == 0 && delays.len() == 1) {
        return Err(bad(&format!("has {count} frames, not {}", delays.len())));
    }
    Ok(())
}

/// Runs `cmd`, waiting at most `timeout`; on timeout kills and reaps the
/// child and returns `None`.
pub(crate) fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(5);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            // Already exited between try_wait and kill is fine: wait reaps.
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(200));
    }
}

/// The last [`STDERR_TAIL`] bytes of a log file, or a note that it is
/// empty or unreadable.
fn tail(path: &Path) -> String {
    let read = || -> io::Result<String> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(STDERR_TAIL)))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).trim().to_owned())
    };
    match read() {
        Ok(s) if s.is_empty() => "no message".into(),
        Ok(s) => s,
        Err(e) => format!("no message ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::pixiv::ugoira::source::Limits;
    use crate::providers::pixiv::ugoira::testutil::{frames, jpeg, write_zip};

    #[test]
    fn finds_executables_on_a_path_list() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("ffmpeg");
        fs::write(&exe, "#!/bin/sh\n").expect("write");
        let joined = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).expect("join");
        assert_eq!(find_executable("ffmpeg", Some(&joined)), None, "not executable yet");
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(find_executable("ffmpeg", Some(&joined)), Some(exe));
        assert_eq!(find_executable("ffmpeg", None), None);
        fs::create_dir(dir.path().join("dir")).expect("mkdir");
        assert_eq!(find_executable("dir", Some(&joined)), None, "a folder is not an executable");
    }

    #[test]
    fn timeout_kills_the_child() {
        let started = Instant::now();
        let got =
            run_with_timeout(Command::new("sleep").arg("30"), Duration::from_millis(200)).expect("spawn");
        assert!(got.is_none(), "must report the timeout");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        let got = run_with_timeout(&mut Command::new("true"), Duration::from_secs(30)).expect("spawn");
        assert!(got.is_some_and(|s| s.success()));
    }

    #[test]
    fn concat_list_has_durations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let z = dir.path().join("u.zip");
        let j = jpeg(8, 8, 0);
        write_zip(&z, &[("a.jpg", &j), ("b.jpg", &j)], false);
        let mut src =
            UgoiraZip::open(&z, &frames(&[("a.jpg", 0), ("b.jpg", 1250)]), Limits::DEFAULT).expect("open");
        let out = dir.path().join("frames");
        fs::create_dir(&out).expect("mkdir");
        let list = extract(&mut src, &out).expect("extract");
        assert_eq!(
            fs::read_to_string(list).expect("read"),
            "ffconcat version 1.0\nfile '000000.jpg'\noption framerate 1000\nduration 0.001\n\
             file '000001.jpg'\noption framerate 1000\nduration 1.250\n"
        );
        assert_eq!(fs::read(out.join("000001.jpg")).expect("frame"), j);
    }

    /// A fake animated WebP: an odd-sized chunk (padding), then one ANMF
    /// chunk per duration.
    fn fake_webp(durations: &[u32]) -> Vec<u8> {
        let mut body = b"WEBP".to_vec();
        body.extend_from_slice(b"ICCP\x03\0\0\0abc\0");
        for d in durations {
            body.extend_from_slice(b"ANMF\x10\0\0\0");
            body.extend_from_slice(&[0; 12]);
            body.extend_from_slice(&d.to_le_bytes()[..3]);
            body.push(0);
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn webp_durations_are_patched_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.webp");
        fs::write(&p, fake_webp(&[40, 40, 1])).expect("write");
        set_webp_durations(&p, &[60, 20_000_000, 15]).expect("patch");
        assert_eq!(fs::read(&p).expect("read"), fake_webp(&[60, WEBP_MAX_DURATION, 15]));
        assert!(matches!(set_webp_durations(&p, &[1, 2]), Err(ConvertError::Ffmpeg(_))), "too many frames");
        assert!(matches!(set_webp_durations(&p, &[1, 2, 3, 4]), Err(ConvertError::Ffmpeg(_))), "too few");
        fs::write(&p, b"RIFF\0\0\0\0WEBPVP8 ").expect("write");
        set_webp_durations(&p, &[100]).expect("a still image for one frame");
        fs::write(&p, b"GIF89a").expect("write");
        assert!(matches!(set_webp_durations(&p, &[100]), Err(ConvertError::Ffmpeg(_))));
    }
}
