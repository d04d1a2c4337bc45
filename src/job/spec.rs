//! Parsing and checking a job file.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use super::recur::Recurrence;
use crate::naming::sanitize_component;

/// Keys every job type accepts, handled here rather than by providers.
pub const COMMON_KEYS: &[&str] = &["type", "name", "save_path", "max_items", "notify", "rate_limit"];

/// The keys that make a job recur, also accepted by every job type
/// (`every`, `cron`, `jitter`: see [`super::recur`]).
pub const RECUR_KEYS: &[&str] = &["every", "cron", "jitter"];

/// A job file that passed the common checks. Type-specific keys are in
/// `params` and are checked by the provider that owns the type.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// TypeName, for example `http.files`.
    pub job_type: String,
    /// TaskName: a safe single path component.
    pub name: String,
    /// SavePath: files land under `<save_path>/<name>/`.
    pub save_path: PathBuf,
    /// Stop after this many items, if set.
    pub max_items: Option<u64>,
    /// The job's own notification targets (`notify`): `None` uses the
    /// configuration's, `Some(vec![])` (`"notify": false`) silences them.
    pub notify: Option<Vec<crate::alerts::Target>>,
    /// This job's downloads read at most this many bytes per second
    /// together (`rate_limit`), besides the daemon's limit.
    pub rate_limit: Option<u64>,
    /// The type's own keys.
    pub params: Map<String, Value>,
    /// `every` or `cron` (with `jitter`): the job runs again when a run
    /// ends, until it is cancelled.
    pub recurrence: Option<Recurrence>,
}

impl JobSpec {
    /// The folder this job's files go to.
    pub fn job_dir(&self) -> PathBuf {
        self.save_path.join(&self.name)
    }
}

/// Why a job file was rejected; its Display is the line written next to
/// the file in `failed/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectReason(pub String);

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds a rejection.
fn reject(msg: impl Into<String>) -> RejectReason {
    RejectReason(msg.into())
}

/// Parses the bytes of a job file as the daemon and `submit` do: the
/// common keys, its recurrence (`every`, `cron`, `jitter`) among them.
///
/// `stem` is the file's name without `.json` (the default TaskName);
/// `default_save_path` is the configured `save_path`; a `save_path` the
/// job names must resolve inside one of `save_roots`; `known_type` tells
/// whether a type name belongs to a registered provider.
pub fn parse_job_bytes(
    bytes: &[u8],
    stem: &str,
    default_save_path: &Path,
    save_roots: &[PathBuf],
    known_type: &dyn Fn(&str) -> bool,
) -> Result<JobSpec, RejectReason> {
    if bytes.is_empty() {
        return Err(reject("the job file is empty"));
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(reject("the job file is UTF-16; save it as UTF-8"));
    }
    if bytes.len() >= 4 && (bytes[1] == 0 && bytes[3] == 0 || bytes[0] == 0 && bytes[2] == 0) {
        return Err(reject("the job file looks like UTF-16 without a byte-order mark; save it as UTF-8"));
    }
    if bytes.contains(&0) {
        return Err(reject("the job file contains NUL bytes; it is not a JSON text file"));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Err(reject(format!(
                "the job file is not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            )));
        }
    };
    // A UTF-8 byte-order mark is harmless; editors on Windows add it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value = serde_json::from_str(text).map_err(|e| reject(json_reason(&e)))?;
    let Value::Object(mut obj) = value else {
        return Err(reject(format!(
            "the job file must be a JSON object like {{\"type\": \"http.files\", ...}}, not {}",
            kind_of(&value)
        )));
    };

    let job_type = match obj.remove("type") {
        Some(Value::String(t)) => t,
        Some(other) => return Err(reject(format!("key `type` must be a string, not {}", kind_of(&other)))),
        None => return Err(reject("key `type` is missing (for example \"type\": \"http.files\")")),
    };
    if !known_type(&job_type) {
        return Err(reject(format!("unknown job type {:?}", truncate_for_message(&job_type))));
    }

    let raw_name = match obj.get("name") {
        Some(Value::String(n)) => n.as_str(),
        _ => stem,
    };
    // `.`, `..` and the like would all become the one folder `job`.
    if !raw_name.is_empty() && raw_name.chars().all(|c| c == '.' || c == ' ') {
        return Err(reject(format!(
            "the job name {:?} is only dots; give the job a `name`",
            truncate_for_message(raw_name)
        )));
    }
    let name = match obj.remove("name") {
        None => sanitize_component(stem, "job"),
        Some(Value::String(n)) if !n.trim().is_empty() => sanitize_component(&n, "job"),
        Some(other) => {
            return Err(reject(format!("key `name` must be a non-empty string, not {}", kind_of(&other))));
        }
    };

    let save_path = match obj.remove("save_path") {
        None => default_save_path.to_path_buf(),
        Some(Value::String(p)) if !p.trim().is_empty() => check_save_path(&p, default_save_path, save_roots)?,
        Some(other) => {
            return Err(reject(format!(
                "key `save_path` must be a non-empty string, not {}",
                kind_of(&other)
            )));
        }
    };

    let max_items = match obj.remove("max_items") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(n),
            _ => return Err(reject(format!("key `max_items` must be a positive integer, not {}", show(&v)))),
        },
    };

    let notify = match obj.remove("notify") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(false)) => Some(Vec::new()),
        Some(v) => Some(crate::alerts::parse_targets(&v, "notify").map_err(|e| reject(format!("key {e}")))?),
    };
    let rate_limit = match obj.remove("rate_limit") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Some(n),
            _ => {
                return Err(reject(format!(
                    "key `rate_limit` must be a positive number of bytes per second, not {}",
                    show(&v)
                )));
            }
        },
    };
    let recurrence = super::recur::take_recurrence(&mut obj).map_err(|e| reject(e.0))?;
    Ok(JobSpec { job_type, name, save_path, max_items, notify, rate_limit, params: obj, recurrence })
}

