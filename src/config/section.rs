//! Provider configuration sections, declared once.
//!
//! A provider describes its section as a [`SectionSpec`]: every key with
//! its type, default, environment variable and one line of docs. The
//! loader checks file and environment values against it (an unknown key
//! or a bad value stops start-up with one line naming `section.key` and
//! where the value came from), and the provider reads typed values back
//! through [`SectionValues`], so a key cannot be checked one way and read
//! another.

use serde_json::{Map, Value};

use super::hints::{show, unknown_key};
use super::load::{ConfigError, err};

/// A provider's configuration section.
#[derive(Debug, Clone, Copy)]
pub struct SectionSpec {
    /// The section's key, the provider's name.
    pub name: &'static str,
    /// Every key the section may hold; any other is a start-up error.
    pub keys: &'static [KeySpec],
}

/// The JSON type of a section key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyKind {
    /// Any string.
    Text,
    /// A string of at least one character.
    NonEmpty,
    /// An origin, `https://host[:port]` or a bare host (which gets
    /// `https://`); read without a trailing slash.
    Origin,
    /// A number within a range.
    Number {
        /// Lower bound.
        min: f64,
        /// Upper bound, inclusive.
        max: f64,
        /// Whether `min` itself is excluded (a rate of 0 would never call).
        above_min: bool,
    },
    /// true or false.
    Bool,
    /// A string from a fixed set.
    Choice(&'static [&'static str]),
}

impl KeyKind {
    /// What a value must be, for messages.
    pub fn expected(self) -> String {
        match self {
            KeyKind::Text => "a string".into(),
            KeyKind::NonEmpty => "a non-empty string".into(),
            KeyKind::Origin => "an origin such as https://host".into(),
            KeyKind::Number { min, max, above_min: true } => {
                format!("a number above {min} and at most {max}")
            }
            KeyKind::Number { min, max, .. } => format!("a number from {min} to {max}"),
            KeyKind::Bool => "true or false".into(),
            KeyKind::Choice(set) => format!("one of {}", set.join(", ")),
        }
    }

    /// Whether `v` is a value of this kind.
    fn accepts(self, v: &Value) -> bool {
        match self {
            KeyKind::Text => v.is_string(),
            KeyKind::NonEmpty => v.as_str().is_some_and(|s| !s.is_empty()),
            KeyKind::Origin => v.as_str().is_some_and(|s| !s.trim().is_empty()),
            KeyKind::Number { min, max, above_min } => {
                v.as_f64().is_some_and(|n| n <= max && if above_min { n > min } else { n >= min })
            }
            KeyKind::Bool => v.is_boolean(),
            KeyKind::Choice(set) => v.as_str().is_some_and(|s| set.contains(&s)),
        }
    }

    /// The JSON value of text from the environment (or of a default):
    /// numbers and booleans are parsed, anything else stays a string (and
    /// is then rejected with the variable's name if the kind wants more).
    pub(super) fn parse(self, raw: &str) -> Value {
        match self {
            KeyKind::Number { .. } => raw
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String(raw.to_string()), Value::Number),
            KeyKind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Value::Bool(true),
                "0" | "false" | "no" | "off" => Value::Bool(false),
                _ => Value::String(raw.to_string()),
            },
            _ => Value::String(raw.to_string()),
        }
    }
}

/// The declaration of one section key.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// The key within the section.
    pub name: &'static str,
    /// Its type.
    pub kind: KeyKind,
    /// The value used when the key is not set, as it would be written in
    /// the environment; `None`: unset means "none".
    pub default: Option<&'static str>,
    /// The environment variable that sets it, if any.
    pub env: Option<&'static str>,
    /// One line.
    pub doc: &'static str,
    /// Whether the value is a credential: it is never shown in messages.
    pub secret: bool,
    /// For keys a job needs before it can even be planned (an account):
    /// a stand-in value, so that tests and `spoolfetch types` can show
    /// what a working section looks like.
    pub example: Option<&'static str>,
    /// The wording after "expected" in a rejection, when the kind's own
    /// is not precise enough.
    pub expect: Option<&'static str>,
}

impl KeySpec {
    /// A key without default, variable or example.
    pub const fn new(name: &'static str, kind: KeyKind, doc: &'static str) -> KeySpec {
        KeySpec { name, kind, default: None, env: None, doc, secret: false, example: None, expect: None }
    }

    /// The same key with a default.
    pub const fn default(mut self, value: &'static str) -> KeySpec {
        self.default = Some(value);
        self
    }

    /// The same key, also set by an environment variable.
    pub const fn env(mut self, var: &'static str) -> KeySpec {
        self.env = Some(var);
        self
    }

    /// The same key, marked as a credential.
    pub const fn secret(mut self) -> KeySpec {
        self.secret = true;
        self
    }

    /// The same key, needed to plan a job, with a stand-in value.
    pub const fn example(mut self, value: &'static str) -> KeySpec {
        self.example = Some(value);
        self
    }

    /// The same key with its own wording of what a value must be.
    pub const fn expect(mut self, what: &'static str) -> KeySpec {
        self.expect = Some(what);
        self
    }

