//! Provider logins: token sessions shared by every job of an account.
//!
//! Owns what token-based providers have in common: the registry of
//! sessions (one per account, owned by the supervisor or a CLI command,
//! never a process global), single-flight refresh, access-token
//! generations, the token file (atomic, mode 0600), and the call that
//! retries once after a refused token. A provider brings its half through
//! [`Authority`]: the token request and the shape of its token file.
//!
//! Invariants: one refresh at a time per account, and every waiting job
//! gets its result; a refresh token that comes back is durable before the
//! access token that came with it is used; a refusal invalidates only the
//! generation it was seen with; an authorized call is repeated at most
//! once. Every network call goes through the [`Exchange`] the caller
//! passes (a job's pacer), so refreshes are paced like API calls.

mod login;
mod reauth;
mod registry;
mod store;
#[cfg(test)]
mod tests;

pub use login::{Access, Authority, Exchange, Grant, Session};
pub use reauth::{Failure, call_with_reauth};
pub use registry::Sessions;
pub use store::{Stamp, StoreError, TokenStore};
