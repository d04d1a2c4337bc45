//! Tests of the fake Douyin itself (`tests/support/douyin/`), through a
//! plain HTTP client that signs its requests with the crate's signers (the
//! ones pinned to F2 0.0.1.7's vectors): signed requests are accepted, a
//! wrong signature, User-Agent or parameter order gets the empty 200;
//! paging (empty pages that continue), cookies, the CDN (Range, expiry,
//! faults, the watermarked decoy), share-link redirects, live rooms and
//! their sliding playlist, the token endpoints and their faults, the QR-code
//! login's scripted states and redirect, the fault knobs; and the
//! replay of what F2's own crawler sent (`tests/fixtures/douyin/`).

use std::time::{Duration, Instant};

use serde_json::Value;
use spoolfetch::providers::douyin::sign::{ABogusInputs, XBogusInputs, a_bogus, now_ms, x_bogus};
use spoolfetch::providers::douyin::{
    ClientProfile, DouyinId, Hosts, Query, SignatureParam, Wanted, id_in_url, signed_url,
};

use crate::support::client::{Got, agent, done};
use crate::support::douyin::{
    Asset, DELETED_USER, FakeDouyin, Fault, MISSING_MIX, Options, Rejection, TokenFault, asset_bytes,
    segment_bytes,
};

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                  Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0";

fn ms_token() -> String {
    format!("{}==", "M".repeat(126))
}

fn common() -> Query {
    Query::common(&ClientProfile::default(), &ms_token())
}

fn sign(query: &str, param: SignatureParam, ua: &str) -> String {
    match param {
        SignatureParam::ABogus => {
            let inputs = ABogusInputs::random(&mut fastrand::Rng::new());
            a_bogus(query, "", ua, &inputs, &mut now_ms).expect("signs")
        }
        SignatureParam::XBogus => x_bogus(query, ua, XBogusInputs::now()).expect("signs"),
    }
}

/// The signed URL of `endpoint` (under the web API) with `query`.
fn url_of(base: &str, endpoint: &str, q: &Query, param: SignatureParam) -> String {
    let encoded = q.encode().expect("encodes");
    signed_url(&format!("{base}{endpoint}"), &encoded, param, &sign(&encoded, param, UA))
}

fn get_ua(url: &str, ua: &str, cookie: Option<&str>) -> Got {
    let mut r = agent().get(url).header("User-Agent", ua).header("Referer", "https://www.douyin.com/");
    if let Some(c) = cookie {
        r = r.header("Cookie", c);
    }
    done(r.call())
}

/// A signed GET of the web API.
fn api(f: &FakeDouyin, endpoint: &str, q: Query, cookie: Option<&str>) -> Got {
    let url = url_of(&f.web_url(), &format!("/aweme/v1/web/{endpoint}"), &q, SignatureParam::ABogus);
    get_ua(&url, UA, cookie)
}

