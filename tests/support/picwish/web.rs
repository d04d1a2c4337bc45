//! The web flow of the fake PicWish (docs/picwish.md, "The web flow"): the
//! passport login, the gateway under `/app/picwish/` (upload grants, tasks,
//! polls, watermark-free result URLs) and the OSS callback the upload
//! triggers in-process.
//!
//! Every gateway call needs the query `product_id=482&language=en` (400
//! otherwise) and `Authorization: Bearer <token>` with an anonymous token
//! (`v2,<8 digits>,482,<32 lowercase hex>`) or one the login issued and
//! that was not revoked (HTTP 401 `{"status":401,"message":"needed login"}`
//! otherwise, the message the web page gets). A wrong password answers
//! HTTP 200 with body `{"status":401,…}`: the real answer is not documented
//! publicly (docs/picwish.md), and the gateway's clients (the `picwish`
//! package) judge the body's `status`, as a provider must.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::multipart::parse_urlencoded;
use super::{
    ACCELERATE, BUCKET, COUNTRY_CODE, ENDPOINT, GRANT_TTL, Grant, Origin, PASSWORD, PHONE, PRODUCT_ID, State,
    Task, is_image, sha256_hex, status_json,
};
use crate::support::http::{Request, Response, lock};

/// The callback path the grants name.
pub const CALLBACK_PATH: &str = "/app/picwish/oss/callback";

/// The web task routes (under `/app/picwish/`).
pub const ROUTES: [&str; 3] = ["tasks/login/segmentation", "tasks/login/scale", "tasks/colorization"];

