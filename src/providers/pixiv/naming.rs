//! File names of Pixiv works.
//!
//! The default is PixivOC's rule: the original file name from the image
//! URL (`126839540_p0.jpg`) directly in the job's folder. A template such
//! as `{user_id}/{id}_p{page} {title}.{ext}` builds a relative path; every
//! component is sanitized, and a component too long for the filesystem is
//! shortened by cutting the free-text fields (title, names) first, so the
//! id always survives. The template rules are the kernel's
//! ([`crate::naming::Template`]); this module declares Pixiv's fields.

use crate::naming::{Field, FieldKind, Template};

/// Fields a template may use.
pub static FIELDS: &[Field] = &[
    Field { name: "id", kind: FieldKind::Id },
    Field { name: "page", kind: FieldKind::Plain },
    Field { name: "num", kind: FieldKind::Plain },
    Field { name: "title", kind: FieldKind::FreeText },
    Field { name: "user_id", kind: FieldKind::Plain },
    Field { name: "user_name", kind: FieldKind::FreeText },
    Field { name: "user_account", kind: FieldKind::FreeText },
    Field { name: "date", kind: FieldKind::Plain },
    Field { name: "ext", kind: FieldKind::Plain },
    Field { name: "type", kind: FieldKind::Plain },
    Field { name: "original", kind: FieldKind::Id },
];

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

impl Fields {
    /// The value of the template field `name`.
    fn value(&self, name: &str) -> String {
        match name {
            "id" => self.id.to_string(),
            "page" => self.page.to_string(),
            "num" => (u64::from(self.page) + 1).to_string(),
            "title" => self.title.clone(),
            "user_id" => self.user_id.to_string(),
            "user_name" => self.user_name.clone(),
            "user_account" => self.user_account.clone(),
            "date" => self.date.clone(),
            "ext" => self.ext.clone(),
            "type" => self.kind.clone(),
            "original" => self.original.clone(),
            _ => String::new(),
        }
    }
}

/// Checks a template (see [`Template::parse`]): `{id}` or `{original}`
/// must be in it, else two works would share a name.
pub fn check_template(t: &str) -> Result<(), String> {
    Template::parse(FIELDS, t).map(|_| ()).map_err(|e| e.to_string())
}

/// Renders a checked template into a safe relative path.
pub fn render(template: &str, f: &Fields) -> String {
    match Template::parse(FIELDS, template) {
        Ok(t) => t.render(|name| f.value(name)),
        // Checked when the job was planned; the default name is the
        // original file name.
        Err(_) => match Template::parse(FIELDS, "{original}.{ext}") {
            Ok(t) => t.render(|name| f.value(name)),
            Err(_) => f.id.to_string(),
        },
    }
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
    use crate::naming::MAX_COMPONENT_BYTES;

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
