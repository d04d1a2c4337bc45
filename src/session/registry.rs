//! The daemon's sessions, one per account.
//!
//! Owned by whoever runs jobs (the supervisor; a CLI command builds its
//! own) and handed to walks through their [`Api`](crate::providers::Api)
//! handle. Invariant: one [`Session`] per (provider, account key) for the
//! registry's life, so every job of an account shares its login and its
//! single-flight refresh.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::login::{Authority, Session};

/// A session of any provider.
type AnySession = Arc<dyn Any + Send + Sync>;

/// Sessions by provider type and account key.
#[derive(Default)]
pub struct Sessions {
    /// The sessions; the type in the key makes every downcast succeed.
    map: Mutex<HashMap<(TypeId, String), AnySession>>,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions").field("accounts", &self.len()).finish()
    }
}

impl Sessions {
    /// An empty registry.
    pub fn new() -> Sessions {
        Sessions::default()
    }

    /// Locks the map (a poisoned lock still holds a usable map: an entry
    /// is inserted whole or not at all).
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(TypeId, String), AnySession>> {
        match self.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The number of sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Returns true if and only if there is no session yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The session of `account`, made by `make` on first use.
    pub fn get_or_insert<A: Authority>(
        &self,
        account: &str,
        make: impl FnOnce() -> Session<A>,
    ) -> Arc<Session<A>> {
        let key = (TypeId::of::<Session<A>>(), account.to_string());
        let mut map = self.lock();
        if let Some(found) = map.get(&key)
            && let Ok(s) = Arc::clone(found).downcast::<Session<A>>()
        {
            return s;
        }
        let s = Arc::new(make());
        let any: AnySession = Arc::clone(&s) as AnySession;
        map.insert(key, any);
        s
    }
}
