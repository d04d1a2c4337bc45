//! Reading, layering and validating the configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::hints::{show, unknown_key, unknown_top_level};
use super::section::SectionSpec;

/// `proxy_mode`: how requests reach servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// 0: connect directly; proxy variables in the environment are ignored.
    Direct,
    /// 1: go through the configured `proxy`.
    Proxy,
    /// 2: connect to the addresses in `hosts` (TLS still checks the name).
    Pinned,
}

/// How the spool watcher learns about new files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// Events on local disks, polling on network and FUSE filesystems.
    Auto,
    /// Always use filesystem events (plus the periodic rescan).
    Events,
    /// Never use events; scan every `poll_ms`.
    Poll,
}

/// Values given on the command line; they override file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--instance NAME`.
    pub instance: Option<String>,
    /// `--concurrency N`.
    pub concurrency: Option<usize>,
    /// `--save-path DIR`.
    pub save_path: Option<PathBuf>,
}

/// The resolved configuration. Every field is documented in the README's
/// configuration table; defaults are in [`Config::default_for`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from (for messages), if from a file.
    pub source: Option<PathBuf>,
    /// Default SavePath of jobs that do not name one.
    pub save_path: PathBuf,
    /// Local folder for credentials and the download archive.
    pub state_dir: PathBuf,
    /// This daemon's name on a shared spool.
    pub instance: String,
    /// ConcurrencyNumber: download threads.
    pub concurrency: usize,
    /// How many jobs this daemon runs at once; further claimed jobs wait.
    pub jobs: usize,
    /// Recorder threads for live streams, apart from the download threads.
    pub live_concurrency: usize,
    /// IntervalTime: minimum gap between the end of one API call of an
    /// account and the start of the next.
    pub interval: Duration,
    /// Timeout: connect and read timeout of one request.
    pub timeout: Duration,
    /// Increment: lengthen the timeout on each retry round.
    pub timeout_increment: bool,
    /// Attempts per file within one round.
    pub retries: u32,
    /// Retry rounds over the files that failed transiently.
    pub rounds: u32,
    /// Longest wait that a rate-limit backoff may reach.
    pub backoff_max: Duration,
    /// ProxyMode.
    pub proxy_mode: ProxyMode,
    /// Proxy URL for mode 1.
    pub proxy: Option<String>,
    /// Host name → address for mode 2.
    pub hosts: BTreeMap<String, IpAddr>,
    /// Extra PEM root certificates.
    pub ca_file: Option<PathBuf>,
    /// How the spool is watched.
    pub watch: WatchMode,
    /// Full rescan period when events are used.
    pub rescan: Duration,
    /// Scan period when polling (network filesystems).
    pub poll: Duration,
    /// A job file must be unchanged for this long before it is taken.
    pub settle: Duration,
    /// How long in-flight downloads may run on after SIGTERM.
    pub shutdown_grace: Duration,
    /// Largest job file accepted, in bytes.
    pub max_job_bytes: u64,
    /// Folders jobs may write into; empty means "the configured
    /// `save_path` alone" (see [`Config::save_roots`]).
    pub save_roots: Vec<PathBuf>,
    /// The folders jobs may read local input files from (none by default:
    /// local inputs are refused); see [`crate::inputs`].
    pub input_roots: Vec<PathBuf>,
    /// Where notifications go (`notify`): none by default.
    pub notify: Vec<crate::alerts::Target>,
    /// All downloads together read at most this many bytes per second
    /// (`rate_limit`); 0: no limit.
    pub rate_limit: u64,
    /// A transfer slower than this many bytes per second over
    /// `min_speed_time` is cut and retried later (curl's `--speed-limit`).
    /// 0 turns the check off.
    pub min_speed: u64,
    /// The window over which `min_speed` is measured (curl's
    /// `--speed-time`).
    pub min_speed_time: Duration,
    /// Provider sections, already checked against their declarations.
    pub sections: BTreeMap<String, Map<String, Value>>,
    /// The default spool of commands run without `--spool` (the key
    /// `spool`; `$SPOOLFETCH_SPOOL` and `--spool` win over it).
    pub spool: Option<PathBuf>,
    /// Where each key that is not at its default was set (`save_path` →
    /// "environment variable SPOOLFETCH_SAVE_PATH", `pixiv.template` →
    /// "config file …"), for `spoolfetch config`.
    pub origins: BTreeMap<String, String>,
}