/// Whether `t` has the anonymous form `v2,<8 digits>,482,<32 lowercase hex>`.
pub fn anonymous_token(t: &str) -> bool {
    let p: Vec<&str> = t.split(',').collect();
    p.len() == 4
        && p[0] == "v2"
        && p[1].len() == 8
        && p[1].bytes().all(|b| b.is_ascii_digit())
        && p[2] == PRODUCT_ID
        && p[3].len() == 32
        && p[3].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Entry point for the passport login and `/app/picwish/…`.
pub fn handle(state: &Mutex<State>, req: &Request) -> Response {
    let path = req.path_only().to_string();
    if path == "/base/passport/v1/api/login" {
        return login(state, req);
    }
    let Some(rest) = path.strip_prefix("/app/picwish/") else { return status_json(404, "not found") };
    if req.query("product_id").as_deref() != Some(PRODUCT_ID)
        || req.query("language").as_deref() != Some("en")
    {
        return status_json(400, "product_id and language are required");
    }
    let mut s = lock(state);
    let token = req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
    if !(anonymous_token(token) || s.login_tokens.contains(token)) {
        return status_json(401, "needed login");
    }
    if s.web_storm > 0 {
        s.web_storm -= 1;
        return status_json(429, "Too Many Requests");
    }
    let rest = rest.trim_end_matches('/');
    match req.method.as_str() {
        "POST" if rest == "authorizations/oss" => authorize(&mut s, req),
        "POST" if ROUTES.contains(&rest) => {
            let resp = create(&mut s, req, rest);
            if resp.status == 200 && s.drop_create > 0 {
                s.drop_create -= 1;
                return resp.truncate_after(0);
            }
            resp
        }
        "GET" => {
            if let Some(r) = rest.strip_prefix("tasks/login/image-url/") {
                if let Some((_, id)) = r.split_once('/') {
                    s.renew(id);
                }
                return image_url(&s, req, r);
            }
            match rest.rsplit_once('/') {
                Some((route, id)) if ROUTES.contains(&route) => {
                    s.polls += 1;
                    s.renew(id);
                    poll(&s, route, id)
                }
                _ => status_json(404, "not found"),
            }
        }
        _ => status_json(404, "not found"),
    }
}

fn login(state: &Mutex<State>, req: &Request) -> Response {
    if req.method != "POST" {
        return status_json(405, "method not allowed");
    }
    let form = parse_urlencoded(&req.body_text());
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let fixed = [
        ("brand_id", "29"),
        ("product_id", PRODUCT_ID),
        ("language", "en"),
        ("type", "2"),
        ("platform", "web"),
    ];
    if let Some((k, _)) = fixed.iter().find(|(k, v)| get(k) != Some(v)) {
        return status_json(400, &format!("invalid or missing {k}"));
    }
    let mut s = lock(state);
    let good = get("telephone") == Some(PHONE)
        && get("country_code").unwrap_or(COUNTRY_CODE) == COUNTRY_CODE
        && get("password") == Some(PASSWORD);
    if !good {
        return Response::json(200, r#"{"status":401,"message":"wrong account or password"}"#);
    }
    s.logins += 1;
    let token = format!("login,{},{PRODUCT_ID},{}", 10_000_000 + s.logins, s.fresh_hex(32));
    s.login_tokens.insert(token.clone());
    let body = json!({"status": 200, "message": "success", "data": {"api_token": token, "user_id": 4242}});
    Response::json(200, &body.to_string())
}

fn rfc3339(t: SystemTime) -> String {
    // httpdate gives RFC 1123; rebuild the fields as RFC 3339 UTC.
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn authorize(s: &mut State, req: &Request) -> Response {
    let v: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(_) => return status_json(400, "body is not JSON"),
    };
    let names: Vec<String> = v
        .get("filenames")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if names.is_empty() {
        return status_json(400, "filenames is required");
    }
    let mut objects = serde_json::Map::new();
    let mut keys = HashSet::new();
    for n in &names {
        let ext = n
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .filter(|e| !e.is_empty() && e.len() <= 5 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
            .unwrap_or_else(|| "bin".into());
        let key = format!("tasks/picwish/{}/{}.{ext}", s.fresh_hex(8), s.fresh_uuid());
        objects.insert(n.clone(), json!(key));
        keys.insert(key);
    }
    let expired = if s.expire_grants > 0 {
        s.expire_grants -= 1;
        true
    } else {
        false
    };
    let now = SystemTime::now();
    let expires = if expired { now - Duration::from_secs(60) } else { now + GRANT_TTL };
    let akid = format!("STS.{}", s.fresh_hex(24));
    let secret = s.fresh_hex(30);
    let security_token = format!("CAIS{}", s.fresh_hex(64));
    s.grants.insert(
        akid.clone(),
        Grant { secret: secret.clone(), security_token: security_token.clone(), expires, objects: keys },
    );
    let body = json!({"status": 200, "message": "success", "data": {
        "bucket": BUCKET,
        "accelerate": ACCELERATE,
        "endpoint": ENDPOINT,
        "objects": objects,
        "credential": {
            "access_key_id": akid,
            "access_key_secret": secret,
            "security_token": security_token,
            "expiration": rfc3339(expires),
        },
        "callback": {
            "url": format!("{}{CALLBACK_PATH}", s.base),
            "body": "{\"bucket\":\"${bucket}\",\"object\":\"${object}\",\"size\":\"${size}\",\
                     \"mime_type\":\"${mimeType}\",\"etag\":\"${etag}\",\"filename\":\"${x:filename}\"}",
            "type": "application/json",
        },
    }});
    Response::json(200, &body.to_string())
}

/// The OSS upload's callback: finds the stored object and mints a
/// resource id (`Err`: the callback failed).
pub fn callback(s: &mut State, url: &str, body: &str, body_type: &str) -> Result<Value, String> {
    if url != format!("{}{CALLBACK_PATH}", s.base) {
        return Err(format!("callback url {url:?} unreachable"));
    }
    let object = if body_type.contains("json") {
        let v: Value = serde_json::from_str(body).map_err(|e| format!("callback body: {e}"))?;
        v.get("object").and_then(Value::as_str).map(str::to_string)
    } else {
        parse_urlencoded(body).into_iter().find(|(k, _)| k == "object").map(|(_, v)| v)
    };
    let object = object.ok_or("callback body without object")?;
    let bytes = s.objects.get(&object).cloned().ok_or("callback for an unknown object")?;
    let rid = s.fresh_uuid();
    s.resources.insert(rid.clone(), bytes);
    Ok(json!({"status": 200, "message": "success", "data": {"resource_id": rid}}))
}

fn create(s: &mut State, req: &Request, route: &str) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&req.body) else {
        return status_json(400, "body is not JSON");
    };
    if v.get("website").and_then(Value::as_str) != Some("en") {
        return status_json(400, "website is required");
    }
    let rid = v.get("source_resource_id").and_then(Value::as_str).unwrap_or("");
    let Some(input) = s.resources.get(rid).cloned() else {
        return status_json(400, "source_resource_id not found");
    };
    let op = route.rsplit('/').next().unwrap_or(route).to_string();
    let ok = match op.as_str() {
        "segmentation" => v.get("output_type").is_none_or(|o| o.as_i64() == Some(1)),
        "scale" => matches!(v.get("type").and_then(Value::as_i64), Some(1 | 2)),
        _ => true,
    };
    if !ok {
        return status_json(400, "invalid parameters");
    }
    let sha = sha256_hex(&input);
    let planned = s.planned_failure(&input, &sha).or_else(|| (!is_image(&input)).then_some(-7));
    let id = s.fresh_uuid();
    s.add_task(Task {
        id: id.clone(),
        op,
        origin: Origin::Web(route.to_string()),
        sha,
        input: Arc::clone(&input),
        output_type: 1,
        created: Instant::now(),
        planned,
        settled: None,
        image: None,
        mask: None,
        preview: None,
        cost: 1,
    });
    Response::json(200, &json!({"status": 200, "message": "success", "data": {"task_id": id}}).to_string())
}

fn poll(s: &State, route: &str, id: &str) -> Response {
    let Some(t) = s.tasks.get(id).filter(|t| t.origin == Origin::Web(route.to_string())) else {
        return status_json(404, "task not found");
    };
    let (state, progress) = s.view(t);
    let mut d = json!({"task_id": t.id, "state": state, "progress": progress, "image": null});
    if state == 1 {
        // Colorization's poll image is the result; the others' a watermarked preview.
        d["image"] = if t.op == "colorization" { s.result_url(&t.image) } else { s.result_url(&t.preview) };
        if t.mask.is_some() {
            d["mask"] = s.result_url(&t.mask);
        }
    }
    let top = if state < 0 { state } else { 200 };
    Response::json(
        200,
        &json!({"status": top, "message": if state < 0 { "failed" } else { "success" }, "data": d})
            .to_string(),
    )
}

fn image_url(s: &State, req: &Request, rest: &str) -> Response {
    let Some((kind, id)) = rest.split_once('/') else { return status_json(404, "not found") };
    if !matches!(kind, "scale" | "segmentation") {
        return status_json(404, "not found");
    }
    if req.query("pic_quality").as_deref() != Some("free") {
        return status_json(400, "pic_quality must be free");
    }
    let route = format!("tasks/login/{kind}");
    let Some(t) = s.tasks.get(id).filter(|t| t.origin == Origin::Web(route.clone())) else {
        return status_json(404, "task not found");
    };
    if t.settled != Some(1) {
        return status_json(400, "task not finished");
    }
    let mut d = json!({"task_id": t.id, "image": s.result_url(&t.image)});
    if t.mask.is_some() {
        d["mask"] = s.result_url(&t.mask);
    }
    Response::json(200, &json!({"status": 200, "message": "success", "data": d}).to_string())
}
