//! X-Bogus: the older Douyin web signature, appended as `&X-Bogus=…`.
//!
//! Owns the algorithm (docs/douyin.md, "X-Bogus"; the reference is F2's
//! `f2/utils/xbogus.py`, https://github.com/Johnserf-Seed/f2): two MD5
//! rounds over the exact query bytes, an MD5 of the RC4-obfuscated
//! User-Agent, a timestamp and a canvas constant, RC4 again and a custom
//! base64 alphabet. Invariant: the output depends only on the query bytes,
//! the User-Agent bytes and [`XBogusInputs`], so a caller that signs the
//! string it sends (and sends the User-Agent it signed) is always
//! consistent; the output is always 28 characters.
//!
//! F2 decides how to read a string by its length: one of 32 characters or
//! fewer is taken as an MD5 hex digest and hex-decoded. That makes it
//! crash on a query of 32 bytes or fewer and on a User-Agent of 24 bytes
//! or fewer (whose base64 is then 32 characters or fewer). Here every
//! input is hashed as the bytes it is, whatever its length.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::alphabet::Alphabet;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use md5::{Digest, Md5};

use super::common::{SignError, latin1, rc4, user_agent_bytes};

/// The canvas fingerprint F2 always sends (`0x2000BE90`).
pub const X_BOGUS_CANVAS: u32 = 536_919_696;

/// The UA is RC4-obfuscated with this key before it is hashed.
const UA_KEY: [u8; 3] = [0x00, 0x01, 0x0C];

/// X-Bogus's base64 alphabet; 21 bytes make 28 characters, never padded.
const ALPHABET: &str = "Dkdpgh4ZKsQB80/Mfvw36XI1R25-WUAlEi7NLboqYTOPuzmFjJnryx9HVGcaStCe";

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &match Alphabet::new(ALPHABET) {
        Ok(a) => a,
        Err(_) => panic!("the X-Bogus alphabet is 64 distinct characters"),
    },
    GeneralPurposeConfig::new(),
);

/// The inputs of an X-Bogus signature besides the query and the UA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XBogusInputs {
    /// Unix time in seconds (only its low 32 bits are signed).
    pub unix_seconds: u32,
    /// The canvas fingerprint ([`X_BOGUS_CANVAS`] in F2).
    pub canvas: u32,
}

impl XBogusInputs {
    /// The clock now and F2's canvas constant.
    pub fn now() -> XBogusInputs {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // Only 32 bits are signed; the wrap is the algorithm's, in 2106.
        XBogusInputs { unix_seconds: secs as u32, canvas: X_BOGUS_CANVAS }
    }

    /// A fixed time and F2's canvas constant (tests, re-signing).
    pub fn at(unix_seconds: u32) -> XBogusInputs {
        XBogusInputs { unix_seconds, canvas: X_BOGUS_CANVAS }
    }
}

fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// The X-Bogus value for `query` (the exact bytes that will be sent, without
/// any `X-Bogus` parameter) and `user_agent` (the exact header value).
pub fn x_bogus(query: &str, user_agent: &str, inputs: XBogusInputs) -> Result<String, SignError> {
    let q = latin1(query, "query")?;
    let ua = user_agent_bytes(user_agent)?;
    let p = md5(&md5(&q));
    // MD5(MD5("")): a constant, since the body is never signed.
    let e = md5(&md5(b""));
    let ua_b64 = base64::engine::general_purpose::STANDARD.encode(rc4(&UA_KEY, &ua));
    let u = md5(ua_b64.as_bytes());
    let [t0, t1, t2, t3] = inputs.unix_seconds.to_be_bytes();
    let [c0, c1, c2, c3] = inputs.canvas.to_be_bytes();
    let mut a = vec![64, 0, 1, 12, p[14], p[15], e[14], e[15], u[14], u[15], t0, t1, t2, t3, c0, c1, c2, c3];
    // F2 splits the array into even and odd indexes and merges them back in
    // the order the algorithm reads them: the net effect is this order.
    let x = a.iter().fold(0u8, |acc, b| acc ^ b);
    a.push(x);
    let mut g = vec![0x02, 0xFF];
    g.extend(rc4(&[0xFF], &a));
    Ok(ENGINE.encode(g))
}

/// What a server can read back from an X-Bogus value (a fake Douyin checks
/// these; the provider uses it to explain a rejected signature in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XBogusFields {
    /// Bytes 14 and 15 of MD5(MD5(query)).
    pub query_hash: [u8; 2],
    /// Bytes 14 and 15 of the User-Agent hash.
    pub user_agent_hash: [u8; 2],
    /// The signed time.
    pub unix_seconds: u32,
    /// The canvas value.
    pub canvas: u32,
}

