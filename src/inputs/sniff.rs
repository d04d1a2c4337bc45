//! What an input file is, by its bytes: image kind, dimensions, and
//! whether it is complete.
//!
//! Owns the content check for jobs that send images to a service that
//! charges for them: a file is an image because its bytes say so, never
//! because of its name, and a truncated image is refused before it is
//! uploaded (the service would fail it, or worse, charge for garbage).
//! Invariant: only the first and the last bytes of a file are read, so
//! checking a folder of large photos costs two small reads each.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// Bytes read from the start of a file: enough for every header here
/// and for the JPEG frame header behind large EXIF blocks in most photos.
const HEAD: usize = 256 * 1024;
/// Bytes read from the end of a file, to find the end marker.
const TAIL: usize = 1024;

/// An image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// WebP (lossy, lossless or extended).
    Webp,
    /// Windows bitmap.
    Bmp,
    /// GIF.
    Gif,
}

impl ImageKind {
    /// Its media type, as an upload's `Content-Type`.
    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Webp => "image/webp",
            ImageKind::Bmp => "image/bmp",
            ImageKind::Gif => "image/gif",
        }
    }

    /// Its usual file extension.
    pub fn ext(self) -> &'static str {
        match self {
            ImageKind::Png => "png",
            ImageKind::Jpeg => "jpg",
            ImageKind::Webp => "webp",
            ImageKind::Bmp => "bmp",
            ImageKind::Gif => "gif",
        }
    }
}

/// What the bytes of an image file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// The format.
    pub kind: ImageKind,
    /// Width in pixels (0 when the header does not tell).
    pub width: u32,
    /// Height in pixels (0 when the header does not tell).
    pub height: u32,
}

impl ImageInfo {
    /// The longer side in pixels.
    pub fn long_edge(&self) -> u32 {
        self.width.max(self.height)
    }
}

/// Why a file is not taken as an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAnImage {
    /// Its first bytes are no image format this build reads.
    Unknown,
    /// An image whose end is missing (a partial copy or download).
    Truncated(ImageKind),
    /// It could not be read.
    Io(String),
}

impl std::fmt::Display for NotAnImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotAnImage::Unknown => f.write_str("not an image (PNG, JPEG, WebP, BMP or GIF) by its content"),
            NotAnImage::Truncated(k) => {
                write!(f, "a truncated {} image (its end is missing)", k.ext().to_uppercase())
            }
            NotAnImage::Io(e) => write!(f, "cannot read it: {e}"),
        }
    }
}

/// Reads the head and tail of `file` (of `len` bytes) and tells what
/// image it holds.
pub fn sniff_file(file: &mut File, len: u64) -> Result<ImageInfo, NotAnImage> {
    let io = |e: io::Error| NotAnImage::Io(e.to_string());
    let mut head = Vec::with_capacity(HEAD.min(len as usize));
    file.by_ref().take(HEAD as u64).read_to_end(&mut head).map_err(io)?;
    let tail = if len as usize <= head.len() {
        head[head.len().saturating_sub(TAIL)..].to_vec()
    } else {
        file.seek(SeekFrom::Start(len.saturating_sub(TAIL as u64))).map_err(io)?;
        let mut t = Vec::with_capacity(TAIL);
        file.by_ref().take(TAIL as u64).read_to_end(&mut t).map_err(io)?;
        t
    };
    sniff(&head, &tail, len)
}

/// Tells what image the bytes hold: `head` from the start of the file,
/// `tail` from its end, `len` its size.
pub fn sniff(head: &[u8], tail: &[u8], len: u64) -> Result<ImageInfo, NotAnImage> {
    let info = header(head).ok_or(NotAnImage::Unknown)?;
    if complete(info.kind, head, tail, len) { Ok(info) } else { Err(NotAnImage::Truncated(info.kind)) }
}

/// The format and dimensions from the first bytes.
fn header(h: &[u8]) -> Option<ImageInfo> {
    let be32 = |o: usize| h.get(o..o + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let le16 = |o: usize| h.get(o..o + 2).map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])));
    let le32 = |o: usize| h.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let le24 = |o: usize| h.get(o..o + 3).map(|b| u32::from_le_bytes([b[0], b[1], b[2], 0]));
    let info = |kind, width, height| Some(ImageInfo { kind, width, height });
    if h.starts_with(b"\x89PNG\r\n\x1a\n") {
        return info(ImageKind::Png, be32(16)?, be32(20)?);
    }
    if h.starts_with(b"GIF87a") || h.starts_with(b"GIF89a") {
        return info(ImageKind::Gif, le16(6)?, le16(8)?);
    }
    if h.starts_with(b"BM") && h.len() >= 26 {
        // BITMAPINFOHEADER and later: signed 32-bit sizes, negative height
        // for top-down bitmaps.
        let w = le32(18)?;
        let hgt = le32(22)? as i32;
        return info(ImageKind::Bmp, w, hgt.unsigned_abs());
    }
    if h.len() >= 16 && &h[0..4] == b"RIFF" && &h[8..12] == b"WEBP" {
        let (w, hgt) = match &h[12..16] {
            b"VP8 " => (le16(26)? & 0x3fff, le16(28)? & 0x3fff),
            b"VP8L" => {
                let b = le32(21)?;
                ((b & 0x3fff) + 1, ((b >> 14) & 0x3fff) + 1)
            }
            b"VP8X" => (le24(24)? + 1, le24(27)? + 1),
            _ => (0, 0),
        };
        return info(ImageKind::Webp, w, hgt);
    }
    if h.starts_with(&[0xff, 0xd8, 0xff]) {
        let (w, hgt) = jpeg_size(h).unwrap_or((0, 0));
        return info(ImageKind::Jpeg, w, hgt);
    }
    None
}

