//! Record output files (data exports): JSON Lines or CSV, appended batch by
//! batch by the job's runner.
//!
//! Invariant: the checkpoint names, per file, the length that is durable
//! and belongs to the job. A batch is appended after cutting the file to
//! that length (a crash mid-append leaves a torn tail, never a duplicate),
//! fsynced, and only then recorded with its new length.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use serde_json::{Map, Value};

use crate::checkpoint::OutputMark;
use crate::durable::fsync_dir;
use crate::providers::{RecordFormat, Records};

/// Appends a batch durably; returns the file's new mark.
pub fn append(file: &Path, recs: &Records, mark: Option<&OutputMark>) -> Result<OutputMark, String> {
    let err = |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", file.display());
    let dir = file.parent().unwrap_or(Path::new("."));
    let new_dir = !dir.exists();
    fs::create_dir_all(dir).map_err(|e| err("create the folder of", e))?;
    let mut f =
        OpenOptions::new().create(true).truncate(false).write(true).open(file).map_err(|e| err("open", e))?;
    let len = mark.map_or(0, |m| m.len);
    let on_disk = f.metadata().map_err(|e| err("stat", e))?.len();
    if on_disk < len {
        return Err(format!(
            "{} is shorter ({on_disk} bytes) than its checkpoint says ({len} bytes); it was changed outside spoolfetch",
            file.display()
        ));
    }
    // Bytes after the durable length are a torn append of a crashed run.
    f.set_len(len).map_err(|e| err("truncate", e))?;
    f.seek(SeekFrom::Start(len)).map_err(|e| err("seek in", e))?;
    let mut header = mark.and_then(|m| m.header.clone());
    let mut buf = Vec::new();
    match recs.format {
        RecordFormat::Jsonl => {
            for row in &recs.rows {
                serde_json::to_writer(&mut buf, row).map_err(|e| format!("cannot encode a row: {e}"))?;
                buf.push(b'\n');
            }
        }
        RecordFormat::Csv => {
            if header.is_none() {
                let h = csv_header(&recs.rows);
                buf.extend_from_slice(csv_line(h.iter().map(|s| Value::String(s.clone()))).as_bytes());
                header = Some(h);
            }
            let h = header.as_deref().unwrap_or_default();
            for row in &recs.rows {
                let unknown: Vec<&String> = row.keys().filter(|k| !h.contains(k)).collect();
                if !unknown.is_empty() {
                    log::warn!(
                        "{}: columns {unknown:?} appeared after the header was written; they are left out",
                        file.display()
                    );
                }
                buf.extend_from_slice(
                    csv_line(h.iter().map(|k| row.get(k).cloned().unwrap_or(Value::Null))).as_bytes(),
                );
            }
        }
    }
    f.write_all(&buf).map_err(|e| err("write", e))?;
    f.sync_data().map_err(|e| err("fsync", e))?;
    if new_dir || len == 0 {
        fsync_dir(dir).map_err(|e| err("fsync the folder of", e))?;
    }
    Ok(OutputMark {
        file: recs.file.clone(),
        len: len + buf.len() as u64,
        rows: mark.map_or(0, |m| m.rows) + recs.rows.len() as u64,
        header,
    })
}

/// Cuts a file back to its durable length (at a job's start).
pub fn cut_to_mark(file: &Path, mark: &OutputMark) -> Result<(), String> {
    match fs::metadata(file) {
        Ok(m) if m.len() > mark.len => {
            let f = OpenOptions::new()
                .write(true)
                .open(file)
                .map_err(|e| format!("cannot open {}: {e}", file.display()))?;
            f.set_len(mark.len).map_err(|e| format!("cannot truncate {}: {e}", file.display()))?;
            f.sync_all().map_err(|e| format!("cannot fsync {}: {e}", file.display()))
        }
        Ok(m) if m.len() < mark.len => Err(format!(
            "{} is shorter ({} bytes) than its checkpoint says ({} bytes); it was changed outside spoolfetch",
            file.display(),
            m.len(),
            mark.len
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && mark.len == 0 => Ok(()),
        Err(e) => Err(format!("cannot read {}: {e}", file.display())),
    }
}

/// The header of a CSV file: the columns of the first rows, in the order
/// they first appear.
fn csv_header(rows: &[Map<String, Value>]) -> Vec<String> {
    let mut h: Vec<String> = Vec::new();
    for row in rows {
        for k in row.keys() {
            if !h.contains(k) {
                h.push(k.clone());
            }
        }
    }
    h
}

/// One CSV line (RFC 4180 quoting; nested values as JSON).
fn csv_line(values: impl Iterator<Item = Value>) -> String {
    let cells: Vec<String> = values
        .map(|v| {
            let s = match v {
                Value::Null => String::new(),
                Value::String(s) => s,
                other => other.to_string(),
            };
            if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
        })
        .collect();
    format!("{}\n", cells.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(v: Value) -> Vec<Map<String, Value>> {
        v.as_array().map(|a| a.iter().filter_map(|r| r.as_object().cloned()).collect()).unwrap_or_default()
    }

    #[test]
    fn csv_header_is_stable_and_torn_tails_are_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("out/t.csv");
        let r1 = Records {
            file: "t.csv".into(),
            format: RecordFormat::Csv,
            rows: rows(json!([{"a": "x,y", "b": 1}, {"a": "q\"uote", "c": null}])),
        };
        let m1 = append(&f, &r1, None).expect("append");
        assert_eq!(m1.header.as_deref(), Some(&["a".to_string(), "b".into(), "c".into()][..]));
        // A crashed append left garbage after the mark.
        fs::OpenOptions::new()
            .append(true)
            .open(&f)
            .expect("open")
            .write_all(b"garbage,half")
            .expect("write");
        let r2 = Records {
            file: "t.csv".into(),
            format: RecordFormat::Csv,
            rows: rows(json!([{"b": 2, "a": "line\nbreak"}])),
        };
        let m2 = append(&f, &r2, Some(&m1)).expect("append");
        assert_eq!(m2.rows, 3);
        let text = fs::read_to_string(&f).expect("read");
        assert_eq!(
            text,
            "a,b,c\n\"x,y\",1,\nq\"uote\"... ".replace("q\"uote\"... ", "\"q\"\"uote\",,\n")
                + "\"line\nbreak\",2,\n"
        );
        assert_eq!(m2.len, text.len() as u64);
    }

    #[test]
    fn jsonl_and_shrunken_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("t.jsonl");
        let r = Records {
            file: "t.jsonl".into(),
            format: RecordFormat::Jsonl,
            rows: rows(json!([{"a": 1}, {"a": 1}])),
        };
        let m = append(&f, &r, None).expect("append");
        assert_eq!(fs::read_to_string(&f).expect("read"), "{\"a\":1}\n{\"a\":1}\n");
        fs::write(&f, b"{").expect("shrink");
        assert!(append(&f, &r, Some(&m)).is_err());
        assert!(cut_to_mark(&f, &m).is_err());
    }
}
