//! The download pool: a fixed number of threads shared by every job.
//!
//! Owns the fair dispatch of tasks across jobs and the fetching of one
//! file. Invariants: a file appears under its final name only after its
//! length (and MD5, when known) was verified and its bytes were fsynced;
//! until then it is `.<name>.part`; a resumed transfer appends only after
//! the server proved (206 + matching `Content-Range`, `If-Range` validator)
//! that the bytes continue the same file, whichever of the item's URLs
//! answers; the candidate URLs of a task are tried in order within one
//! attempt, and only "not here" answers (403, 404, 410, an empty 200)
//! move on to the next. Workers never touch checkpoints:
//! they report to the job's runner, which owns them. The fsync and rename
//! of a verified file run on a finisher thread, and its `Done` is reported
//! only after both succeeded, with the path the file really took: a task
//! may let the server name its file (`Content-Disposition`), and then the
//! name is logged durably before the rename (`names`), so a restart finds
//! the file instead of fetching it again.

mod answer;
mod candidates;
mod fetch;
mod finish;
mod names;
mod partfile;
mod pool;
mod request;
mod speed;
mod task;
mod throttle;

pub use candidates::fetch_staged;
pub use fetch::fetch;
pub use finish::{Attempt, Finish};
pub use names::{NAMES_LOG, NameLog};
pub(crate) use partfile::open_part;
pub use partfile::{PartMeta, part_paths, url_digest};
pub use pool::{AttemptFn, JOIN_BOUND, JobQueue, Pool, join_by};
pub use request::MAX_REDIRECTS;
pub(crate) use request::resolve as resolve_url;
pub use task::{DownloadEvent, DownloadTask, Outcome};
pub use throttle::{Throttle, pace};
