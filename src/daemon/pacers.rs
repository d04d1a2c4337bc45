//! The pacing threads of API accounts.
//!
//! Owns starting an account's pacers on first use: one for its API lane
//! and one for each further lane it declares. Invariant: one pacer per
//! account key and lane, shared by every job of that account, so that the
//! account's pacing and rate-limit backoff hold across jobs.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::daemon::supervisor::Supervisor;
use crate::pacing::{AccountPolicy, Pacer};
use crate::providers::{AccountSpec, Lanes, PacingSpec};

/// The largest API answer read into memory.
const MAX_BODY: u64 = 64 << 20;

/// The policy of one lane: what the provider declares, the configured
/// interval override where there is one (`<provider>.interval_ms`, API
/// lane only), else the top-level `interval_ms` for a provider that
/// declares no interval; the daemon-wide timeout and backoff cap.
pub(super) fn policy(spec: &PacingSpec, config: &Config, interval: Option<Duration>) -> AccountPolicy {
    AccountPolicy {
        interval: interval.or(spec.interval).unwrap_or(config.interval),
        retries: spec.retries,
        rate_limit_base: spec.rate_limit_base,
        backoff_max: spec.backoff_max.map_or(config.backoff_max, |m| m.min(config.backoff_max)),
        max_rate_limited: spec.max_rate_limited,
        timeout: config.timeout,
        max_body: MAX_BODY,
        bucket: spec.bucket,
        jitter: spec.jitter,
        pause: spec.pause,
    }
}

impl Supervisor {
    /// The lanes of an account of `provider`, their pacers started on
    /// first use; `None` when a pacing thread cannot be started.
    pub(super) fn lanes_for(&mut self, account: &AccountSpec, provider: &str) -> Option<Lanes> {
        let mut api = policy(&account.pacing, &self.config, self.config.provider_interval(provider));
        if let Some(pause) = self.config.provider_pause(provider) {
            api.pause = pause;
        }
        let mut lanes = Lanes::api(self.pacer(&account.key, api)?, account.classify)
            .with_credentials(account.credentials.clone());
        for lane in &account.lanes {
            let key = format!("{}#{}", account.key, lane.name);
            let p = self.pacer(&key, policy(&lane.pacing, &self.config, None))?;
            lanes = lanes.with(lane.name, p, lane.classify);
        }
        Some(lanes)
    }

    /// The pacer called `key`, started with `policy` on first use.
    fn pacer(&mut self, key: &str, policy: AccountPolicy) -> Option<Pacer> {
        if let Some((p, _)) = self.pacers.get(key) {
            return Some(p.clone());
        }
        log::debug!("pacing {key}: interval {} ms, bucket {:?}", policy.interval.as_millis(), policy.bucket);
        match Pacer::spawn(key, self.agent.clone(), policy, Arc::clone(&self.shutdown)) {
            Ok((p, join)) => {
                self.pacers.insert(key.to_string(), (p.clone(), join));
                Some(p)
            }
            Err(e) => {
                log::error!("cannot start the pacing thread of {key}: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_providers_pacing_wins_over_the_top_level_interval_and_the_section_wins_over_both() {
        let mut config = Config::default_for(&|_| None);
        config.interval = Duration::from_millis(1000);
        let polite = PacingSpec::polite(Duration::from_secs(2));
        let budget = PacingSpec::budget(18.0, 90.0, Duration::from_secs(1));
        assert_eq!(policy(&polite, &config, None).interval, Duration::from_millis(1000));
        let p = policy(&budget, &config, None);
        assert_eq!(
            (p.interval, p.bucket, p.rate_limit_base),
            (Duration::ZERO, Some((18.0, 90.0)), Duration::from_secs(1))
        );
        let p = policy(&budget, &config, Some(Duration::from_millis(250)));
        assert_eq!((p.interval, p.bucket), (Duration::from_millis(250), Some((18.0, 90.0))));
        assert_eq!(policy(&polite, &config, Some(Duration::ZERO)).interval, Duration::ZERO);
    }
}
