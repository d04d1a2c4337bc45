//! The trust store: Mozilla's roots plus a private CA file, checked
//! certificate by certificate so that a damaged one is an error at start,
//! not a silently ignored root.

use std::path::Path;

use ureq::tls::{Certificate, PemItem, RootCerts};

use super::agent::SetupError;

/// The trust store: Mozilla's roots, plus the PEM certificates of `ca_file`.
///
/// `RootCerts::new_with_certs` *replaces* the store, so the Mozilla roots
/// (the same set ureq uses by default, from `webpki-root-certs`) are put in
/// explicitly; otherwise adding a corporate CA would break every public site.
pub(super) fn root_certs(ca_file: Option<&Path>) -> Result<RootCerts, SetupError> {
    let Some(path) = ca_file else {
        return Ok(RootCerts::WebPki);
    };
    let extra =
        read_ca_file(path).map_err(|reason| SetupError::CaFile { path: path.to_path_buf(), reason })?;
    log::debug!("trusting {} extra ca certificate(s) from {}", extra.len(), path.display());
    let mut all: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()))
        .collect();
    all.extend(extra);
    Ok(RootCerts::new_with_certs(&all))
}

/// Reads every certificate of a PEM file, with an error reason on failure.
fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read it ({})", e.to_string().to_lowercase()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(PemItem::Certificate(cert)) => {
                // rustls silently skips roots it cannot parse; a damaged block
                // would then look like "my CA is ignored". Check the DER frame.
                if !is_der_sequence(cert.der()) {
                    return Err(format!(
                        "certificate #{} is not valid (damaged base64 or not a certificate)",
                        certs.len() + 1
                    ));
                }
                certs.push(cert);
            }
            Ok(_) => log::warn!(
                "ca_file {} contains a non-certificate item (a private key?); it is ignored",
                path.display()
            ),
            Err(e) => return Err(format!("not valid pem ({e})").to_lowercase()),
        }
    }
    if certs.is_empty() {
        return Err("no pem certificate found (expected \"-----BEGIN CERTIFICATE-----\" blocks)".to_string());
    }
    Ok(certs)
}

/// True if `der` is exactly one DER `SEQUENCE` (what every X.509 certificate
/// is). A cheap structural check, not a parse.
fn is_der_sequence(der: &[u8]) -> bool {
    let [0x30, first_len, rest @ ..] = der else {
        return false;
    };
    let (len, body) = if first_len & 0x80 == 0 {
        (usize::from(*first_len), rest)
    } else {
        let n = usize::from(first_len & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return false;
        }
        let (len_bytes, body) = rest.split_at(n);
        let len = len_bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, body)
    };
    body.len() == len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_sequence_check() {
        assert!(is_der_sequence(&[0x30, 0x00]));
        assert!(is_der_sequence(&[0x30, 0x02, 1, 2]));
        assert!(is_der_sequence(&[0x30, 0x81, 0x01, 9]));
        assert!(!is_der_sequence(&[0x30, 0x03, 1, 2]));
        assert!(!is_der_sequence(&[0x31, 0x00]));
        assert!(!is_der_sequence(&[0x30, 0x80]));
        assert!(!is_der_sequence(b"hello world"));
        assert!(!is_der_sequence(&[]));
    }
}
