//! Share links and pages, and the token endpoints.
//!
//! Owns the redirect chains: `GET {short}/<code>` (with or without the
//! trailing slash) → 302 `{ies}/share/slink/<code>/` → 302 to the final
//! page, as F2's `SecUserIdFetcher`/`AwemeIdFetcher` follow them and read
//! the final URL: `{ies}/share/video/<id>/?…` (`/share/note/<id>/` for an
//! image post), `{ies}/share/user/<sec_uid>?sec_uid=<sec_uid>&…`,
//! `{web}/collection/<mix_id>`, `{webcast}/reflow/<room_id>?…`. Final pages
//! (and `{web}/video|user|collection/…`, `{live}/<web_rid>`) answer 200
//! HTML. The tokens: `POST {mssdk}/web/report` sets a 128-character
//! `msToken` cookie; `POST {ttwid}/ttwid/union/register/` sets `ttwid`;
//! `POST {mcs}/webid?…` answers `{"e":0,"web_id":"…"}`.

use std::sync::Mutex;

use serde_json::Value;

use super::state::{Kind, State};
use crate::support::http::{Body, Request, Response, lock};

fn page(title: &str) -> Response {
    let html =
        format!("<!DOCTYPE html><html><head><title>{title}</title></head><body>fake douyin</body></html>\n");
    Response::new(200)
        .header("Content-Type", "text/html; charset=utf-8")
        .with_body(Body::Bytes(html.into_bytes()))
}

fn redirect(to: &str) -> Response {
    Response::new(302)
        .header("Location", to)
        .header("Content-Type", "text/html")
        .with_body(Body::Bytes(format!("<a href=\"{to}\">Found</a>.\n").into_bytes()))
}

/// Decodes a short code (`i<kind><base36>`) to (kind, index).
fn decode_code(code: &str) -> Option<(char, usize)> {
    let rest = code.strip_prefix('i')?;
    let mut chars = rest.chars();
    let kind = chars.next()?;
    let n = usize::from_str_radix(chars.as_str(), 36).ok()?;
    Some((kind, n.checked_sub(36 * 36 * 36)?))
}

/// Where a short code finally leads.
fn final_url(s: &State, code: &str) -> Option<String> {
    let (kind, i) = decode_code(code)?;
    let tail =
        "region=CN&u_code=fake0u_code&did=MS4wLjABAAAAdid&iid=MS4wLjABAAAAiid&with_sec_did=1&from_ssr=1";
    Some(match kind {
        'w' => {
            let w = s.works.get(i)?;
            let what = if w.kind == Kind::Images { "note" } else { "video" };
            format!(
                "{}/ies/share/{what}/{}/?{tail}&mid={}",
                s.base,
                w.id,
                6_900_000_000_000_000_000u64 + i as u64
            )
        }
        'u' => {
            let u = s.users.get(i)?;
            format!("{}/ies/share/user/{}?sec_uid={}&{tail}", s.base, u.sec_uid, u.sec_uid)
        }
        'm' => format!("{}/web/collection/{}", s.base, s.mixes.keys().nth(i)?),
        'l' => format!("{}/webcast/reflow/{}?{tail}", s.base, s.rooms.get(i)?.1),
        _ => return None,
    })
}

