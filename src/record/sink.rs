//! The growing file of a recording and its sidecar.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How often the bytes so far are made durable.
const SYNC_EVERY: Duration = Duration::from_secs(2);

/// Or after this many bytes, whichever comes first.
const SYNC_BYTES: u64 = 4 << 20;

/// What is durable of a recording (`.<name>.rec`, next to the final name).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecState {
    /// Format of this record.
    pub v: u32,
    /// The piece being written (1 for the first, FLV only goes further).
    pub piece: u32,
    /// Bytes of the current piece that are durable.
    pub len: u64,
    /// The next HLS media sequence number to append.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_seq: Option<u64>,
    /// Seconds recorded so far (all pieces).
    pub secs: f64,
    /// Bytes recorded so far (all pieces).
    pub bytes: u64,
    /// HLS segments lost to gaps.
    #[serde(default)]
    pub gaps: u64,
}

/// The path of piece `n` of a recording whose final name is `dest`: the
/// first piece is `dest` itself, later ones `name.002.ext`.
pub fn piece_path(dest: &Path, n: u32) -> PathBuf {
    if n <= 1 {
        return dest.to_path_buf();
    }
    let stem = dest.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match dest.extension() {
        Some(ext) => format!("{stem}.{n:03}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{n:03}"),
    };
    dest.with_file_name(name)
}

/// The sidecar of a recording.
fn sidecar_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!(".{name}.rec"))
}

/// Reads the sidecar, if a recording was under way.
pub fn load(dest: &Path) -> Option<RecState> {
    let bytes = std::fs::read(sidecar_path(dest)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// One piece being written.
pub struct Sink {
    /// The recording's final name (of its first piece).
    dest: PathBuf,
    /// The open `.part` of the current piece.
    file: File,
    /// Its path.
    part: PathBuf,
    /// What is recorded, durable or not yet.
    pub state: RecState,
    /// Bytes of the current piece written.
    written: u64,
    /// When the file was last made durable.
    synced_at: Instant,
    /// Bytes of the current piece durable.
    synced: u64,
}

impl Sink {
    /// Opens the current piece of `state` (cut back to its durable
    /// length), or a fresh first piece.
    pub fn open(dest: &Path, state: RecState) -> Result<Sink, String> {
        let piece = piece_path(dest, state.piece.max(1));
        let (part, _) = crate::download::part_paths(&piece);
        let dir = piece.parent().unwrap_or(Path::new(".")).to_path_buf();
        let (mut file, _) = crate::download::open_part(&dir, &part)?;
        let len = state.len;
        file.set_len(len).map_err(|e| format!("cannot cut {} back: {e}", part.display()))?;
        file.seek(SeekFrom::Start(len)).map_err(|e| format!("cannot seek {}: {e}", part.display()))?;
        let state = RecState { v: 1, piece: state.piece.max(1), ..state };
        Ok(Sink {
            dest: dest.to_path_buf(),
            file,
            part,
            state,
            written: len,
            synced_at: Instant::now(),
            synced: len,
        })
    }

    /// Appends bytes that are `secs` of media; makes them durable when due.
    pub fn append(&mut self, bytes: &[u8], secs: f64) -> Result<(), String> {
        self.file.write_all(bytes).map_err(|e| format!("cannot write {}: {e}", self.part.display()))?;
        self.written += bytes.len() as u64;
        self.state.bytes += bytes.len() as u64;
        self.state.secs += secs;
        if self.synced_at.elapsed() >= SYNC_EVERY || self.written - self.synced >= SYNC_BYTES {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Bytes in the current piece.
    pub fn piece_len(&self) -> u64 {
        self.written
    }

    /// Makes everything written durable and records it in the sidecar
    /// (in that order: the sidecar never claims bytes the disk may lose).
    pub fn checkpoint(&mut self) -> Result<(), String> {
        self.file.sync_data().map_err(|e| format!("cannot fsync {}: {e}", self.part.display()))?;
        self.synced = self.written;
        self.synced_at = Instant::now();
        self.state.len = self.written;
        let json = serde_json::to_vec(&self.state).unwrap_or_default();
        crate::durable::atomic_write_mode(&sidecar_path(&self.dest), &json, 0o600)
            .map_err(|e| format!("cannot record the recording's progress: {e}"))
    }

    /// Gives the current piece its final name (when it holds anything)
    /// and starts the next one.
    pub fn next_piece(&mut self) -> Result<(), String> {
        self.close_piece()?;
        let state = RecState { piece: self.state.piece + 1, len: 0, ..self.state.clone() };
        *self = Sink::open(&self.dest, state)?;
        self.checkpoint()
    }

    /// Closes the current piece: fsynced and renamed to its final name, or
    /// removed when empty.
    fn close_piece(&mut self) -> Result<(), String> {
        let piece = piece_path(&self.dest, self.state.piece);
        if self.written == 0 {
            let _ = std::fs::remove_file(&self.part);
            return Ok(());
        }
        crate::durable::sync_and_rename(&self.file, &self.part, &piece)
            .map_err(|e| format!("cannot finish {}: {e}", piece.display()))
    }

    /// Ends the recording: the last piece gets its final name, the sidecar
    /// goes; returns the bytes recorded.
    pub fn finish(mut self) -> Result<u64, String> {
        self.close_piece()?;
        let _ = std::fs::remove_file(sidecar_path(&self.dest));
        if let Some(dir) = self.dest.parent() {
            let _ = crate::durable::fsync_dir(dir);
        }
        Ok(self.state.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_named_after_the_first() {
        let d = Path::new("/x/live.flv");
        assert_eq!(piece_path(d, 1), PathBuf::from("/x/live.flv"));
        assert_eq!(piece_path(d, 2), PathBuf::from("/x/live.002.flv"));
        assert_eq!(piece_path(Path::new("/x/live"), 12), PathBuf::from("/x/live.012"));
    }

    #[test]
    fn a_reopened_recording_is_cut_back_to_what_the_sidecar_says_is_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("rec.ts");
        let mut s = Sink::open(&dest, RecState::default()).expect("open");
        s.append(b"aaaa", 1.0).expect("append");
        s.checkpoint().expect("checkpoint");
        s.append(b"bbbb", 1.0).expect("append");
        drop(s);
        let st = load(&dest).expect("sidecar");
        assert_eq!((st.len, st.bytes, st.piece), (4, 4, 1));
        let mut s = Sink::open(&dest, st).expect("reopen");
        s.append(b"cc", 0.5).expect("append");
        assert_eq!(s.finish().expect("finish"), 6);
        assert_eq!(std::fs::read(&dest).expect("final"), b"aaaacc");
        assert!(load(&dest).is_none(), "the sidecar is gone");
    }
}
