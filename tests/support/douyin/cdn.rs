//! The fake CDN: deterministic bytes per (aweme, asset) ([`asset_bytes`]),
//! signed expiring URLs, `HEAD` with `Content-Length`, `GET` with `Range`
//! (206 and `Content-Range`), per-URL faults, and the decoy watermarked
//! `playwm` URL that serves other bytes.
//!
//! Owns the media URL shape: `{base}/cdn/<mirror>/<id>/<asset>?x-expires=
//! <unix>&x-signature=<hex>`. The signature is the fake's own (sha256 of a
//! key, the path and the expiry); a URL with a wrong signature or a past
//! expiry answers 403, as Douyin's CDN does for a stale `url_list`.

use std::sync::Mutex;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::state::{Fault, State};
use crate::support::http::{Body, Request, Response, lock};

/// One downloadable file of a work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Asset {
    /// The video (`bit_rate[0].play_addr.url_list`).
    Video,
    /// The watermarked decoy (`video.play_addr`, `playwm`).
    Watermarked,
    /// Image `i` of an image post.
    Image(usize),
    /// The live-photo clip of image `i`.
    LiveClip(usize),
    /// The music.
    Music,
    /// The jpeg cover (`origin_cover`).
    Cover,
    /// The webp cover (`animated_cover`).
    AnimatedCover,
    /// A user's avatar (keyed by uid).
    Avatar,
}

impl Asset {
    /// The file name in the URL.
    pub fn name(self) -> String {
        match self {
            Asset::Video => "video.mp4".into(),
            Asset::Watermarked => "playwm.mp4".into(),
            Asset::Image(i) => format!("image-{i}.webp"),
            Asset::LiveClip(i) => format!("live-{i}.mp4"),
            Asset::Music => "music.mp3".into(),
            Asset::Cover => "cover.jpeg".into(),
            Asset::AnimatedCover => "cover.webp".into(),
            Asset::Avatar => "avatar.jpeg".into(),
        }
    }

    /// The asset a file name names.
    pub fn parse(name: &str) -> Option<Asset> {
        let num = |p: &str, s: &str| name.strip_prefix(p)?.strip_suffix(s)?.parse::<usize>().ok();
        Some(match name {
            "video.mp4" => Asset::Video,
            "playwm.mp4" => Asset::Watermarked,
            "music.mp3" => Asset::Music,
            "cover.jpeg" => Asset::Cover,
            "cover.webp" => Asset::AnimatedCover,
            "avatar.jpeg" => Asset::Avatar,
            _ => {
                if let Some(i) = num("image-", ".webp") {
                    Asset::Image(i)
                } else {
                    Asset::LiveClip(num("live-", ".mp4")?)
                }
            }
        })
    }
}

