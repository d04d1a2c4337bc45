//! The listings of every Pixiv job type, page by page, resumable from a
//! cursor: `{"q": [[key, value], …]}` (the query of the next page, taken
//! from `next_url` and re-issued against the configured API origin) or
//! `{"i": n}` (the next index of an id list).

use std::sync::Arc;

use serde_json::{Value, json};

use super::auth::Session;
use super::client::{CallError, Client, REFERER, classify};
use super::model::{Illust, IllustDetail, IllustList, Novel, NovelDetail, NovelList};
use super::novels::novel_items;
use super::settings::{Options, Settings};
use super::works::{skip_item, work_items};
use crate::checkpoint::{Item, Work};
use crate::http::query_pairs;
use crate::providers::{AccountSpec, Api, PacingSpec, Page, Walk, WalkError};

/// A query string as decoded pairs.
type Query = Vec<(String, String)>;

/// The highest `offset` the API accepts; a `next_url` past it is a 400.
const OFFSET_CAP: u64 = 5000;

/// What a walk lists.
#[derive(Debug, Clone)]
pub enum Source {
    /// `/v1/illust/detail` per id (`pixiv.illust`, `pixiv.info`).
    Illusts {
        /// The ids.
        ids: Vec<u64>,
        /// Metadata only (`pixiv.info`).
        info_only: bool,
    },
    /// An illust list endpoint paginated by `next_url`.
    List {
        /// Endpoint path.
        path: &'static str,
        /// Query of the first page.
        query: Vec<(String, String)>,
        /// For `/v1/user/illusts`: the user, to tell "no works" from
        /// "no such user" (both come back as `user.id: 0`).
        user_check: Option<u64>,
    },
    /// `/v1/user/bookmarks/illust`; `user_id` 0 means the token's own.
    Bookmarks {
        /// Whose bookmarks.
        user_id: u64,
        /// `public` or `private`.
        restrict: String,
        /// Bookmark tag.
        tag: Option<String>,
    },
    /// `/v1/search/illust`, moving the date window past the offset cap.
    Search {
        /// Query of the first page.
        query: Vec<(String, String)>,
    },
    /// `/v2/novel/detail` per id.
    Novels {
        /// The ids.
        ids: Vec<u64>,
    },
    /// `/v1/user/novels`.
    UserNovels {
        /// The author.
        user_id: u64,
    },
}

/// A Pixiv listing.
#[derive(Debug)]
pub struct PixivWalk {
    /// What it lists.
    pub source: Source,
    /// Naming, filters, sidecars.
    pub options: Options,
    /// Settings.
    pub settings: Arc<Settings>,
    /// Archived works in a row (for `stop_after_seen`).
    pub seen_streak: u32,
}

impl PixivWalk {
    /// A client for this call, with the account's login from the
    /// daemon's registry.
    fn client(&self, api: &Api) -> Client {
        let session = Session::shared(api.sessions(), &self.settings);
        Client { api: api.clone(), session, settings: Arc::clone(&self.settings) }
    }

    /// Items of the works of one page; applies `stop_after_seen`.
    /// Returns the items and whether the listing must end here.
    fn page_items(&mut self, works: &[Illust], client: &Client) -> Result<(Vec<Item>, bool), WalkError> {
        let mut out = Vec::new();
        for w in works {
            if client.api.halted() {
                return Err(WalkError::Api(crate::pacing::ApiError::Interrupted));
            }
            let items = match work_items(w, &self.options, client) {
                Ok(items) => items,
                Err(CallError::NotFound(m)) => vec![skip_item(w.id, &format!("gone: {m}"))],
                Err(CallError::Api(m)) => vec![fail_item(w.id, &m)],
                Err(CallError::Walk(e)) => return Err(e),
            };
            let archived: Vec<&Item> = items.iter().filter(|i| i.archive.is_some()).collect();
            if !archived.is_empty() {
                if archived.iter().all(|i| i.archive.as_deref().is_some_and(|k| client.api.archived(k))) {
                    self.seen_streak += 1;
                } else {
                    self.seen_streak = 0;
                }
            }
            out.extend(items);
            if self.options.stop_after_seen.is_some_and(|n| self.seen_streak >= n) {
                log::info!(
                    "pixiv: {} archived works in a row; ending the listing (stop_after_seen)",
                    self.seen_streak
                );
                return Ok((out, true));
            }
        }
        Ok((out, false))
    }

    /// One page of an `illusts` list: its items and the next page's query.
    fn list_page(
        &mut self,
        path: &str,
        query: Query,
        client: &Client,
    ) -> Result<(Vec<Item>, Option<Query>), WalkError> {
        let list: IllustList = client.get(path, &query).map_err(|e| e.into_walk(path))?;
        let (items, stop) = self.page_items(&list.illusts, client)?;
        let next = list.next_url.filter(|u| !u.is_empty()).map(|u| query_pairs(&u)).filter(|_| !stop);
        Ok((items, next))
    }
}

