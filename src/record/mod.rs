//! Live recording: streams that have no length (an HLS live playlist, an
//! endless FLV body), recorded by threads of their own.
//!
//! Owns the recorder threads (`live_concurrency`, separate from the
//! download pool, so recordings and file downloads never starve each
//! other), the growing file of a recording and its sidecar. Invariants:
//! every 2 s or 4 MiB the file is fdatasynced and only then does the
//! sidecar (written atomically) record the durable length, the next HLS
//! segment and the recorded time; after `kill -9` the file is cut back to
//! that length and the recording continues (HLS at the next segment, the
//! ones that slid out meanwhile counted as a gap; FLV in a new piece,
//! because an FLV byte stream cannot be spliced); a pause or a stop keeps
//! everything recorded; a recording gets its final name only when it
//! ends. A stream that sends something else, never advances, or whose
//! segments vanish ends with what was recorded and a reason.

mod flv;
mod hls;
mod pool;
mod sink;

pub use pool::{RecordEvent, RecordTask, Recorders};
pub use sink::piece_path;
