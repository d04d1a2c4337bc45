//! How a job's progress reads, and the live view of `status --watch` and
//! `spoolfetch demo`.
//!
//! Owns the words and the drawing: the byte figures of a status line
//! (`4.5 MiB of 10.0 MiB, 1.0 MiB/s, 6 s left`), and a view that redraws a
//! table with progress bars in place on a terminal or, piped, prints one
//! plain line per job whenever that job's line changes. Invariant: piped
//! output never holds a control sequence; a terminal view always leaves
//! the cursor below the table it drew.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use spoolfetch::job::units::{count, human_bytes, human_duration};
use spoolfetch::job::{JobState, JobStatus, Tid};
use spoolfetch::naming::escape_display;

/// The width of a progress bar, in cells.
const BAR: usize = 20;

/// `3/10 files` for the download stage, `now/total` otherwise.
pub fn counts(s: &JobStatus) -> String {
    match s.stage.as_str() {
        "download" | "finished" if s.total > 0 || s.now > 0 => {
            format!("{}/{}", s.now, count(s.total, "file"))
        }
        _ => format!("{}/{}", s.now, s.total),
    }
}

/// The byte figures: done (of the total when known), the rate, the time
/// left; empty when the job has moved no byte and knows no total.
pub fn figures(s: &JobStatus) -> String {
    if s.bytes == 0 && s.bytes_total.is_none_or(|t| t == 0) {
        return String::new();
    }
    let mut out = human_bytes(s.bytes);
    if let Some(t) = s.bytes_total
        && !(s.state == JobState::Done && t == s.bytes)
    {
        out.push_str(&format!(" of {}", human_bytes(t)));
    }
    if s.rate > 0 {
        out.push_str(&format!(", {}/s", human_bytes(s.rate)));
    }
    if let Some(e) = s.eta_secs
        && s.state == JobState::Running
        && s.rate > 0
    {
        out.push_str(&format!(", {} left", human_duration(Duration::from_secs(e))));
    }
    out
}

/// The fraction done, by bytes when the total is known, else by files.
fn fraction(s: &JobStatus) -> Option<f64> {
    if s.state == JobState::Done {
        return Some(1.0);
    }
    match s.bytes_total {
        Some(t) if t > 0 => Some((s.bytes as f64 / t as f64).min(1.0)),
        _ if s.total > 0 => Some((s.now as f64 / s.total as f64).min(1.0)),
        _ => None,
    }
}

/// `[#########-----------]  45%`, or blanks when nothing is known.
fn bar(s: &JobStatus) -> String {
    match fraction(s) {
        Some(f) => {
            let full = ((f * BAR as f64).round() as usize).min(BAR);
            format!("[{}{}] {:>3}%", "#".repeat(full), "-".repeat(BAR - full), (f * 100.0).floor() as u64)
        }
        None => format!("[{}]     ", " ".repeat(BAR)),
    }
}

/// One plain line for a job: what `--watch` prints when piped.
pub fn plain_line(s: &JobStatus) -> String {
    let figures = figures(s);
    let figures = if figures.is_empty() { String::new() } else { format!(", {figures}") };
    let error = s.error.as_deref().map(|e| format!(", error: {}", escape_display(e))).unwrap_or_default();
    format!(
        "job {} {}: {}, {} {}{figures}{error}",
        s.tid,
        escape_display(&s.name),
        s.state.as_str(),
        escape_display(&s.stage),
        counts(s)
    )
}

/// The two table lines of a job on a terminal (80 columns): what it is,
/// then its bar and figures, indented under it.
fn table_rows(s: &JobStatus) -> [String; 2] {
    let error = s.error.as_deref().map(|e| format!("  error: {}", escape_display(e))).unwrap_or_default();
    [
        format!(
            "{:>5}  {:<24} {:<9} {:<9} {:>14}",
            s.tid,
            super::status::cut(&s.name, 24),
            escape_display(&s.stage),
            s.state.as_str(),
            counts(s),
        ),
        format!("       {}  {}{error}", bar(s), figures(s)).trim_end().to_string(),
    ]
}

