//! Job parameters, declared once per job type and checked from the
//! declaration.
//!
//! A provider lists the keys of each job type as [`ParamInfo`]s; the same
//! table feeds `spoolfetch types`, `spoolfetch submit` (which turns
//! `KEY=VALUE` into JSON of the right type) and [`validate`], which every
//! provider calls first in `plan`. Invariant: a [`Params`] exists only
//! for a parameter map whose keys are all declared, whose required keys
//! are present and whose values have their declared types, so providers
//! read typed values from it without re-checking them. Checks that need
//! more than one key, or knowledge of the API (URL syntax, templates),
//! stay with the provider and run after this one.

use serde_json::{Map, Value};

use crate::job::RejectReason;

/// Documentation of a job type, for `spoolfetch types` and the README.
#[derive(Debug)]
pub struct JobTypeInfo {
    /// TypeName, for example `http.files`.
    pub name: &'static str,
    /// One line, shown by `spoolfetch types`.
    pub summary: &'static str,
    /// The keys of this job type alone.
    pub params: &'static [ParamInfo],
    /// Keys every job type of the provider accepts (Pixiv's naming and
    /// filter options), kept apart so that they are declared once.
    pub shared: &'static [ParamInfo],
}

impl JobTypeInfo {
    /// Every key the job type accepts: its own, then the shared ones.
    pub fn keys(&self) -> impl Iterator<Item = &'static ParamInfo> + use<> {
        let (own, shared) = (self.params, self.shared);
        own.iter().chain(shared.iter())
    }

    /// The declaration of `key`, if the job type accepts it.
    pub fn key(&self, key: &str) -> Option<&'static ParamInfo> {
        self.keys().find(|p| p.name == key)
    }
}

/// The JSON type of a job key. Numbers are never floats: every numeric
/// job key is a count, a size or an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Any string.
    String,
    /// A string from a fixed set.
    Choice(&'static [&'static str]),
    /// A date, `YYYY-MM-DD`.
    Date,
    /// A non-negative integer from `min` to `max`.
    Integer {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// A positive id, as a number or a string of digits (ids are often
    /// copied out of URLs).
    Id,
    /// true or false.
    Bool,
    /// A non-empty array of strings; `KEY=VALUE` may be repeated.
    List,
    /// An array of strings where one string counts as a one-item list
    /// (filters, where a single tag is the common case); may be empty.
    Strings,
    /// A non-empty array of ids (numbers or strings of digits).
    IdList,
    /// A non-empty array of integers from `min` to `max`.
    Integers {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// A JSON object (given as JSON on the command line); its values are
    /// checked by the provider.
    Object,
}

impl ParamKind {
    /// Whether `spoolfetch submit` collects repeated `KEY=VALUE`s into an
    /// array.
    pub fn is_list(self) -> bool {
        matches!(self, ParamKind::List | ParamKind::Strings | ParamKind::IdList | ParamKind::Integers { .. })
    }

    /// Whether a `KEY=VALUE` value is taken as text, never as JSON.
    pub fn is_text(self) -> bool {
        matches!(self, ParamKind::String | ParamKind::Choice(_) | ParamKind::Date)
    }

    /// A short name of the type, for `spoolfetch types`.
    pub fn type_name(self) -> &'static str {
        match self {
            ParamKind::String => "string",
            ParamKind::Choice(_) => "choice",
            ParamKind::Date => "date",
            ParamKind::Integer { .. } => "integer",
            ParamKind::Id => "id",
            ParamKind::Bool => "bool",
            ParamKind::List => "list of strings",
            ParamKind::Strings => "string or list of strings",
            ParamKind::IdList => "list of ids",
            ParamKind::Integers { .. } => "list of integers",
            ParamKind::Object => "object",
        }
    }

    /// What a value must be, after "must be", when the declaration gives
    /// no wording of its own.
    pub fn expected(self) -> String {
        match self {
            ParamKind::String => "a string".into(),
            ParamKind::Choice(set) => format!("one of {}", set.join(", ")),
            ParamKind::Date => "a date YYYY-MM-DD".into(),
            ParamKind::Integer { min, max } if max == u64::MAX => format!("an integer of at least {min}"),
            ParamKind::Integer { min, max } => format!("an integer from {min} to {max}"),
            ParamKind::Id => "a positive integer id".into(),
            ParamKind::Bool => "true or false".into(),
            ParamKind::List => "a non-empty array of strings".into(),
            ParamKind::Strings => "a string or an array of strings".into(),
            ParamKind::IdList => "a non-empty array of positive integer ids".into(),
            ParamKind::Integers { min, max } => format!("a non-empty array of integers from {min} to {max}"),
            ParamKind::Object => "an object".into(),
        }
    }
}

