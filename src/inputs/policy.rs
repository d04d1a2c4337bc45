//! Checking local input paths against `input_roots`.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The rule for local inputs, built from the configuration.
#[derive(Debug, Clone)]
pub struct InputPolicy {
    /// The configured roots, canonicalized (a root that does not exist is
    /// left out, and says so in [`InputError::NoRoots`]).
    roots: Vec<PathBuf>,
    /// Roots as configured, for messages.
    configured: Vec<PathBuf>,
    /// The largest input read.
    max_bytes: u64,
}

/// A local input that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalInput {
    /// The path as the job gave it (or as found below a folder).
    pub given: PathBuf,
    /// Where it really is: canonical, inside a root.
    pub path: PathBuf,
    /// Its root.
    pub root: PathBuf,
    /// Its size when checked.
    pub len: u64,
}

impl LocalInput {
    /// The path relative to its root, `/`-separated (for mirroring an
    /// input tree in the output).
    pub fn relative(&self) -> String {
        let rel = self.path.strip_prefix(&self.root).unwrap_or(&self.path);
        rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
    }

    /// Opens it for reading, without following a link, and checks that it
    /// is still the regular file of the size that was checked.
    pub fn open(&self) -> Result<File, InputError> {
        let file = crate::durable::open_regular_nofollow(&self.path)
            .map_err(|e| InputError::Unreadable { path: self.given.clone(), reason: reason(&e) })?;
        let len = file
            .metadata()
            .map_err(|e| InputError::Unreadable { path: self.given.clone(), reason: reason(&e) })?
            .len();
        if len != self.len {
            return Err(InputError::Unreadable {
                path: self.given.clone(),
                reason: format!("it changed size since it was checked ({} → {len} bytes)", self.len),
            });
        }
        Ok(file)
    }
}

/// Why a local input is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// No usable `input_roots` (none configured, or none exists).
    NoRoots {
        /// The roots as configured (empty: none).
        configured: Vec<PathBuf>,
    },
    /// The path (or where its links lead) is outside every root.
    Outside {
        /// The path.
        path: PathBuf,
        /// Where it leads, when that differs.
        leads_to: Option<PathBuf>,
    },
    /// Not a regular file (a folder, device, FIFO or socket).
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// Larger than the limit.
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// It cannot be read (missing, no permission, changed).
    Unreadable {
        /// The path.
        path: PathBuf,
        /// Why, in one line.
        reason: String,
    },
}

impl InputError {
    /// Returns true if and only if the operator's configuration, not the
    /// input, is the problem (every input would fail the same way).
    pub fn is_config(&self) -> bool {
        matches!(self, InputError::NoRoots { .. })
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |p: &Path| crate::naming::escape_display(&p.to_string_lossy());
        match self {
            InputError::NoRoots { configured } if configured.is_empty() => f.write_str(
                "local inputs need `input_roots` in the configuration (the folders jobs may read from)",
            ),
            InputError::NoRoots { configured } => {
                let list: Vec<String> = configured.iter().map(|p| show(p)).collect();
                write!(f, "none of the `input_roots` exists ({})", list.join(", "))
            }
            InputError::Outside { path, leads_to: None } => {
                write!(f, "{}: outside the configured input_roots", show(path))
            }
            InputError::Outside { path, leads_to: Some(to) } => {
                write!(
                    f,
                    "{}: a symbolic link to {}, outside the configured input_roots",
                    show(path),
                    show(to)
                )
            }
            InputError::NotAFile { path, what } => write!(f, "{}: {what}, not a regular file", show(path)),
            InputError::TooLarge { path, len, max } => {
                write!(f, "{}: {len} bytes, more than the {max}-byte limit for an input", show(path))
            }
            InputError::Unreadable { path, reason } => write!(f, "{}: {reason}", show(path)),
        }
    }
}

impl std::error::Error for InputError {}

/// A one-line reason for an I/O error.
fn reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// What a file type is, for messages.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

impl InputPolicy {
    /// The policy for `roots` (from `input_roots`) and inputs of at most
    /// `max_bytes`.
    pub fn new(roots: &[PathBuf], max_bytes: u64) -> InputPolicy {
        let canonical =
            roots.iter().filter_map(|r| std::fs::canonicalize(r).ok()).filter(|r| r.is_dir()).collect();
        InputPolicy { roots: canonical, configured: roots.to_vec(), max_bytes }
    }

