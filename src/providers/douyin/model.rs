//! What a Douyin work (an "aweme") is made of, and the files it gives.
//!
//! Owns the reading of the aweme object (docs/douyin.md: the fields F2's
//! filters read) and the choice of files: the video from
//! `video.bit_rate[0].play_addr.url_list`, every URL in order (the first
//! may have expired; the watermarked `play_addr`/`playwm` and
//! `download_addr` URLs are never used); an image post's images
//! (`images[i].url_list[0]`) and their live-photo clips; music, cover and
//! the description when `with` asks. Invariant: a prohibited, deleted or
//! private work gives one skipped item with the reason, never a file; every
//! file carries the archive key `douyin:<aweme_id>:<asset>`, so an edited
//! title never downloads a work again.

use serde_json::Value;

use super::naming::Fields;
use crate::checkpoint::{Item, Work};
use crate::naming::Template;

/// What a job saves of each work (`with`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct With {
    /// The video of a video work.
    pub video: bool,
    /// The images (and live-photo clips) of an image post.
    pub images: bool,
    /// The background music.
    pub music: bool,
    /// The cover.
    pub cover: bool,
    /// The description, as UTF-8 text.
    pub desc: bool,
}

impl Default for With {
    fn default() -> With {
        With { video: true, images: true, music: false, cover: false, desc: false }
    }
}

impl With {
    /// The assets a job names.
    pub fn parse<'a>(names: impl Iterator<Item = &'a str>) -> Result<With, String> {
        let mut w = With { video: false, images: false, music: false, cover: false, desc: false };
        for n in names {
            match n {
                "video" => w.video = true,
                "images" => w.images = true,
                "music" => w.music = true,
                "cover" => w.cover = true,
                "desc" => w.desc = true,
                other => {
                    return Err(format!("`with` takes video, images, music, cover, desc; not {other:?}"));
                }
            }
        }
        Ok(w)
    }
}

/// A work's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aweme {
    /// Naming fields.
    pub fields: Fields,
    /// The author's stable id (`by_user` folders).
    pub author_uid: String,
    /// The author's `sec_uid`.
    pub sec_uid: String,
    /// Why it is not saved, when it is not.
    pub unavailable: Option<String>,
    /// Video candidates, in order.
    pub video: Vec<String>,
    /// Images with their live-photo clip, if any.
    pub images: Vec<(String, Option<String>)>,
    /// Music URL, when its status allows it.
    pub music: Option<String>,
    /// Cover URL and extension (`webp` animated, else `jpeg`).
    pub cover: Option<(String, &'static str)>,
}

