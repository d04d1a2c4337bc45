//! The ugoira conversion as a post-processing step.
//!
//! Owns the step's name and the form of its arguments in a checkpoint:
//! `frames` (`[[file, delay_ms], …]`) and `format` (`gif`, `apng`, `webp`
//! or `zip`), the form format-1 checkpoints already hold, so a conversion
//! journaled by an older build still runs.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::{Frame, UgoiraFormat, convert_ugoira};
use crate::checkpoint::PostStep;
use crate::postprocess::PostRunner;

/// The name items give the step.
pub const STEP: &str = "ugoira";

/// The step that turns a downloaded ugoira zip into an animation.
#[derive(Debug)]
pub struct UgoiraStep;

/// The step for a zip with `frames` (file, delay in ms), written as
/// `format` to `out` (relative to the job's folder).
pub fn ugoira_step(frames: &[(String, u32)], format: &str, out: String) -> PostStep {
    let mut args = Map::new();
    args.insert("frames".into(), json!(frames));
    args.insert("format".into(), Value::from(format));
    PostStep { name: STEP.into(), out, args }
}

impl PostRunner for UgoiraStep {
    fn name(&self) -> &'static str {
        STEP
    }

    fn run(&self, input: &Path, step: &PostStep, output: &Path) -> Result<(), String> {
        let format = match step.args.get("format").and_then(Value::as_str) {
            Some("gif") => UgoiraFormat::Gif,
            Some("apng") => UgoiraFormat::Apng,
            Some("webp") => UgoiraFormat::Webp,
            Some("zip") => return Ok(()),
            other => return Err(format!("unknown ugoira format {other:?}")),
        };
        let frames: Vec<(String, u32)> = step
            .args
            .get("frames")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| format!("the ugoira step's frame list is unreadable: {e}"))?
            .unwrap_or_default();
        let frames: Vec<Frame> = frames.into_iter().map(|(file, delay)| Frame { file, delay }).collect();
        convert_ugoira(input, &frames, format, output).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::pixiv::ugoira::testutil::{frames, jpeg, write_zip};

    #[test]
    fn the_step_converts_what_ugoira_step_describes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zip = dir.path().join("1.zip");
        let (a, b) = (jpeg(8, 8, 0), jpeg(8, 8, 1));
        write_zip(&zip, &[("000000.jpg", &a), ("000001.jpg", &b)], false);
        let list: Vec<(String, u32)> = frames(&[("000000.jpg", 40), ("000001.jpg", 60)])
            .into_iter()
            .map(|f| (f.file, f.delay))
            .collect();
        let step = ugoira_step(&list, "gif", "1.gif".into());
        // The step goes through a checkpoint as JSON.
        let step: PostStep =
            serde_json::from_str(&serde_json::to_string(&step).expect("json")).expect("back");
        let out = dir.path().join("1.gif");
        UgoiraStep.run(&zip, &step, &out).expect("converted");
        assert!(std::fs::read(&out).expect("gif").starts_with(b"GIF89a"));
        let bad = PostStep { args: Map::new(), ..step };
        assert!(UgoiraStep.run(&zip, &bad, &out).expect_err("no format").contains("format"));
    }

    #[test]
    fn a_step_journaled_by_format_1_reads_back_and_converts() {
        // An item of a checkpoint written by format 1, as it was journaled.
        let old = json!({"k": "9_ugoira", "u": "https://h/9.zip", "p": "9.zip",
            "q": {"k": "ugoira", "frames": [["000000.jpg", 100], ["000001.jpg", 50]], "format": "gif", "out": "9.gif"}});
        let it: crate::checkpoint::Item = serde_json::from_value(old.clone()).expect("format 1 item");
        let crate::checkpoint::Work::Fetch(f) = &it.work else { panic!("a download: {it:?}") };
        let step = f.post.as_deref().expect("the step");
        assert_eq!(step.name, STEP);
        assert_eq!(serde_json::to_value(&it).expect("json"), old);
        let dir = tempfile::tempdir().expect("tempdir");
        let zip = dir.path().join("9.zip");
        let (a, b) = (jpeg(8, 8, 0), jpeg(8, 8, 1));
        write_zip(&zip, &[("000000.jpg", &a), ("000001.jpg", &b)], false);
        let out = dir.path().join("9.gif");
        UgoiraStep.run(&zip, step, &out).expect("converted");
        assert!(std::fs::read(&out).expect("gif").starts_with(b"GIF89a"));
    }
}