/// Refuses `..` in a job's save path: a job file must not be able to
/// write outside the place its author named. A relative path is taken
/// relative to the configured `save_path`.
fn check_save_path(
    p: &str,
    default_save_path: &Path,
    save_roots: &[PathBuf],
) -> Result<PathBuf, RejectReason> {
    if p.contains('\0') {
        return Err(reject("key `save_path` contains a NUL byte"));
    }
    let path = Path::new(p);
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(reject("key `save_path` must not contain `..`"));
    }
    let full = if path.is_absolute() { path.to_path_buf() } else { default_save_path.join(path) };
    let resolved = resolve_existing_prefix(&full);
    if !save_roots.iter().any(|r| resolved.starts_with(resolve_existing_prefix(r))) {
        let roots: Vec<String> = save_roots.iter().map(|r| r.display().to_string()).collect();
        return Err(reject(format!(
            "save_path {} is outside save_roots ({})",
            crate::naming::escape_display(&full.display().to_string()),
            crate::naming::escape_display(&roots.join(", "))
        )));
    }
    Ok(full)
}

/// The path with its longest existing prefix canonicalized (symbolic
/// links followed) and the rest appended, so a link inside a root that
/// points elsewhere resolves to where writes would really land.
/// `Path::starts_with` then compares whole components, not string prefixes.
fn resolve_existing_prefix(p: &Path) -> PathBuf {
    let mut head = p.to_path_buf();
    let mut tail = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(&head) {
            let mut out = c;
            for part in tail.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (head.file_name().map(|n| n.to_os_string()), head.parent()) {
            (Some(name), Some(parent)) => {
                tail.push(name);
                head = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

/// A one-line reason for a JSON syntax error, with its position.
fn json_reason(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => format!(
            "the job file is incomplete JSON (it ends early at line {} column {}); write it to a temporary name and rename it when done",
            e.line(),
            e.column()
        ),
        _ => {
            let msg = e.to_string();
            if msg.contains("recursion limit") {
                "the job file is nested too deeply".to_string()
            } else {
                format!("the job file is not valid JSON: {msg}")
            }
        }
    }
}

/// "a string", "an array", … for messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value shortened for an error message.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{:?}", truncate_for_message(s)),
        Value::Number(n) => n.to_string(),
        other => kind_of(other).to_string(),
    }
}

/// Cuts user text that goes into a message to a readable length.
pub(crate) fn truncate_for_message(s: &str) -> String {
    if s.chars().count() <= 60 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(60).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Result<JobSpec, RejectReason> {
        parse_job_bytes(s, "stem", Path::new("/srv/dl"), &[PathBuf::from("/srv/dl")], &|t| t == "http.files")
    }

    #[test]
    fn good_job() {
        let j = parse(br#"{"type":"http.files","urls":["http://x/a"],"max_items":5}"#).expect("ok");
        assert_eq!(j.name, "stem");
        assert_eq!(j.save_path, Path::new("/srv/dl"));
        assert_eq!(j.max_items, Some(5));
        assert!(j.params.contains_key("urls"));
        assert_eq!(j.job_dir(), Path::new("/srv/dl/stem"));
    }

    #[test]
    fn bad_jobs_have_reasons() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"   ", "incomplete JSON"),
            (b"{\"type\": \"http.fi", "incomplete JSON"),
            (b"[1,2]", "must be a JSON object"),
            (b"{}", "`type` is missing"),
            (b"{\"type\": 3}", "`type` must be a string"),
            (b"{\"type\": \"nope\"}", "unknown job type"),
            (b"{\"type\": \"http.files\", \"name\": 7}", "`name` must be"),
            (b"{\"type\": \"http.files\", \"save_path\": \"../x\"}", "must not contain `..`"),
            (b"{\"type\": \"http.files\", \"max_items\": -1}", "`max_items`"),
            (b"\xff\xfe{\0", "UTF-16"),
            (b"{\0\"\0t\0", "UTF-16"),
            (b"{\"type\":\"a\0\"}", "NUL"),
            (b"\x89PNG\r\n\x1a\n", "not UTF-8"),
            (b"{\"type\": \"http.files\", \"name\": \"..\"}", "only dots"),
            (b"{\"type\": \"http.files\", \"name\": \".\"}", "only dots"),
        ];
        for (input, want) in cases {
            let e = parse(input).expect_err("must reject");
            assert!(e.0.contains(want), "{input:?}: {e}");
        }
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert!(parse(deep.as_bytes()).expect_err("deep").0.contains("nested too deeply"));
    }

    #[test]
    fn names_are_sanitized() {
        let j = parse(br#"{"type":"http.files","name":"../../etc"}"#).expect("ok");
        assert_eq!(j.name, "___.._etc");
        let j = parse(br#"{"type":"http.files","save_path":"rel/dir"}"#).expect("ok");
        assert_eq!(j.save_path, Path::new("/srv/dl/rel/dir"));
    }

    #[test]
    fn save_path_must_resolve_inside_save_roots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("dl");
        let second = dir.path().join("other");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&root).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, root.join("link")).expect("symlink");
        let roots = [root.clone(), second.clone()];
        let check = |p: &str| check_save_path(p, &root, &roots);
        let e = check("/etc/cron.d").expect_err("outside");
        assert!(e.0.contains("save_path /etc/cron.d is outside save_roots ("), "{e}");
        assert!(check("link/x").expect_err("link out").0.contains("outside save_roots"));
        assert!(check(&root.join("link").display().to_string()).is_err());
        // A sibling that shares the root's string prefix is not inside it.
        assert!(check(&format!("{}2/x", root.display())).is_err());
        assert_eq!(check("rel/dir").expect("relative"), root.join("rel/dir"));
        assert!(check(&root.join("abs/new").display().to_string()).is_ok());
        // A second root that does not exist yet.
        assert!(check(&second.join("a/b").display().to_string()).is_ok());
    }
}
