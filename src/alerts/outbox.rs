//! Notifications not yet delivered, on disk: `state_dir/notify/<id>.json`.
//!
//! Owns the outbox folder. Invariant: a notification is written here
//! (temp → fsync → rename) before its first delivery attempt and removed
//! only after it was delivered or given up, so a restart in between
//! delivers it then, and an event is never lost to a crash of the daemon
//! once the notifier took it. Format (version 1): `{"v": 1, "id",
//! "event", "status", "target", "attempts"}`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::target::{Event, Target};

/// One notification for one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Format version.
    #[serde(default = "one")]
    pub v: u32,
    /// Unique: the file's name.
    pub id: String,
    /// What happened.
    pub event: Event,
    /// The job's status object when it happened.
    pub status: Value,
    /// Where it goes.
    pub target: Target,
    /// Delivery attempts so far (across restarts).
    #[serde(default)]
    pub attempts: u32,
}

fn one() -> u32 {
    1
}

/// The outbox folder.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// `state_dir/notify`.
    dir: PathBuf,
}

impl Outbox {
    /// The outbox of a state folder.
    pub fn new(state_dir: &Path) -> Outbox {
        Outbox { dir: state_dir.join("notify") }
    }

    /// Writes (or rewrites) a notice.
    pub fn save(&self, n: &Notice) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = serde_json::to_vec(n).map_err(std::io::Error::other)?;
        crate::durable::atomic_write(&self.dir.join(format!("{}.json", n.id)), &bytes)
    }

    /// Removes a notice that was delivered or given up.
    pub fn remove(&self, id: &str) {
        let _ = std::fs::remove_file(self.dir.join(format!("{id}.json")));
        let _ = crate::durable::fsync_dir(&self.dir);
    }

    /// Every notice left by an earlier run, oldest first; unreadable
    /// files are skipped with a warning (and left for a person to look
    /// at).
    pub fn load(&self) -> Vec<Notice> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out: Vec<Notice> = rd
            .flatten()
            .filter(|e| {
                e.file_name().to_string_lossy().ends_with(".json")
                    && !e.file_name().to_string_lossy().starts_with('.')
            })
            .filter_map(|e| {
                let bytes = std::fs::read(e.path()).ok()?;
                match serde_json::from_slice::<Notice>(&bytes) {
                    Ok(n) => Some(n),
                    Err(err) => {
                        log::warn!("notify: skipping {}: {err}", e.path().display());
                        None
                    }
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::target::Via;
    use serde_json::json;

    #[test]
    fn notices_survive_a_restart_until_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ob = Outbox::new(dir.path());
        let n = Notice {
            v: 1,
            id: "0001-7-done".into(),
            event: Event::Done,
            status: json!({"tid": 7}),
            target: Target { events: vec![Event::Done], via: Via::Exec(vec!["/bin/true".into()]) },
            attempts: 2,
        };
        ob.save(&n).expect("save");
        std::fs::write(dir.path().join("notify/garbage.json"), b"{").expect("write");
        assert_eq!(Outbox::new(dir.path()).load(), vec![n]);
        ob.remove("0001-7-done");
        assert!(ob.load().is_empty());
    }
}
