//! The one-shot `status` table: its columns, how they fit the terminal,
//! and its colours (the `--watch` view is `progress`'s).
//!
//! Owns the layout decision. Piped or redirected, every job is one whole
//! line with every column, whatever its length, so that `grep` and `awk`
//! see a job as one line (the format scripts already read). On a
//! terminal the table fits its width (`$COLUMNS` when it is set, else the
//! terminal's own, else 80): TYPE is dropped first, then STAGE, then NAME
//! narrows to 12; the save path is shortened from the left
//! (`…/downloads`), and a job's bytes, credits, error and daemon note go
//! on an indented second line, cut at the edge. Colours, on a terminal
//! only and never when `NO_COLOR` is set (to anything but empty): failed
//! rows red, waiting rows yellow. Invariant: piped output holds no
//! control sequence; no terminal line is wider than the width.

use std::io::IsTerminal;

/// The width assumed when a terminal does not say.
const FALLBACK_WIDTH: usize = 80;

/// The least room the save path keeps before columns are dropped.
const PATH_MIN: usize = 20;

/// How a row is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// No colour.
    Plain,
    /// A failed job: red.
    Failed,
    /// A job waiting for a login or a block to pass: yellow.
    Waiting,
}

/// One job (or an unclaimed job file) as the table shows it; every text
/// is already escaped.
#[derive(Debug, Clone)]
pub struct Row {
    /// TID, or `-`.
    pub tid: String,
    /// TaskName.
    pub name: String,
    /// TypeName.
    pub job_type: String,
    /// StageName.
    pub stage: String,
    /// The state shown (`stale` included).
    pub state: String,
    /// Now/total.
    pub counts: String,
    /// The absolute save path, or `-`.
    pub path: String,
    /// Bytes, credits, error and notes, each a part of its own.
    pub details: Vec<String>,
    /// Its colour.
    pub tone: Tone,
}

/// The columns a terminal of some width keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Columns {
    /// Width of NAME.
    name: usize,
    /// Whether TYPE shows.
    job_type: bool,
    /// Whether STAGE shows.
    stage: bool,
}

impl Columns {
    /// Every column, at full width: what a pipe gets.
    const FULL: Columns = Columns { name: 20, job_type: true, stage: true };

    /// The widest choice whose columns leave the save path `PATH_MIN`
    /// cells within `width`, else the narrowest.
    fn fitting(width: usize) -> Columns {
        let choices = [
            Columns::FULL,
            Columns { name: 20, job_type: false, stage: true },
            Columns { name: 20, job_type: false, stage: false },
            Columns { name: 16, job_type: false, stage: false },
            Columns { name: 12, job_type: false, stage: false },
        ];
        choices.into_iter().find(|c| c.before_path() + PATH_MIN <= width).unwrap_or(choices[4])
    }

    /// The cells before the save path.
    fn before_path(self) -> usize {
        let mut n = 5 + 2 + self.name + 1;
        if self.job_type {
            n += 16 + 1;
        }
        if self.stage {
            n += 9 + 1;
        }
        n + 9 + 1 + 15 + 2
    }

    /// The columns before the save path of a row.
    fn head(self, r: &Row) -> String {
        let mut out = format!("{:>5}  {:<w$} ", r.tid, super::status::cut(&r.name, self.name), w = self.name);
        if self.job_type {
            out.push_str(&format!("{:<16} ", super::status::cut(&r.job_type, 16)));
        }
        if self.stage {
            out.push_str(&format!("{:<9} ", r.stage));
        }
        out.push_str(&format!("{:<9} {:>15}  ", r.state, r.counts));
        out
    }
}

/// Where the table goes: a pipe, or a terminal of some width, in colour
/// or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The terminal's width; `None` for a pipe (whole lines).
    width: Option<usize>,
    /// Whether rows are coloured.
    colour: bool,
}

impl Layout {
    /// The layout for standard output as it is now.
    pub fn for_stdout() -> Layout {
        if !std::io::stdout().is_terminal() {
            return Layout { width: None, colour: false };
        }
        let colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Layout { width: Some(terminal_width()), colour }
    }

    /// A layout for a pipe (`None`) or a terminal `width` wide.
    #[cfg(test)]
    fn new(width: Option<usize>, colour: bool) -> Layout {
        Layout { width, colour }
    }

    /// The header line.
    pub fn header(&self) -> String {
        let names = Row {
            tid: "TID".into(),
            name: "NAME".into(),
            job_type: "TYPE".into(),
            stage: "STAGE".into(),
            state: "STATE".into(),
            counts: "NOW/TOTAL".into(),
            path: "SAVE PATH".into(),
            details: Vec::new(),
            tone: Tone::Plain,
        };
        match self.width {
            None => format!("{}SAVE PATH  [ERROR]", Columns::FULL.head(&names)),
            Some(w) => fit(&format!("{}SAVE PATH", Columns::fitting(w).head(&names)), w),
        }
    }

