//! A stateful fake of the Pixiv mobile App API, its OAuth endpoint and its
//! image hosts, for integration tests (protocol: `docs/pixiv.md`).
//!
//! One loopback port serves all three "hosts" by path:
//! - OAuth: `POST /auth/token` (refresh_token and PKCE authorization_code
//!   grants).
//! - App API: `/v1/...`, `/v2/...`, `/webview/v2/novel`. Every call needs
//!   `Authorization: Bearer <access token>`.
//! - Images (i.pximg.net): `/img-original/...`, `/img-master/...`,
//!   `/c/...`, `/img-zip-ugoira/...`, `/novel-cover-original/...`,
//!   `/user-profile/...`, and placeholders (s.pximg.net):
//!   `/common/images/limit_*_360.png`, `/common/images/no_profile*.png`.
//!
//! Every URL the fake emits (`next_url`, image, zip and placeholder URLs)
//! starts with its own `http://127.0.0.1:PORT`, so a client can follow them
//! verbatim; `next_url` queries still have the real shapes (`offset`,
//! `max_bookmark_id`, `date`, `last_order`, `+` for spaces, `name[0]`
//! arrays).
//!
//! Choices where the real service is unknown (marked `[?]` in the spec):
//! - `max_bookmark_id` is inclusive: `next_url` carries the internal
//!   bookmark id of the first item of the next page.
//! - JSON object keys come out in alphabetical order (serde_json without
//!   `preserve_order`), except the error bodies, which are byte-exact.
//! - Image paths carry the work's `create_date` plus one second (JST), so
//!   the date in the path never equals `create_date`.
//! - The rate limit (`rate_limit_next`) is checked before the token, so a
//!   throttled call is answered 403 whatever its token.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use md5::{Digest, Md5};
use serde_json::{Value, json};

use crate::support::http::{Body, Handler, Request, Response, Server, lock, percent_decode, reason};

/// OAuth `client_id` every Pixiv client sends.
pub const CLIENT_ID: &str = "MOBrBDS8blbauoSck0ZfDbtuzpyT";
/// OAuth `client_secret` every Pixiv client sends.
pub const CLIENT_SECRET: &str = "lsACyCD94FhDUtGTXi3QzcFE2uU1hqtDaKeqrdwj";
/// Secret appended to `X-Client-Time` before hashing it into `X-Client-Hash`.
pub const HASH_SECRET: &str = "28c1fdd170a5204386cb1313c7077b34f83e4aaf4aa829ce78c231e05b0bae2c";
/// `redirect_uri` of the authorization_code grant.
pub const REDIRECT_URI: &str = "https://app-api.pixiv.net/web/v1/users/auth/pixiv/callback";
/// The only authorization code the fake accepts (with the registered PKCE
/// challenge).
pub const GOOD_CODE: &str = "good-code";
/// Items per page of every illust list.
pub const PAGE_SIZE: usize = 30;
/// Largest `offset` search accepts.
pub const OFFSET_CAP: usize = 5000;

/// 400 body for `offset` > 5000 (search).
pub const OFFSET_CAP_BODY: &str = r#"{"error":{"user_message":"","message":"{\"offset\":[\"offset must be no more than 5000\"]}","reason":"","user_message_details":{}}}"#;
/// 403 body of the API rate limit.
pub const RATE_LIMIT_BODY: &str =
    r#"{"error":{"user_message":"","message":"Rate Limit","reason":"","user_message_details":{}}}"#;
/// 400 body of `/v1/user/illusts` with a `type` other than illust/manga.
pub const INVALID_TYPE_BODY: &str = r#"{"error":{"user_message":"","message":"{\"type\":[\"Type contains invalid value\"]}","reason":"","user_message_details":{}}}"#;
/// 400 body of an API call with an unknown or expired access token.
pub const TOKEN_INVALID_BODY: &str = r#"{"error":{"user_message":"","message":"Error occurred at the OAuth process. Please check your Access Token to fix this. Error Message: invalid_grant","reason":"","user_message_details":{}}}"#;
/// 400 body of an API call without `Authorization`.
pub const TOKEN_MISSING_BODY: &str = r#"{"error":{"user_message":"","message":"Error occurred at the OAuth process. Please check your Access Token to fix this. Error Message: invalid_request","reason":"","user_message_details":{}}}"#;
/// 400 body of `/auth/token` for an invalid or revoked refresh token.
pub const REFRESH_INVALID_BODY: &str = r#"{"has_error":true,"errors":{"system":{"message":"Invalid refresh token","code":1508}},"error":"invalid_grant"}"#;
/// 400 body of `/auth/token` for a bad authorization code or verifier.
pub const CODE_INVALID_BODY: &str = r#"{"has_error":true,"errors":{"system":{"message":"Invalid authorization code","code":1508}},"error":"invalid_grant"}"#;
/// 404 `user_message` of a deleted work, by `Accept-Language`.
pub const DELETED_WORK_EN: &str = "The artwork has been deleted or the artwork ID does not exist.";
/// Japanese variant of [`DELETED_WORK_EN`].
pub const DELETED_WORK_JA: &str = "該当作品は削除されたか、存在しない作品IDです。";
/// Chinese variant of [`DELETED_WORK_EN`].
pub const DELETED_WORK_ZH: &str = "该作品已被删除，或作品ID不存在。";
/// 404 `user_message` of `/v1/user/detail` for a missing or deleted user.
pub const DELETED_USER: &str = "User has left pixiv or the user ID does not exist.";
/// 404 `user_message` of an unknown endpoint.
pub const NO_ENDPOINT: &str = "Specified end-point doesn't exist";

/// Ranking modes the fake accepts (others are 400).
const RANKING_MODES: &[&str] = &[
    "day",
    "week",
    "month",
    "day_male",
    "day_female",
    "week_original",
    "week_rookie",
    "day_manga",
    "week_manga",
    "month_manga",
    "week_rookie_manga",
    "day_ai",
    "day_r18",
    "day_male_r18",
    "day_female_r18",
    "week_r18",
    "week_r18g",
    "day_r18_ai",
];

/// 2020-01-01T00:00:00+09:00 as Unix seconds.
const DATE_BASE: i64 = 1_577_804_400;
/// Number of frames of every ugoira.
const UGOIRA_FRAMES: u32 = 6;

// ---------------------------------------------------------------------------
// Public data types
// ---------------------------------------------------------------------------

/// Work type (`type` in the illust object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `"illust"`.
    Illust,
    /// `"manga"`.
    Manga,
    /// `"ugoira"` (always one page; frames come from `/v1/ugoira/metadata`).
    Ugoira,
}

impl Kind {
    /// The API's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Illust => "illust",
            Kind::Manga => "manga",
            Kind::Ugoira => "ugoira",
        }
    }
}

/// Why a work is shown as a placeholder (§6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `limit_sanity_level_360.png`; left out of `/v1/user/illusts`.
    Sanity,
    /// `limit_mypixiv_360.png` (My pixiv only).
    Mypixiv,
    /// `limit_unknown_360.png` with `user.id: 0` (deleted, seen in
    /// bookmarks); left out of `/v1/user/illusts`.
    Unknown,
}

impl Limit {
    fn file(self) -> &'static str {
        match self {
            Limit::Sanity => "limit_sanity_level_360.png",
            Limit::Mypixiv => "limit_mypixiv_360.png",
            Limit::Unknown => "limit_unknown_360.png",
        }
    }
}

/// One illust, manga or ugoira.
#[derive(Debug, Clone)]
pub struct Work {
    /// Illust id.
    pub id: u64,
    /// Author's user id.
    pub user_id: u64,
    /// Work type.
    pub kind: Kind,
    /// Page count (ugoira: always shown as 1).
    pub pages: u32,
    /// Extension of the originals: `"jpg"`, `"png"` or `"gif"`.
    pub ext: &'static str,
    /// Title.
    pub title: String,
    /// Tag names (real tags never contain spaces: search splits `word`
    /// on whitespace and every term must match).
    pub tags: Vec<String>,
    /// 0 all ages, 1 R-18, 2 R-18G.
    pub x_restrict: u8,
    /// `illust_ai_type`: 0 unknown, 1 not AI, 2 AI.
    pub ai_type: u8,
    /// `total_bookmarks` (also the `popular_desc` search key).
    pub bookmarks: u64,
    /// `create_date`, e.g. `"2025-02-03T00:03:17+09:00"`.
    pub create_date: String,
    /// Illust series (`series: {id, title}`).
    pub series_id: Option<u64>,
    /// Shown as a placeholder when set.
    pub limit: Option<Limit>,
    /// Detail answers 404; bookmark lists show a `limit_unknown`
    /// placeholder; images are gone.
    pub deleted: bool,
    /// HTML caption.
    pub caption: String,
    /// File names carry a `-{32 hex}` hash after the id
    /// (`{id}-{hash}_p0.jpg`).
    pub hashed_name: bool,
}

impl Work {
    /// A one-page jpg illust, title `"Work {id}"`, no tags, not AI,
    /// `create_date` derived from the id (one hour apart per id for small
    /// ids, so a higher id is newer).
    pub fn new(id: u64, user_id: u64) -> Work {
        Work {
            id,
            user_id,
            kind: Kind::Illust,
            pages: 1,
            ext: "jpg",
            title: format!("Work {id}"),
            tags: Vec::new(),
            x_restrict: 0,
            ai_type: 1,
            bookmarks: 0,
            create_date: date_for_id(id),
            series_id: None,
            limit: None,
            deleted: false,
            caption: String::new(),
            hashed_name: false,
        }
    }

    /// Builder: sets `kind`.
    pub fn kind(mut self, k: Kind) -> Work {
        self.kind = k;
        self
    }

    /// Builder: sets `pages`.
    pub fn pages(mut self, n: u32) -> Work {
        self.pages = n;
        self
    }

    /// Builder: sets `ext`.
    pub fn ext(mut self, e: &'static str) -> Work {
        self.ext = e;
        self
    }

    /// Builder: sets `tags`.
    pub fn tags(mut self, t: &[&str]) -> Work {
        self.tags = t.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Builder: sets `limit`.
    pub fn limit(mut self, l: Limit) -> Work {
        self.limit = Some(l);
        self
    }

    /// The page count the API reports.
    fn page_count(&self) -> u32 {
        if self.kind == Kind::Ugoira { 1 } else { self.pages.max(1) }
    }
}

/// One `POST /auth/token` as received.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `grant_type` form field (empty if missing).
    pub grant_type: String,
    /// `refresh_token` form field.
    pub refresh_token: Option<String>,
    /// `code` form field (authorization_code grant).
    pub code: Option<String>,
    /// `code_verifier` form field.
    pub code_verifier: Option<String>,
    /// `client_id` form field.
    pub client_id: Option<String>,
    /// `X-Client-Time` header.
    pub x_client_time: Option<String>,
    /// `X-Client-Hash` header.
    pub x_client_hash: Option<String>,
    /// `Some(md5(time + HASH_SECRET) == hash)` when both headers were sent.
    pub hash_ok: Option<bool>,
    /// Status the fake answered.
    pub status: u16,
    /// Arrival time.
    pub at: Instant,
    /// All form fields, decoded.
    pub form: Vec<(String, String)>,
    /// All request headers (names lowercased).
    pub headers: Vec<(String, String)>,
}

/// One App API call (anything under `/v1/`, `/v2/`, `/v3/`, `/webview/`).
#[derive(Debug, Clone)]
pub struct ApiCall {
    /// Method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Raw request target (path and query).
    pub target: String,
    /// Request headers (names lowercased).
    pub headers: Vec<(String, String)>,
    /// When the request arrived.
    pub started: Instant,
    /// When the response was handed to the socket (after the latency).
    pub ended: Instant,
    /// Status answered.
    pub status: u16,
    /// Whether it carried a currently valid access token.
    pub authorized: bool,
}

impl ApiCall {
    /// First query value named `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// One request to the image hosts (including placeholders).
#[derive(Debug, Clone)]
pub struct ImageRequest {
    /// Method.
    pub method: String,
    /// Path (query dropped).
    pub path: String,
    /// `Referer` header.
    pub referer: Option<String>,
    /// `Range` header.
    pub range: Option<String>,
    /// Status answered.
    pub status: u16,
    /// Arrival time.
    pub at: Instant,
}

/// A fault for one image request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageFault {
    /// Answer this status (text body) instead.
    Status(u16),
    /// Send full headers, then only `n` body bytes, then close.
    Truncate(usize),
    /// Answer 200 with the whole body even when a range was asked.
    IgnoreRange,
    /// Pause for `dur` after `after` body bytes.
    Stall {
        /// Body bytes before the pause.
        after: usize,
        /// Pause length.
        dur: Duration,
    },
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct UserRec {
    name: String,
    account: String,
    deleted: bool,
}

#[derive(Debug, Clone)]
struct Bookmark {
    bid: u64,
    user_id: u64,
    illust_id: u64,
    private: bool,
    tags: Vec<String>,
}

#[derive(Debug, Clone)]
struct SeriesRec {
    user_id: u64,
    title: String,
    ids: Vec<u64>,
}

#[derive(Debug, Clone)]
struct NovelRec {
    id: u64,
    user_id: u64,
    title: String,
    text: String,
    series_id: Option<u64>,
    images: Vec<(u64, u64)>,
    create_date: String,
}

#[derive(Debug, Clone, Copy)]
enum AssetKind {
    Original { id: u64, page: u32, ext: &'static str },
    Master { id: u64, page: u32 },
    UgoiraFrame { id: u64, frame: u32 },
    UgoiraZip { id: u64, big: bool },
    NovelImage { seed: u64 },
    NovelCover { id: u64 },
    Avatar { uid: u64 },
    SeriesCover { sid: u64 },
    Placeholder { seed: u64 },
}

#[derive(Debug, Clone, Copy)]
struct Asset {
    kind: AssetKind,
    /// Unix seconds for `Last-Modified`.
    mtime: i64,
}

struct State {
    base: String,
    users: BTreeMap<u64, UserRec>,
    works: BTreeMap<u64, Work>,
    work_paths: HashMap<u64, Vec<String>>,
    bookmarks: Vec<Bookmark>,
    next_bid: u64,
    rankings: Vec<(String, Option<String>, Vec<u64>)>,
    follow_feed: Vec<u64>,
    series: BTreeMap<u64, SeriesRec>,
    novels: BTreeMap<u64, NovelRec>,
    novel_series_titles: HashMap<u64, String>,
    assets: HashMap<String, Asset>,
    // auth
    refresh_token: String,
    refresh_valid: bool,
    rotate: bool,
    access_ttl: u64,
    access_tokens: HashMap<String, Instant>,
    token_user: u64,
    token_seq: u64,
    pkce: Option<String>,
    token_requests: Vec<TokenRequest>,
    // faults and timing
    rate_limit_next: usize,
    rate_limit_every: usize,
    api_seq: u64,
    api_latency: Duration,
    image_latency: Duration,
    cloudflare_next: usize,
    require_referer: bool,
    image_faults: VecDeque<(Option<String>, ImageFault)>,
    // observation
    api_calls: Vec<ApiCall>,
    image_requests: Vec<ImageRequest>,
}

struct Inner {
    state: Mutex<State>,
    stop: AtomicBool,
}

/// A running fake Pixiv on `127.0.0.1`. Stops on drop.
pub struct FakePixiv {
    inner: Arc<Inner>,
    server: Server,
}

impl Drop for FakePixiv {
    fn drop(&mut self) {
        // Wakes handlers sleeping for latency; the server stops after this.
        self.inner.stop.store(true, Ordering::SeqCst);
    }
}

/// The initial refresh token of every fake (deterministic).
pub fn default_refresh_token() -> String {
    b64url(&sha256(b"spoolfetch-fake-pixiv refresh 0"))
}

impl FakePixiv {
    /// Starts an empty fake on an ephemeral loopback port. The refresh token
    /// is [`default_refresh_token`], owned by user 1; access tokens live
    /// 3600 s; images need a pixiv `Referer`.
    pub fn start() -> FakePixiv {
        let mut assets = HashMap::new();
        for (i, name) in [
            "limit_sanity_level_360.png",
            "limit_unviewable_360.png",
            "limit_mypixiv_360.png",
            "limit_unknown_360.png",
            "no_profile.png",
            "no_profile_s.png",
            "no_profile_ss.png",
        ]
        .iter()
        .enumerate()
        {
            assets.insert(
                format!("/common/images/{name}"),
                Asset { kind: AssetKind::Placeholder { seed: i as u64 }, mtime: DATE_BASE },
            );
        }
        let state = State {
            base: String::new(),
            users: BTreeMap::new(),
            works: BTreeMap::new(),
            work_paths: HashMap::new(),
            bookmarks: Vec::new(),
            next_bid: 6_600_000_000,
            rankings: Vec::new(),
            follow_feed: Vec::new(),
            series: BTreeMap::new(),
            novels: BTreeMap::new(),
            novel_series_titles: HashMap::new(),
            assets,
            refresh_token: default_refresh_token(),
            refresh_valid: true,
            rotate: false,
            access_ttl: 3600,
            access_tokens: HashMap::new(),
            token_user: 1,
            token_seq: 0,
            pkce: None,
            token_requests: Vec::new(),
            rate_limit_next: 0,
            rate_limit_every: 0,
            api_seq: 0,
            api_latency: Duration::ZERO,
            image_latency: Duration::ZERO,
            cloudflare_next: 0,
            require_referer: true,
            image_faults: VecDeque::new(),
            api_calls: Vec::new(),
            image_requests: Vec::new(),
        };
        let inner = Arc::new(Inner { state: Mutex::new(state), stop: AtomicBool::new(false) });
        let inn = inner.clone();
        let handler: Handler = Arc::new(move |req: &Request| handle(&inn, req));
        let server = Server::start(handler);
        lock(&inner.state).base = server.base_url();
        FakePixiv { inner, server }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    /// `http://127.0.0.1:PORT` (API, OAuth and image "hosts" alike).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// `base_url()` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The underlying generic server (raw request log, connection count).
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Adds (or renames) a user.
    pub fn add_user(&self, id: u64, name: &str, account: &str) {
        let mut st = self.st();
        st.users.insert(id, UserRec { name: name.into(), account: account.into(), deleted: false });
        register_avatar(&mut st, id);
    }

    /// Marks a user as deleted: `/v1/user/detail` 404, `/v1/user/illusts`
    /// the `user.id: 0` body.
    pub fn delete_user(&self, id: u64) {
        let mut st = self.st();
        if let Some(u) = st.users.get_mut(&id) {
            u.deleted = true;
        }
    }

    /// Adds or replaces a work (its author is created as `user{id}` if
    /// unknown). Its image files are served from now on unless deleted.
    pub fn add_work(&self, w: Work) {
        let mut st = self.st();
        ensure_user(&mut st, w.user_id);
        if let Some(old) = st.work_paths.remove(&w.id) {
            for p in old {
                st.assets.remove(&p);
            }
        }
        if !w.deleted {
            let paths = work_assets(&w);
            let mut names = Vec::with_capacity(paths.len());
            for (p, a) in paths {
                names.push(p.clone());
                st.assets.insert(p, a);
            }
            st.work_paths.insert(w.id, names);
        }
        st.works.insert(w.id, w);
    }

    /// Adds many works.
    pub fn add_works(&self, ws: impl IntoIterator<Item = Work>) {
        for w in ws {
            self.add_work(w);
        }
    }

    /// A copy of a stored work.
    pub fn work(&self, id: u64) -> Option<Work> {
        self.st().works.get(&id).cloned()
    }

    /// Bookmarks `illust_id` for `user_id` (the illust need not exist: it
    /// then shows as a `limit_unknown` placeholder). Lists are newest first;
    /// internal bookmark ids increase with every call.
    pub fn add_bookmark(&self, user_id: u64, illust_id: u64, private: bool, tags: &[&str]) {
        let mut st = self.st();
        let bid = st.next_bid;
        st.next_bid += 37 + (illust_id % 7);
        st.bookmarks.push(Bookmark {
            bid,
            user_id,
            illust_id,
            private,
            tags: tags.iter().map(|s| s.to_string()).collect(),
        });
    }

    /// Internal bookmark id of `user_id`'s bookmark of `illust_id`.
    pub fn bookmark_id(&self, user_id: u64, illust_id: u64) -> Option<u64> {
        self.st().bookmarks.iter().find(|b| b.user_id == user_id && b.illust_id == illust_id).map(|b| b.bid)
    }

    /// Sets the ranking for `mode` and `date` (`None`: the ranking served
    /// when the request has no `date`), in rank order.
    pub fn set_ranking(&self, mode: &str, date: Option<&str>, ids: &[u64]) {
        let mut st = self.st();
        let date = date.map(str::to_string);
        st.rankings.retain(|(m, d, _)| !(m == mode && *d == date));
        st.rankings.push((mode.to_string(), date, ids.to_vec()));
    }

    /// Sets `/v2/illust/follow` (in listing order).
    pub fn set_follow_feed(&self, ids: &[u64]) {
        self.st().follow_feed = ids.to_vec();
    }

    /// Adds an illust series; `ids` in listing order. Works listed here
    /// show `series: {id, title}`.
    pub fn add_series(&self, series_id: u64, user_id: u64, title: &str, ids: &[u64]) {
        let mut st = self.st();
        st.series.insert(series_id, SeriesRec { user_id, title: title.into(), ids: ids.to_vec() });
        st.assets.insert(
            series_cover_path(series_id),
            Asset { kind: AssetKind::SeriesCover { sid: series_id }, mtime: DATE_BASE },
        );
    }

    /// Adds a novel. `images` are `[uploadedimage:ID]` images: (id, seed of
    /// [`FakePixiv::novel_image_bytes`]). The text is returned verbatim by
    /// `/webview/v2/novel`.
    pub fn add_novel(
        &self,
        id: u64,
        user_id: u64,
        title: &str,
        text: &str,
        series_id: Option<u64>,
        images: &[(u64, u64)],
    ) {
        let mut st = self.st();
        ensure_user(&mut st, user_id);
        let n = NovelRec {
            id,
            user_id,
            title: title.into(),
            text: text.into(),
            series_id,
            images: images.to_vec(),
            create_date: date_for_id(id),
        };
        for (p, a) in novel_assets(&n) {
            st.assets.insert(p, a);
        }
        st.novels.insert(id, n);
    }

    /// Sets a novel series' title (default `"Novel series {id}"`).
    pub fn set_novel_series_title(&self, series_id: u64, title: &str) {
        self.st().novel_series_titles.insert(series_id, title.into());
    }

    // --- auth --------------------------------------------------------------

    /// Makes `token` the one valid refresh token (and un-revokes).
    pub fn set_refresh_token(&self, token: &str) {
        let mut st = self.st();
        st.refresh_token = token.into();
        st.refresh_valid = true;
    }

    /// Owner of the tokens (`user` in the token response, `is_bookmarked`,
    /// follow feed). Default 1.
    pub fn set_token_user(&self, id: u64) {
        self.st().token_user = id;
    }

    /// When on, every successful refresh returns a new refresh token and
    /// invalidates the old one.
    pub fn set_rotate_refresh_tokens(&self, on: bool) {
        self.st().rotate = on;
    }

    /// `expires_in` of new access tokens; they are rejected after that.
    pub fn set_access_ttl(&self, secs: u64) {
        self.st().access_ttl = secs;
    }

    /// Invalidates every access token issued so far.
    pub fn expire_access_tokens(&self) {
        self.st().access_tokens.clear();
    }

    /// The next refresh (and every one after, until `set_refresh_token`)
    /// answers 400 `invalid_grant` 1508.
    pub fn revoke_refresh_token(&self) {
        self.st().refresh_valid = false;
    }

    /// The currently valid refresh token.
    pub fn current_refresh_token(&self) -> String {
        self.st().refresh_token.clone()
    }

    /// Mints a valid access token directly (no `/auth/token` call, nothing
    /// recorded), for tests that are not about OAuth.
    pub fn issue_access_token(&self) -> String {
        mint_access(&mut self.st())
    }

    /// Every `/auth/token` request so far.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.st().token_requests.clone()
    }

