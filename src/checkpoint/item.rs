//! One unit of work found by a listing, and the step that may follow it.
//!
//! Owns the in-memory form of an item and its on-disk form. In memory an
//! item is a sum type: it is fetched, written from inline content,
//! skipped or failed, never two of these, so no consumer has to know a
//! precedence. On disk it keeps the flat one-letter form every checkpoint
//! format has used (a 100,000-item job journals every item once; see the
//! checkpoint budget in BENCHMARKS.md), so journals and snapshots written
//! by older builds read back unchanged. Invariant: reading what was
//! written gives the same item; a flat record that names several kinds
//! (only an older or a broken writer makes one) is read with the
//! precedence the runner always applied: fail, skip, inline, copy, task,
//! stream, fetch.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// One unit of work: a file to fetch or to write, or the reason there is
/// none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// A provider key (for example `12345_p0`) used to skip an item that a
    /// re-fetched listing page yields again; empty when not needed.
    pub key: String,
    /// Where it goes, relative to the job's folder, `/`-separated, every
    /// component already sanitized; may be empty for a skipped or failed
    /// item.
    pub path: String,
    /// Download-archive key, written once the file is safely in place; an
    /// item whose key is archived already is skipped.
    pub archive: Option<String>,
    /// What to do.
    pub work: Work,
}

/// What an item asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Download a URL.
    Fetch(Fetch),
    /// Write this content (metadata, text) instead of downloading.
    Inline(String),
    /// Do not save it: the listing knows it must not be saved (a
    /// placeholder, a deleted work, a filter), for this reason.
    Skip(String),
    /// The listing could not produce it (the API refused the work): the
    /// item fails for good with this reason.
    Fail(String),
    /// Copy this earlier output of the same work (an absolute path, read
    /// without following links) to the item's path: a content archive
    /// found the result already made, so nothing is sent again.
    Copy(String),
    /// Work done by a remote service (upload, create a task, poll it):
    /// the kernel steps it through the provider's task runner, journaling
    /// every state, until it produces the files to save.
    Task(Task),
    /// A live stream to record until it ends (or a limit is reached), by
    /// the recorder threads.
    Stream(Stream),
}

/// A live stream, as the listing describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stream {
    /// The playlist (HLS) or the stream (FLV).
    #[serde(rename = "u")]
    pub url: String,
    /// How it is delivered.
    #[serde(rename = "k")]
    pub protocol: StreamProtocol,
    /// Stop after this many seconds of media.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub max_secs: Option<u64>,
    /// Stop after this many bytes.
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

/// How a live stream is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamProtocol {
    /// An HLS media (or master) playlist with a sliding window.
    #[serde(rename = "hls")]
    Hls,
    /// An endless FLV body.
    #[serde(rename = "flv")]
    Flv,
}

/// A remote task, as the listing describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// The task runner's name, as the provider registers it.
    #[serde(rename = "n")]
    pub runner: String,
    /// What the runner needs to start (an input path, options).
    #[serde(rename = "i", default)]
    pub input: Value,
    /// What the task costs the user, in the provider's unit (credits),
    /// when it is charged: counted into the job's estimate, and checked
    /// against the walk's budget before the task's first step.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<u64>,
}

/// A download.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fetch {
    /// The URL.
    pub url: String,
    /// More candidate URLs for the same file (mirrors, other signatures),
    /// tried in order after `url` when one answers as expired (403, 404,
    /// 410) or empty. On disk only when there are some, so a single-URL
    /// item keeps the form older builds wrote and read.
    pub also: Vec<String>,
    /// Expected size in bytes, when the API says.
    pub size: Option<u64>,
    /// Expected MD5 (hex), when the API says.
    pub md5: Option<String>,
    /// Extra request headers for this item.
    pub headers: Vec<(String, String)>,
    /// Work to do on the file once it is downloaded, run by name by the
    /// post-processing thread.
    pub post: Option<Box<PostStep>>,
    /// The server may name the file (`Content-Disposition`) in the item's
    /// folder: the path's last component is only a provisional name (the
    /// URL gave none). On disk only when set.
    pub server_name: bool,
}

/// A step after a download, named by the provider that supplies it and
/// run by the post-processing thread so that it never holds up downloads.
///
/// On disk it is one object: `k` is the name, `out` the output path and
/// every other key an argument of the step, the form format-1 checkpoints
/// already used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostStep {
    /// The step's name, as the provider registers it.
    #[serde(rename = "k")]
    pub name: String,
    /// The output path, relative to the job's folder.
    pub out: String,
    /// The step's arguments, as the provider wrote them.
    #[serde(flatten)]
    pub args: Map<String, Value>,
}

