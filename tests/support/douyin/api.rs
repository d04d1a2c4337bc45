//! The `www.douyin.com` web API: the checks every call passes (faults,
//! the common block in F2's order, the endpoint's fields, the A-Bogus or
//! X-Bogus signature over the exact bytes sent and the User-Agent, the
//! login cookie) and the JSON answers, with the response shapes F2's
//! filters read (docs/douyin.md; F2's `f2/apps/douyin/filter.py`,
//! https://github.com/Johnserf-Seed/f2).
//!
//! Owns the paging rules: time cursors (post, favorite, listcollection)
//! serve the items strictly older than the cursor, `has_more` as an int,
//! with an empty `has_more: 1` page after every k-th page; offset cursors
//! (mix, collects, collects video).

use std::sync::Mutex;
use std::thread;

use serde_json::{Value, json};
use spoolfetch::providers::douyin::sign::{XBogusInputs, decode_x_bogus, now_ms, verify_a_bogus, x_bogus};
use spoolfetch::providers::douyin::{Query, SignatureParam};

use super::cdn::{self, Asset};
use super::state::{Kind, Rejection, SESSION_ID, State};
use crate::support::http::{Response, lock, percent_decode};

/// The API endpoints: name, path under `/aweme/v1/web/`, method, the
/// fields after the common block (F2's order), cookie-bound.
const ENDPOINTS: [(&str, &str, &str, &[&str], bool); 10] = [
    ("detail", "aweme/detail/", "GET", &["aweme_id"], false),
    ("post", "aweme/post/", "GET", &["max_cursor", "count", "sec_user_id"], false),
    ("favorite", "aweme/favorite/", "GET", &["max_cursor", "count", "sec_user_id"], true),
    ("mix", "mix/aweme/", "GET", &["cursor", "count", "mix_id"], false),
    ("listcollection", "aweme/listcollection/", "POST", &["cursor", "count"], true),
    ("collects", "collects/list/", "GET", &["cursor", "count"], true),
    ("collects_video", "collects/video/list/", "GET", &["cursor", "count", "collects_id"], true),
    ("music_collection", "music/listcollection/", "GET", &["cursor", "count"], true),
    ("profile", "user/profile/other/", "GET", &["sec_user_id"], false),
    (
        "feed",
        "tab/feed/",
        "GET",
        &[
            "count",
            "tag_id",
            "share_aweme_id",
            "live_insert_type",
            "refresh_index",
            "video_type_select",
            "aweme_pc_rec_raw_data",
            "globalwid",
            "pull_type",
            "min_window",
            "free_right",
            "ug_source",
            "creative_id",
        ],
        false,
    ),
];

/// The raw `key=value` pairs of a query, undecoded.
pub fn raw_pairs(query: &str) -> Vec<(&str, &str)> {
    query.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, ""))).collect()
}

/// The empty 200 answer (what Douyin answers a bad signature with).
fn empty() -> Response {
    Response::new(200).header("Content-Type", "text/plain; charset=utf-8")
}

/// Checks that `query` (raw) starts with `block` (same keys in order; the
/// same values except those named in `any_value`) and continues with
/// exactly `fields` and a signature. On success, the bytes signed.
pub fn check_query<'q>(
    query: &'q str,
    block: &Query,
    any_value: &[&str],
    fields: &[&str],
    check: bool,
) -> Result<&'q str, Rejection> {
    let pairs = raw_pairs(query);
    let want = block.pairs();
    if check {
        for (i, (k, v)) in want.iter().enumerate() {
            match pairs.get(i) {
                Some((gk, gv)) if gk == k && (any_value.contains(k) || *gv == v.to_string()) => {}
                Some((gk, gv)) => {
                    return Err(Rejection::CommonBlock(format!("#{i}: want {k}={v}, got {gk}={gv}")));
                }
                None => return Err(Rejection::CommonBlock(format!("#{i}: want {k}, got the end"))),
            }
        }
        let got: Vec<&str> = pairs.iter().skip(want.len()).map(|(k, _)| *k).collect();
        let sig = got.last().copied().filter(|k| *k == "a_bogus" || *k == "X-Bogus");
        let body = &got[..got.len() - usize::from(sig.is_some())];
        if body != fields {
            return Err(Rejection::Fields(format!("want {fields:?}, got {body:?}")));
        }
    }
    let at = query.rfind("&a_bogus=").or_else(|| query.rfind("&X-Bogus="));
    match at {
        Some(at) => Ok(&query[..at]),
        None => Err(Rejection::MissingSignature),
    }
}

