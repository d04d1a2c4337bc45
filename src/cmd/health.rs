//! `spoolfetch health`: whether this instance's daemon runs.
//!
//! The instance lock tells (the daemon holds it for as long as it runs,
//! and the kernel drops it when the process dies, `kill -9` included), so
//! the answer never depends on a PID file or a clock.

use std::process::ExitCode;

use anyhow::Result;
use spoolfetch::config::Overrides;
use spoolfetch::spool::{Liveness, instance_liveness};

use super::args::HealthArgs;
use super::run::load_config;

/// Prints one line and exits 0 when the daemon runs, 1 when it does not.
pub fn health(a: &HealthArgs) -> Result<ExitCode> {
    let spool = super::spool::existing(&a.spool, a.config.as_deref())?;
    let instance = match &a.instance {
        Some(i) => i.clone(),
        None => {
            let overrides = Overrides { config_file: a.config.clone(), ..Overrides::default() };
            load_config(spool.root(), &overrides)?.instance
        }
    };
    let shown = spoolfetch::naming::escape_display(&instance);
    Ok(match instance_liveness(&spool, &instance) {
        Liveness::Alive => {
            println!("spoolfetch instance {shown:?} is running on {}", spool.root().display());
            ExitCode::SUCCESS
        }
        Liveness::Stopped => {
            println!("spoolfetch instance {shown:?} is not running on {}", spool.root().display());
            ExitCode::from(1)
        }
        Liveness::Unknown => {
            println!("cannot tell whether instance {shown:?} runs on {}", spool.root().display());
            ExitCode::from(1)
        }
    })
}
