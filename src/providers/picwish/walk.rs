//! The listing of a `picwish.process` job: its inputs, checked, hashed
//! and turned into one remote task per distinct image.
//!
//! Owns what is decided before anything is sent: which paths are inputs
//! (inside `input_roots`, images by content, within PicWish's size
//! limit), where each result goes (the input tree mirrored under the
//! job's folder), what each task costs, and the content archive: an image
//! already processed with the same op and options is not sent again,
//! whatever its name or folder; its earlier output is copied when it still
//! exists. Invariants: two inputs with the same bytes make one task whose
//! result is saved to both destinations; nothing outside `input_roots` is
//! opened; the key, tokens and secrets never enter an item.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rayon::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::answer::{classify_api, classify_web};
use super::ops::{Op, Options};
use super::settings::Settings;
use super::tasks::{API_RUNNER, WEB_RUNNER};
use crate::checkpoint::{Item, Work};
use crate::inputs::{ImageInfo, InputError, InputPolicy, LocalInput, sniff_file};
use crate::pacing::default_classify;
use crate::providers::{AccountSpec, Api, LaneSpec, PacingSpec, Page, Walk, WalkError};

/// Which PicWish interface a job uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// The official API with `X-API-KEY`.
    Api,
    /// The web gateway with an upload to PicWish's storage.
    Web,
}

/// Where a job's inputs come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Every file in a folder and below it.
    Dir(PathBuf),
    /// Paths and URLs.
    List(Vec<String>),
}

impl Source {
    /// Whether it names a local file or folder.
    pub fn has_local(&self) -> bool {
        match self {
            Source::Dir(_) => true,
            Source::List(l) => l.iter().any(|s| !is_url(s)),
        }
    }
}

/// An http(s) URL input.
fn is_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// The listing.
#[derive(Debug)]
pub struct PicwishWalk {
    /// The configuration section.
    pub settings: Settings,
    /// The operation.
    pub op: &'static Op,
    /// Its checked options.
    pub opts: Options,
    /// The interface.
    pub interface: Interface,
    /// The inputs.
    pub source: Source,
    /// The rule for local inputs.
    pub policy: InputPolicy,
    /// `max_credits`.
    pub budget: Option<u64>,
    /// `reprocess`.
    pub reprocess: bool,
    /// `<save_path>/<name>`.
    pub job_dir: PathBuf,
}

/// A local input, read: what the task needs and what the archive keys.
struct Read1 {
    /// The input.
    input: LocalInput,
    /// Its output path relative to the job folder, without extension.
    stem: String,
    /// Image kind and size.
    info: ImageInfo,
    /// SHA-256 of its bytes, hex.
    sha: String,
}

/// A job's inputs before they are read: local files with their output
/// paths (relative, with their extension), refusals, and URLs.
struct Found {
    /// Inputs that passed the policy, with their relative paths.
    local: Vec<(LocalInput, String)>,
    /// Paths that did not.
    refused: Vec<InputError>,
    /// URL inputs.
    urls: Vec<String>,
}

/// The sha256 of a short string, hex, cut to `n` characters.
pub(super) fn digest(s: &str, n: usize) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect::<String>()[..n].to_string()
}

impl PicwishWalk {
    /// The content-archive key of an image with these bytes, for this op
    /// and options.
    fn content_key(&self, sha: &str) -> String {
        let fields: Vec<String> = self.opts.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("picwish:{sha}:{}:{}", self.op.name, digest(&fields.join("&"), 16))
    }

    /// The task's input: everything a step needs, no secret.
    fn task_input(
        &self,
        src: Value,
        sha: Option<&str>,
        key: Option<&str>,
        outs: &[String],
        masks: &[String],
    ) -> Value {
        json!({
            "v": 1,
            "op": self.op.name,
            "path": self.op.api_path,
            "route": self.op.web_route,
            "free": self.op.web_free,
            "fields": self.opts.fields,
            "api": self.settings.api_url,
            "web": self.settings.web_url,
            "oss": self.settings.oss_url,
            "state": self.settings.state_dir,
            "src": src,
            "sha": sha,
            "key": key,
            "outs": outs,
            "masks": masks,
        })
    }

