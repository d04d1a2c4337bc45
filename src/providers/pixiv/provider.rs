//! The Pixiv provider: its job types and how a job becomes a walk.

use std::sync::Arc;

use super::settings::{OPTIONS, SECTION, options, settings};
use super::ugoira::UgoiraStep;
use super::walks::{PixivWalk, Source};
use crate::config::SectionSpec;
use crate::job::{JobSpec, RejectReason};
use crate::postprocess::PostRunner;
use crate::providers::{JobTypeInfo, ParamInfo, ParamKind, Params, PlanContext, Provider, Walk, validate};

/// The provider.
#[derive(Debug)]
pub struct Pixiv;

/// Shorthand for a key declaration.
const fn p(name: &'static str, kind: ParamKind, doc: &'static str) -> ParamInfo {
    ParamInfo::new(name, kind, doc)
}

/// Search targets, the first being Pixiv's default.
const SEARCH_TARGETS: &[&str] =
    &["partial_match_for_tags", "exact_match_for_tags", "title_and_caption", "keyword"];

/// Search orders, the first being Pixiv's default.
const SORTS: &[&str] = &["date_desc", "date_asc", "popular_desc", "popular_male_desc", "popular_female_desc"];

/// The job types; every one also takes the options in [`OPTIONS`].
static TYPES: &[JobTypeInfo] = &[
    JobTypeInfo {
        name: "pixiv.illust",
        summary: "one or more works by id (every page, ugoira zips)",
        params: &[p("illust_id", ParamKind::Id, "a work id"), p("illust_ids", ParamKind::IdList, "work ids")],
        shared: OPTIONS,
    },
    JobTypeInfo {
        name: "pixiv.user",
        summary: "every work of an artist (illust, manga and ugoira)",
        params: &[p("user_id", ParamKind::Id, "the artist's user id").required()],
        shared: OPTIONS,
    },
    JobTypeInfo {
        name: "pixiv.bookmarks",
        summary: "a user's bookmarked works",
        params: &[
            p("user_id", ParamKind::Id, "whose bookmarks (default: the token's own account)"),
            p("restrict", ParamKind::Choice(&["public", "private"]), "which bookmarks").default("public"),
            p("tag", ParamKind::String, "only bookmarks with this bookmark tag"),
        ],
        shared: OPTIONS,
    },
    JobTypeInfo {
        name: "pixiv.search",
        summary: "search results; beyond 5,000 by moving the date window",
        params: &[
            p("word", ParamKind::String, "search words (space-separated)").required(),
            p("search_target", ParamKind::Choice(SEARCH_TARGETS), "what the words are matched against")
                .default("partial_match_for_tags"),
            p("sort", ParamKind::Choice(SORTS), "result order").default("date_desc"),
            p(
                "duration",
                ParamKind::Choice(&["within_last_day", "within_last_week", "within_last_month"]),
                "only works of this recent period",
            ),
            p("start_date", ParamKind::Date, "earliest work date"),
            p("end_date", ParamKind::Date, "latest work date"),
            p("search_ai_type", ParamKind::Integer { min: 0, max: 1 }, "0 hides AI works, 1 shows them")
                .expect("0 or 1"),
        ],
        shared: OPTIONS,
    },
    JobTypeInfo {
        name: "pixiv.ranking",
        summary: "a ranking (day, week, month, day_male, … day_r18 …)",
        params: &[
            p(
                "mode",
                ParamKind::Choice(RANKING_MODES),
                "ranking mode: day, week, month, day_manga, day_ai, …",
            )
            .required(),
            p("date", ParamKind::Date, "the ranking of this day (default: the latest)"),
        ],
        shared: OPTIONS,
    },
    JobTypeInfo {
        name: "pixiv.follow",
        summary: "new works of the users the token's account follows",
        params: &[
            p("restrict", ParamKind::Choice(&["public", "private", "all"]), "which follows").default("all")
        ],
        shared: OPTIONS,
    },
    JobTypeInfo {
        name: "pixiv.series",
        summary: "every work of an illust/manga series",
        params: &[p("series_id", ParamKind::Id, "the series id").required()],
        shared: OPTIONS,
    },
    JobTypeInfo {
        name: "pixiv.novel",
        summary: "novels as .txt with metadata and embedded images",
        params: &[
            p("novel_id", ParamKind::Id, "a novel id"),
            p("novel_ids", ParamKind::IdList, "novel ids"),
            p("user_id", ParamKind::Id, "every novel of this user (instead of ids)"),
        ],
        shared: OPTIONS,
    },
    JobTypeInfo {
        name: "pixiv.info",
        summary: "a work's metadata as JSON, no images",
        params: &[p("illust_id", ParamKind::Id, "a work id"), p("illust_ids", ParamKind::IdList, "work ids")],
        shared: OPTIONS,
    },
];

/// The ranking modes of the app API (`/v1/illust/ranking?mode=`); any other
/// is refused at `submit` rather than by Pixiv once the job runs.
const RANKING_MODES: &[&str] = &[
    "day",
    "week",
    "month",
    "day_male",
    "day_female",
    "week_original",
    "week_rookie",
    "day_manga",
    "week_manga",
    "month_manga",
    "week_rookie_manga",
    "day_ai",
    "day_r18",
    "day_male_r18",
    "day_female_r18",
    "week_r18",
    "week_r18g",
    "day_r18_manga",
    "week_r18_manga",
    "day_r18_ai",
];