    /// The root that holds the canonical `path`.
    fn root_of(&self, path: &Path) -> Option<&PathBuf> {
        self.roots.iter().find(|r| path.starts_with(r))
    }

    /// Checks one path a job names.
    pub fn check(&self, given: &Path) -> Result<LocalInput, InputError> {
        if self.roots.is_empty() {
            return Err(InputError::NoRoots { configured: self.configured.clone() });
        }
        let path = std::fs::canonicalize(given)
            .map_err(|e| InputError::Unreadable { path: given.to_path_buf(), reason: reason(&e) })?;
        let Some(root) = self.root_of(&path).cloned() else {
            let linked = std::fs::symlink_metadata(given).is_ok_and(|m| m.file_type().is_symlink());
            return Err(InputError::Outside { path: given.to_path_buf(), leads_to: linked.then_some(path) });
        };
        let meta = std::fs::metadata(&path)
            .map_err(|e| InputError::Unreadable { path: given.to_path_buf(), reason: reason(&e) })?;
        if !meta.file_type().is_file() {
            return Err(InputError::NotAFile { path: given.to_path_buf(), what: kind_of(meta.file_type()) });
        }
        if meta.len() > self.max_bytes {
            return Err(InputError::TooLarge {
                path: given.to_path_buf(),
                len: meta.len(),
                max: self.max_bytes,
            });
        }
        Ok(LocalInput { given: given.to_path_buf(), path, root, len: meta.len() })
    }

    /// Every file below the folder `dir` (which must itself be inside a
    /// root), in name order: the inputs that pass, and the reason of each
    /// that does not. Links are not followed into folders, so a link to a
    /// folder outside the roots cannot widen the walk.
    pub fn walk(&self, dir: &Path) -> Result<(Vec<LocalInput>, Vec<InputError>), InputError> {
        if self.roots.is_empty() {
            return Err(InputError::NoRoots { configured: self.configured.clone() });
        }
        let top = std::fs::canonicalize(dir)
            .map_err(|e| InputError::Unreadable { path: dir.to_path_buf(), reason: reason(&e) })?;
        if self.root_of(&top).is_none() {
            return Err(InputError::Outside {
                path: dir.to_path_buf(),
                leads_to: (top != dir).then_some(top),
            });
        }
        if !top.is_dir() {
            return Err(InputError::NotAFile { path: dir.to_path_buf(), what: "not a folder" });
        }
        let (mut ok, mut refused) = (Vec::new(), Vec::new());
        let mut stack = vec![top];
        while let Some(d) = stack.pop() {
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(&d) {
                Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(e) => {
                    refused.push(InputError::Unreadable { path: d.clone(), reason: reason(&e) });
                    continue;
                }
            };
            entries.sort();
            // Folders are walked after the files beside them, in order.
            for p in entries.iter().rev() {
                if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir()) {
                    stack.push(p.clone());
                }
            }
            for p in entries {
                match std::fs::symlink_metadata(&p) {
                    Ok(m) if m.file_type().is_dir() => {}
                    Ok(m) if m.file_type().is_symlink() || m.file_type().is_file() => match self.check(&p) {
                        Ok(i) => ok.push(i),
                        // A link to a folder is not walked, and not an input.
                        Err(InputError::NotAFile { what: "a folder", .. }) => {}
                        Err(e) => refused.push(e),
                    },
                    Ok(m) => refused.push(InputError::NotAFile { path: p, what: kind_of(m.file_type()) }),
                    Err(e) => refused.push(InputError::Unreadable { path: p, reason: reason(&e) }),
                }
            }
        }
        Ok((ok, refused))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::symlink;

    use super::*;

    fn fifo(p: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .expect("mkfifo");
    }

    struct Tree {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn tree() -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("photos");
        let outside = dir.path().join("secret");
        std::fs::create_dir_all(root.join("2024/trip")).expect("dirs");
        std::fs::create_dir_all(&outside).expect("outside");
        std::fs::write(root.join("a.jpg"), b"aaaa").expect("a");
        std::fs::write(root.join("2024/b.png"), b"bb").expect("b");
        std::fs::write(root.join("2024/trip/c.jpg"), b"c").expect("c");
        std::fs::write(outside.join("key.pem"), b"private").expect("key");
        Tree {
            root: root.canonicalize().expect("root"),
            outside: outside.canonicalize().expect("outside"),
            _dir: dir,
        }
    }

