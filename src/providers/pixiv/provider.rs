//! The Pixiv provider: its job types and how a job becomes a walk.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::settings::{OPTION_KEYS, is_date, settings, take_options, validate_section};
use super::ugoira::UgoiraStep;
use super::walks::{PixivWalk, Source};
use crate::config::SectionSpec;
use crate::job::{JobSpec, RejectReason};
use crate::postprocess::PostRunner;
use crate::providers::{JobTypeInfo, ParamInfo, ParamKind, PlanContext, Provider, Walk};

/// The provider.
#[derive(Debug)]
pub struct Pixiv;

/// Shorthand for parameter docs.
const fn p(name: &'static str, kind: ParamKind, required: bool, doc: &'static str) -> ParamInfo {
    ParamInfo { name, kind, required, doc }
}

/// The job types.
static TYPES: &[JobTypeInfo] = &[
    JobTypeInfo {
        name: "pixiv.illust",
        summary: "one or more works by id (every page, ugoira zips)",
        params: &[
            p("illust_id", ParamKind::Integer, false, "a work id"),
            p("illust_ids", ParamKind::List, false, "work ids"),
        ],
    },
    JobTypeInfo {
        name: "pixiv.user",
        summary: "every work of an artist (illust, manga and ugoira)",
        params: &[p("user_id", ParamKind::Integer, true, "the artist's user id")],
    },
    JobTypeInfo {
        name: "pixiv.bookmarks",
        summary: "a user's bookmarked works",
        params: &[
            p("user_id", ParamKind::Integer, false, "whose bookmarks (default: the token's own account)"),
            p("restrict", ParamKind::String, false, "public (default) or private"),
            p("tag", ParamKind::String, false, "only bookmarks with this bookmark tag"),
        ],
    },
    JobTypeInfo {
        name: "pixiv.search",
        summary: "search results; beyond 5,000 by moving the date window",
        params: &[
            p("word", ParamKind::String, true, "search words (space-separated)"),
            p(
                "search_target",
                ParamKind::String,
                false,
                "partial_match_for_tags (default), exact_match_for_tags, title_and_caption, keyword",
            ),
            p(
                "sort",
                ParamKind::String,
                false,
                "date_desc (default), date_asc, popular_desc, popular_male_desc, popular_female_desc",
            ),
            p("duration", ParamKind::String, false, "within_last_day, within_last_week, within_last_month"),
            p("start_date", ParamKind::String, false, "YYYY-MM-DD"),
            p("end_date", ParamKind::String, false, "YYYY-MM-DD"),
            p("search_ai_type", ParamKind::Integer, false, "0 hides AI works, 1 shows them"),
        ],
    },
    JobTypeInfo {
        name: "pixiv.ranking",
        summary: "a ranking (day, week, month, day_male, … day_r18 …)",
        params: &[
            p("mode", ParamKind::String, true, "ranking mode, e.g. day, week, month, day_manga, day_ai"),
            p("date", ParamKind::String, false, "YYYY-MM-DD (default: the latest)"),
        ],
    },
    JobTypeInfo {
        name: "pixiv.follow",
        summary: "new works of the users the token's account follows",
        params: &[p("restrict", ParamKind::String, false, "public, private or all (default)")],
    },
    JobTypeInfo {
        name: "pixiv.series",
        summary: "every work of an illust/manga series",
        params: &[p("series_id", ParamKind::Integer, true, "the series id")],
    },
    JobTypeInfo {
        name: "pixiv.novel",
        summary: "novels as .txt with metadata and embedded images",
        params: &[
            p("novel_id", ParamKind::Integer, false, "a novel id"),
            p("novel_ids", ParamKind::List, false, "novel ids"),
            p("user_id", ParamKind::Integer, false, "every novel of this user"),
        ],
    },
    JobTypeInfo {
        name: "pixiv.info",
        summary: "a work's metadata as JSON, no images",
        params: &[
            p("illust_id", ParamKind::Integer, false, "a work id"),
            p("illust_ids", ParamKind::List, false, "work ids"),
        ],
    },
];

impl Provider for Pixiv {
    fn name(&self) -> &'static str {
        "pixiv"
    }

    fn job_types(&self) -> &'static [JobTypeInfo] {
        TYPES
    }

    fn post_steps(&self) -> &'static [&'static dyn PostRunner] {
        &[&UgoiraStep]
    }

    fn config_section(&self) -> Option<SectionSpec> {
        Some(SectionSpec {
            name: "pixiv",
            env: &[("refresh_token", "SPOOLFETCH_PIXIV_REFRESH_TOKEN")],
            validate: validate_section,
        })
    }

    fn plan(&self, job: &JobSpec, cx: &PlanContext<'_>) -> Result<Box<dyn Walk>, RejectReason> {
        let settings = Arc::new(settings(cx.config));
        let mut params = job.params.clone();
        let options = take_options(&mut params, &settings.defaults)?;
        let source = source_for(&job.job_type, &mut params)?;
        if let Some(k) = params.keys().next() {
            return Err(RejectReason(format!(
                "unknown key `{k}` for {} (see README: its keys, and the Pixiv options {})",
                job.job_type,
                OPTION_KEYS.join(", ")
            )));
        }
        Ok(Box::new(PixivWalk { source, options, settings, seen_streak: 0 }))
    }
}