    /// Registers the PKCE challenge (`base64url(sha256(verifier))`, no
    /// padding) for one exchange of [`GOOD_CODE`].
    pub fn expect_pkce(&self, challenge: &str) {
        self.st().pkce = Some(challenge.into());
    }

    /// `base64url(sha256(verifier))` without padding.
    pub fn pkce_challenge(verifier: &str) -> String {
        b64url(&sha256(verifier.as_bytes()))
    }

    // --- faults and timing --------------------------------------------------

    /// The next `n` API calls answer 403 `Rate Limit`.
    pub fn rate_limit_next(&self, n: usize) {
        self.st().rate_limit_next = n;
    }

    /// Every `n`-th API call (counted from now) answers 403 `Rate Limit`;
    /// 0 turns it off.
    pub fn set_rate_limit_every(&self, n: usize) {
        let mut st = self.st();
        st.rate_limit_every = n;
        st.api_seq = 0;
    }

    /// Delay before every API answer.
    pub fn set_api_latency(&self, d: Duration) {
        self.st().api_latency = d;
    }

    /// Delay before every image answer.
    pub fn set_image_latency(&self, d: Duration) {
        self.st().image_latency = d;
    }

    /// The next `n` `/auth/token` requests answer a Cloudflare 403 HTML page.
    pub fn cloudflare_next_token(&self, n: usize) {
        self.st().cloudflare_next = n;
    }

    /// Whether images need a `Referer` on `*.pixiv.net` (or `*.pximg.net`).
    /// Default on. Placeholders never need one.
    pub fn set_require_referer(&self, on: bool) {
        self.st().require_referer = on;
    }

    /// Queues a fault for the next image request.
    pub fn image_fault_next(&self, f: ImageFault) {
        self.st().image_faults.push_back((None, f));
    }

    /// Queues a fault for the next image request whose path contains
    /// `path_part`.
    pub fn image_fault_for(&self, path_part: &str, f: ImageFault) {
        self.st().image_faults.push_back((Some(path_part.into()), f));
    }

    // --- observation ----------------------------------------------------------

    /// API calls so far, ordered by arrival.
    pub fn api_calls(&self) -> Vec<ApiCall> {
        let mut v = self.st().api_calls.clone();
        v.sort_by_key(|c| c.started);
        v
    }

    /// API calls to `path` (no query), ordered by arrival.
    pub fn api_calls_to(&self, path: &str) -> Vec<ApiCall> {
        self.api_calls().into_iter().filter(|c| c.path == path).collect()
    }

    /// Image and placeholder requests so far, in completion order.
    pub fn image_requests(&self) -> Vec<ImageRequest> {
        self.st().image_requests.clone()
    }

    /// Forgets the recorded API calls, image and token requests.
    pub fn clear_logs(&self) {
        let mut st = self.st();
        st.api_calls.clear();
        st.image_requests.clear();
        st.token_requests.clear();
    }

    // --- URLs the API hands out -------------------------------------------------

    /// Original URL of page `page` as the API gives it (ugoira: frame 0).
    pub fn original_url(&self, illust_id: u64, page: u32) -> Option<String> {
        let st = self.st();
        let w = st.works.get(&illust_id)?;
        Some(format!("{}{}", st.base, original_path(w, page)))
    }

    /// Ugoira zip URL: `big` = `_ugoira1920x1080.zip`, else `600x600`.
    pub fn ugoira_zip_url(&self, illust_id: u64, big: bool) -> Option<String> {
        let st = self.st();
        let w = st.works.get(&illust_id)?;
        Some(format!("{}{}", st.base, zip_path(w, big)))
    }

    // --- deterministic bytes --------------------------------------------------

    /// Original image bytes: a real 16x16 JPEG, PNG or GIF (by `ext`),
    /// padded with a comment to a few KB, unique per (id, page, ext).
    pub fn image_bytes(illust_id: u64, page: u32, ext: &str) -> Vec<u8> {
        let seed = mix(illust_id, u64::from(page) + 1);
        let pad = 2048 + (seed % 2048) as usize;
        let label = format!("spoolfetch fake pixiv illust {illust_id} p{page} {ext}");
        match ext {
            "png" => png(16, 16, rgb(seed), &label, pad),
            "gif" => gif(rgb(seed), &label, pad),
            _ => jpeg(16, 16, rgb(seed), &label, pad),
        }
    }

    /// `img-master` / thumbnail bytes (a JPEG, distinct from the original).
    pub fn master_bytes(illust_id: u64, page: u32) -> Vec<u8> {
        let seed = mix(illust_id ^ 0x6d61_7374, u64::from(page) + 7);
        jpeg(8, 8, rgb(seed), &format!("spoolfetch fake pixiv master {illust_id} p{page}"), 600)
    }

    /// The full-size ugoira zip (`_ugoira1920x1080.zip`): STORED entries
    /// `000000.jpg`.. (6 frames), each a real 16x16 JPEG.
    pub fn ugoira_zip(illust_id: u64) -> Vec<u8> {
        let files: Vec<(String, Vec<u8>)> = (0..UGOIRA_FRAMES)
            .map(|i| (format!("{i:06}.jpg"), ugoira_frame_bytes(illust_id, i, true)))
            .collect();
        zip_stored(&files)
    }

    /// The small ugoira zip (`_ugoira600x600.zip`): same names, 8x8 frames,
    /// different bytes.
    pub fn ugoira_zip_small(illust_id: u64) -> Vec<u8> {
        let files: Vec<(String, Vec<u8>)> = (0..UGOIRA_FRAMES)
            .map(|i| (format!("{i:06}.jpg"), ugoira_frame_bytes(illust_id, i, false)))
            .collect();
        zip_stored(&files)
    }

    /// One frame of the full-size zip (also served as `_ugoira{N}.jpg`).
    pub fn ugoira_frame(illust_id: u64, frame: u32) -> Vec<u8> {
        ugoira_frame_bytes(illust_id, frame, true)
    }

    /// `frames` of `/v1/ugoira/metadata`: (`"000000.jpg"`, delay ms), ...
    pub fn ugoira_frames(illust_id: u64) -> Vec<(String, u32)> {
        (0..UGOIRA_FRAMES)
            .map(|i| (format!("{i:06}.jpg"), 40 + ((mix(illust_id, u64::from(i)) % 7) as u32) * 10))
            .collect()
    }

    /// Bytes of a novel's uploaded image (a JPEG) for `seed`.
    pub fn novel_image_bytes(seed: u64) -> Vec<u8> {
        let s = mix(seed, 0x6e6f_7665);
        jpeg(16, 8, rgb(s), &format!("spoolfetch fake pixiv novel image {seed}"), 1024 + (s % 1024) as usize)
    }

    /// Bytes of a novel cover (any size variant).
    pub fn novel_cover_bytes(novel_id: u64) -> Vec<u8> {
        let s = mix(novel_id, 0x636f_7665);
        jpeg(8, 16, rgb(s), &format!("spoolfetch fake pixiv novel cover {novel_id}"), 700)
    }

