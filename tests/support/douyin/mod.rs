//! A stateful fake of Douyin's web API, share links, CDN, live streams and
//! token endpoints, for the Douyin provider's tests and benchmarks
//! (protocol: `docs/douyin.md`; the client modelled is F2 0.0.1.7,
//! https://github.com/Johnserf-Seed/f2). Everything is on ONE loopback
//! port.
//!
//! Routing. A request whose `Host` is one of Douyin's hosts is routed by
//! host, with the real paths: `www.douyin.com` (web API and pages),
//! `v.douyin.com` (short links), `www.iesdouyin.com` (share pages),
//! `live.douyin.com`, `webcast.amemv.com`, `mssdk.bytedance.com`,
//! `ttwid.bytedance.com`, `mcs.zijieapi.com`. Any other `Host`
//! (`127.0.0.1:PORT`) is routed by the first path segment, which stands
//! for the host; these are the base URLs a provider is configured with:
//!
//! | base | value | serves |
//! |---|---|---|
//! | `web_url` | `{base}/web` | `/aweme/v1/web/…` API, `/video/<id>`, `/user/<sec_uid>`, `/collection/<mix_id>` pages, the decoy `/aweme/v1/playwm/` |
//! | `short_url` | `{base}/short` | `/<code>` short links |
//! | `ies_url` | `{base}/ies` | `/share/video/<id>/`, `/share/note/<id>/`, `/share/user/<sec_uid>` pages |
//! | `live_url` | `{base}/live` | `/webcast/room/web/enter/`, `/<web_rid>` pages |
//! | `webcast_url` | `{base}/webcast` | `/webcast/room/reflow/info/`, `/reflow/<room_id>` pages |
//! | `ms_token_url` | `{base}/mssdk/web/report` | msToken (POST; `mssdk_url` is `{base}/mssdk`) |
//! | `ttwid_url` | `{base}/ttwid/ttwid/union/register/` | ttwid (POST) |
//! | `webid_url` | `{base}/mcs/webid` | webid (POST; F2 0.0.1.7's models do not send it) |
//! | `sso_url` | `{base}/sso` | the QR-code login (`sso.rs`); its redirect lands on `{base}/web/passport/sso/…` |
//! | `cdn_url` | `{base}/cdn` | media, signed and expiring (`cdn.rs`) |
//! | `stream_url` | `{base}/stream` | live HLS and FLV (`live.rs`) |
//!
//! Every URL the fake hands out (media, streams, redirect targets) is on
//! `{base}` with a prefix, whatever `Host` the request had: it is the only
//! thing a loopback client can follow. (So `/cdn` and `/stream` are only
//! served under a non-Douyin `Host`.)
//!
//! Files: `state.rs` (fixture, knobs, counters), `api.rs` (the checks
//! every API call passes and the JSON answers), `cdn.rs` (media, Range,
//! faults, [`asset_bytes`]), `live.rs` (rooms, HLS, FLV), `share.rs`
//! (short links, pages, tokens), `sso.rs` (the QR-code login). This
//! file: [`FakeDouyin`] and routing.
//!
//! Endpoint names (for [`FakeDouyin::requests`]): `detail`, `post`,
//! `favorite`, `mix`, `listcollection`, `collects`, `collects_video`,
//! `music_collection`, `profile`, `feed`, `live_enter`, `reflow_info`,
//! `ms_token`, `ttwid`, `webid`, `sso_qrcode`, `sso_check`, `sso_callback`,
//! `short`, `page`, `cdn`, `playwm`, `hls`, `segment`, `flv`, `unknown`.
//!
//! The fixture (`state.rs`): user `i` is `MS4wLjABAAAAfake-user-000i`
//! with a CJK nickname; work `k` of user `u` has id `73…` (19 digits,
//! `7300000000000000000 + u·10^6 + k`), `create_time` 1700000000 −
//! u·10^7 − k·3600; `k % 5 == 3` is an image post (3 images; odd `k` gives
//! image 1 a live-photo clip), `k % 7 == 5` prohibited, `k % 9 == 7`
//! deleted, `k % 4 == 2` has music with status 0; descriptions carry `/`,
//! `\`, `:`, `*`, `?`, quotes, `<>`, `|`, a newline, `..`, CJK and an
//! emoji. User 0's first 12 videos are the mix; the login user's likes
//! are user 1's works and their collection user 0's; user 1's like list is
//! private; two collects folders; two live rooms (web_rid `100000001`
//! live, `100000002` ended).
//!
//! Choices where the sources are silent (documented once, here):
//! - API checks run in this order: latency, gateway 403, 429, storms, the
//!   query (common block values and order, then the endpoint's fields),
//!   the signature, the POST body, the login cookie; a failed query,
//!   signature or body check answers 200 with an empty body;
//! - A-Bogus is verified with method `""` (what F2 signs, POST included);
//!   either `a_bogus` or `X-Bogus` is accepted (`signature_kind` narrows
//!   it), times within `max_skew` (10 minutes) of the fake's clock; the
//!   live endpoints are signed and checked too; the signature's value may
//!   be percent-encoded, the rest of the query is compared raw;
//! - every public like list shows the login user's likes (one list is
//!   enough to page); a deleted user's profile answers `status_code` 0
//!   with `user: null` and their lists are empty with `has_more` 0; a mix
//!   that does not exist answers `aweme_list: null`, `has_more` 0; a
//!   deleted work's detail is `aweme_detail: null` with a `filter_detail`
//!   (it still appears in lists, flagged `is_delete`); a live room that
//!   does not exist answers `data.data: []` (`data.room: null` by room id);
//!   an ended room has no `stream_url`;
//! - time cursors (post, favorite, listcollection) serve items strictly
//!   older than the cursor; an empty page with `has_more` 1 answers with
//!   `cursor - 1` so the next call gets the real page; mix, collects,
//!   collects video and music cursors are offsets;
//! - the cookie check looks for `sessionid=`[`SESSION_ID`] among the
//!   cookie's pairs and nothing else; the failure is HTTP 200 with JSON;
//! - short links take two redirects (`share.rs`); the CDN's URL signature
//!   is the fake's own (`cdn.rs`); HLS segment URIs are relative; the FLV
//!   body is delimited by closing the connection;
//! - 429 and the gateway 403 have small text bodies.
#![allow(dead_code)]