/// Takes an id (number or numeric string).
fn id(params: &mut Map<String, Value>, key: &str) -> Result<Option<u64>, RejectReason> {
    match params.remove(key) {
        None => Ok(None),
        Some(v) => parse_id(&v)
            .map(Some)
            .ok_or_else(|| RejectReason(format!("key `{key}` must be a positive integer id"))),
    }
}

/// A positive id from a number or a string.
fn parse_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n| *n > 0)
}

/// Takes an id list.
fn ids(params: &mut Map<String, Value>, key: &str) -> Result<Option<Vec<u64>>, RejectReason> {
    match params.remove(key) {
        None => Ok(None),
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(parse_id)
            .collect::<Option<Vec<u64>>>()
            .map(Some)
            .ok_or_else(|| RejectReason(format!("key `{key}` must be an array of positive integer ids"))),
        Some(_) => Err(RejectReason(format!("key `{key}` must be a non-empty array of ids"))),
    }
}

/// Takes a string from a fixed set.
fn choice(
    params: &mut Map<String, Value>,
    key: &str,
    allowed: &[&str],
) -> Result<Option<String>, RejectReason> {
    match params.remove(key) {
        None => Ok(None),
        Some(Value::String(s)) if allowed.is_empty() || allowed.contains(&s.as_str()) => Ok(Some(s)),
        Some(_) if allowed.is_empty() => Err(RejectReason(format!("key `{key}` must be a string"))),
        Some(_) => Err(RejectReason(format!("key `{key}` must be one of {}", allowed.join(", ")))),
    }
}

/// Takes a date.
fn date(params: &mut Map<String, Value>, key: &str) -> Result<Option<String>, RejectReason> {
    match params.remove(key) {
        None => Ok(None),
        Some(Value::String(s)) if is_date(&s) => Ok(Some(s)),
        Some(_) => Err(RejectReason(format!("key `{key}` must be a date YYYY-MM-DD"))),
    }
}