/// An item that records an API error for one work.
fn fail_item(id: u64, message: &str) -> Item {
    Item::with(format!("{id}_error"), format!("{id}.error"), Work::Fail(format!("work {id}: {message}")))
}

/// The `{"q": …}` cursor of a query.
fn query_cursor(q: &[(String, String)]) -> Value {
    json!({ "q": q })
}

/// Reads a `{"q": …}` cursor.
fn cursor_query(c: &Value) -> Option<Vec<(String, String)>> {
    c.get("q")?
        .as_array()?
        .iter()
        .map(|p| Some((p.get(0)?.as_str()?.to_string(), p.get(1)?.as_str()?.to_string())))
        .collect()
}

/// Reads a `{"i": n}` cursor.
fn cursor_index(c: Option<&Value>) -> usize {
    c.and_then(|c| c.get("i")).and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok()).unwrap_or(0)
}

/// The value of `key` in a query.
fn get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Sets `key` in a query.
fn set(q: &mut Vec<(String, String)>, key: &str, value: Option<String>) {
    q.retain(|(k, _)| k != key);
    if let Some(v) = value {
        q.push((key.to_string(), v));
    }
}

/// Adds `days` to a `YYYY-MM-DD` date.
fn shift_date(date: &str, days: i64) -> Option<String> {
    let y: i64 = date.get(0..4)?.parse().ok()?;
    let m: i64 = date.get(5..7)?.parse().ok()?;
    let d: i64 = date.get(8..10)?.parse().ok()?;
    // Days from civil (Howard Hinnant), shifted, and back.
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days_since = era * 146_097 + doe - 719_468 + days;
    let unix = u64::try_from(days_since).ok()? * 86_400;
    Some(super::auth::client_time(unix)[..10].to_string())
}

impl Walk for PixivWalk {
    fn account(&self) -> Option<AccountSpec> {
        // Pixiv documents no budget: the configured interval, polite.
        Some(AccountSpec::new("pixiv", classify, PacingSpec::polite(self.settings.rate_limit_base)))
    }

    fn file_headers(&self) -> Vec<(String, String)> {
        vec![("Referer".into(), REFERER.into())]
    }

    fn next_page(&mut self, cursor: Option<&Value>, api: &Api) -> Result<Page, WalkError> {
        let client = self.client(api);
        match self.source.clone() {
            Source::Illusts { ids, info_only } => {
                let i = cursor_index(cursor);
                let Some(&id) = ids.get(i) else { return Ok(Page::default()) };
                let next = (i + 1 < ids.len()).then(|| json!({ "i": i + 1 }));
                let total = Some(ids.len() as u64);
                let detail =
                    client.get::<IllustDetail>("/v1/illust/detail", &[("illust_id".into(), id.to_string())]);
                let items = match detail {
                    Ok(d) if info_only => vec![info_item(&d.illust)],
                    Ok(d) => self.page_items(std::slice::from_ref(&d.illust), &client)?.0,
                    Err(CallError::NotFound(m)) => vec![skip_item(id, &format!("gone: {m}"))],
                    Err(CallError::Api(m)) => vec![fail_item(id, &m)],
                    Err(CallError::Walk(e)) => return Err(e),
                };
                Ok(Page { items, next, total, records: None })
            }
            Source::List { path, query, user_check } => {
                let q = cursor.and_then(cursor_query).unwrap_or(query);
                let first = cursor.is_none();
                let list: IllustList = client.get(path, &q).map_err(|e| e.into_walk(path))?;
                if let (true, Some(uid)) = (first, user_check) {
                    // A missing user and a user without works look the
                    // same here (`user.id` 0); only the profile tells them
                    // apart (docs/pixiv.md), so ask only then.
                    if list.illusts.is_empty() && list.user.as_ref().is_none_or(|u| u.id == 0) {
                        match client.get_raw("/v1/user/detail", &[("user_id".into(), uid.to_string())]) {
                            Err(CallError::NotFound(m)) => {
                                return Err(WalkError::Invalid(format!("user {uid} not found: {m}")));
                            }
                            Err(CallError::Walk(e)) => return Err(e),
                            _ => {}
                        }
                    }
                }
                let (items, stop) = self.page_items(&list.illusts, &client)?;
                let next =
                    list.next_url.filter(|u| !u.is_empty() && !stop).map(|u| query_cursor(&query_pairs(&u)));
                Ok(Page { items, next, total: None, records: None })
            }
            Source::Bookmarks { user_id, restrict, tag } => {
                let q = match cursor.and_then(cursor_query) {
                    Some(q) => q,
                    None => {
                        let uid = if user_id == 0 {
                            client.session.access(api)?;
                            client.session.user_id()
                        } else {
                            user_id
                        };
                        let mut q =
                            vec![("user_id".to_string(), uid.to_string()), ("restrict".into(), restrict)];
                        if let Some(t) = tag {
                            q.push(("tag".into(), t));
                        }
                        q
                    }
                };
                let (items, next) = self.list_page("/v1/user/bookmarks/illust", q, &client)?;
                Ok(Page { items, next: next.map(|q| query_cursor(&q)), total: None, records: None })
            }
            Source::Search { query } => {
                let q = cursor.and_then(cursor_query).unwrap_or(query);
                let list: IllustList =
                    client.get("/v1/search/illust", &q).map_err(|e| e.into_walk("search"))?;
                let last_date = list.illusts.last().map(|w| w.create_date.clone());
                let (items, stop) = self.page_items(&list.illusts, &client)?;
                let mut next = list.next_url.filter(|u| !u.is_empty() && !stop).map(|u| query_pairs(&u));
                if let Some(n) = &next {
                    let offset: u64 = get(n, "offset").and_then(|o| o.parse().ok()).unwrap_or(0);
                    if offset > OFFSET_CAP {
                        next = move_window(n, last_date.as_deref());
                        if next.is_none() {
                            log::info!(
                                "pixiv: search reached Pixiv's 5,000-result limit (sort by date to go further)"
                            );
                        }
                    }
                }
                Ok(Page { items, next: next.map(|q| query_cursor(&q)), total: None, records: None })
            }
            Source::Novels { ids } => {
                let i = cursor_index(cursor);
                let Some(&id) = ids.get(i) else { return Ok(Page::default()) };
                let next = (i + 1 < ids.len()).then(|| json!({ "i": i + 1 }));
                let items = match client
                    .get::<NovelDetail>("/v2/novel/detail", &[("novel_id".into(), id.to_string())])
                {
                    Ok(d) => self.novel_page(&[d.novel], &client)?,
                    Err(CallError::NotFound(m)) => vec![skip_item(id, &format!("gone: {m}"))],
                    Err(CallError::Api(m)) => vec![fail_item(id, &m)],
                    Err(CallError::Walk(e)) => return Err(e),
                };
                Ok(Page { items, next, total: Some(ids.len() as u64), records: None })
            }
            Source::UserNovels { user_id } => {
                let q = cursor
                    .and_then(cursor_query)
                    .unwrap_or_else(|| vec![("user_id".into(), user_id.to_string())]);
                let list: NovelList =
                    client.get("/v1/user/novels", &q).map_err(|e| e.into_walk("user novels"))?;
                let items = self.novel_page(&list.novels, &client)?;
                let next = list.next_url.filter(|u| !u.is_empty()).map(|u| query_cursor(&query_pairs(&u)));
                Ok(Page { items, next, total: None, records: None })
            }
        }
    }
}

