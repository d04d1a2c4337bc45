//! Pixiv page URLs as people copy them, read as the ids job keys ask for.
//!
//! `user_id` takes a user page (`https://www.pixiv.net/users/11`, with or
//! without `/en/`, `member.php?id=11`), `illust_id`/`illust_ids` an artwork
//! (`/artworks/N`, `/i/N`, `member_illust.php?illust_id=N`), `series_id` a
//! series (`/user/U/series/N`) and `novel_id`/`novel_ids` a novel
//! (`/novel/show.php?id=N`). A URL of another kind is refused with what it
//! is; every other value is left for the declared check.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::job::RejectReason;

/// What a Pixiv page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    /// A user's profile or works.
    User,
    /// One work (illustration, manga, ugoira).
    Artwork,
    /// An illust/manga series.
    Series,
    /// One novel.
    Novel,
}

impl Page {
    /// The words of a message.
    fn what(self) -> &'static str {
        match self {
            Page::User => "a user page",
            Page::Artwork => "an artwork page",
            Page::Series => "a series page",
            Page::Novel => "a novel page",
        }
    }
}

/// The page an id key takes.
fn page_of_key(key: &str) -> Option<Page> {
    match key {
        "user_id" => Some(Page::User),
        "illust_id" | "illust_ids" => Some(Page::Artwork),
        "series_id" => Some(Page::Series),
        "novel_id" | "novel_ids" => Some(Page::Novel),
        _ => None,
    }
}

/// The job's parameters with Pixiv URLs in id keys replaced by their ids;
/// borrowed unchanged when there is none.
pub(super) fn ids_from_urls(
    params: &Map<String, Value>,
) -> Result<Cow<'_, Map<String, Value>>, RejectReason> {
    let mut out: Option<Map<String, Value>> = None;
    for (key, v) in params {
        let Some(want) = page_of_key(key) else { continue };
        let fixed = match v {
            Value::String(s) => id_of(key, want, s)?.map(Value::from),
            Value::Array(items) if items.iter().any(|x| x.as_str().is_some_and(is_pixiv_url)) => {
                let mut list = Vec::with_capacity(items.len());
                for x in items {
                    match x.as_str().map(|s| id_of(key, want, s)).transpose()?.flatten() {
                        Some(id) => list.push(Value::from(id)),
                        None => list.push(x.clone()),
                    }
                }
                Some(Value::Array(list))
            }
            _ => None,
        };
        if let Some(f) = fixed {
            out.get_or_insert_with(|| params.clone()).insert(key.clone(), f);
        }
    }
    Ok(out.map_or(Cow::Borrowed(params), Cow::Owned))
}

/// The id in `s` when it is a Pixiv URL of the page `want`; `None` when it
/// is not a Pixiv URL at all.
fn id_of(key: &str, want: Page, s: &str) -> Result<Option<u64>, RejectReason> {
    if !is_pixiv_url(s) {
        return Ok(None);
    }
    let shown = crate::http::display_url(s.trim());
    match parse(s.trim()) {
        Some((page, id)) if page == want => Ok(Some(id)),
        Some((page, _)) => {
            Err(RejectReason(format!("key `{key}`: {shown} is {}, not {}", page.what(), want.what())))
        }
        None => Err(RejectReason(format!("key `{key}`: cannot read {} id from {shown}", want.what()))),
    }
}

/// Whether `s` looks like a URL on pixiv.net.
fn is_pixiv_url(s: &str) -> bool {
    let s = s.trim();
    let rest = s.split_once("://").map_or(s, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("").to_ascii_lowercase();
    host == "pixiv.net" || host.ends_with(".pixiv.net")
}

/// The page and id of a pixiv.net URL.
fn parse(url: &str) -> Option<(Page, u64)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (path, query) = match rest.find('/') {
        Some(i) => {
            let p = &rest[i..];
            let p = p.split('#').next().unwrap_or(p);
            p.split_once('?').map_or((p, ""), |(a, q)| (a, q))
        }
        None => return None,
    };
    let mut segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // A language prefix: /en/artworks/1.
    if segs.first().is_some_and(|s| s.len() == 2 && s.chars().all(|c| c.is_ascii_lowercase())) {
        segs.remove(0);
    }
    let num = |s: &str| s.parse::<u64>().ok().filter(|n| *n > 0);
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).and_then(|(_, v)| num(v)))
    };
    match segs.as_slice() {
        ["artworks", id, ..] | ["i", id] => num(id).map(|n| (Page::Artwork, n)),
        ["user", _, "series", id, ..] => num(id).map(|n| (Page::Series, n)),
        ["users", id, ..] => num(id).map(|n| (Page::User, n)),
        ["member.php"] => param("id").map(|n| (Page::User, n)),
        ["member_illust.php"] => match param("illust_id") {
            Some(n) => Some((Page::Artwork, n)),
            None => param("id").map(|n| (Page::User, n)),
        },
        ["novel", "show.php"] => param("id").map(|n| (Page::Novel, n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixed(v: Value) -> Result<Value, String> {
        let Value::Object(m) = v else { panic!("object") };
        ids_from_urls(&m).map(|c| Value::Object(c.into_owned())).map_err(|e| e.0)
    }

    #[test]
    fn page_urls_become_ids() {
        let cases = [
            ("user_id", "https://www.pixiv.net/users/11", 11),
            ("user_id", "https://www.pixiv.net/en/users/11/artworks", 11),
            ("user_id", "https://www.pixiv.net/member.php?id=12", 12),
            ("illust_id", "https://www.pixiv.net/artworks/126839540", 126_839_540),
            ("illust_id", "https://www.pixiv.net/en/artworks/5#big_0", 5),
            ("illust_id", "https://pixiv.net/i/7", 7),
            ("illust_id", "https://www.pixiv.net/member_illust.php?mode=medium&illust_id=8", 8),
            ("series_id", "https://www.pixiv.net/user/11/series/9082", 9082),
            ("novel_id", "https://www.pixiv.net/novel/show.php?id=20", 20),
            ("novel_id", "www.pixiv.net/novel/show.php?id=21", 21),
        ];
        for (key, url, id) in cases {
            assert_eq!(fixed(json!({ key: url })), Ok(json!({ key: id })), "{url}");
        }
        assert_eq!(
            fixed(json!({"illust_ids": ["https://www.pixiv.net/artworks/1", "2", 3]})),
            Ok(json!({"illust_ids": [1, "2", 3]}))
        );
        // Not URLs: left alone for the declared check.
        assert_eq!(fixed(json!({"user_id": "11", "word": "x"})), Ok(json!({"user_id": "11", "word": "x"})));
        assert_eq!(
            fixed(json!({"user_id": "https://example.org/users/1"})),
            Ok(json!({"user_id": "https://example.org/users/1"}))
        );
    }

    #[test]
    fn the_wrong_kind_of_page_is_named() {
        let e = fixed(json!({"illust_id": "https://www.pixiv.net/users/11"})).expect_err("user page");
        assert_eq!(e, "key `illust_id`: https://www.pixiv.net/users/11 is a user page, not an artwork page");
        let e = fixed(json!({"user_id": "https://www.pixiv.net/tags/cat"})).expect_err("tag page");
        assert!(e.starts_with("key `user_id`: cannot read a user page id from"), "{e}");
    }
}
