//! Signing Douyin web requests: the X-Bogus and A-Bogus query signatures,
//! the tokens that go with them, and an external signer for when Douyin
//! changes its algorithm faster than releases come out.
//!
//! Owns nothing beyond its files: `xbogus` ([`x_bogus`]) and `abogus`
//! ([`a_bogus`]) are pure functions of the exact query bytes, the
//! User-Agent and injected randomness; `tokens` makes msToken and
//! verify_fp values and describes the msToken and ttwid requests;
//! `external` ([`ExternalSigner`]) runs the user's signer command; `common`
//! holds RC4 and the Latin-1 rule both signatures share. Invariant:
//! nothing here sends a request, and every clock and random source is an
//! argument a caller (a test) can replace.

mod abogus;
mod common;
mod external;
mod tokens;
mod xbogus;

pub use abogus::{ABogusCheck, ABogusInputs, a_bogus, browser_fingerprint, now_ms, verify_a_bogus};
pub use common::SignError;
pub use external::{DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, ExternalSigner, SignerError};
pub use tokens::{
    MS_TOKEN_STR_DATA, MS_TOKEN_URL, TTWID_BODY, TTWID_URL, TokenError, fallback_ms_token, ms_token_from,
    ms_token_request, s_v_web_id, ttwid_from, ttwid_request, verify_fp,
};
pub use xbogus::{X_BOGUS_CANVAS, XBogusFields, XBogusInputs, decode_x_bogus, x_bogus};
