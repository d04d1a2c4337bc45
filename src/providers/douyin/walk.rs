//! The Douyin listings: one work, a user's posts or likes, a mix, a
//! profile; page by page, a block never taken for the end.
//!
//! Owns the resolution of what a job names (a page URL, a short link
//! followed through its redirects, a share text, a bare id) and F2's
//! pagination rules (docs/douyin.md): keep going while `has_more` is set,
//! also past an empty page; the cursor a page gives is journaled as the
//! next one, so a restart continues there. Invariant: only an answer that
//! says `has_more: 0` ends a listing; anything Douyin answers instead of a
//! page makes the job wait with the reason (`waiting: blocked by Douyin
//! (…)`), cursor kept.

use std::time::Duration;

use serde_json::{Value, json};

use super::client::{Caller, classify, page};
use super::ids::{DouyinId, Hosts, Resolved, Wanted, id_in_url, resolve};
use super::model::{Aweme, With};
use super::query::{ClientProfile, Query};
use super::settings::Settings;
use crate::checkpoint::Item;
use crate::naming::Template;
use crate::pacing::ApiRequest;
use crate::providers::{AccountSpec, Api, PacingSpec, Page, Walk, WalkError};

/// What a job lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One work.
    One,
    /// A user's posts.
    Post,
    /// A user's likes.
    Like,
    /// A mix.
    Mix,
    /// A user's profile, as JSON.
    Profile,
}

/// Works per page (F2's default).
const PAGE: i64 = 20;

/// A Douyin listing.
#[derive(Debug)]
pub struct DouyinWalk {
    /// The section.
    pub settings: Settings,
    /// What it lists.
    pub kind: Kind,
    /// What the job named (URL, share text or id).
    pub target: String,
    /// What to save of each work.
    pub with: With,
    /// How files are named.
    pub template: Template,
    /// Files under `<uid>/`.
    pub by_user: bool,
    /// Works created before this (Unix seconds) are left out.
    pub from: Option<i64>,
    /// Works created after this are left out.
    pub to: Option<i64>,
    /// Stop at the first page whose works are all archived.
    pub stop_after_seen: bool,
    /// Archive keys on files.
    pub archive: bool,
    /// msToken for this job's queries (generated: the token endpoint is
    /// optional, and F2 falls back the same way).
    pub ms_token: String,
}

impl DouyinWalk {
    /// The caller of this job's requests.
    fn caller(&self) -> Caller {
        Caller {
            user_agent: self.settings.user_agent.clone(),
            cookie: self.settings.cookie.clone(),
            sign: self.settings.sign.clone(),
        }
    }

    /// The hosts whose URLs carry ids: Douyin's, and the configured
    /// origin's (a proxy or a test server).
    fn hosts(&self) -> Hosts {
        let mut h = Hosts::default();
        if let Some(host) = self.settings.web_url.split("://").nth(1) {
            h.web.push(host.trim_end_matches('/').to_string());
            h.short.push(host.trim_end_matches('/').to_string());
        }
        h
    }

    /// The id the job names, following a short link's redirects.
    fn resolve(&self, wanted: Wanted, api: &Api) -> Result<DouyinId, WalkError> {
        let hosts = self.hosts();
        match resolve(&self.target, wanted, &hosts).map_err(|e| WalkError::Invalid(e.to_string()))? {
            Resolved::Id(id) => Ok(id),
            Resolved::NeedsRedirect(url) => {
                let resp = api.call(ApiRequest::get(&url).header("User-Agent", &self.settings.user_agent))?;
                let last = if resp.url.is_empty() { url } else { resp.url.clone() };
                id_in_url(&last, wanted, &hosts).map_err(|e| {
                    WalkError::Invalid(format!(
                        "the short link led to {}: {e}",
                        crate::http::display_url(&last)
                    ))
                })
            }
        }
    }

    /// A signed GET (or POST) of `path` with `query`, read as a page.
    fn get(&self, path: &str, query: &Query, api: &Api) -> Result<Value, WalkError> {
        let req = self.caller().request(&format!("{}{path}", self.settings.web_url), query, false)?;
        match api.call(req) {
            Ok(resp) => page(&resp),
            // The pacer backed off and tried again already (a block reads
            // as a passing failure): the job now waits, cursor kept.
            Err(crate::pacing::ApiError::Transport { reason, transient: true }) => Err(WalkError::Wait {
                reason: format!("blocked by Douyin ({reason})"),
                retry_in: super::client::BLOCKED_WAIT,
            }),
            Err(e) => Err(WalkError::Api(e)),
        }
    }

    /// The common block of this job's queries.
    fn common(&self) -> Query {
        Query::common(&ClientProfile::default(), &self.ms_token)
    }

