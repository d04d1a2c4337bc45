//! SIGTERM/SIGINT/SIGHUP → messages for the supervisor.

use std::thread;

use crossbeam_channel::Sender;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalMsg {
    /// SIGTERM or SIGINT: stop gracefully.
    Stop,
    /// SIGHUP: scan the spool now.
    Rescan,
}

/// Starts the signal thread. The second SIGTERM/SIGINT exits the process
/// at once with status 130: safe, because every state file on disk is
/// consistent at every instant.
pub fn install(tx: Sender<SignalMsg>) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    thread::Builder::new().name("signals".into()).spawn(move || {
        let mut stopping = false;
        for sig in signals.forever() {
            match sig {
                SIGHUP => {
                    let _ = tx.send(SignalMsg::Rescan);
                }
                _ if stopping => {
                    log::warn!("second stop signal: exiting now");
                    std::process::exit(130);
                }
                _ => {
                    stopping = true;
                    log::info!("stop signal received: finishing in-flight files, then exiting (send it again to exit now)");
                    let _ = tx.send(SignalMsg::Stop);
                }
            }
        }
    })?;
    Ok(())
}
