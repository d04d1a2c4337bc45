//! "Did you mean" for unknown keys, and short renderings of bad values.
//!
//! Shared by the configuration loader and the job-key checks, so that a
//! typo in either gets the same kind of hint.

use serde_json::Value;

/// A short rendering of a bad value for messages; strings are cut so that
/// a secret pasted into the wrong key is not echoed whole.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() > 12 => {
            format!("a string ({} characters)", s.chars().count())
        }
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "an object".into(),
        Value::Array(_) => "an array".into(),
        other => other.to_string(),
    }
}

/// Builds the "unknown key" message, suggesting the closest known key.
pub fn unknown_key(key: &str, known: &[&str]) -> String {
    match closest(key, known.iter().copied()) {
        Some(k) => format!("unknown key `{key}` (did you mean `{k}`?)"),
        None => format!("unknown key `{key}`"),
    }
}

/// The "unknown key" message of a top-level key: a dotted one
/// (`pixiv.refresh_token`, as the docs name keys) gets how to nest it,
/// when its first part is a key that holds an object.
pub fn unknown_top_level(key: &str, known: &[&str], sections: &[&str]) -> String {
    match key.split_once('.') {
        Some((section, rest)) if sections.contains(&section) && !rest.is_empty() => format!(
            "unknown key `{key}`: a dotted key is written nested, as {{\"{section}\": {{\"{rest}\": …}}}}"
        ),
        _ => unknown_key(key, known),
    }
}

/// The known key closest to `key`, if one is close enough to be the one
/// meant: at most 3 edits (and fewer than the key's length, so that a
/// two-letter typo does not suggest every short key), or a key that
/// starts with it or with which it starts (`user` → `user_id`). Ties go to
/// the first.
pub fn closest<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &'a str)> = None;
    for k in known {
        let d = edit_distance(key, k);
        let prefix = key.len() >= 3 && (k.starts_with(key) || key.starts_with(k));
        let near = d <= 3 && d < key.chars().count();
        if (near || prefix) && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k)
}

/// Levenshtein distance, for "did you mean".
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_keys() {
        let keys = ["user_id", "max_items", "restrict", "tag", "name", "save_path"];
        assert_eq!(closest("max_item", keys), Some("max_items"));
        assert_eq!(closest("user", keys), Some("user_id"));
        assert_eq!(closest("savepath", keys), Some("save_path"));
        assert_eq!(closest("tga", keys), Some("tag"));
        assert_eq!(closest("zz", keys), None);
        assert_eq!(closest("completely_else", keys), None);
    }

    #[test]
    fn dotted_keys_get_told_to_nest() {
        let m = unknown_top_level("pixiv.refresh_token", &["save_path", "pixiv"], &["pixiv"]);
        assert_eq!(
            m,
            "unknown key `pixiv.refresh_token`: a dotted key is written nested, as {\"pixiv\": {\"refresh_token\": …}}"
        );
        assert_eq!(
            unknown_top_level("save_pat", &["save_path"], &[]),
            "unknown key `save_pat` (did you mean `save_path`?)"
        );
    }
}
