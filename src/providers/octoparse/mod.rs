//! Octoparse DataAPI: export task data as records.
//!
//! Owns the Octoparse login (password grant, single-use refresh tokens
//! saved 0600 before use, single-flight refresh with a fallback to the
//! password grant), the DataAPI envelope and error codes, the account's
//! request budget (a 20/s leaky bucket on the server, modelled by a token
//! bucket that starts empty), and the export walks. Invariant: in `new`
//! mode a batch is marked exported on the server only after it is durable
//! in the output file and journaled, and the mark itself is journaled
//! before the next batch is fetched, so no crash window loses or doubles
//! a row.

mod auth;
mod client;
mod provider;
mod settings;
mod walks;

pub use provider::Octoparse;
