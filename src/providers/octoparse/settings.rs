//! The `octoparse` configuration section.

use crate::config::{Config, KeyKind, KeySpec, SectionSpec};

/// The section.
pub const SECTION: SectionSpec = SectionSpec {
    name: "octoparse",
    keys: &[
        KeySpec::new("username", KeyKind::NonEmpty, "the Octoparse account")
            .env("SPOOLFETCH_OCTOPARSE_USERNAME")
            .example("user@example.com"),
        KeySpec::new("password", KeyKind::NonEmpty, "the account's password")
            .env("SPOOLFETCH_OCTOPARSE_PASSWORD")
            .secret()
            .example("password"),
        KeySpec::new(
            "base_url",
            KeyKind::Origin,
            "DataAPI origin (https://dataapi.bazhuayu.com for 八爪鱼 accounts)",
        )
        .default("https://dataapi.octoparse.com"),
        // A margin below the server's 20/s and 100-call bucket keeps clock
        // differences from costing 429s.
        KeySpec::new(
            "requests_per_sec",
            KeyKind::Number { min: 0.0, max: 20.0, above_min: true },
            "requests per second the client allows itself",
        )
        .default("18")
        .expect("a number above 0 and at most 20 (the server allows 20/s)"),
        KeySpec::new(
            "burst",
            KeyKind::Number { min: 1.0, max: 100.0, above_min: false },
            "largest burst of requests after idle time",
        )
        .default("90")
        .expect("a number from 1 to 100 (the server's bucket holds 100)"),
    ],
};

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

/// Reads the section.
pub fn settings(config: &Config) -> Settings {
    let v = config.values(SECTION);
    Settings {
        username: v.str("username"),
        password: v.str("password"),
        base_url: v.origin("base_url").unwrap_or_default(),
        rate: v.f64("requests_per_sec").unwrap_or(18.0),
        burst: v.f64("burst").unwrap_or(90.0),
        state_dir: config.state_dir.clone(),
    }
}