/// A configuration problem; the message names the key and its origin.
#[derive(Debug)]
pub struct ConfigError {
    /// One line: where, which key, what is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The top-level keys this module understands (provider sections aside).
pub(super) const KEYS: &[&str] = &[
    "spool",
    "save_path",
    "state_dir",
    "instance",
    "concurrency",
    "jobs",
    "interval_ms",
    "timeout_secs",
    "timeout_increment",
    "retries",
    "rounds",
    "backoff_max_secs",
    "proxy_mode",
    "proxy",
    "hosts",
    "ca_file",
    "watch",
    "rescan_secs",
    "poll_ms",
    "settle_ms",
    "shutdown_grace_secs",
    "max_job_bytes",
    "save_roots",
    "input_roots",
    "notify",
    "live_concurrency",
    "min_speed_bytes",
    "rate_limit",
    "min_speed_secs",
];

/// Environment variables for top-level keys: (key, variable).
const ENV: &[(&str, &str)] = &[
    ("save_path", "SPOOLFETCH_SAVE_PATH"),
    ("state_dir", "SPOOLFETCH_STATE_DIR"),
    ("instance", "SPOOLFETCH_INSTANCE"),
    ("concurrency", "SPOOLFETCH_CONCURRENCY"),
    ("interval_ms", "SPOOLFETCH_INTERVAL"),
    ("timeout_secs", "SPOOLFETCH_TIMEOUT"),
    ("timeout_increment", "SPOOLFETCH_INCREMENT"),
    ("proxy_mode", "SPOOLFETCH_PROXY_MODE"),
    ("proxy", "SPOOLFETCH_PROXY"),
    ("rate_limit", "SPOOLFETCH_RATE_LIMIT"),
    ("ca_file", "SSL_CERT_FILE"),
];

impl Config {
    /// The defaults, before any file, variable or flag.
    pub fn default_for(env: &dyn Fn(&str) -> Option<String>) -> Config {
        Config {
            source: None,
            save_path: PathBuf::from("downloads"),
            state_dir: default_state_dir(env),
            instance: default_instance(),
            concurrency: 8,
            jobs: 4,
            live_concurrency: 2,
            interval: Duration::from_millis(1000),
            timeout: Duration::from_secs(30),
            timeout_increment: true,
            retries: 3,
            rounds: 3,
            backoff_max: Duration::from_secs(300),
            proxy_mode: ProxyMode::Direct,
            proxy: None,
            hosts: BTreeMap::new(),
            ca_file: None,
            watch: WatchMode::Auto,
            rescan: Duration::from_secs(30),
            poll: Duration::from_millis(1000),
            settle: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(5),
            max_job_bytes: 64 << 20,
            save_roots: Vec::new(),
            input_roots: Vec::new(),
            notify: Vec::new(),
            rate_limit: 0,
            min_speed: 1024,
            min_speed_time: Duration::from_secs(30),
            sections: BTreeMap::new(),
            spool: None,
            origins: BTreeMap::new(),
        }
    }

    /// The folders jobs may write into: `save_roots` when configured,
    /// else the configured `save_path` alone.
    pub fn save_roots(&self) -> Vec<PathBuf> {
        if self.save_roots.is_empty() { vec![self.save_path.clone()] } else { self.save_roots.clone() }
    }

    /// Returns a provider section (empty when not configured).
    pub fn section(&self, name: &str) -> Map<String, Value> {
        self.sections.get(name).cloned().unwrap_or_default()
    }

    /// The interval a provider's section sets for its accounts' API calls
    /// (`<provider>.interval_ms`), overriding the provider's own pacing.
    pub fn provider_interval(&self, provider: &str) -> Option<Duration> {
        let ms = self.sections.get(provider)?.get("interval_ms")?.as_f64()?;
        Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    }

    /// The pause a provider's section sets for its accounts' API calls
    /// (`<provider>.pause_every` calls, then `<provider>.pause_ms`, 60 s
    /// unless given), overriding the provider's own: `Some(None)` turns
    /// it off (`pause_every: 0`), `None` leaves the provider's.
    pub fn provider_pause(&self, provider: &str) -> Option<Option<(u32, Duration)>> {
        let section = self.sections.get(provider)?;
        let every = section.get("pause_every")?.as_f64()?;
        let ms = section.get("pause_ms").and_then(serde_json::Value::as_f64).unwrap_or(60_000.0);
        let every = every.clamp(0.0, f64::from(u32::MAX)) as u32;
        Some((every > 0).then(|| (every, Duration::from_secs_f64(ms.max(0.0) / 1000.0))))
    }