/// Short links, share pages, web pages, live pages.
pub fn handle(state: &Mutex<State>, req: &Request, area: &str, path: &str) -> Response {
    let mut s = lock(state);
    let name = if area == "short" { "short" } else { "page" };
    s.count(name, super::logged(req, area, path));
    if req.method != "GET" && req.method != "HEAD" {
        return Response::text(405, "method not allowed\n");
    }
    let segs: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match (area, segs.as_slice()) {
        ("short", [code]) => match final_url(&s, code) {
            Some(_) => redirect(&format!("{}/ies/share/slink/{code}/", s.base)),
            None => Response::text(404, "no such short link\n"),
        },
        ("ies", ["share", "slink", code]) => match final_url(&s, code) {
            Some(to) => redirect(&to),
            None => Response::text(404, "no such short link\n"),
        },
        ("ies", ["share", "video" | "note", id]) | ("web", ["video" | "note", id]) => {
            if s.by_id.contains_key(*id) { page(id) } else { Response::text(404, "no such work\n") }
        }
        ("ies", ["share", "user", sec]) | ("web", ["user", sec]) => {
            if s.user(sec).is_some() {
                page(sec)
            } else {
                Response::text(404, "no such user\n")
            }
        }
        ("web", ["collection", mix]) => {
            if s.mixes.contains_key(*mix) {
                page(mix)
            } else {
                Response::text(404, "no such mix\n")
            }
        }
        ("live", [web_rid]) => {
            if s.rooms.iter().any(|r| r.0 == *web_rid) {
                page(web_rid)
            } else {
                Response::text(404, "no such room\n")
            }
        }
        ("webcast", ["reflow", room]) => {
            if s.rooms.iter().any(|r| r.1 == *room) {
                page(room)
            } else {
                Response::text(404, "no such room\n")
            }
        }
        _ => Response::text(404, "not found\n"),
    }
}

/// `POST {mssdk}/web/report` and `POST {ttwid}/ttwid/union/register/`.
pub fn token(state: &Mutex<State>, req: &Request, area: &str, path: &str) -> Response {
    let mut s = lock(state);
    let name = match area {
        "mssdk" => "ms_token",
        "mcs" => "webid",
        _ => "ttwid",
    };
    s.count(name, super::logged(req, area, path));
    if req.method != "POST" {
        return Response::text(405, "method not allowed\n");
    }
    let body: Option<Value> = serde_json::from_slice(&req.body).ok();
    // The cookie is for the host the client reached: `Domain=bytedance.com`
    // only when it asked for a ByteDance host (a client on loopback drops a
    // cookie for another domain, as it should).
    let host = req.header("host").unwrap_or("").to_ascii_lowercase();
    let domain = if host.ends_with("bytedance.com") { "; Domain=bytedance.com" } else { "" };
    match (area, path) {
        ("mssdk", "/web/report") => {
            // The web SDK's report carries this magic number.
            if body.as_ref().and_then(|b| b.get("magic")).and_then(Value::as_i64) != Some(538_969_122) {
                return Response::text(400, "bad report\n");
            }
            let resp = Response::json(200, r#"{"code":0,"msg":"ok"}"#);
            if s.ms_token_unavailable {
                return resp;
            }
            let mut token = s.new_ms_token();
            match s.ms_token_fault {
                Some(super::state::TokenFault::Down) => {
                    s.ms_tokens.pop();
                    return Response::text(503, "service unavailable\n");
                }
                Some(super::state::TokenFault::WrongLength) => {
                    token.truncate(64);
                    s.ms_tokens.pop();
                    s.ms_tokens.push(token.clone());
                }
                None => {}
            }
            resp.header("Set-Cookie", &format!("msToken={token}; Path=/{domain}; Max-Age=86400"))
        }
        ("ttwid", "/ttwid/union/register/") => {
            if body.as_ref().and_then(|b| b.get("aid")).is_none() {
                return Response::text(400, "bad register\n");
            }
            s.seq += 1;
            let ttwid = format!("1%7Cfake{:016x}%7C1700000000%7Cttwidsig", s.seq);
            Response::json(200, r#"{"status_code":0,"redirect_url":"https://www.ixigua.com"}"#)
                .header("Set-Cookie", &format!("ttwid={ttwid}; Path=/{domain}; Max-Age=31536000; HttpOnly"))
        }
        ("mcs", "/webid") => {
            if body.as_ref().and_then(|b| b.get("app_id")).is_none() {
                return Response::text(400, "bad webid request\n");
            }
            s.seq += 1;
            let web_id = 7_300_000_000_000_000_000u64 + s.seq;
            Response::json(200, &format!(r#"{{"e":0,"web_id":"{web_id}"}}"#))
        }
        _ => Response::text(404, "not found\n"),
    }
}
