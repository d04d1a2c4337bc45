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
    /// The logged-in user's collection.
    Collection,
    /// The logged-in user's favourites folders (one, or all).
    Collects,
    /// The home feed.
    Feed,
    /// A live room, recorded.
    Live,
}

/// How a live room is recorded.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// `FULL_HD1`, `HD1`, `SD1`, `SD2`.
    pub quality: String,
    /// HLS (default) or FLV.
    pub flv: bool,
    /// Stop after this many seconds.
    pub max_secs: Option<u64>,
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
    /// `collects_id` of `douyin.collects` (none: every folder).
    pub collects_id: Option<String>,
    /// `douyin.live`'s options.
    pub live: LiveOptions,
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
        if let Some(rest) = self.settings.web_url.split("://").nth(1) {
            let host = rest.split('/').next().unwrap_or(rest).to_string();
            h.web.push(host.clone());
            h.short.push(host);
        }
        h
    }

    /// The id the job names, following a short link's redirects.
    fn resolve(&self, wanted: Wanted, api: &Api) -> Result<DouyinId, WalkError> {
        let hosts = self.hosts();
        match resolve(&self.target, wanted, &hosts).map_err(|e| WalkError::Invalid(e.to_string()))? {
            Resolved::Id(id) => Ok(id),
            Resolved::NeedsRedirect(url) => {
                // Share pages are HTML: their own lane, read as plain HTTP.
                let req =
                    ApiRequest::get(&url).header("User-Agent", &self.settings.user_agent).on_lane("share");
                let resp = api.call(req)?;
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

    /// A signed GET of `path` on the web API, read as a page.
    fn get(&self, path: &str, query: &Query, api: &Api) -> Result<Value, WalkError> {
        self.call(&format!("{}{path}", self.settings.web_url), query, false, api)
    }

    /// A signed GET (or POST) of `url`, read as a page.
    fn call(&self, url: &str, query: &Query, post: bool, api: &Api) -> Result<Value, WalkError> {
        let req = self.caller().request(url, query, post)?;
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

    /// The common block of this job's queries, with the account's msToken.
    fn common(&self, api: &Api) -> Query {
        let token = super::token::ms_token(
            &self.account_key(),
            &self.settings.mssdk_url,
            &self.settings.user_agent,
            api,
        );
        Query::common(&ClientProfile::default(), &token)
    }

    /// The account the job's calls are paced under: the cookie's digest
    /// names it, so every job of one login shares its pacing and its
    /// msToken, and the cookie never appears in a log line.
    fn account_key(&self) -> String {
        let who = self.settings.cookie.as_deref().map_or_else(
            || "anonymous".to_string(),
            |c| {
                use sha2::Digest;
                sha2::Sha256::digest(c.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect()
            },
        );
        format!("douyin:{who}")
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

impl DouyinWalk {
    /// A first page with nothing on it: a user or mix that does not exist
    /// ends the job with the reason, not as an empty success.
    fn check_exists(&self, id: &str, first: &Value, api: &Api) -> Result<(), WalkError> {
        if self.kind == Kind::Mix {
            if first["aweme_list"].is_null() {
                return Err(WalkError::Invalid(format!("mix {id} not found")));
            }
            return Ok(());
        }
        let v =
            self.get("/aweme/v1/web/user/profile/other/", &Query::user_profile(self.common(api), id), api)?;
        if v["user"].is_null() {
            return Err(WalkError::Invalid(format!("user {id} not found (deleted, or a wrong id)")));
        }
        if self.kind == Kind::Like {
            log::info!("douyin: user {id}'s like list is empty or private");
        }
        Ok(())
    }

    /// `douyin.collects`: the folders (the one asked for, or all), then
    /// each folder's works, page by page.
    fn collects(&self, cursor: Option<&Value>, api: &Api) -> Result<Page, WalkError> {
        let ids: Vec<String> = match cursor.and_then(|c| c["ids"].as_array()) {
            Some(ids) => ids.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            None => match &self.collects_id {
                Some(id) => vec![id.clone()],
                None => {
                    let mut ids = Vec::new();
                    let mut at = 0;
                    // Folders come in pages too; a few hundred at most.
                    for _ in 0..50 {
                        let v = self.get(
                            "/aweme/v1/web/collects/list/",
                            &Query::cursor_page(self.common(api), at, PAGE),
                            api,
                        )?;
                        for f in v["collects_list"].as_array().into_iter().flatten() {
                            let id = match &f["collects_id"] {
                                Value::String(s) => s.clone(),
                                Value::Number(n) => n.to_string(),
                                _ => continue,
                            };
                            ids.push(id);
                        }
                        match v["cursor"].as_i64() {
                            Some(c) if has_more(&v) => at = c,
                            _ => break,
                        }
                    }
                    ids
                }
            },
        };
        let f = cursor.and_then(|c| c["f"].as_u64()).unwrap_or(0) as usize;
        let Some(folder) = ids.get(f) else { return Ok(Page::default()) };
        let at = cursor.and_then(|c| c["c"].as_i64()).unwrap_or(0);
        let v = self.get(
            "/aweme/v1/web/collects/video/list/",
            &Query::collects_video(self.common(api), at, PAGE, folder),
            api,
        )?;
        let list = v["aweme_list"].as_array().cloned().unwrap_or_default();
        let (items, _) = self.works(&list, api);
        let next = match v["cursor"].as_i64() {
            Some(c) if has_more(&v) => Some(json!({"ids": ids, "f": f, "c": c})),
            _ if f + 1 < ids.len() => Some(json!({"ids": ids, "f": f + 1, "c": 0})),
            _ => None,
        };
        Ok(Page { items, next, ..Page::default() })
    }

    /// `douyin.live`: the room, and its stream to record while it is live.
    fn live(&self, api: &Api) -> Result<Page, WalkError> {
        let profile = ClientProfile::default();
        let (room, key) = match self.resolve(Wanted::Live, api)? {
            DouyinId::WebRid(rid) => {
                let url = format!("{}/webcast/room/web/enter/", self.settings.live_url);
                let v = self.call(&url, &Query::live_enter(Query::live(&profile), &rid), false, api)?;
                (v["data"]["data"][0].clone(), rid)
            }
            DouyinId::RoomId(id) => {
                let fp = super::sign::verify_fp(super::sign::now_ms(), &mut fastrand::Rng::new());
                let url = format!("{}/webcast/room/reflow/info/", self.settings.webcast_url);
                // F2 sends this one without a cookie.
                let caller = Caller { cookie: None, ..self.caller() };
                let req = caller.request(&url, &Query::reflow_info(&fp, &id), false)?;
                let v = page(&api.call(req)?)?;
                (v["data"]["room"].clone(), id)
            }
            other => return Err(WalkError::Invalid(format!("not a live room: {other:?}"))),
        };
        if room.is_null() {
            return Err(WalkError::Invalid(format!("live room {key} not found")));
        }
        let status = room["status"].as_i64().unwrap_or(0);
        if status != 2 {
            let what = match status {
                4 => "has ended",
                1 => "is preparing",
                _ => "is not live",
            };
            return Ok(Page {
                items: vec![Item::skip(
                    format!("live:{key}"),
                    format!("live room {key} {what} (status {status})"),
                )],
                ..Page::default()
            });
        }
        let streams = &room["stream_url"];
        let map = if self.live.flv { &streams["flv_pull_url"] } else { &streams["hls_pull_url_map"] };
        let url = map[&self.live.quality]
            .as_str()
            .or_else(|| map.as_object().and_then(|m| m.values().find_map(Value::as_str)))
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"));
        let Some(url) = url else {
            return Err(WalkError::Invalid(format!(
                "live room {key} offers no {} stream",
                if self.live.flv { "FLV" } else { "HLS" }
            )));
        };
        let title = room["title"].as_str().unwrap_or("");
        let ext = if self.live.flv { "flv" } else { "ts" };
        let started = crate::job::unix_now();
        let name = format!(
            "{}_{}_{}_live.{ext}",
            crate::naming::sanitize_component(&key, "room"),
            super::naming::china_time(i64::try_from(started).unwrap_or(0)),
            crate::naming::sanitize_component(title, "live")
        );
        let stream = crate::checkpoint::Stream {
            url: url.to_string(),
            protocol: if self.live.flv {
                crate::checkpoint::StreamProtocol::Flv
            } else {
                crate::checkpoint::StreamProtocol::Hls
            },
            max_secs: self.live.max_secs,
            max_bytes: None,
        };
        Ok(Page {
            items: vec![Item::stream(format!("live:{key}:{started}"), name, stream)],
            ..Page::default()
        })
    }
}

/// `has_more`, an int or a bool.
fn has_more(v: &Value) -> bool {
    v["has_more"].as_i64().map_or_else(|| v["has_more"].as_bool().unwrap_or(false), |n| n != 0)
}

impl Walk for DouyinWalk {
    fn account(&self) -> Option<AccountSpec> {
        // No documented budget: a polite gap, as F2 keeps between pages.
        let mut a = AccountSpec::new(
            self.account_key(),
            classify,
            // 1.5 s apart, as F2's users run it, plus up to a second at
            // random: machine-regular timing is what gets an account
            // flagged.
            PacingSpec {
                interval: Some(Duration::from_millis(1500)),
                jitter: Duration::from_millis(1000),
                ..PacingSpec::polite(Duration::from_secs(30))
            },
        );
        // Share pages (short links) are HTML, read as plain HTTP on a lane
        // of their own.
        a.lanes.push(crate::providers::LaneSpec {
            name: "share",
            classify: crate::pacing::default_classify,
            pacing: PacingSpec {
                interval: Some(Duration::from_millis(500)),
                ..PacingSpec::polite(Duration::from_secs(5))
            },
        });
        // The msToken report, a JSON answer of another host: its own
        // lane, one quick retry, then the generated token stands in.
        a.lanes.push(crate::providers::LaneSpec {
            name: super::token::LANE,
            classify: crate::pacing::default_classify,
            pacing: PacingSpec {
                interval: Some(Duration::from_millis(1500)),
                retries: 1,
                ..PacingSpec::polite(Duration::from_secs(30))
            },
        });
        Some(a)
    }

    fn next_page(&mut self, cursor: Option<&Value>, api: &Api) -> Result<Page, WalkError> {
        match self.kind {
            Kind::One => {
                let DouyinId::Aweme(id) = self.resolve(Wanted::Aweme, api)? else {
                    return Err(WalkError::Invalid("not a link to a work".into()));
                };
                let v =
                    self.get("/aweme/v1/web/aweme/detail/", &Query::post_detail(self.common(api), &id), api)?;
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
                    &Query::user_profile(self.common(api), &sec),
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
            Kind::Collection | Kind::Feed => {
                let at = cursor.and_then(|c| c["c"].as_i64()).unwrap_or(0);
                let (v, next_at) = if self.kind == Kind::Feed {
                    let v = self.get(
                        "/aweme/v1/web/tab/feed/",
                        &Query::post_feed(self.common(api), 10, at),
                        api,
                    )?;
                    (v, Some(at + 1))
                } else {
                    let url = format!("{}/aweme/v1/web/aweme/listcollection/", self.settings.web_url);
                    let v = self.call(&url, &Query::cursor_page(self.common(api), at, PAGE), true, api)?;
                    let next = v["cursor"].as_i64();
                    (v, next)
                };
                let list = v["aweme_list"].as_array().cloned().unwrap_or_default();
                let (items, all_seen) = self.works(&list, api);
                // The feed has no end of its own: `max_items` (required)
                // ends it, or a page with nothing.
                let more = if self.kind == Kind::Feed { !list.is_empty() } else { has_more(&v) };
                let more = more && next_at.is_some() && !(self.stop_after_seen && all_seen);
                Ok(Page { items, next: more.then(|| json!({"c": next_at})), ..Page::default() })
            }
            Kind::Collects => self.collects(cursor, api),
            Kind::Live => self.live(api),
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
                        ("/aweme/v1/web/aweme/post/", Query::user_posts(self.common(api), at, PAGE, &id))
                    }
                    Kind::Like => {
                        ("/aweme/v1/web/aweme/favorite/", Query::user_posts(self.common(api), at, PAGE, &id))
                    }
                    _ => ("/aweme/v1/web/mix/aweme/", Query::user_mix(self.common(api), at, PAGE, &id)),
                };
                let v = self.get(path, &q, api)?;
                if cursor.is_none() && !has_more(&v) && v["aweme_list"].as_array().is_none_or(Vec::is_empty) {
                    self.check_exists(&id, &v, api)?;
                }
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
