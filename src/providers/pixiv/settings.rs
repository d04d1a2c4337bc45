//! The `pixiv` configuration section and the options every Pixiv job
//! accepts (naming, sidecars, filters).

use std::time::Duration;

use crate::config::{Config, KeyKind, KeySpec, SectionSpec};
use crate::job::RejectReason;
use crate::providers::{ParamInfo, ParamKind, Params};

/// The `pixiv` configuration section.
pub const SECTION: SectionSpec = SectionSpec {
    name: "pixiv",
    keys: &[
        KeySpec::new(
            "refresh_token",
            KeyKind::Text,
            "Pixiv refresh token (also settable with `pixiv refresh`)",
        )
        .env("SPOOLFETCH_PIXIV_REFRESH_TOKEN")
        .secret(),
        KeySpec::new(
            "image_host",
            KeyKind::Origin,
            "mirror host or origin that replaces https://i.pximg.net",
        ),
        KeySpec::new("api_url", KeyKind::Origin, "App API origin (for a proxying gateway, or tests)")
            .default("https://app-api.pixiv.net"),
        KeySpec::new("oauth_url", KeyKind::Origin, "OAuth origin (for a proxying gateway, or tests)")
            .default("https://oauth.secure.pixiv.net"),
        KeySpec::new(
            "rate_limit_secs",
            KeyKind::Number { min: 0.0, max: 3600.0, above_min: false },
            "first wait after a \"Rate Limit\" answer (then doubling, with jitter)",
        )
        .default("60"),
        KeySpec::new("accept_language", KeyKind::Text, "language of tag translations and messages")
            .default("en-us"),
        KeySpec::new("template", KeyKind::Text, "default `template` of Pixiv jobs"),
        KeySpec::new("by_user", KeyKind::Bool, "default `by_user` of Pixiv jobs").default("false"),
        KeySpec::new("sidecar", KeyKind::Bool, "default `sidecar` of Pixiv jobs").default("false"),
        KeySpec::new(
            "ugoira_format",
            KeyKind::Choice(UGOIRA_FORMATS),
            "default `ugoira_format` of Pixiv jobs",
        )
        .default("zip"),
    ],
};

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

/// Accepted ugoira output formats.
pub const UGOIRA_FORMATS: &[&str] = &["zip", "gif", "apng", "webp"];