/// A JPEG's size from its first frame header (SOF0 to SOF15 but DHT,
/// JPG and DAC), walking the marker segments.
fn jpeg_size(h: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    while i + 4 <= h.len() {
        if h[i] != 0xff {
            return None;
        }
        let marker = h[i + 1];
        if marker == 0xff {
            // Fill bytes before a marker.
            i += 1;
            continue;
        }
        let seg = usize::from(u16::from_be_bytes([h[i + 2], h[i + 3]]));
        if (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker) {
            let b = h.get(i + 5..i + 9)?;
            let height = u32::from(u16::from_be_bytes([b[0], b[1]]));
            let width = u32::from(u16::from_be_bytes([b[2], b[3]]));
            return Some((width, height));
        }
        if marker == 0xda || seg < 2 {
            return None;
        }
        i += 2 + seg;
    }
    None
}

/// Whether the file ends as its format says it must.
fn complete(kind: ImageKind, head: &[u8], tail: &[u8], len: u64) -> bool {
    match kind {
        ImageKind::Png => tail.ends_with(b"IEND\xae\x42\x60\x82"),
        // Cameras and editors leave padding or a second image after the
        // end marker; the marker somewhere in the last bytes will do.
        ImageKind::Jpeg => tail.windows(2).any(|w| w == [0xff, 0xd9]),
        ImageKind::Gif => tail.iter().rev().find(|b| **b != 0).is_some_and(|b| *b == 0x3b),
        ImageKind::Webp => {
            let riff = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
            len >= riff + 8
        }
        ImageKind::Bmp => {
            let declared =
                head.get(2..6).map_or(0, |b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            // Some writers leave the field 0.
            declared == 0 || len >= declared
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(b"\0\0\0\0IEND\xae\x42\x60\x82");
        v
    }

    fn whole(b: &[u8]) -> Result<ImageInfo, NotAnImage> {
        sniff(b, &b[b.len().saturating_sub(TAIL)..], b.len() as u64)
    }

    #[test]
    fn formats_and_sizes_come_from_the_bytes() {
        assert_eq!(whole(&png(640, 480)), Ok(ImageInfo { kind: ImageKind::Png, width: 640, height: 480 }));
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&[0x20, 0x03, 0x58, 0x02, 0, 0, 0, 0x3b]);
        assert_eq!(whole(&gif), Ok(ImageInfo { kind: ImageKind::Gif, width: 800, height: 600 }));
        // A JPEG with an APP0 segment, then SOF0 of 1024 × 768.
        let mut jpg = vec![0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xc0, 0, 11, 8, 0x03, 0x00, 0x04, 0x00];
        jpg.extend_from_slice(&[3, 0, 0, 0, 0, 0xff, 0xd9]);
        assert_eq!(whole(&jpg), Ok(ImageInfo { kind: ImageKind::Jpeg, width: 1024, height: 768 }));
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&26u32.to_le_bytes());
        bmp.extend_from_slice(&[0; 12]);
        bmp.extend_from_slice(&100u32.to_le_bytes());
        bmp.extend_from_slice(&(-50i32).to_le_bytes());
        assert_eq!(whole(&bmp), Ok(ImageInfo { kind: ImageKind::Bmp, width: 100, height: 50 }));
        let mut webp = b"RIFF".to_vec();
        webp.extend_from_slice(&22u32.to_le_bytes());
        webp.extend_from_slice(b"WEBPVP8X");
        webp.extend_from_slice(&[10, 0, 0, 0, 0, 0, 0, 0]);
        webp.extend_from_slice(&[0xff, 0x01, 0, 0x3f, 0x01, 0]);
        assert_eq!(whole(&webp), Ok(ImageInfo { kind: ImageKind::Webp, width: 512, height: 320 }));
    }

    #[test]
    fn names_do_not_matter_and_truncation_is_seen() {
        assert_eq!(whole(b"hello, this is a text file named photo.jpg"), Err(NotAnImage::Unknown));
        let p = png(10, 10);
        let cut = &p[..p.len() - 5];
        assert_eq!(whole(cut), Err(NotAnImage::Truncated(ImageKind::Png)));
        let jpg = [0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0x12, 0x34];
        assert_eq!(whole(&jpg), Err(NotAnImage::Truncated(ImageKind::Jpeg)));
    }

    #[test]
    fn a_file_is_read_at_both_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.bin");
        let mut big = png(4000, 3000);
        let end = big.split_off(big.len() - 12);
        big.resize(600_000, 0);
        big.extend_from_slice(&end);
        std::fs::write(&path, &big).expect("write");
        let mut f = File::open(&path).expect("open");
        let info = sniff_file(&mut f, big.len() as u64).expect("an image");
        assert_eq!((info.kind, info.long_edge()), (ImageKind::Png, 4000));
    }
}
