//! Configuration: one immutable [`Config`], resolved once at start-up.
//!
//! Owns the layering defaults < JSON file < environment < command-line
//! flags and the validation of every key (README "Configuration").
//! The invariant: a `Config` that exists is valid; every problem (unknown
//! key, wrong type, bad value) is reported at start-up as one clear line
//! naming the key and where it came from. Provider sections are opaque
//! here and checked by the provider that owns them, so that adding a
//! provider does not touch this module.

mod load;

pub use load::{Config, ConfigError, Overrides, ProxyMode, SectionSpec, WatchMode, load};