    /// Bytes of a placeholder (`/common/images/...`): a small PNG.
    pub fn placeholder_bytes(name: &str) -> Vec<u8> {
        let s = mix(fnv(name.as_bytes()), 3);
        png(4, 4, rgb(s), name, 0)
    }
}

// ---------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------

fn handle(inner: &Inner, req: &Request) -> Response {
    let path = req.path_only();
    if path == "/auth/token" {
        return handle_token(inner, req);
    }
    if ["/v1/", "/v2/", "/v3/", "/webview/", "/web/"].iter().any(|p| path.starts_with(p)) {
        return handle_api(inner, req);
    }
    handle_image(inner, req)
}

fn sleep_unless_stopped(inner: &Inner, d: Duration) {
    let end = Instant::now() + d;
    while !inner.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

fn json_resp(status: u16, v: &Value) -> Response {
    Response::json(status, &v.to_string())
}

fn api_error(status: u16, user_message: &str, message: &str) -> Response {
    let body = format!(
        r#"{{"error":{{"user_message":{},"message":{},"reason":"","user_message_details":{{}}}}}}"#,
        Value::String(user_message.into()),
        Value::String(message.into())
    );
    Response::json(status, &body)
}

/// 400 with `message` = `{"<field>":["<text>"]}` (a JSON string in a string).
fn param_error(field: &str, text: &str) -> Response {
    let inner = json!({ field: [text] }).to_string();
    api_error(400, "", &inner)
}

// --- OAuth ----------------------------------------------------------------------

fn cloudflare_page() -> Response {
    let html = "<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title>\
<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\"></head><body>\
<div id=\"challenge-body-text\">oauth.secure.pixiv.net needs to review the security of your connection before proceeding.</div>\
<form id=\"challenge-form\" action=\"/auth/token?__cf_chl_f_tk=fake\" method=\"POST\"></form>\
<script>window._cf_chl_opt={cType:'managed'};</script></body></html>";
    Response::new(403)
        .header("Content-Type", "text/html; charset=UTF-8")
        .header("Server", "cloudflare")
        .header("cf-mitigated", "challenge")
        .with_body(Body::Bytes(html.as_bytes().to_vec()))
}

fn parse_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn handle_token(inner: &Inner, req: &Request) -> Response {
    let form = parse_form(&req.body_text());
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let time = req.header("x-client-time").map(str::to_string);
    let hash = req.header("x-client-hash").map(str::to_string);
    let hash_ok = match (&time, &hash) {
        (Some(t), Some(h)) => Some(md5_hex(format!("{t}{HASH_SECRET}").as_bytes()).eq_ignore_ascii_case(h)),
        _ => None,
    };
    let mut st = lock(&inner.state);
    let resp = if st.cloudflare_next > 0 {
        st.cloudflare_next -= 1;
        cloudflare_page()
    } else if !req.method.eq_ignore_ascii_case("POST") {
        Response::json(
            400,
            r#"{"has_error":true,"errors":{"system":{"message":"Invalid request method","code":1508}},"error":"invalid_request"}"#,
        )
    } else if field("client_id").as_deref() != Some(CLIENT_ID)
        || field("client_secret").as_deref() != Some(CLIENT_SECRET)
    {
        Response::json(
            400,
            r#"{"has_error":true,"errors":{"system":{"message":"Invalid client","code":1508}},"error":"invalid_client"}"#,
        )
    } else {
        match field("grant_type").as_deref() {
            Some("refresh_token") => {
                let ok =
                    st.refresh_valid && field("refresh_token").as_deref() == Some(st.refresh_token.as_str());
                if ok {
                    if st.rotate {
                        st.token_seq += 1;
                        let seq = st.token_seq;
                        st.refresh_token =
                            b64url(&sha256(format!("spoolfetch-fake-pixiv refresh r{seq}").as_bytes()));
                    }
                    token_success(&mut st)
                } else {
                    Response::json(400, REFRESH_INVALID_BODY)
                }
            }
            Some("authorization_code") => {
                let ok = field("code").as_deref() == Some(GOOD_CODE)
                    && match (&st.pkce, field("code_verifier")) {
                        (Some(ch), Some(v)) => b64url(&sha256(v.as_bytes())) == *ch,
                        _ => false,
                    };
                if ok {
                    st.pkce = None; // a code is single-use
                    st.token_seq += 1;
                    let seq = st.token_seq;
                    st.refresh_token =
                        b64url(&sha256(format!("spoolfetch-fake-pixiv refresh c{seq}").as_bytes()));
                    st.refresh_valid = true;
                    token_success(&mut st)
                } else {
                    Response::json(400, CODE_INVALID_BODY)
                }
            }
            _ => Response::json(
                400,
                r#"{"has_error":true,"errors":{"system":{"message":"Unsupported grant type","code":1508}},"error":"unsupported_grant_type"}"#,
            ),
        }
    };
    st.token_requests.push(TokenRequest {
        grant_type: field("grant_type").unwrap_or_default(),
        refresh_token: field("refresh_token"),
        code: field("code"),
        code_verifier: field("code_verifier"),
        client_id: field("client_id"),
        x_client_time: time,
        x_client_hash: hash,
        hash_ok,
        status: resp.status,
        at: Instant::now(),
        form: form.clone(),
        headers: req.headers.clone(),
    });
    resp
}

fn mint_access(st: &mut State) -> String {
    st.token_seq += 1;
    let tok =
        b64url(&sha256(format!("spoolfetch-fake-pixiv access {} {}", st.base, st.token_seq).as_bytes()));
    let ttl = Duration::from_secs(st.access_ttl);
    st.access_tokens.insert(tok.clone(), Instant::now() + ttl);
    tok
}

fn token_success(st: &mut State) -> Response {
    let access = mint_access(st);
    let uid = st.token_user;
    let (name, account) = match st.users.get(&uid) {
        Some(u) => (u.name.clone(), u.account.clone()),
        None => (format!("user{uid}"), format!("user_{uid}")),
    };
    let b = &st.base;
    let user = json!({
        "profile_image_urls": {
            "px_16x16": format!("{b}/common/images/no_profile_ss.png"),
            "px_50x50": format!("{b}/common/images/no_profile_s.png"),
            "px_170x170": format!("{b}/common/images/no_profile.png"),
        },
        "id": uid.to_string(),
        "name": name,
        "account": account,
        "mail_address": format!("{account}@example.com"),
        "is_premium": false,
        "x_restrict": 2,
        "is_mail_authorized": true,
        "require_policy_agreement": false,
    });
    let fields = json!({
        "access_token": access,
        "expires_in": st.access_ttl,
        "token_type": "bearer",
        "scope": "",
        "refresh_token": st.refresh_token,
        "user": user,
    });
    let mut top = fields.clone();
    if let Some(o) = top.as_object_mut() {
        o.insert("response".into(), fields);
    }
    json_resp(200, &top)
}

// --- API ------------------------------------------------------------------------

fn handle_api(inner: &Inner, req: &Request) -> Response {
    let started = Instant::now();
    let (resp, authorized, latency) = {
        let mut st = lock(&inner.state);
        let (r, a) = api_response(&mut st, req);
        (r, a, st.api_latency)
    };
    if !latency.is_zero() {
        sleep_unless_stopped(inner, latency);
    }
    let mut st = lock(&inner.state);
    st.api_calls.push(ApiCall {
        method: req.method.clone(),
        path: req.path_only().to_string(),
        query: req.query_pairs(),
        target: req.path.clone(),
        headers: req.headers.clone(),
        started,
        ended: Instant::now(),
        status: resp.status,
        authorized,
    });
    resp
}

/// Token check: `Ok(())`, or the 400 response.
fn check_token(st: &mut State, req: &Request) -> Result<(), Response> {
    let Some(h) = req.header("authorization") else {
        return Err(Response::json(400, TOKEN_MISSING_BODY));
    };
    let tok = h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")).unwrap_or("").trim();
    let now = Instant::now();
    st.access_tokens.retain(|_, exp| *exp > now);
    if tok.is_empty() || !st.access_tokens.contains_key(tok) {
        return Err(Response::json(400, TOKEN_INVALID_BODY));
    }
    Ok(())
}

fn api_response(st: &mut State, req: &Request) -> (Response, bool) {
    let auth = check_token(st, req);
    let authorized = auth.is_ok();
    st.api_seq += 1;
    if st.rate_limit_next > 0 {
        st.rate_limit_next -= 1;
        return (Response::json(403, RATE_LIMIT_BODY), authorized);
    }
    if st.rate_limit_every > 0 && st.api_seq.is_multiple_of(st.rate_limit_every as u64) {
        return (Response::json(403, RATE_LIMIT_BODY), authorized);
    }
    if let Err(r) = auth {
        return (r, false);
    }
    let r = match route(st, req) {
        Ok(r) | Err(r) => r,
    };
    (r, authorized)
}

type R = Result<Response, Response>;

fn route(st: &State, req: &Request) -> R {
    let get = req.method.eq_ignore_ascii_case("GET") || req.method.eq_ignore_ascii_case("HEAD");
    if !get {
        return Err(api_error(404, NO_ENDPOINT, ""));
    }
    match req.path_only() {
        "/v1/illust/detail" => illust_detail(st, req),
        "/v1/user/detail" => user_detail(st, req),
        "/v1/user/illusts" => user_illusts(st, req),
        "/v1/user/bookmarks/illust" => user_bookmarks(st, req),
        "/v1/user/bookmark-tags/illust" => bookmark_tags(st, req),
        "/v2/illust/bookmark/detail" => bookmark_detail(st, req),
        "/v1/search/illust" => search(st, req),
        "/v1/illust/ranking" => ranking(st, req),
        "/v2/illust/follow" => follow(st, req),
        "/v1/illust/series" => illust_series(st, req),
        "/v1/ugoira/metadata" => ugoira_metadata(st, req),
        "/v2/novel/detail" => novel_detail(st, req),
        "/v1/user/novels" => user_novels(st, req),
        "/v1/novel/series" | "/v2/novel/series" => novel_series(st, req),
        "/webview/v2/novel" => webview_novel(st, req),
        _ => Err(api_error(404, NO_ENDPOINT, "")),
    }
}

fn q_id(req: &Request, key: &str) -> Result<u64, Response> {
    match req.query(key) {
        Some(v) => v.trim().parse::<u64>().map_err(|_| param_error(key, "Invalid value")),
        None => Err(param_error(key, &format!("The {key} field is required."))),
    }
}

fn q_offset(req: &Request, key: &str) -> Result<usize, Response> {
    match req.query(key) {
        None => Ok(0),
        Some(v) if v.is_empty() => Ok(0),
        Some(v) => v.trim().parse::<usize>().map_err(|_| param_error(key, "Invalid value")),
    }
}

/// Form encoding as the real `next_url`s have it: space as `+`.
fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `{base}{path}?{query}`: the request's own parameters in order, `set`
/// replacing (in place) or appended; `name[]` arrays become `name[0]`...
fn next_url(st: &State, req: &Request, set: &[(&str, String)]) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut done = vec![false; set.len()];
    for (k, v) in req.query_pairs() {
        if k.is_empty() {
            continue;
        }
        if let Some(i) = set.iter().position(|(n, _)| *n == k) {
            if !done[i] {
                pairs.push((k, set[i].1.clone()));
                done[i] = true;
            }
            continue;
        }
        if let Some(base) = k.strip_suffix("[]") {
            let c = counters.entry(base.to_string()).or_insert(0);
            pairs.push((format!("{base}[{c}]"), v));
            *c += 1;
        } else {
            pairs.push((k, v));
        }
    }
    for (i, (k, v)) in set.iter().enumerate() {
        if !done[i] {
            pairs.push((k.to_string(), v.clone()));
        }
    }
    let q: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect();
    format!("{}{}?{}", st.base, req.path_only(), q.join("&"))
}

/// Page of `items` at `offset`, and the offset of the next page if any.
fn paginate<T: Clone>(items: &[T], offset: usize) -> (Vec<T>, Option<usize>) {
    let start = offset.min(items.len());
    let end = (start + PAGE_SIZE).min(items.len());
    let next = (end < items.len()).then_some(end);
    (items[start..end].to_vec(), next)
}

fn offset_next(st: &State, req: &Request, next: Option<usize>) -> Value {
    match next {
        Some(n) => Value::String(next_url(st, req, &[("offset", n.to_string())])),
        None => Value::Null,
    }
}

fn lang(req: &Request) -> &'static str {
    let l = req.header("accept-language").unwrap_or("").to_ascii_lowercase();
    if l.starts_with("ja") {
        "ja"
    } else if l.starts_with("zh") {
        "zh"
    } else {
        "en"
    }
}

fn work_not_found(req: &Request) -> Response {
    let msg = match lang(req) {
        "ja" => DELETED_WORK_JA,
        "zh" => DELETED_WORK_ZH,
        _ => DELETED_WORK_EN,
    };
    api_error(404, msg, "")
}

fn viewer_bookmarked(st: &State, illust_id: u64) -> bool {
    st.bookmarks.iter().any(|b| b.user_id == st.token_user && b.illust_id == illust_id)
}

fn illust_detail(st: &State, req: &Request) -> R {
    let id = q_id(req, "illust_id")?;
    match st.works.get(&id) {
        Some(w) if !w.deleted => Ok(json_resp(200, &json!({ "illust": illust_json(st, w, true) }))),
        _ => Err(work_not_found(req)),
    }
}

fn user_alive(st: &State, uid: u64) -> bool {
    st.users.get(&uid).is_some_and(|u| !u.deleted)
}

fn user_detail(st: &State, req: &Request) -> R {
    let uid = q_id(req, "user_id")?;
    let Some(u) = st.users.get(&uid).filter(|u| !u.deleted) else {
        return Err(api_error(404, DELETED_USER, ""));
    };
    let count = |f: &dyn Fn(&Work) -> bool| {
        st.works.values().filter(|w| w.user_id == uid && !w.deleted && f(w)).count()
    };
    let mut user = user_json(st, uid);
    if let Some(o) = user.as_object_mut() {
        o.insert("comment".into(), json!(format!("Fake profile of {}.\r\nHello.", u.name)));
    }
    let body = json!({
        "user": user,
        "profile": {
            "webpage": null, "gender": "unknown", "birth": "", "birth_day": "", "birth_year": 0,
            "region": "", "address_id": 0, "country_code": "", "job": "", "job_id": 0,
            "total_follow_users": 0, "total_mypixiv_users": 0,
            "total_illusts": count(&|w| w.kind != Kind::Manga),
            "total_manga": count(&|w| w.kind == Kind::Manga),
            "total_novels": st.novels.values().filter(|n| n.user_id == uid).count(),
            "total_illust_bookmarks_public": st.bookmarks.iter().filter(|b| b.user_id == uid && !b.private).count(),
            "total_illust_series": st.series.values().filter(|s| s.user_id == uid).count(),
            "total_novel_series": 0,
            "background_image_url": null, "twitter_account": "", "twitter_url": null,
            "pawoo_url": null, "is_premium": false, "is_using_custom_profile_image": true,
        },
        "profile_publicity": { "gender": "public", "region": "public", "birth_day": "public",
                               "birth_year": "public", "job": "public", "pawoo": true },
        "workspace": { "pc": "", "monitor": "", "tool": "", "scanner": "", "tablet": "", "mouse": "",
                       "printer": "", "desktop": "", "music": "", "desk": "", "chair": "", "comment": "",
                       "workspace_image_url": null },
    });
    Ok(json_resp(200, &body))
}

fn empty_user_body(st: &State, key: &str) -> Value {
    json!({
        "user": { "id": 0, "name": "", "account": "",
                  "profile_image_urls": { "medium": format!("{}/common/images/no_profile.png", st.base) },
                  "is_followed": false, "is_access_blocking_user": false, "is_accept_request": false },
        key: [],
        "next_url": null,
    })
}

fn user_illusts(st: &State, req: &Request) -> R {
    let uid = q_id(req, "user_id")?;
    let ty = req.query("type").unwrap_or_default();
    let keep: fn(Kind) -> bool = match ty.as_str() {
        "" => |_| true,
        "illust" => |k| k != Kind::Manga,
        "manga" => |k| k == Kind::Manga,
        _ => return Err(Response::json(400, INVALID_TYPE_BODY)),
    };
    let offset = q_offset(req, "offset")?;
    let has_any = st.works.values().any(|w| w.user_id == uid && !w.deleted);
    if !user_alive(st, uid) || !has_any {
        return Ok(json_resp(200, &empty_user_body(st, "illusts")));
    }
    let list: Vec<&Work> = st
        .works
        .values()
        .rev()
        .filter(|w| w.user_id == uid && !w.deleted && keep(w.kind))
        .filter(|w| !matches!(w.limit, Some(Limit::Sanity) | Some(Limit::Unknown)))
        .collect();
    let (page, next) = paginate(&list, offset);
    let illusts: Vec<Value> = page.iter().map(|w| illust_json(st, w, false)).collect();
    Ok(json_resp(
        200,
        &json!({ "user": user_json(st, uid), "illusts": illusts, "next_url": offset_next(st, req, next) }),
    ))
}

fn bookmark_item(st: &State, illust_id: u64) -> Value {
    match st.works.get(&illust_id) {
        Some(w) if !w.deleted => {
            let mut v = illust_json(st, w, false);
            if w.limit.is_none()
                && let Some(o) = v.as_object_mut()
            {
                o.insert("is_bookmarked".into(), json!(viewer_bookmarked(st, illust_id)));
            }
            v
        }
        Some(w) => placeholder_json(st, w.id, 0, &w.create_date, Limit::Unknown),
        None => placeholder_json(st, illust_id, 0, &date_for_id(illust_id), Limit::Unknown),
    }
}

fn restrict_param(req: &Request) -> Result<bool, Response> {
    match req.query("restrict").as_deref() {
        Some("public") => Ok(false),
        Some("private") => Ok(true),
        _ => Err(param_error("restrict", "Restrict contains invalid value")),
    }
}

fn user_bookmarks(st: &State, req: &Request) -> R {
    let uid = q_id(req, "user_id")?;
    let private = restrict_param(req)?;
    let tag = req.query("tag").filter(|t| !t.is_empty());
    let max = match req.query("max_bookmark_id").filter(|v| !v.is_empty()) {
        Some(v) => Some(v.parse::<u64>().map_err(|_| param_error("max_bookmark_id", "Invalid value"))?),
        None => None,
    };
    let mut list: Vec<&Bookmark> = st
        .bookmarks
        .iter()
        .filter(|b| b.user_id == uid && b.private == private)
        .filter(|b| tag.as_ref().is_none_or(|t| b.tags.iter().any(|x| x == t)))
        .filter(|b| max.is_none_or(|m| b.bid <= m))
        .collect();
    list.sort_by_key(|b| std::cmp::Reverse(b.bid));
    let page: Vec<Value> = list.iter().take(PAGE_SIZE).map(|b| bookmark_item(st, b.illust_id)).collect();
    let next = match list.get(PAGE_SIZE) {
        Some(b) => Value::String(next_url(st, req, &[("max_bookmark_id", b.bid.to_string())])),
        None => Value::Null,
    };
    Ok(json_resp(200, &json!({ "illusts": page, "next_url": next })))
}

fn bookmark_tags(st: &State, req: &Request) -> R {
    let uid = q_id(req, "user_id")?;
    let private = restrict_param(req)?;
    let offset = q_offset(req, "offset")?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for b in st.bookmarks.iter().filter(|b| b.user_id == uid && b.private == private) {
        for t in &b.tags {
            *counts.entry(t.clone()).or_default() += 1;
        }
    }
    let all: Vec<Value> =
        counts.into_iter().map(|(name, count)| json!({ "name": name, "count": count })).collect();
    let (page, next) = paginate(&all, offset);
    Ok(json_resp(200, &json!({ "bookmark_tags": page, "next_url": offset_next(st, req, next) })))
}

fn bookmark_detail(st: &State, req: &Request) -> R {
    let id = q_id(req, "illust_id")?;
    let Some(w) = st.works.get(&id).filter(|w| !w.deleted) else {
        return Err(work_not_found(req));
    };
    let bm = st.bookmarks.iter().find(|b| b.user_id == st.token_user && b.illust_id == id);
    let mut tags: Vec<Value> = Vec::new();
    if let Some(b) = bm {
        for t in &b.tags {
            tags.push(json!({ "name": t, "is_registered": true }));
        }
    }
    for t in &w.tags {
        if !bm.is_some_and(|b| b.tags.contains(t)) {
            tags.push(json!({ "name": t, "is_registered": false }));
        }
    }
    let restrict = match bm {
        Some(b) if b.private => "private",
        _ => "public",
    };
    Ok(json_resp(
        200,
        &json!({ "bookmark_detail": { "is_bookmarked": bm.is_some(), "restrict": restrict, "tags": tags } }),
    ))
}

type Matcher<'a> = Box<dyn Fn(&Work, &str) -> bool + 'a>;

fn search(st: &State, req: &Request) -> R {
    let word = req.query("word").unwrap_or_default();
    if word.trim().is_empty() {
        return Err(param_error("word", "The word field is required."));
    }
    let target = req.query("search_target").unwrap_or_else(|| "partial_match_for_tags".into());
    let sort = req.query("sort").unwrap_or_else(|| "date_desc".into());
    if !["date_desc", "date_asc", "popular_desc", "popular_male_desc", "popular_female_desc"]
        .contains(&sort.as_str())
    {
        return Err(param_error("sort", "Sort contains invalid value"));
    }
    let offset = q_offset(req, "offset")?;
    if offset > OFFSET_CAP {
        return Err(Response::json(400, OFFSET_CAP_BODY));
    }
    let start = req.query("start_date").filter(|s| !s.is_empty());
    let end = req.query("end_date").filter(|s| !s.is_empty());
    for d in [&start, &end].into_iter().flatten() {
        if parse_iso(&format!("{d}T00:00:00+09:00")).is_none() {
            return Err(param_error("start_date", "Invalid date"));
        }
    }
    let hide_ai = req.query("search_ai_type").as_deref() == Some("0");
    let terms: Vec<String> = word.split_whitespace().map(str::to_lowercase).collect();
    let tag_has = |w: &Work, t: &str, exact: bool| {
        w.tags.iter().any(|x| {
            let x = x.to_lowercase();
            if exact { x == t } else { x.contains(t) }
        })
    };
    let matcher: Matcher<'_> = match target.as_str() {
        "partial_match_for_tags" => Box::new(move |w, t| tag_has(w, t, false)),
        "exact_match_for_tags" => Box::new(move |w, t| tag_has(w, t, true)),
        "title_and_caption" => {
            Box::new(|w, t| w.title.to_lowercase().contains(t) || w.caption.to_lowercase().contains(t))
        }
        "keyword" => Box::new(move |w, t| {
            tag_has(w, t, false) || w.title.to_lowercase().contains(t) || w.caption.to_lowercase().contains(t)
        }),
        _ => return Err(param_error("search_target", "Search target contains invalid value")),
    };
    let mut hits: Vec<&Work> = st
        .works
        .values()
        .filter(|w| !w.deleted && w.limit.is_none())
        .filter(|w| !(hide_ai && w.ai_type == 2))
        .filter(|w| {
            let day = w.create_date.get(..10).unwrap_or("");
            start.as_deref().is_none_or(|s| day >= s) && end.as_deref().is_none_or(|e| day <= e)
        })
        .filter(|w| terms.iter().all(|t| matcher(w, t)))
        .collect();
    let key = |w: &Work| (parse_iso(&w.create_date).unwrap_or(0), w.id);
    match sort.as_str() {
        "date_asc" => hits.sort_by_key(|w| key(w)),
        "date_desc" => hits.sort_by_key(|w| std::cmp::Reverse(key(w))),
        _ => hits.sort_by_key(|w| std::cmp::Reverse((w.bookmarks, w.id))),
    }
    let (page, next) = paginate(&hits, offset);
    let illusts: Vec<Value> = page.iter().map(|w| illust_json(st, w, false)).collect();
    Ok(json_resp(
        200,
        &json!({
            "illusts": illusts,
            "next_url": offset_next(st, req, next),
            "search_span_limit": 31_536_000,
            "show_ai": !hide_ai,
        }),
    ))
}

/// Items of a listing by id: placeholders for limited works, deleted and
/// unknown ids skipped.
fn listed(st: &State, ids: &[u64]) -> Vec<Value> {
    ids.iter()
        .filter_map(|id| st.works.get(id))
        .filter(|w| !w.deleted)
        .map(|w| illust_json(st, w, false))
        .collect()
}

