//! What the fake Douyin remembers: the deterministic fixture (users,
//! works, mixes, collects folders, the login user's likes and collection,
//! live rooms), the fault knobs, and the counters the tests read.
//!
//! Owns the fixture's shape: every id, time and flag is a pure function of
//! the start [`Options`], so two fakes started alike serve the same JSON
//! (URLs aside, which carry the port) and a test can name works by index.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use spoolfetch::providers::douyin::{ClientProfile, SignatureParam};

/// Prefix of every fixture `sec_uid` (the shape real ones have).
pub const SEC_UID_PREFIX: &str = "MS4wLjABAAAA";
/// The `sec_uid` of the user whose account is deleted.
pub const DELETED_USER: &str = "MS4wLjABAAAAdeleted-user";
/// A mix id that does not exist.
pub const MISSING_MIX: &str = "7499999999999999999";
/// The `sessionid` value of the login cookie the fake accepts.
pub const SESSION_ID: &str = "fakesession0123456789abcdef";
/// First create time (seconds) of user 0's newest work.
pub const NEWEST: i64 = 1_700_000_000;
/// Seconds between two works of one user.
pub const WORK_GAP: i64 = 3600;
/// 16-digit cursor of the newest item of the login user's collection.
pub const COLLECTION_TOP: i64 = 1_700_000_000_000_000;

/// Start options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of fixture users (`user(0)`, …). At least 2 are made.
    pub users: usize,
    /// Works per user.
    pub works_per_user: usize,
    /// Delay before every API answer.
    pub api_latency: Duration,
    /// Delay before every CDN and stream answer.
    pub media_latency: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options { users: 3, works_per_user: 25, api_latency: Duration::ZERO, media_latency: Duration::ZERO }
    }
}

/// What kind of work an aweme is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `aweme_type` 0: a video.
    Video,
    /// `aweme_type` 68: an image post (`images`), some with live-photo clips.
    Images,
}

/// One fixture work.
#[derive(Debug, Clone)]
pub struct Work {
    /// `aweme_id` (19 digits).
    pub id: String,
    /// Video or images.
    pub kind: Kind,
    /// `create_time`, seconds.
    pub create_time: i64,
    /// `desc` (with characters a file name cannot carry, on purpose).
    pub desc: String,
    /// Index of the author in [`State::users`].
    pub author: usize,
    /// Image count (image posts).
    pub images: usize,
    /// Indexes of images that carry a live-photo clip.
    pub live_clips: Vec<usize>,
    /// `music.status == 1` (downloadable music).
    pub music_ok: bool,
    /// An animated (webp) cover besides the jpeg one.
    pub animated_cover: bool,
    /// `status.is_prohibited`.
    pub prohibited: bool,
    /// `status.is_delete` (detail answers `aweme_detail: null`).
    pub deleted: bool,
    /// Mix it belongs to.
    pub mix: Option<String>,
}

/// One fixture user.
#[derive(Debug, Clone)]
pub struct User {
    /// `sec_uid`.
    pub sec_uid: String,
    /// `uid`.
    pub uid: String,
    /// `nickname` (non-ASCII, to exercise folder names).
    pub nickname: String,
    /// Their works, newest first (indexes into [`State::works`]).
    pub works: Vec<usize>,
    /// Their like list is private (answers empty, `has_more` 0).
    pub private_likes: bool,
}

/// A fault on one CDN path (`/cdn/…` without the query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 403, as an expired signed URL answers.
    Expired,
    /// 200 with an empty body.
    Empty,
    /// The body is cut after this many bytes and the connection closed.
    ResetAfter(usize),
    /// The body drips at this many bytes per second.
    Drip(u64),
    /// This status with a short text body.
    Status(u16),
}

/// A fault rule: `left` more hits (`None`: every hit).
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// The fault.
    pub fault: Fault,
    /// Hits left.
    pub left: Option<usize>,
}

/// A request as the fake logged it (no headers: the cookie stays out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// Method.
    pub method: String,
    /// The area that answered (`web`, `short`, `ies`, `live`, `webcast`,
    /// `mssdk`, `ttwid`, `cdn`, `stream`).
    pub area: String,
    /// Path within the area (no prefix).
    pub path: String,
    /// The raw query, as sent (empty when none).
    pub query: String,
}

/// Why an API request was answered with the empty body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The common block is missing, reordered or has other values.
    CommonBlock(String),
    /// The endpoint's own fields are not F2's, in F2's order.
    Fields(String),
    /// No `a_bogus` / `X-Bogus` as the last parameter.
    MissingSignature,
    /// The signature does not verify against the query and User-Agent.
    BadSignature(String),
    /// The POST body is not the query's fields as JSON.
    Body(String),
}

