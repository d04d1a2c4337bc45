//! `spoolfetch types`: every job type and its keys, from the providers'
//! declarations (the same ones the daemon checks jobs against).

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{Value, json};
use spoolfetch::providers::{JobTypeInfo, PROVIDERS, ParamInfo, ParamKind, find_job_type};

use super::args::TypesArgs;
use super::{EXIT_USAGE, Exit};

/// Prints the job types (or one), as text or JSON.
pub fn types(a: &TypesArgs) -> Result<ExitCode> {
    let mut chosen: Vec<(&'static str, &'static JobTypeInfo)> = Vec::new();
    match &a.job_type {
        Some(t) => {
            let (p, info) = find_job_type(t).ok_or_else(|| {
                let known: Vec<&str> = all().map(|(_, t)| t.name).collect();
                Exit(EXIT_USAGE, format!("unknown job type {t:?}; known types: {}", known.join(", ")))
            })?;
            chosen.push((p.name(), info));
        }
        None => chosen.extend(all()),
    }
    if a.json {
        let list: Vec<Value> = chosen.iter().map(|(p, t)| type_json(p, t)).collect();
        println!("{}", serde_json::to_string_pretty(&Value::Array(list))?);
    } else {
        print!("{}", text(&chosen));
    }
    Ok(ExitCode::SUCCESS)
}

/// Every job type with its provider's name, in documentation order.
fn all() -> impl Iterator<Item = (&'static str, &'static JobTypeInfo)> {
    PROVIDERS.iter().flat_map(|p| p.job_types().iter().map(move |t| (p.name(), t)))
}

/// The type column: the kind with its bounds or values.
fn kind_text(kind: ParamKind) -> String {
    match kind {
        ParamKind::Integer { min, max } if max == u64::MAX => format!("integer >= {min}"),
        ParamKind::Integer { min, max } => format!("integer {min}-{max}"),
        ParamKind::Integers { min, max } => format!("list of integers {min}-{max}"),
        other => other.type_name().to_string(),
    }
}

/// The required/default column.
fn need_text(p: &ParamInfo) -> String {
    match (p.required, p.default) {
        (true, _) => "required".into(),
        (false, Some(d)) => format!("default {d}"),
        (false, None) => "optional".into(),
    }
}

/// Aligned rows of keys, indented.
fn key_rows(out: &mut String, keys: &[ParamInfo]) {
    let doc = |p: &ParamInfo| match p.kind {
        ParamKind::Choice(set) => format!("{} (one of: {})", p.doc, set.join(", ")),
        _ => p.doc.to_string(),
    };
    let rows: Vec<(String, String, String, String)> =
        keys.iter().map(|p| (p.name.to_string(), kind_text(p.kind), need_text(p), doc(p))).collect();
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| r.2.chars().count()).max().unwrap_or(0);
    for (name, kind, need, doc) in rows {
        let _ = writeln!(out, "    {name:<w0$}  {kind:<w1$}  {need:<w2$}  {doc}");
    }
}

/// The human-readable listing; keys several types share are listed once
/// per provider, after its types.
fn text(types: &[(&'static str, &'static JobTypeInfo)]) -> String {
    let mut out = String::new();
    let mut shared_of: Vec<(&str, &'static [ParamInfo])> = Vec::new();
    for (i, (provider, t)) in types.iter().enumerate() {
        let _ = writeln!(out, "{}: {}", t.name, t.summary);
        if t.params.is_empty() {
            let _ = writeln!(out, "    (no keys of its own)");
        }
        key_rows(&mut out, t.params);
        if !t.shared.is_empty() {
            let _ = writeln!(out, "    and the options of every {provider}.* job (below)");
            if !shared_of.iter().any(|(p, s)| p == provider && std::ptr::eq(*s, t.shared)) {
                shared_of.push((provider, t.shared));
            }
        }
        let last_of_provider = types.get(i + 1).is_none_or(|(p, _)| p != provider);
        if last_of_provider {
            for (p, shared) in shared_of.drain(..) {
                let _ = writeln!(out, "\noptions of every {p}.* job:");
                key_rows(&mut out, shared);
            }
        }
        out.push('\n');
    }
    out.push_str("Common keys of every job: type, name, save_path, max_items (see README).\n");
    out
}

/// One job type as JSON.
fn type_json(provider: &str, t: &JobTypeInfo) -> Value {
    let key = |p: &ParamInfo, shared: bool| {
        let mut k = json!({
            "name": p.name,
            "type": p.kind.type_name(),
            "required": p.required,
            "default": p.default,
            "doc": p.doc,
            "shared": shared,
        });
        match p.kind {
            ParamKind::Choice(set) => k["values"] = json!(set),
            ParamKind::Integer { min, max } | ParamKind::Integers { min, max } => {
                k["min"] = json!(min);
                k["max"] = json!(max);
            }
            _ => {}
        }
        k
    };
    let keys: Vec<Value> =
        t.params.iter().map(|p| key(p, false)).chain(t.shared.iter().map(|p| key(p, true))).collect();
    json!({"type": t.name, "provider": provider, "summary": t.summary, "keys": keys})
}
