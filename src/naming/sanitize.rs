//! Path-component sanitizing and URL file names.

/// The longest name spoolfetch gives a file or folder: 255 bytes, the
/// longest name most filesystems accept (ext4, XFS, btrfs; NTFS counts
/// UTF-16 units and allows more), less the 11 bytes that a partial file's
/// metadata adds (`.<name>.part.meta`), so that it fits too.
pub const MAX_COMPONENT_BYTES: usize = 255 - ".".len() - ".part.meta".len();

/// Turns arbitrary text into one safe path component.
///
/// Characters that are path separators, control characters or reserved on
/// Windows/SMB (`<>:"|?*`) become `_`, and so do bidirectional overrides
/// and invisible format characters that would disguise the name. Windows
/// device names (`CON`, `nul.txt`, `COM1`) get a leading `_`. Leading dots become `_` so that the
/// result is never hidden and never `.` or `..`. Trailing dots and spaces
/// (which Windows strips, so SMB clients would see a different name) are
/// removed. An empty result becomes `fallback`. The result is truncated to
/// [`MAX_COMPONENT_BYTES`], keeping the extension.
pub fn sanitize_component(text: &str, fallback: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| match c {
            '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c if crate::naming::is_unsafe_char(c) => '_',
            c => c,
        })
        .collect();
    let trimmed_len = out.trim_end_matches(['.', ' ']).len();
    out.truncate(trimmed_len);
    if is_windows_reserved(&out) {
        out.insert(0, '_');
    }
    let leading_dots = out.chars().take_while(|&c| c == '.').count();
    if leading_dots > 0 {
        out.replace_range(..leading_dots, &"_".repeat(leading_dots));
    }
    if out.trim().is_empty() {
        out = fallback.to_string();
    }
    truncate_keeping_ext(&out, MAX_COMPONENT_BYTES)
}

/// Whether Windows treats `name` as a device (`CON`, `nul.txt`,
/// `Com1.tar.gz`, `LPT¹`): such a file cannot be opened through SMB or on
/// Windows. The device name is the part before the first dot, with
/// trailing spaces ignored, in any letter case. See
/// https://learn.microsoft.com/windows/win32/fileio/naming-a-file
fn is_windows_reserved(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").trim_end_matches(' ').to_ascii_uppercase();
    if matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$") {
        return true;
    }
    let (head, tail) = match stem.char_indices().nth(3) {
        Some((i, _)) => stem.split_at(i),
        None => return false,
    };
    let mut digits = tail.chars();
    (head == "COM" || head == "LPT")
        && matches!(digits.next(), Some('0'..='9' | '\u{b9}' | '\u{b2}' | '\u{b3}'))
        && digits.next().is_none()
}

/// Truncates `name` to at most `max` bytes on a character boundary,
/// keeping its extension (up to 16 bytes of it) when there is one.
pub fn truncate_keeping_ext(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 16 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let budget = max.saturating_sub(ext.len());
    let mut cut = budget.min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &stem[..cut], ext)
}

/// `name` with `-tag` before its extension (`a.jpg`, `7` → `a-7.jpg`),
/// the stem cut so that the result still fits [`MAX_COMPONENT_BYTES`].
pub fn with_suffix(name: &str, tag: &str) -> String {
    let suffix = format!("-{tag}");
    // Only a short tail counts as an extension (as in
    // `truncate_keeping_ext`); a long one is part of the stem, so the
    // budget below can never go negative.
    let (stem, ext) = match name.rfind('.') {
        Some(p) if p > 0 && name.len() - p <= 16 => (&name[..p], &name[p..]),
        _ => (name, ""),
    };
    let stem = truncate_keeping_ext(stem, MAX_COMPONENT_BYTES.saturating_sub(suffix.len() + ext.len()));
    format!("{stem}{suffix}{ext}")
}

