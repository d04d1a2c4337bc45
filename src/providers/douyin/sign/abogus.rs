//! A-Bogus: the current Douyin web signature, appended as `&a_bogus=…`.
//!
//! Owns the algorithm (docs/douyin.md, "A-Bogus"; the reference is F2's
//! `f2/utils/abogus.py`, https://github.com/Johnserf-Seed/f2): salted
//! double SM3 of the query and of the method string, SM3 of the
//! RC4-obfuscated User-Agent, a sparse array of timestamps and constants,
//! a stateful RC4-like keystream over a fixed table, a random prefix and a
//! base64 variant that lets values above 255 bleed into their neighbours.
//! Invariants: the table is copied for every signature (F2 mutates its
//! copy, so a reused F2 instance signs differently the second time); every
//! source of randomness (fingerprint, the three randoms, the clock) is an
//! argument, so the output is reproducible; values above 255 are kept, not
//! masked, exactly where the reference keeps them.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::alphabet::Alphabet;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use sm3::{Digest, Sm3};

use super::common::{SignError, rc4, user_agent_bytes};

/// The app id signed into every value (Douyin web).
const AID: u32 = 6383;
/// The page id F2 signs.
const PAGE_ID: u32 = 0;
/// The request options F2 always signs (its comment's "POST" set; it uses
/// them for GET too).
const OPTIONS: [u32; 3] = [0, 1, 14];
/// Appended to the query and to the method string before hashing.
const SALT: &str = "cus";
/// The UA is RC4-obfuscated with this key before it is hashed.
const UA_KEY: [u8; 3] = [0x00, 0x01, 0x0E];

/// The alphabet of the final encoding.
const OUT_ALPHABET: &[u8; 64] = b"Dkdpgh2ZmsQB80/MfvV36XI1R45-WUAlEixNLwoqYTOPuzKFjJnry79HbGcaStCe";

/// The alphabet of the User-Agent's encoding: a bit-stream base64 that pads
/// like standard base64, so the `base64` crate encodes it exactly.
const UA_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &match Alphabet::new("ckdp1h4ZKsUB80/Mfvw36XIgR25+WQAlEi7NLboqYTOPuzmFjJnryx9HVGDaStCe") {
        Ok(a) => a,
        Err(_) => panic!("the A-Bogus UA alphabet is 64 distinct characters"),
    },
    GeneralPurposeConfig::new(),
);

/// The order in which the sparse array is read.
const ORDER: [usize; 44] = [
    18, 20, 52, 26, 30, 34, 58, 38, 40, 53, 42, 21, 27, 54, 55, 31, 35, 57, 39, 41, 43, 22, 28, 32, 60, 36,
    23, 29, 33, 37, 44, 45, 59, 46, 47, 48, 49, 50, 24, 25, 65, 66, 70, 71,
];

/// The keystream's starting table, a permutation of 0..=255 (F2's
/// `CryptoUtility.big_array`).
const TABLE: [u8; 256] = [
    121, 243, 55, 234, 103, 36, 47, 228, 30, 231, 106, 6, 115, 95, 78, 101, 250, 207, 198, 50, 139, 227, 220,
    105, 97, 143, 34, 28, 194, 215, 18, 100, 159, 160, 43, 8, 169, 217, 180, 120, 247, 45, 90, 11, 27, 197,
    46, 3, 84, 72, 5, 68, 62, 56, 221, 75, 144, 79, 73, 161, 178, 81, 64, 187, 134, 117, 186, 118, 16, 241,
    130, 71, 89, 147, 122, 129, 65, 40, 88, 150, 110, 219, 199, 255, 181, 254, 48, 4, 195, 248, 208, 32, 116,
    167, 69, 201, 17, 124, 125, 104, 96, 83, 80, 127, 236, 108, 154, 126, 204, 15, 20, 135, 112, 158, 13, 1,
    188, 164, 210, 237, 222, 98, 212, 77, 253, 42, 170, 202, 26, 22, 29, 182, 251, 10, 173, 152, 58, 138, 54,
    141, 185, 33, 157, 31, 252, 132, 233, 235, 102, 196, 191, 223, 240, 148, 39, 123, 92, 82, 128, 109, 57,
    24, 38, 113, 209, 245, 2, 119, 153, 229, 189, 214, 230, 174, 232, 63, 52, 205, 86, 140, 66, 175, 111,
    171, 246, 133, 238, 193, 99, 60, 74, 91, 225, 51, 76, 37, 145, 211, 166, 151, 213, 206, 0, 200, 244, 176,
    218, 44, 184, 172, 49, 216, 93, 168, 53, 21, 183, 41, 67, 85, 224, 155, 226, 242, 87, 177, 146, 70, 190,
    12, 162, 19, 137, 114, 25, 165, 163, 192, 23, 59, 9, 94, 179, 107, 35, 7, 142, 131, 239, 203, 149, 136,
    61, 249, 14, 156,
];

