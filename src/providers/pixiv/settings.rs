//! The `pixiv` configuration section and the options every Pixiv job
//! accepts (naming, sidecars, filters).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::Config;
use crate::job::RejectReason;

/// Keys of the `pixiv` configuration section.
pub const SECTION_KEYS: &[&str] = &[
    "refresh_token",
    "image_host",
    "api_url",
    "oauth_url",
    "rate_limit_secs",
    "accept_language",
    "template",
    "by_user",
    "sidecar",
    "ugoira_format",
];

/// The resolved section.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configured refresh token (a stored, rotated one may supersede it).
    pub refresh_token: Option<String>,
    /// Origin that replaces `https://i.pximg.net` in image URLs.
    pub image_host: Option<String>,
    /// App API origin.
    pub api_url: String,
    /// OAuth origin.
    pub oauth_url: String,
    /// First wait after a "Rate Limit" answer.
    pub rate_limit_base: Duration,
    /// `Accept-Language` (language of tag translations and messages).
    pub accept_language: String,
    /// Defaults for job options.
    pub defaults: Options,
    /// Where the token file and archive live.
    pub state_dir: std::path::PathBuf,
}

/// Checks the section (the config loader calls this).
pub fn validate_section(m: &Map<String, Value>) -> Result<(), String> {
    for (k, v) in m {
        if !SECTION_KEYS.contains(&k.as_str()) {
            return Err(format!("unknown key `{k}` (known: {})", SECTION_KEYS.join(", ")));
        }
        let ok = match k.as_str() {
            "rate_limit_secs" => v.as_f64().is_some_and(|n| (0.0..=3600.0).contains(&n)),
            "by_user" | "sidecar" => v.is_boolean(),
            "ugoira_format" => v.as_str().is_some_and(|s| UGOIRA_FORMATS.contains(&s)),
            "image_host" | "api_url" | "oauth_url" => v.as_str().is_some_and(|s| !s.trim().is_empty()),
            _ => v.is_string(),
        };
        if !ok {
            return Err(format!("key `{k}` has a wrong type or value"));
        }
    }
    Ok(())
}

/// Accepted ugoira output formats.
pub const UGOIRA_FORMATS: &[&str] = &["zip", "gif", "apng", "webp"];

/// Reads the section of a resolved configuration.
pub fn settings(config: &Config) -> Settings {
    let m = config.section("pixiv");
    let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    let origin = |v: Option<String>, default: &str| {
        v.map(|u| if u.contains("://") { u } else { format!("https://{u}") })
            .unwrap_or_else(|| default.to_string())
            .trim_end_matches('/')
            .to_string()
    };
    Settings {
        refresh_token: s("refresh_token").filter(|t| !t.trim().is_empty()),
        image_host: s("image_host").map(|h| origin(Some(h), "")),
        api_url: origin(s("api_url"), "https://app-api.pixiv.net"),
        oauth_url: origin(s("oauth_url"), "https://oauth.secure.pixiv.net"),
        rate_limit_base: Duration::from_secs_f64(
            m.get("rate_limit_secs").and_then(Value::as_f64).unwrap_or(60.0),
        ),
        accept_language: s("accept_language").unwrap_or_else(|| "en-us".into()),
        defaults: Options {
            template: s("template"),
            by_user: m.get("by_user").and_then(Value::as_bool).unwrap_or(false),
            sidecar: m.get("sidecar").and_then(Value::as_bool).unwrap_or(false),
            ugoira_format: s("ugoira_format").unwrap_or_else(|| "zip".into()),
            filter: Filter::default(),
            stop_after_seen: None,
            archive: true,
        },
        state_dir: config.state_dir.clone(),
    }
}

/// How AI-generated works are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AiFilter {
    /// Keep all.
    #[default]
    Any,
    /// Drop works marked AI-generated (`illust_ai_type` 2).
    Exclude,
    /// Keep only works marked AI-generated.
    Only,
}

/// Which works a job keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Work types to keep (`illust`, `manga`, `ugoira`); all when empty.
    pub types: Vec<String>,
    /// AI filter.
    pub ai: AiFilter,
    /// Allowed `x_restrict` values; all when empty.
    pub x_restrict: Vec<u8>,
    /// Minimum bookmarks.
    pub min_bookmarks: u64,
    /// Earliest creation date (`YYYY-MM-DD`, inclusive).
    pub date_from: Option<String>,
    /// Latest creation date (`YYYY-MM-DD`, inclusive).
    pub date_to: Option<String>,
    /// Keep only works with at least one of these tags (case-insensitive).
    pub tags_include: Vec<String>,
    /// Drop works with any of these tags (case-insensitive).
    pub tags_exclude: Vec<String>,
}

/// Options every Pixiv job accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// File path template (may contain `/`).
    pub template: Option<String>,
    /// Put files under a folder named by the artist's user id.
    pub by_user: bool,
    /// Write a JSON sidecar per work.
    pub sidecar: bool,
    /// What to make of ugoira zips.
    pub ugoira_format: String,
    /// Which works to keep.
    pub filter: Filter,
    /// End the listing after this many already-archived works in a row.
    pub stop_after_seen: Option<u32>,
    /// Use the download archive (skip archived works, record new ones).
    pub archive: bool,
}