impl Item {
    /// A download of `url` to `path`.
    pub fn fetch(key: impl Into<String>, url: impl Into<String>, path: impl Into<String>) -> Item {
        Item::with(key, path, Work::Fetch(Fetch { url: url.into(), ..Fetch::default() }))
    }

    /// A file at `path` written from `body`.
    pub fn inline(key: impl Into<String>, path: impl Into<String>, body: impl Into<String>) -> Item {
        Item::with(key, path, Work::Inline(body.into()))
    }

    /// An item the listing knows must not be saved.
    pub fn skip(key: impl Into<String>, reason: impl Into<String>) -> Item {
        Item::with(key, String::new(), Work::Skip(reason.into()))
    }

    /// A remote task run by the task runner `runner`.
    pub fn task(
        key: impl Into<String>,
        path: impl Into<String>,
        runner: impl Into<String>,
        input: Value,
    ) -> Item {
        Item::with(key, path, Work::Task(Task { runner: runner.into(), input, cost: None }))
    }

    /// A live stream recorded to `path`.
    pub fn stream(key: impl Into<String>, path: impl Into<String>, stream: Stream) -> Item {
        Item::with(key, path, Work::Stream(stream))
    }

    /// An item the listing could not produce.
    pub fn fail(key: impl Into<String>, reason: impl Into<String>) -> Item {
        Item::with(key, String::new(), Work::Fail(reason.into()))
    }

    /// An item of any kind.
    pub fn with(key: impl Into<String>, path: impl Into<String>, work: Work) -> Item {
        Item { key: key.into(), path: path.into(), archive: None, work }
    }

    /// The same item with a download-archive key.
    #[must_use]
    pub fn archived(mut self, key: Option<String>) -> Item {
        self.archive = key;
        self
    }

    /// The same item with a post step; only a download can carry one, so
    /// for any other kind this changes nothing.
    #[must_use]
    pub fn then(mut self, step: Option<PostStep>) -> Item {
        if let Work::Fetch(f) = &mut self.work {
            f.post = step.map(Box::new);
        }
        self
    }

    /// The URL it downloads, if it is a download.
    pub fn url(&self) -> Option<&str> {
        match &self.work {
            Work::Fetch(f) => Some(&f.url),
            _ => None,
        }
    }

    /// Every candidate URL of a download, in the order they are tried;
    /// empty for any other kind.
    pub fn urls(&self) -> Vec<&str> {
        match &self.work {
            Work::Fetch(f) => f.urls().collect(),
            _ => Vec::new(),
        }
    }

    /// The content it writes, if it is written from inline content.
    pub fn body(&self) -> Option<&str> {
        match &self.work {
            Work::Inline(b) => Some(b),
            _ => None,
        }
    }
}

impl Fetch {
    /// The URL and then the other candidates.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.url.as_str()).chain(self.also.iter().map(String::as_str))
    }

    /// Replaces every candidate with `urls` (the first is the URL); an
    /// empty list changes nothing, since a download needs a URL.
    pub fn set_urls(&mut self, urls: &[String]) {
        if let Some((first, rest)) = urls.split_first() {
            self.url.clone_from(first);
            self.also = rest.to_vec();
        }
    }
}

/// The flat form on disk, borrowed for writing.
#[derive(Serialize)]
struct WireOut<'a> {
    #[serde(rename = "k", skip_serializing_if = "str::is_empty")]
    key: &'a str,
    #[serde(rename = "u", skip_serializing_if = "str::is_empty")]
    url: &'a str,
    #[serde(rename = "U", skip_serializing_if = "<[_]>::is_empty")]
    also: &'a [String],
    #[serde(rename = "p")]
    path: &'a str,
    #[serde(rename = "s", skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(rename = "m", skip_serializing_if = "Option::is_none")]
    md5: Option<&'a str>,
    #[serde(rename = "b", skip_serializing_if = "Option::is_none")]
    inline: Option<&'a str>,
    #[serde(rename = "c", skip_serializing_if = "Option::is_none")]
    copy: Option<&'a str>,
    #[serde(rename = "h", skip_serializing_if = "<[_]>::is_empty")]
    headers: &'a [(String, String)],
    #[serde(rename = "x", skip_serializing_if = "Option::is_none")]
    skip: Option<&'a str>,
    #[serde(rename = "e", skip_serializing_if = "Option::is_none")]
    fail: Option<&'a str>,
    #[serde(rename = "a", skip_serializing_if = "Option::is_none")]
    archive: Option<&'a str>,
    #[serde(rename = "q", skip_serializing_if = "Option::is_none")]
    post: Option<&'a PostStep>,
    #[serde(rename = "t", skip_serializing_if = "Option::is_none")]
    task: Option<&'a Task>,
    #[serde(rename = "l", skip_serializing_if = "Option::is_none")]
    stream: Option<&'a Stream>,
    #[serde(rename = "n", skip_serializing_if = "std::ops::Not::not")]
    server_name: bool,
}

