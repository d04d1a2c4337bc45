//! What the fake PicWish remembers ([`State`], its tasks, stored results,
//! upload grants, failure rules and counters) and the task clock: tasks
//! settle lazily from the wall clock in [`State::settle`], which charges
//! the successful ones.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::{hex, result_bytes};

/// Which interface made a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The official API, with this key.
    Api(String),
    /// The web flow, with this route (`tasks/login/scale`, …).
    Web(String),
}

/// One task.
#[derive(Debug, Clone)]
pub struct Task {
    /// The task id.
    pub id: String,
    /// The op: the official op path or the web route's last segment.
    pub op: String,
    /// Who made it.
    pub origin: Origin,
    /// sha256 hex of the input.
    pub sha: String,
    /// The input bytes.
    pub input: Arc<Vec<u8>>,
    /// 1 image, 2 image only, 3 mask only (segmentation).
    pub output_type: u8,
    /// When it was made.
    pub created: Instant,
    /// The failure it will settle to, if any.
    pub planned: Option<i64>,
    /// The settled state, once processing ended.
    pub settled: Option<i64>,
    /// Result tokens (under `/results/`), once settled to 1.
    pub image: Option<String>,
    /// Mask token (segmentation with output_type 1 or 3; always on web).
    pub mask: Option<String>,
    /// Watermarked preview token (web).
    pub preview: Option<String>,
    /// Credits charged when it succeeds.
    pub cost: i64,
}

/// A stored result object.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// When it was made.
    pub created: Instant,
    /// Expired by `expire_results`.
    pub expired: bool,
}

/// An upload grant.
#[derive(Debug, Clone)]
pub struct Grant {
    /// `access_key_secret`.
    pub secret: String,
    /// `security_token`.
    pub security_token: String,
    /// `expiration`.
    pub expires: SystemTime,
    /// The object keys it allows.
    pub objects: HashSet<String>,
}

/// A failure rule: inputs matching `marker` settle to `state`, `left` times
/// (`None`: always).
#[derive(Debug, Clone)]
pub struct FailRule {
    /// Substring of the input bytes, or the input's sha256 hex.
    pub marker: String,
    /// The negative state.
    pub state: i64,
    /// How many more tasks it hits.
    pub left: Option<usize>,
}

/// Everything the fake remembers. Public for the handler modules; tests use
/// the [`FakePicwish`] methods.
pub struct State {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Allowed API keys.
    pub keys: HashSet<String>,
    /// Processing time.
    pub process: Duration,
    /// Per-key requests per second (and burst) of the official API.
    pub rate: f64,
    /// Per-key bucket: (tokens, last refill).
    pub buckets: HashMap<String, (f64, Instant)>,
    /// Per-key balances (absent: unlimited).
    pub balances: HashMap<String, i64>,
    /// Live tasks.
    pub tasks: HashMap<String, Task>,
    /// Life of a task.
    pub task_ttl: Duration,
    /// Result objects by token.
    pub results: HashMap<String, Stored>,
    /// Life of a result URL.
    pub result_ttl: Duration,
    /// Published `/cdn/` bytes.
    pub cdn: HashMap<String, Vec<u8>>,
    /// Next API requests answered 429.
    pub storm: usize,
    /// Next gateway requests answered 429.
    pub web_storm: usize,
    /// Failure rules.
    pub fail_rules: Vec<FailRule>,
    /// Next creates whose answer is dropped.
    pub drop_create: usize,
    /// Hold of official create answers.
    pub stall_create: Option<Duration>,
    /// Next grants issued already expired.
    pub expire_grants: usize,
    /// Next result fetches that find their URL expired.
    pub expire_fetches: usize,
    /// Next OSS callbacks that fail.
    pub fail_callbacks: usize,
    /// Tokens issued by the login.
    pub login_tokens: HashSet<String>,
    /// Grants by access key id.
    pub grants: HashMap<String, Grant>,
    /// Stored OSS objects: key → bytes.
    pub objects: HashMap<String, Arc<Vec<u8>>>,
    /// Uploaded resources: resource id → input bytes.
    pub resources: HashMap<String, Arc<Vec<u8>>>,
    /// Counters.
    pub creates: usize,
    /// Creates per input sha256.
    pub creates_by: HashMap<String, usize>,
    /// Task queries (both interfaces).
    pub polls: usize,
    /// Official API requests (creates and polls, rejected ones included).
    pub api_requests: usize,
    /// 429s of the official API.
    pub rate_limited: usize,
    /// Tasks that settled to 1 (charged).
    pub charged: usize,
    /// Charged tasks per input sha256.
    pub charged_by: HashMap<String, usize>,
    /// Credits charged in all.
    pub credits: i64,
    /// Successful OSS uploads (callback answered).
    pub uploads: usize,
    /// Successful logins.
    pub logins: usize,
    /// (method, path) of every request, secrets removed.
    pub log: Vec<(String, String)>,
    /// Id counter.
    pub seq: u64,
}

