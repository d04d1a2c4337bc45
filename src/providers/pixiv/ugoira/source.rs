//! Reading an ugoira zip: which entries are frames, in which order, and the
//! caps that keep a hostile zip from exhausting memory.
//!
//! Entry names are only ever looked up, never used as paths; they are
//! checked anyway (`../x`, `/x`, `C:\x` make the whole zip an error) so that
//! a zip crafted for zip-slip is reported rather than half-used.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use zip::ZipArchive;
use zip::result::ZipError;

use super::{ConvertError, Frame};

/// Delay of each frame when the caller has no frame list.
pub(crate) const DEFAULT_DELAY_MS: u32 = 100;

/// File extensions taken as frames when the caller has no frame list (a
/// PixivUtil2 `.ugoira` also holds `animation.json`).
const FRAME_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "gif"];

/// Size caps on what a zip may make us decompress.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest uncompressed size of one entry.
    pub(crate) entry: u64,
    /// Largest uncompressed size of all frames read, counting a frame that
    /// is listed twice twice.
    pub(crate) total: u64,
}

impl Limits {
    /// 64 MiB per entry, 1 GiB in all.
    pub(crate) const DEFAULT: Limits = Limits { entry: 64 << 20, total: 1 << 30 };
}

/// One frame to read: its name, its index in the zip, its delay.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// Entry name.
    pub(crate) file: String,
    /// Entry index in the zip.
    index: usize,
    /// Delay in milliseconds.
    pub(crate) delay: u32,
}

/// An opened ugoira zip with its frame plan.
pub(crate) struct UgoiraZip {
    archive: ZipArchive<BufReader<File>>,
    plan: Vec<Planned>,
    limits: Limits,
    read_total: u64,
}

impl std::fmt::Debug for UgoiraZip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UgoiraZip").field("plan", &self.plan).field("read_total", &self.read_total).finish()
    }
}

impl UgoiraZip {
    /// Opens `path`, checks every entry name, and plans the frames: the
    /// order of `frames`, or with no `frames` the zip's image entries in
    /// order at [`DEFAULT_DELAY_MS`]. Checks the declared sizes against
    /// `limits` before anything is decompressed.
    pub(crate) fn open(path: &Path, frames: &[Frame], limits: Limits) -> Result<Self, ConvertError> {
        let file = File::open(path)?;
        let mut archive = ZipArchive::new(BufReader::new(file)).map_err(zip_error)?;
        let mut names = Vec::with_capacity(archive.len());
        for i in 0..archive.len() {
            let name = match archive.name_for_index(i) {
                Some(Ok(n)) => n.into_owned(),
                Some(Err(e)) => return Err(zip_error(e)),
                None => return Err(ConvertError::Zip(format!("entry {i} has no name"))),
            };
            if !is_safe_name(&name) {
                return Err(ConvertError::Zip(format!("unsafe entry name {name:?}")));
            }
            names.push(name);
        }
        let plan: Vec<Planned> = if frames.is_empty() {
            names
                .iter()
                .enumerate()
                .filter(|(_, n)| is_frame_name(n))
                .map(|(index, n)| Planned { file: n.clone(), index, delay: DEFAULT_DELAY_MS })
                .collect()
        } else {
            frames
                .iter()
                .map(|f| match archive.index_for_name(&f.file) {
                    Some(index) if !f.file.ends_with('/') => {
                        Ok(Planned { file: f.file.clone(), index, delay: f.delay })
                    }
                    _ => Err(ConvertError::frame(&f.file, "not in the zip")),
                })
                .collect::<Result<_, _>>()?
        };
        if plan.is_empty() {
            return Err(ConvertError::Zip("no frames".into()));
        }
        let mut declared: u64 = 0;
        for p in &plan {
            let size = archive.by_index(p.index).map_err(|e| frame_zip_error(&p.file, e))?.size();
            if size > limits.entry {
                return Err(ConvertError::frame(&p.file, over_entry_cap(limits)));
            }
            declared = declared.saturating_add(size);
        }
        if declared > limits.total {
            return Err(ConvertError::Zip(over_total_cap(limits)));
        }
        Ok(UgoiraZip { archive, plan, limits, read_total: 0 })
    }

