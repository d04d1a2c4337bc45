//! Ugoira conversion: a downloaded ugoira zip plus its per-frame delays
//! become an animated GIF or APNG (pure Rust) or WebP (through `ffmpeg`).
//!
//! Owns reading ugoira zips (entry-name checks and size caps), decoding
//! frames (JPEG, PNG, GIF), the GIF and APNG encoders, and the `ffmpeg`
//! child for WebP. Pixiv registers it as the post-processing step `ugoira`
//! ([`UgoiraStep`]), so it runs on the kernel's post-processing thread and
//! never stalls downloads.
//!
//! Invariant: `out` is never half-written. Output goes to a temporary
//! dotfile in `out`'s folder that is fsynced and renamed over `out` only when
//! complete; on any error that dotfile and any temporary frame folder are
//! removed, and `out` is left absent or as it was. Memory stays bounded by a
//! few decoded frames whatever the frame count, and no input, however
//! hostile, makes it panic or decompress more than the caps allow.

mod convert;
mod decode;
mod encode;
mod error;
mod ffmpeg;
mod output;
mod source;
mod step;
#[cfg(test)]
mod testutil;

pub use convert::{Frame, UgoiraFormat, convert_ugoira};
pub use error::ConvertError;
pub use ffmpeg::ffmpeg_available;
pub use step::{STEP, UgoiraStep, ugoira_step};