pub mod api;
pub mod cdn;
pub mod live;
pub mod share;
pub mod sso;
pub mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use spoolfetch::providers::douyin::{ClientProfile, SignatureParam};

use crate::support::http::{Handler, Request, Response, Server, lock};

#[allow(unused_imports)]
pub use cdn::{Asset, asset_bytes, asset_len};
#[allow(unused_imports)]
pub use live::{flv_bytes, segment_bytes};
#[allow(unused_imports)]
pub use state::{
    DELETED_USER, Fault, Kind, Logged, MISSING_MIX, Options, Rejection, SESSION_ID, State, TokenFault, Work,
};

/// The running fake.
pub struct FakeDouyin {
    server: Server,
    state: Arc<Mutex<State>>,
}

/// The areas (stand-ins for hosts) a loopback path may start with.
const AREAS: [&str; 11] =
    ["web", "short", "ies", "live", "webcast", "mssdk", "ttwid", "mcs", "sso", "cdn", "stream"];

/// The area of a request and its path within it.
fn area_of(req: &Request) -> Option<(&'static str, String)> {
    let host = req.header("host").unwrap_or("");
    let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h).to_ascii_lowercase();
    let path = req.path_only();
    let by_host = match hostname.as_str() {
        "www.douyin.com" | "douyin.com" => Some("web"),
        "v.douyin.com" => Some("short"),
        "www.iesdouyin.com" | "iesdouyin.com" => Some("ies"),
        "live.douyin.com" => Some("live"),
        "webcast.amemv.com" => Some("webcast"),
        "mssdk.bytedance.com" => Some("mssdk"),
        "ttwid.bytedance.com" => Some("ttwid"),
        "mcs.zijieapi.com" => Some("mcs"),
        "sso.douyin.com" => Some("sso"),
        _ => None,
    };
    if let Some(a) = by_host {
        return Some((a, path.to_string()));
    }
    let rest = path.strip_prefix('/')?;
    let (first, tail) = rest.split_once('/').map_or((rest, ""), |(a, b)| (a, b));
    let area = AREAS.iter().find(|a| **a == first)?;
    Some((area, format!("/{tail}")))
}

