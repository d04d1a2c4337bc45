//! File names a server gives in `Content-Disposition` (RFC 6266).
//!
//! Owns the reading of the header, never the decision to use it (that is
//! the download kernel's). The invariant: what comes out is either `None`
//! (no usable name: the caller keeps the URL's name or `file-<i>`) or one
//! component that [`sanitize_component`] made safe, whatever the server
//! sent.
//!
//! Rules: the disposition type (`attachment`, `inline` or any other) is
//! not looked at, since browsers save both kinds under the name; parameter
//! names are case-insensitive; `filename*` (RFC 8187: `UTF-8` or
//! `ISO-8859-1`, an optional language, percent-encoded bytes) is preferred
//! over `filename`, which is a token or a quoted string with `\`
//! escapes. A `filename*` with a bad escape, another charset or invalid
//! UTF-8 is ignored as a whole, not repaired: `filename` (if any) is used
//! instead, as RFC 6266 §4.3 asks of a recipient that cannot read it.

use crate::naming::sanitize_component;

/// The sanitized file name a `Content-Disposition` value gives, if any.
pub fn file_name_from_disposition(value: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    // The first part is the disposition type; every later one a parameter.
    for (k, param) in split_params(value).into_iter().enumerate() {
        if k == 0 {
            continue;
        }
        let Some((name, raw)) = param.split_once('=') else { continue };
        let name = name.trim();
        let raw = raw.trim();
        if name.eq_ignore_ascii_case("filename*") {
            if extended.is_none() {
                extended = decode_ext_value(raw);
            }
        } else if name.eq_ignore_ascii_case("filename") && plain.is_none() {
            plain = Some(unquote(raw));
        }
    }
    let chosen = extended.or(plain)?;
    let safe = sanitize_component(&chosen, "");
    (!safe.is_empty()).then_some(safe)
}

/// Splits at `;` outside quoted strings.
fn split_params(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// A token as it is, or a quoted string without its quotes and escapes
/// (RFC 9110 §5.6.4: `\x` stands for `x`).
fn unquote(raw: &str) -> String {
    let Some(inner) = raw.strip_prefix('"') else { return raw.to_string() };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '"' => break,
            c => out.push(c),
        }
    }
    out
}

/// Decodes an RFC 8187 `ext-value`: `charset'[language]'value`.
fn decode_ext_value(raw: &str) -> Option<String> {
    // Some servers quote it although the grammar does not allow it.
    let raw = raw.trim_matches('"');
    let mut parts = raw.splitn(3, '\'');
    let charset = parts.next()?;
    let _language = parts.next()?;
    let encoded = parts.next()?;
    let bytes = strict_percent_decode(encoded)?;
    if charset.eq_ignore_ascii_case("utf-8") {
        String::from_utf8(bytes).ok()
    } else if charset.eq_ignore_ascii_case("iso-8859-1") {
        Some(bytes.into_iter().map(char::from).collect())
    } else {
        None
    }
}

/// Decodes `%XX` escapes; `None` on a malformed one.
fn strict_percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::MAX_COMPONENT_BYTES;

    fn name(v: &str) -> Option<String> {
        file_name_from_disposition(v)
    }

    #[test]
    fn both_forms_and_the_preference() {
        assert_eq!(name("attachment; filename=\"report.pdf\"").as_deref(), Some("report.pdf"));
        assert_eq!(name("attachment; filename=plain.txt").as_deref(), Some("plain.txt"));
        assert_eq!(name("inline; filename=\"a b.png\"").as_deref(), Some("a b.png"));
        assert_eq!(
            name("attachment; filename=\"fallback.txt\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.txt").as_deref(),
            Some("报告.txt")
        );
        // Order does not matter, case does not either.
        assert_eq!(
            name("ATTACHMENT; FileName*=utf-8'en'caf%C3%A9.txt; FILENAME=\"x\"").as_deref(),
            Some("café.txt")
        );
        assert_eq!(name("attachment; filename*=iso-8859-1''caf%E9.txt").as_deref(), Some("café.txt"));
        // Quoted-string escapes, and a `;` inside quotes.
        assert_eq!(name(r#"attachment; filename="say \"hi\"; ok.txt""#).as_deref(), Some("say _hi_; ok.txt"));
        assert_eq!(name(r#"attachment; filename="back\\slash""#).as_deref(), Some("back_slash"));
    }

    #[test]
    fn no_name_means_none() {
        assert_eq!(name("attachment"), None);
        assert_eq!(name("inline"), None);
        assert_eq!(name(""), None);
        assert_eq!(name("attachment; filename=\"\""), None);
        assert_eq!(name("attachment; filename*=UTF-8''"), None);
        assert_eq!(name("attachment; size=3"), None);
    }

    #[test]
    fn hostile_values_are_made_safe() {
        assert_eq!(name("attachment; filename=\"../../etc/passwd\"").as_deref(), Some("___.._etc_passwd"));
        assert_eq!(name("attachment; filename=\"a/b\"").as_deref(), Some("a_b"));
        assert_eq!(name("attachment; filename*=UTF-8''..%2F..%2Fx").as_deref(), Some("___.._x"));
        assert_eq!(name("attachment; filename=\"..\""), None);
        assert_eq!(name("attachment; filename*=UTF-8''a%00b.txt").as_deref(), Some("a_b.txt"));
        assert_eq!(name("attachment; filename=\"CON.txt\"").as_deref(), Some("_CON.txt"));
        assert_eq!(name("attachment; filename=\".bashrc\"").as_deref(), Some("_bashrc"));
        let long = format!("attachment; filename*=UTF-8''{}.pdf", "%E6%96%87".repeat(200));
        let n = name(&long).expect("a name");
        assert!(n.len() <= MAX_COMPONENT_BYTES && n.ends_with(".pdf"), "{} bytes: {n}", n.len());
        assert!(n.trim_end_matches(".pdf").chars().all(|c| c == '文'));
    }

    #[test]
    fn a_bad_extended_value_falls_back() {
        // Bad escapes, bad UTF-8, an unknown charset: filename= is used,
        // and without one there is no name.
        for bad in ["UTF-8''a%zz.txt", "UTF-8''a%4", "UTF-8''%FF%FE.txt", "KOI8-R''x.txt", "no-quotes"] {
            assert_eq!(name(&format!("attachment; filename*={bad}")), None, "{bad}");
            assert_eq!(
                name(&format!("attachment; filename*={bad}; filename=ok.txt")).as_deref(),
                Some("ok.txt"),
                "{bad}"
            );
        }
    }
}
