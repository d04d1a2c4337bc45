//! Novels: the text comes only from the webview page (`/webview/v2/novel`,
//! docs/pixiv.md), saved as `.txt`, with the metadata as JSON and the
//! embedded images (`[uploadedimage:…]`, `[pixivimage:…]`) as files.

use serde_json::{Value, json};

use super::client::{CallError, Client};
use super::model::{IllustDetail, Novel};
use super::naming::{Fields, render, url_name};
use super::settings::Options;
use super::works::{filtered_novel, page_urls};
use crate::checkpoint::Item;

/// Pulls the `novel: {…}` object out of the webview HTML. The JSON sits on
/// one line followed by `,\n` and `isOwnWork` (pixivpy and gallery-dl rely
/// on the same shape).
pub fn extract_webview_json(html: &str) -> Option<Value> {
    let start = html.find("novel: ")? + "novel: ".len();
    let rest = &html[start..];
    let end = rest.find(",\n")?;
    serde_json::from_str(&rest[..end]).ok()
}

/// `[uploadedimage:ID]` and `[pixivimage:ID-PAGE]` markers, in order.
pub fn embeds(text: &str) -> (Vec<String>, Vec<(u64, u32)>) {
    let mut uploaded = Vec::new();
    let mut pixiv = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('[') {
        rest = &rest[i + 1..];
        let Some(end) = rest.find(']') else { break };
        let inner = &rest[..end];
        if let Some(id) = inner.strip_prefix("uploadedimage:") {
            if !uploaded.iter().any(|u| u == id) {
                uploaded.push(id.to_string());
            }
        } else if let Some(r) = inner.strip_prefix("pixivimage:") {
            let (id, page) = r.split_once('-').unwrap_or((r, "1"));
            if let (Ok(id), Ok(page)) = (id.parse::<u64>(), page.parse::<u32>()) {
                // Markers count pages from 1.
                let page = page.saturating_sub(1);
                if !pixiv.contains(&(id, page)) {
                    pixiv.push((id, page));
                }
            }
        }
    }
    (uploaded, pixiv)
}

/// Naming fields of a novel file.
fn fields(n: &Novel, ext: &str, original: String) -> Fields {
    Fields {
        id: n.id,
        page: 0,
        title: n.title.clone(),
        user_id: n.user.id,
        user_name: n.user.name.clone(),
        user_account: n.user.account.clone(),
        date: n.create_date.get(..10).unwrap_or("").to_string(),
        ext: ext.into(),
        kind: "novel".into(),
        original,
    }
}

/// A relative path for a novel file.
fn path(o: &Options, f: &Fields) -> String {
    let name = match &o.template {
        Some(t) => render(t, f),
        None => render("{original}.{ext}", f),
    };
    if o.by_user { format!("{}/{name}", f.user_id) } else { name }
}

/// The items of one novel: text, metadata, embedded images.
pub fn novel_items(n: &Novel, o: &Options, client: &Client) -> Result<Vec<Item>, CallError> {
    if n.user.id == 0 {
        return Ok(vec![super::works::skip_item(n.id, "deleted (the novel has no user)")]);
    }
    if let Some(reason) = filtered_novel(n, &o.filter) {
        return Ok(vec![super::works::skip_item(n.id, &reason)]);
    }
    let resp = client.get_raw(
        "/webview/v2/novel",
        &[("id".into(), n.id.to_string()), ("viewer_version".into(), "20221031_ai".into())],
    )?;
    let html = String::from_utf8_lossy(&resp.body);
    let Some(web) = extract_webview_json(&html) else {
        return Err(CallError::Api(
            "the novel page did not contain the novel (has Pixiv changed its page?)".into(),
        ));
    };
    let text = web.get("text").and_then(Value::as_str).unwrap_or("").to_string();
    let mut items = vec![
        Item::inline(format!("n{}_text", n.id), path(o, &fields(n, "txt", n.id.to_string())), text.clone())
            .archived(o.archive.then(|| format!("pixiv:novel{}", n.id))),
    ];
    let meta = json!({
        "id": n.id, "title": n.title, "caption": n.caption, "user": n.user, "tags": n.tags,
        "create_date": n.create_date, "text_length": n.text_length, "x_restrict": n.x_restrict,
        "series": n.series, "total_bookmarks": n.total_bookmarks, "novel_ai_type": n.novel_ai_type,
        "webview": { "seriesId": web.get("seriesId"), "seriesTitle": web.get("seriesTitle"), "cdate": web.get("cdate"), "rating": web.get("rating") },
    });
    items.push(Item::inline(
        format!("n{}_json", n.id),
        path(o, &fields(n, "json", n.id.to_string())),
        serde_json::to_string_pretty(&meta).unwrap_or_default(),
    ));
    let (uploaded, pixiv) = embeds(&text);
    // `images` is `[]` when empty and an object map otherwise.
    let images = web.get("images").and_then(Value::as_object);
    for id in uploaded {
        let url = images
            .and_then(|m| m.get(&id))
            .and_then(|i| i.pointer("/urls/original"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let Some(url) = url else { continue };
        let (_, ext) = url_name(&url);
        items.push(
            Item::fetch(
                format!("n{}_img{id}", n.id),
                url,
                path(o, &fields(n, &ext, format!("{}_img{id}", n.id))),
            )
            .archived(o.archive.then(|| format!("pixiv:novel{}_img{id}", n.id))),
        );
    }
    for (illust, page) in pixiv {
        let d: IllustDetail =
            match client.get("/v1/illust/detail", &[("illust_id".into(), illust.to_string())]) {
                Ok(d) => d,
                Err(CallError::Walk(e)) => return Err(CallError::Walk(e)),
                Err(e) => {
                    log::warn!("pixiv: novel {}: embedded work {illust} is not available: {e:?}", n.id);
                    continue;
                }
            };
        let Some(url) = page_urls(&d.illust).get(page as usize).cloned() else { continue };
        let (_, ext) = url_name(&url);
        items.push(Item::fetch(
            format!("n{}_pixiv{illust}_{page}", n.id),
            url,
            path(o, &fields(n, &ext, format!("{}_pixiv{illust}_p{page}", n.id))),
        ));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webview_extraction_and_embeds() {
        let html = "<script>\n        novel: {\"id\":\"1\",\"text\":\"a[uploadedimage:77]b[pixivimage:123-2][newpage]\",\"images\":{\"77\":{\"urls\":{\"original\":\"http://h/x.png\"}}}},\n        isOwnWork: false,\n</script>";
        let v = extract_webview_json(html).expect("json");
        assert_eq!(v["id"], "1");
        let (u, p) = embeds(v["text"].as_str().unwrap_or(""));
        assert_eq!(u, vec!["77"]);
        assert_eq!(p, vec![(123, 1)]);
        assert!(extract_webview_json("<html>nothing</html>").is_none());
    }
}
