//! Tests of the shared session pieces with a provider that makes no calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::*;
use crate::pacing::{ApiError, ApiRequest, ApiResponse};

/// The token file's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Rec {
    /// The refresh token.
    refresh: String,
}

/// Why the fake has no token.
#[derive(Debug, PartialEq, Eq)]
enum FakeError {
    /// The store failed.
    Store(String),
    /// The call failed.
    Call(String),
}

impl From<StoreError> for FakeError {
    fn from(e: StoreError) -> Self {
        FakeError::Store(e.to_string())
    }
}

/// Grants `a<n>`/`r<n>` on its n-th refresh, slowly enough that other
/// threads pile up on the lock.
#[derive(Default)]
struct Fake {
    /// Refreshes so far.
    calls: AtomicUsize,
    /// The refresh token each refresh started from.
    used: Mutex<Vec<String>>,
    /// Whether a token file written by someone else is taken.
    follow_file: bool,
}

impl Authority for Fake {
    type State = String;
    type Record = Rec;
    type Error = FakeError;

    fn name(&self) -> &'static str {
        "fake"
    }

    fn refresh(&self, _ex: &dyn Exchange, state: &mut String) -> Result<Grant<Rec>, FakeError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut u) = self.used.lock() {
            u.push(state.clone());
        }
        thread::sleep(Duration::from_millis(50));
        Ok(Grant {
            access: format!("a{n}"),
            valid_for: Duration::from_secs(3600),
            record: Some(Rec { refresh: format!("r{n}") }),
        })
    }

    fn adopt(&self, state: &mut String, record: Rec) {
        *state = record.refresh;
    }

    fn stored_elsewhere(&self, state: &mut String, record: Rec) -> bool {
        if self.follow_file {
            *state = record.refresh;
        }
        self.follow_file
    }
}

/// An exchange that is never reached (the fake makes no calls).
struct NoNet;

impl Exchange for NoNet {
    fn exchange(&self, _req: ApiRequest) -> Result<ApiResponse, ApiError> {
        Err(ApiError::Transport { reason: "no network in this test".into(), transient: false })
    }
}

fn session(dir: &std::path::Path, fake: Fake) -> Session<Fake> {
    Session::new(fake, TokenStore::new(dir.join("token.json")), "r0".to_string())
}

#[test]
fn concurrent_callers_share_one_refresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Arc::new(session(dir.path(), Fake::default()));
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                s.access(&NoNet)
            })
        })
        .collect();
    for h in handles {
        let a = h.join().expect("thread").expect("access");
        assert_eq!((a.token.as_str(), a.generation), ("a1", 1));
    }
    assert_eq!(s.authority().calls.load(Ordering::SeqCst), 1, "one refresh for {n} callers");
    assert_eq!(s.inspect(Clone::clone), "r1");
}

#[test]
fn a_stale_refusal_keeps_the_fresh_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = session(dir.path(), Fake::default());
    let old = s.access(&NoNet).expect("first");
    s.invalidate(old.generation);
    let new = s.access(&NoNet).expect("second");
    assert_eq!((new.token.as_str(), new.generation), ("a2", 2));
    // A second job saw the old token refused too, a little later.
    s.invalidate(old.generation);
    assert_eq!(s.access(&NoNet).expect("third"), new);
    assert_eq!(s.authority().calls.load(Ordering::SeqCst), 2);
    assert_eq!(*s.authority().used.lock().expect("used"), ["r0", "r1"], "each refresh used the newest token");
}

#[test]
fn the_rotated_token_is_private_on_disk_before_its_access_token_is_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = session(dir.path(), Fake::default());
    let mut seen = Vec::new();
    let out: Result<(), FakeError> = call_with_reauth(&s, &NoNet, |a| {
        // This is the first use of the token: the file must already hold
        // the refresh token that came with it, readable by the owner only.
        let on_disk = s.store().load::<Rec>();
        let mode = std::fs::metadata(s.store().path()).map(|m| m.permissions().mode() & 0o777).ok();
        seen.push((a.token.clone(), on_disk, mode));
        Ok(())
    });
    assert_eq!(out, Ok(()));
    assert_eq!(seen, [("a1".to_string(), Some(Rec { refresh: "r1".into() }), Some(0o600))]);
}

#[test]
fn a_grant_that_cannot_be_saved_is_not_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").expect("write");
    let s = session(&blocker, Fake::default());
    let e = s.access(&NoNet).expect_err("the folder is a file");
    assert!(matches!(&e, FakeError::Store(m) if m.contains("token.json")), "{e:?}");
    assert_eq!(s.inspect(Clone::clone), "r0", "the unsaved token was not adopted");
}

#[test]
fn a_refused_token_is_replaced_once_and_only_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = session(dir.path(), Fake::default());
    let mut tokens = Vec::new();
    let ok: Result<&str, FakeError> = call_with_reauth(&s, &NoNet, |a| {
        tokens.push(a.token.clone());
        if a.generation == 1 {
            Err(Failure::Unauthorized(FakeError::Call("refused".into())))
        } else {
            Ok("done")
        }
    });
    assert_eq!(ok, Ok("done"));
    assert_eq!(tokens, ["a1", "a2"]);

    let mut calls = 0;
    let refused: Result<(), FakeError> = call_with_reauth(&s, &NoNet, |a| {
        calls += 1;
        Err(Failure::Unauthorized(FakeError::Call(format!("refused {}", a.token))))
    });
    assert_eq!(refused, Err(FakeError::Call("refused a3".into())), "the second refusal is the answer");
    assert_eq!(calls, 2);

    let mut calls = 0;
    let other: Result<(), FakeError> = call_with_reauth(&s, &NoNet, |_| {
        calls += 1;
        Err(Failure::Other(FakeError::Call("not found".into())))
    });
    assert_eq!(other, Err(FakeError::Call("not found".into())));
    assert_eq!(calls, 1, "other failures are not repeated");
    assert_eq!(s.authority().calls.load(Ordering::SeqCst), 3);
}

#[test]
fn a_token_file_written_elsewhere_is_taken_only_when_the_provider_wants_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    for follow_file in [false, true] {
        let s = session(dir.path(), Fake { follow_file, ..Fake::default() });
        s.access(&NoNet).expect("first");
        // Another process (`spoolfetch … refresh`) stores a token.
        s.store().save(&Rec { refresh: "outside".into() }).expect("save");
        let a = s.access(&NoNet).expect("second");
        let used = s.authority().used.lock().expect("used").clone();
        if follow_file {
            assert_eq!((a.generation, used.last().map(String::as_str)), (2, Some("outside")));
        } else {
            assert_eq!((a.generation, s.inspect(Clone::clone)), (1, "r1".to_string()));
        }
    }
}

#[test]
fn the_registry_keeps_one_session_per_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sessions = Sessions::new();
    let made = AtomicUsize::new(0);
    let make = || {
        made.fetch_add(1, Ordering::SeqCst);
        session(dir.path(), Fake::default())
    };
    let a = sessions.get_or_insert("acct-a", make);
    let again = sessions.get_or_insert("acct-a", || session(dir.path(), Fake::default()));
    let b = sessions.get_or_insert("acct-b", || session(dir.path(), Fake::default()));
    assert!(Arc::ptr_eq(&a, &again));
    assert!(!Arc::ptr_eq(&a, &b));
    assert_eq!((made.load(Ordering::SeqCst), sessions.len()), (1, 2));
    // Another registry (a CLI command's) shares nothing.
    let other = Sessions::new();
    assert!(!Arc::ptr_eq(&a, &other.get_or_insert("acct-a", || session(dir.path(), Fake::default()))));
}
