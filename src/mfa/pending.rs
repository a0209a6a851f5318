//! The state of a sign-in between its first and its second factor, kept in the server-side session
//! (the browser is not signed in yet). Also used for a step-up: a signed-in session that must add a
//! second factor (`acr_values`, an organization's `require_mfa`) keeps one with `step_up` set.
//!
//! It expires after [`PENDING_TTL_SECS`]: a password typed an hour ago does not wait for a code.

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::clock::Clock;
use crate::error::Result;
use crate::login::session::session_error;

/// Session key of the pending second factor.
const PENDING_FACTOR_KEY: &str = "pending_factor";

/// How long the first factor waits for the second.
pub const PENDING_TTL_SECS: i64 = 10 * 60;

/// A first factor done, waiting for the second.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingFactor {
    /// Who proved the first factor.
    pub user_id: String,
    /// The address as typed at the first step (the login history keeps it).
    pub email: String,
    /// The login-history method of the first factor (`pwd`, `email`).
    pub method: String,
    /// The `amr` of the first factor.
    pub amr: Vec<String>,
    /// The pending authorization request the sign-in continues (empty: none).
    pub authz: String,
    /// Local path to go to when no authorization request is pending.
    pub next: String,
    /// When the first factor was proved (unix seconds).
    pub started_at: i64,
    /// True for a session already signed in that adds a factor (step-up), false for a sign-in.
    pub step_up: bool,
}

/// Keeps `pending` in the session (replacing any earlier one).
pub async fn begin(session: &Session, pending: &PendingFactor) -> Result<()> {
    session
        .insert(PENDING_FACTOR_KEY, pending)
        .await
        .map_err(session_error)
}

/// The pending second factor of this session, if any and not expired.
pub async fn get(session: &Session, clock: &Clock) -> Result<Option<PendingFactor>> {
    let pending: Option<PendingFactor> = session
        .get(PENDING_FACTOR_KEY)
        .await
        .map_err(session_error)?;
    Ok(pending.filter(|p| clock.now() - p.started_at <= PENDING_TTL_SECS))
}

/// Forgets the pending second factor (done, or abandoned).
pub async fn clear(session: &Session) -> Result<()> {
    session
        .remove::<PendingFactor>(PENDING_FACTOR_KEY)
        .await
        .map_err(session_error)?;
    Ok(())
}
