//! Where notifications go and which events each target wants: the
//! `notify` configuration key and a job's own `notify` key.
//!
//! Owns the parsing and its messages. Invariant: a target that parses
//! names at least one known event and exactly one of a webhook (an
//! http(s) URL) or a command (a program and its arguments, no shell).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An event a target may want.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The job ended done.
    Done,
    /// The job ended failed.
    Failed,
    /// The job waits for something outside it: a login, the site's
    /// block to pass, credits.
    Waiting,
    /// The job was cancelled.
    Cancelled,
    /// A run of a recurring job failed.
    RecurringFailed,
}

impl Event {
    /// Every event, by its name in the configuration.
    pub const ALL: &'static [(&'static str, Event)] = &[
        ("done", Event::Done),
        ("failed", Event::Failed),
        ("waiting", Event::Waiting),
        ("cancelled", Event::Cancelled),
        ("recurring_failed", Event::RecurringFailed),
    ];

    /// Its name.
    pub fn name(self) -> &'static str {
        Event::ALL.iter().find(|(_, e)| *e == self).map_or("done", |(n, _)| n)
    }
}

/// How a target is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// A POST of the status object as JSON.
    Webhook(String),
    /// A program run with the status object on stdin.
    Exec(Vec<String>),
}

/// One notification target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The events it wants.
    pub events: Vec<Event>,
    /// How it is reached.
    pub via: Via,
}

impl Target {
    /// How it is shown in logs: a webhook's URL without its secrets, a
    /// command's program.
    pub fn shown(&self) -> String {
        match &self.via {
            Via::Webhook(u) => crate::http::display_url(u),
            Via::Exec(argv) => {
                format!("command {}", crate::naming::escape_display(argv.first().map_or("", |s| s)))
            }
        }
    }
}

/// Reads a list of targets (`what` names the key in messages).
pub fn parse_targets(v: &Value, what: &str) -> Result<Vec<Target>, String> {
    let Value::Array(items) = v else {
        return Err(format!(
            "`{what}` must be an array of targets ({{\"events\": [...], \"webhook\": URL}} or {{\"events\": [...], \"exec\": [program, args...]}})"
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(n, t)| parse_target(t).map_err(|e| format!("`{what}[{n}]`: {e}")))
        .collect()
}

/// Reads one target.
fn parse_target(v: &Value) -> Result<Target, String> {
    let Value::Object(m) = v else { return Err("a target is an object".into()) };
    for k in m.keys() {
        if !["events", "webhook", "exec"].contains(&k.as_str()) {
            return Err(format!("unknown key {k:?} (a target has events and webhook or exec)"));
        }
    }
    let names: Vec<&str> = Event::ALL.iter().map(|(n, _)| *n).collect();
    let events = match m.get("events") {
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|e| {
                e.as_str()
                    .and_then(|s| Event::ALL.iter().find(|(n, _)| *n == s).map(|(_, ev)| *ev))
                    .ok_or_else(|| format!("unknown event {e}; the events are {}", names.join(", ")))
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(format!("`events` must be a non-empty array of {}", names.join(", "))),
    };
    let via = match (m.get("webhook"), m.get("exec")) {
        (Some(Value::String(u)), None) => {
            let l = u.to_ascii_lowercase();
            if !(l.starts_with("http://") || l.starts_with("https://")) {
                return Err("`webhook` must be an http:// or https:// URL".into());
            }
            Via::Webhook(u.clone())
        }
        (None, Some(Value::Array(argv))) if !argv.is_empty() => Via::Exec(
            argv.iter()
                .map(|a| {
                    a.as_str()
                        .map(str::to_string)
                        .ok_or("`exec` is an array of strings (the program, then its arguments)")
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        (Some(_), Some(_)) => return Err("give webhook or exec, not both".into()),
        _ => {
            return Err(
                "a target needs `webhook` (a URL) or `exec` (an array: the program and its arguments)".into(),
            );
        }
    };
    if let Via::Exec(argv) = &via
        && argv[0].is_empty()
    {
        return Err("`exec` names no program".into());
    }
    Ok(Target { events, via })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_parse_and_bad_ones_say_why() {
        let t = parse_targets(
            &json!([{"events": ["done", "failed"], "webhook": "https://ntfy.sh/x"}, {"events": ["waiting"], "exec": ["/bin/true", "-x"]}]),
            "notify",
        )
        .expect("valid");
        assert_eq!(t[0].events, [Event::Done, Event::Failed]);
        assert_eq!(t[1].via, Via::Exec(vec!["/bin/true".into(), "-x".into()]));
        for (bad, says) in [
            (json!({}), "must be an array"),
            (json!([{"events": [], "webhook": "https://x"}]), "non-empty"),
            (json!([{"events": ["finished"], "webhook": "https://x"}]), "unknown event"),
            (json!([{"events": ["done"], "webhook": "ftp://x"}]), "http://"),
            (json!([{"events": ["done"], "exec": []}]), "needs `webhook`"),
            (json!([{"events": ["done"], "exec": [""]}]), "no program"),
            (json!([{"events": ["done"], "webhook": "https://x", "exec": ["a"]}]), "not both"),
            (json!([{"events": ["done"], "url": "https://x"}]), "unknown key"),
        ] {
            let e = parse_targets(&bad, "notify").expect_err("refused");
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_webhook_is_shown_without_its_secrets() {
        let t = Target {
            events: vec![Event::Done],
            via: Via::Webhook("https://u:pw@hooks.example/x?token=s3cret".into()),
        };
        let shown = t.shown();
        assert!(!shown.contains("s3cret") && !shown.contains("pw"), "{shown}");
    }
}