/// The declaration of one job key.
#[derive(Debug, Clone, Copy)]
pub struct ParamInfo {
    /// The key as written in a job file.
    pub name: &'static str,
    /// Its JSON type, which both the check and `submit` follow.
    pub kind: ParamKind,
    /// Whether it must be present.
    pub required: bool,
    /// The value used when the key is absent, as the user would write it
    /// on the command line (`1000`, `jsonl`, `false`); `None` when the
    /// provider decides (for example from its configuration section).
    pub default: Option<&'static str>,
    /// One line for `spoolfetch types`.
    pub doc: &'static str,
    /// The wording after "must be" in a rejection, when the kind's own
    /// ([`ParamKind::expected`]) is not precise enough.
    pub expect: Option<&'static str>,
}

impl ParamInfo {
    /// An optional key without a default.
    pub const fn new(name: &'static str, kind: ParamKind, doc: &'static str) -> ParamInfo {
        ParamInfo { name, kind, required: false, default: None, doc, expect: None }
    }

    /// The same key, required.
    pub const fn required(mut self) -> ParamInfo {
        self.required = true;
        self
    }

    /// The same key with a default value.
    pub const fn default(mut self, value: &'static str) -> ParamInfo {
        self.default = Some(value);
        self
    }

    /// The same key with its own wording of what a value must be.
    pub const fn expect(mut self, what: &'static str) -> ParamInfo {
        self.expect = Some(what);
        self
    }

    /// What a value must be, for messages.
    pub fn expected(&self) -> String {
        self.expect.map_or_else(|| self.kind.expected(), str::to_string)
    }

    /// The one-line rejection of a bad value of this key.
    pub fn wrong(&self) -> RejectReason {
        RejectReason(format!("key `{}` must be {}", self.name, self.expected()))
    }

    /// The default as a JSON value of the key's kind.
    fn default_value(&self) -> Option<Value> {
        let d = self.default?;
        if self.kind.is_text() {
            return Some(Value::String(d.to_string()));
        }
        Some(serde_json::from_str(d).unwrap_or_else(|_| Value::String(d.to_string())))
    }
}

/// A job's parameters, checked against its job type's declaration.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    /// The declaration the map was checked against; absent keys read as
    /// its defaults.
    info: &'static JobTypeInfo,
    /// The parameters as given (borrowed: a job may hold 100,000 URLs).
    map: &'a Map<String, Value>,
}

/// Checks `params` against `info`: unknown keys, missing required keys
/// and values of the wrong type are rejected with one line naming the key.
pub fn validate<'a>(
    info: &'static JobTypeInfo,
    params: &'a Map<String, Value>,
) -> Result<Params<'a>, RejectReason> {
    for key in params.keys() {
        if info.key(key).is_none() {
            return Err(unknown_key(info, key));
        }
    }
    for p in info.keys() {
        match params.get(p.name) {
            None if p.required => {
                return Err(RejectReason(format!(
                    "key `{}` is missing (it must be {})",
                    p.name,
                    p.expected()
                )));
            }
            None => {}
            Some(v) => check(p, v)?,
        }
    }
    Ok(Params { info, map: params })
}

/// The rejection of an unknown key: the closest key of the type or of
/// every job (`max_item` → `max_items`, `user` → `user_id`), then both lists.
fn unknown_key(info: &JobTypeInfo, key: &str) -> RejectReason {
    let own: Vec<&str> = info.keys().map(|p| p.name).collect();
    let common: Vec<&str> = crate::job::COMMON_KEYS.iter().chain(crate::job::RECUR_KEYS).copied().collect();
    let hint = crate::config::closest(key, own.iter().chain(&common).copied())
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    let own = if own.is_empty() { "none".to_string() } else { own.join(", ") };
    RejectReason(format!(
        "unknown key `{key}` for {}{hint}; it takes: {own}; every job also takes: {}",
        info.name,
        common.join(", ")
    ))
}

