//! `spoolfetch run`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use spoolfetch::config::{self, Config, Overrides};
use spoolfetch::daemon::{self, DaemonError, Options};
use spoolfetch::providers::section_specs;

use super::args::RunArgs;
use super::{EXIT_USAGE, Exit};

/// Loads the configuration for a spool; a bad one is a usage error.
pub fn load_config(spool: &Path, overrides: &Overrides) -> Result<Config> {
    let env = |k: &str| std::env::var(k).ok();
    config::load(spool, overrides, &env, &section_specs()).map_err(|e| Exit(EXIT_USAGE, e.to_string()).into())
}

/// Runs the daemon.
pub fn run(a: &RunArgs) -> Result<ExitCode> {
    let overrides = Overrides {
        config_file: a.config.clone(),
        instance: a.instance.clone(),
        concurrency: a.concurrency,
        save_path: None,
    };
    let spool = super::spool::existing(&a.spool, a.config.as_deref())?;
    let config = load_config(spool.root(), &overrides)?;
    let opts = Options { spool: spool.root().to_path_buf(), config, once: a.once, handle_signals: true };
    match daemon::run(opts) {
        Ok(summary) => {
            if a.once {
                log::info!(
                    "finished: {} done, {} failed, {} cancelled, {} waiting",
                    summary.done,
                    summary.failed,
                    summary.cancelled,
                    summary.waiting
                );
            }
            Ok(if a.once && summary.failed + summary.waiting > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Err(e @ (DaemonError::Network(_) | DaemonError::Locked(_))) => {
            Err(Exit(EXIT_USAGE, e.to_string()).into())
        }
        Err(e) => Err(Exit(1, e.to_string()).into()),
    }
}
