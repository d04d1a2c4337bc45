//! A token file: one JSON record, replaced atomically, mode 0600.
//!
//! The file is the only copy of a refresh token that outlives the process,
//! so it goes through [`crate::durable::atomic_write_mode`]: a crash leaves
//! the old record or the new one, and no other user can read either, not
//! even for the instant before a chmod.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::durable::atomic_write_mode;

/// The file's identity as last seen: a new record (a rename over the old
/// file) changes at least the inode.
pub type Stamp = (SystemTime, u64, u64);

/// Where one account's refresh token is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStore {
    /// The token file.
    path: PathBuf,
}

/// A record that could not be saved.
#[derive(Debug)]
pub struct StoreError {
    /// The token file.
    pub path: PathBuf,
    /// What failed.
    pub source: io::Error,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot save the refresh token in {}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl TokenStore {
    /// The store kept in `path`.
    pub fn new(path: impl Into<PathBuf>) -> TokenStore {
        TokenStore { path: path.into() }
    }

    /// The token file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the record durably, creating the folder if needed; when
    /// this returns `Ok`, a restart finds `record`.
    pub fn save<T: Serialize>(&self, record: &T) -> Result<(), StoreError> {
        let err = |source| StoreError { path: self.path.clone(), source };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let body = serde_json::to_vec_pretty(record).map_err(|e| err(io::Error::other(e)))?;
        atomic_write_mode(&self.path, &body, 0o600).map_err(err)
    }

    /// The record, if the file exists and parses.
    pub fn load<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&std::fs::read(&self.path).ok()?).ok()
    }

    /// The file's identity, to notice a record saved by another process.
    pub fn stamp(&self) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&self.path).ok()?;
        Some((m.modified().ok()?, m.len(), m.ino()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_private_and_survives_a_reload() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TokenStore::new(dir.path().join("sub").join("token.json"));
        assert_eq!(store.load::<Vec<String>>(), None);
        assert_eq!(store.stamp(), None);
        store.save(&vec!["r1".to_string()]).expect("save");
        let mode = std::fs::metadata(store.path()).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
        let first = store.stamp();
        store.save(&vec!["r2".to_string()]).expect("save again");
        assert_eq!(store.load::<Vec<String>>(), Some(vec!["r2".to_string()]));
        assert_ne!(store.stamp(), first, "a new record is a new file");
    }

    #[test]
    fn a_failed_save_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"x").expect("write");
        let store = TokenStore::new(blocker.join("token.json"));
        let e = store.save(&1u8).expect_err("a file is in the way");
        assert!(e.to_string().contains("not-a-dir/token.json"), "{e}");
    }
}