/// `stop_after_seen` of a recurring job that does not set it: fewer than
/// one page of 30 works, so a run with nothing new costs one or two
/// listing calls.
const RECURRING_STOP_AFTER_SEEN: u32 = 20;

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
        Some(SECTION)
    }

    fn plan(&self, job: &JobSpec, cx: &PlanContext<'_>) -> Result<Box<dyn Walk>, RejectReason> {
        let info = TYPES
            .iter()
            .find(|t| t.name == job.job_type)
            .ok_or_else(|| RejectReason(format!("unknown job type {:?}", job.job_type)))?;
        // Page URLs people copy (`https://www.pixiv.net/users/11`) count as
        // the ids they show.
        let given = super::urls::ids_from_urls(&job.params)?;
        let params = validate(info, &given)?;
        let settings = Arc::new(settings(cx.config));
        let mut options = options(&params, &settings.defaults)?;
        if job.recurrence.is_some() && !params.has("stop_after_seen") {
            // Each run of a series looks for what is new: the listing
            // ends where the archive's works begin.
            options.stop_after_seen = Some(RECURRING_STOP_AFTER_SEEN);
        }
        let source = source_for(&params)?;
        Ok(Box::new(PixivWalk { source, options, settings, seen_streak: 0 }))
    }
}

/// The ids of `list_key`, with the single id of `one_key` first.
fn id_list(p: &Params<'_>, one_key: &str, list_key: &str) -> Vec<u64> {
    let mut list = p.u64s(list_key).unwrap_or_default();
    if let Some(i) = p.u64(one_key) {
        list.insert(0, i);
    }
    list
}

/// The walk source of a job type.
fn source_for(p: &Params<'_>) -> Result<Source, RejectReason> {
    let missing = |k: &str| RejectReason(format!("key `{k}` is missing"));
    // Required keys and types were checked by `validate`; what is left is
    // what needs more than one key, or more than a type.
    let job_type = p.info().name;
    Ok(match job_type {
        "pixiv.illust" | "pixiv.info" => {
            let ids = id_list(p, "illust_id", "illust_ids");
            if ids.is_empty() {
                return Err(RejectReason("key `illust_id` or `illust_ids` is missing".into()));
            }
            Source::Illusts { ids, info_only: job_type == "pixiv.info" }
        }
        "pixiv.user" => {
            let uid = p.u64("user_id").ok_or_else(|| missing("user_id"))?;
            // No `type`: the only call that returns illust, manga and
            // ugoira together (docs/pixiv.md).
            Source::List {
                path: "/v1/user/illusts",
                query: vec![("user_id".into(), uid.to_string())],
                user_check: Some(uid),
            }
        }
        "pixiv.bookmarks" => Source::Bookmarks {
            user_id: p.u64("user_id").unwrap_or(0),
            restrict: p.str("restrict").unwrap_or_else(|| "public".into()),
            tag: p.str("tag"),
        },
        "pixiv.search" => {
            let word = p.str("word").filter(|w| !w.trim().is_empty()).ok_or_else(|| missing("word"))?;
            let mut q = vec![
                ("word".to_string(), word),
                ("search_target".into(), p.str("search_target").unwrap_or_else(|| SEARCH_TARGETS[0].into())),
                ("sort".into(), p.str("sort").unwrap_or_else(|| SORTS[0].into())),
            ];
            for k in ["duration", "start_date", "end_date"] {
                if let Some(v) = p.str(k) {
                    q.push((k.into(), v));
                }
            }
            if let Some(n) = p.u64("search_ai_type") {
                q.push(("search_ai_type".into(), n.to_string()));
            }
            Source::Search { query: q }
        }
        "pixiv.ranking" => {
            let mode = p.str("mode").filter(|m| !m.is_empty()).ok_or_else(|| missing("mode"))?;
            let mut q = vec![("mode".to_string(), mode)];
            if let Some(d) = p.str("date") {
                q.push(("date".into(), d));
            }
            Source::List { path: "/v1/illust/ranking", query: q, user_check: None }
        }
        "pixiv.follow" => {
            let r = p.str("restrict").unwrap_or_else(|| "all".into());
            Source::List { path: "/v2/illust/follow", query: vec![("restrict".into(), r)], user_check: None }
        }
        "pixiv.series" => {
            let sid = p.u64("series_id").ok_or_else(|| missing("series_id"))?;
            Source::List {
                path: "/v1/illust/series",
                query: vec![("illust_series_id".into(), sid.to_string())],
                user_check: None,
            }
        }
        "pixiv.novel" => {
            let ids = id_list(p, "novel_id", "novel_ids");
            match (ids.is_empty(), p.u64("user_id")) {
                (false, None) => Source::Novels { ids },
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
    use serde_json::{Value, json};

    fn plan(v: Value) -> Result<Box<dyn Walk>, RejectReason> {
        let Value::Object(mut m) = v else { return Err(RejectReason("not an object".into())) };
        let job_type = m.remove("type").and_then(|t| t.as_str().map(str::to_string)).unwrap_or_default();
        let spec = JobSpec {
            job_type,
            name: "n".into(),
            save_path: "/tmp".into(),
            max_items: None,
            notify: None,
            rate_limit: None,
            params: m,
            recurrence: None,
        };
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
