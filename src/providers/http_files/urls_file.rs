//! `urls_file`: the URLs of an `http.files` job read from a text file.
//!
//! The file must be a regular file inside `input_roots` (checked and
//! opened as every local input is, see [`crate::inputs`]) and at most
//! `max_job_bytes` long. One URL a line; blank lines and lines starting
//! with `#` are skipped, surrounding spaces dropped. It is read each time
//! the job is planned (at `submit`, at claim, after a restart), so it must
//! not change while the job runs.

use std::io::Read;
use std::path::Path;

use crate::inputs::InputPolicy;
use crate::job::RejectReason;

/// The URLs of the file `given`, each checked by `check`, with the line
/// number in the reason of a bad one.
pub(super) fn read_urls(
    given: &str,
    policy: &InputPolicy,
    check: impl Fn(&str) -> Result<(), String>,
    mut push: impl FnMut(&str),
) -> Result<usize, RejectReason> {
    let bad = |why: String| RejectReason(format!("urls_file {why}"));
    let input = policy.check(Path::new(given)).map_err(|e| bad(e.to_string()))?;
    let mut text = String::new();
    input
        .open()
        .map_err(|e| bad(e.to_string()))?
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("{}: not readable as UTF-8 text ({e})", input.given.display())))?;
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let url = line.trim();
        if url.is_empty() || url.starts_with('#') {
            continue;
        }
        check(url).map_err(|why| bad(format!("line {}: {why}", i + 1)))?;
        push(url);
        n += 1;
    }
    if n == 0 {
        return Err(bad(format!("{}: no URL in it", input.given.display())));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::super::parse_params;
    use crate::inputs::InputPolicy;

    fn urls(job: Value, policy: &InputPolicy) -> Result<Vec<String>, String> {
        let Value::Object(m) = job else { return Ok(Vec::new()) };
        let m: Map<String, Value> = m;
        let (list, _) = parse_params(&m, policy).map_err(|e| e.0)?;
        Ok((0..list.len()).map(|i| list.get(i).to_string()).collect())
    }

    #[test]
    fn urls_come_from_a_file_inside_input_roots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("in");
        std::fs::create_dir(&root).expect("mkdir");
        let file = root.join("list.txt");
        std::fs::write(&file, "# wallpapers\nhttps://h/a.jpg\n\n  https://h/b.jpg  \r\n").expect("write");
        let policy = InputPolicy::new(std::slice::from_ref(&root), 1 << 20);
        let f = file.display().to_string();
        assert_eq!(
            urls(json!({"urls_file": f}), &policy),
            Ok(vec!["https://h/a.jpg".into(), "https://h/b.jpg".into()])
        );
        assert_eq!(
            urls(json!({"urls": ["https://h/0"], "urls_file": f}), &policy).map(|v| v.len()),
            Ok(3),
            "urls first, then the file's"
        );
        std::fs::write(&file, "https://h/a.jpg\nfile:///etc/passwd\n").expect("write");
        let e = urls(json!({"urls_file": f}), &policy).expect_err("bad line");
        assert_eq!(e, "urls_file line 2: only http and https URLs are accepted, not file://");
        std::fs::write(&file, "# nothing\n").expect("write");
        assert!(urls(json!({"urls_file": f}), &policy).expect_err("empty").ends_with("no URL in it"));
        let outside = dir.path().join("list.txt");
        std::fs::write(&outside, "https://h/a.jpg\n").expect("write");
        let e = urls(json!({"urls_file": outside.display().to_string()}), &policy).expect_err("outside");
        assert!(e.contains("outside the configured input_roots"), "{e}");
        let e = urls(json!({"urls_file": f}), &InputPolicy::new(&[], 1 << 20)).expect_err("no roots");
        assert!(e.contains("input_roots"), "{e}");
        let e = urls(json!({}), &policy).expect_err("neither");
        assert!(e.contains("key `urls` is missing") && e.contains("urls_file"), "{e}");
    }
}