/// Everything the fake remembers.
pub struct State {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Users (index 0.. are `user(i)`).
    pub users: Vec<User>,
    /// Works, all users.
    pub works: Vec<Work>,
    /// `aweme_id` → index in `works`.
    pub by_id: HashMap<String, usize>,
    /// Mix id → (name, works in mix order).
    pub mixes: BTreeMap<String, (String, Vec<usize>)>,
    /// The login user's likes: (work, like time ms), newest first.
    pub likes: Vec<(usize, i64)>,
    /// The login user's collection: (work, 16-digit cursor), newest first.
    pub collection: Vec<(usize, i64)>,
    /// Collects folders: (id, name, works).
    pub collects: Vec<(String, String, Vec<usize>)>,
    /// Live rooms: (web_rid, room_id, status, title, owner user index).
    pub rooms: Vec<(String, String, u8, String, usize)>,
    // ---- knobs ----
    /// The browser the common block must describe.
    pub profile: ClientProfile,
    /// Verify signatures (and the UA) on API calls.
    pub check_signatures: bool,
    /// Verify the common block and the fields' order.
    pub check_query: bool,
    /// The one signature accepted (`None`: either).
    pub signature_kind: Option<SignatureParam>,
    /// Allowed clock skew of signatures.
    pub max_skew: Duration,
    /// The clock (ms) signatures are judged by (`None`: the wall clock).
    pub clock_ms: Option<u64>,
    /// The login cookie has expired.
    pub cookie_expired: bool,
    /// The JSON a cookie-bound call answers without a valid login.
    pub cookie_failure: String,
    /// After every k-th non-empty time-cursor page an empty page with
    /// `has_more` 1 (0: never).
    pub empty_page_every: usize,
    /// The next n API answers are 200 with an empty body.
    pub empty_storm: usize,
    /// The next n API answers are `{"status_code":code}`.
    pub status_storm: (usize, i64),
    /// Every k-th API call answers 429 (0: never).
    pub rate_limit_every: usize,
    /// The next n API answers are the gateway's 403.
    pub gateway_403: usize,
    /// API latency.
    pub api_latency: Duration,
    /// Media latency.
    pub media_latency: Duration,
    /// The first video URL of every work (`v1`) is issued already expired.
    pub expire_primary: bool,
    /// Per-path CDN faults.
    pub faults: HashMap<String, FaultRule>,
    /// Refreshes of a live HLS playlist before it answers 404.
    pub hls_refreshes: usize,
    /// Segments in the live playlist window.
    pub hls_window: usize,
    /// Bytes of an FLV stream before it ends.
    pub flv_bytes: usize,
    /// The msToken endpoint answers without a cookie.
    pub ms_token_unavailable: bool,
    /// The msToken endpoint's fault, if any.
    pub ms_token_fault: Option<TokenFault>,
    /// The QR-code login's state scripts, one per code handed out.
    pub sso_script: Vec<Vec<String>>,
    /// Codes handed out: (token, checks answered).
    pub sso_codes: Vec<(String, usize)>,
    // ---- counters ----
    /// API calls (all areas that check signatures) so far.
    pub api_calls: usize,
    /// Requests per endpoint name.
    pub per_endpoint: HashMap<String, usize>,
    /// Every request.
    pub log: Vec<Logged>,
    /// Rejected API requests: (endpoint, why).
    pub rejections: Vec<(String, Rejection)>,
    /// Signature failures among them.
    pub bad_signatures: usize,
    /// Media body bytes handed to the server core.
    pub media_bytes: u64,
    /// Hits per CDN / stream path.
    pub url_hits: HashMap<String, usize>,
    /// Playlist fetches per (room, quality).
    pub hls_fetches: HashMap<String, usize>,
    /// msTokens issued.
    pub ms_tokens: Vec<String>,
    /// Sequence for issued tokens.
    pub seq: u64,
}

fn work_desc(user: usize, k: usize) -> String {
    // Awkward on purpose: path separators, reserved characters, a newline,
    // CJK, an emoji and a hashtag (what real descriptions hold).
    match k % 4 {
        0 => format!("作品 {k} of user {user} #fake #测试"),
        1 => format!("a/b\\c: *what?* \"<{k}>\" | ok"),
        2 => format!("第{k}条\n换行 🎉 .. con"),
        _ => format!("plain work {k}"),
    }
}

