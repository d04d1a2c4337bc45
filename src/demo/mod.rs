//! The offline demo: a loopback file server built into the binary.
//!
//! Owns nothing the daemon uses; it exists so that `spoolfetch demo` can
//! run the real spool, pacer, pool and checkpoint path with no account and
//! no network. The invariant: it listens on 127.0.0.1 only.

mod server;

pub use server::{DemoServer, demo_bytes};