fn route(state: &Mutex<State>, req: &Request) -> Response {
    let Some((area, path)) = area_of(req) else {
        lock(state).count("unknown", logged(req, "?", req.path_only()));
        return Response::text(404, "no such host or area\n");
    };
    match area {
        "web" if path.starts_with("/aweme/v1/web/") => api::handle(state, req, &path),
        "web" if path.starts_with("/aweme/v1/playwm/") => cdn::playwm(state, req),
        "web" if path.starts_with("/passport/sso/") => sso::callback(state, req, &path),
        "sso" => sso::handle(state, req, &path),
        "web" | "ies" | "short" => share::handle(state, req, area, &path),
        "live" if path.starts_with("/webcast/") => live::enter(state, req, &path),
        "webcast" if path.starts_with("/webcast/") => live::reflow(state, req, &path),
        "live" | "webcast" => share::handle(state, req, area, &path),
        "mssdk" | "ttwid" | "mcs" => share::token(state, req, area, &path),
        "cdn" => cdn::handle(state, req, &path),
        _ => live::stream(state, req, &path),
    }
}

/// The log entry of `req` in `area` (the query raw, no headers).
pub fn logged(req: &Request, area: &str, path: &str) -> Logged {
    Logged {
        method: req.method.clone(),
        area: area.to_string(),
        path: path.to_string(),
        query: req.path.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default(),
    }
}

/// Short-link code of the `i`-th thing of a kind (`w` work, `u` user, `m`
/// mix, `l` live room): the letter and base-36 digits.
pub fn short_code(kind: char, i: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = i + 36 * 36 * 36;
    let mut s = Vec::new();
    while n > 0 {
        s.push(DIGITS[n % 36]);
        n /= 36;
    }
    s.reverse();
    format!("i{kind}{}", String::from_utf8_lossy(&s))
}

impl FakeDouyin {
    /// Starts with default options (3 users × 25 works).
    pub fn start() -> FakeDouyin {
        FakeDouyin::start_with(Options::default())
    }

    /// Starts with `opts`.
    pub fn start_with(opts: Options) -> FakeDouyin {
        let state = Arc::new(Mutex::new(State::new(&opts)));
        let s = Arc::clone(&state);
        let handler: Handler = Arc::new(move |req: &Request| route(&s, req));
        let server = Server::start(handler);
        lock(&state).base = server.base_url();
        FakeDouyin { server, state }
    }

