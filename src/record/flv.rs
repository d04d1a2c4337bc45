//! Recording an FLV live stream: an endless body appended as it arrives.
//! A reconnect starts a new piece, because an FLV byte stream cannot be
//! spliced (its header and tag timestamps start again).

use std::io::Read;
use std::time::{Duration, Instant};

use super::hls::{end, sleep, stop};
use super::pool::{RecordTask, report};
use super::sink::{self, Sink};
use crate::download::Outcome;

/// Connections in a row that give nothing, after which the recording ends.
const MAX_FAILURES: u32 = 5;

/// Records `task` until the stream ends, a limit is reached or the job
/// stops.
pub(super) fn record(agent: &ureq::Agent, task: &RecordTask) -> Outcome {
    let state = sink::load(&task.dest);
    let resumed = state.is_some();
    let mut sink = match Sink::open(&task.dest, state.unwrap_or_default()) {
        Ok(s) => s,
        Err(reason) => return Outcome::Failed { reason },
    };
    if resumed && sink.piece_len() > 0 {
        // What the last run recorded stays as its own piece.
        log::info!("job {}: continuing the recording in a new piece", task.job);
        if let Err(reason) = sink.next_piece() {
            return Outcome::Failed { reason };
        }
    }
    let mut failures = 0u32;
    let mut reported = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if task.flags.halted() {
            return stop(sink);
        }
        let mut req = agent.get(&task.stream.url);
        for (k, v) in task.headers.iter() {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.call();
        let mut resp = match resp {
            Ok(r) if r.status() == 403 && task.refreshable => {
                return super::hls::expired(sink, "the stream URL answered HTTP 403");
            }
            Ok(r) if r.status() == 404 || r.status() == 410 => {
                return end(sink, &format!("the stream is over (HTTP {})", r.status().as_u16()), task);
            }
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                failures += 1;
                let why = format!("the stream answered HTTP {}", r.status().as_u16());
                if failures >= MAX_FAILURES || !sleep(task, Duration::from_secs(u64::from(failures))) {
                    return if task.flags.halted() { stop(sink) } else { end(sink, &why, task) };
                }
                continue;
            }
            Err(e) => {
                failures += 1;
                let why = crate::http::describe(&e);
                if failures >= MAX_FAILURES || !sleep(task, Duration::from_secs(u64::from(failures))) {
                    return if task.flags.halted() { stop(sink) } else { end(sink, &why, task) };
                }
                continue;
            }
        };
        let mut last = Instant::now();
        let mut got = 0u64;
        let mut reader = resp.body_mut().as_reader();
        let ended = loop {
            if task.flags.halted() {
                return stop(sink);
            }
            match reader.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    got += n as u64;
                    // FLV carries no segment durations: the wall clock is the
                    // recorded time.
                    let secs = last.elapsed().as_secs_f64();
                    last = Instant::now();
                    if let Err(reason) = sink.append(&buf[..n], secs) {
                        return Outcome::Failed { reason };
                    }
                    task.flags.add_bytes(n as u64);
                    if let Some(why) = super::hls::limit(task, &sink) {
                        return end(sink, &why, task);
                    }
                    if reported.elapsed() >= Duration::from_secs(2) {
                        report(task, sink.state.secs, sink.state.bytes);
                        reported = Instant::now();
                    }
                }
                Err(e) => {
                    log::warn!("job {}: the stream broke off ({e}); reconnecting in a new piece", task.job);
                    break false;
                }
            }
        };
        if ended {
            return end(sink, "the stream ended", task);
        }
        failures = if got > 0 { 0 } else { failures + 1 };
        if failures >= MAX_FAILURES {
            return end(sink, "the stream broke off repeatedly without sending anything", task);
        }
        if sink.piece_len() > 0
            && let Err(reason) = sink.next_piece()
        {
            return Outcome::Failed { reason };
        }
    }
}
