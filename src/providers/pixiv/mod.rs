//! Pixiv: the App API as a provider.
//!
//! Owns the Pixiv login (OAuth refresh with rotation, stored 0600 in
//! `state_dir`, single-flight across jobs), the App API client with its
//! quirks (docs/pixiv.md: token expiry as a 400, "Rate Limit"
//! inside a 403, `offset` capped at 5000, placeholders for hidden works),
//! and the walks of every `pixiv.*` job type. Invariants: a placeholder
//! image is never saved as a work; every listing resumes from a durable
//! cursor; a rotated refresh token is saved before it is used.

mod auth;
mod client;
mod model;
mod naming;
mod novels;
mod provider;
mod settings;
pub mod ugoira;
mod urls;
mod walks;
mod works;

pub use auth::{
    Exchange, Grant, StoredToken, code_request, load_token, login_url, parse_grant, pkce_pair,
    refresh_request, store_token, token_path,
};
pub use provider::Pixiv;
pub use settings::{Settings, settings};
