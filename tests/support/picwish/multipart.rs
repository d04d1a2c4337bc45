//! Request-body parsing for the fake PicWish: `multipart/form-data`
//! (RFC 7578) and `application/x-www-form-urlencoded`.
//!
//! Everything here works on request-controlled bytes, so nothing unwraps:
//! a malformed body is an `Err` the caller turns into a 400.

use crate::support::http::percent_decode;

/// One part of a form: a plain field (`filename` is `None`) or a file.
#[derive(Debug, Clone)]
pub struct Part {
    /// The part's `name`.
    pub name: String,
    /// The part's `filename`, for file parts.
    pub filename: Option<String>,
    /// The part's own `Content-Type`, when it sent one.
    pub content_type: Option<String>,
    /// The part's content.
    pub data: Vec<u8>,
}

impl Part {
    /// The content as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Parses a request body by its `Content-Type`: multipart, or a
/// urlencoded form (also when no type is sent, as curl's `-d` does).
pub fn parse_form(content_type: Option<&str>, body: &[u8]) -> Result<Vec<Part>, String> {
    let ct = content_type.unwrap_or("application/x-www-form-urlencoded");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "multipart/form-data" => {
            let boundary = param(ct, "boundary").ok_or("multipart body without a boundary")?;
            parse_multipart(&boundary, body)
        }
        "application/x-www-form-urlencoded" => Ok(parse_urlencoded(&String::from_utf8_lossy(body))
            .into_iter()
            .map(|(name, v)| Part { name, filename: None, content_type: None, data: v.into_bytes() })
            .collect()),
        other => Err(format!("unsupported content type {other:?}")),
    }
}

/// `k=v&k2=v2`, percent-decoded, in order.
pub fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// A `; key=value` parameter of a header value (quotes removed).
pub fn param(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// Splits a multipart body on `--boundary` delimiters.
pub fn parse_multipart(boundary: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let mut pos = find(body, d, 0).ok_or("no opening boundary")? + d.len();
    let mut parts = Vec::new();
    loop {
        // After a delimiter: `--` ends the body, CRLF starts a part.
        if body.get(pos..pos + 2) == Some(b"--") {
            return Ok(parts);
        }
        if body.get(pos..pos + 2) != Some(b"\r\n") {
            return Err("malformed boundary line".into());
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos).ok_or("part without a header end")?;
        let head = String::from_utf8_lossy(&body[pos..head_end]).into_owned();
        let content_start = head_end + 4;
        let next_delim = format!("\r\n{delim}");
        let end = find(body, next_delim.as_bytes(), content_start).ok_or("unterminated part")?;
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else { continue };
            let k = k.trim().to_ascii_lowercase();
            if k == "content-disposition" {
                name = param(v, "name");
                filename = param(v, "filename");
            } else if k == "content-type" {
                content_type = Some(v.trim().to_string());
            }
        }
        let name = name.ok_or("part without a name")?;
        parts.push(Part { name, filename, content_type, data: body[content_start..end].to_vec() });
        pos = end + next_delim.len();
    }
}
