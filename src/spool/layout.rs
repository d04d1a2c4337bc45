//! Folder names and path builders of a spool.
//!
//! ```text
//! DIR/*.json                          dropped job files (producers write, then rename)
//! DIR/spoolfetch.json                 optional configuration (never taken as a job)
//! DIR/work/<instance>/<tid>.<name>.json   claimed jobs, owned by that instance
//! DIR/state/<tid>/                    status.json, checkpoint.json, journal
//! DIR/control/<tid>.json              pending pause/resume/cancel request
//! DIR/retry/<tid>.<name>.json         jobs requeued by `retry`, keeping their TID
//! DIR/tids/<tid>                      TID reservations (created with O_EXCL)
//! DIR/done/<tid>.<name>.json          finished jobs
//! DIR/failed/<tid>.<name>.json        failed, rejected or cancelled jobs
//! DIR/failed/<tid>.<name>.json.reason the reason, one line
//! ```

use std::io;
use std::path::{Path, PathBuf};

use crate::job::Tid;

/// The configuration file that may live in the spool; it is never a job.
pub const CONFIG_FILE_NAME: &str = "spoolfetch.json";

/// A spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    /// The spool's root folder.
    root: PathBuf,
}

impl Spool {
    /// A spool rooted at `root` (nothing is created yet).
    pub fn new(root: impl Into<PathBuf>) -> Spool {
        Spool { root: root.into() }
    }

    /// The root folder, where job files are dropped.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Claimed jobs of one instance.
    pub fn work_dir(&self, instance: &str) -> PathBuf {
        self.root.join("work").join(instance)
    }

    /// Parent of every instance's work folder.
    pub fn work_root(&self) -> PathBuf {
        self.root.join("work")
    }

    /// Per-job state (status, checkpoint, journal).
    pub fn state_dir(&self, tid: Tid) -> PathBuf {
        self.root.join("state").join(tid.to_string())
    }

    /// Creates a job's state folder readable by the owner only (mode
    /// 0700), or makes an existing one so (one created by an older
    /// version, or recreated after its old content was set aside): its
    /// checkpoint holds the job's URLs and headers. Returns its path.
    pub fn ensure_state_dir(&self, tid: Tid) -> io::Result<PathBuf> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = self.state_dir(tid);
        std::fs::create_dir_all(self.state_root())?;
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let meta = std::fs::symlink_metadata(&dir)?;
                if !meta.is_dir() {
                    return Err(io::Error::other(format!("{} is not a folder", dir.display())));
                }
                if meta.permissions().mode() & 0o077 != 0 {
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
                }
            }
            Err(e) => return Err(e),
        }
        Ok(dir)
    }

    /// Parent of every job's state folder.
    pub fn state_root(&self) -> PathBuf {
        self.root.join("state")
    }

    /// Pending control requests.
    pub fn control_dir(&self) -> PathBuf {
        self.root.join("control")
    }

    /// Jobs requeued by `retry`.
    pub fn retry_dir(&self) -> PathBuf {
        self.root.join("retry")
    }

    /// TID reservations.
    pub fn tids_dir(&self) -> PathBuf {
        self.root.join("tids")
    }

    /// Finished jobs.
    pub fn done_dir(&self) -> PathBuf {
        self.root.join("done")
    }

    /// Failed, rejected and cancelled jobs.
    pub fn failed_dir(&self) -> PathBuf {
        self.root.join("failed")
    }

    /// Creates the spool folder (and its parents) with the shared
    /// folders of the layout: what `spoolfetch init` does.
    pub fn init(&self) -> io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        for d in [
            self.work_root(),
            self.state_root(),
            self.control_dir(),
            self.retry_dir(),
            self.tids_dir(),
            self.done_dir(),
            self.failed_dir(),
        ] {
            std::fs::create_dir_all(&d)?;
        }
        Ok(())
    }

    /// Creates every folder a daemon of `instance` needs inside the spool
    /// folder, which must exist: a missing one (an unmounted share) is
    /// never created here, only by [`Spool::init`].
    pub fn ensure(&self, instance: &str) -> io::Result<()> {
        if !self.root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} does not exist or is not a folder", self.root.display()),
            ));
        }
        for d in [
            self.work_dir(instance),
            self.state_root(),
            self.control_dir(),
            self.retry_dir(),
            self.tids_dir(),
            self.done_dir(),
            self.failed_dir(),
        ] {
            std::fs::create_dir_all(&d)?;
        }
        Ok(())
    }

    /// The file name a claimed job carries: `<tid>.<original name>`. An
    /// original name too long for that (and for the `.reason` file beside
    /// it in `failed/`) is cut, keeping its extension, so that even a
    /// 255-byte job file name can be claimed and ended.
    pub fn claimed_name(tid: Tid, original: &str) -> String {
        let prefix = format!("{tid}.");
        let room = 255 - ".reason".len() - prefix.len();
        format!("{prefix}{}", crate::naming::truncate_keeping_ext(original, room))
    }

    /// Splits a claimed file name into its TID and original name.
    pub fn parse_claimed_name(name: &str) -> Option<(Tid, &str)> {
        let (tid, rest) = name.split_once('.')?;
        let tid = tid.parse().ok()?;
        (!rest.is_empty()).then_some((tid, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_names_round_trip() {
        let n = Spool::claimed_name(42, "my.job.json");
        assert_eq!(n, "42.my.job.json");
        assert_eq!(Spool::parse_claimed_name(&n), Some((42, "my.job.json")));
        assert_eq!(Spool::parse_claimed_name("x.json"), None);
        let long = format!("{}.json", "é".repeat(125));
        let n = Spool::claimed_name(123_456, &long);
        assert!(n.len() + ".reason".len() <= 255, "{}", n.len());
        assert!(n.starts_with("123456.éé") && n.ends_with("éé.json"));
        assert_eq!(
            Spool::claimed_name(1, Spool::parse_claimed_name(&n).expect("parses").1),
            format!("1.{}", &n[7..])
        );
    }
}
