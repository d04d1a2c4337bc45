//! An authorized call that survives one refused access token.
//!
//! Invariant: a call is repeated at most once, with a fresh token, and
//! only when the server said the token was refused. Refreshing on every
//! error can get a refresh token revoked, and a token refused right after
//! a refresh will be refused again.

use super::login::{Access, Authority, Exchange, Session};

/// How an authorized call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure<E> {
    /// The server refused the access token; the error is what the caller
    /// gets when a fresh token is refused too.
    Unauthorized(E),
    /// Anything else: a new token would not change the answer.
    Other(E),
}

impl<E> Failure<E> {
    /// The error inside.
    pub fn into_inner(self) -> E {
        match self {
            Failure::Unauthorized(e) | Failure::Other(e) => e,
        }
    }
}

/// Makes `call` with the session's access token; when the server refuses
/// it, forgets that token's generation and makes the call once more with
/// a new one.
pub fn call_with_reauth<A, T, E>(
    session: &Session<A>,
    ex: &dyn Exchange,
    mut call: impl FnMut(&Access) -> Result<T, Failure<E>>,
) -> Result<T, E>
where
    A: Authority,
    E: From<A::Error>,
{
    let first = session.access(ex)?;
    match call(&first) {
        Ok(v) => Ok(v),
        Err(Failure::Other(e)) => Err(e),
        Err(Failure::Unauthorized(_)) => {
            log::info!("{}: the access token was refused; getting a new one", session.authority().name());
            session.invalidate(first.generation);
            let second = session.access(ex)?;
            call(&second).map_err(Failure::into_inner)
        }
    }
}
