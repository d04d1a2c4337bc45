//! The App API's objects, with only the fields we use, all defaulted:
//! fields come and go between endpoints (docs/pixiv.md).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// An id that arrives as a number or as a string (the token response
/// sends `user.id` as a string, the API as a number).
pub fn flexible_id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().unwrap_or(0),
        Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    })
}

/// The embedded user object.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct User {
    /// User id; 0 for a deleted or missing user.
    #[serde(default, deserialize_with = "flexible_id")]
    pub id: u64,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Account (login) name.
    #[serde(default)]
    pub account: String,
}

/// A tag.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Tag {
    /// The tag.
    #[serde(default)]
    pub name: String,
    /// Its translation, depending on Accept-Language.
    #[serde(default)]
    pub translated_name: Option<String>,
}

/// `meta_single_page`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct MetaSinglePage {
    /// The original of a one-page work (frame 0 of an ugoira).
    #[serde(default)]
    pub original_image_url: Option<String>,
}

/// `meta_pages[i].image_urls`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct PageUrls {
    /// The original.
    #[serde(default)]
    pub original: Option<String>,
}

/// `meta_pages[i]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct MetaPage {
    /// Its URLs.
    #[serde(default)]
    pub image_urls: PageUrls,
}

/// `image_urls` of a work (thumbnails).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ImageUrls {
    /// Square thumbnail.
    #[serde(default)]
    pub square_medium: Option<String>,
    /// Medium.
    #[serde(default)]
    pub medium: Option<String>,
    /// Large.
    #[serde(default)]
    pub large: Option<String>,
}

/// A series reference.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct SeriesRef {
    /// Series id.
    #[serde(default)]
    pub id: u64,
    /// Title.
    #[serde(default)]
    pub title: String,
}

/// An illust object (illust, manga or ugoira).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Illust {
    /// Work id.
    #[serde(default)]
    pub id: u64,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// `illust`, `manga` or `ugoira`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Thumbnails.
    #[serde(default)]
    pub image_urls: ImageUrls,
    /// HTML caption.
    #[serde(default)]
    pub caption: String,
    /// The artist.
    #[serde(default)]
    pub user: User,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Tools.
    #[serde(default)]
    pub tools: Vec<String>,
    /// ISO-8601 with the JST offset.
    #[serde(default)]
    pub create_date: String,
    /// Pages.
    #[serde(default)]
    pub page_count: u32,
    /// Width of page 0.
    #[serde(default)]
    pub width: u32,
    /// Height of page 0.
    #[serde(default)]
    pub height: u32,
    /// 0 all ages, 1 R-18, 2 R-18G.
    #[serde(default)]
    pub x_restrict: u8,
    /// Sanity level.
    #[serde(default)]
    pub sanity_level: u8,
    /// Series.
    #[serde(default)]
    pub series: Option<SeriesRef>,
    /// One-page original.
    #[serde(default)]
    pub meta_single_page: MetaSinglePage,
    /// Pages of a multi-page work.
    #[serde(default)]
    pub meta_pages: Vec<MetaPage>,
    /// Views.
    #[serde(default)]
    pub total_view: u64,
    /// Bookmarks.
    #[serde(default)]
    pub total_bookmarks: u64,
    /// Visible (not reliable for deletion: hidden works are placeholders; docs/pixiv.md).
    #[serde(default)]
    pub visible: bool,
    /// 0 unknown, 1 not AI, 2 AI-generated.
    #[serde(default)]
    pub illust_ai_type: u8,
    /// 0 public; 1 my-pixiv; 2 private.
    #[serde(default)]
    pub restrict: u8,
}

/// `{"illusts": [...], "next_url": ...}` and friends.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IllustList {
    /// The works.
    #[serde(default)]
    pub illusts: Vec<Illust>,
    /// The next page, `null` or empty at the end.
    #[serde(default)]
    pub next_url: Option<String>,
    /// The artist, on `/v1/user/illusts` (`id` 0 for a missing user or one
    /// without works).
    #[serde(default)]
    pub user: Option<User>,
}

/// `{"illust": ...}`.
#[derive(Debug, Clone, Deserialize)]
pub struct IllustDetail {
    /// The work.
    pub illust: Illust,
}

/// A frame of `ugoira_metadata.frames`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct UgoiraFrame {
    /// File name inside the zip.
    #[serde(default)]
    pub file: String,
    /// Delay in milliseconds.
    #[serde(default)]
    pub delay: u32,
}

/// `ugoira_metadata.zip_urls`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ZipUrls {
    /// The 600x600 zip (the 1920x1080 one is a string replace away).
    #[serde(default)]
    pub medium: Option<String>,
}

/// `ugoira_metadata`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UgoiraMetadata {
    /// The zips.
    #[serde(default)]
    pub zip_urls: ZipUrls,
    /// The frames.
    #[serde(default)]
    pub frames: Vec<UgoiraFrame>,
}

/// `{"ugoira_metadata": ...}`.
#[derive(Debug, Clone, Deserialize)]
pub struct UgoiraResponse {
    /// The metadata.
    pub ugoira_metadata: UgoiraMetadata,
}

/// A novel object.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Novel {
    /// Novel id.
    #[serde(default)]
    pub id: u64,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// HTML caption.
    #[serde(default)]
    pub caption: String,
    /// The author.
    #[serde(default)]
    pub user: User,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Creation date.
    #[serde(default)]
    pub create_date: String,
    /// Characters.
    #[serde(default)]
    pub text_length: u64,
    /// 0 all ages, 1 R-18, 2 R-18G.
    #[serde(default)]
    pub x_restrict: u8,
    /// `{}`, not `null`, when not in a series.
    #[serde(default)]
    pub series: Value,
    /// Bookmarks.
    #[serde(default)]
    pub total_bookmarks: u64,
    /// AI type.
    #[serde(default)]
    pub novel_ai_type: u8,
    /// Cover thumbnails.
    #[serde(default)]
    pub image_urls: ImageUrls,
}

/// `{"novels": [...], "next_url": ...}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NovelList {
    /// The novels.
    #[serde(default)]
    pub novels: Vec<Novel>,
    /// The next page.
    #[serde(default)]
    pub next_url: Option<String>,
}

/// `{"novel": ...}`.
#[derive(Debug, Clone, Deserialize)]
pub struct NovelDetail {
    /// The novel.
    pub novel: Novel,
}

/// The API's error envelope.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    /// `error`.
    #[serde(default)]
    pub error: ErrorDetail,
}

/// `error.*`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorDetail {
    /// Localized text.
    #[serde(default)]
    pub user_message: String,
    /// Machine-ish text.
    #[serde(default)]
    pub message: String,
    /// Reason.
    #[serde(default)]
    pub reason: String,
}

impl ErrorDetail {
    /// The most useful one-line text.
    pub fn text(&self) -> String {
        [&self.user_message, &self.message, &self.reason]
            .into_iter()
            .find(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| "unknown error".into())
    }
}
