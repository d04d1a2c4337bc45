//! The effective configuration as `spoolfetch config` shows it: every key
//! with its value and where that value came from, secrets masked.
//!
//! The values are read back from the resolved [`Config`] (not from the
//! file), so what is shown is what the daemon uses; the sources are the
//! ones [`super::load`] recorded.

use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};

use super::load::{Config, ProxyMode, WatchMode};
use super::section::SectionSpec;

/// One key of the effective configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    /// The key as it is written in a configuration file (`pixiv.template`
    /// for a section key).
    pub key: String,
    /// Its value; a secret's is `"***"` (or null when unset).
    pub value: Value,
    /// Where it came from: `default`, `config file …`, `environment
    /// variable …`, or a flag such as `--instance`.
    pub source: String,
}

/// What a secret shows instead of its value.
const MASK: &str = "***";

impl Config {
    /// Every top-level key and every key of `sections`, in that order,
    /// with its effective value and source. Secrets (section keys declared
    /// secret, a proxy's userinfo) are masked.
    pub fn effective(&self, sections: &[SectionSpec]) -> Vec<Setting> {
        let mut out: Vec<Setting> = self
            .top_level()
            .into_iter()
            .map(|(key, value)| Setting { key: key.to_string(), value, source: self.origin_of(key) })
            .collect();
        for spec in sections {
            let set = self.sections.get(spec.name);
            for k in spec.keys {
                let full = format!("{}.{}", spec.name, k.name);
                let value = match set.and_then(|m| m.get(k.name)) {
                    Some(_) if k.secret => Value::String(MASK.into()),
                    Some(v) => v.clone(),
                    None if k.secret => Value::Null,
                    None => k.default.map_or(Value::Null, |d| whole(k.kind.parse(d))),
                };
                let source = self.origin_of(&full);
                out.push(Setting { key: full, value, source });
            }
        }
        out
    }

    /// Where `key` was set, or "default".
    fn origin_of(&self, key: &str) -> String {
        self.origins.get(key).cloned().unwrap_or_else(|| "default".into())
    }

    /// The top-level keys and their values, as they would be written in a
    /// configuration file.
    fn top_level(&self) -> Vec<(&'static str, Value)> {
        let path = |p: &Path| Value::String(p.display().to_string());
        let paths = |v: &[std::path::PathBuf]| Value::Array(v.iter().map(|p| path(p)).collect());
        let ms = |d: std::time::Duration| json!(d.as_millis() as u64);
        let secs = |d: std::time::Duration| json!(d.as_secs());
        vec![
            ("spool", self.spool.as_deref().map_or(Value::Null, path)),
            ("save_path", path(&self.save_path)),
            ("state_dir", path(&self.state_dir)),
            ("instance", json!(self.instance)),
            ("concurrency", json!(self.concurrency)),
            ("jobs", json!(self.jobs)),
            ("live_concurrency", json!(self.live_concurrency)),
            ("interval_ms", ms(self.interval)),
            ("timeout_secs", secs(self.timeout)),
            ("timeout_increment", json!(self.timeout_increment)),
            ("retries", json!(self.retries)),
            ("rounds", json!(self.rounds)),
            ("backoff_max_secs", secs(self.backoff_max)),
            (
                "proxy_mode",
                json!(match self.proxy_mode {
                    ProxyMode::Direct => 0,
                    ProxyMode::Proxy => 1,
                    ProxyMode::Pinned => 2,
                }),
            ),
            ("proxy", self.proxy.as_deref().map_or(Value::Null, |p| json!(crate::http::display_url(p)))),
            (
                "hosts",
                json!(
                    self.hosts
                        .iter()
                        .map(|(h, ip)| (h.clone(), json!(ip.to_string())))
                        .collect::<serde_json::Map<_, _>>()
                ),
            ),
            ("ca_file", self.ca_file.as_deref().map_or(Value::Null, path)),
            (
                "watch",
                json!(match self.watch {
                    WatchMode::Auto => "auto",
                    WatchMode::Events => "events",
                    WatchMode::Poll => "poll",
                }),
            ),
            ("rescan_secs", secs(self.rescan)),
            ("poll_ms", ms(self.poll)),
            ("settle_ms", ms(self.settle)),
            ("shutdown_grace_secs", secs(self.shutdown_grace)),
            ("max_job_bytes", json!(self.max_job_bytes)),
            ("save_roots", paths(&self.save_roots())),
            ("input_roots", paths(&self.input_roots)),
            (
                "notify",
                Value::Array(
                    self.notify
                        .iter()
                        .map(|t| {
                            let events: Vec<&str> = t.events.iter().map(|e| e.name()).collect();
                            match &t.via {
                                crate::alerts::Via::Webhook(_) => {
                                    json!({"events": events, "webhook": t.shown()})
                                }
                                crate::alerts::Via::Exec(argv) => json!({"events": events, "exec": argv}),
                            }
                        })
                        .collect(),
                ),
            ),
            ("min_speed_bytes", json!(self.min_speed)),
            ("rate_limit", json!(self.rate_limit)),
            ("min_speed_secs", secs(self.min_speed_time)),
        ]
    }
}

