//! File names of Pixiv works.
//!
//! The default is PixivOC's rule: the original file name from the image
//! URL (`126839540_p0.jpg`) directly in the job's folder. A template such
//! as `{user_id}/{id}_p{page} {title}.{ext}` builds a relative path; every
//! component is sanitized, and a component too long for the filesystem is
//! shortened by cutting the free-text fields (title, names) first, so the
//! id always survives.

use crate::naming::{MAX_COMPONENT_BYTES, sanitize_component};

/// Fields a template may use.
pub const FIELDS: &[&str] = &[
    "id",
    "page",
    "num",
    "title",
    "user_id",
    "user_name",
    "user_account",
    "date",
    "ext",
    "type",
    "original",
];

/// Fields whose text may be cut to make a name fit.
const FREE_TEXT: &[&str] = &["title", "user_name", "user_account"];

/// Values for one file.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// Work id.
    pub id: u64,
    /// Page, from 0.
    pub page: u32,
    /// Title.
    pub title: String,
    /// Artist id.
    pub user_id: u64,
    /// Artist display name.
    pub user_name: String,
    /// Artist account.
    pub user_account: String,
    /// Creation date, `YYYY-MM-DD`.
    pub date: String,
    /// Extension without the dot.
    pub ext: String,
    /// `illust`, `manga`, `ugoira`, `novel`.
    pub kind: String,
    /// The original file name without extension.
    pub original: String,
}

/// Checks a template: known fields only, braces balanced, no absolute
/// path or `..`, and `{id}` or `{original}` present (else two works would
/// share a name).
pub fn check_template(t: &str) -> Result<(), String> {
    if t.starts_with('/') || t.split('/').any(|c| c == ".." || c == ".") {
        return Err("key `template` must be a relative path without `.` or `..`".into());
    }
    let mut rest = t;
    let mut has_id = false;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("key `template` has an unclosed `{`")?;
        let name = &after[..close];
        if !FIELDS.contains(&name) {
            return Err(format!("key `template`: unknown field {{{name}}} (known: {})", FIELDS.join(", ")));
        }
        has_id |= name == "id" || name == "original";
        rest = &after[close + 1..];
    }
    if rest.contains('}') || t.matches('}').count() != t.matches('{').count() {
        return Err("key `template` has unbalanced braces".into());
    }
    if !has_id {
        return Err(
            "key `template` must contain {id} or {original} so that every file gets its own name".into()
        );
    }
    Ok(())
}

/// Renders a checked template into a safe relative path.
pub fn render(template: &str, f: &Fields) -> String {
    let components: Vec<String> = template
        .split('/')
        .filter(|c| !c.is_empty())
        .map(|c| {
            let mut limit = usize::MAX;
            loop {
                let s = fill(c, f, limit);
                if s.len() <= MAX_COMPONENT_BYTES || limit == 0 {
                    return sanitize_component(&s, &f.id.to_string());
                }
                let over = s.len() - MAX_COMPONENT_BYTES;
                let longest =
                    [&f.title, &f.user_name, &f.user_account].iter().map(|s| s.len()).max().unwrap_or(0);
                limit = longest.min(limit).saturating_sub(over.max(8));
            }
        })
        .collect();
    components.join("/")
}

/// Substitutes fields, cutting free text to `limit` bytes.
fn fill(component: &str, f: &Fields, limit: usize) -> String {
    let mut out = String::new();
    let mut rest = component;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        let value = match name {
            "id" => f.id.to_string(),
            "page" => f.page.to_string(),
            "num" => (f.page + 1).to_string(),
            "title" => f.title.clone(),
            "user_id" => f.user_id.to_string(),
            "user_name" => f.user_name.clone(),
            "user_account" => f.user_account.clone(),
            "date" => f.date.clone(),
            "ext" => f.ext.clone(),
            "type" => f.kind.clone(),
            "original" => f.original.clone(),
            other => format!("{{{other}}}"),
        };
        let value = if FREE_TEXT.contains(&name) { cut(&value, limit) } else { value };
        // A slash inside a value must not create a folder.
        out.push_str(&value.replace('/', "_"));
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Cuts text to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The file name at the end of a URL (`…/126839540_p0.png` → stem
/// `126839540_p0`, extension `png`).
pub fn url_name(url: &str) -> (String, String) {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or("");
    match name.rsplit_once('.') {
        Some((stem, ext)) => (stem.to_string(), ext.to_ascii_lowercase()),
        None => (name.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields {
        Fields {
            id: 126839540,
            page: 2,
            title: "アイドル/プリキュア".into(),
            user_id: 27517,
            user_name: "藤ちょこ".into(),
            user_account: "fuzichoco".into(),
            date: "2025-02-03".into(),
            ext: "jpg".into(),
            kind: "illust".into(),
            original: "126839540_p2".into(),
        }
    }

    #[test]
    fn templates_render_safely() {
        assert_eq!(
            render("{user_id}/{id}_p{page} {title}.{ext}", &fields()),
            "27517/126839540_p2 アイドル_プリキュア.jpg"
        );
        assert_eq!(render("{original}.{ext}", &fields()), "126839540_p2.jpg");
        let mut long = fields();
        long.title = "長".repeat(200);
        let out = render("{title} {id}.{ext}", &long);
        assert!(out.len() <= MAX_COMPONENT_BYTES, "{}", out.len());
        assert!(out.ends_with(" 126839540.jpg"), "{out}");
    }

    #[test]
    fn templates_are_checked() {
        assert!(check_template("{id}_p{page}.{ext}").is_ok());
        assert!(check_template("{title}.{ext}").is_err(), "no id");
        assert!(check_template("../{id}").is_err());
        assert!(check_template("/abs/{id}").is_err());
        assert!(check_template("{id}{nope}").is_err());
        assert!(check_template("{id").is_err());
    }

    #[test]
    fn url_names() {
        assert_eq!(
            url_name("https://i.pximg.net/img-original/img/2025/02/03/00/03/17/126839540_p0.PNG"),
            ("126839540_p0".into(), "png".into())
        );
    }
}
