//! Escaping of untrusted text for logs and terminals.

/// Whether `c` must not reach a log line or a terminal as itself: C0,
/// DEL and C1 controls, line and paragraph separators, and the
/// bidirectional and zero-width format characters that reorder or hide
/// text (see Unicode TR9 and CVE-2021-42574, "Trojan Source").
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}'
        )
}

/// Returns `s` with every unsafe character written as `\n`, `\r`, `\t`,
/// `\\` or `\u{..}`, so one untrusted string stays on one line and shows
/// what it really holds.
pub fn escape_display(s: &str) -> String {
    if !s.chars().any(|c| is_unsafe_char(c) || c == '\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_format_characters_are_escaped() {
        assert_eq!(escape_display("plain name.jpg"), "plain name.jpg");
        assert_eq!(escape_display("a\nb"), "a\\nb");
        assert_eq!(escape_display("a\r\n\tb"), "a\\r\\n\\tb");
        assert_eq!(escape_display("\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape_display("x\x7fy\u{85}z"), "x\\u{7f}y\\u{85}z");
        assert_eq!(escape_display("l\u{2028}m\u{2029}"), "l\\u{2028}m\\u{2029}");
        assert_eq!(escape_display("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
        assert_eq!(escape_display("\u{2066}\u{200f}\u{061c}"), "\\u{2066}\\u{200f}\\u{61c}");
        assert_eq!(escape_display("a\\nb"), "a\\\\nb");
        assert_eq!(escape_display("日本語"), "日本語");
    }
}