    /// The local inputs and the refusals, in listing order.
    fn local_inputs(&self) -> Result<Found, WalkError> {
        let rel_name = |i: &LocalInput| {
            i.path.file_name().map_or_else(|| "input".to_string(), |n| n.to_string_lossy().into_owned())
        };
        match &self.source {
            Source::Dir(dir) => {
                let (ok, refused) = self.policy.walk(dir).map_err(|e| WalkError::Invalid(e.to_string()))?;
                let top = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
                let ok = ok
                    .into_iter()
                    .map(|i| {
                        let rel = i.path.strip_prefix(&top).map_or_else(
                            |_| rel_name(&i),
                            |r| {
                                r.components()
                                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                                    .collect::<Vec<_>>()
                                    .join("/")
                            },
                        );
                        (i, rel)
                    })
                    .collect();
                Ok(Found { local: ok, refused, urls: Vec::new() })
            }
            Source::List(list) => {
                let (mut ok, mut refused, mut urls) = (Vec::new(), Vec::new(), Vec::new());
                for s in list {
                    if is_url(s) {
                        urls.push(s.clone());
                        continue;
                    }
                    match self.policy.check(Path::new(s)) {
                        Ok(i) => {
                            let rel = rel_name(&i);
                            ok.push((i, rel));
                        }
                        Err(e) if e.is_config() => return Err(WalkError::Invalid(e.to_string())),
                        Err(e) => refused.push(e),
                    }
                }
                Ok(Found { local: ok, refused, urls })
            }
        }
    }

    /// Reads each input once (kind, size, hash), on all cores: a folder
    /// of photos is hashed at disk speed, not one file at a time.
    fn read_all(inputs: Vec<(LocalInput, String)>) -> Vec<Result<Read1, (String, String)>> {
        inputs
            .into_par_iter()
            .map(|(input, rel)| {
                let shown = crate::naming::escape_display(&input.given.to_string_lossy());
                let fail = |r: String| (rel.clone(), format!("{shown}: {r}"));
                let mut file = input.open().map_err(|e| (rel.clone(), e.to_string()))?;
                let info = sniff_file(&mut file, input.len).map_err(|e| fail(e.to_string()))?;
                let mut file = input.open().map_err(|e| (rel.clone(), e.to_string()))?;
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => h.update(&buf[..n]),
                        Err(e) => return Err(fail(format!("cannot read it: {e}"))),
                    }
                }
                let sha = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
                let stem = match rel.rsplit_once('.') {
                    Some((s, _)) if !s.is_empty() && !s.ends_with('/') => s.to_string(),
                    _ => rel.clone(),
                };
                Ok(Read1 { input, stem, info, sha })
            })
            .collect()
    }

    /// The output path of `stem` with `ext`, safe and not yet taken.
    fn out_path(stem: &str, ext: &str, taken: &mut HashSet<String>) -> String {
        let parts: Vec<String> = stem
            .split('/')
            .filter(|c| !c.is_empty())
            .map(|c| crate::naming::sanitize_component(c, "input"))
            .collect();
        let base = if parts.is_empty() { "input".to_string() } else { parts.join("/") };
        let mut n = 1;
        loop {
            let p = if n == 1 { format!("{base}.{ext}") } else { format!("{base}_{n}.{ext}") };
            if taken.insert(p.clone()) {
                return p;
            }
            n += 1;
        }
    }

    /// What to do with an input the archive knows.
    fn archived(&self, key: &str, out: &str, api: &Api) -> Option<Work> {
        if self.reprocess {
            return None;
        }
        let earlier = api.archived_output(key)?;
        let dest = self.job_dir.join(out);
        Some(match earlier {
            Some(p) if p == dest && p.is_file() => Work::Skip("already processed (content archive)".into()),
            Some(p) if p.is_file() => Work::Copy(p.to_string_lossy().into_owned()),
            Some(p) => Work::Skip(format!(
                "processed before with the same op and options; its output {} is gone (reprocess: true sends it again)",
                crate::naming::escape_display(&p.to_string_lossy())
            )),
            None => Work::Skip(
                "processed before with the same op and options (reprocess: true sends it again)".into(),
            ),
        })
    }
}

impl Walk for PicwishWalk {
    fn account(&self) -> Option<AccountSpec> {
        Some(match self.interface {
            Interface::Api => {
                let key = self.settings.api_key.clone().unwrap_or_default();
                // The key's digest names the account: every job of one key
                // shares its 2 requests per second, and the key itself
                // never appears in a log line.
                AccountSpec::new(
                    format!("picwish:{}", digest(&format!("{}|{key}", self.settings.api_url), 12)),
                    classify_api,
                    // PicWish counts requests per second: a burst of 429s
                    // passes within seconds, never minutes.
                    PacingSpec::budget(2.0, 1.0, Duration::from_secs(1)).backoff_max(Duration::from_secs(8)),
                )
                .with_credential("X-API-KEY", &key)
            }
            Interface::Web => {
                let mut a = AccountSpec::new(
                    format!("picwish-web:{}", digest(&self.settings.web_url, 12)),
                    classify_web,
                    PacingSpec::budget(2.0, 1.0, Duration::from_secs(1)).backoff_max(Duration::from_secs(8)),
                );
                a.lanes.push(LaneSpec {
                    name: "oss",
                    classify: default_classify,
                    pacing: PacingSpec {
                        interval: Some(Duration::ZERO),
                        ..PacingSpec::polite(Duration::from_secs(1))
                    },
                });
                a
            }
        })
    }