fn ranking(st: &State, req: &Request) -> R {
    let mode = req.query("mode").unwrap_or_else(|| "day".into());
    if !RANKING_MODES.contains(&mode.as_str()) && !st.rankings.iter().any(|(m, _, _)| *m == mode) {
        return Err(param_error("mode", "Mode contains invalid value"));
    }
    let date = req.query("date").filter(|d| !d.is_empty());
    if let Some(d) = &date
        && parse_iso(&format!("{d}T00:00:00+09:00")).is_none()
    {
        return Err(param_error("date", "Invalid date"));
    }
    let offset = q_offset(req, "offset")?;
    let found = match &date {
        Some(d) => st.rankings.iter().find(|(m, rd, _)| *m == mode && rd.as_deref() == Some(d.as_str())),
        None => st.rankings.iter().find(|(m, rd, _)| *m == mode && rd.is_none()).or_else(|| {
            st.rankings.iter().filter(|(m, rd, _)| *m == mode && rd.is_some()).max_by(|a, b| a.1.cmp(&b.1))
        }),
    };
    let (items, used_date) = match found {
        Some((_, d, ids)) => (listed(st, ids), d.clone()),
        None => (Vec::new(), None),
    };
    let (page, next) = paginate(&items, offset);
    let next_url = match next {
        Some(n) => {
            let mut set = vec![("offset", n.to_string())];
            if date.is_none()
                && let Some(d) = used_date
            {
                set.insert(0, ("date", d));
            }
            Value::String(next_url(st, req, &set))
        }
        None => Value::Null,
    };
    Ok(json_resp(200, &json!({ "illusts": page, "next_url": next_url })))
}

fn follow(st: &State, req: &Request) -> R {
    if let Some(r) = req.query("restrict")
        && !["public", "private", "all"].contains(&r.as_str())
    {
        return Err(param_error("restrict", "Restrict contains invalid value"));
    }
    let offset = q_offset(req, "offset")?;
    let items = listed(st, &st.follow_feed);
    let (page, next) = paginate(&items, offset);
    Ok(json_resp(200, &json!({ "illusts": page, "next_url": offset_next(st, req, next) })))
}

fn illust_series(st: &State, req: &Request) -> R {
    let sid = q_id(req, "illust_series_id")?;
    let Some(s) = st.series.get(&sid) else {
        return Err(api_error(404, "The series has been deleted or does not exist.", ""));
    };
    let offset = q_offset(req, "offset")?;
    let items = listed(st, &s.ids);
    let (page, next) = paginate(&items, offset);
    let first = s
        .ids
        .iter()
        .filter_map(|id| st.works.get(id))
        .filter(|w| !w.deleted)
        .min_by_key(|w| (parse_iso(&w.create_date).unwrap_or(0), w.id));
    let created = first.map(|w| w.create_date.clone()).unwrap_or_else(|| date_for_id(sid));
    let body = json!({
        "illust_series_detail": {
            "id": sid, "title": s.title, "caption": "",
            "cover_image_urls": { "medium": format!("{}{}", st.base, series_cover_path(sid)) },
            "series_work_count": s.ids.len(), "create_date": created, "width": 1200, "height": 630,
            "user": user_json(st, s.user_id), "watchlist_added": false,
        },
        "illust_series_first_illust": first.map(|w| illust_json(st, w, false)),
        "illusts": page,
        "next_url": offset_next(st, req, next),
    });
    Ok(json_resp(200, &body))
}

fn ugoira_metadata(st: &State, req: &Request) -> R {
    let id = q_id(req, "illust_id")?;
    let Some(w) = st.works.get(&id).filter(|w| !w.deleted && w.limit.is_none() && w.kind == Kind::Ugoira)
    else {
        return Err(work_not_found(req));
    };
    let frames: Vec<Value> =
        FakePixiv::ugoira_frames(id).into_iter().map(|(f, d)| json!({ "file": f, "delay": d })).collect();
    Ok(json_resp(
        200,
        &json!({ "ugoira_metadata": {
            "zip_urls": { "medium": format!("{}{}", st.base, zip_path(w, false)) },
            "frames": frames,
        } }),
    ))
}

fn novel_detail(st: &State, req: &Request) -> R {
    let id = q_id(req, "novel_id")?;
    match st.novels.get(&id) {
        Some(n) => Ok(json_resp(200, &json!({ "novel": novel_json(st, n) }))),
        None => Err(work_not_found(req)),
    }
}

fn user_novels(st: &State, req: &Request) -> R {
    let uid = q_id(req, "user_id")?;
    let offset = q_offset(req, "offset")?;
    let list: Vec<&NovelRec> = st.novels.values().rev().filter(|n| n.user_id == uid).collect();
    if !user_alive(st, uid) || list.is_empty() {
        return Ok(json_resp(200, &empty_user_body(st, "novels")));
    }
    let (page, next) = paginate(&list, offset);
    let novels: Vec<Value> = page.iter().map(|n| novel_json(st, n)).collect();
    Ok(json_resp(
        200,
        &json!({ "user": user_json(st, uid), "novels": novels, "next_url": offset_next(st, req, next) }),
    ))
}

fn novel_series_title(st: &State, sid: u64) -> String {
    st.novel_series_titles.get(&sid).cloned().unwrap_or_else(|| format!("Novel series {sid}"))
}

fn novel_series(st: &State, req: &Request) -> R {
    let sid = q_id(req, "series_id")?;
    let list: Vec<&NovelRec> = st.novels.values().filter(|n| n.series_id == Some(sid)).collect();
    let (Some(first), Some(latest)) = (list.first(), list.last()) else {
        return Err(api_error(404, "The series has been deleted or does not exist.", ""));
    };
    let offset = q_offset(req, "last_order")?;
    let (page, next) = paginate(&list, offset);
    let novels: Vec<Value> = page.iter().map(|n| novel_json(st, n)).collect();
    let next_url = match next {
        Some(n) => Value::String(next_url(st, req, &[("last_order", n.to_string())])),
        None => Value::Null,
    };
    let chars: usize = list.iter().map(|n| n.text.chars().count()).sum();
    let body = json!({
        "novel_series_detail": {
            "id": sid, "title": novel_series_title(st, sid), "caption": "",
            "display_text": format!("{} episodes", list.len()), "is_original": false, "is_concluded": false,
            "content_count": list.len(), "total_character_count": chars, "novel_ai_type": 1,
            "user": user_json(st, first.user_id), "watchlist_added": false,
        },
        "novel_series_first_novel": novel_json(st, first),
        "novel_series_latest_novel": novel_json(st, latest),
        "novels": novels,
        "next_url": next_url,
    });
    Ok(json_resp(200, &body))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn webview_novel(st: &State, req: &Request) -> R {
    let Ok(id) = q_id(req, "id") else {
        return Err(Response::new(404)
            .header("Content-Type", "text/html; charset=UTF-8")
            .with_body(Body::Bytes(b"<!DOCTYPE html><html><body>Not Found</body></html>".to_vec())));
    };
    let Some(n) = st.novels.get(&id) else {
        return Err(Response::new(404)
            .header("Content-Type", "text/html; charset=UTF-8")
            .with_body(Body::Bytes(b"<!DOCTYPE html><html><body>Not Found</body></html>".to_vec())));
    };
    let lines = [
        "<!DOCTYPE html>".to_string(),
        "<html lang=\"ja\">".into(),
        "<head>".into(),
        "<meta charset=\"utf-8\">".into(),
        format!("<title>{}</title>", html_escape(&format!("pixiv #{id}"))),
        "</head>".into(),
        "<body>".into(),
        "<div id=\"root\"></div>".into(),
        "<script>".into(),
        "    Object.defineProperty(window, 'pixiv', {".into(),
        "      value: {".into(),
        format!("        novel: {},", webview_json(st, n)),
        "        isOwnWork: false,".into(),
        format!("        authorDetails: {{\"id\":\"{}\"}},", n.user_id),
        "        viewerVersion: \"20221031_ai\",".into(),
        "      },".into(),
        "      writable: false,".into(),
        "    });".into(),
        "</script>".into(),
        "</body>".into(),
        "</html>".into(),
        String::new(),
    ];
    let html = lines.join("\n");
    Ok(Response::new(200)
        .header("Content-Type", "text/html; charset=UTF-8")
        .with_body(Body::Bytes(html.into_bytes())))
}

// --- images ---------------------------------------------------------------------

fn referer_ok(referer: Option<&str>) -> bool {
    let Some(r) = referer else { return false };
    let rest = r.split_once("://").map_or(r, |(_, rest)| rest);
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    let host = host_port.split(':').next().unwrap_or("").to_ascii_lowercase();
    host == "pixiv.net" || host.ends_with(".pixiv.net") || host.ends_with(".pximg.net")
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

fn asset_bytes(a: AssetKind, path: &str) -> Vec<u8> {
    match a {
        AssetKind::Original { id, page, ext } => FakePixiv::image_bytes(id, page, ext),
        AssetKind::Master { id, page } => FakePixiv::master_bytes(id, page),
        AssetKind::UgoiraFrame { id, frame } => FakePixiv::ugoira_frame(id, frame),
        AssetKind::UgoiraZip { id, big: true } => FakePixiv::ugoira_zip(id),
        AssetKind::UgoiraZip { id, big: false } => FakePixiv::ugoira_zip_small(id),
        AssetKind::NovelImage { seed } => FakePixiv::novel_image_bytes(seed),
        AssetKind::NovelCover { id } => FakePixiv::novel_cover_bytes(id),
        AssetKind::Avatar { uid } => {
            jpeg(8, 8, rgb(mix(uid, 0x6176)), &format!("spoolfetch fake pixiv avatar {uid}"), 200)
        }
        AssetKind::SeriesCover { sid } => {
            jpeg(16, 8, rgb(mix(sid, 0x7365)), &format!("spoolfetch fake pixiv series cover {sid}"), 300)
        }
        AssetKind::Placeholder { .. } => FakePixiv::placeholder_bytes(path.rsplit('/').next().unwrap_or("")),
    }
}

/// Parses a single `bytes=` range against `len`: `Ok(Some((start, end)))`
/// inclusive, `Ok(None)` to ignore (serve 200), `Err(())` unsatisfiable.
fn parse_range(h: &str, len: usize) -> Result<Option<(usize, usize)>, ()> {
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Ok(None) };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let Ok(n) = b.parse::<usize>() else { return Ok(None) };
        if n == 0 || len == 0 {
            return Err(());
        }
        return Ok(Some((len - n.min(len), len - 1)));
    }
    let Ok(start) = a.parse::<usize>() else { return Ok(None) };
    let end = if b.is_empty() {
        usize::MAX
    } else {
        match b.parse::<usize>() {
            Ok(e) if e >= start => e,
            _ => return Ok(None),
        }
    };
    if start >= len {
        return Err(());
    }
    Ok(Some((start, end.min(len - 1))))
}

fn handle_image(inner: &Inner, req: &Request) -> Response {
    let path = req.path_only().to_string();
    let referer = req.header("referer").map(str::to_string);
    let range = req.header("range").map(str::to_string);
    let (resp, latency) = {
        let mut st = lock(&inner.state);
        let r = image_response(&mut st, req, &path);
        (r, st.image_latency)
    };
    if !latency.is_zero() {
        sleep_unless_stopped(inner, latency);
    }
    lock(&inner.state).image_requests.push(ImageRequest {
        method: req.method.clone(),
        path,
        referer,
        range,
        status: resp.status,
        at: Instant::now(),
    });
    resp
}

fn plain(status: u16, text: &str) -> Response {
    Response::new(status)
        .header("Content-Type", "text/html")
        .with_body(Body::Bytes(format!("<html><body>{text}</body></html>").into_bytes()))
}

fn image_response(st: &mut State, req: &Request, path: &str) -> Response {
    if !(req.method.eq_ignore_ascii_case("GET") || req.method.eq_ignore_ascii_case("HEAD")) {
        return plain(405, "405 Method Not Allowed");
    }
    let Some(asset) = st.assets.get(path).copied() else {
        return plain(404, "404 Not Found");
    };
    let placeholder = matches!(asset.kind, AssetKind::Placeholder { .. });
    if st.require_referer && !placeholder && !referer_ok(req.header("referer")) {
        return plain(403, "403 Forbidden");
    }
    let fault = st
        .image_faults
        .iter()
        .position(|(p, _)| p.as_ref().is_none_or(|p| path.contains(p.as_str())))
        .and_then(|i| st.image_faults.remove(i))
        .map(|(_, f)| f);
    if let Some(ImageFault::Status(code)) = fault {
        return plain(code, &format!("{code} {}", reason(code)));
    }
    let body = asset_bytes(asset.kind, path);
    let len = body.len();
    let mtime = UNIX_EPOCH + Duration::from_secs(asset.mtime.max(0) as u64);
    let last_modified = httpdate::fmt_http_date(mtime);
    let etag = format!("\"{:016x}-{:x}\"", fnv(&body), len);
    let mut use_range = range_allowed(req, &etag, &last_modified) && fault != Some(ImageFault::IgnoreRange);
    let parsed = match req.header("range") {
        Some(h) if use_range => parse_range(h, len),
        _ => {
            use_range = false;
            Ok(None)
        }
    };
    let base = |status: u16| {
        Response::new(status)
            .header("Content-Type", content_type(path))
            .header("Accept-Ranges", "bytes")
            .header("Last-Modified", &last_modified)
            .header("ETag", &etag)
            .header("Cache-Control", "max-age=31536000")
    };
    let mut resp = match parsed {
        Err(()) => {
            return Response::new(416)
                .header("Content-Range", &format!("bytes */{len}"))
                .header("Accept-Ranges", "bytes");
        }
        Ok(Some((s, e))) if use_range => base(206)
            .header("Content-Range", &format!("bytes {s}-{e}/{len}"))
            .with_body(Body::Bytes(body[s..=e].to_vec())),
        _ => base(200).with_body(Body::Bytes(body)),
    };
    match fault {
        Some(ImageFault::Truncate(n)) => resp = resp.truncate_after(n),
        Some(ImageFault::Stall { after, dur }) => resp = resp.stall(after, dur),
        _ => {}
    }
    resp
}

/// `If-Range`: the range applies only if the validator still matches.
fn range_allowed(req: &Request, etag: &str, last_modified: &str) -> bool {
    match req.header("if-range") {
        None => true,
        Some(v) => v.trim() == etag || v.trim() == last_modified,
    }
}

// ---------------------------------------------------------------------------
// JSON objects
// ---------------------------------------------------------------------------

fn avatar_path(uid: u64) -> String {
    format!(
        "/user-profile/img/2020/01/01/00/00/00/{uid}_{}_170.jpg",
        md5_hex(format!("avatar{uid}").as_bytes())
    )
}

/// Creates `user{uid}` if the user is unknown.
fn ensure_user(st: &mut State, uid: u64) {
    if let std::collections::btree_map::Entry::Vacant(e) = st.users.entry(uid) {
        e.insert(UserRec { name: format!("user{uid}"), account: format!("user_{uid}"), deleted: false });
        register_avatar(st, uid);
    }
}

fn register_avatar(st: &mut State, uid: u64) {
    st.assets.insert(avatar_path(uid), Asset { kind: AssetKind::Avatar { uid }, mtime: DATE_BASE });
}

fn series_cover_path(sid: u64) -> String {
    format!(
        "/c/782x410_80_a2_g5/illust-series-cover-original/img/2020/01/01/00/00/00/{}.jpg",
        &md5_hex(format!("series{sid}").as_bytes())[..24]
    )
}

fn user_json(st: &State, uid: u64) -> Value {
    let (name, account) = match st.users.get(&uid) {
        Some(u) => (u.name.clone(), u.account.clone()),
        None => (format!("user{uid}"), format!("user_{uid}")),
    };
    json!({
        "id": uid, "name": name, "account": account,
        "profile_image_urls": { "medium": format!("{}{}", st.base, avatar_path(uid)) },
        "is_followed": false, "is_access_blocking_user": false, "is_accept_request": false,
    })
}

fn placeholder_json(st: &State, id: u64, user_id: u64, create_date: &str, l: Limit) -> Value {
    let url = format!("{}/common/images/{}", st.base, l.file());
    let uid = if l == Limit::Unknown { 0 } else { user_id };
    json!({
        "id": id, "title": "", "type": "illust",
        "image_urls": { "square_medium": url, "medium": url, "large": url },
        "caption": "", "restrict": 0,
        "user": { "id": uid, "name": "", "account": "",
                  "profile_image_urls": { "medium": format!("{}/common/images/no_profile.png", st.base) } },
        "tags": [], "tools": [], "create_date": create_date, "page_count": 1, "width": 100, "height": 100,
        "sanity_level": 0, "x_restrict": 0, "series": null,
        "meta_single_page": { "original_image_url": url },
        "meta_pages": [], "total_view": 0, "total_bookmarks": 0, "is_bookmarked": false, "visible": false,
        "is_muted": false, "illust_ai_type": 0, "illust_book_style": 0, "comment_access_control": 0,
    })
}

/// JST wall-clock path segment `Y/M/D/h/m/s`: `create_date` + 1 s.
fn path_ts(create_date: &str) -> String {
    let t = parse_iso(create_date).unwrap_or(DATE_BASE) + 1;
    let (y, mo, d, h, mi, s) = civil_jst(t);
    format!("{y:04}/{mo:02}/{d:02}/{h:02}/{mi:02}/{s:02}")
}

fn path_mtime(create_date: &str) -> i64 {
    parse_iso(create_date).unwrap_or(DATE_BASE) + 1
}

fn stem(w: &Work) -> String {
    if w.hashed_name {
        format!("{}-{}", w.id, md5_hex(format!("hash{}", w.id).as_bytes()))
    } else {
        w.id.to_string()
    }
}

fn original_path(w: &Work, page: u32) -> String {
    let ts = path_ts(&w.create_date);
    let s = stem(w);
    match w.kind {
        Kind::Ugoira => format!("/img-original/img/{ts}/{s}_ugoira{page}.jpg"),
        _ => format!("/img-original/img/{ts}/{s}_p{page}.{}", w.ext),
    }
}

fn zip_path(w: &Work, big: bool) -> String {
    let size = if big { "1920x1080" } else { "600x600" };
    format!("/img-zip-ugoira/img/{}/{}_ugoira{size}.zip", path_ts(&w.create_date), w.id)
}

/// (square_medium, medium, large, master) paths of page `page`.
fn thumb_paths(w: &Work, page: u32) -> [String; 4] {
    let ts = path_ts(&w.create_date);
    let s = stem(w);
    let p = if w.kind == Kind::Ugoira { String::new() } else { format!("_p{page}") };
    [
        format!("/c/360x360_70/img-master/img/{ts}/{s}{p}_square1200.jpg"),
        format!("/c/540x540_70/img-master/img/{ts}/{s}{p}_master1200.jpg"),
        format!("/c/600x1200_90/img-master/img/{ts}/{s}{p}_master1200.jpg"),
        format!("/img-master/img/{ts}/{s}{p}_master1200.jpg"),
    ]
}

