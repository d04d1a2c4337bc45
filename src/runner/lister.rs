//! The lister thread: walks a provider's listing page by page.
//!
//! It owns the walk while it runs and hands it back when it stops, so a
//! paused job can continue later with the same walk (and its login state).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};
use serde_json::Value;

use crate::pacing::{ApiError, backoff_delay};
use crate::providers::{Api, Page, Walk, WalkError};

/// What the lister reports to its runner.
pub enum ListerEvent {
    /// A page; more follow unless `page.next` is `None`.
    Page(Page),
    /// The listing stopped early (pause, shutdown, or an error); the walk
    /// comes back for a later restart.
    Stopped(Box<dyn Walk>, Option<WalkError>),
    /// The last page was sent; the walk comes back.
    Finished(Box<dyn Walk>),
    /// The listing waits for something outside the job (the reason); it
    /// tries again by itself.
    Waiting(String),
    /// A call failed in a way that may pass (the pacer's own retries are
    /// spent): the lister tries the same page again after `after`.
    Retrying {
        /// Why, in one line.
        reason: String,
        /// This is retry `attempt` of at most [`Backoff::retries`].
        attempt: u32,
        /// The retries allowed.
        of: u32,
        /// The wait before it.
        after: Duration,
    },
}

/// How a lister backs off after a transient API error, on top of the
/// pacer's own retries.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Retries of one page before the job fails.
    pub retries: u32,
    /// The first wait.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// About four minutes in all (5 s doubling to a cap of 160 s, with
    /// jitter): a network outage of a few minutes costs a delay, not a
    /// failed job, and a dead API still fails the job within minutes.
    fn default() -> Backoff {
        Backoff { retries: 6, base: Duration::from_secs(5), max: Duration::from_secs(160) }
    }
}

/// A running lister.
pub struct Lister {
    /// Events from the lister.
    pub events: crossbeam_channel::Receiver<ListerEvent>,
    /// Raised to make the lister stop before its next call.
    stop: Arc<AtomicBool>,
    /// For walks with synchronous pages: tells the lister that the last
    /// page is durable and it may fetch the next one.
    ack: Option<Sender<()>>,
    /// The thread.
    join: Option<JoinHandle<()>>,
}

impl Lister {
    /// Starts listing from `cursor`.
    pub fn start(
        mut walk: Box<dyn Walk>,
        cursor: Option<Value>,
        api: Api,
        name: &str,
        backoff: Backoff,
    ) -> std::io::Result<Lister> {
        // One page in flight: the lister fetches the next page while the
        // runner journals the previous one, and no further. A walk whose
        // calls change the server (marking rows exported) waits instead.
        let (tx, events) = bounded(1);
        let (ack, ack_rx) = if walk.sync_pages() {
            let (a, r) = bounded::<()>(1);
            (Some(a), Some(r))
        } else {
            (None, None)
        };
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let join = thread::Builder::new().name(format!("lister-{name}")).spawn(move || {
            let mut cursor = cursor;
            // Transient failures of the current page in a row.
            let mut failures: u32 = 0;
            loop {
                if thread_stop.load(Ordering::Acquire) {
                    let _ = tx.send(ListerEvent::Stopped(walk, None));
                    return;
                }
                match walk.next_page(cursor.as_ref(), &api) {
                    Ok(page) => {
                        failures = 0;
                        let last = page.next.is_none();
                        cursor.clone_from(&page.next);
                        if send(&tx, ListerEvent::Page(page)).is_err() {
                            return;
                        }
                        if last {
                            let _ = tx.send(ListerEvent::Finished(walk));
                            return;
                        }
                        if let Some(r) = &ack_rx
                            && r.recv().is_err()
                        {
                            return;
                        }
                    }
                    Err(WalkError::Api(ApiError::Interrupted | ApiError::ShuttingDown)) => {
                        let _ = tx.send(ListerEvent::Stopped(walk, None));
                        return;
                    }
                    Err(WalkError::Wait { reason, retry_in }) => {
                        if send(&tx, ListerEvent::Waiting(reason)).is_err() {
                            return;
                        }
                        sleep_unless_stopped(retry_in, &thread_stop);
                    }
                    Err(WalkError::Api(e)) if e.is_transient() && failures < backoff.retries => {
                        failures += 1;
                        let after = backoff_delay(failures, backoff.base, backoff.max);
                        let ev = ListerEvent::Retrying {
                            reason: e.to_string(),
                            attempt: failures,
                            of: backoff.retries,
                            after,
                        };
                        if send(&tx, ev).is_err() {
                            return;
                        }
                        sleep_unless_stopped(after, &thread_stop);
                    }
                    Err(e) => {
                        let _ = tx.send(ListerEvent::Stopped(walk, Some(e)));
                        return;
                    }
                }
            }
        })?;
        Ok(Lister { events, stop, ack, join: Some(join) })
    }