    /// A provider section with typed reads and declared defaults.
    pub fn values(&self, spec: SectionSpec) -> super::SectionValues {
        super::SectionValues::new(spec, self.section(spec.name))
    }
}

/// systemd's `StateDirectory=` sets `$STATE_DIRECTORY`; otherwise the XDG
/// state home is used, so credentials stay on a local disk by default.
fn default_state_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(d) = env("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
        // systemd may pass several colon-separated directories.
        let first = d.split(':').next().unwrap_or(&d).to_string();
        return PathBuf::from(first);
    }
    if let Some(d) = env("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Path::new(&d).join("spoolfetch");
    }
    if let Some(h) = env("HOME").filter(|d| !d.is_empty()) {
        return Path::new(&h).join(".local/state/spoolfetch");
    }
    PathBuf::from(".spoolfetch-state")
}

/// The host name, made safe for use as a folder name.
fn default_instance() -> String {
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy().into_owned();
    crate::naming::sanitize_component(&host, "localhost")
}

/// Loads the configuration.
///
/// `spool` is used to find `<spool>/spoolfetch.json`; `env` reads an
/// environment variable (injected so tests need not touch the process
/// environment); `sections` are the provider sections that may appear.
pub fn load(
    spool: &Path,
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    sections: &[SectionSpec],
) -> Result<Config, ConfigError> {
    let mut cfg = Config::default_for(env);
    let file = overrides
        .config_file
        .clone()
        .or_else(|| env("SPOOLFETCH_CONFIG").filter(|s| !s.is_empty()).map(PathBuf::from))
        .or_else(|| {
            let p = spool.join("spoolfetch.json");
            p.is_file().then_some(p)
        });
    let mut root = Map::new();
    if let Some(path) = &file {
        let origin = format!("config file {}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| err(&origin, format!("cannot read it: {e}")))?;
        let value: Value =
            serde_json::from_str(&text).map_err(|e| err(&origin, format!("not valid JSON: {e}")))?;
        root = match value {
            Value::Object(m) => m,
            _ => return Err(err(&origin, "must be a JSON object".into())),
        };
        cfg.source = Some(path.clone());
    }
    let origin_file =
        file.as_ref().map_or_else(|| "config".to_string(), |p| format!("config file {}", p.display()));

    for (key, value) in &root {
        if KEYS.contains(&key.as_str()) {
            apply(&mut cfg, key, value, &origin_file)?;
        } else if let Some(spec) = sections.iter().find(|s| s.name == key) {
            let Value::Object(m) = value else {
                return Err(err(&origin_file, format!("key `{key}` must be an object")));
            };
            spec.check(m, &origin_file)?;
            cfg.sections.insert(spec.name.to_string(), m.clone());
        } else {
            let names: Vec<&str> = sections.iter().map(|s| s.name).collect();
            let known: Vec<&str> = KEYS.iter().chain(&names).copied().collect();
            return Err(err(&origin_file, unknown_top_level(key, &known, &names)));
        }
    }

    for (key, var) in ENV {
        if let Some(raw) = env(var).filter(|v| !v.is_empty()) {
            let value = env_value(key, &raw);
            apply(&mut cfg, key, &value, &format!("environment variable {var}"))?;
        }
    }
    for spec in sections {
        let mut m = cfg.sections.remove(spec.name).unwrap_or_default();
        for k in m.keys() {
            cfg.origins.insert(format!("{}.{k}", spec.name), origin_file.clone());
        }
        spec.apply_env(&mut m, env)?;
        for k in spec.keys {
            if let Some(var) = k.env.filter(|v| env(v).is_some_and(|x| !x.is_empty())) {
                cfg.origins
                    .insert(format!("{}.{}", spec.name, k.name), format!("environment variable {var}"));
            }
        }
        if !m.is_empty() {
            cfg.sections.insert(spec.name.to_string(), m);
        }
    }

    if let Some(i) = &overrides.instance {
        apply(&mut cfg, "instance", &Value::String(i.clone()), "--instance")?;
    }
    if let Some(c) = overrides.concurrency {
        apply(&mut cfg, "concurrency", &Value::from(c), "--concurrency")?;
    }
    if let Some(p) = &overrides.save_path {
        cfg.save_path = p.clone();
        cfg.origins.insert("save_path".into(), "--save-path".into());
    }

    check_consistency(&cfg, &origin_file)?;
    Ok(cfg)
}

/// Turns an environment string into the JSON value its key expects.
fn env_value(key: &str, raw: &str) -> Value {
    match key {
        "concurrency" | "interval_ms" | "timeout_secs" | "proxy_mode" => {
            raw.trim().parse::<u64>().map_or_else(|_| Value::String(raw.to_string()), Value::from)
        }
        "timeout_increment" => match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Value::Bool(true),
            "0" | "false" | "no" | "off" => Value::Bool(false),
            _ => Value::String(raw.to_string()),
        },
        _ => Value::String(raw.to_string()),
    }
}

