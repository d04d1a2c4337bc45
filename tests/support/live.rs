//! A fake live server (loopback only): an HLS media playlist with a
//! sliding window over a timeline of segments, a master playlist over it,
//! and FLV streams scripted per connection.
//!
//! Segment `n` exists from `t0 + n × seg` (t0: the first playlist
//! request) and is listed, and served, while it is within the last
//! `window` segments; after the last one the playlist carries
//! `#EXT-X-ENDLIST`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::http::{Body, Handler, Request, Response, Server, lock};

/// The bytes of segment `n` (self-describing, so a recording can be
/// parsed back into its segments).
pub fn segment(n: u64) -> Vec<u8> {
    format!("segment {n:05}\n").repeat(200).into_bytes()
}

/// Splits a recording into its segment numbers, checking that it is made
/// of whole segments only.
pub fn segments_in(bytes: &[u8]) -> Vec<u64> {
    let one = segment(0).len();
    assert_eq!(bytes.len() % one, 0, "a recording of whole segments");
    bytes
        .chunks(one)
        .map(|c| {
            let text = String::from_utf8_lossy(&c[..14]).into_owned();
            let n: u64 = text.trim_start_matches("segment ").trim().parse().expect("a segment header");
            assert_eq!(c, segment(n).as_slice(), "segment {n} whole and intact");
            n
        })
        .collect()
}

struct State {
    t0: Option<Instant>,
    seg: Duration,
    total: u64,
    window: u64,
    /// Answers to give FLV connections, in order (the last repeats).
    flv: VecDeque<Response>,
    /// What to answer instead of the playlist, if set.
    playlist_override: Option<Response>,
    /// `/live/…` answers 403 once this long has passed since t0 (a signed
    /// URL that expired); `/live2/…` serves the same stream and does not.
    expire_after: Option<Duration>,
    /// The answer of `/api/fresh` (a fresh stream URL, or "over").
    fresh: Option<String>,
}

/// The running fake.
pub struct FakeLive {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl FakeLive {
    /// `total` segments of `seg` each, `window` of them listed at a time.
    pub fn start(seg: Duration, total: u64, window: u64) -> FakeLive {
        let state = Arc::new(Mutex::new(State {
            t0: None,
            seg,
            total,
            window: window.max(1),
            flv: VecDeque::new(),
            playlist_override: None,
            expire_after: None,
            fresh: None,
        }));
        let s = Arc::clone(&state);
        let handler: Handler = Arc::new(move |req: &Request| answer(&s, req));
        FakeLive { server: Server::start(handler), state }
    }

    /// The URL of `path` on the fake.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    /// Queues the answer to the next FLV connection.
    pub fn push_flv(&self, r: Response) {
        lock(&self.state).flv.push_back(r);
    }

    /// Makes `/live/…` answer 403 from `after` past the first playlist
    /// request on.
    pub fn expire_after(&self, after: Duration) {
        lock(&self.state).expire_after = Some(after);
    }

    /// What `/api/fresh` answers (JSON).
    pub fn fresh(&self, json: &str) {
        lock(&self.state).fresh = Some(json.to_string());
    }

    /// Answers `r` to every playlist request.
    pub fn override_playlist(&self, r: Response) {
        lock(&self.state).playlist_override = Some(r);
    }
}

fn answer(state: &Mutex<State>, req: &Request) -> Response {
    let mut s = lock(state);
    let path = req.path_only().to_string();
    if path == "/live.flv" {
        return match s.flv.len() {
            0 => Response::new(404),
            1 => s.flv.front().cloned().unwrap_or_else(|| Response::new(404)),
            _ => s.flv.pop_front().unwrap_or_else(|| Response::new(404)),
        };
    }
    if path == "/master.m3u8" {
        let body = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000\n/low/index.m3u8\n\
                    #EXT-X-STREAM-INF:BANDWIDTH=4000000,RESOLUTION=1920x1080\nlive/index.m3u8\n";
        return Response::text(200, body);
    }
    if path == "/api/fresh" {
        return match &s.fresh {
            Some(j) => Response::json(200, j),
            None => Response::new(404),
        };
    }
    let t0 = *s.t0.get_or_insert_with(Instant::now);
    let elapsed = t0.elapsed();
    if path.starts_with("/live/") && s.expire_after.is_some_and(|d| elapsed >= d) {
        return Response::text(403, "signature expired\n");
    }
    // `/live2/` is the same stream under a fresh URL.
    let path = path.replacen("/live2/", "/live/", 1);
    let made = ((elapsed.as_secs_f64() / s.seg.as_secs_f64()) as u64 + 1).min(s.total);
    let first = made.saturating_sub(s.window);
    if path == "/live/index.m3u8" {
        if let Some(r) = &s.playlist_override {
            return r.clone();
        }
        let mut p =
            format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
        for n in first..made {
            p.push_str(&format!("#EXTINF:{:.3},\nseg{n}.ts\n", s.seg.as_secs_f64()));
        }
        if made == s.total && elapsed >= s.seg * u32::try_from(s.total).unwrap_or(u32::MAX) {
            p.push_str("#EXT-X-ENDLIST\n");
        }
        return Response::new(200)
            .header("Content-Type", "application/vnd.apple.mpegurl")
            .with_body(Body::Bytes(p.into_bytes()));
    }
    if let Some(n) =
        path.strip_prefix("/live/seg").and_then(|r| r.strip_suffix(".ts")).and_then(|n| n.parse::<u64>().ok())
    {
        if n >= first && n < made {
            return Response::new(200).with_body(Body::Bytes(segment(n)));
        }
        return Response::new(404);
    }
    Response::new(404)
}