/// The randomness of one A-Bogus value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ABogusInputs {
    /// The browser fingerprint string ([`browser_fingerprint`]).
    pub fingerprint: String,
    /// Three randoms in `0..10000` (F2: `int(random.random() * 10000)`).
    pub randoms: [u32; 3],
}

impl ABogusInputs {
    /// Fresh randomness, as F2 draws it for every request.
    pub fn random(rng: &mut fastrand::Rng) -> ABogusInputs {
        ABogusInputs {
            fingerprint: browser_fingerprint(rng, "Win32"),
            randoms: [rng.u32(0..10_000), rng.u32(0..10_000), rng.u32(0..10_000)],
        }
    }
}

/// A random browser fingerprint in F2's shape:
/// `iw|ih|ow|oh|0|sy|0|0|w|h|aw|ah|iw|ih|24|24|platform` (inner size,
/// outer size 24-32 and 75-90 pixels larger, screen y 0 or 30, screen and
/// available sizes). F2's Edge and Chrome fingerprints use `Win32`.
pub fn browser_fingerprint(rng: &mut fastrand::Rng, platform: &str) -> String {
    let (iw, ih) = (rng.u32(1024..=1920), rng.u32(768..=1080));
    let (ow, oh) = (iw + rng.u32(24..=32), ih + rng.u32(75..=90));
    let sy = if rng.bool() { 30 } else { 0 };
    let (w, h) = (rng.u32(1024..=1920), rng.u32(768..=1080));
    let (aw, ah) = (rng.u32(1280..=1920), rng.u32(800..=1080));
    format!("{iw}|{ih}|{ow}|{oh}|0|{sy}|0|0|{w}|{h}|{aw}|{ah}|{iw}|{ih}|24|24|{platform}")
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn sm3(data: &[u8]) -> [u8; 32] {
    Sm3::digest(data).into()
}

/// SM3(SM3(text + salt)): the second round hashes the raw digest, unsalted.
fn salted_twice(text: &str) -> [u8; 32] {
    sm3(&sm3(format!("{text}{SALT}").as_bytes()))
}

/// The A-Bogus value for `query` (the exact bytes that will be sent, without
/// any `a_bogus` parameter), `method` (F2 always passes `""`, POST
/// included) and `user_agent` (the exact header value). `clock` gives
/// milliseconds; it is read before and after hashing, as the browser does.
pub fn a_bogus(
    query: &str,
    method: &str,
    user_agent: &str,
    inputs: &ABogusInputs,
    clock: &mut dyn FnMut() -> u64,
) -> Result<String, SignError> {
    let ua = user_agent_bytes(user_agent)?;
    let fp: Vec<u32> = inputs.fingerprint.chars().map(u32::from).collect();
    let start = clock();
    // The query and method are hashed as UTF-8 (unlike X-Bogus).
    let a1 = salted_twice(query);
    let a2 = salted_twice(method);
    let a3 = sm3(UA_ENGINE.encode(rc4(&UA_KEY, &ua)).as_bytes());
    let end = clock();

    let mut d = [0u32; 72];
    d[8] = 3;
    d[18] = 44;
    put_be(&mut d, 20, start as u32);
    // Not bytes: about 395 and 1 for present-day times. Kept as they are.
    d[24] = (start >> 32) as u32;
    d[25] = (start >> 40) as u32;
    put_be(&mut d, 26, OPTIONS[0]);
    d[30] = (OPTIONS[1] / 256) & 255;
    d[31] = OPTIONS[1] % 256;
    d[32] = (OPTIONS[1] >> 24) & 255;
    d[33] = (OPTIONS[1] >> 16) & 255;
    put_be(&mut d, 34, OPTIONS[2]);
    d[38] = a1[21].into();
    d[39] = a1[22].into();
    d[40] = a2[21].into();
    d[41] = a2[22].into();
    d[42] = a3[23].into();
    d[43] = a3[24].into();
    put_be(&mut d, 44, end as u32);
    d[48] = d[8];
    d[49] = (end >> 32) as u32;
    d[50] = (end >> 40) as u32;
    put_be(&mut d, 51, PAGE_ID);
    d[55] = PAGE_ID;
    d[56] = AID;
    d[57] = AID & 255;
    d[58] = (AID >> 8) & 255;
    d[59] = (AID >> 16) & 255;
    d[60] = (AID >> 24) & 255;
    // The length counts characters, as F2's len() does.
    d[64] = fp.len() as u32;
    d[65] = fp.len() as u32;

    let mut vals: Vec<u32> = ORDER.iter().map(|&i| d[i]).collect();
    let check = ORDER.iter().fold(0, |acc, &i| acc ^ d[i]);
    vals.extend(fp);
    vals.push(check);

    let mut out = Vec::with_capacity(12 + vals.len());
    for r in inputs.randoms {
        out.extend([(r & 255 & 170) | 1, (r & 255 & 85) | 2, ((r >> 8) & 170) | 5, ((r >> 8) & 85) | 40]);
    }
    out.extend(transform(&vals));
    Ok(encode(&out))
}

fn put_be(d: &mut [u32], at: usize, v: u32) {
    for (k, b) in v.to_be_bytes().into_iter().enumerate() {
        d[at + k] = b.into();
    }
}

/// XORs `vals` with the keystream drawn from a fresh copy of [`TABLE`]. The
/// keystream does not depend on the data; a value above 255 keeps its high
/// bits.
fn transform(vals: &[u32]) -> Vec<u32> {
    let mut t = TABLE;
    let mut ib = usize::from(t[1]);
    let (mut init, mut e) = (0usize, 0usize);
    let mut out = Vec::with_capacity(vals.len());
    for (i, v) in vals.iter().enumerate() {
        let s = if i == 0 {
            init = usize::from(t[ib]);
            let s = ib + init;
            t[1] = init as u8;
            t[ib] = ib as u8;
            s
        } else {
            init + e
        } % 256;
        out.push(v ^ u32::from(t[s]));
        let j = (i + 2) % 256;
        e = usize::from(t[j]);
        let s = (ib + e) % 256;
        init = usize::from(t[s]);
        t[s] = t[j];
        t[j] = init as u8;
        ib = s;
    }
    out
}

/// The final base64 variant: groups of three values made into one integer
/// with plain shifts (a value above 255 overlaps its neighbour, as in the
/// reference), a short last group giving 2 or 3 characters, then `=` to a
/// multiple of four.
fn encode(vals: &[u32]) -> String {
    let mut s = String::with_capacity(vals.len() * 4 / 3 + 4);
    for g in vals.chunks(3) {
        let n = g.iter().zip([16, 8, 0]).fold(0u64, |acc, (&v, sh)| acc | (u64::from(v) << sh));
        let chars = g.len() + 1;
        for shift in [18, 12, 6, 0].into_iter().take(chars) {
            s.push(char::from(OUT_ALPHABET[((n >> shift) & 63) as usize]));
        }
    }
    while !s.len().is_multiple_of(4) {
        s.push('=');
    }
    s
}

/// What a server learns from an A-Bogus value that verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ABogusCheck {
    /// The client's randomness, recovered.
    pub inputs: ABogusInputs,
    /// The client's clock before hashing (ms).
    pub start_ms: u64,
    /// The client's clock after hashing (ms).
    pub end_ms: u64,
}