/// A default such as `60` is parsed as the float 60.0; it is shown as
/// it would be written.
fn whole(v: Value) -> Value {
    match v.as_f64() {
        Some(n) if v.is_f64() && n.fract() == 0.0 && n.abs() < 1e15 => json!(n as i64),
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::{KEYS, Overrides, load};
    use super::super::section::{KeyKind, KeySpec};
    use super::*;

    const SPEC: SectionSpec = SectionSpec {
        name: "demo",
        keys: &[
            KeySpec::new("token", KeyKind::Text, "credential").env("DEMO_TOKEN").secret(),
            KeySpec::new("rate", KeyKind::Number { min: 0.0, max: 20.0, above_min: true }, "per second")
                .default("18"),
            KeySpec::new("user", KeyKind::NonEmpty, "account"),
        ],
    };

    #[test]
    fn every_key_with_its_source_and_secrets_masked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.json");
        std::fs::write(
            &file,
            r#"{"concurrency": 3, "proxy_mode": 1, "proxy": "http://u:hunter2@p:8080", "demo": {"user": "me"}}"#,
        )
        .expect("write");
        let env = |k: &str| match k {
            "SPOOLFETCH_TIMEOUT" => Some("9".to_string()),
            "DEMO_TOKEN" => Some("s3cr3t-token".to_string()),
            _ => None,
        };
        let ov =
            Overrides { config_file: Some(file.clone()), instance: Some("x".into()), ..Overrides::default() };
        let cfg = load(dir.path(), &ov, &env, &[SPEC]).expect("valid");
        let all = cfg.effective(&[SPEC]);
        let get = |k: &str| all.iter().find(|s| s.key == k).unwrap_or_else(|| panic!("{k} missing"));
        let in_file = format!("config file {}", file.display());
        assert_eq!(
            (get("concurrency").value.clone(), get("concurrency").source.as_str()),
            (json!(3), in_file.as_str())
        );
        assert_eq!(get("timeout_secs").value, json!(9));
        assert_eq!(get("timeout_secs").source, "environment variable SPOOLFETCH_TIMEOUT");
        assert_eq!(get("instance").source, "--instance");
        assert_eq!(get("retries").source, "default");
        assert_eq!(get("demo.rate").value, json!(18));
        assert_eq!(get("demo.user").source, in_file);
        assert_eq!(get("demo.token").value, json!("***"));
        assert_eq!(get("demo.token").source, "environment variable DEMO_TOKEN");
        let text = serde_json::to_string(&all).expect("json");
        assert!(!text.contains("hunter2") && !text.contains("s3cr3t"), "{text}");
        for k in KEYS {
            get(k);
        }
    }
}
