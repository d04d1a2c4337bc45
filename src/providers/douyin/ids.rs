//! Douyin identifiers from what users paste: page URLs, `v.douyin.com`
//! short links, and whole share texts copied from the app.
//!
//! Owns the rules (docs/douyin.md, "IDs"; the patterns are those of F2's
//! `SecUserIdFetcher`, `AwemeIdFetcher`, `MixIdFetcher` and
//! `WebCastIdFetcher` in `f2/apps/douyin/utils.py`,
//! https://github.com/Johnserf-Seed/f2): the link is taken out of the text,
//! its host must be Douyin's (or a configured stand-in), and the id is read
//! from a named path segment or query parameter, percent-decoded and
//! checked against the characters such an id has. A short link carries no
//! id: it is answered with [`Resolved::NeedsRedirect`], and the provider,
//! which owns the network, follows it and reads the final URL with
//! [`id_in_url`]. Invariants: nothing here touches the network; an id is
//! returned only when it has the shape of its kind, so a hostile link can
//! never smuggle `/`, `..` or a query into a request path or a folder
//! name; two different Douyin links in one input are refused, not guessed.

use std::fmt;

/// Which id a job needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// A work (`aweme_id`): `douyin.one`.
    Aweme,
    /// A user (`sec_user_id`): post, like, profile, ….
    User,
    /// A mix (`mix_id`): `douyin.mix`.
    Mix,
    /// A live room: `web_rid`, or a `room_id` from an app share link.
    Live,
}

impl Wanted {
    /// The id's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Wanted::Aweme => "aweme_id",
            Wanted::User => "sec_user_id",
            Wanted::Mix => "mix_id",
            Wanted::Live => "live room id",
        }
    }
}

/// An identifier read from a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DouyinId {
    /// A work.
    Aweme(String),
    /// A user's `sec_user_id` (`MS4wLjABAAAA…`).
    SecUser(String),
    /// A mix (collection).
    Mix(String),
    /// A live room's web id (`live.douyin.com/<web_rid>`).
    WebRid(String),
    /// An app room id (19 digits; read through `room/reflow/info`).
    RoomId(String),
}

/// What a pasted input resolves to without the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The id is in the input.
    Id(DouyinId),
    /// A short link: GET it following redirects, then read the final URL
    /// with [`id_in_url`].
    NeedsRedirect(String),
}

/// Why no id could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    /// The input has no `http(s)://` link (and is not a bare id).
    NoLink,
    /// The link's host is not Douyin's.
    NotDouyin(String),
    /// The input has two different Douyin links.
    TwoLinks(String, String),
    /// The link has no id of the kind wanted.
    NotFound {
        /// The kind wanted (`aweme_id`, …).
        wanted: &'static str,
        /// The link.
        url: String,
    },
    /// The id found does not have the shape of its kind.
    BadId {
        /// The kind wanted.
        wanted: &'static str,
        /// The (decoded) value.
        value: String,
    },
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::NoLink => f.write_str("no Douyin link in the input"),
            IdError::NotDouyin(host) => write!(f, "{host} is not a Douyin host"),
            IdError::TwoLinks(a, b) => write!(f, "the input has two different Douyin links: {a} and {b}"),
            IdError::NotFound { wanted, url } => write!(f, "no {wanted} in {url}"),
            IdError::BadId { wanted, value } => write!(f, "{value:?} is not a valid {wanted}"),
        }
    }
}

impl std::error::Error for IdError {}

/// The hosts that count as Douyin. An entry matches itself and its
/// subdomains; an entry with a port (a test server) matches only with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosts {
    /// Short-link hosts: their links need a redirect.
    pub short: Vec<String>,
    /// Hosts whose URLs carry ids.
    pub web: Vec<String>,
}

impl Default for Hosts {
    fn default() -> Hosts {
        Hosts {
            short: vec!["v.douyin.com".into()],
            web: vec!["douyin.com".into(), "iesdouyin.com".into(), "amemv.com".into()],
        }
    }
}

impl Hosts {
    fn matches(list: &[String], host: &str, port: Option<&str>) -> bool {
        list.iter().any(|entry| match entry.split_once(':') {
            Some((h, p)) => h.eq_ignore_ascii_case(host) && Some(p) == port,
            None => {
                let e = entry.to_ascii_lowercase();
                host == e || host.strip_suffix(&e).is_some_and(|rest| rest.ends_with('.'))
            }
        })
    }
}