/// Sets one top-level key after checking its type and range.
fn apply(cfg: &mut Config, key: &str, v: &Value, origin: &str) -> Result<(), ConfigError> {
    let bad = |what: &str| err(origin, format!("key `{key}`: expected {what}, got {}", show(v)));
    match key {
        "spool" => cfg.spool = Some(PathBuf::from(nonempty_str(v).ok_or_else(|| bad("a path"))?)),
        "save_path" => cfg.save_path = PathBuf::from(nonempty_str(v).ok_or_else(|| bad("a path"))?),
        "state_dir" => cfg.state_dir = PathBuf::from(nonempty_str(v).ok_or_else(|| bad("a path"))?),
        "instance" => {
            let s = nonempty_str(v).ok_or_else(|| bad("a name"))?;
            let ok = s.len() <= 64
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && !s.starts_with('.');
            if !ok {
                return Err(bad(
                    "a name of letters, digits, '-', '_' and '.' (at most 64, not starting with '.')",
                ));
            }
            cfg.instance = s.to_string();
        }
        "concurrency" => {
            cfg.concurrency = int_in(v, 1, 256).ok_or_else(|| bad("an integer from 1 to 256"))? as usize
        }
        "jobs" => cfg.jobs = int_in(v, 1, 64).ok_or_else(|| bad("an integer from 1 to 64"))? as usize,
        "live_concurrency" => {
            cfg.live_concurrency = int_in(v, 1, 64).ok_or_else(|| bad("an integer from 1 to 64"))? as usize
        }
        "interval_ms" => {
            cfg.interval = Duration::from_millis(
                int_in(v, 0, 3_600_000).ok_or_else(|| bad("milliseconds from 0 to 3600000"))?,
            )
        }
        "timeout_secs" => {
            cfg.timeout =
                Duration::from_secs(int_in(v, 1, 3600).ok_or_else(|| bad("seconds from 1 to 3600"))?)
        }
        "timeout_increment" => cfg.timeout_increment = v.as_bool().ok_or_else(|| bad("true or false"))?,
        "retries" => cfg.retries = int_in(v, 1, 100).ok_or_else(|| bad("an integer from 1 to 100"))? as u32,
        "rounds" => cfg.rounds = int_in(v, 1, 100).ok_or_else(|| bad("an integer from 1 to 100"))? as u32,
        "backoff_max_secs" => {
            cfg.backoff_max =
                Duration::from_secs(int_in(v, 1, 86_400).ok_or_else(|| bad("seconds from 1 to 86400"))?)
        }
        "proxy_mode" => {
            cfg.proxy_mode = match int_in(v, 0, 2) {
                Some(0) => ProxyMode::Direct,
                Some(1) => ProxyMode::Proxy,
                Some(2) => ProxyMode::Pinned,
                _ => return Err(bad("0 (direct), 1 (proxy) or 2 (hosts)")),
            }
        }
        "proxy" => {
            let s = nonempty_str(v).ok_or_else(|| bad("a proxy URL"))?;
            let scheme = s.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
            if !matches!(scheme.as_deref(), Some("http" | "https" | "socks5" | "socks5h" | "socks4")) {
                return Err(err(
                    origin,
                    format!(
                        "key `proxy`: expected an http://, https://, socks4://, socks5:// or socks5h:// URL, got a value starting with {:?}",
                        s.chars().take(8).collect::<String>()
                    ),
                ));
            }
            cfg.proxy = Some(s.to_string());
        }
        "hosts" => {
            let Value::Object(m) = v else { return Err(bad("an object of host name → IP address")) };
            let mut hosts = BTreeMap::new();
            for (host, ip) in m {
                let parsed = ip.as_str().and_then(|s| s.parse::<IpAddr>().ok()).ok_or_else(|| {
                    err(origin, format!("key `hosts.{host}`: expected an IP address, got {}", show(ip)))
                })?;
                if host.is_empty() || host.contains(['/', ':', ' ']) {
                    return Err(err(origin, format!("key `hosts`: {host:?} is not a host name")));
                }
                hosts.insert(host.to_ascii_lowercase(), parsed);
            }
            cfg.hosts = hosts;
        }
        "ca_file" => cfg.ca_file = Some(PathBuf::from(nonempty_str(v).ok_or_else(|| bad("a path"))?)),
        "watch" => {
            cfg.watch = match v.as_str() {
                Some("auto") => WatchMode::Auto,
                Some("events") => WatchMode::Events,
                Some("poll") => WatchMode::Poll,
                _ => return Err(bad("\"auto\", \"events\" or \"poll\"")),
            }
        }
        "rescan_secs" => {
            cfg.rescan =
                Duration::from_secs(int_in(v, 1, 86_400).ok_or_else(|| bad("seconds from 1 to 86400"))?)
        }
        "poll_ms" => {
            cfg.poll = Duration::from_millis(
                int_in(v, 50, 600_000).ok_or_else(|| bad("milliseconds from 50 to 600000"))?,
            )
        }
        "settle_ms" => {
            cfg.settle = Duration::from_millis(
                int_in(v, 0, 600_000).ok_or_else(|| bad("milliseconds from 0 to 600000"))?,
            )
        }
        "shutdown_grace_secs" => {
            cfg.shutdown_grace =
                Duration::from_secs(int_in(v, 0, 600).ok_or_else(|| bad("seconds from 0 to 600"))?)
        }
        "max_job_bytes" => {
            cfg.max_job_bytes =
                int_in(v, 1024, 1 << 34).ok_or_else(|| bad("bytes from 1024 to 17179869184"))?
        }
        "save_roots" => cfg.save_roots = folders(key, v, origin, false)?,
        "input_roots" => cfg.input_roots = folders(key, v, origin, true)?,
        "notify" => cfg.notify = crate::alerts::parse_targets(v, "notify").map_err(|e| err(origin, e))?,
        "rate_limit" => {
            cfg.rate_limit = int_in(v, 0, 1 << 40).ok_or_else(|| bad("bytes per second (0: no limit)"))?
        }
        "min_speed_bytes" => {
            cfg.min_speed = int_in(v, 0, 1 << 40).ok_or_else(|| bad("bytes per second (0 turns it off)"))?
        }
        "min_speed_secs" => {
            cfg.min_speed_time =
                Duration::from_secs(int_in(v, 1, 86_400).ok_or_else(|| bad("seconds from 1 to 86400"))?)
        }
        _ => return Err(err(origin, unknown_key(key, KEYS))),
    }
    cfg.origins.insert(key.to_string(), origin.to_string());
    Ok(())
}

