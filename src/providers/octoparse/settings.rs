//! The `octoparse` configuration section.

use serde_json::{Map, Value};

use crate::config::Config;

/// Keys of the section.
pub const SECTION_KEYS: &[&str] = &["username", "password", "base_url", "requests_per_sec", "burst"];

/// The resolved section.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Account name.
    pub username: Option<String>,
    /// Password (never logged).
    pub password: Option<String>,
    /// API origin: `https://dataapi.octoparse.com`, or
    /// `https://dataapi.bazhuayu.com` for 八爪鱼 accounts.
    pub base_url: String,
    /// Requests per second the client allows itself.
    pub rate: f64,
    /// Largest burst after idle time.
    pub burst: f64,
    /// Where the refresh token is kept.
    pub state_dir: std::path::PathBuf,
}

/// Checks the section.
pub fn validate_section(m: &Map<String, Value>) -> Result<(), String> {
    for (k, v) in m {
        let ok = match k.as_str() {
            "username" | "password" | "base_url" => v.as_str().is_some_and(|s| !s.is_empty()),
            "requests_per_sec" => v.as_f64().is_some_and(|n| n > 0.0 && n <= 20.0),
            "burst" => v.as_f64().is_some_and(|n| (1.0..=100.0).contains(&n)),
            _ => return Err(format!("unknown key `{k}` (known: {})", SECTION_KEYS.join(", "))),
        };
        if !ok {
            return Err(match k.as_str() {
                "requests_per_sec" => {
                    "key `requests_per_sec` must be a number above 0 and at most 20 (the server allows 20/s)"
                        .into()
                }
                "burst" => {
                    "key `burst` must be a number from 1 to 100 (the server's bucket holds 100)".into()
                }
                _ => format!("key `{k}` must be a non-empty string"),
            });
        }
    }
    Ok(())
}

/// Reads the section.
pub fn settings(config: &Config) -> Settings {
    let m = config.section("octoparse");
    let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    Settings {
        username: s("username"),
        password: s("password"),
        base_url: s("base_url")
            .map(|u| if u.contains("://") { u } else { format!("https://{u}") })
            .unwrap_or_else(|| "https://dataapi.octoparse.com".into())
            .trim_end_matches('/')
            .to_string(),
        // A margin below the server's 20/s and 100-call bucket keeps clock
        // differences from costing 429s.
        rate: m.get("requests_per_sec").and_then(Value::as_f64).unwrap_or(18.0),
        burst: m.get("burst").and_then(Value::as_f64).unwrap_or(90.0),
        state_dir: config.state_dir.clone(),
    }
}
