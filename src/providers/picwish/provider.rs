//! The PicWish provider: the `picwish.process` job type and its planning.

use std::path::PathBuf;

use super::ops::{self, OPS};
use super::settings::{SECTION, settings};
use super::tasks::{ApiTask, WebTask};
use super::walk::{Interface, PicwishWalk, Source};
use crate::config::SectionSpec;
use crate::inputs::InputPolicy;
use crate::job::{JobSpec, RejectReason};
use crate::providers::{JobTypeInfo, ParamInfo, ParamKind, PlanContext, Provider, Walk, validate};
use crate::steps::TaskRunner;

/// The provider.
#[derive(Debug)]
pub struct Picwish;

/// The operation names, for the `op` key.
const OP_NAMES: &[&str] = &["remove_background", "face_cutout", "enhance", "colorize", "correction"];

/// The job types.
static TYPES: &[JobTypeInfo] = &[JobTypeInfo {
    name: "picwish.process",
    summary: "process local images or image URLs on PicWish (background removal, enhancement, …), never paying twice",
    params: &[
        ParamInfo::new("op", ParamKind::Choice(OP_NAMES), "the operation")
            .required()
            .expect("one of remove_background, face_cutout, enhance, colorize, correction"),
        ParamInfo::new("input_dir", ParamKind::String, "a folder inside input_roots: every image in it and below it"),
        ParamInfo::new("inputs", ParamKind::List, "local image paths inside input_roots, or http(s) URLs"),
        ParamInfo::new(
            "interface",
            ParamKind::Choice(&["api", "web"]),
            "api: the official API (picwish.api_key); web: the web gateway with an upload to PicWish's storage",
        )
        .default("api")
        .expect("\"api\" or \"web\""),
        ParamInfo::new("keep_mask", ParamKind::Bool, "remove_background: also save the mask, beside the image"),
        ParamInfo::new(
            "max_credits",
            ParamKind::Integer { min: 1, max: 1_000_000_000 },
            "create no task past this many credits",
        ),
        ParamInfo::new("reprocess", ParamKind::Bool, "process inputs the content archive has seen with this op and options"),
        ParamInfo::new(
            "op_type",
            ParamKind::String,
            "PicWish's `type`: remove_background person, object or stamp; enhance clean or face; correction 0-4",
        ),
        ParamInfo::new("crop", ParamKind::Bool, "remove_background, face_cutout: crop to the subject"),
        ParamInfo::new("format", ParamKind::String, "the result's format: png or jpg (colorize: jpg, png, webp)"),
        ParamInfo::new("bg_color", ParamKind::String, "remove_background: a background colour, RRGGBB hex"),
        ParamInfo::new("scale_factor", ParamKind::Integer { min: 1, max: 4 }, "enhance: 1, 2 or 4 (default automatic)"),
    ],
    shared: &[],
}];

/// The task runners.
static RUNNERS: &[&dyn TaskRunner] = &[&ApiTask, &WebTask];

/// PicWish's limit on an input's size.
pub const MAX_INPUT_BYTES: u64 = 15 * 1024 * 1024;

impl Provider for Picwish {
    fn name(&self) -> &'static str {
        "picwish"
    }

    fn job_types(&self) -> &'static [JobTypeInfo] {
        TYPES
    }

    fn config_section(&self) -> Option<SectionSpec> {
        Some(SECTION)
    }

    fn task_runners(&self) -> &'static [&'static dyn TaskRunner] {
        RUNNERS
    }

    fn plan(&self, job: &JobSpec, cx: &PlanContext<'_>) -> Result<Box<dyn Walk>, RejectReason> {
        let reject = |m: String| RejectReason(m);
        let p = validate(&TYPES[0], &job.params)?;
        let name = p.str("op").unwrap_or_default();
        let op = ops::find(&name).ok_or_else(|| {
            reject(format!(
                "unknown op {name:?}; one of {}",
                OPS.iter().map(|o| o.name).collect::<Vec<_>>().join(", ")
            ))
        })?;
        let interface = match p.str("interface").as_deref() {
            Some("web") => Interface::Web,
            _ => Interface::Api,
        };
        if interface == Interface::Web && op.web_route.is_none() {
            return Err(reject(format!(
                "op {:?} is only on the official API (interface \"api\"); the web interface offers remove_background, enhance and colorize",
                op.name
            )));
        }
        let keep_mask = p.bool("keep_mask").unwrap_or(false);
        if keep_mask && op.name != "remove_background" {
            return Err(reject("keep_mask is only for op \"remove_background\"".into()));
        }
        let opts = op.options(&job.params, keep_mask).map_err(reject)?;
        if interface == Interface::Web
            && let Some(k) =
                ["crop", "format", "bg_color", "scale_factor"].iter().find(|k| job.params.contains_key(**k))
        {
            return Err(reject(format!(
                "the web interface takes no {k:?} (only op_type and keep_mask); use interface \"api\""
            )));
        }
        let source = match (p.str("input_dir"), p.list("inputs")) {
            (Some(dir), None) => Source::Dir(PathBuf::from(dir)),
            (None, Some(list)) => Source::List(list),
            (Some(_), Some(_)) => return Err(reject("give either input_dir or inputs, not both".into())),
            (None, None) => {
                return Err(reject(
                    "picwish.process needs input_dir (a folder) or inputs (paths or URLs)".into(),
                ));
            }
        };
        let s = settings(cx.config);
        if interface == Interface::Api && s.api_key.is_none() {
            return Err(reject(
                "PicWish jobs on the official API need picwish.api_key in the configuration (or SPOOLFETCH_PICWISH_API_KEY)"
                    .into(),
            ));
        }
        let policy = InputPolicy::new(&s.input_roots, MAX_INPUT_BYTES);
        if source.has_local() {
            // Every local input would fail the same way: refuse the job.
            if let Err(e) = policy.check(std::path::Path::new("/"))
                && e.is_config()
            {
                return Err(reject(e.to_string()));
            }
        }
        Ok(Box::new(PicwishWalk {
            settings: s,
            op,
            opts,
            interface,
            source,
            policy,
            budget: p.u64("max_credits"),
            reprocess: p.bool("reprocess").unwrap_or(false),
            job_dir: job.job_dir(),
        }))
    }
}