fn work_assets(w: &Work) -> Vec<(String, Asset)> {
    let mtime = path_mtime(&w.create_date);
    let mut v = Vec::new();
    let id = w.id;
    if w.kind == Kind::Ugoira {
        for f in 0..UGOIRA_FRAMES {
            v.push((original_path(w, f), Asset { kind: AssetKind::UgoiraFrame { id, frame: f }, mtime }));
        }
        for big in [false, true] {
            v.push((zip_path(w, big), Asset { kind: AssetKind::UgoiraZip { id, big }, mtime }));
        }
        for p in thumb_paths(w, 0) {
            v.push((p, Asset { kind: AssetKind::Master { id, page: 0 }, mtime }));
        }
    } else {
        for page in 0..w.page_count() {
            v.push((
                original_path(w, page),
                Asset { kind: AssetKind::Original { id, page, ext: w.ext }, mtime },
            ));
            for p in thumb_paths(w, page) {
                v.push((p, Asset { kind: AssetKind::Master { id, page }, mtime }));
            }
        }
    }
    v
}

fn series_of(st: &State, w: &Work) -> Value {
    let sid =
        w.series_id.or_else(|| st.series.iter().find(|(_, s)| s.ids.contains(&w.id)).map(|(id, _)| *id));
    match sid {
        Some(id) => {
            json!({ "id": id, "title": st.series.get(&id).map(|s| s.title.clone()).unwrap_or_default() })
        }
        None => Value::Null,
    }
}

fn illust_json(st: &State, w: &Work, detail: bool) -> Value {
    if let Some(l) = w.limit {
        return placeholder_json(st, w.id, w.user_id, &w.create_date, l);
    }
    let b = &st.base;
    let urls = |page: u32| {
        let [sq, md, lg, _] = thumb_paths(w, page);
        json!({ "square_medium": format!("{b}{sq}"), "medium": format!("{b}{md}"), "large": format!("{b}{lg}") })
    };
    let pages = w.page_count();
    let (single, multi) = if pages == 1 {
        (json!({ "original_image_url": format!("{b}{}", original_path(w, 0)) }), json!([]))
    } else {
        let list: Vec<Value> = (0..pages)
            .map(|p| {
                let mut u = urls(p);
                if let Some(o) = u.as_object_mut() {
                    o.insert("original".into(), json!(format!("{b}{}", original_path(w, p))));
                }
                json!({ "image_urls": u })
            })
            .collect();
        (json!({}), Value::Array(list))
    };
    let (width, height) = match w.kind {
        Kind::Ugoira => (600, 600),
        _ => (1000 + (w.id % 7) * 100, 800 + (w.id % 5) * 100),
    };
    let tags: Vec<Value> = w.tags.iter().map(|t| json!({ "name": t, "translated_name": null })).collect();
    let mut v = json!({
        "id": w.id, "title": w.title, "type": w.kind.as_str(), "image_urls": urls(0),
        "caption": w.caption, "restrict": 0, "user": user_json(st, w.user_id), "tags": tags, "tools": [],
        "create_date": w.create_date, "page_count": pages, "width": width, "height": height,
        "sanity_level": if w.x_restrict > 0 { 6 } else { 2 }, "x_restrict": w.x_restrict,
        "series": series_of(st, w), "meta_single_page": single, "meta_pages": multi,
        "total_view": w.bookmarks * 10 + w.id % 100, "total_bookmarks": w.bookmarks,
        "is_bookmarked": viewer_bookmarked(st, w.id), "visible": true, "is_muted": false,
        "illust_ai_type": w.ai_type, "illust_book_style": 0,
    });
    if detail && let Some(o) = v.as_object_mut() {
        o.insert("total_comments".into(), json!(w.id % 5));
        o.insert("comment_access_control".into(), json!(0));
        o.insert("request".into(), Value::Null);
        o.insert("event_banners".into(), Value::Null);
        o.insert("seasonal_effect_animation_urls".into(), Value::Null);
    }
    v
}

fn novel_hash(id: u64) -> String {
    md5_hex(format!("novel{id}").as_bytes())
}

/// (square, medium, large) cover paths and the original.
fn novel_cover_paths(n: &NovelRec) -> [String; 4] {
    let ts = path_ts(&n.create_date);
    let h = novel_hash(n.id);
    let id = n.id;
    [
        format!("/c/128x128/novel-cover-master/img/{ts}/{id}_{h}_square1200.jpg"),
        format!("/c/176x352/novel-cover-master/img/{ts}/{id}_{h}_master1200.jpg"),
        format!("/c/240x480_80/novel-cover-master/img/{ts}/{id}_{h}_master1200.jpg"),
        format!("/novel-cover-original/img/{ts}/{id}_{h}.jpg"),
    ]
}

/// (`240mw`, `480mw`, `1200x1200`, `128x128`, `original`) of an uploaded image.
fn novel_image_paths(n: &NovelRec, image_id: u64) -> [String; 5] {
    let ts = path_ts(&n.create_date);
    let h = md5_hex(format!("upload{image_id}").as_bytes());
    [
        format!("/c/240x480_80/novel-cover-master/img/{ts}/tei{image_id}_{h}_master1200.jpg"),
        format!("/c/480x960/novel-cover-master/img/{ts}/tei{image_id}_{h}_master1200.jpg"),
        format!("/c/1200x1200/novel-cover-master/img/{ts}/tei{image_id}_{h}_master1200.jpg"),
        format!("/c/128x128/novel-cover-master/img/{ts}/tei{image_id}_{h}_square1200.jpg"),
        format!("/novel-cover-original/img/{ts}/tei{image_id}_{h}.jpg"),
    ]
}

fn novel_assets(n: &NovelRec) -> Vec<(String, Asset)> {
    let mtime = path_mtime(&n.create_date);
    let mut v: Vec<(String, Asset)> = novel_cover_paths(n)
        .into_iter()
        .map(|p| (p, Asset { kind: AssetKind::NovelCover { id: n.id }, mtime }))
        .collect();
    for &(img, seed) in &n.images {
        for p in novel_image_paths(n, img) {
            v.push((p, Asset { kind: AssetKind::NovelImage { seed }, mtime }));
        }
    }
    v
}

fn novel_json(st: &State, n: &NovelRec) -> Value {
    let b = &st.base;
    let [sq, md, lg, _] = novel_cover_paths(n);
    let series = match n.series_id {
        Some(id) => json!({ "id": id, "title": novel_series_title(st, id) }),
        None => json!({}),
    };
    json!({
        "id": n.id, "title": n.title, "caption": "", "restrict": 0, "x_restrict": 0, "is_original": false,
        "image_urls": { "square_medium": format!("{b}{sq}"), "medium": format!("{b}{md}"), "large": format!("{b}{lg}") },
        "create_date": n.create_date, "tags": [],
        "page_count": n.text.matches("[newpage]").count() + 1, "text_length": n.text.chars().count(),
        "user": user_json(st, n.user_id), "series": series,
        "is_bookmarked": false, "total_bookmarks": 0, "total_view": 0, "visible": true, "total_comments": 0,
        "is_muted": false, "is_mypixiv_only": false, "is_x_restricted": false, "novel_ai_type": 1,
        "comment_access_control": 0, "request": null,
    })
}

fn webview_json(st: &State, n: &NovelRec) -> String {
    let b = &st.base;
    let images = if n.images.is_empty() {
        json!([])
    } else {
        let mut m = serde_json::Map::new();
        for &(img, _) in &n.images {
            let [a, bb, c, d, o] = novel_image_paths(n, img);
            m.insert(
                img.to_string(),
                json!({
                    "novelImageId": img.to_string(), "sl": "2",
                    "urls": { "240mw": format!("{b}{a}"), "480mw": format!("{b}{bb}"),
                              "1200x1200": format!("{b}{c}"), "128x128": format!("{b}{d}"),
                              "original": format!("{b}{o}") },
                }),
            );
        }
        Value::Object(m)
    };
    let [_, _, lg, _] = novel_cover_paths(n);
    let v = json!({
        "id": n.id.to_string(), "title": n.title,
        "seriesId": n.series_id.map(|s| s.to_string()),
        "seriesTitle": n.series_id.map(|s| novel_series_title(st, s)),
        "seriesIsWatched": n.series_id.map(|_| false),
        "userId": n.user_id.to_string(), "coverUrl": format!("{b}{lg}"), "tags": [], "caption": "",
        "cdate": n.create_date.get(..10).unwrap_or(""),
        "rating": { "like": 0, "bookmark": 0, "view": 0 },
        "text": n.text, "marker": null, "illusts": [], "images": images, "seriesNavigation": null,
        "glossaryItems": [], "replaceableItemIds": [], "aiType": 1, "isOriginal": false,
    });
    // One line: serde_json escapes control characters; also keep `</script>`
    // from closing the element early.
    v.to_string().replace("</", "<\\/")
}

// ---------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DDTHH:MM:SS(+HH:MM|Z)` to Unix seconds.
fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let rest = &s[19..];
    let offset = if rest == "Z" {
        0
    } else {
        let sign = match rest.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return None,
        };
        let oh = rest.get(1..3)?.parse::<i64>().ok()?;
        let om = rest.get(4..6)?.parse::<i64>().ok()?;
        sign * (oh * 3600 + om * 60)
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

fn civil_jst(t: i64) -> (i64, i64, i64, i64, i64, i64) {
    let local = t + 9 * 3600;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let s = local.rem_euclid(86_400);
    (y, m, d, s / 3600, (s / 60) % 60, s % 60)
}

/// Unix seconds to `YYYY-MM-DDTHH:MM:SS+09:00`.
pub fn jst_date(t: i64) -> String {
    let (y, m, d, h, mi, s) = civil_jst(t);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}+09:00")
}

/// The default `create_date` of `Work::new(id, ..)`: 2020-01-01 JST plus
/// 3607 s per id (modulo ten years).
pub fn date_for_id(id: u64) -> String {
    jst_date(DATE_BASE + (id.wrapping_mul(3607) % 315_360_000) as i64)
}

// ---------------------------------------------------------------------------
// Hashes and encoders (no extra dependencies)
// ---------------------------------------------------------------------------

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// splitmix64 of two values.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn rgb(seed: u64) -> [u8; 3] {
    [(seed & 0xff) as u8, ((seed >> 8) & 0xff) as u8, ((seed >> 16) & 0xff) as u8]
}

/// SHA-256 (FIPS 180-4).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([chunk[4 * i], chunk[4 * i + 1], chunk[4 * i + 2], chunk[4 * i + 3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, v) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// Base64url without padding.
pub fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        let chars = c.len() + 1;
        for i in 0..chars {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// CRC-32 (IEEE), as used by zip and PNG.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

fn ugoira_frame_bytes(id: u64, frame: u32, big: bool) -> Vec<u8> {
    let seed = mix(id ^ if big { 0xb16 } else { 0x5a11 }, u64::from(frame));
    let (w, pad) = if big { (16, 1500) } else { (8, 400) };
    let label = format!(
        "spoolfetch fake pixiv ugoira {id} frame {frame} {}",
        if big { "1920x1080" } else { "600x600" }
    );
    jpeg(w, w, rgb(seed), &label, pad + (seed % 256) as usize)
}

/// A STORED (uncompressed) zip archive.
fn zip_stored(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    // DOS time 2020-01-01 00:00:00.
    let (dos_time, dos_date) = (0u16, ((2020 - 1980) << 9 | 1 << 5 | 1) as u16);
    for (name, data) in files {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let size = data.len() as u32;
        let n = name.as_bytes();
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&10u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&0u16.to_le_bytes()); // method: stored
        out.extend_from_slice(&dos_time.to_le_bytes());
        out.extend_from_slice(&dos_date.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(n.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(n);
        out.extend_from_slice(data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        central.extend_from_slice(&10u16.to_le_bytes()); // version needed
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&dos_time.to_le_bytes());
        central.extend_from_slice(&dos_date.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(n.len() as u16).to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes()); // extra
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attrs
        central.extend_from_slice(&0u32.to_le_bytes()); // external attrs
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(n);
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// Deterministic printable padding.
fn padding(label: &str, n: usize) -> Vec<u8> {
    let mut x = fnv(label.as_bytes());
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            b"abcdefghijklmnopqrstuvwxyz0123456789"[((x >> 33) % 36) as usize]
        })
        .collect()
}

struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            self.acc = (self.acc << 1) | ((code >> i) & 1);
            self.n += 1;
            if self.n == 8 {
                let byte = self.acc as u8;
                self.out.push(byte);
                if byte == 0xFF {
                    self.out.push(0x00);
                }
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        while self.n != 0 {
            self.put(1, 1);
        }
        self.out
    }
}

/// Canonical Huffman codes (code, length) for `bits` (counts per length).
fn huff_codes(bits: &[u8; 16], vals: &[u8]) -> HashMap<u8, (u32, u32)> {
    let mut m = HashMap::new();
    let mut code = 0u32;
    let mut k = 0;
    for (len, &count) in bits.iter().enumerate() {
        for _ in 0..count {
            m.insert(vals[k], (code, len as u32 + 1));
            code += 1;
            k += 1;
        }
        code <<= 1;
    }
    m
}

/// A baseline YCbCr JPEG of one solid colour (DC-only blocks), with a COM
/// segment (`label` + `pad` bytes of padding).
fn jpeg(width: u16, height: u16, color: [u8; 3], label: &str, pad: usize) -> Vec<u8> {
    const DC_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    const DC_VALS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const AC_BITS: [u8; 16] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    const AC_VALS: [u8; 1] = [0x00]; // EOB only
    let seg = |out: &mut Vec<u8>, marker: u8, payload: &[u8]| {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(payload);
    };
    let mut out = vec![0xFF, 0xD8];
    seg(&mut out, 0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
    let mut comment = label.as_bytes().to_vec();
    comment.push(b' ');
    comment.extend(padding(label, pad));
    for part in comment.chunks(60_000) {
        seg(&mut out, 0xFE, part);
    }
    let mut dqt = vec![0u8];
    dqt.extend([1u8; 64]);
    seg(&mut out, 0xDB, &dqt);
    let mut sof = vec![8u8];
    sof.extend_from_slice(&height.to_be_bytes());
    sof.extend_from_slice(&width.to_be_bytes());
    sof.extend_from_slice(&[3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]);
    seg(&mut out, 0xC0, &sof);
    let mut dht = vec![0x00];
    dht.extend_from_slice(&DC_BITS);
    dht.extend_from_slice(&DC_VALS);
    dht.push(0x10);
    dht.extend_from_slice(&AC_BITS);
    dht.extend_from_slice(&AC_VALS);
    seg(&mut out, 0xC4, &dht);
    seg(&mut out, 0xDA, &[3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]);

    let dc = huff_codes(&DC_BITS, &DC_VALS);
    let ac = huff_codes(&AC_BITS, &AC_VALS);
    let [r, g, b] = color.map(f64::from);
    let ycc = [
        0.299 * r + 0.587 * g + 0.114 * b,
        128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
        128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
    ];
    // DC coefficient of a flat block (quantizer 1) = 8 * (value - 128).
    let coef = ycc.map(|v| (8.0 * (v.clamp(0.0, 255.0) - 128.0)).round() as i32);
    let blocks = usize::from(width.div_ceil(8)) * usize::from(height.div_ceil(8));
    let mut bw = BitWriter { out: Vec::new(), acc: 0, n: 0 };
    let mut prev = [0i32; 3];
    for _ in 0..blocks {
        for c in 0..3 {
            let diff = coef[c] - prev[c];
            prev[c] = coef[c];
            let cat = 32 - diff.unsigned_abs().leading_zeros();
            let (code, len) = dc[&(cat as u8)];
            bw.put(code, len);
            if cat > 0 {
                let v = if diff >= 0 { diff as u32 } else { (diff + (1 << cat) - 1) as u32 };
                bw.put(v, cat);
            }
            let (code, len) = ac[&0];
            bw.put(code, len);
        }
    }
    out.extend(bw.finish());
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut c = kind.to_vec();
    c.extend_from_slice(data);
    out.extend_from_slice(&c);
    out.extend_from_slice(&crc32(&c).to_be_bytes());
}

/// An RGB PNG (zlib with stored blocks): a two-colour gradient, plus a
/// `tEXt` chunk with `label` and `pad` bytes of padding.
fn png(width: u32, height: u32, color: [u8; 3], label: &str, pad: usize) -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0);
        for x in 0..width {
            raw.push(color[0].wrapping_add((x * 8) as u8));
            raw.push(color[1].wrapping_add((y * 8) as u8));
            raw.push(color[2]);
        }
    }
    let mut z = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, c) in chunks.iter().enumerate() {
        z.push(u8::from(i + 1 == chunks.len()));
        z.extend_from_slice(&(c.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(c.len() as u16)).to_le_bytes());
        z.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    let mut text = b"Comment\0".to_vec();
    text.extend_from_slice(label.as_bytes());
    if pad > 0 {
        text.push(b' ');
        text.extend(padding(label, pad));
    }
    png_chunk(&mut out, b"tEXt", &text);
    png_chunk(&mut out, b"IDAT", &z);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A 1x1 GIF89a in `color`, with a comment extension (`label` + padding).
fn gif(color: [u8; 3], label: &str, pad: usize) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&[1, 0, 1, 0, 0x80, 0, 0]);
    out.extend_from_slice(&color);
    out.extend_from_slice(&[0, 0, 0]);
    let mut comment = label.as_bytes().to_vec();
    comment.push(b' ');
    comment.extend(padding(label, pad));
    out.extend_from_slice(&[0x21, 0xFE]);
    for part in comment.chunks(255) {
        out.push(part.len() as u8);
        out.extend_from_slice(part);
    }
    out.push(0);
    out.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
    out.extend_from_slice(&[0x02, 0x02, 0x44, 0x01, 0x00]);
    out.push(0x3B);
    out
}

