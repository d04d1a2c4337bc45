//! Providers: what each web API offers, described as data.
//!
//! Owns the [`Provider`] and [`Walk`] interfaces and the explicit list of
//! providers. A provider checks a job's parameters and returns a walk that
//! lists the job's items page by page through the [`Api`] handle (which
//! goes through the account's pacing thread). Job keys are declared once,
//! as data ([`JobTypeInfo`], [`ParamInfo`]), and checked from that
//! declaration by [`validate`] before the provider sees them. Invariant:
//! providers never sleep, retry, write files or touch checkpoints; the
//! runner, pacer and pool do. Adding a provider is one folder, its `mod` line here and one
//! entry in `list.rs`.

mod account;
mod api;
mod list;
mod params;

pub mod demo;
pub mod douyin;
pub mod http_files;
pub mod octoparse;
pub mod picwish;
pub mod pixiv;

pub use account::{AccountSpec, Credentials, LaneSpec, Lanes, PacingSpec};
pub use api::{Api, Page, PlanContext, Provider, RecordFormat, Records, Walk, WalkError};
pub use list::*;
pub use params::{JobTypeInfo, ParamInfo, ParamKind, Params, is_date, parse_id, validate};
