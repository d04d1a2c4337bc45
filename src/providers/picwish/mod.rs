//! PicWish: batch image processing (background removal, face cutout,
//! enhancement, colorization, correction) through the official API or the
//! web flow, never paying twice.
//!
//! Owns what PicWish's two interfaces look like (docs/picwish.md): the
//! operations and their options, the listing of local and URL inputs with
//! the content archive, the official API's task runner (`X-API-KEY`,
//! multipart upload, asynchronous tasks), the web flow's (gateway token,
//! an upload to Alibaba OSS signed with V1, the watermark-free result),
//! and the web login. Invariants: every create is journaled as an intent
//! before it is sent and sent again at most once when its outcome is
//! unknown, counted in status; an image already processed with the same
//! op and options is never sent again unless the job says `reprocess`;
//! the API key, tokens and STS secrets never reach a log, a status or a
//! checkpoint.

mod answer;
mod api;
mod ops;
mod oss;
mod provider;
mod settings;
mod tasks;
mod walk;
mod web;

pub use oss::{Grant, authorization, string_to_sign};
pub use provider::{MAX_INPUT_BYTES, Picwish};
pub use settings::{SECTION, Settings, login_file, settings};
pub use web::login;