    /// The frames in output order.
    pub(crate) fn plan(&self) -> &[Planned] {
        &self.plan
    }

    /// Reads frame `i` of the plan, decompressed, enforcing the caps on
    /// what is actually read (a header may lie about sizes).
    pub(crate) fn read(&mut self, i: usize) -> Result<Vec<u8>, ConvertError> {
        let Some(p) = self.plan.get(i) else {
            return Err(ConvertError::Encode(format!("frame {i} out of range")));
        };
        let mut entry = self.archive.by_index(p.index).map_err(|e| frame_zip_error(&p.file, e))?;
        let hint = entry.size().min(self.limits.entry);
        let bytes = read_capped(&mut entry, self.limits.entry, hint).map_err(|e| match e {
            Capped::Over => ConvertError::frame(&p.file, over_entry_cap(self.limits)),
            Capped::Io(e) => frame_io_error(&p.file, e),
        })?;
        self.read_total = self.read_total.saturating_add(bytes.len() as u64);
        if self.read_total > self.limits.total {
            return Err(ConvertError::Zip(over_total_cap(self.limits)));
        }
        Ok(bytes)
    }
}

/// Why [`read_capped`] stopped.
#[derive(Debug)]
pub(crate) enum Capped {
    /// More than the cap was there.
    Over,
    /// Reading failed.
    Io(io::Error),
}

/// Reads all of `r`, but at most `cap` bytes: one byte more is an error.
pub(crate) fn read_capped(r: &mut impl Read, cap: u64, size_hint: u64) -> Result<Vec<u8>, Capped> {
    let mut buf = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0));
    r.take(cap.saturating_add(1)).read_to_end(&mut buf).map_err(Capped::Io)?;
    if buf.len() as u64 > cap { Err(Capped::Over) } else { Ok(buf) }
}

/// True for a relative name whose components stay inside the zip: not
/// empty, no NUL, no backslash, no leading `/`, no `..` component, and no
/// drive prefix (`C:`).
pub(crate) fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['\0', '\\'])
        && !name.starts_with('/')
        && !name.split('/').any(|c| c == "..")
        && !name.split('/').next().is_some_and(|c| c.len() == 2 && c.ends_with(':'))
}

/// True for a non-directory entry with an image extension.
fn is_frame_name(name: &str) -> bool {
    !name.ends_with('/')
        && name
            .rsplit_once('.')
            .is_some_and(|(_, ext)| FRAME_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)))
}

fn over_entry_cap(l: Limits) -> String {
    format!("over the cap of {} MiB uncompressed per frame", l.entry >> 20)
}

fn over_total_cap(l: Limits) -> String {
    format!("frames are over the cap of {} MiB uncompressed in total", l.total >> 20)
}

/// An I/O error with an OS error code is the machine's (transient); any
/// other one while reading a zip (truncated file, bad checksum, bad
/// deflate stream) is the zip's.
fn is_os_error(e: &io::Error) -> bool {
    e.raw_os_error().is_some()
}

/// Maps an error about the whole archive.
fn zip_error(e: ZipError) -> ConvertError {
    match e {
        ZipError::Io(e) if is_os_error(&e) => ConvertError::Io(e),
        e => ConvertError::Zip(e.to_string().to_lowercase()),
    }
}

/// Maps an error while opening one entry.
fn frame_zip_error(file: &str, e: ZipError) -> ConvertError {
    match e {
        ZipError::Io(e) => frame_io_error(file, e),
        e => ConvertError::frame(file, e.to_string().to_lowercase()),
    }
}

