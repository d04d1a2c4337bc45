//! Douyin: the pure building blocks of the coming provider (issue 12),
//! modelled on F2 (https://github.com/Johnserf-Seed/f2), the downloader
//! most people use.
//!
//! Owns, without any network or clock of its own (docs/douyin.md): the
//! query every web API call carries, in F2's order and with its unescaped
//! encoding (`query`); the X-Bogus and A-Bogus signatures over those exact
//! bytes, the msToken/verify_fp/ttwid tokens and the external signer
//! command (`sign`); and reading aweme, user, mix and live ids from what
//! users paste (`ids`). Invariant: the string a signature is computed over
//! is the string [`Query::encode`] returns, and the provider sends exactly
//! that (with the signature appended last by [`signed_url`]) and the
//! User-Agent it signed; every id handed out has the shape of its kind.
//! What a work is made of and the files it gives (`model`), and their
//! names (`naming`, F2's template fields), the configuration section
//! (`settings`), the job types (`provider`: one work, a user's posts and
//! likes, a mix, the account's collection and favourites folders, the home
//! feed, a profile, a live room) and their listings (`walk`: F2's
//! pagination, a block never taken for the end; a live room becomes a
//! stream the kernel's recorder records); the msToken each account's
//! queries carry, from the token endpoint and cached (`token`); the SSO
//! QR-code login that yields a login cookie (`login`).

mod client;
mod ids;
mod login;
mod model;
mod naming;
mod provider;
mod query;
mod settings;
pub mod sign;
mod token;
mod walk;

pub use client::{Answer, BLOCKED_WAIT, Caller, SignWith, classify, page, read};
pub use ids::{DouyinId, Hosts, IdError, Resolved, Wanted, id_in_url, links_in, resolve};
pub use login::{CookieJar, Event, LoginError, LoginOptions, QrCode, QrState, qr_login};
pub use model::{Aweme, With};
pub use naming::{DEFAULT_TEMPLATE, FIELDS, Fields, china_time};
pub use provider::Douyin;
pub use query::{ClientProfile, Query, QueryError, SignatureParam, Value, signed_url};
pub use settings::{DEFAULT_UA, SECTION, Settings, cookie_file, settings};
pub use walk::{DouyinWalk, Kind, LiveOptions};
