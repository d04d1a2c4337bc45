//! The one error type of ugoira conversion, and which of its cases are
//! worth retrying.

use std::fmt;
use std::io;

/// Why a conversion failed.
///
/// Only [`ConvertError::Io`] is transient (a full disk, a NAS that went
/// away); every other case is a property of the input or of the machine that
/// a retry will not change.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConvertError {
    /// The zip cannot be read as a zip, has an unsafe entry name (`../x`,
    /// `/etc/x`), holds no frames, or is over the size caps in total.
    Zip(String),
    /// One frame is missing from the zip, over the per-entry size cap, not
    /// an image, corrupt, or of a different size than the first frame.
    Frame {
        /// The frame's file name inside the zip.
        file: String,
        /// What is wrong with it, lowercase.
        reason: String,
    },
    /// The encoder refused the frames (a GIF wider than 65535 pixels, say),
    /// or the output path is unusable.
    Encode(String),
    /// Reading the zip or writing the output failed at the operating-system
    /// level.
    Io(io::Error),
    /// WebP output needs `ffmpeg`, and no `ffmpeg` is on `PATH`.
    FfmpegMissing,
    /// `ffmpeg` failed, was killed by the timeout, or wrote no output.
    Ffmpeg(String),
}

impl ConvertError {
    /// Returns true if retrying the same conversion later may succeed: only
    /// for I/O errors.
    pub fn is_transient(&self) -> bool {
        matches!(self, ConvertError::Io(_))
    }

    /// Builds a [`ConvertError::Frame`].
    pub(crate) fn frame(file: &str, reason: impl Into<String>) -> Self {
        ConvertError::Frame { file: file.to_owned(), reason: reason.into() }
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvertError::Zip(m) => write!(f, "ugoira zip: {}", one_line(m)),
            ConvertError::Frame { file, reason } => {
                write!(f, "ugoira frame {:?}: {}", file, one_line(reason))
            }
            ConvertError::Encode(m) => write!(f, "ugoira encoding: {}", one_line(m)),
            ConvertError::Io(e) => write!(f, "ugoira i/o: {}", one_line(&e.to_string())),
            ConvertError::FfmpegMissing => f.write_str(
                "webp output needs ffmpeg, which is not on PATH: install ffmpeg or choose gif or apng",
            ),
            ConvertError::Ffmpeg(m) => write!(f, "ffmpeg: {}", one_line(m)),
        }
    }
}

impl std::error::Error for ConvertError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConvertError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ConvertError {
    fn from(e: io::Error) -> Self {
        ConvertError::Io(e)
    }
}

/// Joins the lines of a message (ffmpeg's stderr, a decoder's report) so
/// that every error displays as one line.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<ConvertError> {
        vec![
            ConvertError::Zip("no frames".into()),
            ConvertError::frame("000001.jpg", "not in the zip"),
            ConvertError::Encode("frame is 70000x10, gif allows at most 65535x65535".into()),
            ConvertError::Io(io::Error::other("disk full")),
            ConvertError::FfmpegMissing,
            ConvertError::Ffmpeg("exited with status 1:\nbad input\n\nmore".into()),
        ]
    }

    #[test]
    fn display_is_one_lowercase_line() {
        for e in all() {
            let s = e.to_string();
            assert!(!s.contains('\n'), "{s:?}");
            let first = s.chars().next().expect("non-empty");
            assert!(first.is_lowercase(), "{s:?}");
        }
        assert_eq!(
            ConvertError::Ffmpeg("exited with status 1:\nbad input\n\nmore".into()).to_string(),
            "ffmpeg: exited with status 1:; bad input; more"
        );
        assert!(ConvertError::FfmpegMissing.to_string().contains("install ffmpeg or choose gif or apng"));
    }

    #[test]
    fn only_io_is_transient() {
        let transient: Vec<bool> = all().iter().map(ConvertError::is_transient).collect();
        assert_eq!(transient, [false, false, false, true, false, false]);
    }
}
