//! What the browser session holds, and the only code that reads or writes it: the signed-in user and
//! authorization requests waiting for a login or a consent. (CSRF tokens live in a signed cookie,
//! [`crate::web::csrf`], so that a form shown to an anonymous visitor creates no session.)
//!
//! Sessions expire after [`IDLE_TIMEOUT`] without use and at the latest [`ABSOLUTE_TIMEOUT`] after
//! sign-in (OWASP ASVS V3.3). tower-sessions renews a session's expiry only when it saves it, and it
//! saves only modified sessions; so [`signed_in`] notes the time of use at most every
//! [`RENEW_AFTER`], which keeps a session in use alive without a database write on every request.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::session_store::USER_ID_KEY;
use crate::clock::{self, Clock};
use crate::crypto::tokens::new_id;
use crate::error::{AppError, Result};
use crate::oauth::request::AuthzRequest;
use crate::web::request_meta::RequestMeta;
use crate::web::{csrf, page};

/// A session unused this long ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(8 * 60 * 60);
/// A session ends this long after sign-in, however active.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// A signed-in session in use is renewed (written, with a new idle expiry) at most this often; the
/// idle timeout is thus exact to within this much.
pub const RENEW_AFTER: Duration = Duration::from_secs(5 * 60);
/// Authorization requests kept per session (one per open tab); older ones are dropped.
const MAX_PENDING: usize = 8;

/// Session key: when the user authenticated (`auth_time`).
pub(super) const AUTH_TIME_KEY: &str = "auth_time";
/// Session key: the session id exposed to clients as `sid` (stable across id renewal).
pub(super) const SID_KEY: &str = "sid";
/// Session key: authentication methods (`amr`).
const AMR_KEY: &str = "amr";
/// Session key: when the session was last renewed by use (unix seconds, see [`RENEW_AFTER`]).
pub(super) const SEEN_KEY: &str = "seen";
/// Session key: authorization requests waiting for login or consent, by id.
const PENDING_KEY: &str = "pending_authz";
/// Session key: the browser (`User-Agent`) that signed in, shown on the account's sessions page.
pub(super) const USER_AGENT_KEY: &str = "user_agent";
/// Session key: the client address that signed in, shown on the account's sessions page.
pub(super) const IP_KEY: &str = "ip";

/// The signed-in user of a browser session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedIn {
    /// User id.
    pub user_id: String,
    /// Unix seconds of the login.
    pub auth_time: i64,
    /// Session id for the `sid` claim.
    pub sid: String,
    /// RFC 8176 methods.
    pub amr: Vec<String>,
}

/// A failure of the session store (a 500: the session row could not be read or written), for every
/// feature that keeps its own keys in the session.
pub fn session_error(err: tower_sessions::session::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("session: {err}"))
}

/// The signed-in user, if any and within the absolute timeout; renews the idle timeout when the last
/// renewal is older than [`RENEW_AFTER`].
pub async fn signed_in(session: &Session, clock: &Clock) -> Result<Option<SignedIn>> {
    let Some(user_id) = session
        .get::<String>(USER_ID_KEY)
        .await
        .map_err(session_error)?
    else {
        return Ok(None);
    };
    let auth_time = session
        .get::<i64>(AUTH_TIME_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or(0);
    let now = clock.now();
    if now - auth_time > clock::secs(ABSOLUTE_TIMEOUT) {
        session.flush().await.map_err(session_error)?;
        return Ok(None);
    }
    let seen = session
        .get::<i64>(SEEN_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or(auth_time);
    if now - seen >= clock::secs(RENEW_AFTER) {
        // A modified session is saved at the end of the request, with a fresh idle expiry.
        session.insert(SEEN_KEY, now).await.map_err(session_error)?;
    }
    let sid = session
        .get::<String>(SID_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or_default();
    let amr = session
        .get::<Vec<String>>(AMR_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or_default();
    page::note_signed_in();
    Ok(Some(SignedIn {
        user_id,
        auth_time,
        sid,
        amr,
    }))
}

/// Signs `user_id` in: a new session id (against fixation, OWASP ASVS V3.2.1), a new CSRF token
/// ([`csrf::renew`]), pending authorization requests kept. The `sid` is new, unless the same person
/// authenticates again in this session (`prompt=login`, `max_age`, a second factor added for a
/// step-up): the session the clients know goes on, with a new `auth_time` and `amr`. The browser
/// and address of `meta` are kept so that the account's sessions page can show where each session
/// is used.
pub async fn sign_in(
    session: &Session,
    clock: &Clock,
    user_id: &str,
    amr: &[&str],
    meta: &RequestMeta,
) -> Result<SignedIn> {
    let same_person = session
        .get::<String>(USER_ID_KEY)
        .await
        .map_err(session_error)?
        .is_some_and(|current| current == user_id);
    let sid = match session
        .get::<String>(SID_KEY)
        .await
        .map_err(session_error)?
    {
        Some(sid) if same_person => sid,
        _ => new_id(),
    };
    session.cycle_id().await.map_err(session_error)?;
    let signed_in = SignedIn {
        user_id: user_id.to_owned(),
        auth_time: clock.now(),
        sid,
        amr: amr.iter().map(|m| (*m).to_owned()).collect(),
    };
    session
        .insert(USER_ID_KEY, &signed_in.user_id)
        .await
        .map_err(session_error)?;
    session
        .insert(AUTH_TIME_KEY, signed_in.auth_time)
        .await
        .map_err(session_error)?;
    session
        .insert(SID_KEY, &signed_in.sid)
        .await
        .map_err(session_error)?;
    session
        .insert(AMR_KEY, &signed_in.amr)
        .await
        .map_err(session_error)?;
    session
        .insert(SEEN_KEY, signed_in.auth_time)
        .await
        .map_err(session_error)?;
    session
        .insert(USER_AGENT_KEY, &meta.user_agent)
        .await
        .map_err(session_error)?;
    session
        .insert(IP_KEY, &meta.ip)
        .await
        .map_err(session_error)?;
    page::note_signed_in();
    csrf::renew()?;
    Ok(signed_in)
}

async fn pending_map(session: &Session) -> Result<HashMap<String, AuthzRequest>> {
    Ok(session
        .get(PENDING_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or_default())
}

/// Keeps an authorization request until the user has signed in or consented.
pub async fn save_pending(session: &Session, request: &AuthzRequest) -> Result<()> {
    let mut pending = pending_map(session).await?;
    pending.insert(request.id.clone(), request.clone());
    while pending.len() > MAX_PENDING {
        let oldest = pending
            .values()
            .min_by_key(|r| r.created_at)
            .map(|r| r.id.clone());
        match oldest {
            Some(id) => pending.remove(&id),
            None => break,
        };
    }
    session
        .insert(PENDING_KEY, pending)
        .await
        .map_err(session_error)
}

/// A waiting authorization request.
pub async fn pending(session: &Session, id: &str) -> Result<Option<AuthzRequest>> {
    Ok(pending_map(session).await?.remove(id))
}

/// Forgets a waiting authorization request (answered, or denied).
pub async fn remove_pending(session: &Session, id: &str) -> Result<()> {
    let mut pending = pending_map(session).await?;
    if pending.remove(id).is_some() {
        session
            .insert(PENDING_KEY, pending)
            .await
            .map_err(session_error)?;
    }
    Ok(())
}
