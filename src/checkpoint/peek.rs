//! A look at a job's checkpoint from another process (`status --files`),
//! without writing anything.
//!
//! Owns nothing on disk: it reads the snapshot and replays its journal the
//! way recovery does, but opens no file for writing and removes none, so
//! it is safe while the job's runner writes. Invariant: a look that races a
//! compaction (the journal it names already removed) sees less, never
//! something the runner did not have.

use std::fs;
use std::io;
use std::path::Path;

use crate::checkpoint::model::Progress;
use crate::checkpoint::store::{CheckpointError, Snapshot, replay};

/// The progress of the job whose state folder is `dir`, as recovery would
/// find it now; a folder without a snapshot is a fresh job.
pub fn peek_progress(dir: &Path) -> Result<Progress, CheckpointError> {
    let snap_path = dir.join("checkpoint.json");
    let (generation, mut progress) = match fs::read(&snap_path) {
        Ok(bytes) => {
            let snap: Snapshot = serde_json::from_slice(&bytes)
                .map_err(|e| CheckpointError::Corrupt { path: snap_path.clone(), what: e.to_string() })?;
            (snap.generation, snap.progress)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (0, Progress::new()),
        Err(err) => return Err(CheckpointError::Io { path: snap_path, err }),
    };
    replay(&dir.join(format!("journal.{generation}")), &mut progress)?;
    Ok(progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{CheckpointStore, Item, Record, Work};

    #[test]
    fn a_look_sees_what_recovery_sees_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut store, mut p) = CheckpointStore::open(dir.path()).expect("open");
        let items = vec![
            Item::with("k0", "a.bin", Work::Inline("x".into())),
            Item::with("k1", "b.bin", Work::Inline("y".into())),
        ];
        let rec = Record::Found { items, cursor: None, end: true, total: None, output: None };
        store.append(&rec);
        p.apply(rec);
        store.commit(&p).expect("commit");
        let before: Vec<_> = fs::read_dir(dir.path()).expect("ls").flatten().map(|e| e.file_name()).collect();
        let seen = peek_progress(dir.path()).expect("peek");
        assert_eq!(seen.found, 2);
        assert_eq!(seen.items.get(&1).map(|it| it.path.as_str()), Some("b.bin"));
        let after: Vec<_> = fs::read_dir(dir.path()).expect("ls").flatten().map(|e| e.file_name()).collect();
        assert_eq!(before, after);
        assert_eq!(peek_progress(&dir.path().join("none")).expect("fresh").found, 0);
    }
}