/// Verifies the signature that ends `query` over `signed` and `ua`.
pub fn check_signature(query: &str, signed: &str, ua: &str, s: &State) -> Result<(), Rejection> {
    let tail = &query[signed.len()..];
    let now = s.clock_ms.unwrap_or_else(now_ms);
    let skew = s.max_skew.as_millis() as u64;
    let kind = if tail.starts_with("&a_bogus=") { SignatureParam::ABogus } else { SignatureParam::XBogus };
    if s.signature_kind.is_some_and(|k| k != kind) {
        return Err(Rejection::BadSignature(format!("{} where the fake wants the other", kind.name())));
    }
    if let Some(v) = tail.strip_prefix("&a_bogus=") {
        let v = percent_decode(v);
        return match verify_a_bogus(&v, signed, "", ua, now) {
            Some(c) if c.start_ms.abs_diff(now) <= skew => Ok(()),
            Some(c) => Err(Rejection::BadSignature(format!("a_bogus time {} is off", c.start_ms))),
            None => Err(Rejection::BadSignature("a_bogus does not verify (query, method \"\" or UA)".into())),
        };
    }
    if let Some(v) = tail.strip_prefix("&X-Bogus=") {
        let v = percent_decode(v);
        let f =
            decode_x_bogus(&v).ok_or_else(|| Rejection::BadSignature("X-Bogus does not decode".into()))?;
        let again = x_bogus(signed, ua, XBogusInputs { unix_seconds: f.unix_seconds, canvas: f.canvas });
        if again.ok().as_deref() != Some(v.as_str()) {
            return Err(Rejection::BadSignature("X-Bogus does not verify (query or UA)".into()));
        }
        if (u64::from(f.unix_seconds) * 1000).abs_diff(now) > skew {
            return Err(Rejection::BadSignature(format!("X-Bogus time {} is off", f.unix_seconds)));
        }
        return Ok(());
    }
    Err(Rejection::MissingSignature)
}

/// The fault knobs shared by every signed endpoint; `Some` answers now.
/// Counts the call first.
pub fn faults(s: &mut State) -> Option<Response> {
    s.api_calls += 1;
    if s.gateway_403 > 0 {
        s.gateway_403 -= 1;
        return Some(Response::text(403, "Forbidden: blocked by the gateway\n"));
    }
    if s.rate_limit_every > 0 && s.api_calls.is_multiple_of(s.rate_limit_every) {
        return Some(Response::text(429, "Too Many Requests\n"));
    }
    if s.empty_storm > 0 {
        s.empty_storm -= 1;
        return Some(empty());
    }
    if s.status_storm.0 > 0 {
        s.status_storm.0 -= 1;
        let body = json!({"status_code": s.status_storm.1, "status_msg": "fake storm"});
        return Some(Response::json(200, &body.to_string()));
    }
    None
}

/// Records a rejection and answers the empty body.
pub fn reject(s: &mut State, endpoint: &str, why: Rejection) -> Response {
    if matches!(why, Rejection::MissingSignature | Rejection::BadSignature(_)) {
        s.bad_signatures += 1;
    }
    s.rejections.push((endpoint.to_string(), why));
    empty()
}

/// Whether the cookie carries the accepted session.
fn logged_in(cookie: Option<&str>) -> bool {
    cookie.is_some_and(|c| {
        c.split(';')
            .any(|p| p.trim().split_once('=').is_some_and(|(k, v)| k == "sessionid" && v == SESSION_ID))
    })
}

