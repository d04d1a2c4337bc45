//! From a work (illust object) to items: originals of every page, ugoira
//! zip + frame delays, sidecar metadata, and the reasons a work is skipped
//! (placeholders, deleted works, filters).

use serde_json::json;

use super::client::{CallError, Client};
use super::model::{Illust, UgoiraResponse};
use super::naming::{Fields, render, url_name};
use super::settings::{AiFilter, Filter, Options};
use super::ugoira::ugoira_step;
use crate::checkpoint::{Item, Work};

/// Placeholder images Pixiv substitutes for works it will not show.
const LIMIT_MARK: &str = "/common/images/limit_";

/// Why a placeholder stands in for a work, from its image URL.
pub fn placeholder_reason(url: &str) -> Option<&'static str> {
    let i = url.find(LIMIT_MARK)?;
    let kind = &url[i + LIMIT_MARK.len()..];
    Some(if kind.starts_with("sanity_level") {
        "hidden by Pixiv's content filter (sanity level); Pixiv sent a placeholder"
    } else if kind.starts_with("mypixiv") {
        "visible to My pixiv only; Pixiv sent a placeholder"
    } else if kind.starts_with("unknown") {
        "deleted (Pixiv sent a placeholder)"
    } else {
        "not viewable; Pixiv sent a placeholder"
    })
}

/// Returns why `w` does not pass the filter, if it does not.
pub fn filtered(w: &Illust, f: &Filter) -> Option<String> {
    if !f.types.is_empty() && !f.types.iter().any(|t| t == &w.kind) {
        return Some(format!("filtered: type {}", w.kind));
    }
    match f.ai {
        AiFilter::Exclude if w.illust_ai_type == 2 => return Some("filtered: AI-generated".into()),
        AiFilter::Only if w.illust_ai_type != 2 => return Some("filtered: not AI-generated".into()),
        _ => {}
    }
    if !f.x_restrict.is_empty() && !f.x_restrict.contains(&w.x_restrict) {
        return Some(format!("filtered: x_restrict {}", w.x_restrict));
    }
    if w.total_bookmarks < f.min_bookmarks {
        return Some(format!("filtered: {} bookmarks < {}", w.total_bookmarks, f.min_bookmarks));
    }
    let date = w.create_date.get(..10).unwrap_or("");
    if f.date_from.as_deref().is_some_and(|d| date < d) || f.date_to.as_deref().is_some_and(|d| date > d) {
        return Some(format!("filtered: date {date}"));
    }
    let has = |t: &str| {
        w.tags.iter().any(|x| {
            x.name.eq_ignore_ascii_case(t)
                || x.translated_name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(t))
        })
    };
    if !f.tags_include.is_empty() && !f.tags_include.iter().any(|t| has(t)) {
        return Some("filtered: no included tag".into());
    }
    if let Some(t) = f.tags_exclude.iter().find(|t| has(t)) {
        return Some(format!("filtered: tag {t}"));
    }
    None
}

/// Returns why a novel does not pass the filter, if it does not (types
/// and bookmark/date/tag/AI rules apply as to works).
pub fn filtered_novel(n: &super::model::Novel, f: &Filter) -> Option<String> {
    let as_work = Illust {
        id: n.id,
        kind: "novel".into(),
        tags: n.tags.clone(),
        create_date: n.create_date.clone(),
        total_bookmarks: n.total_bookmarks,
        x_restrict: n.x_restrict,
        illust_ai_type: n.novel_ai_type,
        ..Illust::default()
    };
    // A `types` filter is about artworks; novels ignore it.
    let f = Filter { types: Vec::new(), ..f.clone() };
    filtered(&as_work, &f)
}

/// A skipped work, as one item that records the reason.
pub fn skip_item(id: u64, reason: &str) -> Item {
    Item::with(format!("{id}_skip"), format!("{id}.skipped"), Work::Skip(reason.to_string()))
}

/// The original URLs of a work's pages (one-page works use
/// `meta_single_page`, others `meta_pages`; `type` does not tell; docs/pixiv.md).
pub fn page_urls(w: &Illust) -> Vec<String> {
    if w.meta_pages.is_empty() {
        w.meta_single_page.original_image_url.clone().into_iter().collect()
    } else {
        w.meta_pages.iter().filter_map(|p| p.image_urls.original.clone()).collect()
    }
}

