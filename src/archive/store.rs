//! The SQLite table behind the archive.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, params};

/// The archive could not be opened or written.
#[derive(Debug)]
pub struct ArchiveError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "download archive {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for ArchiveError {}

/// A shared handle; clone the `Arc` around it.
#[derive(Debug)]
pub struct Archive {
    /// Where it lives.
    path: PathBuf,
    /// One connection; SQLite serializes writers anyway and our writes are
    /// small batches.
    conn: Mutex<Connection>,
}

impl Archive {
    /// Opens (creating if needed) the archive at `path`.
    pub fn open(path: &Path) -> Result<Archive, ArchiveError> {
        let err = |e: &dyn fmt::Display| ArchiveError { path: path.to_path_buf(), reason: e.to_string() };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| err(&e))?;
        // WAL keeps readers (listers checking keys) from blocking the
        // writer; FULL synchronous makes a committed key durable.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| err(&e))?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(|e| err(&e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| err(&e))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS archive (key TEXT PRIMARY KEY NOT NULL, added INTEGER NOT NULL) WITHOUT ROWID;",
        )
        .map_err(|e| err(&e))?;
        Ok(Archive { path: path.to_path_buf(), conn: Mutex::new(conn) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns true if and only if `key` was archived. A read error counts
    /// as "not archived": the worst case is a download that is skipped
    /// later as already complete.
    pub fn contains(&self, key: &str) -> bool {
        let Ok(conn) = self.conn.lock() else { return false };
        conn.query_row("SELECT 1 FROM archive WHERE key = ?1", params![key], |_| Ok(())).is_ok()
    }

    /// Records keys in one transaction.
    pub fn insert_many(&self, keys: &[String]) -> Result<(), ArchiveError> {
        if keys.is_empty() {
            return Ok(());
        }
        let err = |e: &dyn fmt::Display| ArchiveError { path: self.path.clone(), reason: e.to_string() };
        let mut conn = self.conn.lock().map_err(|_| err(&"lock poisoned"))?;
        let tx = conn.transaction().map_err(|e| err(&e))?;
        {
            let mut stmt = tx
                .prepare_cached("INSERT OR IGNORE INTO archive (key, added) VALUES (?1, ?2)")
                .map_err(|e| err(&e))?;
            let now = i64::try_from(crate::job::unix_now()).unwrap_or(0);
            for k in keys {
                stmt.execute(params![k, now]).map_err(|e| err(&e))?;
            }
        }
        tx.commit().map_err(|e| err(&e))
    }

    /// Number of archived keys.
    pub fn len(&self) -> u64 {
        let Ok(conn) = self.conn.lock() else { return 0 };
        conn.query_row("SELECT COUNT(*) FROM archive", [], |r| r.get::<_, i64>(0))
            .map_or(0, |n| u64::try_from(n).unwrap_or(0))
    }

    /// Returns true if and only if the archive is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_across_opens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("archive.sqlite3");
        let a = Archive::open(&p).expect("open");
        assert!(!a.contains("site:1_p0"));
        a.insert_many(&["site:1_p0".into(), "site:1_p1".into(), "site:1_p0".into()]).expect("insert");
        assert_eq!(a.len(), 2);
        drop(a);
        let a = Archive::open(&p).expect("reopen");
        assert!(a.contains("site:1_p1"));
        assert!(!a.contains("site:2_p0"));
    }

    #[test]
    fn a_broken_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("archive.sqlite3");
        std::fs::write(&p, b"this is not a database, not even close, at all").expect("write");
        assert!(Archive::open(&p).is_err());
    }
}
