//! The SSO QR-code login (`{base}/sso`, standing for
//! `https://sso.douyin.com`), as F2 0.0.1.4's `handle_sso_login` drives
//! it: `GET /get_qrcode/` hands out a code (`data.token`,
//! `data.qrcode_index_url`), `GET /check_qrconnect/?…&token=` answers the
//! code's next state from a script (`1` new, `2` scanned, `3` confirmed
//! with `data.redirect_url`, `4` refused, `5` expired; the last state
//! repeats), and the confirmation's redirect (`{base}/web/passport/sso/
//! login/callback/?ticket=`) sets the login cookie on a 302 to a landing
//! page that sets one more. Choices where the sources are silent: the
//! `n`-th code handed out follows the `n`-th script (the last script for
//! any further code); the check answer of the confirmation sets
//! `passport_csrf_token`; the callback sets `sessionid` and `sid_guard`
//! (what [`super::SESSION_ID`] checks), the landing page `ttwid`.

use std::sync::Mutex;

use serde_json::json;

use super::state::{SESSION_ID, State};
use crate::support::http::{Request, Response, lock};

/// `GET {sso}/get_qrcode/` and `GET {sso}/check_qrconnect/`.
pub fn handle(state: &Mutex<State>, req: &Request, path: &str) -> Response {
    let mut s = lock(state);
    let fp_ok = req.query("verifyFp").is_some_and(|v| v.starts_with("verify_"))
        && req.query("fp") == req.query("verifyFp")
        && req.query("service").as_deref() == Some("https://www.douyin.com");
    match path {
        "/get_qrcode/" => {
            s.count("sso_qrcode", super::logged(req, "sso", path));
            if !fp_ok {
                return Response::json(200, r#"{"error_code":1001,"description":"bad parameters"}"#);
            }
            let n = s.sso_codes.len();
            let token = format!("qrtoken{n:04}");
            s.sso_codes.push((token.clone(), 0));
            let body = json!({"data": {"token": token, "app_name": "douyin_web",
                "qrcode_index_url": format!("https://aweme.snssdk.com/magic/eco/runtime/release/login?token={token}"),
                "qrcode": "iVBORw0KGgo=", "is_frontier": false}, "error_code": 0, "description": "", "message": "success"});
            Response::json(200, &body.to_string())
        }
        "/check_qrconnect/" => {
            s.count("sso_check", super::logged(req, "sso", path));
            let token = req.query("token").unwrap_or_default();
            let Some(n) = s.sso_codes.iter().position(|(t, _)| *t == token).filter(|_| fp_ok) else {
                return Response::json(200, r#"{"error_code":2,"description":"no such code"}"#);
            };
            let script = s.sso_script.get(n).or(s.sso_script.last()).cloned().unwrap_or_default();
            let at = s.sso_codes[n].1;
            s.sso_codes[n].1 += 1;
            let status = script.get(at).or(script.last()).cloned().unwrap_or_else(|| "1".into());
            let mut data = json!({"status": status});
            if status == "3" {
                data["redirect_url"] =
                    json!(format!("{}/web/passport/sso/login/callback/?ticket=tk{n:04}", s.base));
                let resp = Response::json(200, &json!({"data": data, "error_code": 0}).to_string());
                return resp.header("Set-Cookie", "passport_csrf_token=csrf0001; Path=/; Domain=douyin.com");
            }
            Response::json(200, &json!({"data": data, "error_code": 0}).to_string())
        }
        _ => {
            s.count("unknown", super::logged(req, "sso", path));
            Response::text(404, "not found\n")
        }
    }
}

/// The confirmation's redirect on the web area: the callback and its
/// landing page.
pub fn callback(state: &Mutex<State>, req: &Request, path: &str) -> Response {
    let mut s = lock(state);
    s.count("sso_callback", super::logged(req, "web", path));
    if path == "/passport/sso/login/callback/" {
        let ticket = req.query("ticket").unwrap_or_default();
        let known = s.sso_codes.iter().enumerate().any(|(n, _)| ticket == format!("tk{n:04}"));
        let csrf = req.header("cookie").is_some_and(|c| c.contains("passport_csrf_token=csrf0001"));
        if !known || !csrf {
            return Response::text(403, "bad ticket\n");
        }
        return Response::new(302)
            .header("Location", "/web/passport/sso/landing/")
            .header("Set-Cookie", &format!("sessionid={SESSION_ID}; Path=/; Domain=douyin.com; HttpOnly"))
            .header(
                "Set-Cookie",
                &format!("sid_guard={SESSION_ID}%7C1700000000; Path=/; Domain=douyin.com"),
            );
    }
    Response::text(200, "<html>logged in</html>\n").header("Set-Cookie", "ttwid=1%7Cssofake; Path=/")
}