/// Rewrites the image origin to the configured mirror.
fn rehost(url: &str, host: Option<&str>) -> String {
    match (host, url.strip_prefix("https://i.pximg.net")) {
        (Some(h), Some(rest)) => format!("{h}{rest}"),
        _ => url.to_string(),
    }
}

/// Naming fields of a work's file.
fn fields(w: &Illust, page: u32, url: &str) -> Fields {
    let (original, ext) = url_name(url);
    Fields {
        id: w.id,
        page,
        title: w.title.clone(),
        user_id: w.user.id,
        user_name: w.user.name.clone(),
        user_account: w.user.account.clone(),
        date: w.create_date.get(..10).unwrap_or("").to_string(),
        ext,
        kind: w.kind.clone(),
        original,
    }
}

/// The relative path of a file.
fn path_for(o: &Options, f: &Fields) -> String {
    let name = match &o.template {
        Some(t) => render(t, f),
        None => render("{original}.{ext}", f),
    };
    if o.by_user { format!("{}/{name}", f.user_id) } else { name }
}

/// A sibling path with another extension (`a/b.zip` → `a/b.gif`).
fn with_ext(path: &str, ext: &str) -> String {
    match path.rsplit_once('.') {
        Some((stem, _)) if !stem.ends_with('/') => format!("{stem}.{ext}"),
        _ => format!("{path}.{ext}"),
    }
}

/// The items of one work. Makes the ugoira metadata call when needed.
pub fn work_items(w: &Illust, o: &Options, client: &Client) -> Result<Vec<Item>, CallError> {
    if w.user.id == 0 {
        return Ok(vec![skip_item(w.id, "deleted (the work has no user)")]);
    }
    let pages = page_urls(w);
    let first = pages.first().cloned().or_else(|| w.image_urls.large.clone()).unwrap_or_default();
    if let Some(reason) = placeholder_reason(&first) {
        return Ok(vec![skip_item(w.id, reason)]);
    }
    if let Some(reason) = filtered(w, &o.filter) {
        return Ok(vec![skip_item(w.id, &reason)]);
    }
    let host = client.settings.image_host.as_deref();
    let mut items = Vec::new();
    if w.kind == "ugoira" {
        let meta: UgoiraResponse =
            client.get("/v1/ugoira/metadata", &[("illust_id".into(), w.id.to_string())])?;
        let medium = meta.ugoira_metadata.zip_urls.medium.unwrap_or_default();
        if medium.is_empty() {
            return Ok(vec![skip_item(w.id, "ugoira without a zip URL")]);
        }
        // Always the full-size zip: `1920x1080` in place of `600x600` (docs/pixiv.md).
        let zip = medium.replace("_ugoira600x600", "_ugoira1920x1080");
        let f = fields(w, 0, &zip);
        let path = path_for(o, &f);
        let frames: Vec<(String, u32)> =
            meta.ugoira_metadata.frames.iter().map(|fr| (fr.file.clone(), fr.delay)).collect();
        let post = (o.ugoira_format != "zip")
            .then(|| ugoira_step(&frames, &o.ugoira_format, with_ext(&path, &o.ugoira_format)));
        let frames_json = json!({ "id": w.id, "frames": meta.ugoira_metadata.frames });
        items.push(
            Item::fetch(format!("{}_ugoira", w.id), rehost(&zip, host), path.clone())
                .archived(o.archive.then(|| format!("pixiv:{}_ugoira", w.id)))
                .then(post),
        );
        items.push(Item::inline(
            format!("{}_frames", w.id),
            with_ext(&path, "json"),
            frames_json.to_string(),
        ));
    } else {
        for (n, url) in pages.iter().enumerate() {
            let page = u32::try_from(n).unwrap_or(u32::MAX);
            let f = fields(w, page, url);
            items.push(
                Item::fetch(format!("{}_p{n}", w.id), rehost(url, host), path_for(o, &f))
                    .archived(o.archive.then(|| format!("pixiv:{}_p{n}", w.id))),
            );
        }
    }
    if o.sidecar {
        let f = fields(w, 0, &first);
        let mut meta_path =
            path_for(o, &Fields { original: w.id.to_string(), ext: "json".into(), page: 0, ..f });
        if o.template.is_some() {
            meta_path = with_ext(&meta_path, "json");
        }
        items.push(Item::inline(format!("{}_json", w.id), meta_path, sidecar(w, &items)));
    }
    Ok(items)
}