impl State {
    /// The fixture for `opts` (no knobs set; `base` filled in at start).
    pub fn new(opts: &Options) -> State {
        let n_users = opts.users.max(2);
        let mut users = Vec::new();
        let mut works = Vec::new();
        for u in 0..n_users {
            let mut mine = Vec::new();
            for k in 0..opts.works_per_user {
                let kind = if k % 5 == 3 { Kind::Images } else { Kind::Video };
                let images = if kind == Kind::Images { 3 } else { 0 };
                works.push(Work {
                    id: format!("{}", 7_300_000_000_000_000_000u64 + (u as u64) * 1_000_000 + k as u64),
                    kind,
                    create_time: NEWEST - (u as i64) * 10_000_000 - (k as i64) * WORK_GAP,
                    desc: work_desc(u, k),
                    author: u,
                    images,
                    live_clips: if kind == Kind::Images && k % 2 == 1 { vec![1] } else { Vec::new() },
                    music_ok: k % 4 != 2,
                    animated_cover: k % 2 == 0,
                    prohibited: k % 7 == 5,
                    deleted: k % 9 == 7,
                    mix: None,
                });
                mine.push(works.len() - 1);
            }
            users.push(User {
                sec_uid: format!("{SEC_UID_PREFIX}fake-user-{u:04}"),
                uid: format!("{}", 100_000_000 + u),
                nickname: format!("测试用户{u} Nick"),
                works: mine,
                private_likes: u == 1,
            });
        }
        let by_id = works.iter().enumerate().map(|(i, w)| (w.id.clone(), i)).collect();
        let mut state = State {
            base: String::new(),
            users,
            works,
            by_id,
            mixes: BTreeMap::new(),
            likes: Vec::new(),
            collection: Vec::new(),
            collects: Vec::new(),
            rooms: Vec::new(),
            profile: ClientProfile::default(),
            check_signatures: true,
            check_query: true,
            signature_kind: None,
            max_skew: Duration::from_secs(600),
            clock_ms: None,
            cookie_expired: false,
            cookie_failure: r#"{"status_code":8,"status_msg":"用户未登录","log_pb":{"impr_id":"fake"}}"#
                .into(),
            empty_page_every: 2,
            empty_storm: 0,
            status_storm: (0, 0),
            rate_limit_every: 0,
            gateway_403: 0,
            api_latency: opts.api_latency,
            media_latency: opts.media_latency,
            expire_primary: false,
            faults: HashMap::new(),
            hls_refreshes: 5,
            hls_window: 3,
            flv_bytes: 256 * 1024,
            ms_token_unavailable: false,
            ms_token_fault: None,
            sso_script: vec![vec!["1".into(), "2".into(), "3".into()]],
            sso_codes: Vec::new(),
            api_calls: 0,
            per_endpoint: HashMap::new(),
            log: Vec::new(),
            rejections: Vec::new(),
            bad_signatures: 0,
            media_bytes: 0,
            url_hits: HashMap::new(),
            hls_fetches: HashMap::new(),
            ms_tokens: Vec::new(),
            seq: 0,
        };
        state.link();
        state
    }

    /// Mixes, likes, collection, collects and rooms, from the works.
    fn link(&mut self) {
        // User 0's first video works (up to 12) form one mix.
        let mix_id = "7400000000000000001".to_string();
        let members: Vec<usize> = self.users[0]
            .works
            .iter()
            .copied()
            .filter(|&w| self.works[w].kind == Kind::Video)
            .take(12)
            .collect();
        for &w in &members {
            self.works[w].mix = Some(mix_id.clone());
        }
        // Mix order is oldest first, as a series is.
        let mut ordered = members;
        ordered.reverse();
        self.mixes.insert(mix_id, ("合集 fake mix".into(), ordered));
        // The login user likes user 1's works, and collected user 0's.
        let others = self.users[1].works.clone();
        self.likes =
            others.iter().enumerate().map(|(j, &w)| (w, 1_710_000_000_000 - j as i64 * 60_000)).collect();
        let own = self.users[0].works.clone();
        self.collection =
            own.iter().enumerate().map(|(j, &w)| (w, COLLECTION_TOP - j as i64 * 1_000_000)).collect();
        let half = own.len() / 2;
        self.collects = vec![
            ("7100000000000000001".into(), "收藏夹 A".into(), own[..half].to_vec()),
            ("7100000000000000002".into(), "folder/B".into(), others.iter().copied().take(5).collect()),
        ];
        self.rooms = vec![
            ("100000001".into(), "7300000000000000901".into(), 2, "直播中 live".into(), 0),
            ("100000002".into(), "7300000000000000902".into(), 4, "ended".into(), 1),
        ];
    }

    /// Counts a request to `endpoint` and logs it.
    pub fn count(&mut self, endpoint: &str, logged: Logged) {
        *self.per_endpoint.entry(endpoint.to_string()).or_default() += 1;
        self.log.push(logged);
    }

    /// The user with this `sec_uid`.
    pub fn user(&self, sec_uid: &str) -> Option<usize> {
        self.users.iter().position(|u| u.sec_uid == sec_uid)
    }

    /// A fresh 128-character msToken (`[A-Za-z0-9_-]`, query-safe).
    pub fn new_ms_token(&mut self) -> String {
        const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        self.seq += 1;
        let mut x = self.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let token: String = (0..128)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(ALPHA[(x % 64) as usize])
            })
            .collect();
        self.ms_tokens.push(token.clone());
        token
    }
}

/// What the msToken endpoint does instead of issuing a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFault {
    /// It is down: HTTP 503.
    Down,
    /// It sets an msToken of 64 characters (the site issues 120 or 128).
    WrongLength,
}
