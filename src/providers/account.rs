//! The account a walk's calls are paced under, as the provider declares
//! it: its key, how its answers read, its default pacing and its lanes.
//!
//! Owns the declaration only; the supervisor turns it into pacing
//! threads (one per account key and lane, shared by every job of the
//! account) and the [`Lanes`] a job's [`super::Api`] calls through.
//! Invariant: a provider states its API's documented budget here once;
//! the configuration may override the interval (`<provider>.interval_ms`)
//! and the pause every N calls (`<provider>.pause_every`, `pause_ms`),
//! and the top-level `interval_ms` applies only to providers that declare
//! no interval of their own.

use std::time::Duration;

use crate::pacing::{Classify, Pacer};

/// The account a walk's API calls are paced under.
#[derive(Debug, Clone)]
pub struct AccountSpec {
    /// Unique key, for example `site:12345` (provider and account); jobs
    /// with the same key share one pacing thread.
    pub key: String,
    /// How answers of this API are read (rate limits hidden in bodies).
    pub classify: Classify,
    /// The account's pacing when the configuration says nothing.
    pub pacing: PacingSpec,
    /// Further lanes of the account (an upload to a storage host), each
    /// with its own pacing thread, so a long transfer never holds the API
    /// lane and the API's classifier never reads a storage answer.
    pub lanes: Vec<LaneSpec>,
    /// Headers every call on the API lane carries (an API key): held in
    /// memory by the job's lanes, so that no task state, journal or log
    /// line ever holds them.
    pub credentials: Credentials,
}

impl AccountSpec {
    /// An account paced as `pacing`, without further lanes.
    pub fn new(key: impl Into<String>, classify: Classify, pacing: PacingSpec) -> AccountSpec {
        AccountSpec {
            key: key.into(),
            classify,
            pacing,
            lanes: Vec::new(),
            credentials: Credentials::default(),
        }
    }

    /// The same account with a credential header on every API call.
    #[must_use]
    pub fn with_credential(mut self, name: &str, value: &str) -> AccountSpec {
        self.credentials.0.push((name.to_string(), value.to_string()));
        self
    }
}

/// Secret request headers; `Debug` shows their names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials(pub Vec<(String, String)>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(n, _)| n)).finish()
    }
}

/// How a lane's calls are paced by default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacingSpec {
    /// Minimum gap between the end of one call and the start of the next;
    /// `None`: the configuration's top-level `interval_ms` (for APIs that
    /// document no budget, a polite gap).
    pub interval: Option<Duration>,
    /// A documented request budget: requests per second and burst.
    pub bucket: Option<(f64, f64)>,
    /// Repeats of a call after a network error or a passing server error.
    pub retries: u32,
    /// First wait after a rate-limit answer without `Retry-After`.
    pub rate_limit_base: Duration,
    /// Rate-limit answers in a row after which a call is given up.
    pub max_rate_limited: u32,
    /// The longest wait between tries on this lane, below the daemon's
    /// `backoff_max`: a limit counted per second needs no pause of
    /// minutes after a burst of 429s.
    pub backoff_max: Option<Duration>,
    /// A random extra gap of up to this much after each call.
    pub jitter: Duration,
    /// After every `n` calls of the lane, a pause of this long (`(n,
    /// pause)`); `<provider>.pause_every` and `<provider>.pause_ms`
    /// override it for the API lane.
    pub pause: Option<(u32, Duration)>,
}

impl PacingSpec {
    /// An API without a documented budget: the top-level interval, three
    /// retries, rate-limit backoff from `rate_limit_base`.
    pub const fn polite(rate_limit_base: Duration) -> PacingSpec {
        PacingSpec {
            interval: None,
            bucket: None,
            retries: 3,
            rate_limit_base,
            max_rate_limited: 20,
            backoff_max: None,
            jitter: Duration::ZERO,
            pause: None,
        }
    }

    /// An API with a documented budget of `rate` requests per second and
    /// bursts of `burst`: no gap beyond the bucket.
    pub const fn budget(rate: f64, burst: f64, rate_limit_base: Duration) -> PacingSpec {
        PacingSpec {
            interval: Some(Duration::ZERO),
            bucket: Some((rate, burst)),
            retries: 3,
            rate_limit_base,
            max_rate_limited: 20,
            backoff_max: None,
            jitter: Duration::ZERO,
            pause: None,
        }
    }

    /// The same with waits between tries of at most `max`.
    #[must_use]
    pub const fn backoff_max(mut self, max: Duration) -> PacingSpec {
        self.backoff_max = Some(max);
        self
    }
}

/// A further lane of an account.
#[derive(Debug, Clone)]
pub struct LaneSpec {
    /// The name requests give (`ApiRequest::on_lane`).
    pub name: &'static str,
    /// How its answers are read.
    pub classify: Classify,
    /// Its pacing.
    pub pacing: PacingSpec,
}

/// The pacing threads a job's calls go through: the account's API lane
/// and its further lanes.
#[derive(Debug, Clone, Default)]
pub struct Lanes {
    /// The API lane.
    pub(super) api: Option<(Pacer, Classify)>,
    /// The account's credential headers, added to every API-lane call.
    pub(super) credentials: Credentials,
    /// Further lanes, by name.
    pub(super) others: Vec<(&'static str, Pacer, Classify)>,
}

impl Lanes {
    /// No account: the walk makes no API calls.
    pub fn none() -> Lanes {
        Lanes::default()
    }

    /// The account's API lane.
    pub fn api(pacer: Pacer, classify: Classify) -> Lanes {
        Lanes { api: Some((pacer, classify)), credentials: Credentials::default(), others: Vec::new() }
    }

    /// The same with credential headers on every API-lane call.
    #[must_use]
    pub fn with_credentials(mut self, credentials: Credentials) -> Lanes {
        self.credentials = credentials;
        self
    }

    /// The same with a further lane.
    #[must_use]
    pub fn with(mut self, name: &'static str, pacer: Pacer, classify: Classify) -> Lanes {
        self.others.push((name, pacer, classify));
        self
    }

    /// The lane called `name` (`None`: the API lane).
    pub(super) fn get(&self, name: Option<&str>) -> Option<(&Pacer, Classify)> {
        match name {
            None => self.api.as_ref().map(|(p, c)| (p, *c)),
            Some(n) => self.others.iter().find(|(l, _, _)| *l == n).map(|(_, p, c)| (p, *c)),
        }
    }
}