/// The parts of an absolute `http(s)` URL that the rules read.
struct Url<'a> {
    /// Lowercased, without userinfo or port.
    host: String,
    port: Option<&'a str>,
    path: &'a str,
    query: &'a str,
}

fn parse_url(url: &str) -> Option<Url<'_>> {
    let rest = strip_prefix_ci(url, "https://").or_else(|| strip_prefix_ci(url, "http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // `https://www.douyin.com@evil.example/…` is evil.example's.
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (hostport, None),
    };
    let tail = tail.split('#').next().unwrap_or("");
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    Some(Url { host: host.to_ascii_lowercase(), port, path, query })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// Characters that end a link inside share text besides whitespace: the
/// app puts Chinese text right after the link, and people wrap links in
/// brackets or quotes.
fn ends_link(c: char) -> bool {
    c.is_whitespace() || !c.is_ascii() || matches!(c, '<' | '>' | '"' | '\'' | '`')
}

/// The `http(s)://` links in `text`, in order, without trailing punctuation.
pub fn links_in(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = find_scheme(rest) {
        let tail = &rest[at..];
        let end = tail.find(ends_link).unwrap_or(tail.len());
        let link = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}']);
        if link.len() > "https://".len() {
            out.push(link);
        }
        rest = &tail[end.max(1)..];
    }
    out
}

