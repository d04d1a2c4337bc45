//! Everything about talking HTTP(S): the one shared `ureq::Agent`, how it
//! reaches servers (direct, proxy, or pinned IPs), which certificates it
//! trusts, and how failures are classified and described.
//!
//! Invariants kept by this module:
//! * **One agent.** [`build_agent`] is called once at startup; the result is
//!   cloned into every thread, so the connection pool, TLS cache and
//!   `Agent::shutdown` cover all traffic.
//! * **No silent proxy.** The proxy is always set explicitly from the config;
//!   `*_PROXY` environment variables are never consulted, so the daemon
//!   behaves the same under systemd as in a shell.
//! * **Honest TLS.** Certificates are always verified, and always against
//!   the host name in the URL — also when a pinned IP is used. There is no
//!   switch to disable verification; a private CA is added with `ca_file`,
//!   on top of the built-in Mozilla roots.
//! * **Statuses are data.** 4xx/5xx come back as responses, not errors, so
//!   `Retry-After` can be read ([`parse_retry_after`]); [`is_transient`],
//!   [`status_is_transient`] and [`classify_status`] decide what is worth
//!   retrying, in this one place for the download pool and every API.
//!
//! `ureq` is pinned to `~3.5` because [`PinnedResolver`] implements an
//! "unversioned" (not semver-covered) ureq trait, and the error description
//! relies on how ureq 3.5 wraps rustls errors; the tests check both.

mod agent;
mod error;
mod pinning;
mod proxy;
mod query;
mod redact;
mod resolver;
mod retry_after;
mod roots;

pub use agent::{NetOptions, Route, SetupError, build_agent};
pub use error::{StatusClass, classify_status, describe, is_transient, never_sent, status_is_transient};
pub use pinning::PinnedResolver;
pub use proxy::redact_url;
pub use query::{encode_query, form_decode, form_encode, query_pairs};
pub use redact::display_url;
pub use retry_after::parse_retry_after;