/// An array of folder paths (`absolute`: each must be absolute, because a
/// relative root would depend on the daemon's working folder).
fn folders(key: &str, v: &Value, origin: &str, absolute: bool) -> Result<Vec<PathBuf>, ConfigError> {
    let Value::Array(items) = v else {
        return Err(err(origin, format!("key `{key}`: expected an array of folder paths, got {}", show(v))));
    };
    let mut roots = Vec::with_capacity(items.len());
    for item in items {
        let p = nonempty_str(item)
            .ok_or_else(|| err(origin, format!("key `{key}`: expected folder paths, got {}", show(item))))?;
        if absolute && !Path::new(p).is_absolute() {
            return Err(err(origin, format!("key `{key}`: {p:?} is not an absolute path")));
        }
        roots.push(PathBuf::from(p));
    }
    Ok(roots)
}

/// Checks that need several keys at once.
fn check_consistency(cfg: &Config, origin: &str) -> Result<(), ConfigError> {
    match cfg.proxy_mode {
        ProxyMode::Proxy if cfg.proxy.is_none() => {
            Err(err(origin, "key `proxy_mode` is 1 (proxy) but no `proxy` URL is set".into()))
        }
        ProxyMode::Pinned if cfg.hosts.is_empty() => {
            Err(err(origin, "key `proxy_mode` is 2 (hosts) but `hosts` is empty".into()))
        }
        _ => Ok(()),
    }
}

/// Returns the value as a non-empty string.
fn nonempty_str(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.trim().is_empty())
}

/// Returns the value as an integer within `lo..=hi`.
fn int_in(v: &Value, lo: u64, hi: u64) -> Option<u64> {
    v.as_u64().filter(|n| (lo..=hi).contains(n))
}