/// Maps an error while decompressing one entry.
fn frame_io_error(file: &str, e: io::Error) -> ConvertError {
    if is_os_error(&e) {
        ConvertError::Io(e)
    } else {
        ConvertError::frame(file, e.to_string().to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::pixiv::ugoira::testutil::{frames, jpeg, write_zip};

    #[test]
    fn safe_names() {
        for ok in ["000000.jpg", "a/b.png", "a..b.jpg", "x:y.jpg"] {
            assert!(is_safe_name(ok), "{ok}");
        }
        for bad in ["", "../x", "a/../../x", "..", "/etc/passwd", "a\\..\\x", "C:/x", "c:", "a\0b"] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn plan_follows_frames_order_and_delays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let z = dir.path().join("u.zip");
        let j = jpeg(8, 8, 0);
        write_zip(&z, &[("000000.jpg", &j), ("000001.jpg", &j), ("extra.jpg", &j)], false);
        let list = frames(&[("000001.jpg", 30), ("000000.jpg", 40)]);
        let u = UgoiraZip::open(&z, &list, Limits::DEFAULT).expect("open");
        let got: Vec<(&str, u32)> = u.plan().iter().map(|p| (p.file.as_str(), p.delay)).collect();
        assert_eq!(got, [("000001.jpg", 30), ("000000.jpg", 40)]);
    }

    #[test]
    fn empty_frame_list_uses_zip_order_images_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let z = dir.path().join("u.ugoira");
        let j = jpeg(8, 8, 0);
        write_zip(
            &z,
            &[("b.JPG", &j), ("animation.json", b"{}"), ("dir/", b""), ("a.png", &j), ("c.gif", &j)],
            true,
        );
        let u = UgoiraZip::open(&z, &[], Limits::DEFAULT).expect("open");
        let got: Vec<(&str, u32)> = u.plan().iter().map(|p| (p.file.as_str(), p.delay)).collect();
        assert_eq!(got, [("b.JPG", 100), ("a.png", 100), ("c.gif", 100)]);
    }

    #[test]
    fn missing_listed_frame_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let z = dir.path().join("u.zip");
        write_zip(&z, &[("000000.jpg", &jpeg(8, 8, 0))], false);
        let err = UgoiraZip::open(&z, &frames(&[("000000.jpg", 10), ("000001.jpg", 10)]), Limits::DEFAULT)
            .expect_err("missing frame");
        match err {
            ConvertError::Frame { file, reason } => {
                assert_eq!(file, "000001.jpg");
                assert_eq!(reason, "not in the zip");
            }
            e => panic!("wrong error {e:?}"),
        }
    }

    #[test]
    fn zero_frames_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let z = dir.path().join("u.zip");
        write_zip(&z, &[("animation.json", b"{}")], false);
        assert!(matches!(UgoiraZip::open(&z, &[], Limits::DEFAULT), Err(ConvertError::Zip(_))));
        write_zip(&z, &[], false);
        assert!(matches!(UgoiraZip::open(&z, &[], Limits::DEFAULT), Err(ConvertError::Zip(_))));
    }

    #[test]
    fn zip_slip_entry_is_an_error_even_if_unlisted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let z = dir.path().join("u.zip");
        let j = jpeg(8, 8, 0);
        write_zip(&z, &[("000000.jpg", &j), ("../evil.jpg", &j)], false);
        let err = UgoiraZip::open(&z, &frames(&[("000000.jpg", 10)]), Limits::DEFAULT).expect_err("zip-slip");
        assert!(matches!(&err, ConvertError::Zip(m) if m.contains("unsafe entry name")), "{err}");
    }

    #[test]
    fn corrupt_and_missing_zips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let z = dir.path().join("u.zip");
        std::fs::write(&z, b"PK\x03\x04 this is not a zip at all").expect("write");
        let err = UgoiraZip::open(&z, &[], Limits::DEFAULT).expect_err("corrupt");
        assert!(matches!(err, ConvertError::Zip(_)), "{err:?}");
        assert!(!err.is_transient());

        // A real zip cut in half has lost its central directory.
        let j = jpeg(64, 64, 1);
        write_zip(&z, &[("000000.jpg", &j), ("000001.jpg", &j)], false);
        let whole = std::fs::read(&z).expect("read");
        std::fs::write(&z, &whole[..whole.len() / 2]).expect("write");
        assert!(matches!(UgoiraZip::open(&z, &[], Limits::DEFAULT), Err(ConvertError::Zip(_))));

        let err = UgoiraZip::open(&dir.path().join("absent.zip"), &[], Limits::DEFAULT).expect_err("absent");
        assert!(matches!(err, ConvertError::Io(_)) && err.is_transient(), "{err:?}");
    }

    #[test]
    fn corrupt_entry_data_is_a_frame_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let z = dir.path().join("u.zip");
        let j = jpeg(32, 32, 1);
        write_zip(&z, &[("000000.jpg", &j)], false);
        // Flip one byte of the stored data: the CRC check must catch it.
        let mut bytes = std::fs::read(&z).expect("read");
        let at = bytes.windows(2).position(|w| w == [0xFF, 0xD8]).expect("jpeg start") + 100;
        bytes[at] ^= 0x55;
        std::fs::write(&z, &bytes).expect("write");
        let mut u = UgoiraZip::open(&z, &[], Limits::DEFAULT).expect("open");
        let err = u.read(0).expect_err("crc");
        assert!(matches!(&err, ConvertError::Frame { file, .. } if file == "000000.jpg"), "{err:?}");
    }

    #[test]
    fn size_caps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let z = dir.path().join("u.zip");
        let big = vec![7u8; 1000];
        write_zip(&z, &[("0.jpg", &big), ("1.jpg", &big)], true);
        let small = Limits { entry: 999, total: 1 << 20 };
        let err = UgoiraZip::open(&z, &[], small).expect_err("entry cap");
        assert!(matches!(&err, ConvertError::Frame { file, .. } if file == "0.jpg"), "{err:?}");
        // Listing the same frame three times counts it three times.
        let err = UgoiraZip::open(
            &z,
            &frames(&[("0.jpg", 1), ("0.jpg", 1), ("1.jpg", 1)]),
            Limits { entry: 1000, total: 2999 },
        )
        .expect_err("total cap");
        assert!(matches!(err, ConvertError::Zip(_)), "{err:?}");
        let mut u = UgoiraZip::open(&z, &[], Limits { entry: 1000, total: 2000 }).expect("at the caps");
        assert_eq!(u.read(0).expect("read").len(), 1000);
        assert_eq!(u.read(1).expect("read").len(), 1000);
    }

    #[test]
    fn zip_bomb_entry_is_refused_before_decompressing() {
        // 65 MiB of zeros deflates to about 65 KiB.
        let dir = tempfile::tempdir().expect("tempdir");
        let z = dir.path().join("bomb.zip");
        let zeros = vec![0u8; 65 << 20];
        write_zip(&z, &[("000000.jpg", &zeros)], true);
        drop(zeros);
        assert!(std::fs::metadata(&z).expect("meta").len() < 1 << 20);
        let err = UgoiraZip::open(&z, &[], Limits::DEFAULT).expect_err("bomb");
        assert!(matches!(&err, ConvertError::Frame { reason, .. } if reason.contains("64 MiB")), "{err}");
    }

    #[test]
    fn read_capped_enforces_the_cap_on_actual_bytes() {
        // A lying header declares less than the stream holds.
        let data = [1u8; 101];
        assert_eq!(read_capped(&mut &data[..100], 100, 10).expect("at cap").len(), 100);
        assert!(matches!(read_capped(&mut &data[..], 100, 10), Err(Capped::Over)));
    }
}