/// The bytes of `asset` of `aweme_id` (for an avatar: of the uid), the
/// same from every mirror. Sizes vary with the id (tens of KiB for a
/// video); each starts with its format's magic so type sniffers agree.
pub fn asset_bytes(aweme_id: &str, asset: Asset) -> Vec<u8> {
    let (mut x, len, magic) = asset_shape(aweme_id, asset);
    let mut out = Vec::with_capacity(len + 8);
    out.extend_from_slice(magic);
    while out.len() < len {
        // splitmix64: fast and deterministic.
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The length of [`asset_bytes`], without making them (list answers
/// carry `data_size`).
pub fn asset_len(aweme_id: &str, asset: Asset) -> usize {
    asset_shape(aweme_id, asset).1
}

/// (seed, length, magic) of an asset.
fn asset_shape(aweme_id: &str, asset: Asset) -> (u64, usize, &'static [u8]) {
    let seed = Sha256::new()
        .chain_update(b"spoolfetch-fake-douyin\0")
        .chain_update(aweme_id.as_bytes())
        .chain_update([0])
        .chain_update(asset.name().as_bytes())
        .finalize();
    let x = u64::from_le_bytes([seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7]]);
    let (magic, base, spread): (&[u8], usize, usize) = match asset {
        Asset::Video | Asset::Watermarked => (b"\x00\x00\x00\x18ftypmp42", 48 * 1024, 16 * 1024),
        Asset::LiveClip(_) => (b"\x00\x00\x00\x18ftypmp42", 20 * 1024, 8 * 1024),
        Asset::Image(_) | Asset::AnimatedCover => (b"RIFF\x00\x00\x00\x00WEBPVP8 ", 6 * 1024, 4 * 1024),
        Asset::Music => (b"ID3\x04\x00\x00", 12 * 1024, 4 * 1024),
        Asset::Cover | Asset::Avatar => (b"\xff\xd8\xff\xe0\x00\x10JFIF", 3 * 1024, 1024),
    };
    (x, base + (x as usize % spread), magic)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn url_signature(path: &str, expires: u64) -> String {
    let d = Sha256::new()
        .chain_update(b"fake-cdn-key\0")
        .chain_update(path.as_bytes())
        .chain_update(expires.to_string().as_bytes())
        .finalize();
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A signed media URL (`expired`: already past its expiry).
pub fn url(s: &State, mirror: &str, id: &str, asset: Asset, expired: bool) -> String {
    let path = format!("/cdn/{mirror}/{id}/{}", asset.name());
    let expires = if expired { unix_now().saturating_sub(60) } else { unix_now() + 3600 };
    format!("{}{path}?x-expires={expires}&x-signature={}", s.base, url_signature(&path, expires))
}

/// The key of a URL in the fault and hit tables: its path (with the area
/// prefix), without scheme, host or query.
pub fn fault_key(url: &str) -> String {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    let path = match rest {
        Some(r) => r.find('/').map_or("/", |i| &r[i..]),
        None => url,
    };
    path.split('?').next().unwrap_or("").to_string()
}

/// Serves `body` for `req`: HEAD gets the length, `Range` a 206, faults
/// and media latency applied, bytes counted.
pub fn serve(state: &Mutex<State>, req: &Request, key: &str, body: Vec<u8>, ctype: &str) -> Response {
    let (latency, fault) = {
        let mut s = lock(state);
        *s.url_hits.entry(key.to_string()).or_default() += 1;
        let fault = match s.faults.get_mut(key) {
            Some(rule) => match rule.left {
                Some(0) => None,
                Some(ref mut n) => {
                    *n -= 1;
                    Some(rule.fault)
                }
                None => Some(rule.fault),
            },
            None => None,
        };
        (s.media_latency, fault)
    };
    if !latency.is_zero() {
        thread::sleep(latency);
    }
    match fault {
        Some(Fault::Expired) => return Response::text(403, "Forbidden: URL expired\n"),
        Some(Fault::Status(code)) => return Response::text(code, "fault\n"),
        Some(Fault::Empty) => return Response::new(200).header("Content-Type", ctype),
        _ => {}
    }
    let total = body.len();
    let mut resp = match req.header("range").map(|r| parse_range(r, total)) {
        None => Response::new(200).with_body(Body::Bytes(body)),
        Some(Some((a, b))) => Response::new(206)
            .header("Content-Range", &format!("bytes {a}-{b}/{total}"))
            .with_body(Body::Bytes(body[a..=b].to_vec())),
        Some(None) => {
            return Response::new(416).header("Content-Range", &format!("bytes */{total}"));
        }
    };
    resp = resp.header("Content-Type", ctype).header("Accept-Ranges", "bytes");
    if req.method != "HEAD" {
        lock(state).media_bytes += resp.body.len() as u64;
    }
    match fault {
        Some(Fault::ResetAfter(n)) => resp.truncate_after(n),
        Some(Fault::Drip(rate)) => resp.drip(rate),
        _ => resp,
    }
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → inclusive bounds; `None` when
/// unsatisfiable (a malformed header counts as unsatisfiable too).
pub fn parse_range(header: &str, total: usize) -> Option<(usize, usize)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if total == 0 {
        return None;
    }
    if a.is_empty() {
        let n: usize = b.parse().ok()?;
        return (n > 0).then(|| (total - n.min(total), total - 1));
    }
    let a: usize = a.parse().ok()?;
    let b: usize = if b.is_empty() { total - 1 } else { b.parse::<usize>().ok()?.min(total - 1) };
    (a <= b && a < total).then_some((a, b))
}

fn content_type(asset: Asset) -> &'static str {
    match asset {
        Asset::Video | Asset::Watermarked | Asset::LiveClip(_) => "video/mp4",
        Asset::Image(_) | Asset::AnimatedCover => "image/webp",
        Asset::Music => "audio/mpeg",
        Asset::Cover | Asset::Avatar => "image/jpeg",
    }
}

/// `/cdn/<mirror>/<id>/<asset>?x-expires=…&x-signature=…`.
pub fn handle(state: &Mutex<State>, req: &Request, path: &str) -> Response {
    let key = format!("/cdn{path}");
    lock(state).count("cdn", super::logged(req, "cdn", path));
    if req.method != "GET" && req.method != "HEAD" {
        return Response::text(405, "method not allowed\n");
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (id, asset) = match parts.as_slice() {
        [_, id, name] => match Asset::parse(name) {
            Some(a) => (id.to_string(), a),
            None => return Response::text(404, "no such object\n"),
        },
        _ => return Response::text(404, "no such object\n"),
    };
    let expires: u64 = req.query("x-expires").and_then(|e| e.parse().ok()).unwrap_or(0);
    let sig = req.query("x-signature").unwrap_or_default();
    if sig != url_signature(&key, expires) || expires < unix_now() {
        // Count the hit even so: fallback tests look at it.
        *lock(state).url_hits.entry(key).or_default() += 1;
        return Response::text(403, "Forbidden: URL expired or badly signed\n");
    }
    let known = {
        let s = lock(state);
        s.by_id.contains_key(&id) || (asset == Asset::Avatar && s.users.iter().any(|u| u.uid == id))
    };
    if !known {
        return Response::text(404, "no such object\n");
    }
    serve(state, req, &key, asset_bytes(&id, asset), content_type(asset))
}

/// The decoy `…/aweme/v1/playwm/?video_id=v0200fg<id>`: the watermarked
/// file, with a redirect-free 200 (a client that saves it saves the wrong
/// bytes).
pub fn playwm(state: &Mutex<State>, req: &Request) -> Response {
    lock(state).count("playwm", super::logged(req, "web", req.path_only()));
    let id = req.query("video_id").unwrap_or_default();
    let id = id.strip_prefix("v0200fg").unwrap_or(&id).to_string();
    if !lock(state).by_id.contains_key(&id) {
        return Response::text(404, "no such video\n");
    }
    let key = format!("/web/aweme/v1/playwm/{id}");
    serve(state, req, &key, asset_bytes(&id, Asset::Watermarked), "video/mp4")
}