impl State {
    /// A fresh pseudo-random id (sha256 of a counter and the clock).
    pub fn fresh_hex(&mut self, n: usize) -> String {
        self.seq += 1;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let d = Sha256::new().chain_update(self.seq.to_le_bytes()).chain_update(now.to_le_bytes()).finalize();
        let mut h = hex(&d);
        h.truncate(n);
        h
    }

    /// A fresh uuid-like id.
    pub fn fresh_uuid(&mut self) -> String {
        let h = self.fresh_hex(32);
        format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
    }

    /// The failure `input` should settle to, consuming a counted rule.
    pub fn planned_failure(&mut self, input: &[u8], sha: &str) -> Option<i64> {
        let hit = self.fail_rules.iter().position(|r| {
            r.left != Some(0)
                && (r.marker == sha
                    || (!r.marker.is_empty()
                        && input.windows(r.marker.len()).any(|w| w == r.marker.as_bytes())))
        })?;
        let rule = &mut self.fail_rules[hit];
        if let Some(n) = rule.left.as_mut() {
            *n -= 1;
        }
        Some(rule.state)
    }

    /// Records a new task and counts the create.
    pub fn add_task(&mut self, task: Task) {
        self.creates += 1;
        *self.creates_by.entry(task.sha.clone()).or_insert(0) += 1;
        self.tasks.insert(task.id.clone(), task);
    }

    /// A new result object; answers its token.
    pub fn store(&mut self, bytes: Vec<u8>) -> String {
        let token = self.fresh_hex(40);
        self.results.insert(token.clone(), Stored { bytes, created: Instant::now(), expired: false });
        token
    }

    /// Gives task `id` fresh result URLs for those that expired, as a
    /// query of the real service signs its URLs anew: an expired result is
    /// fetched again by asking for the task again.
    pub fn renew(&mut self, id: &str) {
        let ttl = self.result_ttl;
        let Some(t) = self.tasks.get(id) else { return };
        let tokens = [t.image.clone(), t.mask.clone(), t.preview.clone()];
        let mut fresh: Vec<Option<String>> = Vec::new();
        for tok in tokens {
            let renewed = tok
                .as_ref()
                .and_then(|k| self.results.get(k))
                .and_then(|r| (r.expired || r.created.elapsed() >= ttl).then(|| r.bytes.clone()));
            fresh.push(match renewed {
                Some(bytes) => Some(self.store(bytes)),
                None => tok,
            });
        }
        if let Some(t) = self.tasks.get_mut(id) {
            t.image = fresh[0].take();
            t.mask = fresh[1].take();
            t.preview = fresh[2].take();
        }
    }

    /// A result URL for `token`.
    pub fn result_url(&self, token: &Option<String>) -> serde_json::Value {
        match token {
            Some(t) => serde_json::Value::String(format!("{}/results/{t}", self.base)),
            None => serde_json::Value::Null,
        }
    }

    /// Settles every task whose processing time has passed, and forgets
    /// tasks past their life.
    pub fn settle(&mut self) {
        let now = Instant::now();
        let process = self.process;
        let due: Vec<String> = self
            .tasks
            .values()
            .filter(|t| t.settled.is_none() && now.duration_since(t.created) >= process)
            .map(|t| t.id.clone())
            .collect();
        for id in due {
            let Some(t) = self.tasks.get(&id).cloned() else { continue };
            let state = t.planned.unwrap_or(1);
            let (mut image, mut mask, mut preview) = (None, None, None);
            if state == 1 {
                let web = matches!(t.origin, Origin::Web(_));
                if t.output_type != 3 {
                    image = Some(self.store(result_bytes("image", &t.op, &t.input)));
                }
                if t.op == "segmentation" && (web || t.output_type != 2) {
                    mask = Some(self.store(result_bytes("mask", &t.op, &t.input)));
                }
                if web {
                    preview = Some(self.store(result_bytes("preview", &t.op, &t.input)));
                }
                self.charged += 1;
                *self.charged_by.entry(t.sha.clone()).or_insert(0) += 1;
                self.credits += t.cost;
                if let Origin::Api(key) = &t.origin
                    && let Some(b) = self.balances.get_mut(key)
                {
                    *b = (*b - t.cost).max(0);
                }
            }
            if let Some(t) = self.tasks.get_mut(&id) {
                t.settled = Some(state);
                t.image = image;
                t.mask = mask;
                t.preview = preview;
            }
        }
        let ttl = self.task_ttl;
        self.tasks.retain(|_, t| now.duration_since(t.created) < ttl);
    }

    /// (state, progress) of a task now (call [`State::settle`] first).
    pub fn view(&self, t: &Task) -> (i64, u64) {
        match t.settled {
            Some(s) => (s, if s == 1 { 100 } else { 0 }),
            None => {
                let total = self.process.as_millis().max(1) as u64;
                let done = t.created.elapsed().as_millis() as u64;
                (4, (done * 100 / total).min(99))
            }
        }
    }
}