impl PixivWalk {
    /// Items of a page of novels.
    fn novel_page(&self, novels: &[Novel], client: &Client) -> Result<Vec<Item>, WalkError> {
        let mut out = Vec::new();
        for n in novels {
            match novel_items(n, &self.options, client) {
                Ok(items) => out.extend(items),
                Err(CallError::NotFound(m)) => out.push(skip_item(n.id, &format!("gone: {m}"))),
                Err(CallError::Api(m)) => out.push(fail_item(n.id, &m)),
                Err(CallError::Walk(e)) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// The metadata file of `pixiv.info`.
fn info_item(w: &Illust) -> Item {
    Item::inline(
        format!("{}_info", w.id),
        format!("{}.json", w.id),
        serde_json::to_string_pretty(w).unwrap_or_default(),
    )
}

/// Moves a date-sorted search's window past the offset cap, as gallery-dl
/// does: restart at offset 0 with the date bound set from the last work
/// seen (one day of overlap; repeated works are dropped by their keys).
fn move_window(q: &[(String, String)], last: Option<&str>) -> Option<Vec<(String, String)>> {
    let date = last?.get(..10)?;
    let sort = get(q, "sort").unwrap_or("date_desc");
    let mut n = q.to_vec();
    set(&mut n, "offset", None);
    let (key, value) = match sort {
        "date_desc" => ("end_date", shift_date(date, 1)?),
        "date_asc" => ("start_date", shift_date(date, -1)?),
        _ => return None,
    };
    // More than 5,000 works inside one day: the window cannot move on.
    if get(q, key) == Some(value.as_str()) {
        return None;
    }
    set(&mut n, key, Some(value));
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_shift() {
        assert_eq!(shift_date("2024-02-28", 1).as_deref(), Some("2024-02-29"));
        assert_eq!(shift_date("2024-03-01", -1).as_deref(), Some("2024-02-29"));
        assert_eq!(shift_date("2023-12-31", 1).as_deref(), Some("2024-01-01"));
    }

    #[test]
    fn windows_move() {
        let q = vec![
            ("word".to_string(), "cat".to_string()),
            ("sort".into(), "date_desc".into()),
            ("offset".into(), "5010".into()),
        ];
        let n = move_window(&q, Some("2024-05-06T10:00:00+09:00")).expect("moved");
        assert_eq!(get(&n, "end_date"), Some("2024-05-07"));
        assert_eq!(get(&n, "offset"), None);
        let pop = vec![("sort".to_string(), "popular_desc".to_string())];
        assert_eq!(move_window(&pop, Some("2024-05-06T10:00:00+09:00")), None);
    }
}
