//! `spoolfetch submit`: write a job file atomically.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{Map, Value};
use spoolfetch::config::Overrides;
use spoolfetch::durable::fsync_dir;
use spoolfetch::job::parse_job_bytes;
use spoolfetch::naming::sanitize_component;
use spoolfetch::providers::{ParamKind, PlanContext, find_job_type};

use super::args::SubmitArgs;
use super::run::load_config;
use super::{EXIT_USAGE, Exit};

/// Builds the job, checks it as the daemon would, and drops it into the
/// spool: written to a dotfile, fsynced, renamed to `<name>.json`.
pub fn submit(a: &SubmitArgs) -> Result<ExitCode> {
    let usage = |m: String| anyhow::Error::from(Exit(EXIT_USAGE, m));
    let (provider, info) = find_job_type(&a.job_type).ok_or_else(|| {
        let known: Vec<&str> = spoolfetch::providers::PROVIDERS
            .iter()
            .flat_map(|p| p.job_types().iter().map(|t| t.name))
            .collect();
        usage(format!("unknown job type {:?}; known types: {}", a.job_type, known.join(", ")))
    })?;
    let mut job = Map::new();
    job.insert("type".into(), Value::String(a.job_type.clone()));
    for kv in &a.params {
        let (k, v) = kv.split_once('=').ok_or_else(|| usage(format!("{kv:?} is not KEY=VALUE")))?;
        let kind = info.key(k).map(|p| p.kind);
        // Text is taken as typed (`word=123` is the word "123", a tag
        // list item stays a string unless a whole JSON array is given);
        // anything else is JSON when it parses, else a string, and the
        // declaration's check then says what was expected.
        let value = match kind {
            Some(kind) if kind.is_text() => Value::String(v.to_string()),
            Some(ParamKind::List | ParamKind::Strings) => match serde_json::from_str::<Value>(v) {
                Ok(Value::Array(a)) => Value::Array(a),
                _ => Value::String(v.to_string()),
            },
            _ => serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string())),
        };
        match (kind.is_some_and(ParamKind::is_list), job.get_mut(k), value) {
            (true, Some(Value::Array(list)), Value::Array(more)) => list.extend(more),
            (true, Some(Value::Array(list)), v) => list.push(v),
            (true, None, Value::Array(more)) => {
                job.insert(k.to_string(), Value::Array(more));
            }
            (true, None, v) => {
                job.insert(k.to_string(), Value::Array(vec![v]));
            }
            (_, _, v) => {
                job.insert(k.to_string(), v);
            }
        }
    }
    let name = a.name.clone().unwrap_or_else(|| {
        let secs =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!("{}-{secs}", a.job_type.replace('.', "-"))
    });
    job.insert("name".into(), Value::String(name.clone()));
    if let Some(p) = &a.save_path {
        job.insert("save_path".into(), Value::String(p.display().to_string()));
    }
    let bytes = serde_json::to_vec_pretty(&Value::Object(job))?;

    // Check it exactly as the daemon will, so mistakes surface now.
    let spool = super::spool::existing(&a.spool, None)?;
    let config = load_config(spool.root(), &Overrides::default())?;
    let spec = parse_job_bytes(&bytes, &name, &config.save_path, &config.save_roots(), &|t| {
        find_job_type(t).is_some()
    })
    .map_err(|e| usage(e.0))?;
    provider.plan(&spec, &PlanContext { config: &config }).map_err(|e| usage(e.0))?;

    let dir = spool.root();
    let base = sanitize_component(&name, "job");
    let tmp = dir.join(format!(".{base}.{}.json.tmp", std::process::id()));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        // A job file may hold tokens in its headers: only its owner reads it.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    let target = publish(&tmp, dir, &base)?;
    fsync_dir(dir)?;
    println!("{}", target.display());
    if a.wait {
        return super::wait::claimed_then_ended(&spool, &target, a.timeout);
    }
    Ok(ExitCode::SUCCESS)
}

/// Renames `tmp` to `<base>.json`, or `<base>-N.json` when taken, never
/// replacing an existing job file (two submits with one name both land).
fn publish(tmp: &std::path::Path, dir: &std::path::Path, base: &str) -> Result<PathBuf> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    for n in 1..10_000 {
        let target =
            if n == 1 { dir.join(format!("{base}.json")) } else { dir.join(format!("{base}-{n}.json")) };
        match renameat_with(CWD, tmp, CWD, &target, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(target),
            Err(rustix::io::Errno::EXIST) => continue,
            // Filesystems without RENAME_NOREPLACE (some network ones):
            // a check, then a plain rename.
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::NOTSUP) => {
                if target.exists() {
                    continue;
                }
                std::fs::rename(tmp, &target)
                    .with_context(|| format!("cannot rename into {}", target.display()))?;
                return Ok(target);
            }
            Err(e) => {
                let _ = std::fs::remove_file(tmp);
                return Err(anyhow::anyhow!("cannot rename into {}: {e}", target.display()));
            }
        }
    }
    let _ = std::fs::remove_file(tmp);
    Err(anyhow::anyhow!("too many jobs named {base} in {}", dir.display()))
}
