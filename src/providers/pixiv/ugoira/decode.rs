//! Decoding one frame (JPEG, PNG or GIF, told apart by their magic bytes)
//! to 8-bit RGB or RGBA pixels.
//!
//! Every decoder runs under a pixel cap and inside `catch_unwind`, so a
//! hostile frame yields [`ConvertError::Frame`], never a huge allocation or
//! a panic that takes down the worker thread.

use std::io::Cursor;
use std::num::NonZeroU64;
use std::panic::{AssertUnwindSafe, catch_unwind};

use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use super::ConvertError;

/// Largest decoded frame, in pixels: 64 Mpx (256 MiB as RGBA).
pub(crate) const MAX_PIXELS: u64 = 1 << 26;

/// Largest frame side, in pixels.
const MAX_SIDE: u32 = 1 << 15;

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Image {
    /// Width in pixels.
    pub(crate) width: u32,
    /// Height in pixels.
    pub(crate) height: u32,
    /// True for RGBA pixels, false for RGB.
    pub(crate) alpha: bool,
    /// Rows top to bottom, no padding.
    pub(crate) pixels: Vec<u8>,
}

impl Image {
    /// The pixels as RGBA (copied and expanded when they are RGB).
    pub(crate) fn into_rgba(self) -> Vec<u8> {
        if self.alpha {
            return self.pixels;
        }
        let mut out = Vec::with_capacity(self.pixels.len() / 3 * 4);
        for p in self.pixels.chunks_exact(3) {
            out.extend_from_slice(&[p[0], p[1], p[2], 0xFF]);
        }
        out
    }

    /// Writes the pixels as RGB into `out` (cleared first), dropping alpha.
    pub(crate) fn rgb_into(&self, out: &mut Vec<u8>) {
        out.clear();
        if self.alpha {
            out.reserve(self.pixels.len() / 4 * 3);
            for p in self.pixels.chunks_exact(4) {
                out.extend_from_slice(&p[..3]);
            }
        } else {
            out.extend_from_slice(&self.pixels);
        }
    }
}

/// The formats frames come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (`89 'PNG' 0D 0A 1A 0A`).
    Png,
    /// GIF (`GIF87a`, `GIF89a`).
    Gif,
}

impl Kind {
    /// Tells the format from the first bytes of a file.
    pub(crate) fn sniff(bytes: &[u8]) -> Option<Kind> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Kind::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Kind::Png)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Kind::Gif)
        } else {
            None
        }
    }

    /// The usual file extension.
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Kind::Jpeg => "jpg",
            Kind::Png => "png",
            Kind::Gif => "gif",
        }
    }
}

/// Decodes one frame; `file` names it in errors.
pub(crate) fn decode(file: &str, bytes: &[u8]) -> Result<Image, ConvertError> {
    let kind = Kind::sniff(bytes).ok_or_else(|| ConvertError::frame(file, "not a jpeg, png or gif image"))?;
    let result = catch_unwind(AssertUnwindSafe(|| match kind {
        Kind::Jpeg => decode_jpeg(bytes),
        Kind::Png => decode_png(bytes),
        Kind::Gif => decode_gif(bytes),
    }));
    match result {
        Ok(Ok(img)) => Ok(img),
        Ok(Err(reason)) => Err(ConvertError::frame(file, format!("{}: {reason}", kind.extension()))),
        Err(_) => Err(ConvertError::frame(file, format!("{} decoder panicked", kind.extension()))),
    }
}

/// Checks a frame's size against the caps.
fn check_size(width: u32, height: u32) -> Result<(), String> {
    if width == 0 || height == 0 {
        return Err(format!("empty image ({width}x{height})"));
    }
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!(
            "{width}x{height} is over the cap of {MAX_SIDE} per side and {MAX_PIXELS} pixels"
        ));
    }
    Ok(())
}

/// Returns a buffer of exactly `len` bytes, or an error if it is not
/// `expected` (a decoder disagreeing with its own header).
fn checked_len(len: usize, expected: u64) -> Result<usize, String> {
    if len as u64 == expected {
        Ok(len)
    } else {
        Err(format!("decoder wants {len} bytes, expected {expected}"))
    }
}

fn decode_jpeg(bytes: &[u8]) -> Result<Image, String> {
    let options = DecoderOptions::new_fast()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_SIDE as usize)
        .set_max_height(MAX_SIDE as usize);
    let mut d = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    d.decode_headers().map_err(|e| format!("{e:?}").to_lowercase())?;
    let info = d.info().ok_or("no image header")?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    check_size(width, height)?;
    let len = d.output_buffer_size().ok_or("size overflows")?;
    let len = checked_len(len, u64::from(width) * u64::from(height) * 3)?;
    let mut pixels = vec![0u8; len];
    d.decode_into(&mut pixels).map_err(|e| format!("{e:?}").to_lowercase())?;
    Ok(Image { width, height, alpha: false, pixels })
}

fn decode_png(bytes: &[u8]) -> Result<Image, String> {
    let limits = png::Limits { bytes: (MAX_PIXELS * 4) as usize + (1 << 20) };
    let mut d = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    d.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = d.read_info().map_err(|e| e.to_string().to_lowercase())?;
    let (width, height) = reader.info().size();
    check_size(width, height)?;
    let len = reader.output_buffer_size().ok_or("size overflows")?;
    let mut buf = vec![0u8; len];
    let out = reader.next_frame(&mut buf).map_err(|e| e.to_string().to_lowercase())?;
    buf.truncate(out.buffer_size());
    let px = u64::from(width) * u64::from(height);
    let (alpha, pixels) = match out.color_type {
        png::ColorType::Rgb => (false, buf),
        png::ColorType::Rgba => (true, buf),
        png::ColorType::Grayscale => (false, buf.iter().flat_map(|&g| [g, g, g]).collect()),
        png::ColorType::GrayscaleAlpha => {
            (true, buf.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect::<Vec<u8>>())
        }
        png::ColorType::Indexed => return Err("indexed colour left after expansion".into()),
    };
    checked_len(pixels.len(), px * if alpha { 4 } else { 3 })?;
    Ok(Image { width, height, alpha, pixels })
}

