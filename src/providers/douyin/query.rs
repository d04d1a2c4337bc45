//! Douyin web queries: the common parameter block in F2's order, each
//! endpoint's fields after it, and the encoding that is both signed and
//! sent.
//!
//! Owns the order and the bytes (docs/douyin.md, "Queries"; the reference
//! is F2 0.0.1.7's `BaseRequestModel`, `BaseLiveModel` and `BaseLiveModel2`
//! in `f2/apps/douyin/model.py`, https://github.com/Johnserf-Seed/f2,
//! whose field order is the query order). F2 joins `key=value` with `&`
//! and encodes nothing: msToken's `+`, `-` and `==` go out raw, and the
//! signature covers exactly those bytes. Invariant: [`Query::encode`] is the
//! string that is both signed and sent; it refuses a value with a byte an
//! HTTP client would have to escape (or that would split the pair), so the
//! client can never send bytes other than those signed.

use std::fmt;

/// A value, typed as F2's model types it (the POST body of the collection
/// endpoint carries numbers as JSON numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string field.
    Text(String),
    /// An integer field.
    Int(i64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) => f.write_str(s),
            Value::Int(n) => write!(f, "{n}"),
        }
    }
}

/// A value that cannot go into the query as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The parameter.
    pub key: &'static str,
    /// The offending character.
    pub found: char,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "query parameter {} has {:?}, which cannot be sent unescaped", self.key, self.found)
    }
}

impl std::error::Error for QueryError {}

/// The browser and client the common block describes. It should agree with
/// the User-Agent sent; the defaults are F2 0.0.1.7's (Edge 130 on Windows
/// 10, which its default UA is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientProfile {
    /// Douyin web client version code (`290100`).
    pub version_code: String,
    /// Douyin web client version name (`29.1.0`).
    pub version_name: String,
    /// UI language of the live block (`zh-CN`).
    pub language: String,
    /// `navigator.language` (`zh-CN`).
    pub browser_language: String,
    /// `navigator.platform` (`Win32`).
    pub browser_platform: String,
    /// Browser name (`Edge`).
    pub browser_name: String,
    /// Browser version (`130.0.0.0`).
    pub browser_version: String,
    /// Engine name (`Blink`).
    pub engine_name: String,
    /// Engine version (`130.0.0.0`).
    pub engine_version: String,
    /// OS name (`Windows`).
    pub os_name: String,
    /// OS version (`10`).
    pub os_version: String,
}

impl Default for ClientProfile {
    fn default() -> ClientProfile {
        let s = |v: &str| v.to_string();
        ClientProfile {
            version_code: s("290100"),
            version_name: s("29.1.0"),
            language: s("zh-CN"),
            browser_language: s("zh-CN"),
            browser_platform: s("Win32"),
            browser_name: s("Edge"),
            browser_version: s("130.0.0.0"),
            engine_name: s("Blink"),
            engine_version: s("130.0.0.0"),
            os_name: s("Windows"),
            os_version: s("10"),
        }
    }
}

/// An ordered query: parameters go out in the order they were added.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pairs: Vec<(&'static str, Value)>,
}

impl Query {
    /// An empty query.
    pub fn new() -> Query {
        Query::default()
    }

    /// Adds a string parameter (sent as it is: no escaping).
    #[must_use]
    pub fn text(mut self, key: &'static str, value: impl Into<String>) -> Query {
        self.pairs.push((key, Value::Text(value.into())));
        self
    }

    /// Adds an integer parameter.
    #[must_use]
    pub fn int(mut self, key: &'static str, value: i64) -> Query {
        self.pairs.push((key, Value::Int(value)));
        self
    }

    /// The browser's description, the same run of keys in F2's web and
    /// live blocks (`cookie_enabled` through `browser_version`).
    #[must_use]
    fn browser(self, c: &ClientProfile) -> Query {
        self.text("cookie_enabled", "true")
            .int("screen_width", 1920)
            .int("screen_height", 1080)
            .text("browser_language", &c.browser_language)
            .text("browser_platform", &c.browser_platform)
            .text("browser_name", &c.browser_name)
            .text("browser_version", &c.browser_version)
    }

