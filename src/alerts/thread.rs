//! The notifier thread and the handle runners send events through.
//!
//! Owns the queue of notifications to deliver and their retries. Runners
//! hand an event over with `try_send` on a bounded channel, so a slow or
//! hanging target never holds a runner; the thread writes each
//! notification to the outbox, delivers it, and retries a failure after
//! 5 s, 30 s, 2 and 10 minutes (five attempts in all, across restarts),
//! logging each failure and never stopping anything else.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use serde_json::Value;

use super::deliver::deliver;
use super::outbox::{Notice, Outbox};
use super::target::{Event, Target};

/// Attempts per notification before it is given up.
const ATTEMPTS: u32 = 5;
/// Waits before the 2nd, 3rd, … attempt.
const BACKOFF: [Duration; 4] =
    [Duration::from_secs(5), Duration::from_secs(30), Duration::from_secs(120), Duration::from_secs(600)];

/// What the notifier thread is told.
#[derive(Debug)]
pub enum AlertMsg {
    /// A notification to deliver.
    Notice(Box<Notice>),
    /// Deliver what is due now, once, then end (what fails stays in the
    /// outbox for the next start).
    Quit,
}

/// The handle events are sent through; cheap to clone.
#[derive(Debug, Clone)]
pub struct Alerts {
    /// To the notifier thread.
    tx: Sender<AlertMsg>,
    /// This daemon's instance, for unique ids.
    instance: String,
}

impl Alerts {
    /// Sends `event` with a job's status to every target that wants it;
    /// never blocks. Nothing is done without targets.
    pub fn send_status(&self, event: Event, status: &crate::job::JobStatus, targets: &[Target]) {
        if targets.is_empty() {
            return;
        }
        match serde_json::to_value(status) {
            Ok(v) => self.send(event, &v, targets),
            Err(e) => log::warn!("job {}: cannot describe the job for notifications: {e}", status.tid),
        }
    }

    /// Sends `event` of a job (its status object) to every target that
    /// wants it; never blocks.
    pub fn send(&self, event: Event, status: &Value, targets: &[Target]) {
        let tid = status["tid"].as_u64().unwrap_or(0);
        for (n, t) in targets.iter().enumerate().filter(|(_, t)| t.events.contains(&event)) {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let safe: String = self.instance.chars().filter(char::is_ascii_alphanumeric).take(32).collect();
            let id = format!("{ms:015}-{safe}-{tid}-{}-{n}", event.name());
            let notice = Notice { v: 1, id, event, status: status.clone(), target: t.clone(), attempts: 0 };
            if self.tx.try_send(AlertMsg::Notice(Box::new(notice))).is_err() {
                log::warn!(
                    "notify: job {tid}: the notifier is busy or gone; the {} notification is dropped",
                    event.name()
                );
            }
        }
    }
}

/// A running notifier.
#[derive(Debug)]
pub struct Notifier {
    /// Its handle.
    pub alerts: Alerts,
    /// Its thread.
    join: JoinHandle<()>,
    /// Told when the thread ended.
    done: Receiver<()>,
}

impl Notifier {
    /// Starts the thread; notifications an earlier run left undelivered
    /// are retried at once.
    pub fn start(
        state_dir: &std::path::Path,
        instance: &str,
        agent: ureq::Agent,
    ) -> std::io::Result<Notifier> {
        let (tx, rx) = bounded::<AlertMsg>(64);
        let (done_tx, done) = bounded::<()>(1);
        let outbox = Outbox::new(state_dir);
        let join = std::thread::Builder::new().name("notify".into()).spawn(move || {
            run(&rx, &outbox, &agent);
            let _ = done_tx.send(());
        })?;
        Ok(Notifier { alerts: Alerts { tx, instance: instance.to_string() }, join, done })
    }

    /// Delivers what is due (one attempt each) and ends, waiting at most
    /// `grace`; a target that takes longer is left to the next start.
    pub fn stop(self, grace: Duration) {
        let _ = self.alerts.tx.send_timeout(AlertMsg::Quit, grace);
        if self.done.recv_timeout(grace).is_ok() {
            let _ = self.join.join();
        } else {
            log::warn!("notify: notifications still being delivered at exit are retried at the next start");
        }
    }
}

/// The thread body.
fn run(rx: &Receiver<AlertMsg>, outbox: &Outbox, agent: &ureq::Agent) {
    let mut queue: Vec<(Instant, Notice)> = outbox.load().into_iter().map(|n| (Instant::now(), n)).collect();
    if !queue.is_empty() {
        log::info!("notify: {} notification(s) left undelivered by the last run", queue.len());
    }
    loop {
        let next = queue.iter().map(|(t, _)| *t).min();
        let wait = next.map_or(Duration::from_secs(3600), |t| t.saturating_duration_since(Instant::now()));
        match rx.recv_timeout(wait) {
            Ok(AlertMsg::Notice(n)) => {
                if let Err(e) = outbox.save(&n) {
                    log::warn!(
                        "notify: cannot keep the notification in the outbox ({e}); delivering it once"
                    );
                }
                queue.push((Instant::now(), *n));
            }
            Ok(AlertMsg::Quit) | Err(RecvTimeoutError::Disconnected) => {
                let now = Instant::now();
                for (_, n) in queue.iter_mut().filter(|(t, _)| *t <= now) {
                    attempt(n, outbox, agent);
                }
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        let mut keep = Vec::with_capacity(queue.len());
        for (t, mut n) in queue.drain(..) {
            if t > now {
                keep.push((t, n));
                continue;
            }
            if let Some(after) = attempt(&mut n, outbox, agent) {
                keep.push((Instant::now() + after, n));
            }
        }
        queue = keep;
    }
}

/// One attempt; the wait before the next one, if there is to be one.
fn attempt(n: &mut Notice, outbox: &Outbox, agent: &ureq::Agent) -> Option<Duration> {
    let tid = n.status["tid"].as_u64().unwrap_or(0);
    match deliver(agent, &n.target, n.event, &n.status) {
        Ok(()) => {
            log::info!("notify: job {tid}: {} sent to {}", n.event.name(), n.target.shown());
            outbox.remove(&n.id);
            None
        }
        Err(e) => {
            n.attempts += 1;
            if n.attempts >= ATTEMPTS {
                log::warn!(
                    "notify: job {tid}: {} to {} failed {} times ({e}); giving up",
                    n.event.name(),
                    n.target.shown(),
                    n.attempts
                );
                outbox.remove(&n.id);
                return None;
            }
            let after = BACKOFF[(n.attempts as usize - 1).min(BACKOFF.len() - 1)];
            log::warn!(
                "notify: job {tid}: {} to {} failed ({e}); trying again in {} s",
                n.event.name(),
                n.target.shown(),
                after.as_secs()
            );
            let _ = outbox.save(n);
            Some(after)
        }
    }
}