    fn st(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    // ---- base URLs ----

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }
    /// Stands for `https://www.douyin.com`.
    pub fn web_url(&self) -> String {
        format!("{}/web", self.base_url())
    }
    /// Stands for `https://v.douyin.com`.
    pub fn short_url(&self) -> String {
        format!("{}/short", self.base_url())
    }
    /// Stands for `https://www.iesdouyin.com`.
    pub fn ies_url(&self) -> String {
        format!("{}/ies", self.base_url())
    }
    /// Stands for `https://live.douyin.com`.
    pub fn live_url(&self) -> String {
        format!("{}/live", self.base_url())
    }
    /// Stands for `https://webcast.amemv.com`.
    pub fn webcast_url(&self) -> String {
        format!("{}/webcast", self.base_url())
    }
    /// Stands for `https://mssdk.bytedance.com/web/report`.
    pub fn ms_token_url(&self) -> String {
        format!("{}/mssdk/web/report", self.base_url())
    }
    /// Stands for `https://mssdk.bytedance.com` (`douyin.mssdk_url`).
    pub fn mssdk_url(&self) -> String {
        format!("{}/mssdk", self.base_url())
    }
    /// Stands for `https://ttwid.bytedance.com/ttwid/union/register/`.
    pub fn ttwid_url(&self) -> String {
        format!("{}/ttwid/ttwid/union/register/", self.base_url())
    }
    /// Stands for `https://mcs.zijieapi.com/webid`.
    pub fn webid_url(&self) -> String {
        format!("{}/mcs/webid", self.base_url())
    }
    /// Stands for `https://sso.douyin.com` (`douyin.sso_url`).
    pub fn sso_url(&self) -> String {
        format!("{}/sso", self.base_url())
    }
    /// Where media URLs point.
    pub fn cdn_url(&self) -> String {
        format!("{}/cdn", self.base_url())
    }
    /// Where live stream URLs point.
    pub fn stream_url(&self) -> String {
        format!("{}/stream", self.base_url())
    }
    /// The server core (raw request log with headers, connections).
    pub fn server(&self) -> &Server {
        &self.server
    }

    // ---- fixture ----

    /// The `i`-th fixture user's `sec_uid`.
    pub fn sec_uid(&self, i: usize) -> String {
        self.st().users.get(i).map(|u| u.sec_uid.clone()).unwrap_or_default()
    }
    /// Their nickname.
    pub fn nickname(&self, i: usize) -> String {
        self.st().users.get(i).map(|u| u.nickname.clone()).unwrap_or_default()
    }
    /// A user's works, newest first (empty for an unknown user).
    pub fn works(&self, sec_uid: &str) -> Vec<String> {
        let s = self.st();
        s.user(sec_uid)
            .map(|u| s.users[u].works.iter().map(|&w| s.works[w].id.clone()).collect())
            .unwrap_or_default()
    }
    /// One work's fixture.
    pub fn work(&self, aweme_id: &str) -> Option<Work> {
        let s = self.st();
        s.by_id.get(aweme_id).map(|&i| s.works[i].clone())
    }
    /// The mix's id.
    pub fn mix_id(&self) -> String {
        self.st().mixes.keys().next().cloned().unwrap_or_default()
    }
    /// A mix's works in its order.
    pub fn mix_works(&self, mix_id: &str) -> Vec<String> {
        let s = self.st();
        s.mixes
            .get(mix_id)
            .map(|(_, ws)| ws.iter().map(|&w| s.works[w].id.clone()).collect())
            .unwrap_or_default()
    }
    /// The login user's likes, newest first.
    pub fn likes(&self) -> Vec<String> {
        let s = self.st();
        s.likes.iter().map(|(w, _)| s.works[*w].id.clone()).collect()
    }
    /// The login user's collection, newest first.
    pub fn collection(&self) -> Vec<String> {
        let s = self.st();
        s.collection.iter().map(|(w, _)| s.works[*w].id.clone()).collect()
    }
    /// Collects folders: (id, name, works).
    pub fn collects(&self) -> Vec<(String, String, Vec<String>)> {
        let s = self.st();
        s.collects
            .iter()
            .map(|(id, name, ws)| {
                (id.clone(), name.clone(), ws.iter().map(|&w| s.works[w].id.clone()).collect())
            })
            .collect()
    }
    /// The live room: (web_rid, room_id).
    pub fn live_room(&self) -> (String, String) {
        let s = self.st();
        (s.rooms[0].0.clone(), s.rooms[0].1.clone())
    }
    /// The ended room: (web_rid, room_id).
    pub fn ended_room(&self) -> (String, String) {
        let s = self.st();
        (s.rooms[1].0.clone(), s.rooms[1].1.clone())
    }
    /// A cookie the cookie-bound endpoints accept (until
    /// [`FakeDouyin::expire_cookie`]).
    pub fn login_cookie(&self) -> String {
        format!("ttwid=1%7Cfake; msToken=fake; sessionid={SESSION_ID}; sid_guard={SESSION_ID}%7C1700000000")
    }
    /// The short link of a work.
    pub fn short_link_work(&self, aweme_id: &str) -> Option<String> {
        let i = *self.st().by_id.get(aweme_id)?;
        Some(format!("{}/{}/", self.short_url(), short_code('w', i)))
    }
    /// The short link of a user.
    pub fn short_link_user(&self, sec_uid: &str) -> Option<String> {
        let i = self.st().user(sec_uid)?;
        Some(format!("{}/{}/", self.short_url(), short_code('u', i)))
    }
    /// The short link of the mix.
    pub fn short_link_mix(&self) -> String {
        format!("{}/{}/", self.short_url(), short_code('m', 0))
    }
    /// The short link of a live room (by index: 0 live, 1 ended), which
    /// ends on a `reflow/<room_id>` page as app share links do.
    pub fn short_link_live(&self, i: usize) -> String {
        format!("{}/{}/", self.short_url(), short_code('l', i))
    }
    /// A work's `video.bit_rate[0].play_addr.url_list`, as served now.
    pub fn video_urls(&self, aweme_id: &str) -> Vec<String> {
        let s = self.st();
        s.by_id.get(aweme_id).map(|&w| api::video_urls(&s, w)).unwrap_or_default()
    }

