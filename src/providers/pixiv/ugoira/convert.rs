//! The public entry point: [`convert_ugoira`] and its argument types.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::Instant;

use super::output::TempOut;
use super::source::{Limits, UgoiraZip};
use super::{ConvertError, encode, ffmpeg};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UgoiraFormat {
    /// Animated GIF, pure Rust: 256 colours per frame (NeuQuant), delays
    /// rounded to centiseconds (at least 2 cs), loops forever.
    Gif,
    /// Animated PNG, pure Rust: lossless, exact millisecond delays, loops
    /// forever; large for photographic frames.
    Apng,
    /// Animated WebP through `ffmpeg` (libwebp, quality 90), loops forever.
    Webp,
    /// Keep the zip only, no conversion: `out` becomes a checked copy of
    /// the zip.
    Zip,
}

/// One frame: file name inside the zip and its delay in ms.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Frame {
    /// Entry name in the zip, as in Pixiv's `ugoira_metadata.frames[].file`.
    pub file: String,
    /// How long the frame shows, in milliseconds.
    pub delay: u32,
}

/// Converts `zip` to `out` (written to a temporary dotfile in out's folder,
/// fsynced, renamed: never a half-written `out`).
///
/// Frames play in the order of `frames`, each for its `delay`; zip entries
/// not in `frames` are ignored, and a listed frame missing from the zip is
/// an error. With `frames` empty, the zip's JPEG, PNG and GIF entries play
/// in zip order at 100 ms each. Every frame must have the first frame's
/// size. Any entry name that could escape a folder (`../x`) makes the whole
/// zip an error, as do entries over 64 MiB or frames over 1 GiB
/// uncompressed in total.
///
/// Runs on the calling thread, one frame in memory at a time; a 100-frame
/// 1920x1080 GIF takes tens of seconds of CPU. WebP checks for ffmpeg
/// before reading the zip and kills ffmpeg after 10 minutes.
///
/// On error `out` is untouched (absent, or its old content) and no
/// temporary file or folder is left behind.
pub fn convert_ugoira(
    zip: &Path,
    frames: &[Frame],
    format: UgoiraFormat,
    out: &Path,
) -> Result<(), ConvertError> {
    if format == UgoiraFormat::Webp && !ffmpeg::ffmpeg_available() {
        return Err(ConvertError::FfmpegMissing);
    }
    let started = Instant::now();
    let mut src = UgoiraZip::open(zip, frames, Limits::DEFAULT)?;
    match format {
        UgoiraFormat::Gif => {
            let mut tmp = TempOut::create(out)?;
            encode::write_gif(&mut src, tmp.writer()?)?;
            tmp.commit()?;
        }
        UgoiraFormat::Apng => {
            let mut tmp = TempOut::create(out)?;
            encode::write_apng(&mut src, tmp.writer()?)?;
            tmp.commit()?;
        }
        UgoiraFormat::Webp => ffmpeg::write_webp(&mut src, out)?,
        UgoiraFormat::Zip => copy_zip(zip, out)?,
    }
    log::debug!(
        "ugoira {} -> {} ({format:?}, {} frames) in {:.1} s",
        zip.display(),
        out.display(),
        src.plan().len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Copies the (already checked) zip to `out`, unless they are one file.
fn copy_zip(zip: &Path, out: &Path) -> Result<(), ConvertError> {
    if same_file(zip, out)? {
        return Ok(());
    }
    let mut tmp = TempOut::create(out)?;
    io::copy(&mut File::open(zip)?, tmp.writer()?)?;
    tmp.commit()
}

/// True if `b` exists and is the same file as `a`.
fn same_file(a: &Path, b: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let a = std::fs::metadata(a)?;
    match std::fs::metadata(b) {
        Ok(b) => Ok(a.dev() == b.dev() && a.ino() == b.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::{Cursor, Read};
    use std::path::PathBuf;

    use super::*;
    use crate::providers::pixiv::ugoira::ffmpeg_available;
    use crate::providers::pixiv::ugoira::testutil::{frames, gif_image, jpeg, names, png_rgba, write_zip};

    /// A folder with `u.zip` holding four 40x30 JPEG frames, their frame
    /// list, and the folder's guard.
    fn jpeg_ugoira(deflate: bool) -> (tempfile::TempDir, PathBuf, Vec<Frame>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let z = dir.path().join("u.zip");
        let jpegs: Vec<Vec<u8>> = (0..4).map(|i| jpeg(40, 30, i)).collect();
        let names = ["000000.jpg", "000001.jpg", "000002.jpg", "000003.jpg"];
        let entries: Vec<(&str, &[u8])> =
            names.iter().copied().zip(jpegs.iter().map(Vec::as_slice)).collect();
        write_zip(&z, &entries, deflate);
        let list =
            frames(&[("000000.jpg", 60), ("000001.jpg", 70), ("000002.jpg", 15), ("000003.jpg", 1000)]);
        (dir, z, list)
    }

    /// (width, height, delays in cs) of a GIF.
    fn read_gif(path: &Path) -> (u16, u16, Vec<u16>) {
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut d = opts.read_info(File::open(path).expect("open")).expect("gif header");
        assert_eq!(d.repeat(), gif::Repeat::Infinite);
        let (w, h) = (d.width(), d.height());
        let mut delays = Vec::new();
        while let Some(f) = d.read_next_frame().expect("gif frame") {
            assert_eq!((f.width, f.height), (w, h));
            delays.push(f.delay);
        }
        (w, h, delays)
    }

    /// (width, height, colour type, num_frames, num_plays, delays as
    /// (num, den)) of an APNG, decoding every frame.
    fn read_apng(path: &Path) -> (u32, u32, png::ColorType, u32, u32, Vec<(u16, u16)>) {
        let bytes = fs::read(path).expect("read");
        let mut r = png::Decoder::new(Cursor::new(bytes)).read_info().expect("png header");
        let info = r.info();
        let (w, h, color) = (info.width, info.height, info.color_type);
        let ac = info.animation_control().expect("acTL");
        let (n, plays) = (ac.num_frames, ac.num_plays);
        let mut buf = vec![0; r.output_buffer_size().expect("size")];
        let mut delays = Vec::new();
        for _ in 0..n {
            r.next_frame(&mut buf).expect("apng frame");
            let fc = r.info().frame_control().expect("fcTL");
            assert_eq!((fc.width, fc.height), (w, h));
            delays.push((fc.delay_num, fc.delay_den));
        }
        (w, h, color, n, plays, delays)
    }

    #[test]
    fn jpeg_ugoira_to_gif() {
        for deflate in [false, true] {
            let (dir, z, list) = jpeg_ugoira(deflate);
            let out = dir.path().join("u.gif");
            convert_ugoira(&z, &list, UgoiraFormat::Gif, &out).expect("convert");
            assert_eq!(read_gif(&out), (40, 30, vec![6, 7, 2, 100]));
            assert_eq!(names(dir.path()), ["u.gif", "u.zip"]);
        }
    }

    #[test]
    fn jpeg_ugoira_to_apng() {
        let (dir, z, list) = jpeg_ugoira(false);
        let out = dir.path().join("u.png");
        convert_ugoira(&z, &list, UgoiraFormat::Apng, &out).expect("convert");
        let (w, h, color, n, plays, delays) = read_apng(&out);
        assert_eq!((w, h, color, n, plays), (40, 30, png::ColorType::Rgb, 4, 0));
        assert_eq!(delays, [(60, 1000), (70, 1000), (15, 1000), (1000, 1000)]);
        assert_eq!(names(dir.path()), ["u.png", "u.zip"]);
    }

    #[test]
    fn frame_order_comes_from_the_list() {
        let (dir, z, _) = jpeg_ugoira(false);
        let out = dir.path().join("u.gif");
        let list = frames(&[("000003.jpg", 30), ("000000.jpg", 40), ("000003.jpg", 50)]);
        convert_ugoira(&z, &list, UgoiraFormat::Gif, &out).expect("convert");
        assert_eq!(read_gif(&out).2, [3, 4, 5]);
        convert_ugoira(&z, &[], UgoiraFormat::Gif, &out).expect("convert without a list");
        assert_eq!(read_gif(&out).2, [10, 10, 10, 10]);
    }

    #[test]
    fn png_and_gif_frames() {
        let dir = tempfile::tempdir().expect("tempdir");
        let z = dir.path().join("u.zip");
        let (p, g) = (png_rgba(6, 5), gif_image(6, 5, 1, 1, 3, 3));
        write_zip(&z, &[("000000.png", &p), ("000001.png", &p), ("000002.gif", &g)], false);
        let list = frames(&[("000000.png", 100), ("000001.png", 200), ("000002.gif", 300)]);

        let apng = dir.path().join("u.apng");
        convert_ugoira(&z, &list, UgoiraFormat::Apng, &apng).expect("apng");
        let (w, h, color, n, _, delays) = read_apng(&apng);
        assert_eq!((w, h, color, n), (6, 5, png::ColorType::Rgba, 3));
        assert_eq!(delays, [(100, 1000), (200, 1000), (300, 1000)]);

        let gif = dir.path().join("u.gif");
        convert_ugoira(&z, &list, UgoiraFormat::Gif, &gif).expect("gif");
        assert_eq!(read_gif(&gif), (6, 5, vec![10, 20, 30]));
        // The transparent pixel of the PNG stays transparent in the GIF.
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut d = opts.read_info(File::open(&gif).expect("open")).expect("header");
        let f = d.read_next_frame().expect("frame").expect("first");
        assert_eq!(f.buffer[3], 0, "first pixel transparent");
        assert_eq!(f.buffer[7], 255, "second pixel opaque");
    }

    /// Runs a conversion that must fail and checks that it left no output
    /// (or the old one) and no temporary file.
    fn assert_fails_cleanly(z: &Path, list: &[Frame], format: UgoiraFormat) -> ConvertError {
        let dir = z.parent().expect("dir");
        let before = names(dir);
        let out = dir.join("out.gif");
        let err = convert_ugoira(z, list, format, &out).expect_err("must fail");
        assert!(!out.exists(), "{format:?}: output exists after {err}");
        assert_eq!(names(dir), before, "{format:?}: temporary files left after {err}");
        err
    }

    #[test]
    fn failures_leave_nothing_behind() {
        let (dir, z, mut list) = jpeg_ugoira(false);
        for format in [UgoiraFormat::Gif, UgoiraFormat::Apng, UgoiraFormat::Zip] {
            // Missing listed frame.
            list.push(Frame { file: "000004.jpg".into(), delay: 10 });
            let err = assert_fails_cleanly(&z, &list, format);
            assert!(matches!(&err, ConvertError::Frame { file, .. } if file == "000004.jpg"), "{err}");
            list.pop();
        }

        // A corrupt last frame fails after the output was partly written.
        let mut entries: Vec<(String, Vec<u8>)> =
            (0..3).map(|i| (format!("{i:06}.jpg"), jpeg(40, 30, i))).collect();
        entries.push(("000003.jpg".into(), b"\xFF\xD8\xFF\xE0garbage".to_vec()));
        let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        write_zip(&z, &refs, false);
        for format in [UgoiraFormat::Gif, UgoiraFormat::Apng] {
            let err = assert_fails_cleanly(&z, &list, format);
            assert!(matches!(&err, ConvertError::Frame { file, .. } if file == "000003.jpg"), "{err}");
        }

        // A frame of another size.
        entries[3].1 = jpeg(41, 30, 3);
        let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        write_zip(&z, &refs, false);
        let err = assert_fails_cleanly(&z, &list, UgoiraFormat::Gif);
        assert!(matches!(&err, ConvertError::Frame { reason, .. } if reason.contains("41x30")), "{err}");

        // Corrupt zip, zip-slip.
        fs::write(&z, b"not a zip").expect("write");
        assert!(matches!(assert_fails_cleanly(&z, &list, UgoiraFormat::Apng), ConvertError::Zip(_)));
        let j = jpeg(8, 8, 0);
        write_zip(&z, &[("000000.jpg", &j), ("../../etc/x.jpg", &j)], false);
        assert!(matches!(assert_fails_cleanly(&z, &[], UgoiraFormat::Gif), ConvertError::Zip(_)));
        drop(dir);
    }

    #[test]
    fn failure_keeps_the_old_output() {
        let (dir, z, list) = jpeg_ugoira(false);
        let out = dir.path().join("u.gif");
        fs::write(&out, b"old").expect("write");
        let bad = frames(&[("000000.jpg", 10), ("nope.jpg", 10)]);
        convert_ugoira(&z, &bad, UgoiraFormat::Gif, &out).expect_err("must fail");
        assert_eq!(fs::read(&out).expect("read"), b"old");
        convert_ugoira(&z, &list, UgoiraFormat::Gif, &out).expect("replace");
        assert_eq!(read_gif(&out).2.len(), 4);
        assert_eq!(names(dir.path()), ["u.gif", "u.zip"]);
    }

    #[test]
    fn zip_format_copies_the_checked_zip() {
        let (dir, z, list) = jpeg_ugoira(false);
        let out = dir.path().join("kept.zip");
        convert_ugoira(&z, &list, UgoiraFormat::Zip, &out).expect("copy");
        assert_eq!(fs::read(&out).expect("read"), fs::read(&z).expect("read"));
        convert_ugoira(&z, &list, UgoiraFormat::Zip, &z).expect("same file is a no-op");
        assert_eq!(names(dir.path()), ["kept.zip", "u.zip"]);
    }

    #[test]
    fn webp_through_ffmpeg() {
        let (dir, z, list) = jpeg_ugoira(false);
        let out = dir.path().join("u.webp");
        if !ffmpeg_available() {
            let err = convert_ugoira(&z, &list, UgoiraFormat::Webp, &out).expect_err("no ffmpeg");
            assert!(matches!(err, ConvertError::FfmpegMissing), "{err}");
            assert_eq!(names(dir.path()), ["u.zip"]);
            eprintln!("note: ffmpeg is not installed; webp conversion itself not tested");
            return;
        }
        convert_ugoira(&z, &list, UgoiraFormat::Webp, &out).expect("convert");
        assert_eq!(names(dir.path()), ["u.webp", "u.zip"]);
        let mut bytes = Vec::new();
        File::open(&out).expect("open").read_to_end(&mut bytes).expect("read");
        let (loops, durations) = webp_animation(&bytes);
        assert_eq!(loops, 0, "loops forever");
        assert_eq!(durations, [60, 70, 15, 1000]);

        // Corrupt frame data: ffmpeg fails, nothing is left.
        write_zip(&z, &[("000000.jpg", b"\xFF\xD8\xFF\xE0garbage")], false);
        let err = assert_fails_cleanly(&z, &[], UgoiraFormat::Webp);
        assert!(matches!(err, ConvertError::Ffmpeg(_)), "{err}");
    }

    /// (loop count, frame durations in ms) of an animated WebP, from its
    /// ANIM and ANMF chunks.
    fn webp_animation(b: &[u8]) -> (u16, Vec<u32>) {
        assert_eq!((&b[..4], &b[8..12]), (&b"RIFF"[..], &b"WEBP"[..]), "not a webp");
        let (mut at, mut loops, mut durations) = (12, None, Vec::new());
        while at + 8 <= b.len() {
            let len = u32::from_le_bytes([b[at + 4], b[at + 5], b[at + 6], b[at + 7]]) as usize;
            let body = &b[at + 8..at + 8 + len];
            match &b[at..at + 4] {
                b"ANIM" => loops = Some(u16::from_le_bytes([body[4], body[5]])),
                b"ANMF" => durations.push(u32::from_le_bytes([body[12], body[13], body[14], 0])),
                _ => {}
            }
            at += 8 + len + (len & 1);
        }
        (loops.expect("ANIM chunk: not animated"), durations)
    }
}