    fn budget(&self) -> Option<u64> {
        self.budget
    }

    fn next_page(&mut self, _cursor: Option<&Value>, api: &Api) -> Result<Page, WalkError> {
        let Found { local, refused, urls } = self.local_inputs()?;
        let mut items = Vec::new();
        for e in refused {
            let shown = e.to_string();
            items.push(Item::fail(format!("refused:{}", digest(&shown, 16)), shown));
        }
        let runner = match self.interface {
            Interface::Api => API_RUNNER,
            Interface::Web => WEB_RUNNER,
        };
        let mut taken = HashSet::new();
        // Content key → index in `items` of the task that makes it.
        let mut by_key: HashMap<String, usize> = HashMap::new();
        let read = Self::read_all(local);
        for r in read {
            let r = match r {
                Ok(r) => r,
                Err((rel, reason)) => {
                    items.push(Item::fail(format!("in:{rel}"), reason));
                    continue;
                }
            };
            let ext = self.op.ext(&self.opts, Some(r.info.kind));
            let out = Self::out_path(&r.stem, &ext, &mut taken);
            let mask = self
                .op
                .has_mask(&self.opts)
                .then(|| Self::out_path(&format!("{}.mask", r.stem), "png", &mut taken));
            let key = self.content_key(&r.sha);
            if let Some(&at) = by_key.get(&key) {
                // The same bytes again: one task, one more destination.
                if let Work::Task(t) = &mut items[at].work {
                    if let Some(o) = t.input["outs"].as_array_mut() {
                        o.push(json!(out));
                    }
                    if let (Some(m), Some(mask)) = (t.input["masks"].as_array_mut(), mask) {
                        m.push(json!(mask));
                    }
                }
                continue;
            }
            if let Some(work) = self.archived(&key, &out, api) {
                let copy_mask = match (&work, &mask) {
                    (Work::Copy(src), Some(m)) => {
                        let earlier = PathBuf::from(src);
                        let stem =
                            earlier.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                        let em = earlier.with_file_name(format!("{stem}.mask.png"));
                        em.is_file().then(|| {
                            Item::with(
                                format!("in:{}#mask", r.stem),
                                m.clone(),
                                Work::Copy(em.to_string_lossy().into_owned()),
                            )
                        })
                    }
                    _ => None,
                };
                let path = if matches!(work, Work::Skip(_)) { String::new() } else { out.clone() };
                items.push(Item::with(format!("in:{}", r.stem), path, work));
                items.extend(copy_mask);
                continue;
            }
            let src = json!({
                "path": r.input.path,
                "len": r.input.len,
                "mime": r.info.kind.mime(),
                "name": r.input.path.file_name().map(|n| n.to_string_lossy().into_owned()),
            });
            let masks: Vec<String> = mask.into_iter().collect();
            let input = self.task_input(src, Some(&r.sha), Some(&key), std::slice::from_ref(&out), &masks);
            let mut item = Item::task(format!("in:{}", r.stem), out, runner, input);
            if let Work::Task(t) = &mut item.work {
                t.cost = Some(self.op.credits(&self.opts, Some(&r.info)));
            }
            by_key.insert(key, items.len());
            items.push(item);
        }
        for url in urls {
            let name = crate::naming::file_name_from_url(&url, "image");
            let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s).to_string();
            let out = Self::out_path(&stem, &self.op.ext(&self.opts, None), &mut taken);
            let masks: Vec<String> = self
                .op
                .has_mask(&self.opts)
                .then(|| Self::out_path(&format!("{stem}.mask"), "png", &mut taken))
                .into_iter()
                .collect();
            let input = self.task_input(json!({"url": url}), None, None, std::slice::from_ref(&out), &masks);
            let mut item = Item::task(format!("url:{}", digest(&url, 16)), out, runner, input);
            if let Work::Task(t) = &mut item.work {
                t.cost = Some(self.op.credits(&self.opts, None));
            }
            items.push(item);
        }
        Ok(Page { total: Some(items.len() as u64), items, ..Page::default() })
    }

    fn refreshes(&self) -> bool {
        true
    }

    fn refresh(&mut self, item: &Item, api: &Api) -> Result<Option<Vec<String>>, WalkError> {
        super::tasks::fresh_result(item, api, &self.settings)
    }
}
