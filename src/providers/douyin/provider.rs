//! The Douyin provider: job types and planning.

use super::model::With;
use super::naming::{DEFAULT_TEMPLATE, FIELDS};
use super::settings::{SECTION, settings};
use super::walk::{DouyinWalk, Kind, LiveOptions};
use crate::config::SectionSpec;
use crate::job::{JobSpec, RejectReason};
use crate::naming::Template;
use crate::providers::{JobTypeInfo, ParamInfo, ParamKind, PlanContext, Provider, Walk, is_date, validate};

/// The provider.
#[derive(Debug)]
pub struct Douyin;

/// Keys every Douyin job type takes.
static SHARED: &[ParamInfo] = &[
    ParamInfo::new(
        "with",
        ParamKind::Strings,
        "what to save of each work: video, images, music, cover, desc (default video, images)",
    ),
    ParamInfo::new(
        "template",
        ParamKind::String,
        "file names: {create}, {desc}, {aweme_id}, {nickname}, {uid}; default {create}_{desc}_{aweme_id}",
    ),
    ParamInfo::new(
        "by_user",
        ParamKind::Bool,
        "files under a folder named by the author's numeric id (stable across renames)",
    ),
    ParamInfo::new("date_from", ParamKind::Date, "leave out works created before this day (China time)"),
    ParamInfo::new("date_to", ParamKind::Date, "leave out works created after this day (China time)"),
    ParamInfo::new(
        "stop_after_seen",
        ParamKind::Bool,
        "stop at the first page whose works are all in the download archive",
    ),
    ParamInfo::new(
        "archive",
        ParamKind::Bool,
        "record files in the download archive and skip those recorded",
    )
    .default("true"),
];

/// The link or id keys.
const URL: ParamInfo = ParamInfo::new(
    "url",
    ParamKind::String,
    "a page URL, a v.douyin.com short link, or share text pasted from the app",
);

/// The job types.
static TYPES: &[JobTypeInfo] = &[
    JobTypeInfo {
        name: "douyin.one",
        summary: "one work (video or image post)",
        params: &[URL, ParamInfo::new("aweme_id", ParamKind::String, "the work's id")],
        shared: SHARED,
    },
    JobTypeInfo {
        name: "douyin.post",
        summary: "a user's works",
        params: &[URL, ParamInfo::new("sec_user_id", ParamKind::String, "the user's sec_user_id")],
        shared: SHARED,
    },
    JobTypeInfo {
        name: "douyin.like",
        summary: "the works a user liked (a public like list)",
        params: &[URL, ParamInfo::new("sec_user_id", ParamKind::String, "the user's sec_user_id")],
        shared: SHARED,
    },
    JobTypeInfo {
        name: "douyin.mix",
        summary: "the works of a mix (合集)",
        params: &[URL, ParamInfo::new("mix_id", ParamKind::String, "the mix's id")],
        shared: SHARED,
    },
    JobTypeInfo {
        name: "douyin.collection",
        summary: "the logged-in account's collection (needs the login cookie)",
        params: &[],
        shared: SHARED,
    },
    JobTypeInfo {
        name: "douyin.collects",
        summary: "the logged-in account's favourites folders, or one of them",
        params: &[ParamInfo::new("collects_id", ParamKind::String, "one folder (default: every folder)")],
        shared: SHARED,
    },
    JobTypeInfo {
        name: "douyin.feed",
        summary: "the home feed (needs max_items)",
        params: &[],
        shared: SHARED,
    },
    JobTypeInfo {
        name: "douyin.live",
        summary: "record a live room while it is live",
        params: &[
            URL,
            ParamInfo::new("web_rid", ParamKind::String, "the room's web id (live.douyin.com/<web_rid>)"),
            ParamInfo::new("room_id", ParamKind::String, "an app room id (19 digits)"),
            ParamInfo::new(
                "quality",
                ParamKind::Choice(&["FULL_HD1", "HD1", "SD1", "SD2"]),
                "the stream's quality",
            )
            .default("FULL_HD1")
            .expect("FULL_HD1, HD1, SD1 or SD2"),
            ParamInfo::new("protocol", ParamKind::Choice(&["hls", "flv"]), "how the stream is read")
                .default("hls")
                .expect("\"hls\" or \"flv\""),
            ParamInfo::new(
                "max_duration_s",
                ParamKind::Integer { min: 1, max: 604_800 },
                "stop recording after this many seconds",
            ),
        ],
        shared: &[],
    },
    JobTypeInfo {
        name: "douyin.profile",
        summary: "a user's profile, as JSON (downloads nothing)",
        params: &[URL, ParamInfo::new("sec_user_id", ParamKind::String, "the user's sec_user_id")],
        shared: SHARED,
    },
];

