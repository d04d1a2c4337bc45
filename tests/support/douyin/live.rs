//! Live: `live.douyin.com/webcast/room/web/enter/` (by web_rid, F2's
//! `BaseLiveModel` block), `webcast.amemv.com/webcast/room/reflow/info/`
//! (by app room id, `BaseLiveModel2`), and the streams they point at: a
//! sliding HLS media playlist and an FLV body.
//!
//! Owns the stream behaviour: each fetch of a room's playlist slides the
//! window by one segment (`#EXT-X-MEDIA-SEQUENCE` = fetches so far, target
//! duration 1 s, never `#EXT-X-ENDLIST`) and after `hls_refreshes`
//! fetches the playlist answers 404, which is how F2 sees a stream end.
//! Segment URIs are relative (`<quality>/<seq>.ts`), so a client must
//! resolve them against the playlist URL. The FLV body is `flv_bytes`
//! long and delimited by closing the connection, as a live HTTP-FLV
//! stream ends.

use std::sync::Mutex;
use std::thread;

use serde_json::{Value, json};
use spoolfetch::providers::douyin::Query;

use super::api::{check_query, check_signature, faults, reject};
use super::state::State;
use crate::support::http::{Body, Request, Response, lock};

/// Stream qualities, best first (`hls_pull_url_map` / `flv_pull_url` keys).
pub const QUALITIES: [&str; 4] = ["FULL_HD1", "HD1", "SD1", "SD2"];

fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn seed(room_id: &str, quality: &str) -> u64 {
    room_id
        .bytes()
        .chain(quality.bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// The bytes of HLS segment `seq` (4 KiB of MPEG-TS-looking packets: each
/// 188-byte packet starts with the sync byte 0x47).
pub fn segment_bytes(room_id: &str, quality: &str, seq: u64) -> Vec<u8> {
    let mut x = seed(room_id, quality) ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(188 * 22);
    while out.len() < 188 * 22 {
        // Each packet: the sync byte, then 187 payload bytes.
        let byte = if out.len().is_multiple_of(188) {
            0x47
        } else {
            x = mix64(x.wrapping_add(1));
            x as u8
        };
        out.push(byte);
    }
    out
}

/// The first `n` bytes of a room's FLV stream (an FLV header, then
/// deterministic bytes).
pub fn flv_bytes(room_id: &str, quality: &str, n: usize) -> Vec<u8> {
    let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
    let mut x = seed(room_id, quality);
    while out.len() < n {
        x = mix64(x.wrapping_add(1));
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

fn stream_urls(s: &State, room_id: &str) -> Value {
    let hls: serde_json::Map<String, Value> = QUALITIES
        .iter()
        .map(|q| (q.to_string(), json!(format!("{}/stream/{room_id}/{q}.m3u8", s.base))))
        .collect();
    let flv: serde_json::Map<String, Value> = QUALITIES
        .iter()
        .map(|q| (q.to_string(), json!(format!("{}/stream/{room_id}/{q}.flv", s.base))))
        .collect();
    json!({"hls_pull_url_map": hls, "flv_pull_url": flv, "default_resolution": "FULL_HD1",
           "resolution_name": {"FULL_HD1": "蓝光", "HD1": "超清", "SD1": "标清", "SD2": "高清"}})
}

/// The shared prologue of both live endpoints: count, latency, faults,
/// query and signature checks. `Err` answers now.
fn checked(
    state: &Mutex<State>,
    req: &Request,
    name: &str,
    area: &str,
    path: &str,
    block: Query,
    fields: &[&str],
) -> Result<Vec<(String, String)>, Response> {
    let latency = {
        let mut s = lock(state);
        s.count(name, super::logged(req, area, path));
        s.api_latency
    };
    if !latency.is_zero() {
        thread::sleep(latency);
    }
    let mut s = lock(state);
    if let Some(r) = faults(&mut s) {
        return Err(r);
    }
    let query = req.path.split_once('?').map_or("", |(_, q)| q);
    let signed = match check_query(query, &block, &["verifyFp", "msToken"], fields, s.check_query) {
        Ok(q) => q,
        Err(super::Rejection::MissingSignature) if !s.check_signatures => query,
        Err(why) => return Err(reject(&mut s, name, why)),
    };
    if s.check_signatures
        && let Err(why) = check_signature(query, signed, req.header("user-agent").unwrap_or(""), &s)
    {
        return Err(reject(&mut s, name, why));
    }
    Ok(super::api::raw_pairs(signed)
        .into_iter()
        .map(|(k, v)| (k.to_string(), crate::support::http::percent_decode(v)))
        .collect())
}

/// `GET /webcast/room/web/enter/?<live block>&web_rid=…&room_id_str=`.
pub fn enter(state: &Mutex<State>, req: &Request, path: &str) -> Response {
    if path != "/webcast/room/web/enter/" {
        return Response::text(404, "not found\n");
    }
    let block = Query::live(&lock(state).profile);
    let params = match checked(state, req, "live_enter", "live", path, block, &["web_rid", "room_id_str"]) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let web_rid = params.iter().find(|(k, _)| k == "web_rid").map(|(_, v)| v.clone()).unwrap_or_default();
    let s = lock(state);
    let Some(room) = s.rooms.iter().find(|r| r.0 == web_rid) else {
        return Response::json(
            200,
            &json!({"status_code": 0, "data": {"data": [], "enter_room_id": ""}}).to_string(),
        );
    };
    let owner = &s.users[room.4];
    let mut data = json!({
        "id_str": room.1, "status": room.2, "title": room.3,
        "owner": {"id_str": owner.uid, "sec_uid": owner.sec_uid, "nickname": owner.nickname},
        "stats": {"user_count_str": "1.2万", "total_user_str": "5万"}
    });
    if room.2 == 2 {
        data["stream_url"] = stream_urls(&s, &room.1);
    }
    let body = json!({"status_code": 0, "data": {"data": [data], "enter_room_id": room.1,
                      "user": {"id_str": owner.uid, "sec_uid": owner.sec_uid, "nickname": owner.nickname}}});
    Response::json(200, &body.to_string())
}

/// `GET /webcast/room/reflow/info/?verifyFp=…&…&room_id=…`.
pub fn reflow(state: &Mutex<State>, req: &Request, path: &str) -> Response {
    if path != "/webcast/room/reflow/info/" {
        return Response::text(404, "not found\n");
    }
    // The block is BaseLiveModel2's fields before `room_id`.
    let block = Query::new()
        .text("verifyFp", "")
        .text("type_id", "0")
        .text("live_id", "1")
        .text("sec_user_id", "")
        .text("version_code", "99.99.99")
        .text("app_id", "1128")
        .text("msToken", "");
    let params = match checked(state, req, "reflow_info", "webcast", path, block, &["room_id"]) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let room_id = params.iter().find(|(k, _)| k == "room_id").map(|(_, v)| v.clone()).unwrap_or_default();
    let s = lock(state);
    let Some(room) = s.rooms.iter().find(|r| r.1 == room_id) else {
        return Response::json(200, &json!({"status_code": 0, "data": {"room": null}}).to_string());
    };
    let owner = &s.users[room.4];
    let mut r = json!({
        "id": room.1.parse::<u64>().unwrap_or(0), "id_str": room.1, "status": room.2, "title": room.3,
        "owner": {"web_rid": room.0, "nickname": owner.nickname, "sec_uid": owner.sec_uid, "id_str": owner.uid}
    });
    if room.2 == 2 {
        r["stream_url"] = stream_urls(&s, &room.1);
    }
    Response::json(200, &json!({"status_code": 0, "data": {"room": r}}).to_string())
}

/// `/stream/<room_id>/<q>.m3u8`, `/stream/<room_id>/<q>/<seq>.ts`,
/// `/stream/<room_id>/<q>.flv`.
pub fn stream(state: &Mutex<State>, req: &Request, path: &str) -> Response {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let latency = lock(state).media_latency;
    if !latency.is_zero() {
        thread::sleep(latency);
    }
    let mut s = lock(state);
    let key = format!("/stream{path}");
    *s.url_hits.entry(key.clone()).or_default() += 1;
    let live = |s: &State, room: &str| s.rooms.iter().any(|r| r.1 == room && r.2 == 2);
    match parts.as_slice() {
        [room, file] if file.ends_with(".m3u8") => {
            s.count("hls", super::logged(req, "stream", path));
            let q = file.trim_end_matches(".m3u8");
            if !live(&s, room) || !QUALITIES.contains(&q) {
                return Response::text(404, "no such stream\n");
            }
            let fetches = s.hls_fetches.entry(format!("{room}/{q}")).or_default();
            let seq = *fetches as u64;
            *fetches += 1;
            if seq as usize >= s.hls_refreshes {
                // The stream ended: F2 stops on this 404.
                return Response::text(404, "stream ended\n");
            }
            let mut m3u8 =
                format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:{seq}\n");
            for n in seq..seq + s.hls_window as u64 {
                m3u8.push_str(&format!("#EXTINF:1.000,\n{q}/{n}.ts\n"));
            }
            Response::new(200)
                .header("Content-Type", "application/vnd.apple.mpegurl")
                .with_body(Body::Bytes(m3u8.into_bytes()))
        }
        [room, q, seg] if seg.ends_with(".ts") => {
            s.count("segment", super::logged(req, "stream", path));
            let Ok(seq) = seg.trim_end_matches(".ts").parse::<u64>() else {
                return Response::text(404, "no such segment\n");
            };
            let limit = (s.hls_refreshes + s.hls_window) as u64;
            if !live(&s, room) || !QUALITIES.contains(q) || seq >= limit {
                return Response::text(404, "no such segment\n");
            }
            let body = segment_bytes(room, q, seq);
            s.media_bytes += body.len() as u64;
            Response::new(200).header("Content-Type", "video/mp2t").with_body(Body::Bytes(body))
        }
        [room, file] if file.ends_with(".flv") => {
            s.count("flv", super::logged(req, "stream", path));
            let q = file.trim_end_matches(".flv");
            if !live(&s, room) || !QUALITIES.contains(&q) {
                return Response::text(404, "no such stream\n");
            }
            let body = flv_bytes(room, q, s.flv_bytes);
            s.media_bytes += body.len() as u64;
            Response::new(200).header("Content-Type", "video/x-flv").with_body(Body::CloseDelimited(body))
        }
        _ => {
            s.count("unknown", super::logged(req, "stream", path));
            Response::text(404, "not found\n")
        }
    }
}