fn find_scheme(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    match (lower.find("https://"), lower.find("http://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads what `input` (a URL, a share text, or a bare id) points at.
pub fn resolve(input: &str, wanted: Wanted, hosts: &Hosts) -> Result<Resolved, IdError> {
    let links = links_in(input);
    if links.is_empty() {
        return bare_id(input.trim(), wanted).map(Resolved::Id).ok_or(IdError::NoLink);
    }
    let mut chosen: Option<&str> = None;
    let mut foreign = None;
    for link in links {
        let Some(url) = parse_url(link) else { continue };
        let ours = Hosts::matches(&hosts.short, &url.host, url.port)
            || Hosts::matches(&hosts.web, &url.host, url.port);
        if !ours {
            foreign.get_or_insert(url.host);
            continue;
        }
        match chosen {
            Some(first) if first != link => return Err(IdError::TwoLinks(first.into(), link.into())),
            _ => chosen = Some(link),
        }
    }
    let Some(link) = chosen else { return Err(IdError::NotDouyin(foreign.unwrap_or_default())) };
    match id_in_url(link, wanted, hosts) {
        Err(IdError::NotFound { .. }) if is_short(link, hosts) => Ok(Resolved::NeedsRedirect(link.into())),
        other => other.map(Resolved::Id),
    }
}

/// A short link: a short host and a code in the path.
fn is_short(link: &str, hosts: &Hosts) -> bool {
    parse_url(link).is_some_and(|u| {
        Hosts::matches(&hosts.short, &u.host, u.port) && !u.path.trim_matches('/').is_empty()
    })
}

/// Reads the id of kind `wanted` in `url` (a page URL, or where a short
/// link ended up after its redirects).
pub fn id_in_url(url: &str, wanted: Wanted, hosts: &Hosts) -> Result<DouyinId, IdError> {
    let u = parse_url(url).ok_or_else(|| IdError::NotDouyin(url.into()))?;
    if !Hosts::matches(&hosts.short, &u.host, u.port) && !Hosts::matches(&hosts.web, &u.host, u.port) {
        return Err(IdError::NotDouyin(u.host));
    }
    let segments: Vec<&str> = u.path.split('/').filter(|s| !s.is_empty()).collect();
    let after = |name: &str| segments.windows(2).find(|w| w[0] == name).map(|w| w[1]);
    let param = |name: &str| {
        u.query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v))
    };
    let not_found = || IdError::NotFound { wanted: wanted.name(), url: url.into() };
    let (raw, make): (&str, fn(String) -> DouyinId) = match wanted {
        Wanted::User => {
            // `…/user/<sec_uid>` and `…/share/user/<sec_uid>`; F2 reads
            // `sec_uid=` where a short link's redirect leaves it.
            (after("user").or_else(|| param("sec_uid")).ok_or_else(not_found)?, DouyinId::SecUser)
        }
        // `modal_id` is how the web app links a work opened over a list.
        Wanted::Aweme => (
            after("video").or_else(|| after("note")).or_else(|| param("modal_id")).ok_or_else(not_found)?,
            DouyinId::Aweme,
        ),
        Wanted::Mix => (after("collection").ok_or_else(not_found)?, DouyinId::Mix),
        Wanted::Live => {
            if let Some(rid) = after("live") {
                (rid, live_id)
            } else if u.host == "live.douyin.com" && !segments.is_empty() {
                (segments[0], live_id)
            } else {
                (after("reflow").ok_or_else(not_found)?, DouyinId::RoomId)
            }
        }
    };
    let value =
        percent_decode(raw).ok_or_else(|| IdError::BadId { wanted: wanted.name(), value: raw.into() })?;
    if !valid(&value, wanted) {
        return Err(IdError::BadId { wanted: wanted.name(), value });
    }
    Ok(make(value))
}

/// A live id: 19 digits is an app room id, anything shorter a web_rid
/// (F2 tells them apart the same way).
fn live_id(v: String) -> DouyinId {
    if v.len() == 19 { DouyinId::RoomId(v) } else { DouyinId::WebRid(v) }
}

/// A bare id typed instead of a link: all digits for works, mixes and
/// rooms, `MS4wLjABAAAA…` for users.
fn bare_id(s: &str, wanted: Wanted) -> Option<DouyinId> {
    if !valid(s, wanted) {
        return None;
    }
    Some(match wanted {
        Wanted::Aweme => DouyinId::Aweme(s.into()),
        Wanted::Mix => DouyinId::Mix(s.into()),
        Wanted::Live => live_id(s.into()),
        Wanted::User if s.starts_with("MS4wLjABAAAA") => DouyinId::SecUser(s.into()),
        Wanted::User => return None,
    })
}

fn valid(v: &str, wanted: Wanted) -> bool {
    let digits = !v.is_empty() && v.len() <= 32 && v.bytes().all(|b| b.is_ascii_digit());
    match wanted {
        Wanted::Aweme | Wanted::Mix => digits,
        // A web_rid is digits in every link seen; a room id is 19 digits.
        Wanted::Live => digits,
        // sec_uid is URL-safe base64 of a binary id.
        Wanted::User => {
            (1..=200).contains(&v.len())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
    }
}

/// `%XX` decoding; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(input: &str, wanted: Wanted) -> Result<Resolved, IdError> {
        resolve(input, wanted, &Hosts::default())
    }

    fn id(input: &str, wanted: Wanted) -> Result<DouyinId, IdError> {
        id_in_url(input, wanted, &Hosts::default())
    }

    const SEC: &str = "MS4wLjABAAAAEc8EKgWVEpEQoDRRp8_M53psgc-BoKqre-jICyt6aBA";

    #[test]
    fn page_urls_give_their_ids() {
        let user = format!("https://www.douyin.com/user/{SEC}");
        assert_eq!(id(&user, Wanted::User), Ok(DouyinId::SecUser(SEC.into())));
        assert_eq!(
            id(&format!("{user}?from_tab_name=main&vid=1"), Wanted::User),
            Ok(DouyinId::SecUser(SEC.into()))
        );
        let aweme = DouyinId::Aweme("6969696969696969696".into());
        assert_eq!(id("https://www.douyin.com/video/6969696969696969696", Wanted::Aweme), Ok(aweme.clone()));
        assert_eq!(id("https://www.douyin.com/note/6969696969696969696", Wanted::Aweme), Ok(aweme.clone()));
        assert_eq!(
            id("https://www.douyin.com/jingxuan?modal_id=6969696969696969696", Wanted::Aweme),
            Ok(aweme)
        );
        assert_eq!(
            id("https://www.douyin.com/collection/7360898383181809676", Wanted::Mix),
            Ok(DouyinId::Mix("7360898383181809676".into()))
        );
        assert_eq!(
            id("https://live.douyin.com/36299127202", Wanted::Live),
            Ok(DouyinId::WebRid("36299127202".into()))
        );
        assert_eq!(
            id(
                "https://live.douyin.com/36299127202?enter_from_merge=link_share&enter_method=copy_link_share&action_type=click&from=web_code_link",
                Wanted::Live
            ),
            Ok(DouyinId::WebRid("36299127202".into()))
        );
        assert_eq!(
            id("https://www.douyin.com/follow/live/36299127202", Wanted::Live),
            Ok(DouyinId::WebRid("36299127202".into()))
        );
    }

    #[test]
    fn where_short_links_end_up_gives_the_ids() {
        // The final URLs of short-link redirects (share pages on iesdouyin).
        assert_eq!(
            id(
                "https://www.iesdouyin.com/share/video/7380308675841297704/?region=CN&mid=1&u_code=0",
                Wanted::Aweme
            ),
            Ok(DouyinId::Aweme("7380308675841297704".into()))
        );
        assert_eq!(
            id(
                &format!("https://www.iesdouyin.com/share/user/{SEC}?did=1&iid=2&sec_uid={SEC}&from_ssr=1"),
                Wanted::User
            ),
            Ok(DouyinId::SecUser(SEC.into()))
        );
        assert_eq!(
            id(&format!("https://v.douyin.com/x/?sec_uid={SEC}&u_code=1"), Wanted::User),
            Ok(DouyinId::SecUser(SEC.into()))
        );
        // An app live share: the id after `reflow/` is a room id.
        let reflow = r#"https://webcast.amemv.com/douyin/webcast/reflow/7318296342189919011?u_code=l1j9bkbd&did=MS4wLjABAAAAEs86TBQPNwAo-RGrcxWyCdwKhI66AK3Pqf3ieo6HaxI&with_sec_did=1&extra_params={"from_request_id":"20231230162057EC005772A8EAA0199906","im_channel_invite_id":"0"}&roomId=7318296342189919011&activity_info={}"#;
        assert_eq!(id(reflow, Wanted::Live), Ok(DouyinId::RoomId("7318296342189919011".into())));
        // F2 treats a 19-digit live id as a room id too.
        assert_eq!(
            id("https://live.douyin.com/7318296342189919011", Wanted::Live),
            Ok(DouyinId::RoomId("7318296342189919011".into()))
        );
    }

    #[test]
    fn short_links_need_a_redirect() {
        for (link, wanted) in [
            ("https://v.douyin.com/i2wyU53P/", Wanted::User),
            ("https://v.douyin.com/tttttttt/", Wanted::Aweme),
            ("https://v.douyin.com/i8tBR7hX/", Wanted::Live),
            ("https://v.douyin.com/AbCdEf/", Wanted::Mix),
        ] {
            assert_eq!(r(link, wanted), Ok(Resolved::NeedsRedirect(link.into())), "{link}");
        }
        // But a page URL without the id, or a short host without a code, is
        // an error, not a redirect.
        assert!(matches!(r("https://v.douyin.com/", Wanted::Aweme), Err(IdError::NotFound { .. })));
        assert!(matches!(r("https://www.douyin.com/", Wanted::Aweme), Err(IdError::NotFound { .. })));
    }

    #[test]
    fn share_texts_from_the_app() {
        let text = "7.43 复制打开抖音，看看【小明的作品】今天的晚霞 #日常 #风景  https://v.douyin.com/iRNBho6u/ 08/12 ABc:/ v@S.lP :1pm";
        assert_eq!(
            r(text, Wanted::Aweme),
            Ok(Resolved::NeedsRedirect("https://v.douyin.com/iRNBho6u/".into()))
        );
        // No space between the link and the Chinese text after it.
        let text =
            "长按复制此条消息，打开抖音搜索，查看TA的更多作品。https://v.douyin.com/i2wyU53P/复制此链接";
        assert_eq!(
            r(text, Wanted::User),
            Ok(Resolved::NeedsRedirect("https://v.douyin.com/i2wyU53P/".into()))
        );
        let text = format!("看看这个主页【https://www.douyin.com/user/{SEC}】。");
        assert_eq!(r(&text, Wanted::User), Ok(Resolved::Id(DouyinId::SecUser(SEC.into()))));
        let text = "5- 【直播】小明正在直播，来和我一起支持TA吧。复制下方链接，打开【抖音】，直接观看直播！ https://v.douyin.com/i8tBR7hX/ 1@8.com :0pm";
        assert_eq!(
            r(text, Wanted::Live),
            Ok(Resolved::NeedsRedirect("https://v.douyin.com/i8tBR7hX/".into()))
        );
    }

    #[test]
    fn hostile_inputs_are_refused_with_a_reason() {
        assert_eq!(r("复制打开抖音，看看【小明的作品】", Wanted::Aweme), Err(IdError::NoLink));
        assert_eq!(r("", Wanted::User), Err(IdError::NoLink));
        assert_eq!(r("https://", Wanted::User), Err(IdError::NoLink));
        assert_eq!(
            r("https://example.com/video/123", Wanted::Aweme),
            Err(IdError::NotDouyin("example.com".into()))
        );
        assert_eq!(
            r("https://evil-douyin.com/video/1", Wanted::Aweme),
            Err(IdError::NotDouyin("evil-douyin.com".into()))
        );
        assert_eq!(
            r("https://douyin.com.evil.example/video/1", Wanted::Aweme),
            Err(IdError::NotDouyin("douyin.com.evil.example".into()))
        );
        assert_eq!(
            r("https://www.douyin.com@evil.example/video/1", Wanted::Aweme),
            Err(IdError::NotDouyin("evil.example".into()))
        );
        assert_eq!(
            r("https://v.douyin.com/aaa/ and https://v.douyin.com/bbb/", Wanted::Aweme),
            Err(IdError::TwoLinks("https://v.douyin.com/aaa/".into(), "https://v.douyin.com/bbb/".into()))
        );
        // The same link twice, or a foreign link beside a Douyin one, is fine.
        assert_eq!(
            r("https://v.douyin.com/aaa/ https://v.douyin.com/aaa/", Wanted::Aweme),
            Ok(Resolved::NeedsRedirect("https://v.douyin.com/aaa/".into()))
        );
        assert_eq!(
            r("see https://example.com/x then https://www.douyin.com/video/42", Wanted::Aweme),
            Ok(Resolved::Id(DouyinId::Aweme("42".into())))
        );
        assert!(matches!(r("https://www.douyin.com/video/12ab", Wanted::Aweme), Err(IdError::BadId { .. })));
        assert!(matches!(r("https://www.douyin.com/user/", Wanted::User), Err(IdError::NotFound { .. })));
    }

    #[test]
    fn percent_encoding_is_decoded_then_checked() {
        assert_eq!(
            id("https://www.douyin.com/user/MS4wLjABAAAA%2Dx_y", Wanted::User),
            Ok(DouyinId::SecUser("MS4wLjABAAAA-x_y".into()))
        );
        assert_eq!(
            id("https://www.douyin.com/video/%37%34", Wanted::Aweme),
            Ok(DouyinId::Aweme("74".into()))
        );
        // Decoded slashes and dots never become an id.
        assert_eq!(
            id("https://www.douyin.com/user/..%2F..%2Fetc", Wanted::User),
            Err(IdError::BadId { wanted: "sec_user_id", value: "../../etc".into() })
        );
        assert!(matches!(id("https://www.douyin.com/user/abc%2", Wanted::User), Err(IdError::BadId { .. })));
        assert!(matches!(id("https://www.douyin.com/user/%FF%FE", Wanted::User), Err(IdError::BadId { .. })));
        // An encoded separator does not split a segment.
        assert!(matches!(
            id("https://www.douyin.com/video%2F123", Wanted::Aweme),
            Err(IdError::NotFound { .. })
        ));
    }

    #[test]
    fn bare_ids_and_configured_hosts() {
        assert_eq!(
            r(" 7380308675841297704 ", Wanted::Aweme),
            Ok(Resolved::Id(DouyinId::Aweme("7380308675841297704".into())))
        );
        assert_eq!(r(SEC, Wanted::User), Ok(Resolved::Id(DouyinId::SecUser(SEC.into()))));
        assert_eq!(r("nickname", Wanted::User), Err(IdError::NoLink));
        // A test server stands in for Douyin only on its own port.
        let hosts = Hosts { short: vec!["127.0.0.1:8001".into()], web: vec!["127.0.0.1:8002".into()] };
        assert_eq!(
            resolve("http://127.0.0.1:8001/AbC/", Wanted::Aweme, &hosts),
            Ok(Resolved::NeedsRedirect("http://127.0.0.1:8001/AbC/".into()))
        );
        assert_eq!(
            id_in_url("http://127.0.0.1:8002/share/video/9/?x=1", Wanted::Aweme, &hosts),
            Ok(DouyinId::Aweme("9".into()))
        );
        assert_eq!(
            id_in_url("http://127.0.0.1:9999/share/video/9/", Wanted::Aweme, &hosts),
            Err(IdError::NotDouyin("127.0.0.1".into()))
        );
        assert_eq!(id("HTTPS://WWW.DOUYIN.COM/video/5", Wanted::Aweme), Ok(DouyinId::Aweme("5".into())));
    }
}
