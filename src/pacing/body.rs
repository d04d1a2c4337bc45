//! Request bodies: bytes, a file streamed with a known length, and
//! `multipart/form-data` with file parts.
//!
//! Owns turning a body description into the bytes on the wire. A body is
//! data, not an open stream, so that the pacer can send it again on a
//! retry: a file is opened anew for every attempt. Invariant: the length
//! announced in `Content-Length` is the length sent; a file that changed
//! size since the request was described fails the attempt instead of
//! sending a short or long body, and a file is never opened through a
//! symbolic link.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

/// What a request sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// These bytes.
    Bytes(Vec<u8>),
    /// A local file, `len` bytes long, streamed (an upload).
    File {
        /// The file.
        path: PathBuf,
        /// Its length when the request was described.
        len: u64,
    },
    /// `multipart/form-data`.
    Multipart(Multipart),
}

/// A `multipart/form-data` body (RFC 7578).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    /// The boundary; random, so that no part's content contains it by
    /// chance (a part that does is refused when the body is built).
    boundary: String,
    /// The parts, in order.
    parts: Vec<Part>,
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    /// The form field's name.
    name: String,
    /// The file name the server sees, for a file part.
    filename: Option<String>,
    /// The part's media type, for a file part.
    content_type: Option<String>,
    /// The content.
    data: PartData,
}

/// The content of a part.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PartData {
    /// Inline bytes (a text field).
    Bytes(Vec<u8>),
    /// A local file of a known length.
    File(PathBuf, u64),
}

impl Default for Multipart {
    fn default() -> Multipart {
        Multipart::new()
    }
}

impl Multipart {
    /// An empty form with a fresh boundary.
    pub fn new() -> Multipart {
        let boundary = format!("spoolfetch-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        Multipart { boundary, parts: Vec::new() }
    }

    /// Adds a text field.
    #[must_use]
    pub fn text(mut self, name: impl Into<String>, value: impl Into<String>) -> Multipart {
        let data = PartData::Bytes(value.into().into_bytes());
        self.parts.push(Part { name: name.into(), filename: None, content_type: None, data });
        self
    }

    /// Adds a file part whose content is the file at `path` (`len` bytes
    /// long), sent as `filename` with media type `content_type`.
    #[must_use]
    pub fn file(
        mut self,
        name: impl Into<String>,
        path: impl Into<PathBuf>,
        len: u64,
        filename: impl Into<String>,
        content_type: impl Into<String>,
    ) -> Multipart {
        self.parts.push(Part {
            name: name.into(),
            filename: Some(filename.into()),
            content_type: Some(content_type.into()),
            data: PartData::File(path.into(), len),
        });
        self
    }

    /// The `Content-Type` header value.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The head of a part: boundary line and headers.
    fn head(&self, p: &Part) -> Vec<u8> {
        let mut h =
            format!("--{}\r\nContent-Disposition: form-data; name=\"{}\"", self.boundary, quote(&p.name));
        if let Some(f) = &p.filename {
            h.push_str(&format!("; filename=\"{}\"", quote(f)));
        }
        h.push_str("\r\n");
        if let Some(t) = &p.content_type {
            h.push_str(&format!("Content-Type: {}\r\n", t.replace(['\r', '\n'], "")));
        }
        h.push_str("\r\n");
        h.into_bytes()
    }

    /// The last line.
    fn tail(&self) -> Vec<u8> {
        format!("--{}--\r\n", self.boundary).into_bytes()
    }

    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        let parts: u64 = self
            .parts
            .iter()
            .map(|p| {
                let data = match &p.data {
                    PartData::Bytes(b) => b.len() as u64,
                    PartData::File(_, len) => *len,
                };
                self.head(p).len() as u64 + data + 2
            })
            .sum();
        parts + self.tail().len() as u64
    }

