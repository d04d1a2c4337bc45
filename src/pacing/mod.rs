//! Pacing: one thread per API account makes that account's calls.
//!
//! Owns each account's schedule (`next_allowed`, the rate-limit streak).
//! Invariants: an account's calls never overlap; the start of a call is at
//! least `interval` after the end of the previous one; a rate-limit answer
//! (429, or what the provider's classifier recognises in a body, such as
//! a "Rate Limit" message inside a 403) pushes `next_allowed` back for every
//! job of the account, honouring `Retry-After`. File downloads do not pass
//! through here.

mod backoff;
mod body;
mod pacer;
mod request;

pub use backoff::{backoff_delay, cap_retry_after};
pub use body::{Body, Multipart};
pub use pacer::{AccountPolicy, Pacer, PacerStats, send_once};
pub use request::{
    ApiError, ApiRequest, ApiResponse, Classify, Signer, Verdict, classify_answer, default_classify,
};
