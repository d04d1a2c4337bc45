//! Hostile job input through the real binary: names that would forge log lines.

use std::time::Duration;

use crate::util::Env;

#[test]
fn a_line_break_in_a_job_file_name_does_not_forge_a_log_line() {
    let env = Env::new();
    env.config(serde_json::json!({"settle_ms": 50}));
    env.drop_raw("a\nb", b"{\"type\": \"http.files\", \"urls\": 3}");
    let (_, log) = env.run_once(Duration::from_secs(60));
    assert!(log.contains("a\\nb"), "the name is shown escaped\n{log}");
    assert!(log.lines().all(|l| !l.starts_with('b')), "{log}");
    env.drop_raw("c\x1b[2Jd\ne", b"{\"type\": \"http.files\", \"urls\": [\"https://example.org/x\"]}");
    let out = env.cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains('\x1b') && text.lines().all(|l| !l.starts_with('e') && !l.starts_with('b')),
        "{text}"
    );
    assert!(text.contains("c\\u{1b}[2Jd\\ne"), "{text}");
}