    // ---- knobs ----

    /// Verify signatures on API calls (default on).
    pub fn check_signatures(&self, on: bool) {
        self.st().check_signatures = on;
    }
    /// Verify the common block and the fields' order (default on).
    pub fn check_query(&self, on: bool) {
        self.st().check_query = on;
    }
    /// Accept only this signature (`None`, the default: A-Bogus or
    /// X-Bogus); the other is rejected like a bad one.
    pub fn signature_kind(&self, kind: Option<SignatureParam>) {
        self.st().signature_kind = kind;
    }
    /// Allowed skew between a signature's time and the fake's clock.
    pub fn max_skew(&self, d: Duration) {
        self.st().max_skew = d;
    }
    /// The clock (ms since the epoch) signatures are judged by; `None`
    /// (the default) is the wall clock. Replays of recorded requests set
    /// it to the recording time: A-Bogus carries only the low 32 bits of
    /// its times, so a value is only recoverable within about 24 days.
    pub fn signature_clock(&self, ms: Option<u64>) {
        self.st().clock_ms = ms;
    }
    /// The browser the common block must describe (default F2's).
    pub fn client_profile(&self, p: ClientProfile) {
        self.st().profile = p;
    }
    /// The login cookie expires: cookie-bound calls answer the failure.
    pub fn expire_cookie(&self) {
        self.st().cookie_expired = true;
    }
    /// The login cookie works again.
    pub fn renew_cookie(&self) {
        self.st().cookie_expired = false;
    }
    /// The JSON answered (HTTP 200) without a valid login (default
    /// `{"status_code":8,…}`).
    pub fn cookie_failure(&self, json: &str) {
        self.st().cookie_failure = json.to_string();
    }
    /// After every k-th non-empty time-cursor page, an empty page with
    /// `has_more` 1 (default 2; 0: never).
    pub fn empty_page_every(&self, k: usize) {
        self.st().empty_page_every = k;
    }
    /// The next `n` API answers are 200 with an empty body.
    pub fn empty_body_storm(&self, n: usize) {
        self.st().empty_storm = n;
    }
    /// The next `n` API answers are HTTP 200 `{"status_code":code,…}`.
    pub fn status_code_storm(&self, n: usize, code: i64) {
        self.st().status_storm = (n, code);
    }
    /// Every `k`-th API call answers 429 (0: never).
    pub fn rate_limit_every(&self, k: usize) {
        self.st().rate_limit_every = k;
    }
    /// The next `n` API answers are the gateway's 403.
    pub fn gateway_403(&self, n: usize) {
        self.st().gateway_403 = n;
    }
    /// Delay before every API answer.
    pub fn api_latency(&self, d: Duration) {
        self.st().api_latency = d;
    }
    /// Delay before every media and stream answer.
    pub fn media_latency(&self, d: Duration) {
        self.st().media_latency = d;
    }
    /// Issue every work's first video URL already expired (403), from the
    /// next answer on.
    pub fn expire_primary_urls(&self, on: bool) {
        self.st().expire_primary = on;
    }
    /// A fault on every hit of a media URL (or its `/cdn/…` path).
    pub fn cdn_fault(&self, url: &str, fault: Fault) {
        self.st().faults.insert(cdn::fault_key(url), state::FaultRule { fault, left: None });
    }
    /// A fault on the next `n` hits of a media URL.
    pub fn cdn_fault_times(&self, url: &str, fault: Fault, n: usize) {
        self.st().faults.insert(cdn::fault_key(url), state::FaultRule { fault, left: Some(n) });
    }
    /// Removes every media fault.
    pub fn clear_faults(&self) {
        self.st().faults.clear();
    }
    /// Playlist refreshes before a live HLS playlist answers 404 (default 5).
    pub fn hls_refreshes(&self, n: usize) {
        self.st().hls_refreshes = n;
    }
    /// The live streams start again: playlist fetch counts go back to 0
    /// (they count every client's fetches of a room's quality).
    pub fn restart_live(&self) {
        self.st().hls_fetches.clear();
    }
    /// Segments in the playlist window (default 3).
    pub fn hls_window(&self, n: usize) {
        self.st().hls_window = n.max(1);
    }
    /// Bytes of an FLV stream before it ends (default 256 KiB).
    pub fn flv_length(&self, n: usize) {
        self.st().flv_bytes = n;
    }
    /// The msToken endpoint answers without its cookie.
    pub fn ms_token_unavailable(&self, on: bool) {
        self.st().ms_token_unavailable = on;
    }
    /// The msToken endpoint is down or sets a token of the wrong length
    /// (`None`: it works).
    pub fn ms_token_fault(&self, fault: Option<TokenFault>) {
        self.st().ms_token_fault = fault;
    }