    #[test]
    fn a_file_inside_a_root_passes_and_opens() {
        let t = tree();
        let p = InputPolicy::new(std::slice::from_ref(&t.root), 1 << 20);
        let i = p.check(&t.root.join("2024/b.png")).expect("inside");
        assert_eq!((i.relative().as_str(), i.len), ("2024/b.png", 2));
        let mut s = String::new();
        i.open().expect("open").read_to_string(&mut s).expect("read");
        assert_eq!(s, "bb");
        // A link that stays inside the roots counts for its target.
        symlink(t.root.join("a.jpg"), t.root.join("alias.jpg")).expect("link");
        assert_eq!(p.check(&t.root.join("alias.jpg")).expect("inside").relative(), "a.jpg");
    }

    #[test]
    fn everything_else_is_refused_with_a_reason() {
        let t = tree();
        let p = InputPolicy::new(std::slice::from_ref(&t.root), 3);
        let outside = p.check(&t.outside.join("key.pem")).expect_err("outside");
        assert!(outside.to_string().ends_with("outside the configured input_roots"), "{outside}");
        symlink(t.outside.join("key.pem"), t.root.join("key.jpg")).expect("link");
        let link = p.check(&t.root.join("key.jpg")).expect_err("a link out");
        assert!(link.to_string().contains("a symbolic link to"), "{link}");
        let up = p.check(&t.root.join("2024/../../secret/key.pem")).expect_err("dot-dot");
        assert!(matches!(up, InputError::Outside { .. }), "{up}");
        fifo(&t.root.join("pipe.jpg"));
        let e = p.check(&t.root.join("pipe.jpg")).expect_err("fifo");
        assert_eq!(
            e.to_string(),
            format!("{}: a FIFO, not a regular file", t.root.join("pipe.jpg").display())
        );
        let e = p.check(&t.root.join("a.jpg")).expect_err("too large");
        assert!(e.to_string().contains("4 bytes, more than the 3-byte limit"), "{e}");
        let e = p.check(&t.root.join("nope.jpg")).expect_err("missing");
        assert!(e.to_string().ends_with("no such file"), "{e}");
        let e = p.check(&t.root.join("2024")).expect_err("folder");
        assert!(e.to_string().contains("a folder"), "{e}");
        let none = InputPolicy::new(&[], 10).check(&t.root.join("a.jpg")).expect_err("no roots");
        assert!(none.is_config() && none.to_string().contains("`input_roots`"), "{none}");
    }

    #[test]
    fn a_path_swapped_for_a_link_after_the_check_is_not_opened() {
        let t = tree();
        let p = InputPolicy::new(std::slice::from_ref(&t.root), 1 << 20);
        let i = p.check(&t.root.join("a.jpg")).expect("inside");
        std::fs::remove_file(t.root.join("a.jpg")).expect("rm");
        symlink(t.outside.join("key.pem"), t.root.join("a.jpg")).expect("swap");
        let e = i.open().expect_err("a link now");
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }

    #[test]
    fn a_folder_walk_lists_files_in_order_and_the_refused_with_reasons() {
        let t = tree();
        fifo(&t.root.join("2024/pipe"));
        symlink(&t.outside, t.root.join("2024/escape")).expect("folder link");
        symlink(t.outside.join("key.pem"), t.root.join("zz.jpg")).expect("file link");
        let p = InputPolicy::new(std::slice::from_ref(&t.root), 1 << 20);
        let (ok, refused) = p.walk(&t.root).expect("walk");
        let names: Vec<String> = ok.iter().map(LocalInput::relative).collect();
        assert_eq!(names, ["a.jpg", "2024/b.png", "2024/trip/c.jpg"]);
        let reasons: Vec<String> = refused.iter().map(ToString::to_string).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("pipe") && r.contains("FIFO")), "{reasons:?}");
        assert!(
            reasons.iter().filter(|r| r.contains("outside the configured input_roots")).count() == 2,
            "{reasons:?}"
        );
        assert!(p.walk(&t.outside).is_err(), "a folder outside the roots is not walked");
    }
}
