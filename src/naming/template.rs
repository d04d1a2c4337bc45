//! Naming templates: `{user_id}/{id}_p{page} {title}.{ext}` turned into a
//! safe relative path, for any provider.
//!
//! Owns the rules every provider's templates share, so that each provider
//! only declares its fields. A template is checked once, when the job is
//! planned: known fields only, balanced braces, a relative path without
//! `.` or `..`, and at least one identifying field (else two files would
//! share a name). Rendering keeps the invariant of [`crate::naming`]:
//! every component is sanitized and at most [`MAX_COMPONENT_BYTES`] long;
//! a component that is too long is shortened by cutting the free-text
//! fields (titles, names, descriptions) on a character boundary, longest
//! first, so the identifying fields always survive. A `/` inside a value
//! never makes a folder.

use std::fmt;

use crate::naming::{MAX_COMPONENT_BYTES, sanitize_component};

/// What a field holds, which decides how rendering treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Identifies the file (a work id, an original file name): a template
    /// needs one, and it is never cut.
    Id,
    /// Short machine text (a number, a date, an extension): never cut.
    Plain,
    /// Free text from a server (a title, a user name): cut to fit.
    FreeText,
}

/// One field a provider's templates may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Its name inside braces.
    pub name: &'static str,
    /// How it is treated.
    pub kind: FieldKind,
}

/// Why a template was refused; the message names the job key `template`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// An absolute path, or a `.` or `..` component.
    NotRelative,
    /// A `{` without its `}`.
    Unclosed,
    /// A `}` without its `{`.
    Unbalanced,
    /// A field the provider does not have.
    UnknownField {
        /// The name used.
        name: String,
        /// The names the provider knows.
        known: String,
    },
    /// No identifying field.
    NoId {
        /// The identifying fields, as `{a} or {b}`.
        ids: String,
    },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::NotRelative => {
                write!(f, "key `template` must be a relative path without `.` or `..`")
            }
            TemplateError::Unclosed => write!(f, "key `template` has an unclosed `{{`"),
            TemplateError::Unbalanced => write!(f, "key `template` has unbalanced braces"),
            TemplateError::UnknownField { name, known } => {
                write!(f, "key `template`: unknown field {{{name}}} (known: {known})")
            }
            TemplateError::NoId { ids } => {
                write!(f, "key `template` must contain {ids} so that every file gets its own name")
            }
        }
    }
}

impl std::error::Error for TemplateError {}

/// A piece of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Text as written.
    Literal(String),
    /// A field, by its index in the provider's list.
    Field(usize),
}

/// A checked template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The provider's fields.
    fields: &'static [Field],
    /// Path components, each a list of pieces.
    components: Vec<Vec<Piece>>,
}