/// Answers one `/aweme/v1/web/…` request.
pub fn handle(state: &Mutex<State>, req: &crate::support::http::Request, path: &str) -> Response {
    let rest = path.strip_prefix("/aweme/v1/web/").unwrap_or("");
    let ep = ENDPOINTS.iter().find(|e| e.1 == rest);
    let name = ep.map_or("unknown", |e| e.0);
    let latency = {
        let mut s = lock(state);
        s.count(name, super::logged(req, "web", path));
        s.api_latency
    };
    if !latency.is_zero() {
        thread::sleep(latency);
    }
    let mut s = lock(state);
    let Some(&(name, _, method, fields, cookie_bound)) = ep else {
        return Response::json(404, r#"{"status_code":404,"status_msg":"not found"}"#);
    };
    if let Some(r) = faults(&mut s) {
        return r;
    }
    if req.method != method {
        return Response::text(405, "method not allowed\n");
    }
    let query = req.path.split_once('?').map_or("", |(_, q)| q);
    let block = Query::common(&s.profile, "");
    let signed = match check_query(query, &block, &["msToken"], fields, s.check_query) {
        Ok(q) => q,
        Err(Rejection::MissingSignature) if !s.check_signatures => query,
        Err(why) => return reject(&mut s, name, why),
    };
    if s.check_signatures {
        let ua = req.header("user-agent").unwrap_or("");
        if let Err(why) = check_signature(query, signed, ua, &s) {
            return reject(&mut s, name, why);
        }
    }
    let params: Vec<(String, String)> =
        raw_pairs(signed).into_iter().map(|(k, v)| (k.to_string(), percent_decode(v))).collect();
    let param = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let int = |k: &str| param(k).parse::<i64>().unwrap_or(0);
    if name == "listcollection" && s.check_query {
        // F2 posts the whole parameter dict as JSON too.
        let body: Option<Value> = serde_json::from_slice(&req.body).ok();
        let ok = body.as_ref().is_some_and(|b| {
            b.get("cursor").and_then(Value::as_i64) == Some(int("cursor"))
                && b.get("count").and_then(Value::as_i64) == Some(int("count"))
        });
        if !ok {
            return reject(
                &mut s,
                name,
                Rejection::Body(format!("want the fields as JSON, got {:?}", req.body_text())),
            );
        }
    }
    if cookie_bound && (s.cookie_expired || !logged_in(req.header("cookie"))) {
        return Response::json(200, &s.cookie_failure);
    }
    let count = int("count").clamp(1, 100) as usize;
    let body = match name {
        "detail" => detail(&s, &param("aweme_id")),
        "post" | "favorite" => {
            let list: Vec<(usize, i64)> = match s.user(&param("sec_user_id")) {
                Some(u) if name == "post" => {
                    s.users[u].works.iter().map(|&w| (w, s.works[w].create_time * 1000)).collect()
                }
                // The login user's likes are what every public like list shows.
                Some(u) if !s.users[u].private_likes => s.likes.clone(),
                _ => Vec::new(),
            };
            time_page(&s, &list, int("max_cursor"), count, "max_cursor")
        }
        "listcollection" => time_page(&s, &s.collection.clone(), int("cursor"), count, "cursor"),
        "mix" => match s.mixes.get(&param("mix_id")) {
            Some((_, ws)) => offset_page(&s, ws, int("cursor"), count),
            None => json!({"status_code": 0, "aweme_list": null, "has_more": 0, "cursor": 0}),
        },
        "collects" => {
            let all: Vec<Value> = s
                .collects
                .iter()
                .map(|(id, n, ws)| json!({"collects_id": id.parse::<u64>().unwrap_or(0), "collects_id_str": id, "collects_name": n, "total_number": ws.len()}))
                .collect();
            let from = (int("cursor").max(0) as usize).min(all.len());
            let to = (from + count).min(all.len());
            json!({"status_code": 0, "collects_list": all[from..to], "has_more": i32::from(to < all.len()), "cursor": to, "total_number": all.len()})
        }
        "collects_video" => match s.collects.iter().find(|c| c.0 == param("collects_id")) {
            Some((_, _, ws)) => offset_page(&s, &ws.clone(), int("cursor"), count),
            None => json!({"status_code": 0, "aweme_list": null, "has_more": 0, "cursor": 0}),
        },
        "music_collection" => {
            // The login user's saved music: that of user 0's first works.
            let all: Vec<Value> = s.users[0]
                .works
                .iter()
                .take(3)
                .map(|&w| {
                    let id = 6_900_000_000_000_000_000u64 + w as u64;
                    json!({"id": id, "id_str": id.to_string(), "title": format!("音乐 {w}"),
                           "author": s.users[0].nickname, "duration": 15, "lyric_url": "",
                           "play_url": {"url_list": [cdn::url(&s, "v1", &s.works[w].id, Asset::Music, false)]}})
                })
                .collect();
            let from = (int("cursor").max(0) as usize).min(all.len());
            let to = (from + count).min(all.len());
            json!({"status_code": 0, "mc_list": all[from..to], "has_more": i32::from(to < all.len()), "cursor": to})
        }
        "profile" => profile(&s, &param("sec_user_id")),
        _ => {
            // The home feed: `count` works starting at refresh_index, for ever.
            // (Wrapping: the index is the client's, and may be anything.)
            let n = s.works.len();
            let from = (int("refresh_index").max(0) as usize).wrapping_mul(count);
            let list: Vec<Value> =
                (0..count).filter(|_| n > 0).map(|i| aweme(&s, from.wrapping_add(i) % n.max(1))).collect();
            json!({"status_code": 0, "aweme_list": list, "has_more": 1})
        }
    };
    Response::json(200, &body.to_string())
}

/// A page of a time-cursored list (`(work, t)` newest first): the items
/// older than `cursor` (0: from the newest).
fn time_page(s: &State, list: &[(usize, i64)], cursor: i64, count: usize, key: &str) -> Value {
    let from = list.iter().position(|&(_, t)| cursor == 0 || t < cursor).unwrap_or(list.len());
    // After every k-th page, a page that is empty yet says "more": the
    // fake answers `cursor - 1`, which only it can tell from a real one.
    let served_pages = from / count.max(1);
    if s.empty_page_every > 0
        && from > 0
        && from < list.len()
        && cursor % 1000 == 0
        && served_pages.is_multiple_of(s.empty_page_every)
    {
        return json!({"status_code": 0, "aweme_list": [], "has_more": 1, key: cursor - 1, "min_cursor": cursor});
    }
    let page = &list[from..(from + count).min(list.len())];
    let items: Vec<Value> = page.iter().map(|&(w, _)| aweme(s, w)).collect();
    let next = page.last().map_or(cursor, |&(_, t)| t);
    let more = from + page.len() < list.len();
    json!({"status_code": 0, "aweme_list": items, "has_more": i32::from(more), key: next,
           "min_cursor": page.first().map_or(cursor, |&(_, t)| t)})
}

/// A page of an offset-cursored list.
fn offset_page(s: &State, list: &[usize], cursor: i64, count: usize) -> Value {
    let from = (cursor.max(0) as usize).min(list.len());
    let to = (from + count).min(list.len());
    let items: Vec<Value> = list[from..to].iter().map(|&w| aweme(s, w)).collect();
    json!({"status_code": 0, "aweme_list": items, "has_more": i32::from(to < list.len()), "cursor": to})
}

fn detail(s: &State, aweme_id: &str) -> Value {
    match s.by_id.get(aweme_id) {
        Some(&w) if !s.works[w].deleted => json!({"status_code": 0, "aweme_detail": aweme(s, w)}),
        Some(_) => json!({"status_code": 0, "aweme_detail": null,
                          "filter_detail": {"aweme_id": aweme_id, "filter_reason": "status_deleted", "detail_msg": "作品已删除"}}),
        None => json!({"status_code": 0, "aweme_detail": null,
                       "filter_detail": {"aweme_id": aweme_id, "filter_reason": "not_found"}}),
    }
}

fn profile(s: &State, sec_uid: &str) -> Value {
    let Some(u) = s.user(sec_uid) else {
        return json!({"status_code": 0, "status_msg": "", "user": null});
    };
    let user = &s.users[u];
    json!({"status_code": 0, "user": {
        "uid": user.uid, "sec_uid": user.sec_uid, "nickname": user.nickname,
        "short_id": format!("{}", 9_000_000 + u), "unique_id": format!("fake_{u}"),
        "signature": "签名 fake\nline 2", "aweme_count": user.works.len(),
        "favoriting_count": if user.private_likes { 0 } else { s.likes.len() },
        "follower_count": 1000 + u, "following_count": 10, "total_favorited": 12345,
        "avatar_larger": {"url_list": [cdn::url(s, "v1", &user.uid, Asset::Avatar, false)]},
        "ip_location": "IP属地：北京", "secret": 0
    }})
}

/// `video.bit_rate[0].play_addr.url_list` of work `w`: two mirrors, the
/// first issued expired when `expire_primary` is on.
pub fn video_urls(s: &State, w: usize) -> Vec<String> {
    let id = &s.works[w].id;
    vec![cdn::url(s, "v1", id, Asset::Video, s.expire_primary), cdn::url(s, "v2", id, Asset::Video, false)]
}

/// The aweme object (the same in `aweme_detail` and `aweme_list[]`).
pub fn aweme(s: &State, w: usize) -> Value {
    let work = &s.works[w];
    let user = &s.users[work.author];
    let id = &work.id;
    let cover = cdn::url(s, "v1", id, Asset::Cover, false);
    let animated = work.animated_cover.then(|| cdn::url(s, "v1", id, Asset::AnimatedCover, false));
    let (video, images) = match work.kind {
        Kind::Video => {
            let playwm = format!("{}/web/aweme/v1/playwm/?video_id=v0200fg{id}&ratio=720p&line=0", s.base);
            let size = cdn::asset_len(id, Asset::Video);
            (
                json!({
                    // The decoy: watermarked, what a naive client saves.
                    "play_addr": {"uri": format!("v0200fg{id}"), "url_list": [playwm]},
                    "download_addr": {"url_list": [playwm]},
                    "bit_rate": [
                        {"gear_name": "normal_1080_0", "bit_rate": 2_000_000, "quality_type": 1,
                         "play_addr": {"data_size": size, "url_list": video_urls(s, w)}},
                        {"gear_name": "normal_720_0", "bit_rate": 800_000, "quality_type": 10,
                         "play_addr": {"url_list": [playwm]}}
                    ],
                    "origin_cover": {"url_list": [cover]},
                    "cover": {"url_list": [cover]},
                    "animated_cover": animated.as_ref().map(|a| json!({"url_list": [a]})),
                    "duration": 15_000, "width": 1080, "height": 1920
                }),
                Value::Null,
            )
        }
        Kind::Images => {
            let imgs: Vec<Value> = (0..work.images)
                .map(|i| {
                    let mut img = json!({"width": 1080, "height": 1440, "url_list": [
                        cdn::url(s, "v1", id, Asset::Image(i), false),
                        cdn::url(s, "v2", id, Asset::Image(i), false)]});
                    if work.live_clips.contains(&i) {
                        img["video"] = json!({"play_addr": {"url_list": [cdn::url(s, "v1", id, Asset::LiveClip(i), false)]}});
                    }
                    img
                })
                .collect();
            (
                json!({"play_addr": {"url_list": []}, "bit_rate": [], "origin_cover": {"url_list": [cover]},
                       "cover": {"url_list": [cover]}, "duration": 0}),
                Value::Array(imgs),
            )
        }
    };
    let mix = work.mix.as_ref().map(|m| {
        let name = s.mixes.get(m).map_or("", |(n, _)| n.as_str());
        json!({"mix_id": m, "mix_name": name})
    });
    json!({
        "aweme_id": id, "aweme_type": if work.kind == Kind::Images { 68 } else { 0 },
        "create_time": work.create_time, "desc": work.desc,
        "author": {"uid": user.uid, "sec_uid": user.sec_uid, "nickname": user.nickname,
                   "short_id": format!("{}", 9_000_000 + work.author), "unique_id": format!("fake_{}", work.author),
                   "avatar_thumb": {"url_list": [cdn::url(s, "v1", &user.uid, Asset::Avatar, false)]}},
        "status": {"private_status": 0, "is_prohibited": work.prohibited, "is_delete": work.deleted, "part_see": 0},
        "music": {"id": 6_900_000_000_000_000_000u64 + w as u64, "mid": format!("{}", 6_900_000_000_000_000_000u64 + w as u64),
                  "title": format!("@{}创作的原声", user.nickname), "author": user.nickname,
                  "status": i32::from(work.music_ok), "duration": 15,
                  "play_url": {"url_list": [cdn::url(s, "v1", id, Asset::Music, false)]}},
        "video": video, "images": images, "mix_info": mix,
        "statistics": {"digg_count": 10 + w, "comment_count": 2, "share_count": 1, "collect_count": 3, "admire_count": 0},
        "text_extra": [{"hashtag_id": "1", "hashtag_name": "fake"}]
    })
}