    /// The parameters, in order.
    pub fn pairs(&self) -> &[(&'static str, Value)] {
        &self.pairs
    }

    /// The common block of every `www.douyin.com` web API call
    /// (`BaseRequestModel`), ending with `msToken`.
    pub fn common(client: &ClientProfile, ms_token: &str) -> Query {
        let c = client;
        Query::new()
            .text("device_platform", "webapp")
            .text("aid", "6383")
            .text("channel", "channel_pc_web")
            .int("pc_client_type", 1)
            .int("publish_video_strategy_type", 2)
            .text("pc_libra_divert", "Windows")
            .text("version_code", &c.version_code)
            .text("version_name", &c.version_name)
            .browser(c)
            .text("browser_online", "true")
            .text("engine_name", &c.engine_name)
            .text("engine_version", &c.engine_version)
            .text("os_name", &c.os_name)
            .text("os_version", &c.os_version)
            .int("cpu_core_num", 12)
            .int("device_memory", 8)
            .text("platform", "PC")
            .int("downlink", 10)
            .text("effective_type", "4g")
            .int("round_trip_time", 100)
            .text("msToken", ms_token)
    }

    /// The block of `live.douyin.com` calls (`BaseLiveModel`; no msToken).
    pub fn live(client: &ClientProfile) -> Query {
        let c = client;
        Query::new()
            .text("aid", "6383")
            .text("app_name", "douyin_web")
            .int("live_id", 1)
            .text("device_platform", "web")
            .text("language", &c.language)
            .browser(c)
            .text("enter_source", "")
            .text("is_need_double_stream", "false")
    }

    /// `aweme/detail/`: one work.
    pub fn post_detail(common: Query, aweme_id: &str) -> Query {
        common.text("aweme_id", aweme_id)
    }

    /// `aweme/post/` (a user's works) and `aweme/favorite/` (their likes).
    pub fn user_posts(common: Query, max_cursor: i64, count: i64, sec_user_id: &str) -> Query {
        common.int("max_cursor", max_cursor).int("count", count).text("sec_user_id", sec_user_id)
    }

    /// `mix/aweme/`: a mix's works.
    pub fn user_mix(common: Query, cursor: i64, count: i64, mix_id: &str) -> Query {
        common.int("cursor", cursor).int("count", count).text("mix_id", mix_id)
    }

    /// `aweme/listcollection/` (POST), `collects/list/` and
    /// `music/listcollection/`: the logged-in user's lists.
    pub fn cursor_page(common: Query, cursor: i64, count: i64) -> Query {
        common.int("cursor", cursor).int("count", count)
    }

    /// `collects/video/list/`: one collects folder's works.
    pub fn collects_video(common: Query, cursor: i64, count: i64, collects_id: &str) -> Query {
        Query::cursor_page(common, cursor, count).text("collects_id", collects_id)
    }

    /// `tab/feed/`: the home feed (F2's `PostFeed` fields in its order).
    /// F2 puts `aweme_pc_rec_raw_data={}` in the query raw, which an HTTP
    /// client escapes after F2 signed it; here it is escaped before signing.
    pub fn post_feed(common: Query, count: i64, refresh_index: i64) -> Query {
        common
            .int("count", count)
            .text("tag_id", "")
            .text("share_aweme_id", "")
            .text("live_insert_type", "")
            .int("refresh_index", refresh_index)
            .int("video_type_select", 1)
            .text("aweme_pc_rec_raw_data", "%7B%7D")
            .text("globalwid", "")
            .text("pull_type", "")
            .text("min_window", "")
            .text("free_right", "")
            .text("ug_source", "")
            .text("creative_id", "")
    }

    /// `user/profile/other/`.
    pub fn user_profile(common: Query, sec_user_id: &str) -> Query {
        common.text("sec_user_id", sec_user_id)
    }

    /// `webcast/room/web/enter/` on `live.douyin.com`.
    pub fn live_enter(live: Query, web_rid: &str) -> Query {
        live.text("web_rid", web_rid).text("room_id_str", "")
    }

    /// `webcast/room/reflow/info/` on `webcast.amemv.com`, for app room ids
    /// (`BaseLiveModel2`; F2 sends it with an empty msToken and Cookie).
    pub fn reflow_info(verify_fp: &str, room_id: &str) -> Query {
        Query::new()
            .text("verifyFp", verify_fp)
            .text("type_id", "0")
            .text("live_id", "1")
            .text("sec_user_id", "")
            .text("version_code", "99.99.99")
            .text("app_id", "1128")
            .text("msToken", "")
            .text("room_id", room_id)
    }

    /// `k=v&k=v…` exactly as F2 builds it: the bytes to sign and to send.
    pub fn encode(&self) -> Result<String, QueryError> {
        let mut out = String::new();
        for (i, (key, value)) in self.pairs.iter().enumerate() {
            let v = value.to_string();
            check(key, key, true)?;
            check(key, &v, false)?;
            if i > 0 {
                out.push('&');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(&v);
        }
        Ok(out)
    }

    /// The JSON body of a POST that carries the parameters as well (the
    /// collection endpoint): an object in query order, numbers as numbers.
    pub fn json_body(&self) -> String {
        let fields: Vec<String> = self
            .pairs
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::Text(s) => serde_json::Value::from(s.as_str()).to_string(),
                    Value::Int(n) => n.to_string(),
                };
                format!("{}:{v}", serde_json::Value::from(*k))
            })
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

/// Refuses what an HTTP client would escape or what would break the pairs:
/// everything but RFC 3986's query characters, `&` and `#` anywhere, `=` in
/// a key, and a `%` that does not start an escape.
fn check(key: &'static str, text: &str, is_key: bool) -> Result<(), QueryError> {
    let b = text.as_bytes();
    for (i, c) in text.char_indices() {
        let ok = match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' => true,
            '-' | '.' | '_' | '~' | '!' | '$' | '\'' | '(' | ')' | '*' | '+' | ',' | ';' | ':' | '@'
            | '/' | '?' => true,
            '=' => !is_key,
            '%' => {
                b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            }
            _ => false,
        };
        if !ok {
            return Err(QueryError { key, found: c });
        }
    }
    Ok(())
}

