//! The official developer API of the fake PicWish (docs/picwish.md, "The
//! official API"): `POST /api/tasks/visual/<op>` and
//! `GET /api/tasks/visual/<op>/<task_id>`.
//!
//! Order of checks: the op (404), the method (405), `X-API-KEY` (401), the
//! `storm` knob and the per-key token bucket (429; every request of the
//! key counts, creates and queries alike, rejected ones do not refill),
//! then for a create: the body (400), exactly one of `image_file` /
//! `image_url` (400), the 15 MB limit (413), the options of the op (400),
//! the balance (402). A create with `sync=1` answers as a query once the
//! task settles (at most 30 s, then state -8).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::multipart::{Part, parse_form};
use super::{MAX_FILE, Origin, State, Task, is_image, sha256_hex, status_json};
use crate::support::http::{Body, Request, Response, lock};

/// The ops the fake serves.
pub const OPS: [&str; 6] =
    ["segmentation", "self-face-cutout", "scale", "colorization", "inpaint", "correction"];

/// How long a `sync=1` create waits for its task at most.
const SYNC_CAP: Duration = Duration::from_secs(30);

/// Entry point for `/api/tasks/visual/…`.
pub fn handle(state: &Mutex<State>, req: &Request) -> Response {
    let rest = req.path_only().trim_start_matches("/api/tasks/visual/").to_string();
    let (op, task_id) = match rest.split_once('/') {
        Some((op, id)) => (op.to_string(), Some(id.to_string())),
        None => (rest.clone(), None),
    };
    let mut s = lock(state);
    s.api_requests += 1;
    if !OPS.contains(&op.as_str()) || task_id.as_deref().is_some_and(|i| i.is_empty() || i.contains('/')) {
        return status_json(404, "not found");
    }
    let want = if task_id.is_some() { "GET" } else { "POST" };
    if req.method != want {
        return status_json(405, "method not allowed");
    }
    let key = req.header("x-api-key").unwrap_or("").to_string();
    if !s.keys.contains(&key) {
        return status_json(401, "Unauthorized");
    }
    if s.storm > 0 {
        s.storm -= 1;
        s.rate_limited += 1;
        return status_json(429, "Too Many Requests");
    }
    if !take_token(&mut s, &key) {
        s.rate_limited += 1;
        return status_json(429, "Too Many Requests");
    }
    match task_id {
        Some(id) => {
            s.polls += 1;
            s.renew(&id);
            match s.tasks.get(&id) {
                Some(t) if t.op == op && t.origin == Origin::Api(key.clone()) => {
                    Response::json(200, &json!({"status": 200, "data": task_data(&s, t)}).to_string())
                }
                _ => status_json(404, "task not found"),
            }
        }
        None => {
            drop(s);
            create(state, req, &op, &key)
        }
    }
}

/// Takes one token from `key`'s bucket (rate per second, burst = rate).
fn take_token(s: &mut State, key: &str) -> bool {
    let rate = s.rate;
    if rate <= 0.0 {
        return true;
    }
    let cap = rate.max(1.0);
    let now = Instant::now();
    let (tokens, last) = s.buckets.entry(key.to_string()).or_insert((cap, now));
    *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(cap);
    *last = now;
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        true
    } else {
        false
    }
}

/// The `data` of a query answer.
pub fn task_data(s: &State, t: &Task) -> Value {
    let (state, progress) = s.view(t);
    let detail = match state {
        1 => "Complete",
        4 => "Processing",
        _ => "Failed",
    };
    let mut d = json!({
        "task_id": t.id,
        "state": state,
        "state_detail": detail,
        "progress": progress,
        "return_type": 1,
        "type": t.op,
    });
    if state == 1 {
        if t.image.is_some() {
            d["image"] = s.result_url(&t.image);
        }
        if t.mask.is_some() {
            d["mask"] = s.result_url(&t.mask);
        }
    }
    d
}

fn field<'a>(parts: &'a [Part], name: &str) -> Option<&'a Part> {
    parts.iter().find(|p| p.name == name)
}

fn text(parts: &[Part], name: &str) -> Option<String> {
    field(parts, name).map(|p| p.text())
}

