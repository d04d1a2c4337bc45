//! Signing Douyin web requests: the X-Bogus and A-Bogus query signatures,
//! the tokens that go with them, and an external signer for when Douyin
//! changes its algorithm faster than releases come out.
//!
//! Owns nothing beyond its files: [`xbogus`](self) and `abogus` are pure
//! functions of the exact query bytes, the User-Agent and injected
//! randomness; `tokens` makes msToken and verify_fp values and describes
//! the ttwid and msToken requests; `external` runs the user's signer
//! command. Invariant: nothing here sends a request or reads a clock or a
//! random source that a caller cannot replace.

mod abogus;
mod common;
mod external;
mod tokens;
mod xbogus;

pub use abogus::{ABogusInputs, a_bogus, browser_fingerprint, now_ms};
pub use common::SignError;
pub use external::{DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, ExternalSigner, SignerError};
pub use tokens::{
    MS_TOKEN_URL, TTWID_BODY, TTWID_URL, TokenError, fallback_ms_token, ms_token_from, ms_token_request,
    s_v_web_id, ttwid_from, ttwid_request, verify_fp,
};
pub use xbogus::{X_BOGUS_CANVAS, XBogusFields, XBogusInputs, decode_x_bogus, x_bogus};
