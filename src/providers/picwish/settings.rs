//! The `picwish` configuration section.

use std::path::PathBuf;

use crate::config::{Config, KeyKind, KeySpec, SectionSpec};

/// The section.
pub const SECTION: SectionSpec = SectionSpec {
    name: "picwish",
    keys: &[
        KeySpec::new("api_key", KeyKind::NonEmpty, "the official API's key (X-API-KEY)")
            .env("SPOOLFETCH_PICWISH_API_KEY")
            .secret()
            .example("your-api-key"),
        KeySpec::new("api_url", KeyKind::Origin, "the official API's origin")
            .default("https://techhk.aoscdn.com"),
        KeySpec::new("web_url", KeyKind::Origin, "the web gateway's origin (interface \"web\")")
            .default("https://gw.aoscdn.com"),
        KeySpec::new(
            "oss_url",
            KeyKind::Origin,
            "an origin to upload to instead of the bucket's own host (a proxy); objects are then addressed path-style",
        ),
    ],
};

/// The resolved section.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The API key (never logged, never journaled).
    pub api_key: Option<String>,
    /// The official API's origin.
    pub api_url: String,
    /// The web gateway's origin.
    pub web_url: String,
    /// Where uploads go instead of `https://<bucket>.<accelerate>`.
    pub oss_url: Option<String>,
    /// Where the login and the anonymous token are kept.
    pub state_dir: PathBuf,
    /// The configured `input_roots`.
    pub input_roots: Vec<PathBuf>,
}

/// Reads the section.
pub fn settings(config: &Config) -> Settings {
    let v = config.values(SECTION);
    Settings {
        api_key: v.str("api_key").filter(|k| !k.trim().is_empty()),
        api_url: v.origin("api_url").unwrap_or_else(|| "https://techhk.aoscdn.com".into()),
        web_url: v.origin("web_url").unwrap_or_else(|| "https://gw.aoscdn.com".into()),
        oss_url: v.origin("oss_url"),
        state_dir: config.state_dir.clone(),
        input_roots: config.input_roots.clone(),
    }
}

/// The file `spoolfetch picwish login` writes the web token to.
pub fn login_file(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("picwish-token.json")
}

/// The file the anonymous web token is kept in.
pub fn anonymous_file(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("picwish-anonymous.json")
}