    /// What a value must be, for messages.
    pub fn expected(&self) -> String {
        self.expect.map_or_else(|| self.kind.expected(), str::to_string)
    }
}

/// Keys every provider section may hold, whatever the provider declares:
/// the kernel reads them. `interval_ms` overrides the pacing the provider
/// declares for the API calls of its accounts, `pause_every` and
/// `pause_ms` its pause every N calls.
pub const COMMON_KEYS: &[KeySpec] = &[
    KeySpec::new(
        "interval_ms",
        KeyKind::Number { min: 0.0, max: 86_400_000.0, above_min: false },
        "minimum gap in ms between two API calls of one account of this provider (default: the provider's own pacing)",
    ),
    KeySpec::new(
        "pause_every",
        KeyKind::Number { min: 0.0, max: 1_000_000.0, above_min: false },
        "after every this many API calls of one account, a pause of pause_ms (0: none; default: the provider's own)",
    ),
    KeySpec::new(
        "pause_ms",
        KeyKind::Number { min: 0.0, max: 86_400_000.0, above_min: false },
        "the pause after every pause_every calls, in ms (default 60000)",
    ),
];

impl SectionSpec {
    /// The declaration of `key` (the provider's, or a common one).
    pub fn key(&self, key: &str) -> Option<&'static KeySpec> {
        self.keys.iter().chain(COMMON_KEYS).find(|k| k.name == key)
    }

    /// A section with the stand-in value of every key a job needs before
    /// it can be planned.
    pub fn example(&self) -> Map<String, Value> {
        self.keys.iter().filter_map(|k| k.example.map(|e| (k.name.to_string(), k.kind.parse(e)))).collect()
    }

    /// Checks a section as found in a configuration file.
    pub fn check(&self, m: &Map<String, Value>, origin: &str) -> Result<(), ConfigError> {
        for (key, v) in m {
            let Some(spec) = self.key(key) else {
                let known: Vec<String> = self
                    .keys
                    .iter()
                    .chain(COMMON_KEYS)
                    .map(|k| format!("{}.{}", self.name, k.name))
                    .collect();
                let known: Vec<&str> = known.iter().map(String::as_str).collect();
                return Err(err(origin, unknown_key(&format!("{}.{key}", self.name), &known)));
            };
            self.check_value(spec, v, origin)?;
        }
        Ok(())
    }

    /// Checks one value of a declared key.
    fn check_value(&self, spec: &KeySpec, v: &Value, origin: &str) -> Result<(), ConfigError> {
        if spec.kind.accepts(v) {
            return Ok(());
        }
        let got =
            if spec.secret { "a value that is not shown (it is a secret)".to_string() } else { show(v) };
        Err(err(
            origin,
            format!("key `{}.{}`: expected {}, got {got}", self.name, spec.name, spec.expected()),
        ))
    }

    /// Sets the keys given by environment variables (non-empty ones win
    /// over the file), checking each under the variable's name.
    pub(super) fn apply_env(
        &self,
        m: &mut Map<String, Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        for spec in self.keys {
            let Some(var) = spec.env else { continue };
            if let Some(raw) = env(var).filter(|v| !v.is_empty()) {
                let value = spec.kind.parse(&raw);
                self.check_value(spec, &value, &format!("environment variable {var}"))?;
                m.insert(spec.name.to_string(), value);
            }
        }
        Ok(())
    }
}

/// A checked section with typed reads: a key that is not set reads as
/// its declared default.
#[derive(Debug, Clone)]
pub struct SectionValues {
    /// The declaration.
    spec: SectionSpec,
    /// The merged section (file and environment).
    map: Map<String, Value>,
}

impl SectionValues {
    /// The values of `spec` in `map` (already checked by the loader).
    pub fn new(spec: SectionSpec, map: Map<String, Value>) -> SectionValues {
        SectionValues { spec, map }
    }

    /// The value of `key`, or its default.
    fn get(&self, key: &str) -> Option<Value> {
        let Some(spec) = self.spec.key(key) else {
            // A read of an undeclared key is a provider bug; tests catch it.
            debug_assert!(false, "{}.{key} is not declared", self.spec.name);
            return None;
        };
        self.map.get(key).cloned().or_else(|| spec.default.map(|d| spec.kind.parse(d)))
    }

    /// A string key.
    pub fn str(&self, key: &str) -> Option<String> {
        self.get(key).and_then(|v| v.as_str().map(str::to_string))
    }

    /// An origin key: `https://` added to a bare host, no trailing slash.
    pub fn origin(&self, key: &str) -> Option<String> {
        self.str(key).map(|u| {
            let u = u.trim();
            let u = if u.contains("://") { u.to_string() } else { format!("https://{u}") };
            u.trim_end_matches('/').to_string()
        })
    }

