//! What both web signatures share: textbook RC4, the Latin-1 view of the
//! text they hash, and their error.
//!
//! Owns the byte view of a query or User-Agent: F2 (the reference client,
//! https://github.com/Johnserf-Seed/f2) encodes both as ISO-8859-1, one
//! byte per character. Invariant: a character that has no Latin-1 byte is
//! refused with [`SignError::NotLatin1`], never replaced, so what is
//! signed is exactly what a server recomputes from the bytes it receives.

use std::fmt;

/// Why a signature could not be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignError {
    /// The text has a character above U+00FF, which has no Latin-1 byte
    /// (F2 raises on it; a header or query could not carry it unencoded).
    NotLatin1 {
        /// `"query"` or `"user agent"`.
        what: &'static str,
    },
    /// The User-Agent is empty: it is part of both signatures and must be
    /// the header sent, byte for byte.
    EmptyUserAgent,
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::NotLatin1 { what } => {
                write!(f, "the {what} has a character outside Latin-1 and cannot be signed as sent")
            }
            SignError::EmptyUserAgent => f.write_str("the User-Agent to sign is empty"),
        }
    }
}

impl std::error::Error for SignError {}

/// The ISO-8859-1 bytes of `text`, one per character.
pub(crate) fn latin1(text: &str, what: &'static str) -> Result<Vec<u8>, SignError> {
    text.chars().map(|c| u8::try_from(u32::from(c)).map_err(|_| SignError::NotLatin1 { what })).collect()
}

/// The User-Agent's Latin-1 bytes, refusing an empty one.
pub(crate) fn user_agent_bytes(user_agent: &str) -> Result<Vec<u8>, SignError> {
    if user_agent.is_empty() {
        return Err(SignError::EmptyUserAgent);
    }
    latin1(user_agent, "user agent")
}

/// Textbook RC4 (key schedule, then the keystream XORed over `data`).
/// Both signatures use it with short fixed keys; it obfuscates, it does
/// not protect anything.
pub(crate) fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut s: [u8; 256] = std::array::from_fn(|i| i as u8);
    let mut j = 0u8;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, usize::from(j));
    }
    let (mut i, mut j) = (0u8, 0u8);
    data.iter()
        .map(|b| {
            i = i.wrapping_add(1);
            j = j.wrapping_add(s[usize::from(i)]);
            s.swap(usize::from(i), usize::from(j));
            b ^ s[usize::from(s[usize::from(i)].wrapping_add(s[usize::from(j)]))]
        })
        .collect()
}

/// The inputs of F2 0.0.1.7's recorded signature vectors, shared by the
/// X-Bogus and A-Bogus tests.
#[cfg(test)]
pub(super) mod vectors {
    pub(in crate::providers::douyin::sign) const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0";
    pub(in crate::providers::douyin::sign) const Q1: &str =
        "device_platform=webapp&aid=6383&channel=channel_pc_web&aweme_id=7380308675841297704&msToken=abc";
    pub(in crate::providers::douyin::sign) const Q2: &str = "device_platform=webapp&aid=6383&channel=channel_pc_web&max_cursor=0&count=20&sec_user_id=MS4wLjABAAAAfake";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc4_matches_the_classic_vectors() {
        // The "Key"/"Plaintext" and "Wiki"/"pedia" vectors of the RC4 literature.
        assert_eq!(rc4(b"Key", b"Plaintext"), [0xBB, 0xF3, 0x16, 0xE8, 0xD9, 0x40, 0xAF, 0x0A, 0xD3]);
        assert_eq!(rc4(b"Wiki", b"pedia"), [0x10, 0x21, 0xBF, 0x04, 0x20]);
    }

    #[test]
    fn latin1_is_one_byte_per_char_and_refuses_the_rest() {
        assert_eq!(latin1("aé\u{ff}", "query"), Ok(vec![b'a', 0xE9, 0xFF]));
        assert_eq!(latin1("a\u{4e2d}", "query"), Err(SignError::NotLatin1 { what: "query" }));
        assert_eq!(user_agent_bytes(""), Err(SignError::EmptyUserAgent));
    }
}
