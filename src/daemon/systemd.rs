//! systemd notification: READY, STATUS, STOPPING and the watchdog.
//!
//! Every call is a no-op outside systemd (no `NOTIFY_SOCKET`).

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// Notification state kept by the supervisor.
#[derive(Debug)]
pub struct Notifier {
    /// Half the watchdog interval, when the watchdog is on.
    ping_every: Option<Duration>,
    /// Last ping.
    last_ping: Instant,
    /// Last STATUS text, to avoid repeating it.
    last_status: String,
}

impl Notifier {
    /// Reads the watchdog setting from the environment.
    pub fn new() -> Notifier {
        Notifier {
            ping_every: sd_notify::watchdog_enabled().map(|d| d / 2),
            last_ping: Instant::now(),
            last_status: String::new(),
        }
    }

    /// Tells systemd the daemon is ready (after recovery and the first scan).
    pub fn ready(&self) {
        let _ = sd_notify::notify(&[NotifyState::Ready]);
    }

    /// Tells systemd the daemon is stopping.
    pub fn stopping(&self) {
        let _ = sd_notify::notify(&[NotifyState::Stopping]);
    }

    /// Updates the one-line status shown by `systemctl status`.
    pub fn status(&mut self, text: &str) {
        if text != self.last_status {
            let _ = sd_notify::notify(&[NotifyState::Status(text)]);
            self.last_status = text.to_string();
        }
    }

    /// Pings the watchdog, but only when the caller saw real progress: a
    /// supervisor loop that runs while the watcher is stuck must not keep
    /// the service alive.
    pub fn watchdog(&mut self, healthy: bool) {
        if let Some(every) = self.ping_every
            && healthy
            && self.last_ping.elapsed() >= every
        {
            let _ = sd_notify::notify(&[NotifyState::Watchdog]);
            self.last_ping = Instant::now();
        }
    }
}