    /// The lines of one row: one for a pipe, one or two on a terminal.
    pub fn lines(&self, r: &Row) -> Vec<String> {
        let Some(w) = self.width else {
            let details: String = r.details.iter().map(|d| format!("  {d}")).collect();
            return vec![format!("{}{}{details}", Columns::FULL.head(r), r.path)];
        };
        let cols = Columns::fitting(w);
        let room = w.saturating_sub(cols.before_path()).max(1);
        let mut lines = vec![fit(&format!("{}{}", cols.head(r), cut_left(&r.path, room)), w)];
        if !r.details.is_empty() {
            lines.push(fit(&format!("       {}", r.details.join("  ")), w));
        }
        if self.colour {
            let code = match r.tone {
                Tone::Plain => return lines,
                Tone::Failed => "31",
                Tone::Waiting => "33",
            };
            for l in &mut lines {
                *l = format!("\x1b[{code}m{l}\x1b[0m");
            }
        }
        lines
    }
}

/// `$COLUMNS` when it is a positive number, else the width of the
/// terminal on stdout, else 80.
fn terminal_width() -> usize {
    if let Some(n) = std::env::var("COLUMNS").ok().and_then(|v| v.trim().parse::<usize>().ok())
        && n > 0
    {
        return n;
    }
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .map(|ws| usize::from(ws.ws_col))
        .filter(|&n| n > 0)
        .unwrap_or(FALLBACK_WIDTH)
}

/// `line` cut to `width` characters, the last one `…` when cut.
fn fit(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(width.saturating_sub(1)).collect::<String>())
    }
}

/// `path` kept to its last `width` characters, `…` first when cut: the
/// end of a path says the most.
fn cut_left(path: &str, width: usize) -> String {
    let n = path.chars().count();
    if n <= width {
        path.to_string()
    } else {
        let tail: String = path.chars().skip(n - width.saturating_sub(1)).collect();
        format!("…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tone: Tone) -> Row {
        Row {
            tid: "12".into(),
            name: "a rather long job name here".into(),
            job_type: "pixiv.user".into(),
            stage: "download".into(),
            state: "failed".into(),
            counts: "3/10 files".into(),
            path: "/srv/media/spoolfetch/downloads/pixiv".into(),
            details: vec![
                "1.0 MiB".into(),
                "error: HTTP 404 from i.pximg.net for every remaining file".into(),
            ],
            tone,
        }
    }

    #[test]
    fn pipes_get_whole_lines_and_terminals_their_width() {
        let piped = Layout::new(None, false);
        let lines = piped.lines(&row(Tone::Failed));
        assert_eq!(lines.len(), 1);
        assert!(lines[0].ends_with("/srv/media/spoolfetch/downloads/pixiv  1.0 MiB  error: HTTP 404 from i.pximg.net for every remaining file"));
        assert!(lines[0].contains(" pixiv.user ") && !lines[0].contains('\x1b'));
        assert!(piped.header().ends_with("SAVE PATH  [ERROR]"));
        for w in [40, 60, 80, 100, 200] {
            let t = Layout::new(Some(w), true);
            assert!(t.header().chars().count() <= w, "{w}: {}", t.header());
            for l in t.lines(&row(Tone::Plain)) {
                assert!(l.chars().count() <= w, "{w}: {l}");
            }
        }
        let t = Layout::new(Some(80), false);
        let lines = t.lines(&row(Tone::Plain));
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(!lines[0].contains("pixiv.user") && lines[0].contains("3/10 files"), "{lines:?}");
        assert!(lines[0].ends_with("…oolfetch/downloads/pixiv"), "{lines:?}");
        assert!(lines[1].starts_with("       1.0 MiB  error: HTTP 404"), "{lines:?}");
        assert!(Layout::new(Some(200), false).lines(&row(Tone::Plain))[0].contains(" pixiv.user "));
    }

    #[test]
    fn colours_by_tone() {
        let t = Layout::new(Some(80), true);
        assert!(
            t.lines(&row(Tone::Failed)).iter().all(|l| l.starts_with("\x1b[31m") && l.ends_with("\x1b[0m"))
        );
        assert!(t.lines(&row(Tone::Waiting)).iter().all(|l| l.starts_with("\x1b[33m")));
        assert!(t.lines(&row(Tone::Plain)).iter().all(|l| !l.contains('\x1b')));
        assert!(Layout::new(Some(80), false).lines(&row(Tone::Failed)).iter().all(|l| !l.contains('\x1b')));
        assert_eq!(cut_left("/a/b/c", 4), "…b/c");
        assert_eq!(fit("abcdef", 4), "abc…");
    }
}