/// Reads the section of a resolved configuration.
pub fn settings(config: &Config) -> Settings {
    let v = config.values(SECTION);
    Settings {
        refresh_token: v.str("refresh_token").filter(|t| !t.trim().is_empty()),
        image_host: v.origin("image_host"),
        api_url: v.origin("api_url").unwrap_or_default(),
        oauth_url: v.origin("oauth_url").unwrap_or_default(),
        rate_limit_base: Duration::from_secs_f64(v.f64("rate_limit_secs").unwrap_or(60.0)),
        accept_language: v.str("accept_language").unwrap_or_default(),
        defaults: Options {
            template: v.str("template"),
            by_user: v.bool("by_user").unwrap_or(false),
            sidecar: v.bool("sidecar").unwrap_or(false),
            ugoira_format: v.str("ugoira_format").unwrap_or_else(|| "zip".into()),
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

/// Work types a job may keep.
const WORK_TYPES: &[&str] = &["illust", "manga", "ugoira"];

/// The keys of [`Options`], which every Pixiv job type accepts.
pub static OPTIONS: &[ParamInfo] = &[
    ParamInfo::new(
        "template",
        ParamKind::String,
        "file path under the job folder, e.g. \"{user_id}/{id}_p{page} {title}.{ext}\" \
         (default: pixiv.template, else the original file name)",
    )
    .expect("a non-empty string"),
    ParamInfo::new(
        "by_user",
        ParamKind::Bool,
        "true: files go under a folder named by the artist's user id (default: pixiv.by_user, else false)",
    ),
    ParamInfo::new(
        "sidecar",
        ParamKind::Bool,
        "true: a <id>.json of metadata per work (default: pixiv.sidecar, else false)",
    ),
    ParamInfo::new(
        "ugoira_format",
        ParamKind::Choice(UGOIRA_FORMATS),
        "what ugoira zips are converted to, the zip being kept (default: pixiv.ugoira_format, else zip)",
    )
    .expect("zip, gif, apng or webp"),
    ParamInfo::new("types", ParamKind::Strings, "keep only these work types: illust, manga, ugoira")
        .expect("an array of illust, manga, ugoira"),
    ParamInfo::new(
        "ai",
        ParamKind::Choice(&["any", "exclude", "only"]),
        "AI-generated works: keep, drop or keep only",
    )
    .default("any")
    .expect("\"any\", \"exclude\" or \"only\""),
    ParamInfo::new(
        "x_restrict",
        ParamKind::Integers { min: 0, max: 2 },
        "allowed ratings: 0 all ages, 1 R-18, 2 R-18G",
    )
    .expect("an array of 0 (all ages), 1 (R-18), 2 (R-18G)"),
    ParamInfo::new("min_bookmarks", ParamKind::Integer { min: 0, max: u64::MAX }, "minimum bookmarks")
        .default("0")
        .expect("a non-negative integer"),
    ParamInfo::new("date_from", ParamKind::Date, "earliest creation date, inclusive"),
    ParamInfo::new("date_to", ParamKind::Date, "latest creation date, inclusive"),
    ParamInfo::new(
        "tags_include",
        ParamKind::Strings,
        "keep only works with one of these tags (case-insensitive)",
    )
    .expect("an array of tags"),
    ParamInfo::new(
        "tags_exclude",
        ParamKind::Strings,
        "drop works with any of these tags (case-insensitive)",
    )
    .expect("an array of tags"),
    ParamInfo::new(
        "stop_after_seen",
        ParamKind::Integer { min: 1, max: 100_000 },
        "end the listing after this many works in a row that are already in the download archive",
    )
    .expect("a positive integer"),
    ParamInfo::new("archive", ParamKind::Bool, "false: neither skip archived works nor record new ones")
        .default("true"),
];

/// The options of a checked job; keys the job does not give keep the
/// values of `defaults` (from the configuration section).
pub fn options(p: &Params<'_>, defaults: &Options) -> Result<Options, RejectReason> {
    let mut o = defaults.clone();
    let wrong = |k: &str| {
        OPTIONS.iter().find(|p| p.name == k).map_or_else(|| RejectReason(k.into()), ParamInfo::wrong)
    };
    if p.has("template") {
        let t = p.str("template").filter(|s| !s.trim().is_empty()).ok_or_else(|| wrong("template"))?;
        super::naming::check_template(&t).map_err(RejectReason)?;
        o.template = Some(t);
    }
    if p.has("by_user") {
        o.by_user = p.bool("by_user").unwrap_or(o.by_user);
    }
    if p.has("sidecar") {
        o.sidecar = p.bool("sidecar").unwrap_or(o.sidecar);
    }
    if let Some(f) = p.str("ugoira_format").filter(|_| p.has("ugoira_format")) {
        o.ugoira_format = f;
    }
    if let Some(list) = p.list("types") {
        if list.iter().any(|t| !WORK_TYPES.contains(&t.as_str())) {
            return Err(wrong("types"));
        }
        o.filter.types = list;
    }
    if p.has("ai") {
        o.filter.ai = match p.str("ai").as_deref() {
            Some("exclude") => AiFilter::Exclude,
            Some("only") => AiFilter::Only,
            _ => AiFilter::Any,
        };
    }
    if let Some(l) = p.u64s("x_restrict") {
        // Checked against 0..=2 by the declaration.
        o.filter.x_restrict = l.into_iter().filter_map(|n| u8::try_from(n).ok()).collect();
    }
    if p.has("min_bookmarks") {
        o.filter.min_bookmarks = p.u64("min_bookmarks").unwrap_or(0);
    }
    if p.has("date_from") {
        o.filter.date_from = p.str("date_from");
    }
    if p.has("date_to") {
        o.filter.date_to = p.str("date_to");
    }
    if let Some(t) = p.list("tags_include") {
        o.filter.tags_include = t;
    }
    if let Some(t) = p.list("tags_exclude") {
        o.filter.tags_exclude = t;
    }
    if p.has("archive") {
        o.archive = p.bool("archive").unwrap_or(true);
    }
    if let Some(n) = p.u64("stop_after_seen") {
        o.stop_after_seen = Some(u32::try_from(n).map_err(|_| wrong("stop_after_seen"))?);
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{JobTypeInfo, validate};
    use serde_json::{Map, Value, json};

    /// A job type with one key of its own and the options.
    static USER: JobTypeInfo = JobTypeInfo {
        name: "pixiv.user",
        summary: "test",
        params: &[ParamInfo::new("user_id", ParamKind::Id, "id")],
        shared: OPTIONS,
    };

    fn take_options(m: &Map<String, Value>, defaults: &Options) -> Result<Options, RejectReason> {
        options(&validate(&USER, m)?, defaults)
    }

    #[test]
    fn options_parse_and_reject() {
        let p = match json!({"types": ["illust", "ugoira"], "ai": "exclude", "x_restrict": [0], "min_bookmarks": 100,
                              "date_from": "2024-01-01", "tags_exclude": "R-18", "stop_after_seen": 5, "user_id": 3})
        {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let o = take_options(&p, &Options { archive: true, ..Options::default() }).expect("valid");
        assert!(o.archive);
        assert_eq!(o.filter.types, vec!["illust", "ugoira"]);
        assert_eq!(o.filter.ai, AiFilter::Exclude);
        assert_eq!(o.stop_after_seen, Some(5));
        assert_eq!(o.filter.tags_exclude, vec!["R-18"], "one tag may be given as a string");
        assert_eq!((o.filter.x_restrict, o.filter.min_bookmarks), (vec![0], 100));
        for bad in [
            json!({"types": ["novel"]}),
            json!({"ai": "maybe"}),
            json!({"x_restrict": [3]}),
            json!({"date_from": "2024/01/01"}),
            json!({"ugoira_format": "mp4"}),
            json!({"template": "{nope}"}),
        ] {
            let m = match bad.clone() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            assert!(take_options(&m, &Options::default()).is_err(), "{bad}");
        }
    }

    #[test]
    fn configured_defaults_hold_unless_a_job_overrides_them() {
        let defaults =
            Options { sidecar: true, ugoira_format: "gif".into(), archive: true, ..Options::default() };
        let o = take_options(&Map::new(), &defaults).expect("valid");
        assert_eq!(o, defaults);
        let m = match json!({"sidecar": false, "ugoira_format": "webp"}) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let o = take_options(&m, &defaults).expect("valid");
        assert!(!o.sidecar && o.ugoira_format == "webp");
    }
}
