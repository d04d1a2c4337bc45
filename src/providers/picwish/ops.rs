//! The operations a `picwish.process` job can ask for, as data: each
//! one's API path and web route, the options it takes and how they are
//! sent, the name of what it saves, and what it costs.
//!
//! Owns the mapping from job keys to form fields (docs/picwish.md has the
//! tables). Invariant: an option an operation does not take, or a value
//! outside what it documents, refuses the job before anything is sent.

use serde_json::{Map, Value};

use crate::inputs::{ImageInfo, ImageKind};

/// One operation.
#[derive(Debug)]
pub struct Op {
    /// The job's `op`.
    pub name: &'static str,
    /// The official API's path under `/api/tasks/visual/`.
    pub api_path: &'static str,
    /// The web gateway's task route, when the web flow offers it.
    pub web_route: Option<&'static str>,
    /// The `image-url` kind of the watermark-free result on the web flow
    /// (`None`: the poll's own `image` is the result).
    pub web_free: Option<&'static str>,
    /// The job keys it takes.
    pub options: &'static [&'static str],
    /// What its result is saved as by default (`None`: the input's own
    /// format).
    pub default_ext: Option<&'static str>,
}

/// Every operation, in the order the README lists them.
pub static OPS: &[Op] = &[
    Op {
        name: "remove_background",
        api_path: "segmentation",
        web_route: Some("tasks/login/segmentation"),
        web_free: Some("segmentation"),
        options: &["op_type", "crop", "format", "bg_color"],
        default_ext: Some("png"),
    },
    Op {
        name: "face_cutout",
        api_path: "self-face-cutout",
        web_route: None,
        web_free: None,
        options: &["crop", "format"],
        default_ext: Some("png"),
    },
    Op {
        name: "enhance",
        api_path: "scale",
        web_route: Some("tasks/login/scale"),
        web_free: Some("scale"),
        options: &["op_type", "scale_factor"],
        default_ext: None,
    },
    Op {
        name: "colorize",
        api_path: "colorization",
        web_route: Some("tasks/colorization"),
        web_free: None,
        options: &["format"],
        default_ext: Some("jpg"),
    },
    Op {
        name: "correction",
        api_path: "correction",
        web_route: None,
        web_free: None,
        options: &["op_type"],
        default_ext: None,
    },
];

/// Every option key of every operation (the job type declares them all;
/// each operation checks its own). PicWish's `type` field is the job key
/// `op_type`: a job's own `type` is its job type.
pub const OPTION_KEYS: &[&str] = &["op_type", "crop", "format", "bg_color", "scale_factor"];

/// The operation called `name`.
pub fn find(name: &str) -> Option<&'static Op> {
    OPS.iter().find(|o| o.name == name)
}

/// A job's options, checked against its operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The official API's form fields, in a fixed order.
    pub fields: Vec<(String, String)>,
    /// The output format asked for (`png`, `jpg`, `webp`), if any.
    pub format: Option<String>,
    /// `scale_factor`, if given (enhance).
    pub scale: Option<u32>,
}

