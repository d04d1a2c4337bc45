//! Test fixtures: small real JPEG, PNG and GIF frames, and zips of them.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::Frame;

/// A `w`x`h` baseline JPEG (quality 90) with a gradient that `seed` shifts.
pub(crate) fn jpeg(w: u16, h: u16, seed: u8) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(usize::from(w) * usize::from(h) * 3);
    for y in 0..h {
        for x in 0..w {
            rgb.extend_from_slice(&[
                (x as u8).wrapping_mul(4).wrapping_add(seed.wrapping_mul(50)),
                (y as u8).wrapping_mul(6),
                seed.wrapping_mul(60),
            ]);
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("jpeg encode");
    out
}

/// A `w`x`h` grayscale JPEG.
pub(crate) fn jpeg_gray(w: u16, h: u16) -> Vec<u8> {
    let luma: Vec<u8> = (0..usize::from(w) * usize::from(h)).map(|i| i as u8).collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&luma, w, h, jpeg_encoder::ColorType::Luma)
        .expect("jpeg encode");
    out
}

/// A `w`x`h` RGBA PNG: pixel (x, y) is `[50x, 0, 200, 255]`, except (0, 0),
/// which is fully transparent.
pub(crate) fn png_rgba(w: u32, h: u32) -> Vec<u8> {
    let mut px = Vec::new();
    for _y in 0..h {
        for x in 0..w {
            px.extend_from_slice(&[(x * 50) as u8, 0, 200, 255]);
        }
    }
    px[3] = 0;
    png_bytes(w, h, png::ColorType::Rgba, &px)
}

/// A `w`x`h` grayscale PNG.
pub(crate) fn png_gray(w: u32, h: u32) -> Vec<u8> {
    png_bytes(w, h, png::ColorType::Grayscale, &vec![128; (w * h) as usize])
}

fn png_bytes(w: u32, h: u32, color: png::ColorType, px: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, w, h);
    e.set_color(color);
    e.set_depth(png::BitDepth::Eight);
    let mut wr = e.write_header().expect("png header");
    wr.write_image_data(px).expect("png data");
    wr.finish().expect("png finish");
    out
}

/// A GIF with a `sw`x`sh` screen and one red `fw`x`fh` image at
/// (`left`, `top`).
pub(crate) fn gif_image(sw: u16, sh: u16, left: u16, top: u16, fw: u16, fh: u16) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = gif::Encoder::new(&mut out, sw, sh, &[]).expect("gif header");
        let mut f = gif::Frame::from_palette_pixels(
            fw,
            fh,
            vec![0; usize::from(fw) * usize::from(fh)],
            [255, 0, 0],
            None,
        );
        f.left = left;
        f.top = top;
        e.write_frame(&f).expect("gif frame");
    }
    out
}

/// Writes a zip of `entries` (a name ending in `/` is a folder), stored or
/// deflated.
pub(crate) fn write_zip(path: &Path, entries: &[(&str, &[u8])], deflate: bool) {
    let method = if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
    let options = zip::write::SimpleFileOptions::default().compression_method(method).large_file(true);
    let mut w = zip::ZipWriter::new(File::create(path).expect("create zip"));
    for (name, bytes) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, options).expect("zip dir");
        } else {
            w.start_file(*name, options).expect("zip entry");
            w.write_all(bytes).expect("zip data");
        }
    }
    w.finish().expect("zip finish");
}

/// A frame list from (name, delay) pairs.
pub(crate) fn frames(list: &[(&str, u32)]) -> Vec<Frame> {
    list.iter().map(|(f, d)| Frame { file: (*f).to_owned(), delay: *d }).collect()
}

/// The sorted names in a folder.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
