//! The pure-Rust encoders: animated GIF (`gif`, NeuQuant palettes) and
//! APNG (`png`).
//!
//! Both stream: one frame is read, decoded, encoded and dropped before the
//! next is read, so memory is a few frames' worth whatever the frame count.
//! Every frame must have the first frame's size.

use std::io::Write;

use super::ConvertError;
use super::decode::{self, Image};
use super::source::UgoiraZip;

/// NeuQuant learns from one pixel in `speed` (1 best and slowest, 30
/// fastest). The `gif` crate recommends 10; larger frames use up to 30 so
/// that NeuQuant still learns from about [`GIF_LEARN_PIXELS`] pixels: 20 for
/// 1920x1080, a third less time per frame than 10.
fn gif_speed(pixels: u64) -> i32 {
    i32::try_from(pixels / GIF_LEARN_PIXELS).unwrap_or(i32::MAX).clamp(10, 30)
}

/// Pixels NeuQuant should learn from per frame, at least.
const GIF_LEARN_PIXELS: u64 = 100_000;

/// Shortest GIF frame delay, in centiseconds: browsers play 0 and 1 cs
/// frames at 10 cs, so 2 cs is the shortest that plays as written.
const GIF_MIN_DELAY_CS: u16 = 2;

/// Converts a delay in milliseconds to GIF centiseconds: rounded, at least
/// [`GIF_MIN_DELAY_CS`], at most 65535.
pub(crate) fn gif_delay(ms: u32) -> u16 {
    let cs = (u64::from(ms) + 5) / 10;
    u16::try_from(cs).unwrap_or(u16::MAX).max(GIF_MIN_DELAY_CS)
}

/// Converts a delay in milliseconds to an APNG fraction of seconds:
/// `ms/1000` while it fits in 16 bits, `cs/100` up to 655.35 s, capped
/// beyond.
pub(crate) fn apng_delay(ms: u32) -> (u16, u16) {
    match u16::try_from(ms) {
        Ok(ms) => (ms, 1000),
        Err(_) => (u16::try_from((u64::from(ms) + 5) / 10).unwrap_or(u16::MAX), 100),
    }
}

/// Reads and decodes frame `i`, checking its size against the first
/// frame's.
fn load(src: &mut UgoiraZip, i: usize, first: Option<(u32, u32)>) -> Result<(Image, u32), ConvertError> {
    let bytes = src.read(i)?;
    let p = &src.plan()[i];
    let img = decode::decode(&p.file, &bytes)?;
    if let Some((w, h)) = first
        && (img.width, img.height) != (w, h)
    {
        return Err(ConvertError::frame(
            &p.file,
            format!("is {}x{}, the first frame is {w}x{h}", img.width, img.height),
        ));
    }
    Ok((img, p.delay))
}

/// Encodes every planned frame of `src` as an endlessly looping GIF into
/// `out`.
pub(crate) fn write_gif<W: Write>(src: &mut UgoiraZip, out: W) -> Result<(), ConvertError> {
    let (first, delay) = load(src, 0, None)?;
    let size = (first.width, first.height);
    let too_big =
        || ConvertError::Encode(format!("frames are {}x{}, gif allows at most 65535x65535", size.0, size.1));
    let w = u16::try_from(size.0).map_err(|_| too_big())?;
    let h = u16::try_from(size.1).map_err(|_| too_big())?;
    let mut enc = gif::Encoder::new(out, w, h, &[]).map_err(gif_error)?;
    enc.set_repeat(gif::Repeat::Infinite).map_err(gif_error)?;
    let speed = gif_speed(u64::from(size.0) * u64::from(size.1));
    let mut put = |img: Image, delay: u32| -> Result<(), ConvertError> {
        let mut rgba = img.into_rgba();
        let mut frame = gif::Frame::from_rgba_speed(w, h, &mut rgba, speed);
        drop(rgba);
        frame.delay = gif_delay(delay);
        // Each ugoira frame is a whole picture: clear, never composite.
        frame.dispose = gif::DisposalMethod::Background;
        enc.write_frame(&frame).map_err(gif_error)
    };
    put(first, delay)?;
    for i in 1..src.plan().len() {
        let (img, delay) = load(src, i, Some(size))?;
        put(img, delay)?;
    }
    enc.into_inner().map_err(gif_error)?;
    Ok(())
}

/// Encodes every planned frame of `src` as an endlessly looping APNG into
/// `out`.
///
/// The APNG is RGB when every frame is a JPEG (by name, and the first by
/// content), RGBA otherwise; an RGB APNG drops the alpha of a mislabelled
/// frame.
pub(crate) fn write_apng<W: Write>(src: &mut UgoiraZip, out: W) -> Result<(), ConvertError> {
    let (first, delay) = load(src, 0, None)?;
    let size = (first.width, first.height);
    let all_jpeg = src.plan().iter().all(|p| {
        let name = p.file.to_ascii_lowercase();
        name.ends_with(".jpg") || name.ends_with(".jpeg")
    });
    let alpha = first.alpha || !all_jpeg;
    let n = u32::try_from(src.plan().len()).map_err(|_| ConvertError::Encode("too many frames".into()))?;
    let mut enc = png::Encoder::new(out, size.0, size.1);
    enc.set_color(if alpha { png::ColorType::Rgba } else { png::ColorType::Rgb });
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    enc.set_animated(n, 0).map_err(png_error)?;
    let mut writer = enc.write_header().map_err(png_error)?;
    let mut rgb = Vec::new();
    let mut put = |img: Image, delay: u32| -> Result<(), ConvertError> {
        let (num, den) = apng_delay(delay);
        writer.set_frame_delay(num, den).map_err(png_error)?;
        if alpha {
            writer.write_image_data(&img.into_rgba()).map_err(png_error)
        } else {
            img.rgb_into(&mut rgb);
            drop(img);
            writer.write_image_data(&rgb).map_err(png_error)
        }
    };
    put(first, delay)?;
    for i in 1..src.plan().len() {
        let (img, delay) = load(src, i, Some(size))?;
        put(img, delay)?;
    }
    writer.finish().map_err(png_error)
}

fn gif_error(e: gif::EncodingError) -> ConvertError {
    match e {
        gif::EncodingError::Io(e) => ConvertError::Io(e),
        e => ConvertError::Encode(format!("gif: {e}").to_lowercase()),
    }
}

fn png_error(e: png::EncodingError) -> ConvertError {
    match e {
        png::EncodingError::IoError(e) => ConvertError::Io(e),
        e => ConvertError::Encode(format!("apng: {e}").to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gif_delays_round_to_centiseconds_with_a_floor() {
        let got: Vec<u16> = [0, 4, 15, 20, 24, 25, 60, 1000, 10_000_000].map(gif_delay).to_vec();
        assert_eq!(got, [2, 2, 2, 2, 2, 3, 6, 100, 65535]);
    }

    #[test]
    fn gif_speed_grows_with_frame_size() {
        assert_eq!(gif_speed(600 * 600), 10);
        assert_eq!(gif_speed(1920 * 1080), 20);
        assert_eq!(gif_speed(4000 * 4000), 30);
    }

    #[test]
    fn apng_delays_stay_exact_while_they_fit() {
        assert_eq!(apng_delay(0), (0, 1000));
        assert_eq!(apng_delay(60), (60, 1000));
        assert_eq!(apng_delay(65535), (65535, 1000));
        assert_eq!(apng_delay(65536), (6554, 100));
        assert_eq!(apng_delay(u32::MAX), (65535, 100));
    }
}
