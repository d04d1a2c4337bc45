//! Post-processing: work on downloaded files that must never hold up
//! downloads (for example turning an archive of frames into an animation).
//!
//! Owns one worker thread with a bounded queue, and the interface of the
//! steps it runs. Steps are supplied by providers and looked up by the
//! name an item gives; nothing here knows what a step does. Invariants: a
//! step reads only a file that is complete under its final name; its
//! output appears only complete (the step writes a temporary file and
//! renames it); a failed step, or one that panics, never removes or
//! changes the downloaded file and never stops the thread.

mod step;
mod worker;

pub use step::{PostRunner, PostRunners};
pub use worker::{PostEvent, PostTask, PostWorker};
