//! spoolfetch: a crash-safe spool daemon that batch-downloads from web APIs.
//!
//! The pipeline, one thread or pool per step:
//!
//! 1. [`spool`]: the watcher thread finds complete job files in the spool
//!    folder; the supervisor claims them with one atomic rename.
//! 2. [`runner`]: one runner thread per active job owns its [`checkpoint`]
//!    and drives its provider's listing.
//! 3. [`pacing`]: one pacing thread per API account makes that account's
//!    calls one at a time, at least `interval_ms` apart, and backs off on
//!    rate limits for every job of the account.
//! 4. [`download`]: a fixed pool of `concurrency` threads, shared fairly by
//!    all jobs, fetches files to `.part` files with Range resume and gives
//!    them their final name only when complete and verified.
//! 5. [`providers`]: describe work (API walks that yield items); they never
//!    sleep, retry downloads or write files themselves.
//!
//! See ARCHITECTURE.md for the threads, channels and state owners.

pub mod alerts;
pub mod archive;
pub mod checkpoint;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod download;
pub mod durable;
pub mod http;
pub mod inputs;
pub mod job;
pub mod naming;
pub mod pacing;
pub mod postprocess;
pub mod providers;
pub mod record;
pub mod runner;
pub mod session;
pub mod spool;
pub mod steps;