impl Op {
    /// Checks the options of a job (its keys in `given`) and turns them
    /// into form fields; `keep_mask` adds the mask to background removal.
    pub fn options(&self, given: &Map<String, Value>, keep_mask: bool) -> Result<Options, String> {
        for key in OPTION_KEYS {
            if given.contains_key(*key) && !self.options.contains(key) {
                let takes =
                    if self.options.is_empty() { "no options".to_string() } else { self.options.join(", ") };
                return Err(format!("op {:?} does not take {key:?} (it takes {takes})", self.name));
            }
        }
        let text = |k: &str| given.get(k).and_then(Value::as_str).map(str::to_string);
        let one_of = |k: &str, allowed: &[&str]| -> Result<Option<String>, String> {
            match given.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => String::new(),
                    };
                    if allowed.contains(&s.as_str()) {
                        Ok(Some(s))
                    } else {
                        Err(format!("{k} of op {:?} must be one of {}", self.name, allowed.join(", ")))
                    }
                }
            }
        };
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut push = |k: &str, v: String| fields.push((k.to_string(), v));
        let mut format = None;
        let mut scale = None;
        match self.name {
            "remove_background" => {
                if let Some(t) = one_of("op_type", &["person", "object", "stamp"])? {
                    push("type", t);
                }
                if let Some(c) = given.get("crop").and_then(Value::as_bool) {
                    push("crop", if c { "1" } else { "0" }.into());
                }
                if let Some(f) = one_of("format", &["png", "jpg"])? {
                    format = Some(f.clone());
                    push("format", f);
                }
                if let Some(c) = text("bg_color") {
                    let hex = c.trim_start_matches('#');
                    if hex.len() != 6 || !hex.chars().all(|ch| ch.is_ascii_hexdigit()) {
                        return Err("bg_color must be a colour as RRGGBB hex, such as \"FFFFFF\"".into());
                    }
                    push("bg_color", hex.to_ascii_uppercase());
                }
                push("output_type", if keep_mask { "1" } else { "2" }.into());
            }
            "face_cutout" => {
                if let Some(c) = given.get("crop").and_then(Value::as_bool) {
                    push("crop", if c { "1" } else { "0" }.into());
                }
                if let Some(f) = one_of("format", &["png", "jpg"])? {
                    format = Some(f.clone());
                    push("output_format", f);
                }
            }
            "enhance" => {
                if let Some(t) = one_of("op_type", &["clean", "face"])? {
                    push("type", t);
                }
                if let Some(f) = one_of("scale_factor", &["1", "2", "4"])? {
                    scale = f.parse().ok();
                    push("scale_factor", f);
                }
            }
            "colorize" => {
                if let Some(f) = one_of("format", &["jpg", "png", "webp"])? {
                    format = Some(f.clone());
                    push("format", f);
                }
            }
            "correction" => {
                if let Some(t) = one_of("op_type", &["0", "1", "2", "3", "4"])? {
                    push("type", t);
                }
            }
            _ => {}
        }
        Ok(Options { fields, format, scale })
    }

    /// Whether a mask comes back beside the image.
    pub fn has_mask(&self, opts: &Options) -> bool {
        self.name == "remove_background" && opts.fields.iter().any(|(k, v)| k == "output_type" && v == "1")
    }

    /// The extension its result is saved with, for an input of `kind`.
    pub fn ext(&self, opts: &Options, kind: Option<ImageKind>) -> String {
        if let Some(f) = &opts.format {
            return f.clone();
        }
        if let Some(e) = self.default_ext {
            return e.to_string();
        }
        match kind {
            Some(ImageKind::Jpeg) => "jpg".into(),
            Some(ImageKind::Webp) => "webp".into(),
            _ => "png".into(),
        }
    }

    /// What one task costs in credits (picwish.com/credit-cost):
    /// enhancement by the result's long edge (the input's times the scale
    /// factor, 2 when automatic), everything else one.
    pub fn credits(&self, opts: &Options, info: Option<&ImageInfo>) -> u64 {
        if self.name != "enhance" {
            return 1;
        }
        let edge = info.map_or(0, |i| u64::from(i.long_edge())) * u64::from(opts.scale.unwrap_or(2));
        if edge <= 2048 { 2 } else { 3 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(op: &str, given: Value, mask: bool) -> Result<Options, String> {
        find(op).expect("op").options(given.as_object().expect("object"), mask)
    }

    #[test]
    fn options_become_the_documented_fields() {
        let o = opts(
            "remove_background",
            json!({"op_type": "person", "crop": true, "bg_color": "#ffaa00"}),
            true,
        )
        .expect("valid");
        assert_eq!(
            o.fields,
            [("type", "person"), ("crop", "1"), ("bg_color", "FFAA00"), ("output_type", "1")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let o = opts("face_cutout", json!({"format": "jpg"}), false).expect("valid");
        assert_eq!(o.fields, [("output_format".to_string(), "jpg".to_string())]);
        let o = opts("enhance", json!({"scale_factor": 4}), false).expect("valid");
        assert_eq!((o.scale, o.fields.len()), (Some(4), 1));
    }

    #[test]
    fn what_an_op_does_not_take_is_refused_with_what_it_takes() {
        let e = opts("enhance", json!({"crop": true}), false).expect_err("refused");
        assert!(e.contains("does not take \"crop\"") && e.contains("op_type, scale_factor"), "{e}");
        let e = opts("enhance", json!({"scale_factor": 3}), false).expect_err("refused");
        assert!(e.contains("1, 2, 4"), "{e}");
        let e = opts("remove_background", json!({"bg_color": "white"}), false).expect_err("refused");
        assert!(e.contains("RRGGBB"), "{e}");
        assert!(opts("colorize", json!({"format": "gif"}), false).is_err());
    }

    #[test]
    fn credits_follow_the_price_list() {
        let op = find("enhance").expect("op");
        let info = |w, h| ImageInfo { kind: ImageKind::Jpeg, width: w, height: h };
        let auto = opts("enhance", json!({}), false).expect("valid");
        assert_eq!(op.credits(&auto, Some(&info(1000, 800))), 2);
        assert_eq!(op.credits(&auto, Some(&info(1500, 800))), 3);
        let x4 = opts("enhance", json!({"scale_factor": 4}), false).expect("valid");
        assert_eq!(op.credits(&x4, Some(&info(500, 400))), 2);
        let rb = find("remove_background").expect("op");
        assert_eq!(rb.credits(&auto, None), 1);
    }
}