// ---------------------------------------------------------------------------
// Tests of the fake itself
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    use crate::support::client::{Got, agent, done};

    /// GET with optional bearer token and extra headers.
    fn get(url: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Got {
        let mut rq = agent().get(url);
        if let Some(t) = token {
            rq = rq.header("Authorization", &format!("Bearer {t}"));
        }
        for (k, v) in headers {
            rq = rq.header(*k, *v);
        }
        done(rq.call())
    }

    fn api(fake: &FakePixiv, tok: &str, path_and_query: &str) -> Got {
        get(&fake.url(path_and_query), Some(tok), &[])
    }

    fn api_json(fake: &FakePixiv, tok: &str, path_and_query: &str) -> Value {
        let g = api(fake, tok, path_and_query);
        assert_eq!(g.status, 200, "{path_and_query}: {}", g.text());
        g.json()
    }

    fn image(url: &str, headers: &[(&str, &str)]) -> Got {
        let mut h = vec![("Referer", "https://app-api.pixiv.net/")];
        h.extend_from_slice(headers);
        get(url, None, &h)
    }

    fn token_post(fake: &FakePixiv, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Got {
        let mut rq = agent().post(fake.url("/auth/token"));
        for (k, v) in headers {
            rq = rq.header(*k, *v);
        }
        done(rq.send_form(form.iter().copied()))
    }

    fn refresh(fake: &FakePixiv, rt: &str) -> Got {
        token_post(
            fake,
            &[
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("get_secure_url", "1"),
            ],
            &[],
        )
    }

    /// Walks `next_url` verbatim from `first`; returns the items under
    /// `key` and every next_url seen. Bounded.
    fn walk(fake: &FakePixiv, tok: &str, first: &str, key: &str) -> (Vec<Value>, Vec<String>) {
        let mut items = Vec::new();
        let mut urls = Vec::new();
        let mut url = fake.url(first);
        for _ in 0..100 {
            let g = get(&url, Some(tok), &[]);
            assert_eq!(g.status, 200, "{url}: {}", g.text());
            let v = g.json();
            items.extend(v[key].as_array().expect("list").iter().cloned());
            match v["next_url"].as_str() {
                Some(n) => {
                    assert!(n.starts_with(&fake.base_url()), "{n}");
                    urls.push(n.to_string());
                    url = n.to_string();
                }
                None => return (items, urls),
            }
        }
        panic!("pagination did not end");
    }

    fn ids(items: &[Value]) -> Vec<u64> {
        items.iter().map(|v| v["id"].as_u64().expect("id")).collect()
    }

    fn param(url: &str, key: &str) -> Option<String> {
        let q = url.split_once('?')?.1;
        q.split('&').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            (percent_decode(k) == key).then(|| percent_decode(v))
        })
    }

    // --- OAuth ------------------------------------------------------------------

    #[test]
    fn oauth_refresh_token_response_is_doubled() {
        let fake = FakePixiv::start();
        fake.add_user(1, "owner", "owner_acc");
        let rt = fake.current_refresh_token();
        assert_eq!(rt, default_refresh_token());
        let time = "2025-01-01T12:34:56+00:00";
        let hash = md5_hex(format!("{time}{HASH_SECRET}").as_bytes());
        let form = [
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("get_secure_url", "1"),
        ];
        let g = token_post(&fake, &form, &[("X-Client-Time", time), ("X-Client-Hash", &hash)]);
        assert_eq!(g.status, 200, "{}", g.text());
        let v = g.json();
        for copy in [&v, &v["response"]] {
            assert_eq!(copy["token_type"], "bearer");
            assert_eq!(copy["expires_in"], 3600);
            assert_eq!(copy["scope"], "");
            assert_eq!(copy["refresh_token"], rt.as_str());
            assert_eq!(copy["user"]["id"], "1", "user.id is a string here");
            assert_eq!(copy["user"]["account"], "owner_acc");
            assert!(copy["user"]["profile_image_urls"]["px_170x170"].as_str().is_some());
        }
        let at = v["response"]["access_token"].as_str().expect("access_token");
        assert_eq!(at.len(), 43);
        assert_eq!(v["access_token"], at);
        assert_eq!(api(&fake, at, "/v1/user/detail?user_id=1").status, 200);

        // A wrong hash is recorded, not refused; no headers: no verdict.
        assert_eq!(token_post(&fake, &form, &[("X-Client-Time", time), ("X-Client-Hash", "00")]).status, 200);
        assert_eq!(token_post(&fake, &form, &[]).status, 200);
        let reqs = fake.token_requests();
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[0].grant_type, "refresh_token");
        assert_eq!(reqs[0].refresh_token.as_deref(), Some(rt.as_str()));
        assert_eq!(reqs[0].x_client_time.as_deref(), Some(time));
        assert_eq!(reqs.iter().map(|r| r.hash_ok).collect::<Vec<_>>(), [Some(true), Some(false), None]);

        // Wrong client credentials.
        let g = token_post(
            &fake,
            &[
                ("client_id", "x"),
                ("client_secret", "y"),
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
            ],
            &[],
        );
        assert_eq!(g.status, 400);
        assert_eq!(g.json()["error"], "invalid_client");
    }

    #[test]
    fn oauth_rotation_revocation_and_cloudflare() {
        let fake = FakePixiv::start();
        let rt0 = fake.current_refresh_token();
        fake.set_rotate_refresh_tokens(true);
        let g = refresh(&fake, &rt0);
        assert_eq!(g.status, 200);
        let rt1 = g.json()["response"]["refresh_token"].as_str().expect("rt").to_string();
        assert_ne!(rt1, rt0);
        assert_eq!(fake.current_refresh_token(), rt1);
        let old = refresh(&fake, &rt0);
        assert_eq!(old.status, 400);
        assert_eq!(old.text(), REFRESH_INVALID_BODY);
        assert_eq!(refresh(&fake, &rt1).status, 200);

        fake.set_rotate_refresh_tokens(false);
        let rt = fake.current_refresh_token();
        let g = refresh(&fake, &rt);
        assert_eq!(g.json()["refresh_token"], rt.as_str(), "no rotation: same token back");
        fake.revoke_refresh_token();
        let g = refresh(&fake, &rt);
        assert_eq!((g.status, g.text().as_str()), (400, REFRESH_INVALID_BODY));
        fake.set_refresh_token("brand-new");
        assert_eq!(refresh(&fake, "brand-new").status, 200);

        fake.cloudflare_next_token(2);
        for _ in 0..2 {
            let g = refresh(&fake, "brand-new");
            assert_eq!(g.status, 403);
            assert!(g.header("content-type").unwrap_or("").starts_with("text/html"));
            assert!(serde_json::from_slice::<Value>(&g.body).is_err(), "not JSON");
        }
        assert_eq!(refresh(&fake, "brand-new").status, 200);
        let statuses: Vec<u16> = fake.token_requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 400, 200, 200, 400, 200, 403, 403, 200]);
    }

    #[test]
    fn oauth_pkce_authorization_code() {
        let fake = FakePixiv::start();
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = FakePixiv::pkce_challenge(verifier);
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let exchange = |code: &str, v: &str| {
            token_post(
                &fake,
                &[
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                    ("code", code),
                    ("code_verifier", v),
                    ("grant_type", "authorization_code"),
                    ("include_policy", "true"),
                    ("redirect_uri", REDIRECT_URI),
                ],
                &[],
            )
        };
        assert_eq!(exchange(GOOD_CODE, verifier).status, 400, "no challenge registered");
        fake.expect_pkce(&challenge);
        let bad = exchange(GOOD_CODE, "wrong-verifier");
        assert_eq!(bad.status, 400);
        assert_eq!(bad.json()["error"], "invalid_grant");
        assert_eq!(exchange("other-code", verifier).status, 400);
        let ok = exchange(GOOD_CODE, verifier);
        assert_eq!(ok.status, 200, "{}", ok.text());
        let rt = ok.json()["response"]["refresh_token"].as_str().expect("rt").to_string();
        assert_eq!(fake.current_refresh_token(), rt);
        assert_eq!(exchange(GOOD_CODE, verifier).status, 400, "codes are single-use");
        assert_eq!(refresh(&fake, &rt).status, 200);
        let reqs = fake.token_requests();
        assert_eq!(reqs[4].grant_type, "authorization_code");
        assert_eq!(reqs[4].code.as_deref(), Some(GOOD_CODE));
        assert_eq!(reqs[4].code_verifier.as_deref(), Some(verifier));
    }

    #[test]
    fn api_needs_a_live_access_token() {
        let fake = FakePixiv::start();
        fake.add_work(Work::new(10, 2));
        let path = "/v1/illust/detail?illust_id=10";
        let g = get(&fake.url(path), None, &[]);
        assert_eq!((g.status, g.text().as_str()), (400, TOKEN_MISSING_BODY));
        let g = api(&fake, "bogus", path);
        assert_eq!((g.status, g.text().as_str()), (400, TOKEN_INVALID_BODY));

        fake.set_access_ttl(1);
        let g = refresh(&fake, &fake.current_refresh_token());
        assert_eq!(g.json()["expires_in"], 1);
        let at = g.json()["access_token"].as_str().expect("at").to_string();
        assert_eq!(api(&fake, &at, path).status, 200);
        thread::sleep(Duration::from_millis(1100));
        let g = api(&fake, &at, path);
        assert_eq!((g.status, g.text().as_str()), (400, TOKEN_INVALID_BODY));

        fake.set_access_ttl(3600);
        let at = fake.issue_access_token();
        assert_eq!(api(&fake, &at, path).status, 200);
        fake.expire_access_tokens();
        assert_eq!(api(&fake, &at, path).status, 400);

        let calls = fake.api_calls_to("/v1/illust/detail");
        assert_eq!(
            calls.iter().map(|c| c.authorized).collect::<Vec<_>>(),
            [false, false, true, false, true, false]
        );
        assert_eq!(calls[0].param("illust_id"), Some("10"));
        assert_eq!(
            api(&fake, &fake.issue_access_token(), "/v1/nope").json()["error"]["user_message"],
            NO_ENDPOINT
        );
    }

    // --- lists --------------------------------------------------------------------

    #[test]
    fn user_illusts_paginates_95_works_by_type() {
        let fake = FakePixiv::start();
        fake.add_user(7, "artist", "artist_acc");
        for id in 1..=95u64 {
            let kind = match id % 3 {
                0 => Kind::Manga,
                1 => Kind::Illust,
                _ => Kind::Ugoira,
            };
            fake.add_work(Work::new(id, 7).kind(kind).pages(if kind == Kind::Manga { 2 } else { 1 }));
        }
        fake.add_work(Work::new(500, 8)); // another user's work
        let tok = fake.issue_access_token();

        let (items, urls) = walk(&fake, &tok, "/v1/user/illusts?user_id=7&filter=for_ios", "illusts");
        assert_eq!(ids(&items), (1..=95).rev().collect::<Vec<_>>(), "all kinds, newest first, no duplicates");
        assert_eq!(urls.len(), 3);
        for (i, u) in urls.iter().enumerate() {
            assert_eq!(
                u,
                &fake.url(&format!("/v1/user/illusts?user_id=7&filter=for_ios&offset={}", 30 * (i + 1)))
            );
        }
        let v = api_json(&fake, &tok, "/v1/user/illusts?user_id=7&offset=90");
        assert_eq!(v["illusts"].as_array().map(Vec::len), Some(5));
        assert!(v["next_url"].is_null());
        assert_eq!(v["user"]["id"], 7);
        assert_eq!(v["user"]["account"], "artist_acc");

        let (items, _) = walk(&fake, &tok, "/v1/user/illusts?user_id=7&type=illust", "illusts");
        assert!(items.iter().all(|i| i["type"] != "manga"));
        assert_eq!(items.len(), 95 - 31, "illust + ugoira");
        let (items, urls) = walk(&fake, &tok, "/v1/user/illusts?user_id=7&type=manga", "illusts");
        assert!(items.iter().all(|i| i["type"] == "manga"));
        assert_eq!(items.len(), 31);
        assert_eq!(param(&urls[0], "type").as_deref(), Some("manga"));

        for bad in ["novel", "ugoira"] {
            let g = api(&fake, &tok, &format!("/v1/user/illusts?user_id=7&type={bad}"));
            assert_eq!((g.status, g.text().as_str()), (400, INVALID_TYPE_BODY));
        }
        // An offset past the end: empty page, no next_url.
        let v = api_json(&fake, &tok, "/v1/user/illusts?user_id=7&offset=300");
        assert_eq!(v["illusts"], json!([]));
        assert!(v["next_url"].is_null());
    }

    #[test]
    fn empty_unknown_and_deleted_users() {
        let fake = FakePixiv::start();
        fake.add_user(3, "empty", "empty");
        fake.add_user(4, "gone", "gone");
        fake.add_work(Work::new(40, 4));
        fake.delete_user(4);
        let tok = fake.issue_access_token();
        for uid in [3, 4, 999] {
            let v = api_json(&fake, &tok, &format!("/v1/user/illusts?user_id={uid}"));
            assert_eq!(v["user"]["id"], 0);
            assert_eq!(v["user"]["profile_image_urls"]["medium"], fake.url("/common/images/no_profile.png"));
            assert_eq!(v["illusts"], json!([]));
            assert!(v["next_url"].is_null());
        }
        assert_eq!(api(&fake, &tok, "/v1/user/detail?user_id=3").status, 200);
        for uid in [4, 999] {
            let g = api(&fake, &tok, &format!("/v1/user/detail?user_id={uid}"));
            assert_eq!(g.status, 404);
            assert_eq!(g.json()["error"]["user_message"], DELETED_USER);
        }
        let v = api_json(&fake, &tok, "/v1/user/detail?user_id=3");
        assert_eq!(v["profile"]["total_illusts"], 0);
        assert!(v["workspace"].is_object() && v["profile_publicity"].is_object());
    }

    #[test]
    fn illust_objects_have_the_real_shapes() {
        let fake = FakePixiv::start();
        let mut single = Work::new(126_839_540, 5).tags(&["プリキュア", "fanart"]);
        single.create_date = "2025-02-03T00:03:17+09:00".into();
        single.bookmarks = 2196;
        fake.add_work(single);
        fake.add_work(Work::new(126_884_199, 5).kind(Kind::Manga).pages(4).ext("png"));
        fake.add_work(Work::new(87_559_623, 5).kind(Kind::Ugoira));
        let mut hashed = Work::new(141_762_848, 5);
        hashed.hashed_name = true;
        fake.add_work(hashed);
        fake.add_series(21859, 5, "My series", &[126_884_199]);
        fake.add_bookmark(1, 126_839_540, false, &[]);
        let tok = fake.issue_access_token();
        let b = fake.base_url();

        let v = api_json(&fake, &tok, "/v1/illust/detail?illust_id=126839540")["illust"].clone();
        let fields = [
            "id",
            "title",
            "type",
            "image_urls",
            "caption",
            "restrict",
            "user",
            "tags",
            "tools",
            "create_date",
            "page_count",
            "width",
            "height",
            "sanity_level",
            "x_restrict",
            "series",
            "meta_single_page",
            "meta_pages",
            "total_view",
            "total_bookmarks",
            "is_bookmarked",
            "visible",
            "is_muted",
            "illust_ai_type",
            "illust_book_style",
            "total_comments",
            "comment_access_control",
            "request",
            "event_banners",
            "seasonal_effect_animation_urls",
        ];
        for f in fields {
            assert!(v.get(f).is_some(), "missing {f}");
        }
        assert_eq!(v["create_date"], "2025-02-03T00:03:17+09:00");
        assert_eq!(
            v["meta_single_page"]["original_image_url"],
            format!("{b}/img-original/img/2025/02/03/00/03/18/126839540_p0.jpg"),
            "path time = create_date + 1 s"
        );
        assert_eq!(
            v["image_urls"]["square_medium"],
            format!("{b}/c/360x360_70/img-master/img/2025/02/03/00/03/18/126839540_p0_square1200.jpg")
        );
        assert_eq!(v["meta_pages"], json!([]));
        assert_eq!(v["tags"][0], json!({"name": "プリキュア", "translated_name": null}));
        assert_eq!(v["is_bookmarked"], true, "bookmarked by the token owner");
        assert_eq!(v["total_bookmarks"], 2196);
        assert_eq!(v["series"], Value::Null);
        assert_eq!(v["user"]["id"], 5);

        let m = api_json(&fake, &tok, "/v1/illust/detail?illust_id=126884199")["illust"].clone();
        assert_eq!((m["type"].as_str(), m["page_count"].as_u64()), (Some("manga"), Some(4)));
        assert_eq!(m["meta_single_page"], json!({}));
        let pages = m["meta_pages"].as_array().expect("pages");
        assert_eq!(pages.len(), 4);
        for (i, p) in pages.iter().enumerate() {
            let orig = p["image_urls"]["original"].as_str().expect("original");
            assert!(orig.ends_with(&format!("126884199_p{i}.png")), "{orig}");
            assert!(
                p["image_urls"]["large"].as_str().expect("large").ends_with(&format!("_p{i}_master1200.jpg"))
            );
        }
        assert_eq!(pages[0]["image_urls"]["medium"], m["image_urls"]["medium"]);
        assert_eq!(m["series"], json!({"id": 21859, "title": "My series"}));

        let u = api_json(&fake, &tok, "/v1/illust/detail?illust_id=87559623")["illust"].clone();
        assert_eq!((u["type"].as_str(), u["page_count"].as_u64()), (Some("ugoira"), Some(1)));
        let orig = u["meta_single_page"]["original_image_url"].as_str().expect("orig");
        assert!(orig.ends_with("/87559623_ugoira0.jpg"), "{orig}");
        for k in ["square_medium", "medium", "large"] {
            let t = u["image_urls"][k].as_str().expect("thumb");
            assert!(!t.contains("_p0"), "{t}");
        }

        let h = api_json(&fake, &tok, "/v1/illust/detail?illust_id=141762848")["illust"].clone();
        let orig = h["meta_single_page"]["original_image_url"].as_str().expect("orig").to_string();
        let name = orig.rsplit('/').next().expect("name");
        assert_eq!(name.len(), "141762848-".len() + 32 + "_p0.jpg".len(), "{name}");
        assert_eq!(image(&orig, &[]).status, 200);

        // Lists lack the detail-only fields.
        let list = api_json(&fake, &tok, "/v1/user/illusts?user_id=5");
        for i in list["illusts"].as_array().expect("list") {
            assert!(i.get("total_comments").is_none() && i.get("comment_access_control").is_none());
        }
    }

    #[test]
    fn placeholders_and_deleted_works() {
        let fake = FakePixiv::start();
        fake.add_work(Work::new(1, 9));
        fake.add_work(Work::new(2, 9).kind(Kind::Ugoira).limit(Limit::Sanity));
        fake.add_work(Work::new(3, 9).pages(5).limit(Limit::Mypixiv));
        fake.add_work(Work::new(4, 9).limit(Limit::Unknown));
        let mut del = Work::new(5, 9);
        del.deleted = true;
        fake.add_work(del);
        let tok = fake.issue_access_token();
        let b = fake.base_url();

        let s = api_json(&fake, &tok, "/v1/illust/detail?illust_id=2")["illust"].clone();
        let lim = format!("{b}/common/images/limit_sanity_level_360.png");
        let expected = json!({
            "id": 2, "title": "", "type": "illust",
            "image_urls": { "square_medium": lim, "medium": lim, "large": lim },
            "caption": "", "restrict": 0,
            "user": { "id": 9, "name": "", "account": "",
                      "profile_image_urls": { "medium": format!("{b}/common/images/no_profile.png") } },
            "tags": [], "tools": [], "create_date": date_for_id(2), "page_count": 1, "width": 100, "height": 100,
            "sanity_level": 0, "x_restrict": 0, "series": null,
            "meta_single_page": { "original_image_url": lim },
            "meta_pages": [], "total_view": 0, "total_bookmarks": 0, "is_bookmarked": false, "visible": false,
            "is_muted": false, "illust_ai_type": 0, "illust_book_style": 0, "comment_access_control": 0,
        });
        assert_eq!(s, expected, "type is illust even for an ugoira; no is_followed");
        let p = image(&lim, &[]);
        assert_eq!(p.status, 200);
        assert!(p.body.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(p.header("content-type"), Some("image/png"));
        assert_eq!(get(&lim, None, &[]).status, 200, "placeholders need no Referer");

        let m = api_json(&fake, &tok, "/v1/illust/detail?illust_id=3")["illust"].clone();
        assert!(
            m["meta_single_page"]["original_image_url"]
                .as_str()
                .expect("url")
                .ends_with("limit_mypixiv_360.png")
        );
        assert_eq!((m["page_count"].as_u64(), m["user"]["id"].as_u64()), (Some(1), Some(9)));
        let u = api_json(&fake, &tok, "/v1/illust/detail?illust_id=4")["illust"].clone();
        assert_eq!(u["user"]["id"], 0);
        assert!(u["image_urls"]["large"].as_str().expect("url").ends_with("limit_unknown_360.png"));

        for (lang, msg) in [("ja", DELETED_WORK_JA), ("en-us", DELETED_WORK_EN), ("zh-cn", DELETED_WORK_ZH)] {
            for id in [5, 777] {
                let g = get(
                    &fake.url(&format!("/v1/illust/detail?illust_id={id}")),
                    Some(&tok),
                    &[("Accept-Language", lang)],
                );
                assert_eq!(g.status, 404);
                assert_eq!(g.json()["error"]["user_message"], msg);
                assert_eq!(g.json()["error"]["message"], "");
            }
        }
        // User listing: sanity and unknown left out, My pixiv as placeholder.
        let v = api_json(&fake, &tok, "/v1/user/illusts?user_id=9");
        assert_eq!(ids(v["illusts"].as_array().expect("list")), [3, 1]);
        assert_eq!(v["illusts"][0]["visible"], false);
    }

    #[test]
    fn bookmarks_paginate_by_max_bookmark_id() {
        let fake = FakePixiv::start();
        for id in 1..=80u64 {
            fake.add_work(Work::new(id, 20));
        }
        fake.add_work(Work::new(500, 21).limit(Limit::Mypixiv));
        let mut del = Work::new(501, 21);
        del.deleted = true;
        fake.add_work(del);
        fake.add_work(Work::new(502, 21).limit(Limit::Unknown));
        // Bookmarked in an order unrelated to ids.
        let order: Vec<u64> = (1..=70u64).map(|i| (i * 37) % 71).collect();
        for &id in &order {
            fake.add_bookmark(1, id, false, if id % 10 == 0 { &["ten"] } else { &[] });
        }
        for id in [500, 501, 502, 9999] {
            fake.add_bookmark(1, id, false, &[]);
        }
        for id in 71..=75u64 {
            fake.add_bookmark(1, id, true, &["secret"]);
        }
        let tok = fake.issue_access_token();

        let (items, urls) = walk(
            &fake,
            &tok,
            "/v1/user/bookmarks/illust?user_id=1&restrict=public&filter=for_ios",
            "illusts",
        );
        let mut expected: Vec<u64> = order.clone();
        expected.extend([500, 501, 502, 9999]);
        expected.reverse();
        assert_eq!(ids(&items), expected, "newest bookmark first");
        assert_eq!(urls.len(), 2);
        let c1 = param(&urls[0], "max_bookmark_id").expect("cursor").parse::<u64>().expect("int");
        let c2 = param(&urls[1], "max_bookmark_id").expect("cursor").parse::<u64>().expect("int");
        assert!(c1 > c2 && c1 > 1_000_000_000, "internal ids, not illust ids");
        assert_eq!(
            Some(c1),
            fake.bookmark_id(1, expected[30]),
            "inclusive cursor: first item of the next page"
        );
        assert!(urls[0].starts_with(
            &fake.url("/v1/user/bookmarks/illust?user_id=1&restrict=public&filter=for_ios&max_bookmark_id=")
        ));

        // Placeholders: mypixiv keeps its user, deleted/unknown have user.id 0.
        let by_id = |id: u64| items.iter().find(|i| i["id"] == id).expect("item").clone();
        assert!(by_id(500)["image_urls"]["medium"].as_str().expect("u").ends_with("limit_mypixiv_360.png"));
        assert_eq!(by_id(500)["user"]["id"], 21);
        for id in [501, 502, 9999] {
            assert_eq!(by_id(id)["user"]["id"], 0, "{id}");
            assert!(
                by_id(id)["meta_single_page"]["original_image_url"]
                    .as_str()
                    .expect("u")
                    .ends_with("limit_unknown_360.png")
            );
        }
        assert_eq!(by_id(1)["is_bookmarked"], true);

        let (tagged, _) =
            walk(&fake, &tok, "/v1/user/bookmarks/illust?user_id=1&restrict=public&tag=ten", "illusts");
        assert_eq!(tagged.len(), 7);
        let (private, _) =
            walk(&fake, &tok, "/v1/user/bookmarks/illust?user_id=1&restrict=private", "illusts");
        assert_eq!(ids(&private), [75, 74, 73, 72, 71]);
        assert_eq!(
            api(&fake, &tok, "/v1/user/bookmarks/illust?user_id=1").status,
            400,
            "restrict is required"
        );

        let tags = api_json(&fake, &tok, "/v1/user/bookmark-tags/illust?user_id=1&restrict=private");
        assert_eq!(tags["bookmark_tags"], json!([{"name": "secret", "count": 5}]));
        let d = api_json(&fake, &tok, "/v2/illust/bookmark/detail?illust_id=72");
        assert_eq!(d["bookmark_detail"]["is_bookmarked"], true);
        assert_eq!(d["bookmark_detail"]["restrict"], "private");
        assert_eq!(d["bookmark_detail"]["tags"][0], json!({"name": "secret", "is_registered": true}));
    }

    #[test]
    fn search_matches_sorts_filters_and_caps() {
        let fake = FakePixiv::start();
        for id in 1..=40u64 {
            let mut w = Work::new(id, 30).tags(&["Blue", "Sky", "original"]);
            w.create_date =
                jst_date(parse_iso("2024-03-01T12:00:00+09:00").expect("date") + id as i64 * 86_400);
            w.bookmarks = (id * 7) % 40;
            if id % 4 == 0 {
                w.ai_type = 2;
            }
            fake.add_work(w);
        }
        let mut t = Work::new(100, 31).tags(&["sea"]);
        t.title = "A blue sky over the sea".into();
        fake.add_work(t);
        fake.add_work(Work::new(101, 31).tags(&["blue", "sky"]).limit(Limit::Sanity));
        let tok = fake.issue_access_token();

        let (items, urls) = walk(
            &fake,
            &tok,
            "/v1/search/illust?word=blue+sky&search_target=partial_match_for_tags&sort=date_desc&filter=for_ios",
            "illusts",
        );
        assert_eq!(ids(&items), (1..=40).rev().collect::<Vec<_>>());
        assert_eq!(
            urls,
            [fake.url("/v1/search/illust?word=blue+sky&search_target=partial_match_for_tags&sort=date_desc&filter=for_ios&offset=30")]
        );
        let v =
            api_json(&fake, &tok, "/v1/search/illust?word=blue%20sky&search_target=partial_match_for_tags");
        assert_eq!(v["search_span_limit"], 31_536_000);
        assert_eq!(v["show_ai"], true);

        let (asc, _) = walk(
            &fake,
            &tok,
            "/v1/search/illust?word=sky&search_target=partial_match_for_tags&sort=date_asc",
            "illusts",
        );
        assert_eq!(ids(&asc), (1..=40).collect::<Vec<_>>());
        let (exact, _) =
            walk(&fake, &tok, "/v1/search/illust?word=sk&search_target=exact_match_for_tags", "illusts");
        assert!(exact.is_empty(), "no tag is exactly 'sk'");
        let (exact, _) = walk(
            &fake,
            &tok,
            "/v1/search/illust?word=blue%20sky&search_target=exact_match_for_tags",
            "illusts",
        );
        assert_eq!(exact.len(), 40, "each term matches some tag exactly, case-insensitively");
        let (title, _) =
            walk(&fake, &tok, "/v1/search/illust?word=over+the&search_target=title_and_caption", "illusts");
        assert_eq!(ids(&title), [100]);
        let (pop, _) = walk(
            &fake,
            &tok,
            "/v1/search/illust?word=original&search_target=partial_match_for_tags&sort=popular_desc",
            "illusts",
        );
        let marks: Vec<u64> = pop.iter().map(|i| i["total_bookmarks"].as_u64().expect("n")).collect();
        assert!(marks.windows(2).all(|w| w[0] >= w[1]), "{marks:?}");

        // Dates are inclusive, on the date part of create_date.
        let (ranged, _) = walk(
            &fake,
            &tok,
            "/v1/search/illust?word=original&search_target=partial_match_for_tags&sort=date_asc&start_date=2024-03-05&end_date=2024-03-10",
            "illusts",
        );
        assert_eq!(ids(&ranged), (4..=9).collect::<Vec<_>>());
        let (no_ai, _) = walk(
            &fake,
            &tok,
            "/v1/search/illust?word=original&search_target=partial_match_for_tags&search_ai_type=0",
            "illusts",
        );
        assert_eq!(no_ai.len(), 30);

        assert_eq!(api(&fake, &tok, "/v1/search/illust?word=original&offset=5000").status, 200);
        for off in [5001, 5030] {
            let g = api(&fake, &tok, &format!("/v1/search/illust?word=original&offset={off}"));
            assert_eq!((g.status, g.text().as_str()), (400, OFFSET_CAP_BODY));
        }
        assert_eq!(api(&fake, &tok, "/v1/search/illust?word=x&search_target=bogus").status, 400);
    }

    #[test]
    fn search_hands_out_a_next_url_past_the_cap() {
        let fake = FakePixiv::start();
        for id in 1..=5040u64 {
            fake.add_work(Work::new(id, 1).tags(&["many"]));
        }
        let tok = fake.issue_access_token();
        let v = api_json(&fake, &tok, "/v1/search/illust?word=many&offset=4980");
        let next = v["next_url"].as_str().expect("next").to_string();
        assert_eq!(param(&next, "offset").as_deref(), Some("5010"));
        let g = get(&next, Some(&tok), &[]);
        assert_eq!((g.status, g.text().as_str()), (400, OFFSET_CAP_BODY));
    }

    #[test]
    fn ranking_follow_and_series_paginate_by_offset() {
        let fake = FakePixiv::start();
        for id in 1..=70u64 {
            fake.add_work(Work::new(id, 40));
        }
        fake.add_work(Work::new(71, 40).limit(Limit::Sanity));
        let mut del = Work::new(72, 40);
        del.deleted = true;
        fake.add_work(del);
        let rank: Vec<u64> = (1..=72).rev().collect();
        fake.set_ranking("day", Some("2025-02-04"), &rank);
        fake.set_ranking("week", Some("2025-02-01"), &[1, 2, 3]);
        fake.set_follow_feed(&(1..=45).collect::<Vec<_>>());
        fake.add_series(21859, 40, "Series", &(10..=50).collect::<Vec<_>>());
        let tok = fake.issue_access_token();

        let (items, urls) =
            walk(&fake, &tok, "/v1/illust/ranking?mode=day&filter=for_ios&date=2025-02-04", "illusts");
        assert_eq!(items.len(), 71, "sanity placeholder kept, deleted dropped");
        assert_eq!(items[0]["id"], 71);
        assert_eq!(items[0]["visible"], false);
        assert_eq!(urls[0], fake.url("/v1/illust/ranking?mode=day&filter=for_ios&date=2025-02-04&offset=30"));
        // No date: the latest ranking of that mode, and next_url names its date.
        let v = api_json(&fake, &tok, "/v1/illust/ranking?mode=week");
        assert_eq!(ids(v["illusts"].as_array().expect("list")), [1, 2, 3]);
        let v = api_json(&fake, &tok, "/v1/illust/ranking?mode=day&filter=for_ios");
        assert_eq!(param(v["next_url"].as_str().expect("next"), "date").as_deref(), Some("2025-02-04"));
        let v = api_json(&fake, &tok, "/v1/illust/ranking?mode=day&date=2020-01-01");
        assert_eq!((v["illusts"].clone(), v["next_url"].clone()), (json!([]), Value::Null));
        assert_eq!(api(&fake, &tok, "/v1/illust/ranking?mode=daily").status, 400);

        let (items, urls) = walk(&fake, &tok, "/v2/illust/follow?restrict=all", "illusts");
        assert_eq!(ids(&items), (1..=45).collect::<Vec<_>>());
        assert_eq!(urls, [fake.url("/v2/illust/follow?restrict=all&offset=30")]);
        assert_eq!(api(&fake, &tok, "/v2/illust/follow?restrict=bogus").status, 400);

        let (items, urls) =
            walk(&fake, &tok, "/v1/illust/series?filter=for_android&illust_series_id=21859", "illusts");
        assert_eq!(ids(&items), (10..=50).collect::<Vec<_>>());
        assert_eq!(urls, [fake.url("/v1/illust/series?filter=for_android&illust_series_id=21859&offset=30")]);
        let v = api_json(&fake, &tok, "/v1/illust/series?illust_series_id=21859");
        assert_eq!(v["illust_series_detail"]["series_work_count"], 41);
        assert_eq!(v["illust_series_detail"]["user"]["id"], 40);
        assert_eq!(v["illust_series_first_illust"]["id"], 10);
        assert_eq!(v["illusts"][0]["series"], json!({"id": 21859, "title": "Series"}));
        let cover =
            v["illust_series_detail"]["cover_image_urls"]["medium"].as_str().expect("cover").to_string();
        assert_eq!(image(&cover, &[]).status, 200);
        assert_eq!(api(&fake, &tok, "/v1/illust/series?illust_series_id=1").status, 404);
    }

    #[test]
    fn next_url_keeps_arrays_indexed_and_spaces_as_plus() {
        let fake = FakePixiv::start();
        for id in 1..=35u64 {
            fake.add_work(Work::new(id, 1).tags(&["a b"]));
        }
        let tok = fake.issue_access_token();
        let v = api_json(
            &fake,
            &tok,
            "/v1/search/illust?word=a%20b&x%5B%5D=1&x[]=2&search_target=partial_match_for_tags",
        );
        assert_eq!(
            v["next_url"],
            fake.url("/v1/search/illust?word=a+b&x%5B0%5D=1&x%5B1%5D=2&search_target=partial_match_for_tags&offset=30")
        );
    }

    // --- faults and timing ------------------------------------------------------------

    #[test]
    fn rate_limit_is_a_json_403_on_api_calls_only() {
        let fake = FakePixiv::start();
        fake.add_work(Work::new(1, 1));
        let tok = fake.issue_access_token();
        let orig = fake.original_url(1, 0).expect("url");
        fake.rate_limit_next(2);
        assert_eq!(image(&orig, &[]).status, 200, "images are not throttled");
        for _ in 0..2 {
            let g = api(&fake, &tok, "/v1/illust/detail?illust_id=1");
            assert_eq!((g.status, g.text().as_str()), (403, RATE_LIMIT_BODY));
            assert_eq!(g.json()["error"]["message"], "Rate Limit");
        }
        assert_eq!(refresh(&fake, &fake.current_refresh_token()).status, 200, "OAuth is not throttled");
        assert_eq!(api(&fake, &tok, "/v1/illust/detail?illust_id=1").status, 200);

        fake.set_rate_limit_every(3);
        let statuses: Vec<u16> =
            (0..6).map(|_| api(&fake, &tok, "/v1/illust/detail?illust_id=1").status).collect();
        assert_eq!(statuses, [200, 200, 403, 200, 200, 403]);
        fake.set_rate_limit_every(0);
        let all: Vec<u16> = fake.api_calls().iter().map(|c| c.status).collect();
        assert_eq!(all, [403, 403, 200, 200, 200, 403, 200, 200, 403]);
        assert!(fake.api_calls().iter().all(|c| c.authorized));
    }

    #[test]
    fn latency_shows_in_api_call_times() {
        let fake = FakePixiv::start();
        fake.add_work(Work::new(1, 1));
        let tok = fake.issue_access_token();
        fake.set_api_latency(Duration::from_millis(150));
        fake.set_image_latency(Duration::from_millis(100));
        let t0 = Instant::now();
        assert_eq!(api(&fake, &tok, "/v1/illust/detail?illust_id=1").status, 200);
        assert!(t0.elapsed() >= Duration::from_millis(150));
        let c = &fake.api_calls()[0];
        assert!(c.ended - c.started >= Duration::from_millis(150));
        let t0 = Instant::now();
        assert_eq!(image(&fake.original_url(1, 0).expect("url"), &[]).status, 200);
        assert!(t0.elapsed() >= Duration::from_millis(100));
        // A fake dropped mid-latency does not hang.
        fake.set_api_latency(Duration::from_secs(30));
        let url = fake.url("/v1/illust/detail?illust_id=1");
        let h = thread::spawn(move || {
            let _ = agent().get(&url).header("Authorization", &format!("Bearer {tok}")).call();
        });
        thread::sleep(Duration::from_millis(100));
        let t0 = Instant::now();
        drop(fake);
        h.join().expect("client thread");
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    // --- images -------------------------------------------------------------------------

    #[test]
    fn image_host_checks_referer_and_serves_ranges() {
        let fake = FakePixiv::start();
        fake.add_work(Work::new(10, 1).ext("png").pages(2));
        fake.add_work(Work::new(11, 1).ext("gif"));
        fake.add_work(Work::new(12, 1));
        let tok = fake.issue_access_token();
        let url = fake.original_url(10, 1).expect("url");
        let body = FakePixiv::image_bytes(10, 1, "png");

        assert_eq!(get(&url, None, &[]).status, 403, "no Referer");
        assert_eq!(get(&url, None, &[("Referer", "https://example.com/")]).status, 403);
        assert_eq!(get(&url, None, &[("Referer", "https://evilpixiv.net/")]).status, 403);
        for r in ["https://app-api.pixiv.net/", "https://www.pixiv.net/artworks/10", "https://i.pximg.net/x"]
        {
            assert_eq!(get(&url, None, &[("Referer", r)]).status, 200, "{r}");
        }
        let g = image(&url, &[]);
        assert_eq!(g.body, body);
        assert_eq!(g.header("content-type"), Some("image/png"));
        assert_eq!(g.header("accept-ranges"), Some("bytes"));
        let lm = g.header("last-modified").expect("Last-Modified").to_string();
        let etag = g.header("etag").expect("ETag").to_string();
        assert!(httpdate::parse_http_date(&lm).is_ok());

        let r = image(&url, &[("Range", "bytes=100-")]);
        assert_eq!(r.status, 206);
        assert_eq!(r.body, body[100..]);
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes 100-{}/{}", body.len() - 1, body.len()).as_str())
        );
        let r = image(&url, &[("Range", "bytes=0-9")]);
        assert_eq!((r.status, r.body.as_slice()), (206, &body[..10]));
        let r = image(&url, &[("Range", "bytes=-5")]);
        assert_eq!((r.status, r.body.as_slice()), (206, &body[body.len() - 5..]));
        let r = image(&url, &[("Range", &format!("bytes={}-", body.len()))]);
        assert_eq!(r.status, 416);
        assert_eq!(r.header("content-range"), Some(format!("bytes */{}", body.len()).as_str()));
        let r = image(&url, &[("Range", "bytes=10-"), ("If-Range", &etag)]);
        assert_eq!(r.status, 206);
        let r = image(&url, &[("Range", "bytes=10-"), ("If-Range", "\"stale\"")]);
        assert_eq!((r.status, r.body.len()), (200, body.len()));

        let gif = image(&fake.original_url(11, 0).expect("url"), &[]);
        assert_eq!(gif.header("content-type"), Some("image/gif"));
        assert!(gif.body.starts_with(b"GIF89a"));
        let jpg = image(&fake.original_url(12, 0).expect("url"), &[]);
        assert_eq!(jpg.header("content-type"), Some("image/jpeg"));
        assert!(jpg.body.starts_with(&[0xFF, 0xD8, 0xFF]));
        assert!(jpg.body.len() > 2000 && jpg.body.len() < 8000);

        // Thumbnails and masters from the API are served too (as JPEG).
        let v = api_json(&fake, &tok, "/v1/illust/detail?illust_id=10")["illust"].clone();
        for p in v["meta_pages"].as_array().expect("pages") {
            for k in ["square_medium", "medium", "large"] {
                let g = image(p["image_urls"][k].as_str().expect("u"), &[]);
                assert_eq!((g.status, g.header("content-type")), (200, Some("image/jpeg")));
            }
        }
        let master = url.replace("/img-original/", "/img-master/").replace("_p1.png", "_p1_master1200.jpg");
        assert_eq!(image(&master, &[]).body, FakePixiv::master_bytes(10, 1));
        assert_eq!(image(&url.replace("_p1.png", "_p1.jpg"), &[]).status, 404, "wrong extension");
        assert_eq!(image(&url.replace("_p1.png", "_p2.png"), &[]).status, 404, "no such page");
        let avatar = v["user"]["profile_image_urls"]["medium"].as_str().expect("avatar").to_string();
        assert_eq!(image(&avatar, &[]).status, 200);

        fake.set_require_referer(false);
        assert_eq!(get(&url, None, &[]).status, 200);
        let log = fake.image_requests();
        assert_eq!(log[0].status, 403);
        assert_eq!(log[0].referer, None);
        assert!(log.iter().any(|r| r.range.as_deref() == Some("bytes=-5") && r.status == 206));
    }

    #[test]
    fn image_faults_apply_once() {
        let fake = FakePixiv::start();
        fake.add_work(Work::new(1, 1));
        fake.add_work(Work::new(2, 1));
        let u1 = fake.original_url(1, 0).expect("url");
        let u2 = fake.original_url(2, 0).expect("url");
        fake.image_fault_next(ImageFault::Status(500));
        assert_eq!(image(&u1, &[]).status, 500);
        assert_eq!(image(&u1, &[]).status, 200);
        fake.image_fault_for("/2_p0", ImageFault::Status(404));
        assert_eq!(image(&u1, &[]).status, 200);
        assert_eq!(image(&u2, &[]).status, 404);
        fake.image_fault_next(ImageFault::IgnoreRange);
        assert_eq!(image(&u1, &[("Range", "bytes=5-")]).status, 200);
        fake.image_fault_next(ImageFault::Truncate(100));
        let r = agent().get(&u1).header("Referer", "https://www.pixiv.net/").call().expect("head");
        assert!(r.into_body().read_to_vec().is_err(), "body cut short");
    }

    #[test]
    fn ugoira_metadata_and_both_zips() {
        let fake = FakePixiv::start();
        let mut w = Work::new(126_473_222, 1).kind(Kind::Ugoira);
        w.create_date = "2025-01-22T22:57:48+09:00".into();
        fake.add_work(w);
        fake.add_work(Work::new(5, 1));
        let tok = fake.issue_access_token();
        let v = api_json(&fake, &tok, "/v1/ugoira/metadata?illust_id=126473222");
        let medium = v["ugoira_metadata"]["zip_urls"]["medium"].as_str().expect("zip").to_string();
        assert_eq!(medium, fake.url("/img-zip-ugoira/img/2025/01/22/22/57/49/126473222_ugoira600x600.zip"));
        assert_eq!(v["ugoira_metadata"]["zip_urls"].as_object().map(|o| o.len()), Some(1));
        let frames: Vec<(String, u32)> = v["ugoira_metadata"]["frames"]
            .as_array()
            .expect("frames")
            .iter()
            .map(|f| {
                (f["file"].as_str().expect("file").to_string(), f["delay"].as_u64().expect("delay") as u32)
            })
            .collect();
        assert_eq!(frames, FakePixiv::ugoira_frames(126_473_222));
        assert_eq!(frames[0].0, "000000.jpg");
        assert_eq!(frames.len(), 6);
        assert!(frames.iter().any(|f| f.1 != frames[0].1), "delays vary");
        assert_eq!(api(&fake, &tok, "/v1/ugoira/metadata?illust_id=5").status, 404);
        assert_eq!(api(&fake, &tok, "/v1/ugoira/metadata?illust_id=6").status, 404);

        let small = image(&medium, &[]);
        let big = image(&medium.replace("600x600", "1920x1080"), &[]);
        assert_eq!((small.status, big.status), (200, 200));
        assert_eq!(big.header("content-type"), Some("application/zip"));
        assert_eq!(big.body, FakePixiv::ugoira_zip(126_473_222));
        assert_eq!(small.body, FakePixiv::ugoira_zip_small(126_473_222));
        assert_ne!(small.body, big.body);
        for zip in [&small.body, &big.body] {
            let entries = read_zip(zip);
            let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, frames.iter().map(|f| f.0.as_str()).collect::<Vec<_>>());
            for (_, data) in &entries {
                check_jpeg(data);
            }
        }
        let f0 = image(&fake.original_url(126_473_222, 0).expect("url"), &[]);
        assert_eq!(f0.body, read_zip(&big.body)[0].1, "_ugoira0.jpg is frame 0 of the big zip");
    }

    /// Minimal zip reader: central directory → (name, data), checking CRCs.
    fn read_zip(z: &[u8]) -> Vec<(String, Vec<u8>)> {
        let u16at = |p: usize| u16::from_le_bytes([z[p], z[p + 1]]) as usize;
        let u32at = |p: usize| u32::from_le_bytes([z[p], z[p + 1], z[p + 2], z[p + 3]]) as usize;
        let eocd = z.len() - 22;
        assert_eq!(u32at(eocd), 0x0605_4b50);
        let count = u16at(eocd + 10);
        let mut p = u32at(eocd + 16);
        let mut out = Vec::new();
        for _ in 0..count {
            assert_eq!(u32at(p), 0x0201_4b50);
            assert_eq!(u16at(p + 10), 0, "stored");
            let crc = u32at(p + 16) as u32;
            let size = u32at(p + 20);
            let nlen = u16at(p + 28);
            let local = u32at(p + 42);
            let name = String::from_utf8(z[p + 46..p + 46 + nlen].to_vec()).expect("name");
            assert_eq!(u32at(local), 0x0403_4b50);
            let start = local + 30 + u16at(local + 26) + u16at(local + 28);
            let data = z[start..start + size].to_vec();
            assert_eq!(crc32(&data), crc);
            out.push((name, data));
            p += 46 + nlen + u16at(p + 30) + u16at(p + 32);
        }
        out
    }

    /// Walks the JPEG segments: SOI, APPn/COM/DQT/SOF0/DHT, SOS, data, EOI.
    fn check_jpeg(d: &[u8]) {
        assert_eq!(&d[..2], &[0xFF, 0xD8]);
        assert_eq!(&d[d.len() - 2..], &[0xFF, 0xD9]);
        let mut p = 2;
        let mut seen = Vec::new();
        loop {
            assert_eq!(d[p], 0xFF);
            let m = d[p + 1];
            let len = u16::from_be_bytes([d[p + 2], d[p + 3]]) as usize;
            seen.push(m);
            p += 2 + len;
            if m == 0xDA {
                break;
            }
        }
        for m in [0xDB, 0xC0, 0xC4, 0xDA] {
            assert!(seen.contains(&m), "marker {m:02X}");
        }
        // Entropy data: every 0xFF is stuffed.
        let data = &d[p..d.len() - 2];
        for (i, &b) in data.iter().enumerate() {
            if b == 0xFF {
                assert_eq!(data.get(i + 1), Some(&0x00));
            }
        }
    }

    #[test]
    fn bytes_are_deterministic_real_formats() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            sha256(b"abc").iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(FakePixiv::image_bytes(1, 0, "jpg"), FakePixiv::image_bytes(1, 0, "jpg"));
        assert_ne!(FakePixiv::image_bytes(1, 0, "jpg"), FakePixiv::image_bytes(1, 1, "jpg"));
        check_jpeg(&FakePixiv::image_bytes(7, 3, "jpg"));
        check_jpeg(&FakePixiv::master_bytes(7, 3));
        check_jpeg(&FakePixiv::novel_image_bytes(7));
        let png = FakePixiv::image_bytes(7, 0, "png");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let mut p = 8;
        let mut kinds = Vec::new();
        while p < png.len() {
            let len = u32::from_be_bytes([png[p], png[p + 1], png[p + 2], png[p + 3]]) as usize;
            let chunk = &png[p + 4..p + 8 + len];
            let crc = u32::from_be_bytes([
                png[p + 8 + len],
                png[p + 9 + len],
                png[p + 10 + len],
                png[p + 11 + len],
            ]);
            assert_eq!(crc32(chunk), crc);
            kinds.push(String::from_utf8_lossy(&chunk[..4]).into_owned());
            p += 12 + len;
        }
        assert_eq!(kinds, ["IHDR", "tEXt", "IDAT", "IEND"]);
        let gif = FakePixiv::image_bytes(7, 0, "gif");
        assert!(gif.starts_with(b"GIF89a") && gif.ends_with(&[0x3B]));
        for ext in ["jpg", "png", "gif"] {
            let n = FakePixiv::image_bytes(99, 0, ext).len();
            assert!((2000..8000).contains(&n), "{ext}: {n}");
        }
    }

    // --- novels -----------------------------------------------------------------------------

    /// `re.search(r"novel:\s({.+}),\s+isOwnWork", html)` (pixivpy), by hand:
    /// `.` does not match a newline and `.+` is greedy.
    fn pixivpy_extract(html: &str) -> Option<String> {
        let mut from = 0;
        while let Some(i) = html[from..].find("novel:") {
            let start = from + i + "novel:".len();
            let rest = &html[start..];
            let mut chars = rest.chars();
            if chars.next().is_some_and(char::is_whitespace) && chars.next() == Some('{') {
                let ws = rest.chars().next().map_or(1, char::len_utf8);
                let body_start = start + ws;
                let line_end = html[body_start..].find('\n').map_or(html.len(), |e| body_start + e);
                let line = &html[body_start..line_end];
                // Rightmost "}," in the line followed by \s+isOwnWork.
                let mut cand = line.len();
                while let Some(j) = line[..cand].rfind("},") {
                    let after = &html[body_start + j + 2..];
                    let trimmed = after.trim_start();
                    if trimmed.len() < after.len() && trimmed.starts_with("isOwnWork") {
                        return Some(line[..=j].to_string());
                    }
                    cand = j;
                }
            }
            from = start;
        }
        None
    }

    #[test]
    fn novels_and_the_webview_contract() {
        let fake = FakePixiv::start();
        fake.add_user(50, "writer", "writer_acc");
        let text =
            "line1\nline2 \"quoted\" </script>\n[uploadedimage:15324760]\n[newpage]\n[[rb:漢字 > かな]]";
        fake.add_novel(19_713_880, 50, "Title", text, Some(900), &[(15_324_760, 42)]);
        fake.add_novel(19_713_881, 50, "Plain", "no images", None, &[]);
        for id in 0..35u64 {
            fake.add_novel(20_000_000 + id, 51, "Many", "x", Some(901), &[]);
        }
        fake.set_novel_series_title(900, "Saga");
        let tok = fake.issue_access_token();

        let n = api_json(&fake, &tok, "/v2/novel/detail?novel_id=19713880")["novel"].clone();
        assert_eq!(n["series"], json!({"id": 900, "title": "Saga"}));
        assert_eq!((n["page_count"].as_u64(), n["user"]["id"].as_u64()), (Some(2), Some(50)));
        assert_eq!(n["text_length"], text.chars().count());
        let plain = api_json(&fake, &tok, "/v2/novel/detail?novel_id=19713881")["novel"].clone();
        assert_eq!(plain["series"], json!({}), "{{}} rather than null");
        let cover = plain["image_urls"]["large"].as_str().expect("cover").to_string();
        assert_eq!(image(&cover, &[]).status, 200);
        assert_eq!(api(&fake, &tok, "/v2/novel/detail?novel_id=1").status, 404);

        let g = api(&fake, &tok, "/webview/v2/novel?id=19713880&viewer_version=20221031_ai");
        assert_eq!(g.status, 200);
        assert!(g.header("content-type").unwrap_or("").starts_with("text/html"));
        let html = g.text();
        let js = pixivpy_extract(&html).expect("pixivpy regex matches");
        // gallery-dl: text.extr(html, "novel: ", ",\n")
        let start = html.find("novel: ").expect("novel: ") + "novel: ".len();
        let gdl = &html[start..start + html[start..].find(",\n").expect(",\\n")];
        assert_eq!(js, gdl);
        let w: Value = serde_json::from_str(&js).expect("JSON");
        assert_eq!((w["id"].as_str(), w["userId"].as_str()), (Some("19713880"), Some("50")));
        assert_eq!(w["text"], text);
        assert_eq!(w["seriesId"], "900");
        assert_eq!(w["illusts"], json!([]));
        let img = &w["images"]["15324760"];
        assert_eq!(img["novelImageId"], "15324760");
        let orig = img["urls"]["original"].as_str().expect("original");
        assert!(orig.starts_with(&fake.url("/novel-cover-original/img/")));
        assert_eq!(image(orig, &[]).body, FakePixiv::novel_image_bytes(42));
        for k in ["240mw", "480mw", "1200x1200", "128x128"] {
            assert_eq!(image(img["urls"][k].as_str().expect("u"), &[]).status, 200);
        }
        let html2 = api(&fake, &tok, "/webview/v2/novel?id=19713881").text();
        let w2: Value = serde_json::from_str(&pixivpy_extract(&html2).expect("match")).expect("JSON");
        assert_eq!(w2["images"], json!([]), "PHP empty array");
        assert_eq!(w2["seriesId"], Value::Null);
        assert_eq!(api(&fake, &tok, "/webview/v2/novel?id=1").status, 404);

        let (novels, urls) = walk(&fake, &tok, "/v1/user/novels?user_id=51&filter=for_ios", "novels");
        assert_eq!(novels.len(), 35);
        assert_eq!(novels[0]["id"], 20_000_034u64);
        assert_eq!(param(&urls[0], "offset").as_deref(), Some("30"));
        let empty = api_json(&fake, &tok, "/v1/user/novels?user_id=424242");
        assert_eq!((empty["user"]["id"].as_u64(), empty["novels"].clone()), (Some(0), json!([])));
        for path in ["/v2/novel/series?series_id=901", "/v1/novel/series?series_id=901"] {
            let (novels, urls) = walk(&fake, &tok, path, "novels");
            assert_eq!(novels.len(), 35);
            assert_eq!(novels[0]["id"], 20_000_000u64, "reading order");
            assert_eq!(param(&urls[0], "last_order").as_deref(), Some("30"));
        }
        let s = api_json(&fake, &tok, "/v2/novel/series?series_id=900");
        assert_eq!(s["novel_series_detail"]["title"], "Saga");
        assert_eq!(s["novel_series_first_novel"]["id"], 19_713_880u64);
        assert_eq!(s["novel_series_latest_novel"]["id"], 19_713_880u64);
    }

    #[test]
    fn concurrent_clients_are_all_logged() {
        let fake = FakePixiv::start();
        for id in 1..=8u64 {
            fake.add_work(Work::new(id, 1));
        }
        let tok = fake.issue_access_token();
        let base = fake.base_url();
        let hs: Vec<_> = (1..=8u64)
            .map(|id| {
                let (b, t) = (base.clone(), tok.clone());
                thread::spawn(move || {
                    let g = get(&format!("{b}/v1/illust/detail?illust_id={id}"), Some(&t), &[]);
                    assert_eq!(g.status, 200);
                    let u = g.json()["illust"]["meta_single_page"]["original_image_url"]
                        .as_str()
                        .expect("u")
                        .to_string();
                    assert_eq!(image(&u, &[]).body, FakePixiv::image_bytes(id, 0, "jpg"));
                })
            })
            .collect();
        for h in hs {
            h.join().expect("thread");
        }
        assert_eq!(fake.api_calls().len(), 8);
        assert_eq!(fake.image_requests().len(), 8);
    }
}