/// Keys of [`Options`] in a job file.
pub const OPTION_KEYS: &[&str] = &[
    "template",
    "by_user",
    "sidecar",
    "ugoira_format",
    "types",
    "ai",
    "x_restrict",
    "min_bookmarks",
    "date_from",
    "date_to",
    "tags_include",
    "tags_exclude",
    "stop_after_seen",
    "archive",
];

/// Takes the option keys out of a job's parameters.
pub fn take_options(params: &mut Map<String, Value>, defaults: &Options) -> Result<Options, RejectReason> {
    let mut o = defaults.clone();
    let bad = |k: &str, what: &str| RejectReason(format!("key `{k}` must be {what}"));
    if let Some(v) = params.remove("template") {
        let t = v
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| bad("template", "a non-empty string"))?;
        super::naming::check_template(t).map_err(RejectReason)?;
        o.template = Some(t.to_string());
    }
    if let Some(v) = params.remove("by_user") {
        o.by_user = v.as_bool().ok_or_else(|| bad("by_user", "true or false"))?;
    }
    if let Some(v) = params.remove("sidecar") {
        o.sidecar = v.as_bool().ok_or_else(|| bad("sidecar", "true or false"))?;
    }
    if let Some(v) = params.remove("ugoira_format") {
        let f = v
            .as_str()
            .filter(|s| UGOIRA_FORMATS.contains(s))
            .ok_or_else(|| bad("ugoira_format", "zip, gif, apng or webp"))?;
        o.ugoira_format = f.to_string();
    }
    if let Some(v) = params.remove("types") {
        let list = string_list(&v).ok_or_else(|| bad("types", "an array of illust, manga, ugoira"))?;
        if list.iter().any(|t| !["illust", "manga", "ugoira"].contains(&t.as_str())) {
            return Err(bad("types", "an array of illust, manga, ugoira"));
        }
        o.filter.types = list;
    }
    if let Some(v) = params.remove("ai") {
        o.filter.ai = match v.as_str() {
            Some("any") => AiFilter::Any,
            Some("exclude") => AiFilter::Exclude,
            Some("only") => AiFilter::Only,
            _ => return Err(bad("ai", "\"any\", \"exclude\" or \"only\"")),
        };
    }
    if let Some(v) = params.remove("x_restrict") {
        let list: Option<Vec<u8>> = v
            .as_array()
            .map(|a| a.iter().filter_map(|n| n.as_u64()).filter(|n| *n <= 2).map(|n| n as u8).collect());
        match list {
            Some(l) if l.len() == v.as_array().map_or(0, Vec::len) && !l.is_empty() => {
                o.filter.x_restrict = l
            }
            _ => return Err(bad("x_restrict", "an array of 0 (all ages), 1 (R-18), 2 (R-18G)")),
        }
    }
    if let Some(v) = params.remove("min_bookmarks") {
        o.filter.min_bookmarks = v.as_u64().ok_or_else(|| bad("min_bookmarks", "a non-negative integer"))?;
    }
    for key in ["date_from", "date_to"] {
        if let Some(v) = params.remove(key) {
            let d = v.as_str().filter(|s| is_date(s)).ok_or_else(|| bad(key, "a date YYYY-MM-DD"))?;
            if key == "date_from" {
                o.filter.date_from = Some(d.to_string());
            } else {
                o.filter.date_to = Some(d.to_string());
            }
        }
    }
    if let Some(v) = params.remove("tags_include") {
        o.filter.tags_include = string_list(&v).ok_or_else(|| bad("tags_include", "an array of tags"))?;
    }
    if let Some(v) = params.remove("tags_exclude") {
        o.filter.tags_exclude = string_list(&v).ok_or_else(|| bad("tags_exclude", "an array of tags"))?;
    }
    if let Some(v) = params.remove("archive") {
        o.archive = v.as_bool().ok_or_else(|| bad("archive", "true or false"))?;
    }
    if let Some(v) = params.remove("stop_after_seen") {
        let n = v
            .as_u64()
            .filter(|n| (1..=100_000).contains(n))
            .ok_or_else(|| bad("stop_after_seen", "a positive integer"))?;
        o.stop_after_seen = Some(n as u32);
    }
    Ok(o)
}

/// An array of strings (a single string counts as one).
pub fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

/// Returns true if and only if `s` looks like `YYYY-MM-DD`.
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_parse_and_reject() {
        let mut p = match json!({"types": ["illust", "ugoira"], "ai": "exclude", "x_restrict": [0], "min_bookmarks": 100,
                                  "date_from": "2024-01-01", "tags_exclude": "R-18", "stop_after_seen": 5, "user_id": 3})
        {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let o = take_options(&mut p, &Options { archive: true, ..Options::default() }).expect("valid");
        assert!(o.archive);
        assert_eq!(o.filter.types, vec!["illust", "ugoira"]);
        assert_eq!(o.filter.ai, AiFilter::Exclude);
        assert_eq!(o.stop_after_seen, Some(5));
        assert_eq!(p.len(), 1, "only the type's own key stays");
        for bad in [
            json!({"types": ["novel"]}),
            json!({"ai": "maybe"}),
            json!({"x_restrict": [3]}),
            json!({"date_from": "2024/01/01"}),
            json!({"ugoira_format": "mp4"}),
            json!({"template": "{nope}"}),
        ] {
            let mut m = match bad.clone() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            assert!(take_options(&mut m, &Options::default()).is_err(), "{bad}");
        }
    }
}
