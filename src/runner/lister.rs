//! The lister thread: walks a provider's listing page by page.
//!
//! It owns the walk while it runs and hands it back when it stops, so a
//! paused job can continue later with the same walk (and its login state).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Sender, bounded};
use serde_json::Value;

use crate::pacing::ApiError;
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
            loop {
                if thread_stop.load(Ordering::Acquire) {
                    let _ = tx.send(ListerEvent::Stopped(walk, None));
                    return;
                }
                match walk.next_page(cursor.as_ref(), &api) {
                    Ok(page) => {
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
                        // Sleep in slices so that a pause or shutdown is
                        // noticed at once.
                        let until = std::time::Instant::now() + retry_in;
                        while std::time::Instant::now() < until && !thread_stop.load(Ordering::Acquire) {
                            thread::sleep(std::time::Duration::from_millis(100));
                        }
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