/// Unix seconds of midnight at the start (or end) of a `YYYY-MM-DD` day,
/// China time.
fn day(s: &str, end: bool) -> Option<i64> {
    let mut it = s.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (it.next()??, it.next()??, it.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 - 8 * 3600 + if end { 86_399 } else { 0 })
}

impl Provider for Douyin {
    fn name(&self) -> &'static str {
        "douyin"
    }

    fn job_types(&self) -> &'static [JobTypeInfo] {
        TYPES
    }

    fn config_section(&self) -> Option<SectionSpec> {
        Some(SECTION)
    }

    fn plan(&self, job: &JobSpec, cx: &PlanContext<'_>) -> Result<Box<dyn Walk>, RejectReason> {
        let reject = |m: String| RejectReason(m);
        let info = TYPES
            .iter()
            .find(|t| t.name == job.job_type)
            .ok_or_else(|| reject(format!("unknown job type {:?}", job.job_type)))?;
        let p = validate(info, &job.params)?;
        let (kind, id_key) = match info.name {
            "douyin.one" => (Kind::One, Some("aweme_id")),
            "douyin.like" => (Kind::Like, Some("sec_user_id")),
            "douyin.mix" => (Kind::Mix, Some("mix_id")),
            "douyin.profile" => (Kind::Profile, Some("sec_user_id")),
            "douyin.collection" => (Kind::Collection, None),
            "douyin.collects" => (Kind::Collects, None),
            "douyin.feed" => (Kind::Feed, None),
            "douyin.live" => (Kind::Live, None),
            _ => (Kind::Post, Some("sec_user_id")),
        };
        let target = match (kind, id_key) {
            (Kind::Live, _) => {
                let given: Vec<String> =
                    ["url", "web_rid", "room_id"].iter().filter_map(|k| p.str(k)).collect();
                match given.as_slice() {
                    [one] if !one.trim().is_empty() => one.clone(),
                    [] => return Err(reject("douyin.live needs url, web_rid or room_id".into())),
                    _ => return Err(reject("give one of url, web_rid and room_id".into())),
                }
            }
            (_, Some(id_key)) => match (p.str("url"), p.str(id_key)) {
                (Some(u), None) | (None, Some(u)) if !u.trim().is_empty() => u,
                (Some(_), Some(_)) => return Err(reject(format!("give url or {id_key}, not both"))),
                _ => {
                    return Err(reject(format!(
                        "{} needs url (a link or share text) or {id_key}",
                        info.name
                    )));
                }
            },
            _ => String::new(),
        };
        if kind == Kind::Feed && job.max_items.is_none() {
            return Err(reject("douyin.feed needs max_items: the home feed has no end".into()));
        }
        let live = LiveOptions {
            quality: p.str("quality").unwrap_or_else(|| "FULL_HD1".into()),
            flv: p.str("protocol").as_deref() == Some("flv"),
            max_secs: p.u64("max_duration_s"),
        };
        let with = match p.strs("with") {
            Some(names) => With::parse(names).map_err(reject)?,
            None => With::default(),
        };
        let template = Template::parse(FIELDS, p.str("template").as_deref().unwrap_or(DEFAULT_TEMPLATE))
            .map_err(|e| reject(e.to_string()))?;
        let date = |k: &str, end: bool| -> Result<Option<i64>, RejectReason> {
            match p.str(k) {
                Some(d) if is_date(&d) => Ok(day(&d, end)),
                Some(d) => Err(reject(format!("{k} must be YYYY-MM-DD, not {d:?}"))),
                None => Ok(None),
            }
        };
        let s = settings(cx.config);
        if kind == Kind::Like && s.cookie.is_none() {
            log::debug!("douyin.like without a cookie: only public like lists can be read");
        }
        Ok(Box::new(DouyinWalk {
            settings: s,
            kind,
            target,
            with,
            template,
            by_user: p.bool("by_user").unwrap_or(false),
            from: date("date_from", false)?,
            to: date("date_to", true)?,
            // A recurring job's runs look for what is new.
            stop_after_seen: p.bool("stop_after_seen").unwrap_or(job.recurrence.is_some()),
            archive: p.bool("archive").unwrap_or(true),
            collects_id: p.str("collects_id").filter(|c| !c.trim().is_empty()),
            live,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_china_time() {
        // 2023-11-15 00:00 at UTC+8 is 2023-11-14 16:00 UTC.
        assert_eq!(day("2023-11-15", false), Some(1_699_977_600));
        assert_eq!(day("2023-11-15", true), Some(1_699_977_600 + 86_399));
        assert_eq!(day("2000-02-29", false), Some(951_782_400 - 8 * 3600));
    }
}