/// Builds a [`ConfigError`].
pub(super) fn err(origin: &str, what: String) -> ConfigError {
    ConfigError { message: format!("{origin}: {what}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load_with(json: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.json");
        std::fs::write(&file, json).expect("write");
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let env = move |k: &str| vars.get(k).cloned();
        let ov = Overrides { config_file: Some(file), ..Overrides::default() };
        load(dir.path(), &ov, &env, &[])
    }

    #[test]
    fn a_providers_pause_is_read_from_its_section() {
        let load_with = |json: &str, _: &[(&str, &str)]| {
            let dir = tempfile::tempdir().expect("tempdir");
            let file = dir.path().join("c.json");
            std::fs::write(&file, json).expect("write");
            let ov = Overrides { config_file: Some(file), ..Overrides::default() };
            load(dir.path(), &ov, &|_| None, &crate::providers::section_specs())
        };
        let c = load_with(
            r#"{"douyin": {"pause_every": 25, "pause_ms": 9000}, "demo": {"pause_every": 3}}"#,
            &[],
        )
        .expect("valid");
        assert_eq!(c.provider_pause("douyin"), Some(Some((25, Duration::from_secs(9)))));
        assert_eq!(c.provider_pause("demo"), Some(Some((3, Duration::from_secs(60)))), "60 s unless given");
        assert_eq!(c.provider_pause("pixiv"), None, "the provider's own");
        let off = load_with(r#"{"douyin": {"pause_every": 0}}"#, &[]).expect("valid");
        assert_eq!(off.provider_pause("douyin"), Some(None));
        assert!(load_with(r#"{"douyin": {"pause_every": -1}}"#, &[]).is_err());
        assert!(load_with(r#"{"douyin": {"pause_ms": "long"}}"#, &[]).is_err());
    }

    #[test]
    fn defaults_and_values() {
        let c = load_with(r#"{"concurrency": 3, "interval_ms": 250, "timeout_increment": false}"#, &[])
            .expect("valid");
        assert_eq!(c.concurrency, 3);
        assert_eq!(c.interval, Duration::from_millis(250));
        assert!(!c.timeout_increment);
        assert_eq!(c.proxy_mode, ProxyMode::Direct);
    }

    #[test]
    fn env_overrides_file() {
        let c = load_with(
            r#"{"concurrency": 3}"#,
            &[("SPOOLFETCH_CONCURRENCY", "5"), ("SPOOLFETCH_INCREMENT", "no")],
        )
        .expect("valid");
        assert_eq!(c.concurrency, 5);
        assert!(!c.timeout_increment);
    }

    #[test]
    fn clear_errors() {
        let e = load_with(r#"{"concurency": 3}"#, &[]).expect_err("unknown");
        assert!(e.message.contains("unknown key `concurency` (did you mean `concurrency`?)"), "{e}");
        let e = load_with(r#"{"concurrency": "many"}"#, &[]).expect_err("type");
        assert!(
            e.message.contains("key `concurrency`: expected an integer from 1 to 256, got \"many\""),
            "{e}"
        );
        let e = load_with(r#"{"concurrency": 0}"#, &[]).expect_err("range");
        assert!(e.message.contains("got 0"), "{e}");
        let e = load_with(r#"{}"#, &[("SPOOLFETCH_TIMEOUT", "soon")]).expect_err("env");
        assert!(e.message.contains("environment variable SPOOLFETCH_TIMEOUT"), "{e}");
        let e = load_with(r#"{"proxy_mode": 1}"#, &[]).expect_err("needs proxy");
        assert!(e.message.contains("no `proxy` URL"), "{e}");
        let e = load_with(r#"{"proxy": "ftp://x"}"#, &[]).expect_err("scheme");
        assert!(e.message.contains("socks5"), "{e}");
        let e = load_with(r#"{"hosts": {"i.pximg.net": "not-an-ip"}}"#, &[]).expect_err("ip");
        assert!(e.message.contains("hosts.i.pximg.net"), "{e}");
        let e = load_with(r#"[1]"#, &[]).expect_err("object");
        assert!(e.message.contains("must be a JSON object"), "{e}");
        let e = load_with(r#"{"proxy": "http://user:supersecretpassword@h:1", "proxy_mode": 9}"#, &[])
            .expect_err("mode");
        assert!(!e.message.contains("supersecret"), "{e}");
    }

    #[test]
    fn secrets_are_not_echoed() {
        let e = load_with(r#"{"instance": "hunter2-password-token"}"#, &[]);
        // A valid instance name is accepted; an invalid long one is not echoed.
        assert!(e.is_ok());
        let e = load_with(r#"{"instance": "a secret token with spaces"}"#, &[]).expect_err("bad");
        assert!(!e.message.contains("secret token"), "{e}");
    }
}
