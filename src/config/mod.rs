//! Configuration: one immutable [`Config`], resolved once at start-up.
//!
//! Owns the layering defaults < JSON file < environment < command-line
//! flags and the validation of every key (README "Configuration").
//! The invariant: a `Config` that exists is valid; every problem (unknown
//! key, wrong type, bad value) is reported at start-up as one clear line
//! naming the key and where it came from. Provider sections are declared
//! by their providers ([`SectionSpec`]: keys, types, defaults, variables)
//! and checked here from that declaration, so that adding a provider does
//! not touch this module.

mod effective;
mod hints;
mod load;
mod section;

pub use effective::Setting;
pub use hints::closest;
pub use load::{Config, ConfigError, Overrides, ProxyMode, WatchMode, load};
pub use section::{COMMON_KEYS, KeyKind, KeySpec, SectionSpec, SectionValues};