/// Decodes the first image of a GIF onto its logical screen (transparent
/// where the image does not cover it).
fn decode_gif(bytes: &[u8]) -> Result<Image, String> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    options.set_memory_limit(gif::MemoryLimit::Bytes(
        NonZeroU64::new(MAX_PIXELS * 4).ok_or("zero memory limit")?,
    ));
    let mut d = options.read_info(bytes).map_err(|e| e.to_string().to_lowercase())?;
    let (sw, sh) = (u32::from(d.width()), u32::from(d.height()));
    let frame =
        d.read_next_frame().map_err(|e| e.to_string().to_lowercase())?.ok_or("no image in the gif")?;
    let (fw, fh) = (u32::from(frame.width), u32::from(frame.height));
    let (left, top) = (u32::from(frame.left), u32::from(frame.top));
    // A logical screen of 0x0 is invalid but seen: use the image's size.
    let (width, height) = if sw == 0 || sh == 0 { (fw, fh) } else { (sw, sh) };
    check_size(width, height)?;
    checked_len(frame.buffer.len(), u64::from(fw) * u64::from(fh) * 4)?;
    let mut pixels = vec![0u8; (u64::from(width) * u64::from(height) * 4) as usize];
    let row = |y: u32, x0: u32, n: u32| ((y * width + x0) * 4) as usize..((y * width + x0 + n) * 4) as usize;
    let visible_w = fw.min(width.saturating_sub(left));
    for y in 0..fh.min(height.saturating_sub(top)) {
        let src = (y * fw * 4) as usize..((y * fw + visible_w) * 4) as usize;
        pixels[row(top + y, left, visible_w)].copy_from_slice(&frame.buffer[src]);
    }
    Ok(Image { width, height, alpha: true, pixels })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::pixiv::ugoira::testutil::{gif_image, jpeg, jpeg_gray, png_gray, png_rgba};

    #[test]
    fn jpeg_rgb_and_gray() {
        let img = decode("a.jpg", &jpeg(33, 17, 5)).expect("decode");
        assert_eq!((img.width, img.height, img.alpha, img.pixels.len()), (33, 17, false, 33 * 17 * 3));
        let img = decode("g.jpg", &jpeg_gray(20, 10)).expect("decode gray");
        assert_eq!((img.width, img.height, img.pixels.len()), (20, 10, 20 * 10 * 3));
    }

    #[test]
    fn png_rgba_and_gray() {
        let img = decode("a.png", &png_rgba(5, 4)).expect("decode");
        assert_eq!((img.width, img.height, img.alpha), (5, 4, true));
        assert_eq!(&img.pixels[..8], &[0, 0, 200, 0, 50, 0, 200, 255]);
        let img = decode("g.png", &png_gray(3, 2)).expect("decode gray");
        assert_eq!((img.alpha, img.pixels.len()), (false, 18));
    }

    #[test]
    fn gif_frame_lands_on_its_screen() {
        // 6x5 screen, 2x2 image at (3, 2).
        let img = decode("a.gif", &gif_image(6, 5, 3, 2, 2, 2)).expect("decode");
        assert_eq!((img.width, img.height, img.alpha), (6, 5, true));
        let at = |x: usize, y: usize| &img.pixels[(y * 6 + x) * 4..(y * 6 + x) * 4 + 4];
        assert_eq!(at(0, 0)[3], 0, "outside the image is transparent");
        assert_eq!(at(3, 2), &[255, 0, 0, 255]);
        assert_eq!(at(4, 3), &[255, 0, 0, 255]);
        // An image sticking out of its screen is clipped, not a panic.
        let img = decode("b.gif", &gif_image(4, 4, 3, 3, 5, 5)).expect("decode clipped");
        assert_eq!(img.pixels.len(), 64);
    }

    #[test]
    fn bad_frames_are_errors() {
        let err = decode("x.jpg", b"hello").expect_err("not an image");
        assert!(
            matches!(&err, ConvertError::Frame { file, reason } if file == "x.jpg" && reason.contains("not a"))
        );
        let mut j = jpeg(64, 64, 1);
        let n = j.len();
        for b in &mut j[200..n - 2] {
            *b = 0xFF;
        }
        assert!(matches!(decode("c.jpg", &j), Err(ConvertError::Frame { .. })), "corrupt jpeg");
        let j = jpeg(64, 64, 1);
        assert!(matches!(decode("t.jpg", &j[..20]), Err(ConvertError::Frame { .. })), "truncated jpeg");
        let p = png_rgba(8, 8);
        assert!(
            matches!(decode("t.png", &p[..p.len() - 20]), Err(ConvertError::Frame { .. })),
            "truncated png"
        );
    }

    #[test]
    fn huge_declared_size_is_refused() {
        // A PNG header claiming 40000x40000 and no data.
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&40000u32.to_be_bytes());
        ihdr.extend_from_slice(&40000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0d".to_vec();
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        png.extend_from_slice(b"\0\0\0\0IDAT");
        png.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
        let err = decode("big.png", &png).expect_err("too big");
        assert!(matches!(&err, ConvertError::Frame { reason, .. } if reason.contains("cap")), "{err}");
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
