//! URL inputs of jobs that must upload what they process: fetched first
//! into the job's own scratch folder, then read like local inputs.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::policy::{InputError, LocalInput};

/// Fetches `url` into `scratch` (once: a later call, also after a restart,
/// finds the complete file) and returns it as a local input. The file is
/// written to a temporary name and renamed only when complete, so a
/// half-fetched input is never uploaded; bodies over `max_bytes` are
/// refused.
pub fn stage_url(
    agent: &ureq::Agent,
    url: &str,
    scratch: &Path,
    max_bytes: u64,
    timeout: Duration,
) -> Result<LocalInput, InputError> {
    let shown = std::path::PathBuf::from(crate::http::display_url(url));
    let fail = |reason: String| InputError::Unreadable { path: shown.clone(), reason };
    let digest = Sha256::digest(url.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    let ext = crate::naming::file_name_from_url(url, "input")
        .rsplit_once('.')
        .map(|(_, e)| e.chars().filter(char::is_ascii_alphanumeric).take(8).collect::<String>())
        .filter(|e| !e.is_empty())
        .map_or(String::new(), |e| format!(".{e}"));
    let dest = scratch.join(format!("url-{hex}{ext}"));
    if let Ok(file) = crate::durable::open_regular_nofollow(&dest)
        && let Ok(meta) = file.metadata()
    {
        return Ok(LocalInput { given: shown, path: dest, root: scratch.to_path_buf(), len: meta.len() });
    }
    std::fs::create_dir_all(scratch).map_err(|e| fail(format!("cannot create the scratch folder: {e}")))?;
    let mut resp = agent
        .get(url)
        .config()
        .timeout_global(Some(timeout))
        .build()
        .call()
        .map_err(|e| fail(crate::http::describe(&e)))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status().as_u16())));
    }
    let mut body = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| fail(format!("reading it: {e}")))?;
    if body.len() as u64 > max_bytes {
        return Err(InputError::TooLarge { path: shown, len: body.len() as u64, max: max_bytes });
    }
    if body.is_empty() {
        return Err(fail("the server sent an empty file".into()));
    }
    crate::durable::atomic_write_mode(&dest, &body, 0o600)
        .map_err(|e| fail(format!("cannot save it: {e}")))?;
    Ok(LocalInput { given: shown, path: dest, root: scratch.to_path_buf(), len: body.len() as u64 })
}
