//! Douyin: the pure building blocks of the provider (issue 12).
mod ids;
mod query;
pub mod sign;
pub use ids::{DouyinId, Hosts, IdError, Resolved, Wanted, id_in_url, links_in, resolve};
pub use query::{ClientProfile, Query, QueryError, SignatureParam, Value, signed_url};