/// Which signature a request carries, and under which parameter name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureParam {
    /// `a_bogus` (F2's default).
    ABogus,
    /// `X-Bogus`.
    XBogus,
}

impl SignatureParam {
    /// The parameter name.
    pub fn name(self) -> &'static str {
        match self {
            SignatureParam::ABogus => "a_bogus",
            SignatureParam::XBogus => "X-Bogus",
        }
    }
}

/// The URL sent: `endpoint`, `?` (or `&` when it has a query already), the
/// encoded query, and the signature as the last parameter, unescaped (both
/// signatures' alphabets are query-safe).
pub fn signed_url(endpoint: &str, query: &str, param: SignatureParam, signature: &str) -> String {
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{sep}{query}&{}={signature}", param.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::douyin::sign::{ABogusInputs, XBogusInputs, a_bogus, decode_x_bogus, x_bogus};
    use md5::{Digest, Md5};

    const COMMON: &str = "device_platform=webapp&aid=6383&channel=channel_pc_web&pc_client_type=1&publish_video_strategy_type=2&pc_libra_divert=Windows&version_code=290100&version_name=29.1.0&cookie_enabled=true&screen_width=1920&screen_height=1080&browser_language=zh-CN&browser_platform=Win32&browser_name=Edge&browser_version=130.0.0.0&browser_online=true&engine_name=Blink&engine_version=130.0.0.0&os_name=Windows&os_version=10&cpu_core_num=12&device_memory=8&platform=PC&downlink=10&effective_type=4g&round_trip_time=100&msToken=";
    const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0";

    fn ms_token() -> String {
        format!("{}==", "M".repeat(126))
    }

    #[test]
    fn the_user_post_query_is_byte_for_byte_f2s() {
        // The query F2 0.0.1.7's crawler sent to a loopback fake for a user's
        // posts (msToken patched to M…M==).
        let q = Query::user_posts(
            Query::common(&ClientProfile::default(), &ms_token()),
            0,
            20,
            "MS4wLjABAAAAfake",
        );
        let want = format!("{COMMON}{}&max_cursor=0&count=20&sec_user_id=MS4wLjABAAAAfake", ms_token());
        assert_eq!(q.encode(), Ok(want));
    }

    #[test]
    fn every_endpoint_appends_its_fields_after_the_common_block() {
        let common = || Query::common(&ClientProfile::default(), "tok+en-==");
        let tail = |q: Query| q.encode().expect("encodes")[COMMON.len() + "tok+en-==".len()..].to_string();
        assert_eq!(
            tail(Query::post_detail(common(), "7380308675841297704")),
            "&aweme_id=7380308675841297704"
        );
        assert_eq!(
            tail(Query::user_mix(common(), 0, 20, "7360898383181809676")),
            "&cursor=0&count=20&mix_id=7360898383181809676"
        );
        assert_eq!(tail(Query::cursor_page(common(), 1700000000000, 10)), "&cursor=1700000000000&count=10");
        assert_eq!(tail(Query::collects_video(common(), 0, 10, "123")), "&cursor=0&count=10&collects_id=123");
        assert_eq!(tail(Query::user_profile(common(), "MS4w")), "&sec_user_id=MS4w");
        assert_eq!(
            tail(Query::post_feed(common(), 10, 1)),
            "&count=10&tag_id=&share_aweme_id=&live_insert_type=&refresh_index=1&video_type_select=1&aweme_pc_rec_raw_data=%7B%7D&globalwid=&pull_type=&min_window=&free_right=&ug_source=&creative_id="
        );
    }

    #[test]
    fn the_live_blocks_are_f2s() {
        let q = Query::live_enter(Query::live(&ClientProfile::default()), "36299127202");
        assert_eq!(
            q.encode().as_deref(),
            Ok(
                "aid=6383&app_name=douyin_web&live_id=1&device_platform=web&language=zh-CN&cookie_enabled=true&screen_width=1920&screen_height=1080&browser_language=zh-CN&browser_platform=Win32&browser_name=Edge&browser_version=130.0.0.0&enter_source=&is_need_double_stream=false&web_rid=36299127202&room_id_str="
            )
        );
        let q = Query::reflow_info("verify_abc", "7318296342189919011");
        assert_eq!(
            q.encode().as_deref(),
            Ok(
                "verifyFp=verify_abc&type_id=0&live_id=1&sec_user_id=&version_code=99.99.99&app_id=1128&msToken=&room_id=7318296342189919011"
            )
        );
    }

    #[test]
    fn the_signature_covers_the_exact_bytes_sent() {
        let q =
            Query::post_detail(Query::common(&ClientProfile::default(), "ab+c/d=="), "7380308675841297704");
        let encoded = q.encode().expect("encodes");
        let inputs = ABogusInputs {
            fingerprint: "1536|747|1560|835|0|30|0|0|1600|900|1600|900|1536|747|24|24|Win32".into(),
            randoms: [5000; 3],
        };
        let ab = a_bogus(&encoded, "", UA, &inputs, &mut || 1_700_000_000_500).expect("signs");
        let endpoint = "https://www.douyin.com/aweme/v1/web/aweme/detail/";
        let url = signed_url(endpoint, &encoded, SignatureParam::ABogus, &ab);
        assert_eq!(url, format!("{endpoint}?{encoded}&a_bogus={ab}"));
        assert!(url.contains("msToken=ab+c/d==&aweme_id="), "no escaping: {url}");
        // What a server strips off before checking is what was signed.
        let (sent, sig) = url.split_once('?').expect("query").1.rsplit_once("&a_bogus=").expect("last");
        assert_eq!((sent, sig), (encoded.as_str(), ab.as_str()));

        let xb = x_bogus(&encoded, UA, XBogusInputs::at(1_700_000_000)).expect("signs");
        let url = signed_url(&format!("{endpoint}?x=1"), &encoded, SignatureParam::XBogus, &xb);
        assert!(url.starts_with(&format!("{endpoint}?x=1&device_platform=")));
        let p: [u8; 16] = Md5::digest(Md5::digest(encoded.as_bytes())).into();
        assert_eq!(
            decode_x_bogus(url.rsplit_once("&X-Bogus=").expect("last").1).map(|f| f.query_hash),
            Some([p[14], p[15]])
        );
    }

    #[test]
    fn values_that_would_be_escaped_or_split_are_refused() {
        let common = || Query::common(&ClientProfile::default(), "t");
        for (value, found) in
            [("a b", ' '), ("a&b=c", '&'), ("a#b", '#'), ("中", '中'), ("50%", '%'), ("{}", '{')]
        {
            assert_eq!(
                Query::user_profile(common(), value).encode(),
                Err(QueryError { key: "sec_user_id", found }),
                "{value}"
            );
        }
        assert_eq!(Query::new().text("a=b", "1").encode(), Err(QueryError { key: "a=b", found: '=' }));
        // Already-escaped text and `=` in values go through untouched.
        assert_eq!(Query::new().text("v", "5.0%20(X)==").encode().as_deref(), Ok("v=5.0%20(X)=="));
    }

    #[test]
    fn the_post_body_is_the_same_fields_with_their_types() {
        let q = Query::cursor_page(Query::common(&ClientProfile::default(), "t\"k"), 0, 20);
        let body = q.json_body();
        assert!(
            body.starts_with(
                r#"{"device_platform":"webapp","aid":"6383","channel":"channel_pc_web","pc_client_type":1,"#
            ),
            "{body}"
        );
        assert!(body.ends_with(r#""msToken":"t\"k","cursor":0,"count":20}"#), "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["screen_width"], 1920);
        assert_eq!(v["version_code"], "290100");
    }
}