/// Checks `value` the way a server can (a fake Douyin does): the prefix
/// gives back the three randoms, the keystream is constant so the plain
/// values come back by XOR, giving the fingerprint and the low 32 bits of
/// both times (the high bits are the ones nearest `now_ms`, which is
/// unambiguous within 24 days); signing again with those must give the
/// same string. `None` when it does not; the caller judges the times.
pub fn verify_a_bogus(
    value: &str,
    query: &str,
    method: &str,
    user_agent: &str,
    now_ms: u64,
) -> Option<ABogusCheck> {
    let bytes = decode(value)?;
    if bytes.len() < 12 + ORDER.len() + 1 {
        return None;
    }
    let (prefix, body) = bytes.split_at(12);
    let randoms: [u32; 3] = std::array::from_fn(|k| {
        let p = &prefix[4 * k..4 * k + 4];
        let lo = (p[0] & 170) | (p[1] & 85);
        let hi = (p[2] & 170) | (p[3] & 85);
        u32::from(hi) << 8 | u32::from(lo)
    });
    let keystream = transform(&vec![0; body.len()]);
    let plain: Vec<u8> = body.iter().zip(&keystream).map(|(b, k)| b ^ (*k as u8)).collect();
    // Positions in ORDER of d[20..=23], d[44..=47] and d[65].
    let low = |at: [usize; 4]| u32::from_be_bytes(at.map(|i| plain[i]));
    let start_ms = nearest(now_ms, low([1, 11, 21, 26]));
    let end_ms = nearest(now_ms, low([30, 31, 33, 34]));
    let fp_len = usize::from(plain[40]);
    let fp = plain.get(ORDER.len()..ORDER.len() + fp_len)?;
    let inputs = ABogusInputs { fingerprint: fp.iter().map(|&b| char::from(b)).collect(), randoms };
    let mut clock = [end_ms, start_ms].to_vec();
    let again = a_bogus(query, method, user_agent, &inputs, &mut || clock.pop().unwrap_or(0)).ok()?;
    (again == value).then_some(ABogusCheck { inputs, start_ms, end_ms })
}

