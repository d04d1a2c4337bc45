//! File names of Douyin works: F2's template fields on the kernel's
//! template engine.
//!
//! The fields are F2's (`{create}`, `{desc}`, `{aweme_id}`, `{nickname}`,
//! `{uid}`); `{create}` is the work's time in China Standard Time (UTC+8,
//! as Douyin shows it and F2 formats it) as `YYYY-MM-DD HH-MM-SS`. The
//! default is F2's `{create}_{desc}` with the id appended: the kernel
//! refuses a template without an identifying field, since two works posted
//! in the same second with the same text would otherwise share a name. The
//! description is kept whole (only what a file name cannot hold is
//! replaced, and a long one is cut on a character boundary), not reduced
//! to F2's letters-digits-and-`#` form. Each file adds its asset's suffix
//! (`_video.mp4`, `_image_1.webp`, …) to the rendered name.

use crate::naming::{Field, FieldKind, Template};

/// Fields a template may use.
pub static FIELDS: &[Field] = &[
    Field { name: "create", kind: FieldKind::Plain },
    Field { name: "desc", kind: FieldKind::FreeText },
    Field { name: "aweme_id", kind: FieldKind::Id },
    Field { name: "nickname", kind: FieldKind::FreeText },
    Field { name: "uid", kind: FieldKind::Plain },
];

/// The template when a job names none.
pub const DEFAULT_TEMPLATE: &str = "{create}_{desc}_{aweme_id}";

/// Values for one work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// The work's id.
    pub aweme_id: String,
    /// Its creation time, Unix seconds (or milliseconds: both are seen).
    pub create_time: i64,
    /// Its description.
    pub desc: String,
    /// The author's display name.
    pub nickname: String,
    /// The author's numeric id.
    pub uid: String,
}

impl Fields {
    /// The value of the template field `name`.
    fn value(&self, name: &str) -> String {
        match name {
            "create" => china_time(self.create_time),
            "desc" => self.desc.clone(),
            "aweme_id" => self.aweme_id.clone(),
            "nickname" => self.nickname.clone(),
            "uid" => self.uid.clone(),
            _ => String::new(),
        }
    }

    /// The rendered base name (a relative path when the template has
    /// folders), without the asset suffix.
    pub fn render(&self, t: &Template) -> String {
        t.render(|f| self.value(f))
    }
}

/// `YYYY-MM-DD HH-MM-SS` at UTC+8; a millisecond timestamp (over 10¹⁰) is
/// read as such, as F2 does.
pub fn china_time(t: i64) -> String {
    let secs = if t > 10_000_000_000 { t / 1000 } else { t } + 8 * 3600;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}-{:02}-{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(desc: &str) -> Fields {
        Fields {
            aweme_id: "7300000000000000001".into(),
            create_time: 1_700_000_000,
            desc: desc.into(),
            nickname: "Nick".into(),
            uid: "1".into(),
        }
    }

    #[test]
    fn create_is_china_time_as_f2_formats_it() {
        // F2: create_time 1700000000 → "2023-11-15 06-13-20".
        assert_eq!(china_time(1_700_000_000), "2023-11-15 06-13-20");
        assert_eq!(china_time(1_700_000_000_000), "2023-11-15 06-13-20");
        assert_eq!(china_time(0), "1970-01-01 08-00-00");
        assert_eq!(china_time(951_782_400 - 8 * 3600), "2000-02-29 00-00-00");
    }

    #[test]
    fn the_default_keeps_f2s_shape_and_adds_the_id() {
        let t = Template::parse(FIELDS, DEFAULT_TEMPLATE).expect("valid");
        assert_eq!(
            fields("hello world #tag").render(&t),
            "2023-11-15 06-13-20_hello world #tag_7300000000000000001"
        );
        assert!(Template::parse(FIELDS, "{create}_{desc}").is_err(), "no identifying field");
        let t = Template::parse(FIELDS, "{uid}/{aweme_id}").expect("valid");
        assert_eq!(fields("x").render(&t), "1/7300000000000000001");
    }

    #[test]
    fn hostile_descriptions_give_safe_names_and_keep_the_id() {
        let t = Template::parse(FIELDS, DEFAULT_TEMPLATE).expect("valid");
        let long = "很长的描述".repeat(60);
        for desc in [r#"a/b\c:d*e?f"g<h>i|j"#, "..", "line1\nline2", "CON", long.as_str()] {
            let name = fields(desc).render(&t);
            assert!(!name.contains('/') && !name.contains('\n') && name != "..", "{name:?}");
            assert!(name.ends_with("_7300000000000000001"), "{name:?}");
            assert!(name.len() <= crate::naming::MAX_COMPONENT_BYTES, "{} bytes", name.len());
        }
    }
}