/// Decodes an X-Bogus value; `None` when it is not one (wrong length or
/// alphabet, wrong prefix or constant bytes, or a bad check byte).
pub fn decode_x_bogus(value: &str) -> Option<XBogusFields> {
    let g = ENGINE.decode(value).ok()?;
    if g.len() != 21 || g[..2] != [0x02, 0xFF] {
        return None;
    }
    let a = rc4(&[0xFF], &g[2..]);
    if a[..4] != [64, 0, 1, 12] || a[..18].iter().fold(0u8, |acc, b| acc ^ b) != a[18] {
        return None;
    }
    Some(XBogusFields {
        query_hash: [a[4], a[5]],
        user_agent_hash: [a[8], a[9]],
        unix_seconds: u32::from_be_bytes([a[10], a[11], a[12], a[13]]),
        canvas: u32::from_be_bytes([a[14], a[15], a[16], a[17]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::providers::douyin::sign::common::vectors::{Q1, Q2, UA};

    #[test]
    fn matches_f2_on_every_recorded_vector() {
        // Recorded from F2 0.0.1.7's XBogus with time.time() patched.
        let cases = [
            (Q1, 1_700_000_000, "DFSzswVY4/iANJXJtmWx-e9WX7rB"),
            (Q1, 1_735_689_600, "DFSzswVY4/iANJXJt8kkae9WX7j5"),
            (Q2, 1_700_000_000, "DFSzswVY7dsANJXJtmWx-e9WX7nv"),
            (Q2, 1_735_689_600, "DFSzswVY7dsANJXJt8kkae9WX7JD"),
        ];
        for (q, ts, want) in cases {
            assert_eq!(x_bogus(q, UA, XBogusInputs::at(ts)).as_deref(), Ok(want), "{q} at {ts}");
        }
    }

    #[test]
    fn matches_f2_on_latin1_queries_and_user_agents() {
        // Random inputs with `é` (one byte, 0xE9), recorded from F2 0.0.1.7.
        let cases = [
            (
                "éNj74GFoai3VL/e1tC1g-EDMKjghZR91-CU.4y79a1TDXZ",
                "1S2G.légkj(aRPtNYmgO)6p9%8UqJé-&8/zOPq8xgpq87X32+XhF",
                1_887_755_454,
                "DFSzswVYjDbANaSOVrDRyl9WX7Jw",
            ),
            (
                "5.Y58w20ns=_WqV5I5slC1=KvTu%LvtéD6M&mdzA9eo_jjr=lXhs8qBTfTlfp/",
                "i))+wlqé4tt688qUklD0d3n)6qxD(L_6JltK2jZ",
                1_605_212_574,
                "DFSzswVYwHXAN9X2rkbUSl9WX7JF",
            ),
        ];
        for (q, ua, ts, want) in cases {
            assert_eq!(x_bogus(q, ua, XBogusInputs::at(ts)).as_deref(), Ok(want), "{q}");
        }
    }

    #[test]
    fn the_md5_of_the_empty_body_is_the_documented_constant() {
        assert_eq!(
            md5(&md5(b"")),
            [0x59, 0xad, 0xb2, 0x4e, 0xf3, 0xcd, 0xbe, 0x02, 0x97, 0xf0, 0x5b, 0x39, 0x58, 0x27, 0x45, 0x3f]
        );
    }

    #[test]
    fn short_user_agents_and_queries_are_signed_where_f2_crashes() {
        // F2 hex-decodes strings of 32 characters or fewer: a UA of 24 bytes
        // or fewer, or a short query, makes it raise. Both are plain input here.
        for ua in ["a", "curl/8.5.0", "Mozilla/5.0 (X11; Linux)", "x".repeat(24).as_str()] {
            let xb = x_bogus(Q1, ua, XBogusInputs::at(1_700_000_000)).expect("signs");
            assert_eq!(xb.len(), 28);
            let fields = decode_x_bogus(&xb).expect("decodes");
            let u =
                md5(base64::engine::general_purpose::STANDARD.encode(rc4(&UA_KEY, ua.as_bytes())).as_bytes());
            assert_eq!(fields.user_agent_hash, [u[14], u[15]]);
        }
        let xb = x_bogus("a=1", UA, XBogusInputs::at(1)).expect("signs");
        let p = md5(&md5(b"a=1"));
        assert_eq!(decode_x_bogus(&xb).map(|f| f.query_hash), Some([p[14], p[15]]));
    }

    #[test]
    fn decoding_gives_back_every_input() {
        let inputs = XBogusInputs { unix_seconds: 1_735_689_600, canvas: 0x0102_0304 };
        let xb = x_bogus(Q2, UA, inputs).expect("signs");
        let f = decode_x_bogus(&xb).expect("decodes");
        let p = md5(&md5(Q2.as_bytes()));
        assert_eq!(f.query_hash, [p[14], p[15]]);
        assert_eq!((f.unix_seconds, f.canvas), (1_735_689_600, 0x0102_0304));
        assert_eq!(
            decode_x_bogus("DFSzswVY4/iANJXJtmWx-e9WX7rC"),
            None,
            "a flipped bit fails the check byte"
        );
        assert_eq!(decode_x_bogus("short"), None);
    }

    #[test]
    fn refuses_what_cannot_be_sent_as_signed() {
        assert_eq!(x_bogus(Q1, "", XBogusInputs::at(0)), Err(SignError::EmptyUserAgent));
        assert_eq!(
            x_bogus("q=\u{4e2d}", UA, XBogusInputs::at(0)),
            Err(SignError::NotLatin1 { what: "query" })
        );
        assert_eq!(
            x_bogus(Q1, "Mozilla \u{2603}", XBogusInputs::at(0)),
            Err(SignError::NotLatin1 { what: "user agent" })
        );
    }
}