    /// Asks the lister to stop before its next call.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        // A lister waiting for an acknowledgement must wake up to see it.
        if let Some(a) = &self.ack {
            let _ = a.try_send(());
        }
    }

    /// Tells a synchronous lister that the last page is durable.
    pub fn ack(&self) {
        if let Some(a) = &self.ack {
            let _ = a.try_send(());
        }
    }
}

/// Sleeps `d` in slices, so that a pause or shutdown is noticed at once.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::Acquire) {
        thread::sleep(Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())));
    }
}

/// Sends an event; an error means the runner dropped the lister.
fn send(tx: &Sender<ListerEvent>, ev: ListerEvent) -> Result<(), ()> {
    tx.send(ev).map_err(|_| ())
}

impl Drop for Lister {
    fn drop(&mut self) {
        self.stop();
        // Joining could block on a long paced call; the thread ends on its
        // own when its channel is gone, so it is detached instead.
        drop(self.join.take());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::job::JobFlags;
    use crate::session::Sessions;

    /// A walk whose pages fail as scripted.
    #[derive(Debug)]
    struct Flaky(Arc<Mutex<Vec<Result<(), ApiError>>>>);

    impl Walk for Flaky {
        fn account(&self) -> Option<crate::providers::AccountSpec> {
            None
        }

        fn next_page(&mut self, _: Option<&Value>, _: &Api) -> Result<Page, WalkError> {
            let next = {
                let mut script = self.0.lock().unwrap_or_else(|e| e.into_inner());
                if script.is_empty() { Ok(()) } else { script.remove(0) }
            };
            next.map(|()| Page::default()).map_err(WalkError::Api)
        }
    }

    fn transient() -> Result<(), ApiError> {
        Err(ApiError::Transport { reason: "connection reset".into(), transient: true })
    }

    fn run(script: Vec<Result<(), ApiError>>) -> Vec<String> {
        let api = Api::new(
            crate::providers::Lanes::none(),
            Arc::new(JobFlags::default()),
            None,
            Arc::new(Sessions::new()),
        );
        let backoff = Backoff { retries: 2, base: Duration::from_millis(10), max: Duration::from_millis(20) };
        let l = Lister::start(Box::new(Flaky(Arc::new(Mutex::new(script)))), None, api, "t", backoff)
            .expect("start");
        let mut seen = Vec::new();
        while let Ok(ev) = l.events.recv_timeout(Duration::from_secs(5)) {
            match ev {
                ListerEvent::Page(_) => seen.push("page".to_string()),
                ListerEvent::Retrying { reason, attempt, of, .. } => {
                    seen.push(format!("retry {attempt}/{of}: {reason}"))
                }
                ListerEvent::Stopped(_, e) => {
                    seen.push(format!("stopped: {}", e.map(|e| e.to_string()).unwrap_or_default()));
                    break;
                }
                ListerEvent::Finished(_) => {
                    seen.push("finished".into());
                    break;
                }
                ListerEvent::Waiting(w) => seen.push(format!("waiting: {w}")),
            }
        }
        seen
    }

    #[test]
    fn a_transient_error_backs_off_and_the_page_is_tried_again() {
        assert_eq!(
            run(vec![transient(), transient()]),
            ["retry 1/2: connection reset", "retry 2/2: connection reset", "page", "finished"]
        );
    }

    #[test]
    fn the_backoff_is_bounded_and_a_fatal_error_fails_at_once() {
        assert_eq!(
            run(vec![transient(), transient(), transient()]),
            [
                "retry 1/2: connection reset",
                "retry 2/2: connection reset",
                "stopped: API call failed: connection reset"
            ]
        );
        let fatal = Err(ApiError::Transport { reason: "certificate expired".into(), transient: false });
        assert_eq!(run(vec![fatal]), ["stopped: API call failed: certificate expired"]);
    }
}
