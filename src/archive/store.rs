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

/// One key to record, with the file it stands for when the item wants
/// its output found again (content archives reuse an earlier output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// The key.
    pub key: String,
    /// The saved file, absolute.
    pub path: Option<PathBuf>,
}

impl ArchiveEntry {
    /// A key without a path.
    pub fn key(key: impl Into<String>) -> ArchiveEntry {
        ArchiveEntry { key: key.into(), path: None }
    }
}

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
            "CREATE TABLE IF NOT EXISTS archive (key TEXT PRIMARY KEY NOT NULL, added INTEGER NOT NULL, path TEXT) WITHOUT ROWID;",
        )
        .map_err(|e| err(&e))?;
        // Archives written before outputs were recorded lack the column;
        // their keys keep meaning "saved once", with no known path.
        let has_path = conn
            .prepare("SELECT 1 FROM pragma_table_info('archive') WHERE name = 'path'")
            .and_then(|mut st| st.exists([]))
            .map_err(|e| err(&e))?;
        if !has_path {
            conn.execute_batch("ALTER TABLE archive ADD COLUMN path TEXT;").map_err(|e| err(&e))?;
        }
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

    /// The output recorded with `key`: `None` when the key is not
    /// archived, `Some(None)` when it is but no path was recorded (keys
    /// of downloads, or of older builds).
    pub fn lookup(&self, key: &str) -> Option<Option<PathBuf>> {
        let conn = self.conn.lock().ok()?;
        conn.query_row("SELECT path FROM archive WHERE key = ?1", params![key], |r| {
            r.get::<_, Option<String>>(0)
        })
        .ok()
        .map(|p| p.map(PathBuf::from))
    }

    /// Records entries in one transaction. A key archived before keeps
    /// its date; a path given now replaces the one it had (the newest
    /// copy of an output is the one to reuse).
    pub fn insert_many(&self, entries: &[ArchiveEntry]) -> Result<(), ArchiveError> {
        if entries.is_empty() {
            return Ok(());
        }
        let err = |e: &dyn fmt::Display| ArchiveError { path: self.path.clone(), reason: e.to_string() };
        let mut conn = self.conn.lock().map_err(|_| err(&"lock poisoned"))?;
        let tx = conn.transaction().map_err(|e| err(&e))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO archive (key, added, path) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(key) DO UPDATE SET path = excluded.path WHERE excluded.path IS NOT NULL",
                )
                .map_err(|e| err(&e))?;
            let now = i64::try_from(crate::job::unix_now()).unwrap_or(0);
            for e in entries {
                let path = e.path.as_ref().map(|p| p.to_string_lossy().into_owned());
                stmt.execute(params![e.key, now, path]).map_err(|e| err(&e))?;
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
        let keys = ["site:1_p0", "site:1_p1", "site:1_p0"].map(ArchiveEntry::key);
        a.insert_many(&keys).expect("insert");
        assert_eq!(a.len(), 2);
        drop(a);
        let a = Archive::open(&p).expect("reopen");
        assert!(a.contains("site:1_p1"));
        assert!(!a.contains("site:2_p0"));
    }

    #[test]
    fn paths_are_recorded_replaced_by_newer_ones_and_kept_when_none_is_given() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Archive::open(&dir.path().join("archive.sqlite3")).expect("open");
        assert_eq!(a.lookup("c:1"), None);
        a.insert_many(&[ArchiveEntry::key("c:0")]).expect("insert");
        assert_eq!(a.lookup("c:0"), Some(None));
        let at = |p: &str| ArchiveEntry { key: "c:1".into(), path: Some(PathBuf::from(p)) };
        a.insert_many(&[at("/out/a.png")]).expect("insert");
        assert_eq!(a.lookup("c:1"), Some(Some(PathBuf::from("/out/a.png"))));
        a.insert_many(&[at("/out/b.png")]).expect("insert");
        assert_eq!(a.lookup("c:1"), Some(Some(PathBuf::from("/out/b.png"))));
        a.insert_many(&[ArchiveEntry::key("c:1")]).expect("insert");
        assert_eq!(a.lookup("c:1"), Some(Some(PathBuf::from("/out/b.png"))));
    }

    #[test]
    fn an_archive_of_an_older_build_gains_the_path_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("archive.sqlite3");
        {
            let conn = Connection::open(&p).expect("open");
            conn.execute_batch(
                "CREATE TABLE archive (key TEXT PRIMARY KEY NOT NULL, added INTEGER NOT NULL) WITHOUT ROWID;
                 INSERT INTO archive VALUES ('pixiv:1_p0', 1);",
            )
            .expect("old schema");
        }
        let a = Archive::open(&p).expect("open");
        assert_eq!(a.lookup("pixiv:1_p0"), Some(None));
        a.insert_many(&[ArchiveEntry { key: "x".into(), path: Some("/o".into()) }]).expect("insert");
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn a_broken_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("archive.sqlite3");
        std::fs::write(&p, b"this is not a database, not even close, at all").expect("write");
        assert!(Archive::open(&p).is_err());
    }
}