    /// The files of works, filtered by date, and whether every one was
    /// archived already.
    fn works(&self, list: &[Value], api: &Api) -> (Vec<Item>, bool) {
        let mut items = Vec::new();
        let mut all_seen = !list.is_empty();
        for v in list {
            let Some(a) = Aweme::read(v) else { continue };
            let t = a.fields.create_time;
            if self.from.is_some_and(|f| t < f) || self.to.is_some_and(|e| t > e) {
                continue;
            }
            let folder = if self.by_user && !a.author_uid.is_empty() {
                format!("{}/", crate::naming::sanitize_component(&a.author_uid, "user"))
            } else {
                String::new()
            };
            let mut files = a.items(self.with, &self.template, &folder);
            if !self.archive {
                files = files.into_iter().map(|i| i.archived(None)).collect();
            }
            all_seen &= files.iter().all(|f| f.archive.as_deref().is_some_and(|k| api.archived(k)));
            items.extend(files);
        }
        (items, all_seen)
    }
}

/// `has_more`, an int or a bool.
fn has_more(v: &Value) -> bool {
    v["has_more"].as_i64().map_or_else(|| v["has_more"].as_bool().unwrap_or(false), |n| n != 0)
}

impl Walk for DouyinWalk {
    fn account(&self) -> Option<AccountSpec> {
        // The cookie's digest names the account: every job of one login
        // shares its pacing, and the cookie never appears in a log line.
        let who = self.settings.cookie.as_deref().map_or_else(
            || "anonymous".to_string(),
            |c| {
                use sha2::Digest;
                sha2::Sha256::digest(c.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect()
            },
        );
        // No documented budget: a polite gap, as F2 keeps between pages.
        Some(AccountSpec::new(
            format!("douyin:{who}"),
            classify,
            PacingSpec {
                interval: Some(Duration::from_millis(1500)),
                ..PacingSpec::polite(Duration::from_secs(30))
            },
        ))
    }

    fn next_page(&mut self, cursor: Option<&Value>, api: &Api) -> Result<Page, WalkError> {
        match self.kind {
            Kind::One => {
                let DouyinId::Aweme(id) = self.resolve(Wanted::Aweme, api)? else {
                    return Err(WalkError::Invalid("not a link to a work".into()));
                };
                let v =
                    self.get("/aweme/v1/web/aweme/detail/", &Query::post_detail(self.common(), &id), api)?;
                if v["aweme_detail"].is_null() {
                    return Ok(Page {
                        items: vec![Item::skip(format!("{id}:skip"), format!("work {id} is gone"))],
                        ..Page::default()
                    });
                }
                Ok(Page {
                    items: self.works(std::slice::from_ref(&v["aweme_detail"]), api).0,
                    ..Page::default()
                })
            }
            Kind::Profile => {
                let DouyinId::SecUser(sec) = self.resolve(Wanted::User, api)? else {
                    return Err(WalkError::Invalid("not a link to a user".into()));
                };
                let v = self.get(
                    "/aweme/v1/web/user/profile/other/",
                    &Query::user_profile(self.common(), &sec),
                    api,
                )?;
                if v["user"].is_null() {
                    return Err(WalkError::Invalid(format!("user {sec} not found")));
                }
                let body = serde_json::to_string_pretty(&v["user"]).unwrap_or_default();
                let name = format!("{}.json", crate::naming::sanitize_component(&sec, "user"));
                Ok(Page {
                    items: vec![Item::inline(format!("profile:{sec}"), name, body)],
                    ..Page::default()
                })
            }
            Kind::Post | Kind::Like | Kind::Mix => {
                let (id, at) = match cursor {
                    Some(c) => {
                        (c["id"].as_str().unwrap_or_default().to_string(), c["c"].as_i64().unwrap_or(0))
                    }
                    None => {
                        let wanted = if self.kind == Kind::Mix { Wanted::Mix } else { Wanted::User };
                        let id = match self.resolve(wanted, api)? {
                            DouyinId::SecUser(s) | DouyinId::Mix(s) => s,
                            other => {
                                return Err(WalkError::Invalid(format!(
                                    "not a link to a {}: {other:?}",
                                    wanted.name()
                                )));
                            }
                        };
                        // With an end date, start there (ms, as Douyin's
                        // cursors are).
                        let start = if self.kind == Kind::Post { self.to.map_or(0, |t| t * 1000) } else { 0 };
                        (id, start)
                    }
                };
                let (path, q) = match self.kind {
                    Kind::Post => {
                        ("/aweme/v1/web/aweme/post/", Query::user_posts(self.common(), at, PAGE, &id))
                    }
                    Kind::Like => {
                        ("/aweme/v1/web/aweme/favorite/", Query::user_posts(self.common(), at, PAGE, &id))
                    }
                    _ => ("/aweme/v1/web/mix/aweme/", Query::user_mix(self.common(), at, PAGE, &id)),
                };
                let v = self.get(path, &q, api)?;
                let list = v["aweme_list"].as_array().cloned().unwrap_or_default();
                let (items, all_seen) = self.works(&list, api);
                let next_at =
                    if self.kind == Kind::Mix { v["cursor"].as_i64() } else { v["max_cursor"].as_i64() };
                let past_start = self.kind == Kind::Post
                    && self.from.is_some_and(|f| next_at.is_some_and(|c| c > 0 && c < f * 1000));
                let more =
                    has_more(&v) && next_at.is_some() && !past_start && !(self.stop_after_seen && all_seen);
                let next = more.then(|| json!({"id": id, "c": next_at}));
                Ok(Page { items, next, ..Page::default() })
            }
        }
    }
}
