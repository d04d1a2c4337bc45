//! Which spool a command works on, and the check that it is there.
//!
//! A spool folder that does not exist is refused (an unmounted NAS share
//! must not become a fresh spool on the local disk); `spoolfetch init`
//! is the one command that creates one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use spoolfetch::config::Overrides;
use spoolfetch::spool::Spool;

use super::args::{InitArgs, SpoolArg};
use super::run::load_config;
use super::{EXIT_USAGE, Exit};

/// The spool when nothing names one.
const DEFAULT_SPOOL: &str = "jobs";

/// The spool folder: `--spool` or `$SPOOLFETCH_SPOOL` (clap reads both),
/// else the `spool` key of the configuration file named by `--config` or
/// `$SPOOLFETCH_CONFIG`, else `./jobs`. Nothing is checked or created.
pub fn path(arg: &SpoolArg, config_file: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = &arg.spool {
        return Ok(p.clone());
    }
    let named = config_file.is_some() || std::env::var_os("SPOOLFETCH_CONFIG").is_some_and(|v| !v.is_empty());
    if named {
        let overrides = Overrides { config_file: config_file.map(Path::to_path_buf), ..Overrides::default() };
        if let Some(p) = load_config(Path::new(DEFAULT_SPOOL), &overrides)?.spool {
            return Ok(p);
        }
    }
    Ok(PathBuf::from(DEFAULT_SPOOL))
}

/// The spool, which must be an existing folder: a missing one or a file
/// is a usage error (exit 2).
pub fn existing(arg: &SpoolArg, config_file: Option<&Path>) -> Result<Spool> {
    let dir = path(arg, config_file)?;
    check(&dir)?;
    Ok(Spool::new(dir))
}

/// Refuses a spool path that is missing or not a folder.
fn check(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Exit(EXIT_USAGE, format!("spool {} is not a folder", dir.display())).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Exit(
            EXIT_USAGE,
            format!(
                "spool folder {} does not exist (an unmounted share?); create it with `spoolfetch init {}`",
                dir.display(),
                dir.display()
            ),
        )
        .into()),
        Err(e) => Err(Exit(EXIT_USAGE, format!("cannot use spool {}: {e}", dir.display())).into()),
    }
}

/// `spoolfetch init [DIR]`: creates the spool folder and its layout.
pub fn init(a: &InitArgs) -> Result<ExitCode> {
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => path(&a.spool, None)?,
    };
    if std::fs::metadata(&dir).is_ok_and(|m| !m.is_dir()) {
        return Err(Exit(EXIT_USAGE, format!("{} is not a folder", dir.display())).into());
    }
    let existed = dir.is_dir();
    Spool::new(&dir).init().map_err(|e| Exit(1, format!("cannot create spool {}: {e}", dir.display())))?;
    let shown = std::path::absolute(&dir).unwrap_or(dir);
    if existed {
        println!("spool {} is ready (the folder was there already)", shown.display());
    } else {
        println!("spool {} created", shown.display());
    }
    Ok(ExitCode::SUCCESS)
}
