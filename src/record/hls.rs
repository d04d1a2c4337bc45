//! Recording an HLS live playlist: poll at the target duration, append
//! new segments in media-sequence order to one growing file.

use std::io::Read;
use std::time::{Duration, Instant};

use m3u8_rs::Playlist;

use super::pool::{RecordTask, report};
use super::sink::{self, Sink};
use crate::download::Outcome;

/// Largest playlist or segment read into memory.
const MAX_BODY: u64 = 64 << 20;

/// Failed playlist fetches in a row after which the recording ends.
const MAX_FAILURES: u32 = 6;

/// Records `task` until the stream ends, a limit is reached or the job
/// stops.
pub(super) fn record(agent: &ureq::Agent, task: &RecordTask) -> Outcome {
    let state = sink::load(&task.dest).unwrap_or_default();
    let mut sink = match Sink::open(&task.dest, state) {
        Ok(s) => s,
        Err(reason) => return Outcome::Failed { reason },
    };
    if let Some(next) = sink.state.next_seq {
        log::info!(
            "job {}: continuing the recording at segment {next} ({:.0} s so far)",
            task.job,
            sink.state.secs
        );
    }
    let mut playlist = task.stream.url.clone();
    let mut failures = 0u32;
    let mut advanced = Instant::now();
    let mut reported = Instant::now();
    loop {
        if task.flags.halted() {
            return stop(sink);
        }
        let answer = get(agent, &playlist, task);
        let trouble = match &answer {
            Ok((status @ (404 | 410), _)) => {
                return end(sink, &format!("the stream is over (the playlist answered HTTP {status})"), task);
            }
            Ok((403, _)) if task.refreshable => return expired(sink, "the playlist URL answered HTTP 403"),
            Ok((200..=299, _)) => None,
            Ok((status, _)) => Some(format!("the playlist answered HTTP {status}")),
            Err(reason) => Some(format!("the playlist could not be fetched: {reason}")),
        };
        if let Some(why) = trouble {
            failures += 1;
            if failures >= MAX_FAILURES {
                return end(sink, &format!("{why} ({failures} times in a row)"), task);
            }
            if !sleep(task, Duration::from_secs(u64::from(failures))) {
                return stop(sink);
            }
            continue;
        }
        let Ok((_, body)) = answer else { continue };
        failures = 0;
        let media = match m3u8_rs::parse_playlist_res(&body) {
            Ok(Playlist::MasterPlaylist(m)) => {
                // The best variant; a master playlist names no segments.
                let Some(v) = m.variants.iter().filter(|v| !v.is_i_frame).max_by_key(|v| v.bandwidth) else {
                    return end(sink, "the master playlist lists no variant", task);
                };
                playlist = crate::download::resolve_url(&playlist, &v.uri);
                continue;
            }
            Ok(Playlist::MediaPlaylist(p)) => p,
            Err(_) => return end(sink, "the stream sent something that is not an HLS playlist", task),
        };
        if media.segments.iter().any(|s| s.key.as_ref().is_some_and(|k| k.method != m3u8_rs::KeyMethod::None))
        {
            return end(sink, "the stream is encrypted (EXT-X-KEY), which is not recorded", task);
        }
        let first = media.media_sequence;
        let next = sink.state.next_seq.unwrap_or(first);
        if first > next {
            let gap = first - next;
            log::warn!(
                "job {}: {gap} segments slid out of the playlist before they were recorded (a gap in the recording)",
                task.job
            );
            sink.state.gaps += gap;
            sink.state.next_seq = Some(first);
        }
        for (k, seg) in media.segments.iter().enumerate() {
            let seq = first + k as u64;
            if seq < sink.state.next_seq.unwrap_or(first) {
                continue;
            }
            if task.flags.halted() {
                return stop(sink);
            }
            let url = crate::download::resolve_url(&playlist, &seg.uri);
            match get(agent, &url, task) {
                Ok((200..=299, bytes)) => {
                    // The next number first: a checkpoint inside `append`
                    // then records the bytes and the number together.
                    sink.state.next_seq = Some(seq + 1);
                    if let Err(reason) = sink.append(&bytes, f64::from(seg.duration.max(0.0))) {
                        return Outcome::Failed { reason };
                    }
                    task.flags.add_bytes(bytes.len() as u64);
                    advanced = Instant::now();
                }
                Ok((404 | 410, _)) => {
                    log::warn!("job {}: segment {seq} is gone (a gap in the recording)", task.job);
                    sink.state.gaps += 1;
                    sink.state.next_seq = Some(seq + 1);
                }
                // Tried again at the next look at the playlist.
                Ok(_) | Err(_) => break,
            }
            if let Some(why) = limit(task, &sink) {
                return end(sink, &why, task);
            }
            if reported.elapsed() >= Duration::from_secs(2) {
                report(task, sink.state.secs, sink.state.bytes);
                reported = Instant::now();
            }
        }
        if media.end_list {
            return end(sink, "the stream ended", task);
        }
        let target = Duration::from_secs(media.target_duration.clamp(1, 10));
        let stalled = (target * 6).max(Duration::from_secs(10));
        if advanced.elapsed() > stalled {
            let s = advanced.elapsed().as_secs();
            return end(sink, &format!("the playlist stopped advancing for {s} s"), task);
        }
        if !sleep(task, target) {
            return stop(sink);
        }
    }
}