/// The http(s) URLs of a `url_list`.
fn urls(v: &Value) -> Vec<String> {
    v["url_list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(str::to_string)
        .collect()
}

/// A string or a number, as text (ids come as either).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

impl Aweme {
    /// Reads an aweme object; `None` when it has no id (an answer that is
    /// not a work).
    pub fn read(v: &Value) -> Option<Aweme> {
        let id = text(&v["aweme_id"]);
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let author = &v["author"];
        let status = &v["status"];
        let private = status["private_status"].as_i64().unwrap_or(0);
        let unavailable = if status["is_prohibited"].as_bool() == Some(true) {
            Some(format!("work {id} is prohibited on Douyin"))
        } else if status["is_delete"].as_bool() == Some(true) {
            Some(format!("work {id} was deleted"))
        } else if !(0..=2).contains(&private) {
            Some(format!("work {id} is private"))
        } else {
            None
        };
        let kind = v["aweme_type"].as_i64().unwrap_or(0);
        let images: Vec<(String, Option<String>)> = if kind == 68 {
            v["images"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|img| {
                    let url = urls(img).into_iter().next()?;
                    let clip = urls(&img["video"]["play_addr"]).into_iter().next();
                    Some((url, clip))
                })
                .collect()
        } else {
            Vec::new()
        };
        let video = if kind == 68 { Vec::new() } else { urls(&v["video"]["bit_rate"][0]["play_addr"]) };
        let music = (v["music"]["status"].as_i64() == Some(1))
            .then(|| urls(&v["music"]["play_url"]).into_iter().next())
            .flatten();
        let cover = urls(&v["video"]["animated_cover"])
            .into_iter()
            .next()
            .map(|u| (u, "webp"))
            .or_else(|| urls(&v["video"]["origin_cover"]).into_iter().next().map(|u| (u, "jpeg")));
        Some(Aweme {
            fields: Fields {
                aweme_id: id,
                create_time: v["create_time"].as_i64().unwrap_or(0),
                desc: v["desc"].as_str().unwrap_or("").to_string(),
                nickname: author["nickname"].as_str().unwrap_or("").to_string(),
                uid: text(&author["uid"]),
            },
            author_uid: text(&author["uid"]),
            sec_uid: author["sec_uid"].as_str().unwrap_or("").to_string(),
            unavailable,
            video,
            images,
            music,
            cover,
        })
    }

    /// The items of this work: its files under `folder` (`""` or ending
    /// in `/`), named by `template`.
    pub fn items(&self, with: With, template: &Template, folder: &str) -> Vec<Item> {
        let id = &self.fields.aweme_id;
        if let Some(why) = &self.unavailable {
            return vec![Item::with(format!("{id}:skip"), String::new(), Work::Skip(why.clone()))];
        }
        let base = format!("{folder}{}", self.fields.render(template));
        let archive = |asset: &str| Some(format!("douyin:{id}:{asset}"));
        let fetch = |asset: &str, candidates: &[String], suffix: &str| {
            let mut it = Item::fetch(format!("{id}:{asset}"), &candidates[0], format!("{base}{suffix}"));
            if let Work::Fetch(f) = &mut it.work {
                f.also = candidates[1..].to_vec();
            }
            it.archived(archive(asset))
        };
        let mut out = Vec::new();
        if with.video && !self.video.is_empty() {
            out.push(fetch("video", &self.video, "_video.mp4"));
        }
        if with.images {
            for (n, (url, clip)) in self.images.iter().enumerate() {
                let i = n + 1;
                out.push(fetch(&format!("image{i}"), std::slice::from_ref(url), &format!("_image_{i}.webp")));
                if let Some(c) = clip {
                    // Numbered by the image's position, in every job type,
                    // so a clip keeps its name whatever else changes.
                    out.push(fetch(&format!("live{i}"), std::slice::from_ref(c), &format!("_live_{i}.mp4")));
                }
            }
        }
        if with.music
            && let Some(m) = &self.music
        {
            out.push(fetch("music", std::slice::from_ref(m), "_music.mp3"));
        }
        if with.cover
            && let Some((c, ext)) = &self.cover
        {
            out.push(fetch("cover", std::slice::from_ref(c), &format!("_cover.{ext}")));
        }
        if with.desc {
            out.push(
                Item::inline(format!("{id}:desc"), format!("{base}_desc.txt"), self.fields.desc.clone())
                    .archived(archive("desc")),
            );
        }
        if out.is_empty() {
            out.push(Item::with(
                format!("{id}:skip"),
                String::new(),
                Work::Skip(format!("work {id} has none of the files `with` asks for")),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::douyin::naming::{DEFAULT_TEMPLATE, FIELDS};
    use serde_json::json;

    fn video_work() -> Value {
        json!({"aweme_id": "7300000000000000001", "aweme_type": 0, "create_time": 1700000000, "desc": "hello world #tag",
            "author": {"uid": "1", "sec_uid": "MS4wLjABAAAAx", "nickname": "Nick"},
            "status": {"private_status": 0, "is_prohibited": false, "is_delete": false},
            "music": {"status": 1, "play_url": {"url_list": ["https://cdn/m.mp3"]}},
            "video": {"play_addr": {"url_list": ["https://cdn/playwm/a.mp4"]},
                      "bit_rate": [{"play_addr": {"url_list": ["https://cdn/a.mp4", "https://cdn/b.mp4"]}}],
                      "origin_cover": {"url_list": ["https://cdn/c.jpeg"]}}})
    }

    fn template() -> Template {
        Template::parse(FIELDS, DEFAULT_TEMPLATE).expect("template")
    }

    #[test]
    fn a_video_is_taken_from_bit_rate_with_every_candidate_never_the_watermarked_url() {
        let a = Aweme::read(&video_work()).expect("a work");
        let items = a.items(With::default(), &template(), "");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].urls(), ["https://cdn/a.mp4", "https://cdn/b.mp4"]);
        assert_eq!(items[0].path, "2023-11-15 06-13-20_hello world #tag_7300000000000000001_video.mp4");
        assert_eq!(items[0].archive.as_deref(), Some("douyin:7300000000000000001:video"));
        let all = With::parse(["video", "music", "cover", "desc"].into_iter()).expect("valid");
        let items = a.items(all, &template(), "1/");
        let paths: Vec<&str> = items.iter().map(|i| i.path.as_str()).collect();
        assert!(paths.iter().all(|p| p.starts_with("1/2023-11-15")), "{paths:?}");
        assert!(
            paths[1].ends_with("_music.mp3")
                && paths[2].ends_with("_cover.jpeg")
                && paths[3].ends_with("_desc.txt")
        );
        assert_eq!(items[3].body(), Some("hello world #tag"), "the whole description");
        assert!(items.iter().all(|i| !i.urls().iter().any(|u| u.contains("playwm"))));
    }

    #[test]
    fn an_image_post_gives_its_images_and_live_clips_by_position() {
        let v = json!({"aweme_id": "7300000000000000002", "aweme_type": 68, "create_time": 1700000000, "desc": "",
            "author": {"uid": 2, "nickname": "N"}, "status": {},
            "images": [{"url_list": ["https://cdn/1.webp", "https://cdn/1b.webp"]},
                       {"url_list": ["https://cdn/2.webp"], "video": {"play_addr": {"url_list": ["https://cdn/2.mp4"]}}}]});
        let a = Aweme::read(&v).expect("a work");
        let keys: Vec<String> =
            a.items(With::default(), &template(), "").iter().filter_map(|i| i.archive.clone()).collect();
        assert_eq!(
            keys,
            [
                "douyin:7300000000000000002:image1",
                "douyin:7300000000000000002:image2",
                "douyin:7300000000000000002:live2"
            ]
        );
    }

    #[test]
    fn unavailable_works_are_skipped_with_the_reason() {
        for (status, says) in [
            (json!({"is_prohibited": true}), "prohibited"),
            (json!({"is_delete": true}), "deleted"),
            (json!({"private_status": 3}), "private"),
        ] {
            let mut v = video_work();
            v["status"] = status;
            let items = Aweme::read(&v).expect("a work").items(With::default(), &template(), "");
            assert!(matches!(&items[0].work, Work::Skip(r) if r.contains(says)), "{items:?}");
        }
        assert!(Aweme::read(&json!({"aweme_id": "../x"})).is_none());
        assert!(Aweme::read(&json!({})).is_none());
        assert!(With::parse(["video", "subtitles"].into_iter()).is_err());
    }
}