    /// Whether the form has no parts.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// A header parameter value with its quotes and line breaks escaped
/// (RFC 7578 §4.2 leaves this to the sender; browsers percent-encode).
fn quote(s: &str) -> String {
    s.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

impl Body {
    /// The length that `Content-Length` announces.
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
            Body::Multipart(m) => m.len(),
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when the body is in memory.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Body::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// A reader of exactly [`Body::len`] bytes for one attempt; files are
    /// opened now, without following links, and checked against the
    /// length described.
    pub fn reader(&self) -> io::Result<Box<dyn Read + Send>> {
        match self {
            Body::Bytes(b) => Ok(Box::new(Cursor::new(b.clone()))),
            Body::File { path, len } => Ok(Box::new(open_exact(path, *len)?)),
            Body::Multipart(m) => {
                let mut chain: Box<dyn Read + Send> = Box::new(io::empty());
                for p in &m.parts {
                    let data: Box<dyn Read + Send> = match &p.data {
                        PartData::Bytes(b) => {
                            if contains(b, m.boundary.as_bytes()) {
                                return Err(io::Error::new(
                                    io::ErrorKind::InvalidInput,
                                    "a form field contains the multipart boundary",
                                ));
                            }
                            Box::new(Cursor::new(b.clone()))
                        }
                        PartData::File(path, len) => Box::new(open_exact(path, *len)?),
                    };
                    chain = Box::new(chain.chain(Cursor::new(m.head(p))).chain(data).chain(&b"\r\n"[..]));
                }
                Ok(Box::new(chain.chain(Cursor::new(m.tail()))))
            }
        }
    }
}

/// Whether `hay` contains `needle`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Opens a regular file without following a symbolic link and checks that
/// it still has `len` bytes; the reader then yields exactly `len` bytes or
/// fails.
fn open_exact(path: &Path, len: u64) -> io::Result<Exact> {
    let file = crate::durable::open_regular_nofollow(path)?;
    let now = file.metadata()?.len();
    if now != len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} changed size ({len} bytes when described, {now} now)", path.display()),
        ));
    }
    Ok(Exact { file, left: len })
}

/// A file reader that fails rather than end early.
struct Exact {
    /// The open file.
    file: File,
    /// Bytes still to send.
    left: u64,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was sent"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(b: &Body) -> Vec<u8> {
        let mut out = Vec::new();
        b.reader().expect("reader").read_to_end(&mut out).expect("read");
        out
    }

    #[test]
    fn a_multipart_body_is_as_long_as_it_says_and_well_formed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.jpg");
        std::fs::write(&f, b"\xff\xd8JPEGDATA").expect("write");
        let m = Multipart::new().text("sync", "0").file("image_file", &f, 10, "a \"b\".jpg", "image/jpeg");
        let boundary = m.boundary.clone();
        let body = Body::Multipart(m);
        let bytes = all(&body);
        assert_eq!(bytes.len() as u64, body.len());
        let text = String::from_utf8_lossy(&bytes);
        let want = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"sync\"\r\n\r\n0\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"image_file\"; filename=\"a %22b%22.jpg\"\r\n\
             Content-Type: image/jpeg\r\n\r\n\u{fffd}\u{fffd}JPEGDATA\r\n--{boundary}--\r\n"
        );
        assert_eq!(text, want);
        // A second attempt reads the same bytes again.
        assert_eq!(all(&body), bytes);
    }

    #[test]
    fn a_file_that_changed_size_or_is_a_link_is_not_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.bin");
        std::fs::write(&f, b"12345").expect("write");
        assert_eq!(all(&Body::File { path: f.clone(), len: 5 }), b"12345");
        let e = Body::File { path: f.clone(), len: 4 }.reader().err().expect("size changed");
        assert!(e.to_string().contains("changed size"), "{e}");
        let link = dir.path().join("link.bin");
        std::os::unix::fs::symlink(&f, &link).expect("symlink");
        assert!(Body::File { path: link, len: 5 }.reader().is_err(), "a link is not followed");
    }
}