fn no_redirects() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| a.iter().map(|x| x["aweme_id"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn a_signed_detail_is_accepted_and_shaped_as_f2_reads_it() {
    let f = FakeDouyin::start();
    let id = f.works(&f.sec_uid(0))[0].clone();
    let got = api(&f, "aweme/detail/", Query::post_detail(common(), &id), None);
    assert_eq!(got.status, 200, "{}", got.text());
    let j = got.json();
    assert_eq!(j["status_code"], 0);
    let d = &j["aweme_detail"];
    assert_eq!(d["aweme_id"], id.as_str());
    assert_eq!(d["aweme_type"], 0);
    assert_eq!(d["author"]["sec_uid"], f.sec_uid(0).as_str());
    let urls = d["video"]["bit_rate"][0]["play_addr"]["url_list"].as_array().expect("url_list");
    assert_eq!(urls.len(), 2);
    assert!(d["video"]["play_addr"]["url_list"][0].as_str().expect("decoy").contains("/aweme/v1/playwm/"));
    assert_eq!(d["status"]["is_prohibited"], false);
    assert!(f.rejections().is_empty());
    // X-Bogus is accepted as well.
    let url = url_of(
        &f.web_url(),
        "/aweme/v1/web/aweme/detail/",
        &Query::post_detail(common(), &id),
        SignatureParam::XBogus,
    );
    assert_eq!(get_ua(&url, UA, None).json()["aweme_detail"]["aweme_id"], id.as_str());
    assert_eq!(f.requests("detail"), 2);
    f.signature_kind(Some(SignatureParam::ABogus));
    assert!(get_ua(&url, UA, None).body.is_empty(), "X-Bogus refused when only A-Bogus is wanted");
    f.signature_kind(None);
    // The log has the raw query and no cookie.
    let log = f.request_log();
    assert_eq!(log.len(), 3);
    assert!(log[0].query.starts_with("device_platform=webapp&aid=6383&"), "{:?}", log[0]);
    assert!(log[0].query.contains("&msToken=MMMM"), "unescaped: {:?}", log[0]);
}

#[test]
fn a_bad_signature_user_agent_or_order_gets_an_empty_200() {
    let f = FakeDouyin::start();
    let id = f.works(&f.sec_uid(0))[0].clone();
    let q = Query::post_detail(common(), &id);
    let encoded = q.encode().expect("encodes");
    let endpoint = format!("{}/aweme/v1/web/aweme/detail/", f.web_url());
    let good = sign(&encoded, SignatureParam::ABogus, UA);
    let empty = |g: Got| {
        assert_eq!(g.status, 200);
        assert!(g.body.is_empty(), "{}", g.text());
    };
    // Missing signature.
    empty(get_ua(&format!("{endpoint}?{encoded}"), UA, None));
    // Tampered signature.
    let mut bad = good.clone();
    bad.replace_range(20..21, if &good[20..21] == "A" { "B" } else { "A" });
    empty(get_ua(&signed_url(&endpoint, &encoded, SignatureParam::ABogus, &bad), UA, None));
    // Signed with one UA, sent with another.
    empty(get_ua(&signed_url(&endpoint, &encoded, SignatureParam::ABogus, &good), "Mozilla/5.0 other", None));
    // Signed over other bytes than sent (the client re-encoded the query).
    let escaped = encoded.replace("==", "%3D%3D");
    empty(get_ua(&signed_url(&endpoint, &escaped, SignatureParam::ABogus, &good), UA, None));
    // Common block reordered (correctly signed).
    let swapped = encoded.replacen("device_platform=webapp&aid=6383", "aid=6383&device_platform=webapp", 1);
    let sig = sign(&swapped, SignatureParam::ABogus, UA);
    empty(get_ua(&signed_url(&endpoint, &swapped, SignatureParam::ABogus, &sig), UA, None));
    // Fields after the block in another order (correctly signed).
    let posts = Query::common(&ClientProfile::default(), &ms_token())
        .text("sec_user_id", f.sec_uid(0))
        .int("max_cursor", 0)
        .int("count", 10);
    let url = url_of(&f.web_url(), "/aweme/v1/web/aweme/post/", &posts, SignatureParam::ABogus);
    empty(get_ua(&url, UA, None));
    // X-Bogus tampered.
    let xb = sign(&encoded, SignatureParam::XBogus, UA);
    let xbad = format!("{}{}", &xb[..27], if xb.ends_with('A') { "B" } else { "A" });
    empty(get_ua(&signed_url(&endpoint, &encoded, SignatureParam::XBogus, &xbad), UA, None));

    let rej = f.rejections();
    assert_eq!(rej.len(), 7, "{rej:?}");
    assert_eq!(rej[0].1, Rejection::MissingSignature);
    assert!(matches!(rej[4].1, Rejection::CommonBlock(_)), "{:?}", rej[4]);
    assert!(matches!(rej[5].1, Rejection::Fields(_)), "{:?}", rej[5]);
    assert_eq!(f.bad_signatures(), 5);
    // The right one still works, and with checks off anything goes.
    let ok = get_ua(&signed_url(&endpoint, &encoded, SignatureParam::ABogus, &good), UA, None);
    assert_eq!(ok.json()["status_code"], 0);
    f.check_signatures(false);
    assert_eq!(get_ua(&format!("{endpoint}?{encoded}"), "x", None).json()["status_code"], 0);
    f.check_query(false);
    assert_eq!(get_ua(&format!("{endpoint}?aweme_id={id}"), "x", None).json()["status_code"], 0);
}

/// Pages a time-cursored list to the end; returns the ids and how many
/// pages were empty yet said `has_more`.
fn page_all(
    f: &FakeDouyin,
    endpoint: &str,
    sec_uid: &str,
    count: i64,
    cookie: Option<&str>,
) -> (Vec<String>, usize) {
    let (mut cursor, mut all, mut empties) = (0i64, Vec::new(), 0);
    for _ in 0..200 {
        let j = api(f, endpoint, Query::user_posts(common(), cursor, count, sec_uid), cookie).json();
        assert_eq!(j["status_code"], 0, "{j}");
        let has_more = j["has_more"].as_i64().expect("has_more is an int");
        let page = ids(&j["aweme_list"]);
        if page.is_empty() && has_more == 1 {
            empties += 1;
        }
        all.extend(page);
        let next = j["max_cursor"].as_i64().expect("max_cursor");
        if has_more == 0 {
            // F2 asks once more; the fake answers that correctly.
            let again = api(f, endpoint, Query::user_posts(common(), next, count, sec_uid), cookie).json();
            assert_eq!((again["has_more"].as_i64(), ids(&again["aweme_list"]).len()), (Some(0), 0));
            return (all, empties);
        }
        assert!(cursor == 0 || next < cursor, "cursors decrease: {next} after {cursor}");
        cursor = next;
    }
    panic!("no end");
}

#[test]
fn user_posts_page_by_decreasing_ms_cursors_past_empty_pages() {
    let f = FakeDouyin::start();
    let sec = f.sec_uid(0);
    let (all, empties) = page_all(&f, "aweme/post/", &sec, 4, None);
    assert_eq!(all, f.works(&sec));
    assert!(empties >= 2, "empty pages with has_more 1: {empties}");
    // Image posts, prohibited and deleted works are in the list.
    let works: Vec<_> = all.iter().filter_map(|id| f.work(id)).collect();
    assert!(works.iter().any(|w| w.prohibited) && works.iter().any(|w| w.deleted));
    f.empty_page_every(0);
    assert_eq!(page_all(&f, "aweme/post/", &sec, 10, None), (f.works(&sec), 0));
}

#[test]
fn image_posts_carry_images_and_live_clips_and_deleted_works_have_no_detail() {
    let f = FakeDouyin::start();
    let works = f.works(&f.sec_uid(0));
    let img =
        works.iter().find(|id| f.work(id).is_some_and(|w| !w.live_clips.is_empty())).expect("image post");
    let d = api(&f, "aweme/detail/", Query::post_detail(common(), img), None).json();
    let d = &d["aweme_detail"];
    assert_eq!(d["aweme_type"], 68);
    let images = d["images"].as_array().expect("images");
    assert_eq!(images.len(), 3);
    let clip = images[1]["video"]["play_addr"]["url_list"][0].as_str().expect("clip");
    let got = done(agent().get(clip).call());
    assert_eq!(got.body, asset_bytes(img, Asset::LiveClip(1)));
    let deleted = works.iter().find(|id| f.work(id).is_some_and(|w| w.deleted)).expect("deleted");
    let d = api(&f, "aweme/detail/", Query::post_detail(common(), deleted), None).json();
    assert!(d["aweme_detail"].is_null(), "{d}");
    let p = api(&f, "user/profile/other/", Query::user_profile(common(), &f.sec_uid(1)), None).json();
    assert_eq!(p["user"]["nickname"], f.nickname(1).as_str());
    let p = api(&f, "user/profile/other/", Query::user_profile(common(), DELETED_USER), None).json();
    assert!(p["user"].is_null());
    let (none, _) = page_all(&f, "aweme/post/", DELETED_USER, 10, None);
    assert!(none.is_empty());
}

#[test]
fn mixes_page_by_offset_and_a_missing_mix_is_null() {
    let f = FakeDouyin::start();
    let mix = f.mix_id();
    let (mut cursor, mut all) = (0, Vec::new());
    loop {
        let j = api(&f, "mix/aweme/", Query::user_mix(common(), cursor, 5, &mix), None).json();
        all.extend(ids(&j["aweme_list"]));
        cursor = j["cursor"].as_i64().expect("cursor");
        if j["has_more"] == 0 {
            break;
        }
    }
    assert_eq!(all, f.mix_works(&mix));
    assert_eq!(all.len(), 12);
    let j = api(&f, "mix/aweme/", Query::user_mix(common(), 0, 5, MISSING_MIX), None).json();
    assert!(j["aweme_list"].is_null() && j["has_more"] == 0, "{j}");
}

#[test]
fn cookie_bound_lists_need_the_login_and_private_likes_are_empty() {
    let f = FakeDouyin::start();
    let cookie = f.login_cookie();
    let q = || Query::user_posts(common(), 0, 10, &f.sec_uid(0));
    assert_eq!(api(&f, "aweme/favorite/", q(), None).json()["status_code"], 8);
    assert_eq!(api(&f, "aweme/favorite/", q(), Some("sessionid=wrong")).json()["status_code"], 8);
    let (likes, _) = page_all(&f, "aweme/favorite/", &f.sec_uid(0), 7, Some(&cookie));
    assert_eq!(likes, f.likes());
    // User 1's like list is private.
    let j =
        api(&f, "aweme/favorite/", Query::user_posts(common(), 0, 10, &f.sec_uid(1)), Some(&cookie)).json();
    assert_eq!(
        (j["status_code"].as_i64(), j["has_more"].as_i64(), ids(&j["aweme_list"]).len()),
        (Some(0), Some(0), 0)
    );
    // Collects folders and their works.
    let j = api(&f, "collects/list/", Query::cursor_page(common(), 0, 10), Some(&cookie)).json();
    let folders = j["collects_list"].as_array().expect("collects_list").clone();
    assert_eq!(folders.len(), 2);
    let id = folders[0]["collects_id_str"].as_str().expect("id").to_string();
    let j =
        api(&f, "collects/video/list/", Query::collects_video(common(), 0, 50, &id), Some(&cookie)).json();
    assert_eq!(ids(&j["aweme_list"]), f.collects()[0].2);
    let j = api(&f, "music/listcollection/", Query::cursor_page(common(), 0, 2), Some(&cookie)).json();
    assert_eq!(
        (j["mc_list"].as_array().map(Vec::len), j["has_more"].as_i64(), j["cursor"].as_i64()),
        (Some(2), Some(1), Some(2))
    );
    // The collection is a POST with the fields as a JSON body too.
    let (mut cursor, mut all) = (0i64, Vec::new());
    loop {
        let q = Query::cursor_page(common(), cursor, 6);
        let url = url_of(&f.web_url(), "/aweme/v1/web/aweme/listcollection/", &q, SignatureParam::ABogus);
        let got =
            done(agent().post(&url).header("User-Agent", UA).header("Cookie", &cookie).send(q.json_body()));
        let j = got.json();
        all.extend(ids(&j["aweme_list"]));
        let next = j["cursor"].as_i64().expect("cursor");
        assert!(cursor == 0 || next < cursor);
        cursor = next;
        if j["has_more"] == 0 {
            break;
        }
    }
    assert_eq!(all, f.collection());
    assert!(cursor.to_string().len() == 16, "16-digit cursor: {cursor}");
    // A body that is not the fields is rejected like a bad signature.
    let q = Query::cursor_page(common(), 0, 6);
    let url = url_of(&f.web_url(), "/aweme/v1/web/aweme/listcollection/", &q, SignatureParam::ABogus);
    let got = done(agent().post(&url).header("User-Agent", UA).header("Cookie", &cookie).send("{}"));
    assert!(got.body.is_empty());
    // The cookie expires.
    f.expire_cookie();
    assert_eq!(api(&f, "aweme/favorite/", q_fav(&f), Some(&cookie)).json()["status_code"], 8);
    f.cookie_failure(r#"{"status_code":2483,"status_msg":"login expired"}"#);
    assert_eq!(
        api(&f, "collects/list/", Query::cursor_page(common(), 0, 10), Some(&cookie)).json()["status_code"],
        2483
    );
    f.renew_cookie();
    assert_eq!(api(&f, "aweme/favorite/", q_fav(&f), Some(&cookie)).json()["status_code"], 0);
}

fn q_fav(f: &FakeDouyin) -> Query {
    Query::user_posts(common(), 0, 10, &f.sec_uid(0))
}

#[test]
fn the_home_feed_answers_pages_for_ever() {
    let f = FakeDouyin::start();
    let a = api(&f, "tab/feed/", Query::post_feed(common(), 10, 0), None).json();
    let b = api(&f, "tab/feed/", Query::post_feed(common(), 10, 1), None).json();
    assert_eq!((ids(&a["aweme_list"]).len(), a["has_more"].as_i64()), (10, Some(1)));
    assert_ne!(ids(&a["aweme_list"]), ids(&b["aweme_list"]));
}

#[test]
fn the_cdn_serves_head_range_and_falls_back_past_an_expired_first_url() {
    let f = FakeDouyin::start();
    let id = f.works(&f.sec_uid(0))[0].clone();
    let want = asset_bytes(&id, Asset::Video);
    let urls = f.video_urls(&id);
    let head = done(agent().head(&urls[0]).call());
    assert_eq!(head.header("content-length"), Some(want.len().to_string().as_str()));
    assert_eq!(done(agent().get(&urls[1]).call()).body, want);
    let part = done(agent().get(&urls[0]).header("Range", "bytes=100-").call());
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-{}/{}", want.len() - 1, want.len()).as_str())
    );
    assert_eq!(part.body, want[100..]);
    let bad = done(agent().get(&urls[0]).header("Range", &format!("bytes={}-", want.len())).call());
    assert_eq!(bad.status, 416);
    // A URL with a bad signature is refused.
    assert_eq!(done(agent().get(&urls[0].replace("x-signature=", "x-signature=0")).call()).status, 403);
    // The decoy serves other bytes.
    let d = api(&f, "aweme/detail/", Query::post_detail(common(), &id), None).json();
    let wm = d["aweme_detail"]["video"]["play_addr"]["url_list"][0].as_str().expect("decoy").to_string();
    let wm_bytes = done(agent().get(&wm).call()).body;
    assert_eq!(wm_bytes, asset_bytes(&id, Asset::Watermarked));
    assert_ne!(wm_bytes, want);
    // Expired first URLs: 403, the second one works.
    f.expire_primary_urls(true);
    let urls = f.video_urls(&id);
    assert_eq!(done(agent().get(&urls[0]).call()).status, 403);
    assert_eq!(done(agent().get(&urls[1]).call()).body, want);
    // HEAD, the two ranges, the bad signature and the expired one.
    assert_eq!(f.url_hits(&urls[0]), 5);
    assert!(f.media_bytes() >= 2 * want.len() as u64);
    assert_eq!(d["aweme_detail"]["video"]["bit_rate"][0]["play_addr"]["data_size"], want.len());
    f.media_latency(Duration::from_millis(120));
    let t = Instant::now();
    assert_eq!(done(agent().get(&urls[1]).call()).body, want);
    assert!(t.elapsed() >= Duration::from_millis(120), "{:?}", t.elapsed());
}

#[test]
fn cdn_faults_hit_one_url() {
    let f = FakeDouyin::start();
    let id = f.works(&f.sec_uid(0))[0].clone();
    let want = asset_bytes(&id, Asset::Video);
    let url = f.video_urls(&id)[1].clone();
    f.cdn_fault_times(&url, Fault::Empty, 1);
    let got = done(agent().get(&url).call());
    assert_eq!((got.status, got.body.len()), (200, 0));
    f.cdn_fault_times(&url, Fault::Expired, 1);
    assert_eq!(done(agent().get(&url).call()).status, 403);
    f.cdn_fault_times(&url, Fault::ResetAfter(1000), 1);
    let r = agent().get(&url).call().expect("head arrives");
    assert!(r.into_body().read_to_vec().is_err(), "cut mid-body");
    // What a resuming client does next: the rest, by Range.
    let rest = done(agent().get(&url).header("Range", "bytes=1000-").call());
    assert_eq!((rest.status, [&want[..1000], &rest.body[..]].concat()), (206, want.clone()));
    f.cdn_fault_times(&url, Fault::Drip(200_000), 1);
    let t = Instant::now();
    assert_eq!(done(agent().get(&url).call()).body, want);
    assert!(t.elapsed() >= Duration::from_millis(150), "{:?}", t.elapsed());
    f.cdn_fault(&url, Fault::Status(503));
    assert_eq!(done(agent().get(&url).call()).status, 503);
    f.clear_faults();
    assert_eq!(done(agent().get(&url).call()).body, want);
    assert_eq!(f.url_hits(&url), 7);
}

#[test]
fn short_links_redirect_twice_to_pages_the_id_rules_read() {
    let f = FakeDouyin::start();
    let port = f.server().port();
    let hosts = Hosts { short: vec![format!("127.0.0.1:{port}")], web: vec![format!("127.0.0.1:{port}")] };
    let follow = |link: &str| {
        let mut url = link.to_string();
        for hop in 0..5 {
            let got = done(no_redirects().get(&url).call());
            match got.status {
                302 => url = got.header("location").expect("Location").to_string(),
                200 => return (url, hop),
                s => panic!("{s} at {url}"),
            }
        }
        panic!("too many redirects");
    };
    let sec = f.sec_uid(0);
    let id = f.works(&sec)[0].clone();
    let (end, hops) = follow(&f.short_link_work(&id).expect("link"));
    assert_eq!(hops, 2);
    assert_eq!(id_in_url(&end, Wanted::Aweme, &hosts), Ok(DouyinId::Aweme(id)));
    let (end, _) = follow(&f.short_link_user(&sec).expect("link"));
    assert!(end.contains("sec_uid="), "{end}");
    assert_eq!(id_in_url(&end, Wanted::User, &hosts), Ok(DouyinId::SecUser(sec)));
    let (end, _) = follow(&f.short_link_mix());
    assert_eq!(id_in_url(&end, Wanted::Mix, &hosts), Ok(DouyinId::Mix(f.mix_id())));
    let (end, _) = follow(&f.short_link_live(0));
    assert_eq!(id_in_url(&end, Wanted::Live, &hosts), Ok(DouyinId::RoomId(f.live_room().1)));
    let (web_rid, _) = f.live_room();
    assert_eq!(done(agent().get(&format!("{}/{web_rid}", f.live_url())).call()).status, 200);
    assert_eq!(done(no_redirects().get(&format!("{}/nosuch/", f.short_url())).call()).status, 404);
    assert!(f.requests("short") >= 5);
}

#[test]
fn requests_are_routed_by_host_header_too() {
    let f = FakeDouyin::start();
    let id = f.works(&f.sec_uid(0))[0].clone();
    let q = Query::post_detail(common(), &id);
    let url = url_of(&f.base_url(), "/aweme/v1/web/aweme/detail/", &q, SignatureParam::ABogus);
    let got = done(agent().get(&url).header("Host", "www.douyin.com").header("User-Agent", UA).call());
    assert_eq!(got.json()["aweme_detail"]["aweme_id"], id.as_str());
    let code = f.short_link_work(&id).expect("link").rsplit('/').nth(1).expect("code").to_string();
    let got =
        done(no_redirects().get(&format!("{}/{code}", f.base_url())).header("Host", "v.douyin.com").call());
    assert_eq!(got.status, 302);
    let got = done(
        agent().get(&format!("{}/cdn/v1/x/video.mp4", f.base_url())).header("Host", "www.douyin.com").call(),
    );
    assert_eq!(got.status, 404, "Douyin hosts have no /cdn");
    let body = r#"{"magic":538969122,"version":1,"dataType":8,"strData":"x","tspFromClient":1}"#;
    let got = done(
        agent()
            .post(&format!("{}/web/report", f.base_url()))
            .header("Host", "mssdk.bytedance.com")
            .send(body),
    );
    assert!(got.header("set-cookie").is_some_and(|c| c.starts_with("msToken=")));
    let (web_rid, _) = f.live_room();
    let got =
        done(agent().get(&format!("{}/{web_rid}", f.base_url())).header("Host", "live.douyin.com").call());
    assert_eq!(got.status, 200);
}

#[test]
fn live_rooms_and_a_sliding_playlist_that_ends_with_404() {
    let f = FakeDouyin::start();
    f.hls_refreshes(4);
    let (web_rid, room_id) = f.live_room();
    let q = Query::live_enter(Query::live(&ClientProfile::default()), &web_rid);
    let url = url_of(&f.live_url(), "/webcast/room/web/enter/", &q, SignatureParam::ABogus);
    let j = get_ua(&url, UA, Some("")).json();
    let room = &j["data"]["data"][0];
    assert_eq!((room["status"].as_i64(), room["id_str"].as_str()), (Some(2), Some(room_id.as_str())));
    let hls = room["stream_url"]["hls_pull_url_map"]["FULL_HD1"].as_str().expect("hls").to_string();
    let mut sequences = Vec::new();
    for _ in 0..4 {
        let got = done(agent().get(&hls).call());
        assert_eq!(got.status, 200);
        let text = got.text();
        assert!(text.contains("#EXT-X-TARGETDURATION:1") && !text.contains("#EXT-X-ENDLIST"), "{text}");
        let seq: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
            .and_then(|v| v.parse().ok())
            .expect("media sequence");
        let first = text.lines().find(|l| l.ends_with(".ts")).expect("segment");
        let seg_url = format!("{}/{first}", hls.rsplit_once('/').expect("dir").0);
        assert_eq!(done(agent().get(&seg_url).call()).body, segment_bytes(&room_id, "FULL_HD1", seq));
        sequences.push(seq);
    }
    assert_eq!(sequences, [0, 1, 2, 3]);
    assert_eq!(done(agent().get(&hls).call()).status, 404);
    f.restart_live();
    assert!(done(agent().get(&hls).call()).text().contains("#EXT-X-MEDIA-SEQUENCE:0"));
    // FLV: a body that ends after N bytes.
    f.flv_length(10_000);
    let flv = room["stream_url"]["flv_pull_url"]["HD1"].as_str().expect("flv");
    let got = done(agent().get(flv).call());
    assert_eq!((got.body.len(), &got.body[..3]), (10_000, &b"FLV"[..]));
    // The ended room, and the app room id through reflow/info.
    let (ended, ended_room) = f.ended_room();
    let q = Query::live_enter(Query::live(&ClientProfile::default()), &ended);
    let j = get_ua(&url_of(&f.live_url(), "/webcast/room/web/enter/", &q, SignatureParam::ABogus), UA, None)
        .json();
    assert_eq!(j["data"]["data"][0]["status"], 4);
    assert!(j["data"]["data"][0]["stream_url"].is_null());
    let q = Query::reflow_info("verify_fake", &ended_room);
    let j = get_ua(
        &url_of(&f.webcast_url(), "/webcast/room/reflow/info/", &q, SignatureParam::ABogus),
        UA,
        Some(""),
    )
    .json();
    assert_eq!(
        (j["data"]["room"]["status"].as_i64(), j["data"]["room"]["owner"]["web_rid"].as_str()),
        (Some(4), Some(ended.as_str()))
    );
    // Unsigned live calls get the empty body too.
    let got =
        get_ua(&format!("{}/webcast/room/web/enter/?{}", f.live_url(), q.encode().expect("q")), UA, None);
    assert!(got.body.is_empty());
    assert_eq!(f.requests("hls"), 6);
}

#[test]
fn the_token_endpoints_set_their_cookies() {
    let f = FakeDouyin::start();
    let body = r#"{"magic":538969122,"version":1,"dataType":8,"strData":"x","tspFromClient":1700000000000}"#;
    let got = done(agent().post(&f.ms_token_url()).header("User-Agent", UA).send(body));
    let cookie = got.header("set-cookie").expect("Set-Cookie").to_string();
    let token = cookie.strip_prefix("msToken=").and_then(|c| c.split(';').next()).expect("msToken");
    assert_eq!(token.len(), 128);
    assert!(Query::new().text("msToken", token).encode().is_ok(), "query-safe");
    f.ms_token_unavailable(true);
    assert!(done(agent().post(&f.ms_token_url()).send(body)).header("set-cookie").is_none());
    let got = done(agent().post(&f.ttwid_url()).send(spoolfetch::providers::douyin::sign::TTWID_BODY));
    assert!(got.header("set-cookie").is_some_and(|c| c.starts_with("ttwid=1%7C")));
    let got = done(
        agent()
            .post(&format!("{}?aid=6383&sdk_version=5.1.18_zip&device_platform=web", f.webid_url()))
            .send(r#"{"app_id":6383,"referer":"","url":"","user_agent":"","user_unique_id":""}"#),
    );
    assert!(got.json()["web_id"].as_str().is_some_and(|w| w.len() == 19));
    assert_eq!((f.requests("ms_token"), f.requests("ttwid"), f.requests("webid")), (2, 1, 1));
    // The faults: down, and a token of a length the site never issues.
    f.ms_token_unavailable(false);
    f.ms_token_fault(Some(TokenFault::Down));
    assert_eq!(done(agent().post(&f.ms_token_url()).send(body)).status, 503);
    f.ms_token_fault(Some(TokenFault::WrongLength));
    let got = done(agent().post(&f.ms_token_url()).send(body));
    let short =
        got.header("set-cookie").and_then(|c| c.strip_prefix("msToken=")).and_then(|c| c.split(';').next());
    assert_eq!(short.map(str::len), Some(64));
    assert_eq!(f.ms_tokens().last().map(String::len), Some(64));
}

#[test]
fn the_qr_login_follows_its_script_and_its_redirect_sets_the_login_cookie() {
    let f = FakeDouyin::start();
    f.sso_script(&[&["1", "5"], &["2", "3"]]);
    let fp = "verify_loyw3vg4_AbCdEfGh_IjKl_4MnO_8pQr_StUvWxYz0123";
    let block = "service=https://www.douyin.com&need_logo=false&need_short_url=true&device_platform=web_app\
                 &aid=6383&account_sdk_source=sso&sdk_version=2.2.7-beta.6&language=zh";
    let code = |f: &FakeDouyin| {
        get_ua(&format!("{}/get_qrcode/?{block}&verifyFp={fp}&fp={fp}", f.sso_url()), UA, None).json()
    };
    let check = |f: &FakeDouyin, token: &str| {
        get_ua(
            &format!("{}/check_qrconnect/?{block}&token={token}&verifyFp={fp}&fp={fp}", f.sso_url()),
            UA,
            None,
        )
    };
    let first = code(&f);
    let t0 = first["data"]["token"].as_str().expect("token").to_string();
    assert!(first["data"]["qrcode_index_url"].as_str().is_some_and(|u| u.ends_with(&t0)));
    let states: Vec<String> =
        (0..3).map(|_| check(&f, &t0).json()["data"]["status"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(states, ["1", "5", "5"], "the last state repeats");
    let t1 = code(&f)["data"]["token"].as_str().expect("token").to_string();
    assert_ne!(t0, t1);
    assert_eq!(check(&f, &t1).json()["data"]["status"], "2");
    let done3 = check(&f, &t1);
    assert_eq!(done3.json()["data"]["status"], "3");
    let csrf = done3.header("set-cookie").expect("a cookie with the confirmation").to_string();
    let redirect = done3.json()["data"]["redirect_url"].as_str().expect("redirect").to_string();
    // The callback wants the confirmation's cookie, then sets the login.
    let r = no_redirects().get(&redirect).call().expect("callback");
    assert_eq!(r.status().as_u16(), 403, "not without the confirmation's cookie");
    let r = no_redirects()
        .get(&redirect)
        .header("Cookie", csrf.split(';').next().unwrap_or(""))
        .call()
        .expect("callback");
    assert_eq!(r.status().as_u16(), 302);
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    assert!(
        set.iter().any(|c| c.starts_with(&format!("sessionid={}", crate::support::douyin::SESSION_ID))),
        "{set:?}"
    );
    assert!(r.headers().get("location").is_some());
    // A token it never handed out, or a missing verifyFp, is refused.
    assert_eq!(check(&f, "nope").json()["error_code"], 2);
    let bare = get_ua(&format!("{}/get_qrcode/?{block}", f.sso_url()), UA, None).json();
    assert_eq!(bare["error_code"], 1001);
    assert_eq!((f.requests("sso_qrcode"), f.requests("sso_check")), (3, 6));
}

#[test]
fn storms_rate_limits_gateway_blocks_and_latency() {
    let f = FakeDouyin::start();
    let id = f.works(&f.sec_uid(0))[0].clone();
    let call = || api(&f, "aweme/detail/", Query::post_detail(common(), &id), None);
    f.empty_body_storm(2);
    assert!(call().body.is_empty() && call().body.is_empty());
    assert_eq!(call().json()["status_code"], 0);
    f.status_code_storm(1, 2154);
    assert_eq!(call().json()["status_code"], 2154);
    f.gateway_403(1);
    assert_eq!(call().status, 403);
    f.rate_limit_every(2);
    let statuses: Vec<u16> = (0..4).map(|_| call().status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2, "{statuses:?}");
    f.rate_limit_every(0);
    f.api_latency(Duration::from_millis(150));
    let t = Instant::now();
    assert_eq!(call().status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(f.api_calls(), 10);
    assert!(f.rejections().is_empty());
}

#[test]
fn fixtures_scale_with_the_options() {
    let f = FakeDouyin::start_with(Options { users: 2, works_per_user: 3, ..Options::default() });
    assert_eq!(f.works(&f.sec_uid(1)).len(), 3);
    assert!(f.sec_uid(2).is_empty());
}

/// Sends `target` exactly as recorded (no URL parsing, so F2's raw `{}`
/// goes out as F2 sent it); answers (status, body).
fn send_raw(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &str,
) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").expect("head");
    let status = String::from_utf8_lossy(&out[9..12]).parse().expect("status");
    (status, out[split + 4..].to_vec())
}

#[test]
fn f2s_recorded_requests_are_all_accepted() {
    // Recorded by bench/oracles/douyin_f2.py: F2 0.0.1.7's DouyinCrawler
    // against examples/fake_douyin (default fixture), A-Bogus and X-Bogus.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/douyin/f2_0.0.1.7_requests.json");
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    let requests = fixture["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 24);
    let f = FakeDouyin::start();
    let port = f.server().port();
    for r in requests {
        let target = r["target"].as_str().expect("target");
        let headers: Vec<(String, String)> = r["headers"]
            .as_object()
            .expect("headers")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect();
        // A-Bogus carries the low 32 bits of its times: judge by then.
        f.signature_clock(r["at_ms"].as_u64());
        let (method, body) = (r["method"].as_str().expect("method"), r["body"].as_str().unwrap_or(""));
        let (status, got) = send_raw(port, method, target, &headers, body);
        assert_eq!(status, 200, "{target}");
        let j: Value = serde_json::from_slice(&got)
            .unwrap_or_else(|_| panic!("empty for {target}: {:?}", f.rejections()));
        assert_eq!(j["status_code"], 0, "{target}: {j}");
        // One byte changed in what was signed: the empty body.
        let tampered = target.replacen("?", "?x", 1);
        let (status, got) = send_raw(port, method, &tampered, &headers, body);
        assert_eq!((status, got.len()), (200, 0), "{tampered}");
        // The signature changed in one character: the empty body too.
        let at = target.rfind("a_bogus=").or_else(|| target.rfind("X-Bogus=")).expect("signed") + 8;
        let c = if &target[at..at + 1] == "A" { "B" } else { "A" };
        let tampered = format!("{}{c}{}", &target[..at], &target[at + 1..]);
        let (status, got) = send_raw(port, method, &tampered, &headers, body);
        assert_eq!((status, got.len()), (200, 0), "{tampered}");
    }
    assert_eq!(f.rejections().len(), 48);
    assert_eq!(f.bad_signatures(), 24);
    // F2 puts the feed's `{}` in raw, signed raw: the fake takes both forms.
    assert!(
        requests.iter().any(|r| r["target"].as_str().is_some_and(|t| t.contains("aweme_pc_rec_raw_data={}")))
    );
}

#[test]
fn hostile_parameters_never_make_the_fake_fail() {
    let f = FakeDouyin::start_with(Options { users: 2, works_per_user: 0, ..Options::default() });
    f.check_signatures(false);
    f.check_query(false);
    let web = f.web_url();
    for target in [
        "/aweme/v1/web/tab/feed/?count=-5&refresh_index=9223372036854775807",
        "/aweme/v1/web/aweme/post/?max_cursor=-9223372036854775808&count=99999&sec_user_id=%ZZ",
        "/aweme/v1/web/mix/aweme/?cursor=9223372036854775807&count=0&mix_id=",
        "/aweme/v1/web/aweme/detail/?aweme_id=../../etc/passwd",
        "/aweme/v1/web/nosuch/?a=b",
    ] {
        let got = done(agent().get(&format!("{web}{target}")).call());
        assert!(got.status == 200 || got.status == 404, "{target}: {}", got.status);
    }
    let base = f.base_url();
    for target in [
        "/nosuch/x",
        "/cdn/v1/1/video.mp4?x-expires=99999999999999999999",
        "/stream/1/FULL_HD1/x.ts",
        "/short/i",
    ] {
        let got = done(agent().get(&format!("{base}{target}")).header("Range", "bytes=9-1").call());
        assert!(got.status == 403 || got.status == 404, "{target}: {}", got.status);
    }
}