/// The walk source of a job type.
fn source_for(job_type: &str, params: &mut Map<String, Value>) -> Result<Source, RejectReason> {
    let missing = |k: &str| RejectReason(format!("key `{k}` is missing"));
    Ok(match job_type {
        "pixiv.illust" | "pixiv.info" => {
            let mut list = ids(params, "illust_ids")?.unwrap_or_default();
            if let Some(i) = id(params, "illust_id")? {
                list.insert(0, i);
            }
            if list.is_empty() {
                return Err(RejectReason("key `illust_id` or `illust_ids` is missing".into()));
            }
            Source::Illusts { ids: list, info_only: job_type == "pixiv.info" }
        }
        "pixiv.user" => {
            let uid = id(params, "user_id")?.ok_or_else(|| missing("user_id"))?;
            // No `type`: the only call that returns illust, manga and
            // ugoira together (docs/pixiv.md).
            Source::List {
                path: "/v1/user/illusts",
                query: vec![("user_id".into(), uid.to_string())],
                user_check: Some(uid),
            }
        }
        "pixiv.bookmarks" => Source::Bookmarks {
            user_id: id(params, "user_id")?.unwrap_or(0),
            restrict: choice(params, "restrict", &["public", "private"])?.unwrap_or_else(|| "public".into()),
            tag: choice(params, "tag", &[])?,
        },
        "pixiv.search" => {
            let word = choice(params, "word", &[])?
                .filter(|w| !w.trim().is_empty())
                .ok_or_else(|| missing("word"))?;
            let mut q = vec![
                ("word".to_string(), word),
                (
                    "search_target".into(),
                    choice(
                        params,
                        "search_target",
                        &["partial_match_for_tags", "exact_match_for_tags", "title_and_caption", "keyword"],
                    )?
                    .unwrap_or_else(|| "partial_match_for_tags".into()),
                ),
                (
                    "sort".into(),
                    choice(
                        params,
                        "sort",
                        &[
                            "date_desc",
                            "date_asc",
                            "popular_desc",
                            "popular_male_desc",
                            "popular_female_desc",
                        ],
                    )?
                    .unwrap_or_else(|| "date_desc".into()),
                ),
            ];
            if let Some(d) =
                choice(params, "duration", &["within_last_day", "within_last_week", "within_last_month"])?
            {
                q.push(("duration".into(), d));
            }
            for k in ["start_date", "end_date"] {
                if let Some(d) = date(params, k)? {
                    q.push((k.into(), d));
                }
            }
            if let Some(v) = params.remove("search_ai_type") {
                let n = v
                    .as_u64()
                    .filter(|n| *n <= 1)
                    .ok_or_else(|| RejectReason("key `search_ai_type` must be 0 or 1".into()))?;
                q.push(("search_ai_type".into(), n.to_string()));
            }
            Source::Search { query: q }
        }
        "pixiv.ranking" => {
            let mode =
                choice(params, "mode", &[])?.filter(|m| !m.is_empty()).ok_or_else(|| missing("mode"))?;
            let mut q = vec![("mode".to_string(), mode)];
            if let Some(d) = date(params, "date")? {
                q.push(("date".into(), d));
            }
            Source::List { path: "/v1/illust/ranking", query: q, user_check: None }
        }
        "pixiv.follow" => {
            let r =
                choice(params, "restrict", &["public", "private", "all"])?.unwrap_or_else(|| "all".into());
            Source::List { path: "/v2/illust/follow", query: vec![("restrict".into(), r)], user_check: None }
        }
        "pixiv.series" => {
            let sid = id(params, "series_id")?.ok_or_else(|| missing("series_id"))?;
            Source::List {
                path: "/v1/illust/series",
                query: vec![("illust_series_id".into(), sid.to_string())],
                user_check: None,
            }
        }
        "pixiv.novel" => {
            let mut list = ids(params, "novel_ids")?.unwrap_or_default();
            if let Some(i) = id(params, "novel_id")? {
                list.insert(0, i);
            }
            match (list.is_empty(), id(params, "user_id")?) {
                (false, None) => Source::Novels { ids: list },
                (true, Some(uid)) => Source::UserNovels { user_id: uid },
                (false, Some(_)) => {
                    return Err(RejectReason(
                        "give either `novel_id`/`novel_ids` or `user_id`, not both".into(),
                    ));
                }
                (true, None) => return Err(RejectReason("key `novel_id` or `user_id` is missing".into())),
            }
        }
        other => return Err(RejectReason(format!("unknown job type {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(v: Value) -> Result<Box<dyn Walk>, RejectReason> {
        let Value::Object(mut m) = v else { return Err(RejectReason("not an object".into())) };
        let job_type = m.remove("type").and_then(|t| t.as_str().map(str::to_string)).unwrap_or_default();
        let spec =
            JobSpec { job_type, name: "n".into(), save_path: "/tmp".into(), max_items: None, params: m };
        let cfg = crate::config::Config::default_for(&|_| None);
        Pixiv.plan(&spec, &PlanContext { config: &cfg })
    }

    #[test]
    fn every_type_plans_and_rejects_bad_keys() {
        for ok in [
            json!({"type": "pixiv.illust", "illust_id": 5}),
            json!({"type": "pixiv.illust", "illust_ids": [5, "6"]}),
            json!({"type": "pixiv.user", "user_id": "11", "types": ["manga"], "sidecar": true}),
            json!({"type": "pixiv.bookmarks", "restrict": "private", "tag": "x"}),
            json!({"type": "pixiv.search", "word": "cat", "sort": "date_asc", "start_date": "2024-01-01"}),
            json!({"type": "pixiv.ranking", "mode": "day", "date": "2025-02-04"}),
            json!({"type": "pixiv.follow"}),
            json!({"type": "pixiv.series", "series_id": 21859}),
            json!({"type": "pixiv.novel", "novel_id": 1}),
            json!({"type": "pixiv.novel", "user_id": 1}),
            json!({"type": "pixiv.info", "illust_id": 5}),
        ] {
            assert!(plan(ok.clone()).is_ok(), "{ok}");
        }
        for (bad, want) in [
            (json!({"type": "pixiv.user"}), "`user_id` is missing"),
            (json!({"type": "pixiv.user", "user_id": -3}), "positive integer"),
            (json!({"type": "pixiv.user", "user_id": 3, "typo": 1}), "unknown key `typo`"),
            (json!({"type": "pixiv.search", "word": "x", "sort": "random"}), "must be one of"),
            (json!({"type": "pixiv.search", "word": "x", "start_date": "yesterday"}), "YYYY-MM-DD"),
            (json!({"type": "pixiv.illust", "illust_ids": []}), "non-empty"),
            (json!({"type": "pixiv.novel", "novel_id": 1, "user_id": 2}), "not both"),
            (json!({"type": "pixiv.bookmarks", "restrict": "hidden"}), "must be one of"),
        ] {
            let e = plan(bad.clone()).err().unwrap_or_else(|| panic!("{bad} was accepted"));
            assert!(e.0.contains(want), "{bad}: {e}");
        }
    }
}
