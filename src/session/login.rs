//! One account's login: the access token in use, its generation, and the
//! refresh that replaces it.
//!
//! Invariants: the mutex is held across a refresh, so however many jobs
//! ask at once, one of them refreshes and the others get its result (a
//! single-use refresh token is never spent twice); a grant's record is
//! durable in the [`TokenStore`] before its access token is handed out, so
//! a crash never loses a rotated refresh token; [`Session::invalidate`]
//! forgets only the generation it names, so a refusal of an old token
//! seen after a refresh does not throw the new one away.

use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::store::{Stamp, StoreError, TokenStore};
use crate::pacing::{ApiError, ApiRequest, ApiResponse};

/// Something that can make an HTTP exchange: a job's paced [`Api`]
/// handle, or a direct agent in a CLI command.
///
/// [`Api`]: crate::providers::Api
pub trait Exchange {
    /// Makes the call.
    fn exchange(&self, req: ApiRequest) -> Result<ApiResponse, ApiError>;
}

/// What a refresh produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant<R> {
    /// The new access token.
    pub access: String,
    /// How long it may be handed out; a provider that refreshes early
    /// passes a shortened lifetime.
    pub valid_for: Duration,
    /// What to save before the access token is used (the refresh token
    /// to use next); `None` when there is nothing to keep.
    pub record: Option<R>,
}

/// An access token and the generation it belongs to.
#[derive(Clone, PartialEq, Eq)]
pub struct Access {
    /// The bearer token.
    pub token: String,
    /// Bumped by every refresh; names this token to [`Session::invalidate`].
    pub generation: u64,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a secret; logs get its generation only.
        f.debug_struct("Access").field("generation", &self.generation).finish_non_exhaustive()
    }
}

/// A provider's half of a session: how to get a token, and what to keep.
pub trait Authority: Send + Sync + 'static {
    /// What the provider keeps between refreshes (the refresh token, the
    /// account's id, why the token was rejected, …).
    type State: Send + 'static;
    /// How the token file's record looks.
    type Record: Serialize + DeserializeOwned;
    /// Why there is no token; a record that cannot be saved is one too.
    type Error: From<StoreError>;

    /// The provider, for log lines.
    fn name(&self) -> &'static str;

    /// Asks the server for a new access token. Called with the session's
    /// lock held: nobody else refreshes meanwhile.
    fn refresh(&self, ex: &dyn Exchange, state: &mut Self::State)
    -> Result<Grant<Self::Record>, Self::Error>;

    /// Takes a grant's record into the state, once it is durable.
    fn adopt(&self, state: &mut Self::State, record: Self::Record);

    /// Another process replaced the token file with `record`; returns
    /// true if and only if the state took it and the access token in use
    /// must be dropped. By default the file is only ever written by this
    /// session and an outside change is ignored.
    fn stored_elsewhere(&self, state: &mut Self::State, record: Self::Record) -> bool {
        let _ = (state, record);
        false
    }
}

/// The part behind the lock.
struct Slot<S> {
    /// The access token and until when it may be handed out.
    access: Option<(String, Instant)>,
    /// The generation of the newest access token (0: none yet).
    generation: u64,
    /// The token file as this session last wrote or read it.
    stamp: Option<Stamp>,
    /// The provider's state.
    state: S,
}

/// The login one account's jobs share.
pub struct Session<A: Authority> {
    /// The provider's half.
    authority: A,
    /// Where refresh tokens are kept.
    store: TokenStore,
    /// The token in use; the lock is held across a refresh (single flight).
    slot: Mutex<Slot<A::State>>,
}

impl<A: Authority> fmt::Debug for Session<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("provider", &self.authority.name())
            .field("store", &self.store.path())
            .finish_non_exhaustive()
    }
}

impl<A: Authority> Session<A> {
    /// A session starting from `state` (typically read from `store`).
    pub fn new(authority: A, store: TokenStore, state: A::State) -> Session<A> {
        let stamp = store.stamp();
        Session { authority, store, slot: Mutex::new(Slot { access: None, generation: 0, stamp, state }) }
    }

    /// Locks the slot (a poisoned lock still holds usable data: every
    /// write to it is a plain assignment).
    fn lock(&self) -> MutexGuard<'_, Slot<A::State>> {
        match self.slot.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The provider's half.
    pub fn authority(&self) -> &A {
        &self.authority
    }

    /// The token file.
    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    /// Reads the provider's state.
    pub fn inspect<T>(&self, f: impl FnOnce(&A::State) -> T) -> T {
        f(&self.lock().state)
    }

    /// A valid access token, refreshing when there is none or it is due.
    pub fn access(&self, ex: &dyn Exchange) -> Result<Access, A::Error> {
        let mut slot = self.lock();
        let slot = &mut *slot;
        let stamp = self.store.stamp();
        if stamp.is_some() && stamp != slot.stamp {
            slot.stamp = stamp;
            if let Some(record) = self.store.load::<A::Record>()
                && self.authority.stored_elsewhere(&mut slot.state, record)
            {
                slot.access = None;
            }
        }
        if let Some((token, until)) = &slot.access
            && Instant::now() < *until
        {
            return Ok(Access { token: token.clone(), generation: slot.generation });
        }
        slot.access = None;
        let grant = self.authority.refresh(ex, &mut slot.state)?;
        if let Some(record) = grant.record {
            // Saved before use: after using a rotated token that was not
            // saved, a crash would leave the old token dead and the new
            // one lost.
            self.store.save(&record)?;
            slot.stamp = self.store.stamp();
            self.authority.adopt(&mut slot.state, record);
        }
        slot.generation += 1;
        slot.access = Some((grant.access.clone(), Instant::now() + grant.valid_for));
        log::debug!("{}: new access token (generation {})", self.authority.name(), slot.generation);
        Ok(Access { token: grant.access, generation: slot.generation })
    }

    /// Forgets the access token of `generation` (the server refused it),
    /// so that the next [`access`](Self::access) refreshes, once, however
    /// many jobs saw the same refusal.
    pub fn invalidate(&self, generation: u64) {
        let mut slot = self.lock();
        if slot.generation == generation {
            slot.access = None;
        }
    }
}