/// A live view of some jobs.
pub struct View {
    /// Drawing a table in place (a terminal), or printing plain lines.
    tty: bool,
    /// Lines the last drawing left above the cursor (terminal).
    drawn: usize,
    /// The last plain line printed per job (piped).
    last: BTreeMap<Tid, String>,
}

impl View {
    /// A view for a terminal (`tty`) or a pipe.
    pub fn new(tty: bool) -> View {
        View { tty, drawn: 0, last: BTreeMap::new() }
    }

    /// Draws the jobs: the table again in place, or the lines that changed.
    pub fn draw(&mut self, out: &mut impl Write, jobs: &[JobStatus]) -> io::Result<()> {
        if self.tty {
            let mut frame = String::new();
            if self.drawn > 0 {
                // Back to the table's first line.
                frame.push_str(&format!("\x1b[{}A", self.drawn));
            }
            let header =
                format!("{:>5}  {:<24} {:<9} {:<9} {:>14}", "TID", "NAME", "STAGE", "STATE", "NOW/TOTAL");
            // A row wider than the terminal would wrap and take two lines,
            // and going back over the table would miss one: rows are cut.
            let width = terminal_width().unwrap_or(usize::MAX).saturating_sub(1).max(20);
            let lines: Vec<String> =
                std::iter::once(header).chain(jobs.iter().flat_map(table_rows)).collect();
            for line in &lines {
                frame.push_str("\r\x1b[2K");
                frame.push_str(&fit(line, width));
                frame.push('\n');
            }
            // Rows of jobs no longer shown are cleared.
            frame.push_str("\x1b[J");
            self.drawn = lines.len();
            out.write_all(frame.as_bytes())?;
        } else {
            for s in jobs {
                let line = plain_line(s);
                if self.last.get(&s.tid) != Some(&line) {
                    writeln!(out, "{line}")?;
                    self.last.insert(s.tid, line);
                }
            }
        }
        out.flush()
    }
}

/// The width of the terminal on stdout, if it says.
fn terminal_width() -> Option<usize> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// `line` cut to `width` characters (the last one `…` when cut).
fn fit(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(width.saturating_sub(1)).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobStatus {
        let mut s = JobStatus::claimed(1, "big", "http.files", "/d", "a", "big.json");
        s.state = JobState::Running;
        s.stage = "download".into();
        s.total = 1;
        s
    }

    #[test]
    fn figures_and_bars() {
        let mut s = job();
        assert_eq!(figures(&s), "");
        assert_eq!(counts(&s), "0/1 file");
        s.bytes = 4_718_592;
        s.bytes_total = Some(10_485_760);
        s.rate = 1_048_576;
        s.eta_secs = Some(6);
        assert_eq!(figures(&s), "4.5 MiB of 10.0 MiB, 1.0 MiB/s, 6.0 s left");
        assert_eq!(bar(&s), "[#########-----------]  45%");
        assert_eq!(
            plain_line(&s),
            "job 1 big: running, download 0/1 file, 4.5 MiB of 10.0 MiB, 1.0 MiB/s, 6.0 s left"
        );
        s.state = JobState::Done;
        s.bytes = 10_485_760;
        s.rate = 0;
        assert_eq!(figures(&s), "10.0 MiB");
    }

    #[test]
    fn piped_views_print_changes_only_and_no_escapes() {
        let mut v = View::new(false);
        let mut out = Vec::new();
        let mut s = job();
        v.draw(&mut out, std::slice::from_ref(&s)).expect("draw");
        v.draw(&mut out, std::slice::from_ref(&s)).expect("draw");
        s.bytes = 2048;
        v.draw(&mut out, std::slice::from_ref(&s)).expect("draw");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains('\x1b'));
        let mut t = View::new(true);
        let mut out = Vec::new();
        t.draw(&mut out, std::slice::from_ref(&s)).expect("draw");
        t.draw(&mut out, std::slice::from_ref(&s)).expect("draw");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("\x1b[3A"), "the second frame goes back over the first: {text:?}");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
    }
}