fn one_of(parts: &[Part], name: &str, allowed: &[&str]) -> Result<(), String> {
    match text(parts, name) {
        Some(v) if !allowed.contains(&v.as_str()) => Err(format!("invalid {name}: {v:?}")),
        _ => Ok(()),
    }
}

/// Validates the options of `op` (docs/picwish.md, the op table).
pub fn validate(op: &str, parts: &[Part]) -> Result<(), String> {
    one_of(parts, "sync", &["0", "1"])?;
    one_of(parts, "return_type", &["1", "2", "3"])?;
    if text(parts, "return_type").as_deref() == Some("3") && text(parts, "sync").as_deref() != Some("1") {
        return Err("return_type 3 needs sync=1".into());
    }
    match op {
        "segmentation" => {
            one_of(parts, "type", &["", "person", "object", "stamp"])?;
            one_of(parts, "crop", &["0", "1"])?;
            one_of(parts, "format", &["png", "jpg"])?;
            one_of(parts, "output_type", &["1", "2", "3"])?;
            if let Some(c) = text(parts, "bg_color")
                && !(c.len() == 6 && c.chars().all(|x| x.is_ascii_hexdigit()))
            {
                return Err(format!("invalid bg_color: {c:?}"));
            }
        }
        "self-face-cutout" => {
            one_of(parts, "crop", &["0", "1"])?;
            one_of(parts, "output_format", &["png", "jpg"])?;
        }
        "scale" => {
            one_of(parts, "type", &["clean", "face"])?;
            one_of(parts, "scale_factor", &["", "1", "2", "4"])?;
        }
        "colorization" => one_of(parts, "format", &["jpg", "png", "webp"])?,
        "inpaint" => {
            if let Some(r) = text(parts, "rectangles") {
                let v: Value = serde_json::from_str(&r).map_err(|e| format!("rectangles: {e}"))?;
                let arr = v.as_array().ok_or("rectangles is not an array")?;
                let ok = arr.len() <= 50
                    && arr.iter().all(|r| {
                        ["x", "y", "width", "height"].iter().all(|k| r.get(k).is_some_and(Value::is_number))
                    });
                if !ok {
                    return Err("invalid rectangles".into());
                }
            }
        }
        "correction" => one_of(parts, "type", &["0", "1", "2", "3", "4"])?,
        _ => return Err("unknown op".into()),
    }
    Ok(())
}

/// The width and height of a PNG, GIF, BMP or JPEG, if they can be read.
pub fn dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let be32 = |i: usize| b.get(i..i + 4).map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]));
    let le16 = |i: usize| b.get(i..i + 2).map(|x| u16::from_le_bytes([x[0], x[1]]) as u32);
    let le32 =
        |i: usize| b.get(i..i + 4).map(|x| i32::from_le_bytes([x[0], x[1], x[2], x[3]]).unsigned_abs());
    if b.starts_with(b"\x89PNG") {
        return Some((be32(16)?, be32(20)?));
    }
    if b.starts_with(b"GIF8") {
        return Some((le16(6)?, le16(8)?));
    }
    if b.starts_with(b"BM") {
        return Some((le32(18)?, le32(22)?));
    }
    if b.starts_with(&[0xff, 0xd8]) {
        let mut i = 2;
        while i + 9 < b.len() {
            if b[i] != 0xff {
                i += 1;
                continue;
            }
            let m = b[i + 1];
            let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
            if (0xc0..=0xcf).contains(&m) && m != 0xc4 && m != 0xc8 && m != 0xcc {
                let h = u16::from_be_bytes([b[i + 5], b[i + 6]]) as u32;
                let w = u16::from_be_bytes([b[i + 7], b[i + 8]]) as u32;
                return Some((w, h));
            }
            i += 2 + len;
        }
    }
    None
}

/// Credits a successful task costs (docs/picwish.md, "Credits"): enhance 2
/// when the result's long edge (input long edge × `scale_factor`, 2 when
/// automatic) is at most 2048 px, else 3; everything else 1.
pub fn cost(op: &str, input: &[u8], scale_factor: Option<&str>) -> i64 {
    if op != "scale" {
        return 1;
    }
    let factor: u32 = scale_factor.and_then(|f| f.parse().ok()).unwrap_or(2);
    let long = dimensions(input).map_or(1024, |(w, h)| w.max(h));
    if long.saturating_mul(factor) <= 2048 { 2 } else { 3 }
}