/// Returns the sanitized, percent-decoded last path segment of `url`, or
/// `fallback` when the URL has none (for example `https://host/`).
///
/// The query and fragment are ignored: `a.jpg?size=2` is saved as `a.jpg`.
pub fn file_name_from_url(url: &str, fallback: &str) -> String {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let end = without_scheme.find(['?', '#']).unwrap_or(without_scheme.len());
    let path = &without_scheme[..end];
    let segment = match path.find('/') {
        Some(i) => path[i..].rsplit('/').next().unwrap_or(""),
        None => "",
    };
    let decoded = percent_decode(segment);
    sanitize_component(&decoded, fallback)
}

/// Decodes `%XX` escapes; invalid escapes are kept as they are and invalid
/// UTF-8 is replaced, because a file name only needs to be safe, not exact.
pub fn percent_decode_lossy(s: &str) -> String {
    percent_decode(s)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = [bytes[i + 1], bytes[i + 2]];
            if hex.iter().all(u8::is_ascii_hexdigit) {
                // Both bytes are ASCII hex digits, so this is valid UTF-8
                // and a valid base-16 number.
                let text = std::str::from_utf8(&hex).unwrap_or("00");
                out.push(u8::from_str_radix(text, 16).unwrap_or(0));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_devices_dots_and_format_characters() {
        for (inp, want) in [
            ("CON", "_CON"),
            ("nul.txt", "_nul.txt"),
            ("Aux.tar.gz", "_Aux.tar.gz"),
            ("prn ", "_prn"),
            ("com1", "_com1"),
            ("LPT9.log", "_LPT9.log"),
            ("COM\u{b9}", "_COM\u{b9}"),
            ("lpt\u{b3}.x", "_lpt\u{b3}.x"),
            ("CONOUT$", "_CONOUT$"),
            ("console", "console"),
            ("com10", "com10"),
            ("nully.txt", "nully.txt"),
            ("name. . ", "name"),
        ] {
            assert_eq!(sanitize_component(inp, "job"), want, "{inp:?}");
        }
        for c in
            ['\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{061c}', '\u{2028}']
        {
            let out = sanitize_component(&format!("abc{c}gpj.exe"), "f");
            assert_eq!(out, "abc_gpj.exe", "{c:?}");
        }
    }

    #[test]
    fn traversal_is_neutralized() {
        assert_eq!(sanitize_component("..", "x"), "x");
        assert_eq!(sanitize_component(".", "x"), "x");
        assert_eq!(sanitize_component("../../etc/passwd", "x"), "___.._etc_passwd");
        assert_eq!(sanitize_component("a/b\\c", "x"), "a_b_c");
        assert_eq!(sanitize_component("", "x"), "x");
        assert_eq!(sanitize_component("nul\0byte", "x"), "nul_byte");
        assert_eq!(sanitize_component(".hidden", "x"), "_hidden");
        assert_eq!(sanitize_component("name. . ", "x"), "name");
    }

    #[test]
    fn long_names_keep_extension_and_char_boundaries() {
        let long = format!("{}.jpg", "é".repeat(300));
        let s = sanitize_component(&long, "x");
        assert!(s.len() <= MAX_COMPONENT_BYTES);
        assert!(s.ends_with(".jpg"));
    }

    #[test]
    fn url_file_names() {
        assert_eq!(file_name_from_url("https://h/a/b/c.jpg?x=1#f", "f"), "c.jpg");
        assert_eq!(file_name_from_url("https://h/", "f"), "f");
        assert_eq!(file_name_from_url("https://h", "f"), "f");
        assert_eq!(file_name_from_url("https://h/a%20b.png", "f"), "a b.png");
        assert_eq!(file_name_from_url("https://h/%2e%2e", "f"), "f");
        assert_eq!(file_name_from_url("https://h/x%2F..%2Fy", "f"), "x_.._y");
        assert_eq!(file_name_from_url("https://h/bad%zz", "f"), "bad%zz");
        assert_eq!(file_name_from_url("https://h/end%4", "f"), "end%4");
    }
}