    /// The QR-code login's states: script `n` is what the checks of the
    /// `n`-th code answer in turn (`"1"` new, `"2"` scanned, `"3"`
    /// confirmed, `"4"` refused, `"5"` expired; the last one repeats).
    /// Default: one code, new, scanned, confirmed.
    pub fn sso_script(&self, scripts: &[&[&str]]) {
        self.st().sso_script = scripts.iter().map(|s| s.iter().map(|x| x.to_string()).collect()).collect();
    }

    // ---- inspectors ----

    /// Requests to one endpoint (names in the module docs).
    pub fn requests(&self, endpoint: &str) -> usize {
        self.st().per_endpoint.get(endpoint).copied().unwrap_or(0)
    }
    /// Requests per endpoint.
    pub fn request_counts(&self) -> BTreeMap<String, usize> {
        self.st().per_endpoint.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
    /// API calls (the signed endpoints) so far, rejected ones included.
    pub fn api_calls(&self) -> usize {
        self.st().api_calls
    }
    /// Every request: method, area, path, raw query (no headers, so no
    /// cookie).
    pub fn request_log(&self) -> Vec<Logged> {
        self.st().log.clone()
    }
    /// API requests answered with the empty body, and why.
    pub fn rejections(&self) -> Vec<(String, Rejection)> {
        self.st().rejections.clone()
    }
    /// Missing or bad signatures seen.
    pub fn bad_signatures(&self) -> usize {
        self.st().bad_signatures
    }
    /// Media body bytes handed out (CDN and streams, before any cut).
    pub fn media_bytes(&self) -> u64 {
        self.st().media_bytes
    }
    /// Hits of a media or stream URL (or its path).
    pub fn url_hits(&self, url: &str) -> usize {
        self.st().url_hits.get(&cdn::fault_key(url)).copied().unwrap_or(0)
    }
    /// msTokens issued (a wrong-length one included, as set).
    pub fn ms_tokens(&self) -> Vec<String> {
        self.st().ms_tokens.clone()
    }
}
