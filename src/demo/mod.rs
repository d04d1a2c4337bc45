//! The offline demo: a loopback gallery API and file server built into
//! the binary (the `demo.gallery` job type lists it).
//!
//! Owns nothing the daemon uses; it exists so that `spoolfetch demo` can
//! run the real spool, pacer, pool and checkpoint path with no account and
//! no network. The invariant: it listens on 127.0.0.1 only.

mod server;

pub use server::{DemoServer, PAGE_SIZE, demo_bytes};
