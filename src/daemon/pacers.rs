//! The pacing threads of API accounts.
//!
//! Owns starting an account's pacer on first use. Invariant: one pacer
//! per account key, shared by every job of that account, so that the
//! account's interval and rate-limit backoff hold across jobs.

use std::sync::Arc;

use crate::daemon::supervisor::Supervisor;
use crate::pacing::{AccountPolicy, Pacer};

impl Supervisor {
    /// The pacer of an account, started on first use.
    pub(super) fn pacer_for(&mut self, account: &crate::providers::AccountSpec) -> Option<Pacer> {
        if let Some((p, _)) = self.pacers.get(&account.key) {
            return Some(p.clone());
        }
        let policy = AccountPolicy {
            interval: self.config.interval,
            retries: 3,
            rate_limit_base: account.rate_limit_base,
            backoff_max: self.config.backoff_max,
            max_rate_limited: 20,
            timeout: self.config.timeout,
            max_body: 64 << 20,
            bucket: account.bucket,
        };
        match Pacer::spawn(&account.key, self.agent.clone(), policy, Arc::clone(&self.shutdown)) {
            Ok((p, join)) => {
                self.pacers.insert(account.key.clone(), (p.clone(), join));
                Some(p)
            }
            Err(e) => {
                log::error!("cannot start the pacing thread of {}: {e}", account.key);
                None
            }
        }
    }
}