/// The flat form on disk, owned for reading.
#[derive(Deserialize)]
struct WireIn {
    #[serde(rename = "k", default)]
    key: String,
    #[serde(rename = "u", default)]
    url: String,
    #[serde(rename = "U", default)]
    also: Vec<String>,
    #[serde(rename = "p")]
    path: String,
    #[serde(rename = "s", default)]
    size: Option<u64>,
    #[serde(rename = "m", default)]
    md5: Option<String>,
    #[serde(rename = "b", default)]
    inline: Option<String>,
    #[serde(rename = "c", default)]
    copy: Option<String>,
    #[serde(rename = "h", default)]
    headers: Vec<(String, String)>,
    #[serde(rename = "x", default)]
    skip: Option<String>,
    #[serde(rename = "e", default)]
    fail: Option<String>,
    #[serde(rename = "a", default)]
    archive: Option<String>,
    #[serde(rename = "q", default)]
    post: Option<Box<PostStep>>,
    #[serde(rename = "t", default)]
    task: Option<Task>,
    #[serde(rename = "l", default)]
    stream: Option<Stream>,
    #[serde(rename = "n", default)]
    server_name: bool,
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut w = WireOut {
            key: &self.key,
            url: "",
            also: &[],
            path: &self.path,
            size: None,
            md5: None,
            inline: None,
            copy: None,
            headers: &[],
            skip: None,
            fail: None,
            archive: self.archive.as_deref(),
            post: None,
            task: None,
            stream: None,
            server_name: false,
        };
        match &self.work {
            Work::Fetch(f) => {
                w.url = &f.url;
                w.also = &f.also;
                w.size = f.size;
                w.md5 = f.md5.as_deref();
                w.headers = &f.headers;
                w.post = f.post.as_deref();
                w.server_name = f.server_name;
            }
            Work::Inline(b) => w.inline = Some(b),
            Work::Copy(c) => w.copy = Some(c),
            Work::Skip(r) => w.skip = Some(r),
            Work::Fail(r) => w.fail = Some(r),
            Work::Task(t) => w.task = Some(t),
            Work::Stream(l) => w.stream = Some(l),
        }
        w.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Item, D::Error> {
        let w = WireIn::deserialize(d)?;
        let work = if let Some(r) = w.fail {
            Work::Fail(r)
        } else if let Some(r) = w.skip {
            Work::Skip(r)
        } else if let Some(b) = w.inline {
            Work::Inline(b)
        } else if let Some(c) = w.copy {
            Work::Copy(c)
        } else if let Some(t) = w.task {
            Work::Task(t)
        } else if let Some(l) = w.stream {
            Work::Stream(l)
        } else if w.url.is_empty() && w.also.is_empty() {
            Work::Fail("the listing gave this item neither a URL nor content".into())
        } else {
            let mut f = Fetch {
                url: w.url,
                also: w.also,
                size: w.size,
                md5: w.md5,
                headers: w.headers,
                post: w.post,
                server_name: w.server_name,
            };
            if f.url.is_empty() {
                // Only a broken writer leaves the first candidate out; the
                // others still name the file.
                f.url = f.also.remove(0);
            }
            Work::Fetch(f)
        };
        Ok(Item { key: w.key, path: w.path, archive: w.archive, work })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(it: &Item) -> Item {
        let s = serde_json::to_string(it).expect("serialize");
        serde_json::from_str(&s).expect("deserialize")
    }

    #[test]
    fn every_kind_round_trips() {
        let mut fetch = Item::fetch("1_p0", "https://h/a.jpg", "a/1_p0.jpg").archived(Some("x:1".into()));
        if let Work::Fetch(f) = &mut fetch.work {
            f.size = Some(10);
            f.md5 = Some("00".repeat(16));
            f.headers = vec![("Referer".into(), "https://h/".into())];
        }
        let step = PostStep {
            name: "convert".into(),
            out: "a/1.gif".into(),
            args: json!({"frames": [["0.jpg", 50]], "format": "gif"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        let with_post = Item::fetch("1_z", "https://h/1.zip", "a/1.zip").then(Some(step));
        for it in [
            fetch,
            with_post,
            Item::inline("1_json", "a/1.json", "{}"),
            Item::with("6", "out/6.png", Work::Copy("/srv/out/earlier/6.png".into())),
            Item::skip("2", "a placeholder"),
            Item::task("4", "out/4.png", "convert", json!({"input": "/srv/in/4.jpg"})),
            Item::stream(
                "5",
                "live/5.ts",
                Stream {
                    url: "https://h/5.m3u8".into(),
                    protocol: StreamProtocol::Hls,
                    max_secs: Some(60),
                    max_bytes: None,
                },
            ),
            Item::fail("3", "work 3: deleted"),
        ] {
            assert_eq!(round_trip(&it), it);
        }
    }

    #[test]
    fn the_flat_form_is_the_one_format_1_wrote() {
        let it = Item::fetch("1", "https://h/a", "a").archived(Some("k".into()));
        assert_eq!(
            serde_json::to_value(&it).expect("json"),
            json!({"k": "1", "u": "https://h/a", "p": "a", "a": "k"})
        );
        assert_eq!(serde_json::to_value(Item::skip("", "r")).expect("json"), json!({"p": "", "x": "r"}));
    }

    #[test]
    fn a_post_step_keeps_its_name_output_and_arguments_in_one_flat_object() {
        let old = json!({"k": "9_z", "u": "https://h/9.zip", "p": "9.zip",
            "q": {"k": "convert", "frames": [["000000.jpg", 100]], "format": "gif", "out": "9.gif"}});
        let it: Item = serde_json::from_value(old.clone()).expect("item");
        let Work::Fetch(f) = &it.work else { panic!("a download: {it:?}") };
        let step = f.post.as_deref().expect("the step");
        assert_eq!((step.name.as_str(), step.out.as_str()), ("convert", "9.gif"));
        assert_eq!(step.args.get("format"), Some(&json!("gif")));
        assert!(!step.args.contains_key("k") && !step.args.contains_key("out"));
        assert_eq!(serde_json::to_value(&it).expect("json"), old);
    }

    #[test]
    fn a_flat_record_naming_several_kinds_keeps_the_old_precedence() {
        let it: Item = serde_json::from_value(json!({"u": "https://h/a", "p": "a", "b": "x", "x": "skip"}))
            .expect("item");
        assert_eq!(it.work, Work::Skip("skip".into()));
        let it: Item =
            serde_json::from_value(json!({"u": "https://h/a", "p": "a", "b": "x", "x": "s", "e": "fail"}))
                .expect("item");
        assert_eq!(it.work, Work::Fail("fail".into()));
        let it: Item = serde_json::from_value(json!({"u": "https://h/a", "p": "a", "b": "x"})).expect("item");
        assert_eq!(it.work, Work::Inline("x".into()));
        let it: Item = serde_json::from_value(json!({"p": "a"})).expect("item");
        assert!(matches!(it.work, Work::Fail(_)), "{it:?}");
    }

    #[test]
    fn candidate_urls_are_an_extra_field_old_records_do_without() {
        let old: Item = serde_json::from_value(json!({"k": "1", "u": "https://h/a", "p": "a"})).expect("old");
        assert_eq!(old.urls(), ["https://h/a"]);
        let mut it = Item::fetch("1", "https://h/a", "a");
        if let Work::Fetch(f) = &mut it.work {
            f.also = vec!["https://m/a".into(), "https://n/a".into()];
        }
        let v = serde_json::to_value(&it).expect("json");
        assert_eq!(v, json!({"k": "1", "u": "https://h/a", "U": ["https://m/a", "https://n/a"], "p": "a"}));
        assert_eq!(round_trip(&it), it);
        assert_eq!(it.urls(), ["https://h/a", "https://m/a", "https://n/a"]);
        // A record with candidates only still downloads from the first.
        let it: Item = serde_json::from_value(json!({"U": ["https://m/a"], "p": "a"})).expect("item");
        assert_eq!(it.urls(), ["https://m/a"]);
    }

    #[test]
    fn set_urls_replaces_every_candidate_and_ignores_an_empty_list() {
        let mut f = Fetch { url: "https://h/a".into(), also: vec!["https://m/a".into()], ..Fetch::default() };
        f.set_urls(&[]);
        assert_eq!(f.urls().collect::<Vec<_>>(), ["https://h/a", "https://m/a"]);
        f.set_urls(&["https://x/1".into()]);
        assert_eq!(f.urls().collect::<Vec<_>>(), ["https://x/1"]);
    }

    #[test]
    fn a_post_step_only_attaches_to_a_download() {
        let step = PostStep { name: "n".into(), out: "o".into(), args: Map::new() };
        let it = Item::inline("k", "p", "b").then(Some(step));
        assert_eq!(it.work, Work::Inline("b".into()));
    }
}