impl Template {
    /// Checks `text` against the provider's `fields`.
    pub fn parse(fields: &'static [Field], text: &str) -> Result<Template, TemplateError> {
        if text.starts_with('/') || text.split('/').any(|c| c == ".." || c == ".") {
            return Err(TemplateError::NotRelative);
        }
        let mut components = Vec::new();
        let mut has_id = false;
        for component in text.split('/').filter(|c| !c.is_empty()) {
            let mut pieces = Vec::new();
            let mut rest = component;
            while let Some(open) = rest.find('{') {
                if rest[..open].contains('}') {
                    return Err(TemplateError::Unbalanced);
                }
                if open > 0 {
                    pieces.push(Piece::Literal(rest[..open].to_string()));
                }
                let after = &rest[open + 1..];
                let close = after.find('}').ok_or(TemplateError::Unclosed)?;
                let name = &after[..close];
                let Some(index) = fields.iter().position(|f| f.name == name) else {
                    return Err(TemplateError::UnknownField {
                        name: name.to_string(),
                        known: fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", "),
                    });
                };
                has_id |= fields[index].kind == FieldKind::Id;
                pieces.push(Piece::Field(index));
                rest = &after[close + 1..];
            }
            if rest.contains('}') {
                return Err(TemplateError::Unbalanced);
            }
            if !rest.is_empty() {
                pieces.push(Piece::Literal(rest.to_string()));
            }
            components.push(pieces);
        }
        if !has_id {
            let ids: Vec<String> = fields
                .iter()
                .filter(|f| f.kind == FieldKind::Id)
                .map(|f| format!("{{{}}}", f.name))
                .collect();
            return Err(TemplateError::NoId { ids: ids.join(" or ") });
        }
        Ok(Template { fields, components })
    }

    /// Renders the template with the values `value` gives by field name
    /// into a safe relative path, `/`-separated.
    pub fn render(&self, value: impl Fn(&str) -> String) -> String {
        let values: Vec<String> = self.fields.iter().map(|f| value(f.name).replace('/', "_")).collect();
        let fallback = self
            .fields
            .iter()
            .zip(&values)
            .find(|(f, v)| f.kind == FieldKind::Id && !v.is_empty())
            .map_or_else(|| "file".to_string(), |(_, v)| v.clone());
        let parts: Vec<String> =
            self.components.iter().map(|pieces| self.render_component(pieces, &values, &fallback)).collect();
        parts.join("/")
    }

    /// One component, its free text cut until it fits.
    fn render_component(&self, pieces: &[Piece], values: &[String], fallback: &str) -> String {
        let longest_free = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Field(i) if self.fields[*i].kind == FieldKind::FreeText => Some(values[*i].len()),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let mut limit = usize::MAX;
        loop {
            let s = self.fill(pieces, values, limit);
            if s.len() <= MAX_COMPONENT_BYTES || limit == 0 || longest_free == 0 {
                return sanitize_component(&s, fallback);
            }
            let over = s.len() - MAX_COMPONENT_BYTES;
            limit = longest_free.min(limit).saturating_sub(over.max(8));
        }
    }

    /// Substitutes the values, free text cut to `limit` bytes.
    fn fill(&self, pieces: &[Piece], values: &[String], limit: usize) -> String {
        let mut out = String::new();
        for p in pieces {
            match p {
                Piece::Literal(s) => out.push_str(s),
                Piece::Field(i) if self.fields[*i].kind == FieldKind::FreeText => {
                    out.push_str(cut(&values[*i], limit));
                }
                Piece::Field(i) => out.push_str(&values[*i]),
            }
        }
        out
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    static FIELDS: &[Field] = &[
        Field { name: "id", kind: FieldKind::Id },
        Field { name: "n", kind: FieldKind::Plain },
        Field { name: "title", kind: FieldKind::FreeText },
        Field { name: "author", kind: FieldKind::FreeText },
        Field { name: "ext", kind: FieldKind::Plain },
    ];

    fn values(title: &str) -> impl Fn(&str) -> String + '_ {
        move |name| match name {
            "id" => "7342".into(),
            "n" => "3".into(),
            "title" => title.into(),
            "author" => "作者/名".into(),
            "ext" => "mp4".into(),
            _ => String::new(),
        }
    }

    #[test]
    fn renders_fields_into_safe_components() {
        let t = Template::parse(FIELDS, "{author}/{id}_{n} {title}.{ext}").expect("valid");
        assert_eq!(t.render(values("a: b?")), "作者_名/7342_3 a_ b_.mp4");
    }

    #[test]
    fn free_text_is_cut_on_a_character_boundary_and_the_id_survives() {
        let t = Template::parse(FIELDS, "{title} {author} {id}.{ext}").expect("valid");
        let out = t.render(values(&"長".repeat(300)));
        assert!(out.len() <= MAX_COMPONENT_BYTES, "{}", out.len());
        assert!(out.ends_with(" 7342.mp4"), "{out}");
        assert!(out.starts_with("長長"), "{out}");
    }

    #[test]
    fn bad_templates_are_refused_with_a_reason() {
        let e = |t: &str| Template::parse(FIELDS, t).expect_err(t).to_string();
        assert!(e("{title}.{ext}").contains("must contain {id}"));
        assert_eq!(e("../{id}"), "key `template` must be a relative path without `.` or `..`");
        assert!(e("/abs/{id}").contains("relative path"));
        assert!(e("{id}{nope}").contains("unknown field {nope} (known: id, n, title, author, ext)"));
        assert!(e("{id").contains("unclosed"));
        assert!(e("{id}}").contains("unbalanced"));
        assert!(e("}{id}").contains("unbalanced"));
    }

    #[test]
    fn an_empty_component_value_falls_back_to_the_id() {
        let t = Template::parse(FIELDS, "{title}/{id}.{ext}").expect("valid");
        assert_eq!(t.render(values("")), "7342/7342.mp4");
    }
}
