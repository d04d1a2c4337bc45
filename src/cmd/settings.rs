//! `spoolfetch config`: the effective configuration, each value with its
//! source, secrets masked.

use std::process::ExitCode;

use anyhow::Result;
use spoolfetch::config::Overrides;
use spoolfetch::providers::section_specs;

use super::args::ConfigArgs;
use super::run::load_config;

/// Prints every key (top level, then the provider sections) with its value
/// and where it came from.
pub fn config(a: &ConfigArgs) -> Result<ExitCode> {
    let spool = super::spool::path(&a.spool, a.config.as_deref())?;
    let overrides = Overrides { config_file: a.config.clone(), ..Overrides::default() };
    let config = load_config(&spool, &overrides)?;
    let all = config.effective(&section_specs());
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &config.source {
        Some(p) => {
            println!("# config file: {}", std::path::absolute(p).unwrap_or_else(|_| p.clone()).display())
        }
        None => println!(
            "# no config file (looked for --config, $SPOOLFETCH_CONFIG, {})",
            spool.join(spoolfetch::spool::CONFIG_FILE_NAME).display()
        ),
    }
    println!("# spool: {}", std::path::absolute(&spool).unwrap_or_else(|_| spool.clone()).display());
    let width = all.iter().map(|s| s.key.len()).max().unwrap_or(0);
    for s in &all {
        let value = spoolfetch::naming::escape_display(&s.value.to_string());
        // A relative folder is resolved against the working folder, as
        // the daemon will: show where that is.
        let resolved = match (s.key.as_str(), s.value.as_str()) {
            ("spool" | "save_path" | "state_dir", Some(p)) if std::path::Path::new(p).is_relative() => {
                std::path::absolute(p).map(|a| format!(" = {}", a.display())).unwrap_or_default()
            }
            _ => String::new(),
        };
        println!("{:<width$}  {value}{resolved}  ({})", s.key, s.source);
    }
    Ok(ExitCode::SUCCESS)
}