    /// A number key.
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|v| v.as_f64())
    }

    /// A boolean key.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(|v| v.as_bool())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static SPEC: SectionSpec = SectionSpec {
        name: "demo",
        keys: &[
            KeySpec::new("user", KeyKind::NonEmpty, "account").env("DEMO_USER").example("u"),
            KeySpec::new("token", KeyKind::Text, "credential").env("DEMO_TOKEN").secret(),
            KeySpec::new("url", KeyKind::Origin, "origin").default("https://api.example/"),
            KeySpec::new("rate", KeyKind::Number { min: 0.0, max: 20.0, above_min: true }, "per second")
                .default("18")
                .env("DEMO_RATE"),
            KeySpec::new("on", KeyKind::Bool, "switch").default("false").env("DEMO_ON"),
            KeySpec::new("fmt", KeyKind::Choice(&["zip", "gif"]), "format").expect("zip or gif"),
        ],
    };

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn check(v: Value) -> Result<(), String> {
        SPEC.check(&map(v), "config file c.json").map_err(|e| e.message)
    }

    #[test]
    fn bad_keys_are_named_with_their_section() {
        assert!(check(json!({"user": "me", "rate": 20, "on": true, "fmt": "gif", "token": ""})).is_ok());
        let e = check(json!({"usr": "me"})).expect_err("unknown");
        assert_eq!(e, "config file c.json: unknown key `demo.usr` (did you mean `demo.user`?)");
        let e = check(json!({"rate": 0})).expect_err("range");
        assert_eq!(e, "config file c.json: key `demo.rate`: expected a number above 0 and at most 20, got 0");
        let e = check(json!({"fmt": "mp4"})).expect_err("choice");
        assert!(e.ends_with("key `demo.fmt`: expected zip or gif, got \"mp4\""), "{e}");
        let e = check(json!({"user": ""})).expect_err("empty");
        assert!(e.contains("key `demo.user`: expected a non-empty string"), "{e}");
        let e = check(json!({"token": 12345})).expect_err("type");
        assert!(!e.contains("12345") && e.contains("demo.token"), "secrets are not shown: {e}");
    }

    #[test]
    fn environment_values_are_typed_and_checked() {
        let vars = |k: &str| match k {
            "DEMO_USER" => Some("envuser".to_string()),
            "DEMO_RATE" => Some("2.5".to_string()),
            "DEMO_ON" => Some("yes".to_string()),
            _ => None,
        };
        let mut m = map(json!({"user": "fileuser"}));
        SPEC.apply_env(&mut m, &vars).expect("valid");
        let s = SectionValues::new(SPEC, m);
        assert_eq!(s.str("user").as_deref(), Some("envuser"), "the environment wins over the file");
        assert_eq!(s.f64("rate"), Some(2.5));
        assert_eq!(s.bool("on"), Some(true));
        let bad = |k: &str| (k == "DEMO_RATE").then(|| "fast".to_string());
        let e = SPEC.apply_env(&mut Map::new(), &bad).expect_err("not a number");
        assert!(e.message.starts_with("environment variable DEMO_RATE: key `demo.rate`"), "{e}");
    }

    #[test]
    fn defaults_origins_and_examples() {
        let s = SectionValues::new(SPEC, map(json!({})));
        assert_eq!(s.origin("url").as_deref(), Some("https://api.example"));
        assert_eq!(s.f64("rate"), Some(18.0));
        assert_eq!(s.bool("on"), Some(false));
        assert_eq!(s.str("token"), None);
        let s = SectionValues::new(SPEC, map(json!({"url": "mirror.example:8443/"})));
        assert_eq!(s.origin("url").as_deref(), Some("https://mirror.example:8443"));
        assert_eq!(SPEC.example(), map(json!({"user": "u"})));
        for k in SPEC.keys {
            if let Some(d) = k.default {
                assert!(k.kind.accepts(&k.kind.parse(d)), "the default of {} is valid", k.name);
            }
        }
    }

    #[test]
    fn the_loader_checks_sections_and_applies_their_variables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.json");
        let load = |json: &str, var: Option<&str>| {
            std::fs::write(&file, json).expect("write");
            let var = var.map(str::to_string);
            let env = move |k: &str| if k == "DEMO_RATE" { var.clone() } else { None };
            let ov = super::super::Overrides { config_file: Some(file.clone()), ..Default::default() };
            super::super::load(dir.path(), &ov, &env, &[SPEC])
        };
        let c = load(r#"{"demo": {"user": "me"}}"#, Some("3")).expect("valid");
        let v = c.values(SPEC);
        assert_eq!((v.str("user").as_deref(), v.f64("rate")), (Some("me"), Some(3.0)));
        let e = load(r#"{"demo": {"rate": 50}}"#, None).expect_err("range");
        assert!(e.message.contains("c.json: key `demo.rate`: expected a number above 0"), "{e}");
        let e = load(r#"{}"#, Some("0")).expect_err("range from the environment");
        assert!(e.message.starts_with("environment variable DEMO_RATE: key `demo.rate`"), "{e}");
        let e = load(r#"{"demo": {"rat": 1}}"#, None).expect_err("unknown");
        assert!(e.message.contains("unknown key `demo.rat` (did you mean `demo.rate`?)"), "{e}");
    }
}