/// Checks one value against its declaration.
fn check(p: &ParamInfo, v: &Value) -> Result<(), RejectReason> {
    let empty = || RejectReason(format!("key `{}` is empty (it must be {})", p.name, p.expected()));
    let ok = match p.kind {
        ParamKind::String => v.is_string(),
        ParamKind::Choice(set) => v.as_str().is_some_and(|s| set.contains(&s)),
        ParamKind::Date => v.as_str().is_some_and(is_date),
        ParamKind::Integer { min, max } => v.as_u64().is_some_and(|n| (min..=max).contains(&n)),
        ParamKind::Id => parse_id(v).is_some(),
        ParamKind::Bool => v.is_boolean(),
        ParamKind::Object => v.is_object(),
        ParamKind::Strings => match v {
            Value::String(_) => true,
            Value::Array(a) => a.iter().all(Value::is_string),
            _ => false,
        },
        ParamKind::List => match v {
            Value::Array(a) if a.is_empty() => return Err(empty()),
            Value::Array(a) => {
                // The index tells which of 100,000 URLs is the bad one.
                if let Some(i) = a.iter().position(|x| !x.is_string()) {
                    return Err(RejectReason(format!("{}[{i}] must be a string", p.name)));
                }
                true
            }
            _ => false,
        },
        ParamKind::IdList => match v {
            Value::Array(a) if a.is_empty() => return Err(empty()),
            Value::Array(a) => a.iter().all(|x| parse_id(x).is_some()),
            _ => false,
        },
        ParamKind::Integers { min, max } => match v {
            Value::Array(a) if a.is_empty() => return Err(empty()),
            Value::Array(a) => a.iter().all(|x| x.as_u64().is_some_and(|n| (min..=max).contains(&n))),
            _ => false,
        },
    };
    if ok { Ok(()) } else { Err(p.wrong()) }
}

impl<'a> Params<'a> {
    /// The declaration of the job type, to tell job types of one
    /// provider apart.
    pub fn info(&self) -> &'static JobTypeInfo {
        self.info
    }

    /// Whether the job gave `key` (a default does not count).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The value of `key`, or its declared default.
    fn get(&self, key: &str) -> Option<std::borrow::Cow<'a, Value>> {
        match self.map.get(key) {
            Some(v) => Some(std::borrow::Cow::Borrowed(v)),
            None => self.info.key(key).and_then(ParamInfo::default_value).map(std::borrow::Cow::Owned),
        }
    }

    /// A string (also a choice or a date).
    pub fn str(&self, key: &str) -> Option<String> {
        self.get(key).and_then(|v| v.as_str().map(str::to_string))
    }

    /// An integer or an id.
    pub fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| parse_id(&v).or_else(|| v.as_u64()))
    }

    /// true or false.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(|v| v.as_bool())
    }

    /// A list of strings (one string is a one-item list).
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        self.get(key).and_then(|v| match v.as_ref() {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
            _ => None,
        })
    }

    /// The strings of a list key without copying them (the URLs of a
    /// large job); `None` when absent.
    pub fn strs(&self, key: &str) -> Option<impl Iterator<Item = &'a str> + use<'a>> {
        let a = self.map.get(key)?.as_array()?;
        Some(a.iter().filter_map(Value::as_str))
    }

    /// A list of ids or integers.
    pub fn u64s(&self, key: &str) -> Option<Vec<u64>> {
        self.get(key).and_then(|v| {
            v.as_array().and_then(|a| a.iter().map(|x| parse_id(x).or_else(|| x.as_u64())).collect())
        })
    }

    /// An object; its values are the provider's to check.
    pub fn object(&self, key: &str) -> Option<&'a Map<String, Value>> {
        self.map.get(key).and_then(Value::as_object)
    }
}

/// A positive id from a number or a string of digits.
pub fn parse_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n| *n > 0)
}