/// The JSON sidecar of a work.
pub fn sidecar(w: &Illust, items: &[Item]) -> String {
    let files: Vec<&str> = items.iter().filter(|i| i.url().is_some()).map(|i| i.path.as_str()).collect();
    let frames = items
        .iter()
        .find(|i| i.key.ends_with("_frames"))
        .and_then(Item::body)
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
    let v = json!({
        "id": w.id,
        "title": w.title,
        "type": w.kind,
        "caption": w.caption,
        "tags": w.tags,
        "tools": w.tools,
        "user": w.user,
        "create_date": w.create_date,
        "page_count": w.page_count,
        "width": w.width,
        "height": w.height,
        "x_restrict": w.x_restrict,
        "sanity_level": w.sanity_level,
        "illust_ai_type": w.illust_ai_type,
        "total_bookmarks": w.total_bookmarks,
        "total_view": w.total_view,
        "series": w.series,
        "files": files,
        "ugoira": frames.map(|f| f["frames"].clone()),
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::pixiv::model::{MetaSinglePage, Tag, User};

    fn work() -> Illust {
        Illust {
            id: 5,
            kind: "illust".into(),
            user: User { id: 9, name: "n".into(), account: "a".into() },
            tags: vec![Tag { name: "猫".into(), translated_name: Some("cat".into()) }],
            create_date: "2024-05-06T10:00:00+09:00".into(),
            total_bookmarks: 50,
            illust_ai_type: 1,
            meta_single_page: MetaSinglePage {
                original_image_url: Some(
                    "https://i.pximg.net/img-original/img/2024/05/06/10/00/00/5_p0.png".into(),
                ),
            },
            ..Illust::default()
        }
    }

    #[test]
    fn placeholders_are_recognised() {
        assert!(
            placeholder_reason("https://s.pximg.net/common/images/limit_sanity_level_360.png")
                .is_some_and(|r| r.contains("sanity"))
        );
        assert!(
            placeholder_reason("http://127.0.0.1:9/common/images/limit_unknown_360.png")
                .is_some_and(|r| r.contains("deleted"))
        );
        assert_eq!(placeholder_reason("https://i.pximg.net/img-original/img/x_p0.jpg"), None);
    }

    #[test]
    fn filters() {
        let w = work();
        let mut f = Filter::default();
        assert_eq!(filtered(&w, &f), None);
        f.types = vec!["manga".into()];
        assert!(filtered(&w, &f).is_some());
        f = Filter { min_bookmarks: 51, ..Filter::default() };
        assert!(filtered(&w, &f).is_some());
        f = Filter { tags_include: vec!["CAT".into()], ..Filter::default() };
        assert_eq!(filtered(&w, &f), None, "translated names count");
        f = Filter { tags_exclude: vec!["猫".into()], ..Filter::default() };
        assert!(filtered(&w, &f).is_some());
        f = Filter { date_from: Some("2024-05-07".into()), ..Filter::default() };
        assert!(filtered(&w, &f).is_some());
        f = Filter { ai: AiFilter::Only, ..Filter::default() };
        assert!(filtered(&w, &f).is_some());
    }

    #[test]
    fn paths() {
        let o = Options { ugoira_format: "zip".into(), ..Options::default() };
        let w = work();
        let url = page_urls(&w)[0].clone();
        assert_eq!(path_for(&o, &fields(&w, 0, &url)), "5_p0.png");
        let o = Options { by_user: true, template: Some("{id} {title}.{ext}".into()), ..o };
        assert_eq!(path_for(&o, &fields(&w, 0, &url)), "9/5 .png");
        assert_eq!(with_ext("9/5_ugoira1920x1080.zip", "gif"), "9/5_ugoira1920x1080.gif");
        assert_eq!(
            rehost("https://i.pximg.net/img-original/x.jpg", Some("https://i.pixiv.re")),
            "https://i.pixiv.re/img-original/x.jpg"
        );
    }
}