fn create(state: &Mutex<State>, req: &Request, op: &str, key: &str) -> Response {
    let parts = match parse_form(req.header("content-type"), &req.body) {
        Ok(p) => p,
        Err(e) => return status_json(400, &e),
    };
    let file = field(&parts, "image_file");
    let url = text(&parts, "image_url").filter(|u| !u.is_empty());
    let (input, url_failed) = match (file, url) {
        (Some(_), Some(_)) | (None, None) => {
            return status_json(400, "exactly one of image_file and image_url is required");
        }
        (Some(f), None) => {
            if f.filename.is_none() {
                return status_json(400, "image_file must be a file part");
            }
            if f.data.len() > MAX_FILE {
                return status_json(413, "file too large");
            }
            (f.data.clone(), false)
        }
        (None, Some(u)) => {
            let s = lock(state);
            let prefix = format!("{}/cdn/", s.base);
            let name = u.strip_prefix(&prefix).map(crate::support::http::percent_decode);
            match name.and_then(|n| s.cdn.get(&n).cloned()) {
                Some(b) => (b, false),
                None => (u.into_bytes(), true),
            }
        }
    };
    if let Err(e) = validate(op, &parts) {
        return status_json(400, &e);
    }
    let cost = cost(op, &input, text(&parts, "scale_factor").as_deref());
    let sync = text(&parts, "sync").as_deref() == Some("1");
    let return_type = text(&parts, "return_type").unwrap_or_else(|| "1".into());
    let output_type = text(&parts, "output_type").and_then(|o| o.parse().ok()).unwrap_or(2);
    let mut s = lock(state);
    if s.balances.get(key).is_some_and(|b| *b < cost) {
        return status_json(402, "insufficient credits");
    }
    let sha = sha256_hex(&input);
    let planned = if url_failed {
        Some(-3)
    } else if input.len() > MAX_FILE {
        Some(-5)
    } else {
        s.planned_failure(&input, &sha).or_else(|| (!is_image(&input)).then_some(-7))
    };
    let id = s.fresh_uuid();
    s.add_task(Task {
        id: id.clone(),
        op: op.to_string(),
        origin: Origin::Api(key.to_string()),
        sha,
        input: Arc::new(input),
        output_type,
        created: Instant::now(),
        planned,
        settled: None,
        image: None,
        mask: None,
        preview: None,
        cost,
    });
    let dropped = if s.drop_create > 0 {
        s.drop_create -= 1;
        true
    } else {
        false
    };
    let stall = s.stall_create;
    drop(s);
    let resp = if sync {
        sync_answer(state, &id, &return_type)
    } else {
        let body = json!({"status": 200, "message": "success", "data": {"task_id": id}});
        Response::json(200, &body.to_string())
    };
    if dropped {
        return resp.truncate_after(0);
    }
    if let Some(d) = stall {
        std::thread::sleep(d);
    }
    resp
}

/// Waits (without the lock) for the task to settle, then answers as a
/// query would, or with the result itself for `return_type` 2 and 3.
fn sync_answer(state: &Mutex<State>, id: &str, return_type: &str) -> Response {
    let until = Instant::now() + SYNC_CAP;
    loop {
        {
            let mut s = lock(state);
            s.settle();
            let Some(t) = s.tasks.get(id) else { return status_json(404, "task not found") };
            if t.settled.is_some() || Instant::now() >= until {
                let mut d = task_data(&s, t);
                if t.settled.is_none() {
                    d["state"] = json!(-8);
                    d["state_detail"] = json!("Timeout");
                }
                let bytes = t.image.as_ref().and_then(|k| s.results.get(k)).map(|r| r.bytes.clone());
                match (return_type, bytes) {
                    ("3", Some(b)) => {
                        return Response::new(200)
                            .header("Content-Type", "image/png")
                            .with_body(Body::Bytes(b));
                    }
                    ("2", Some(b)) => {
                        d["image"] = json!(base64::engine::general_purpose::STANDARD.encode(b));
                        d["return_type"] = json!(2);
                    }
                    _ => {}
                }
                return Response::json(200, &json!({"status": 200, "data": d}).to_string());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