/// The time nearest `now` whose low 32 bits are `low`.
fn nearest(now: u64, low: u32) -> u64 {
    let base = (now & !0xFFFF_FFFF) | u64::from(low);
    [base.wrapping_sub(1 << 32), base, base + (1 << 32)]
        .into_iter()
        .min_by_key(|t| t.abs_diff(now))
        .unwrap_or(base)
}

/// The bytes of an encoded value (each value's low 8 bits, where the
/// encoding did not overlap them).
fn decode(value: &str) -> Option<Vec<u8>> {
    let digits: Vec<u32> = value
        .trim_end_matches('=')
        .bytes()
        .map(|c| OUT_ALPHABET.iter().position(|&a| a == c).map(|i| i as u32))
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for g in digits.chunks(4) {
        let n = g.iter().zip([18, 12, 6, 0]).fold(0u32, |acc, (&d, sh)| acc | (d << sh));
        for (k, shift) in [16, 8, 0].into_iter().enumerate() {
            if k + 1 < g.len() {
                out.push((n >> shift) as u8);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::providers::douyin::sign::common::vectors::{Q1, Q2, UA};
    const FP: &str = "1536|747|1560|835|0|30|0|0|1600|900|1600|900|1536|747|24|24|Win32";

    fn sign(q: &str, m: &str, r: u32) -> String {
        let inputs = ABogusInputs { fingerprint: FP.into(), randoms: [r; 3] };
        a_bogus(q, m, UA, &inputs, &mut || 1_700_000_000_500).expect("signs")
    }

    #[test]
    fn sm3_is_the_national_standard_hash() {
        // GB/T 32905-2016, example 1.
        let want = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0";
        let got: String = sm3(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn matches_f2_on_every_recorded_vector() {
        // Recorded from F2 0.0.1.7's ABogus with time.time() and
        // random.random() patched (rnd 0.5 gives r = 5000, 0.1234 gives 1234).
        let cases = [
            (
                Q1,
                "",
                5000,
                "xfmZ/RLdkrosDEWG56KLfY3q61e3YQxI0SVkMD2fhxfPqy39HMPy9exoIBGvXHWjwG/-IeYjy4hbT3ohrQ2y8qwf9W4x/25gsfSkKl12so0j53inC6WmE0wN-hsAtlaQsvHlEKi8owVtSYyhldAJ5kIlO62-zo0/9lE=",
            ),
            (
                Q1,
                "",
                1234,
                "E7mhBm0VkVnp6E6u56KLfY3q61e3YQxI0SVkMD2fhxfPqy39HMPy9exoIBGvXHWjwG/-IeYjy4hbT3ohrQ2y8qwf9W4x/25gsfSkKl12so0j53inC6WmE0wN-hsAtlaQsvHlEKi8owVtSYyhldAJ5kIlO62-zo0/9lE=",
            ),
            (
                Q1,
                "GET",
                5000,
                "xfmZ/RLdkrosDEWG56KLfY3q61SVYQxI0SVkMD2fhPDPqy39HMPy9exoIBGvXHWjwG/-IeYjy4hbT3ohrQ2y8qwf9W4x/25gsfSkKl12so0j53inC6WmE0wN-hsAtlaQsvHlEKi8owVtSYyhldAJ5kIlO62-zo0/95y=",
            ),
            (
                Q2,
                "",
                5000,
                "xfmZ/RLdkrosDEWG56KLfY3q6XM3YQxI0SVkMD2fSnfPqy39HMPy9exoIBGvXHWjwG/-IeYjy4hbT3ohrQ2y8qwf9W4x/25gsfSkKl12so0j53inC6WmE0wN-hsAtlaQsvHlEKi8owVtSYyhldAJ5kIlO62-zo0/93g=",
            ),
            (
                Q2,
                "GET",
                1234,
                "E7mhBm0VkVnp6E6u56KLfY3q6X8VYQxI0SVkMD2fSaDPqy39HMPy9exoIBGvXHWjwG/-IeYjy4hbT3ohrQ2y8qwf9W4x/25gsfSkKl12so0j53inC6WmE0wN-hsAtlaQsvHlEKi8owVtSYyhldAJ5kIlO62-zo0/9If=",
            ),
        ];
        for (q, m, r, want) in cases {
            assert_eq!(sign(q, m, r), want, "{q} {m:?} {r}");
        }
    }

    #[test]
    fn matches_f2_on_utf8_queries_methods_and_distinct_times() {
        // Random inputs recorded from F2 0.0.1.7: a query with CJK (hashed as
        // UTF-8), a Latin-1 UA, a non-empty method, ts1 later than ts0 and
        // three different randoms.
        let cases = [
            (
                "5.Y58w20ns=_WqV5I5slC1=KvTu%LvtéD6M&mdzA9eo_jjr=lXhs8qBTfTlfp/中文",
                "POST",
                "i))+wlqé4tt688qUklD0d3n)6qxD(L_6JltK2jZ",
                "1372|779|1403|859|0|0|0|0|1500|928|1500|928|1372|779|24|24|Win32",
                (1_698_592_617_577, 1_698_592_617_582),
                [2283, 8988, 4048],
                "Oy80QDLIsnok6ESz5lxLfY3q6I-HYgvJ0SVkMD2f38vuEL39HMTT9exoc7wvVKyjwG/-Ieujy4hbYr9krQ2HMZwf98ki/25dQfSkKl5Q5xSSs1X9eyUgJUsPmkt5Sec2Rk-1rOX/oh1HKRym09oHmhK4bIOwu3GMvf==",
            ),
            (
                "kDQI7__Gc9dZJxRiN.HXJpv6xdgp1K94n2m6&.KY.s=中文",
                "GET",
                "FHzV_Xo9;0/8zS/1tsQG)&HA(=bV5oRoGé3f.I1_;L23 0m6E=T+",
                "1138|853|1167|938|0|0|0|0|1315|818|1315|818|1138|853|24|24|Win32",
                (1_613_339_176_614, 1_613_339_176_630),
                [5743, 6474, 9273],
                "QyWZMDzdp3LTgn6u5V5LfY3q64RVYsFJ0SVkMD2fMBpO9g39HMOo9exo0Uwvgp6j5G0qIeujy4hbY3oBrQc70qwfHW4w/2AgQDSkKl5Q5xSSs1XjeLsgJ0hPmktWSFK2Rv11rOX8qheHzYSd09oHmhK4bIOwu3GM2E==",
            ),
        ];
        for (q, m, ua, fp, (t0, t1), randoms, want) in cases {
            let inputs = ABogusInputs { fingerprint: fp.into(), randoms };
            let mut times = vec![t1, t0];
            let got = a_bogus(q, m, ua, &inputs, &mut || times.pop().unwrap_or(0)).expect("signs");
            assert_eq!(got, want, "{q}");
        }
    }

    #[test]
    fn a_server_can_verify_a_value_without_the_clients_randomness() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..100 {
            let inputs = ABogusInputs::random(&mut rng);
            let t0 = 1_700_000_000_000 + rng.u64(0..1 << 40);
            let t1 = t0 + rng.u64(0..40);
            let mut times = vec![t1, t0];
            let ab = a_bogus(Q2, "", UA, &inputs, &mut || times.pop().unwrap_or(0)).expect("signs");
            let now = t1 + 3_000;
            let check = verify_a_bogus(&ab, Q2, "", UA, now).expect("verifies");
            assert_eq!(check, ABogusCheck { inputs, start_ms: t0, end_ms: t1 });
            assert_eq!(verify_a_bogus(&ab, Q1, "", UA, now), None, "another query");
            assert_eq!(verify_a_bogus(&ab, Q2, "GET", UA, now), None, "another method");
            assert_eq!(verify_a_bogus(&ab, Q2, "", "Mozilla/5.0 other", now), None, "another UA");
        }
        let vector = sign(Q1, "", 5000);
        let check = verify_a_bogus(&vector, Q1, "", UA, 1_700_000_100_000).expect("verifies");
        assert_eq!((check.start_ms, check.inputs.fingerprint.as_str()), (1_700_000_000_500, FP));
        assert_eq!(verify_a_bogus("not base64 at all!", Q1, "", UA, 0), None);
        assert_eq!(verify_a_bogus("", Q1, "", UA, 0), None);
    }

    #[test]
    fn every_signature_starts_from_a_fresh_table() {
        // F2 mutates its table: a reused instance signs differently. Here the
        // same inputs always give the same value.
        assert_eq!(sign(Q1, "", 5000), sign(Q1, "", 5000));
    }

    #[test]
    fn the_clock_is_read_before_and_after_hashing() {
        let mut t = 1_700_000_000_500u64;
        let inputs = ABogusInputs { fingerprint: FP.into(), randoms: [5000; 3] };
        let mut calls = 0;
        let moving = a_bogus(Q1, "", UA, &inputs, &mut || {
            calls += 1;
            t += 7;
            t
        })
        .expect("signs");
        assert_eq!(calls, 2);
        assert_ne!(moving, sign(Q1, "", 5000));
    }

    #[test]
    fn random_inputs_have_f2s_shape() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..200 {
            let inputs = ABogusInputs::random(&mut rng);
            assert!(inputs.randoms.iter().all(|r| *r < 10_000));
            let f: Vec<u32> =
                inputs.fingerprint.split('|').take(16).map(|x| x.parse().expect("numeric")).collect();
            assert_eq!(inputs.fingerprint.rsplit('|').next(), Some("Win32"));
            assert!((1024..=1920).contains(&f[0]) && (768..=1080).contains(&f[1]));
            assert!((24..=32).contains(&(f[2] - f[0])) && (75..=90).contains(&(f[3] - f[1])));
            assert!(f[4] == 0 && (f[5] == 0 || f[5] == 30) && f[6] == 0 && f[7] == 0);
            assert_eq!((f[12], f[13], f[14], f[15]), (f[0], f[1], 24, 24));
            let ab = a_bogus(Q2, "", UA, &inputs, &mut now_ms).expect("signs");
            assert_eq!(ab.len() % 4, 0);
            assert!(ab.bytes().all(|b| b == b'=' || OUT_ALPHABET.contains(&b)));
        }
    }

    #[test]
    fn short_or_unusual_user_agents_sign_and_empty_ones_are_refused() {
        let inputs = ABogusInputs { fingerprint: FP.into(), randoms: [1; 3] };
        assert!(a_bogus(Q1, "", "curl/8", &inputs, &mut || 1).is_ok());
        assert_eq!(a_bogus(Q1, "", "", &inputs, &mut || 1), Err(SignError::EmptyUserAgent));
        assert_eq!(
            a_bogus(Q1, "", "\u{4e2d}", &inputs, &mut || 1),
            Err(SignError::NotLatin1 { what: "user agent" })
        );
        // The query is hashed as UTF-8, so non-ASCII text still signs.
        assert!(a_bogus("k=\u{4e2d}\u{6587}", "", UA, &inputs, &mut || 1).is_ok());
    }
}
