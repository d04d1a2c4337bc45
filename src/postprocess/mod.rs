//! Post-processing: work on downloaded files that must never hold up
//! downloads (ugoira zip → animation).
//!
//! Owns one worker thread with a bounded queue. Invariants: a step reads
//! only a file that is complete under its final name; its output appears
//! only complete (the converter writes a temporary file and renames it);
//! a failed step never removes or changes the downloaded file.

mod worker;

pub use worker::{PostEvent, PostTask, PostWorker};
