//! Providers: what each web API offers, described as data.
//!
//! Owns the [`Provider`] and [`Walk`] interfaces and the explicit list of
//! providers. A provider checks a job's parameters and returns a walk that
//! lists the job's items page by page through the [`Api`] handle (which
//! goes through the account's pacing thread). Invariant: providers never
//! sleep, retry, write files or touch checkpoints; the runner, pacer and
//! pool do. Adding a provider is one folder, its `mod` line here and one
//! entry in `list.rs`.

mod api;
mod list;

pub mod demo;
pub mod http_files;
pub mod octoparse;
pub mod pixiv;

pub use api::{
    AccountSpec, Api, JobTypeInfo, Page, ParamInfo, ParamKind, PlanContext, Provider, RecordFormat, Records,
    Walk, WalkError,
};
pub use list::*;
