//! Which job a state folder belongs to.
//!
//! A checkpoint is only ever replayed for the job it was written for: the
//! same TID and the same job file bytes. A deleted `tids/` folder (which
//! can hand out an old TID again) or a job file edited before `retry`
//! must never make a job adopt someone else's progress.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::durable::atomic_write;
use crate::job::Tid;

/// The file in `state/<tid>/` naming the job the folder belongs to.
pub const IDENTITY_FILE: &str = "identity.json";

/// A job's identity: its TID and the digest of its claimed job file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobIdentity {
    /// The TID.
    pub tid: Tid,
    /// SHA-256 of the job file's bytes, lowercase hex.
    pub sha256: String,
}

impl JobIdentity {
    /// The identity of job `tid` whose file holds `bytes`.
    pub fn new(tid: Tid, bytes: &[u8]) -> JobIdentity {
        let digest = Sha256::digest(bytes);
        let sha256 = digest.iter().map(|b| format!("{b:02x}")).collect();
        JobIdentity { tid, sha256 }
    }
}

/// What [`bind_identity`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// The folder is new, or already belonged to this job.
    Fresh,
    /// The folder had no identity (written by an older spoolfetch) and
    /// was adopted.
    Adopted,
    /// The folder belonged to another job and was moved to this path.
    SetAside(PathBuf),
}

/// Makes `dir` (a job's state folder) belong to `id`.
///
/// A folder whose identity differs is renamed to `<dir>.stale-<unix
/// time>` and a new, empty one is started, so its checkpoint is never
/// replayed. A folder without identity is adopted: checkpoints written
/// before identities existed must still resume.
pub fn bind_identity(dir: &Path, id: &JobIdentity) -> io::Result<Binding> {
    let path = dir.join(IDENTITY_FILE);
    let mut outcome = Binding::Fresh;
    match fs::read(&path) {
        Ok(bytes) => {
            let same = serde_json::from_slice::<JobIdentity>(&bytes).is_ok_and(|old| old == *id);
            if same {
                return Ok(Binding::Fresh);
            }
            let aside = stale_name(dir);
            fs::rename(dir, &aside)?;
            if let Some(parent) = dir.parent() {
                crate::durable::fsync_dir(parent)?;
            }
            outcome = Binding::SetAside(aside);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if dir.is_dir() && fs::read_dir(dir)?.next().is_some() {
                outcome = Binding::Adopted;
            }
        }
        Err(e) => return Err(e),
    }
    fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec(id).map_err(io::Error::other)?;
    atomic_write(&path, &bytes)?;
    Ok(outcome)
}

/// A free name beside `dir` for a set-aside state folder.
fn stale_name(dir: &Path) -> PathBuf {
    let base = format!("{}.stale-{}", dir.display(), crate::job::unix_now());
    let mut candidate = PathBuf::from(&base);
    let mut n = 1u32;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{base}-{n}"));
        n = n.saturating_add(1);
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_adopts_and_sets_aside() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("7");
        let a = JobIdentity::new(7, b"{\"a\":1}");
        assert_eq!(bind_identity(&dir, &a).expect("bind"), Binding::Fresh);
        fs::write(dir.join("checkpoint.json"), "{}").expect("write");
        assert_eq!(bind_identity(&dir, &a).expect("bind"), Binding::Fresh);
        assert!(dir.join("checkpoint.json").exists());

        let b = JobIdentity::new(7, b"{\"a\":2}");
        let Binding::SetAside(aside) = bind_identity(&dir, &b).expect("bind") else {
            panic!("a different job must not adopt the folder")
        };
        assert!(aside.join("checkpoint.json").exists());
        assert!(!dir.join("checkpoint.json").exists());

        let old = root.path().join("8");
        fs::create_dir_all(&old).expect("mkdir");
        fs::write(old.join("checkpoint.json"), "{}").expect("write");
        assert_eq!(bind_identity(&old, &JobIdentity::new(8, b"x")).expect("bind"), Binding::Adopted);
        assert!(old.join(IDENTITY_FILE).exists());
    }
}