/// The limit the recording reached, if any.
pub(super) fn limit(task: &RecordTask, sink: &Sink) -> Option<String> {
    if let Some(max) = task.stream.max_secs
        && sink.state.secs >= max as f64
    {
        return Some(format!("reached max_duration_s ({max} s)"));
    }
    if let Some(max) = task.stream.max_bytes
        && sink.state.bytes >= max
    {
        return Some(format!("reached the byte limit ({max} bytes)"));
    }
    None
}

/// The recording is over: what was recorded gets its final name.
pub(super) fn end(sink: Sink, why: &str, task: &RecordTask) -> Outcome {
    if sink.state.bytes == 0 {
        let reason = format!("{why}, before anything was recorded");
        let _ = sink.finish();
        return Outcome::Failed { reason };
    }
    let secs = sink.state.secs;
    let gaps = sink.state.gaps;
    match sink.finish() {
        Ok(bytes) => {
            let gaps = if gaps > 0 { format!(", {gaps} segments missing") } else { String::new() };
            log::info!("job {}: recording ended: {why} ({secs:.0} s, {bytes} bytes{gaps})", task.job);
            Outcome::Done { bytes, already: false, saved_as: None }
        }
        Err(reason) => Outcome::Failed { reason },
    }
}

/// The stream URL expired: everything recorded is made durable and kept,
/// and the runner asks the provider for a fresh URL (or whether the
/// stream is over).
pub(super) fn expired(mut sink: Sink, reason: &str) -> Outcome {
    if let Err(e) = sink.checkpoint() {
        log::warn!("{e}");
    }
    Outcome::Expired { reason: reason.to_string() }
}

/// The provider said the stream is over: what was recorded gets its
/// final name.
pub(super) fn finish_now(task: &RecordTask) -> Outcome {
    let state = sink::load(&task.dest).unwrap_or_default();
    match Sink::open(&task.dest, state) {
        Ok(s) => end(s, "the provider says the stream is over", task),
        Err(reason) => Outcome::Failed { reason },
    }
}

/// The job stops: everything recorded is made durable and kept for the
/// next start.
pub(super) fn stop(mut sink: Sink) -> Outcome {
    if let Err(e) = sink.checkpoint() {
        log::warn!("{e}");
    }
    Outcome::Interrupted
}

/// Sleeps `d` unless the job stops meanwhile; false when it did.
pub(super) fn sleep(task: &RecordTask, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if task.flags.halted() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())));
    }
    !task.flags.halted()
}

/// GETs `url` and reads the whole body (up to [`MAX_BODY`]).
fn get(agent: &ureq::Agent, url: &str, task: &RecordTask) -> Result<(u16, Vec<u8>), String> {
    let mut req = agent.get(url);
    for (k, v) in task.headers.iter() {
        req = req.header(k.as_str(), v.as_str());
    }
    let mut resp = req
        .config()
        .timeout_global(Some(task.timeout * 2))
        .build()
        .call()
        .map_err(|e| crate::http::describe(&e))?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(MAX_BODY)
        .read_to_end(&mut body)
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok((status, body))
}
