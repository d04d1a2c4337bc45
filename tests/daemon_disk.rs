//! A full spool disk, as a user meets it: the job whose state cannot be
//! written stops (its status does not stay "running"), its slot is free,
//! and once there is room again `retry` continues it in the same daemon,
//! keeping every completed file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::fileserver::{Fault, FileServer};
use crate::util::{Env, assert_file, bytes, wait_until};

/// A small tmpfs mounted over a folder, unmounted on drop.
struct Tmpfs {
    /// The mount point.
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (for example `"1m"`) on `dir`, or says why
    /// it cannot.
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs { dir: dir.to_path_buf() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Fills the filesystem of `path` by writing it until the disk says no.
fn fill(path: &Path) -> fs::File {
    let mut f = fs::File::create(path).expect("filler");
    for chunk in [64 * 1024, 4096, 512, 1] {
        let buf = vec![0xA5u8; chunk];
        while f.write_all(&buf).is_ok() {}
    }
    let _ = f.sync_all();
    f
}

#[test]
fn a_full_spool_disk_stops_the_job_and_retry_continues_it_without_a_restart() {
    let env = Env::new();
    let _mount = match Tmpfs::mount(&env.spool, "2m") {
        Ok(m) => m,
        Err(why) => {
            println!("skipped: the spool cannot be put on a small tmpfs here ({why})");
            return;
        }
    };
    env.config(json!({"timeout_secs": 10}));
    let server = FileServer::start();
    let files = 260u64;
    let mut urls = Vec::new();
    for i in 0..files {
        let path = format!("/f{i:03}.bin");
        server.add(&path, bytes(i, 1_000 + i as usize));
        if (4..8).contains(&i) {
            // These hold every download thread while the disk fills up;
            // the many files after them then need more journal than the
            // full disk has room for.
            server.add_fault(&path, Fault::Stall { after: 10, dur: Duration::from_secs(3) }, 1);
        }
        urls.push(server.url(&path));
    }
    env.drop_job("fill", &json!({"type": "http.files", "urls": urls}));
    let dir = env.job_dir("fill");
    let mut d = env.daemon(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || (0..4).all(|i| dir.join(format!("f{i:03}.bin")).exists())),
        "no progress:\n{}",
        d.log()
    );
    let filler_path = env.spool.join("filler");
    let filler = fill(&filler_path);

    // The job stops: its status says failed, with the reason, although
    // the disk is still full.
    let stopped = wait_until(Duration::from_secs(20), || {
        env.status(1).is_some_and(|s| s.state.as_str() == "failed" && !s.running)
    });
    let s = env.status(1).expect("status");
    assert!(stopped, "status {s:?}\n{}", d.log());
    let reason = s.error.clone().unwrap_or_default();
    assert!(reason.contains("cannot write the job's state") && reason.contains("retry 1"), "{reason}");
    assert!(d.running(), "the daemon died:\n{}", d.log());
    // `cancel --wait` returns at once: the job has ended.
    let t = Instant::now();
    let out = env.cli(&["cancel", "1", "--wait"]);
    assert!(t.elapsed() < Duration::from_secs(10), "cancel --wait took {:?}", t.elapsed());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already ended"), "{out:?}");

    // The job file is where `retry` looks, although its reason could not
    // be written yet.
    assert!(
        wait_until(Duration::from_secs(5), || env.files_in("failed").contains(&"1.fill.json".to_string())),
        "the job file did not reach failed/: {:?}\n{}",
        env.files_in("work/a"),
        d.log()
    );

    // Room again: `retry` at once continues the job in the same daemon.
    drop(filler);
    fs::remove_file(&filler_path).expect("remove filler");
    let out = env.cli(&["retry", "1"]);
    assert!(out.status.success(), "{out:?}");
    let done =
        wait_until(Duration::from_secs(40), || env.status(1).is_some_and(|s| s.state.as_str() == "done"));
    assert!(done, "status {:?}\n{}", env.status(1), d.log());
    assert!(d.running(), "the daemon restarted or died:\n{}", d.log());
    for i in 0..files {
        let path = format!("/f{i:03}.bin");
        assert_file(&dir.join(format!("f{i:03}.bin")), &bytes(i, 1_000 + i as usize));
        assert!(server.hits(&path) <= 2, "{path} fetched {} times", server.hits(&path));
    }
    assert_eq!(env.files_in("done"), vec!["1.fill.json"]);
    let s = env.status(1).expect("status");
    assert_eq!((s.done, s.failed), (files, 0));
    d.term();
    assert!(d.wait(Duration::from_secs(10)).is_some_and(|s| s.success()), "{}", d.log());
}