/// Returns true if and only if `s` looks like `YYYY-MM-DD`.
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static TYPE: JobTypeInfo = JobTypeInfo {
        name: "test.type",
        summary: "a test",
        params: &[
            ParamInfo::new("urls", ParamKind::List, "URLs").required().expect("an array of URL strings"),
            ParamInfo::new("size", ParamKind::Integer { min: 1, max: 1000 }, "rows").default("1000"),
            ParamInfo::new("mode", ParamKind::Choice(&["all", "new"]), "mode").default("all"),
            ParamInfo::new("id", ParamKind::Id, "an id"),
            ParamInfo::new("ids", ParamKind::IdList, "ids"),
            ParamInfo::new("on", ParamKind::Bool, "a switch").default("false"),
            ParamInfo::new("day", ParamKind::Date, "a day"),
            ParamInfo::new("obj", ParamKind::Object, "an object"),
        ],
        shared: &[
            ParamInfo::new("tags", ParamKind::Strings, "tags"),
            ParamInfo::new("levels", ParamKind::Integers { min: 0, max: 2 }, "levels"),
        ],
    };

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn reject(v: Value) -> String {
        let m = map(v.clone());
        match validate(&TYPE, &m) {
            Ok(_) => panic!("{v} was accepted"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn unknown_keys_are_named_with_the_known_ones() {
        let e = reject(json!({"urls": ["u"], "colour": 1}));
        assert!(e.starts_with("unknown key `colour` for test.type; it takes: urls, size, mode"), "{e}");
        assert!(
            e.ends_with("; every job also takes: type, name, save_path, max_items, notify, rate_limit, every, cron, jitter"),
            "{e}"
        );
        let e = reject(json!({"mod": "a"}));
        assert!(e.starts_with("unknown key `mod` for test.type (did you mean `mode`?); it takes: "), "{e}");
        let e = reject(json!({"max_item": 3}));
        assert!(e.contains("(did you mean `max_items`?)"), "{e}");
        assert!(e.contains("tags, levels"), "shared keys are known too: {e}");
        let e = reject(json!({"urls": ["u"], "evry": "1h"}));
        assert!(e.contains("(did you mean `every`?)"), "{e}");
    }

    #[test]
    fn missing_and_empty_required_keys() {
        assert_eq!(reject(json!({})), "key `urls` is missing (it must be an array of URL strings)");
        assert_eq!(reject(json!({"urls": []})), "key `urls` is empty (it must be an array of URL strings)");
        let e = reject(json!({"urls": ["u"], "ids": []}));
        assert!(e.contains("non-empty"), "{e}");
    }

    #[test]
    fn wrong_types_are_rejected_in_one_line() {
        for (v, want) in [
            (json!({"urls": "u"}), "key `urls` must be an array of URL strings"),
            (json!({"urls": ["a", 3]}), "urls[1] must be a string"),
            (json!({"urls": ["u"], "size": 0}), "key `size` must be an integer from 1 to 1000"),
            (json!({"urls": ["u"], "size": "5"}), "key `size` must be an integer from 1 to 1000"),
            (json!({"urls": ["u"], "mode": "some"}), "key `mode` must be one of all, new"),
            (json!({"urls": ["u"], "id": -3}), "key `id` must be a positive integer id"),
            (json!({"urls": ["u"], "id": "0"}), "key `id` must be a positive integer id"),
            (json!({"urls": ["u"], "ids": [1, "x"]}), "key `ids` must be a non-empty array of positive"),
            (json!({"urls": ["u"], "on": "yes"}), "key `on` must be true or false"),
            (json!({"urls": ["u"], "day": "2024/01/01"}), "key `day` must be a date YYYY-MM-DD"),
            (json!({"urls": ["u"], "obj": []}), "key `obj` must be an object"),
            (json!({"urls": ["u"], "tags": 5}), "key `tags` must be a string or an array of strings"),
            (json!({"urls": ["u"], "levels": [3]}), "key `levels` must be a non-empty array of integers"),
        ] {
            let e = reject(v.clone());
            assert!(e.starts_with(want), "{v}: {e}");
            assert_eq!(e.lines().count(), 1);
        }
    }

    #[test]
    fn typed_values_and_defaults() {
        let m = map(json!({"urls": ["a", "b"], "id": "42", "ids": [1, "2"], "tags": "cat",
                           "levels": [0, 2], "obj": {"k": "v"}, "day": "2024-01-02"}));
        let p = validate(&TYPE, &m).expect("valid");
        assert_eq!(p.list("urls"), Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(p.strs("urls").map(|i| i.collect::<Vec<_>>()), Some(vec!["a", "b"]));
        assert_eq!(p.u64("id"), Some(42));
        assert_eq!(p.u64s("ids"), Some(vec![1, 2]));
        assert_eq!(p.list("tags"), Some(vec!["cat".to_string()]), "one string is a one-item list");
        assert_eq!(p.u64s("levels"), Some(vec![0, 2]));
        assert_eq!(p.object("obj").map(Map::len), Some(1));
        assert_eq!(p.str("day").as_deref(), Some("2024-01-02"));
        // Absent keys read as their declared defaults, and `has` tells.
        assert_eq!(p.u64("size"), Some(1000));
        assert_eq!(p.str("mode").as_deref(), Some("all"));
        assert_eq!(p.bool("on"), Some(false));
        assert!(!p.has("size") && p.has("id"));
        assert_eq!(p.u64("nothing"), None);
        assert_eq!(p.info().name, "test.type");
    }

    #[test]
    fn dates() {
        assert!(is_date("2024-02-30"));
        assert!(!is_date("2024-2-3") && !is_date("yesterday") && !is_date("2024-01-0x"));
    }
}
