//! The delivery of logout tokens (Back-Channel Logout 1.0 §2.5), off the request path: an
//! [`Outbox`] of `backchannel_logouts` for the one delivery loop of [`crate::jobs::outbox`] (leases,
//! batches, stopping between logouts).
//!
//! The loop polls every [`POLL_EVERY`]; nothing wakes it sooner (logouts are queued inside their
//! caller's transaction, and a pass before the commit would find nothing). A logout is leased for
//! [`LEASE_SECS`]. A token is signed at each attempt (it is valid two minutes, §2.4), and posted as
//! `logout_token=…` in an `application/x-www-form-urlencoded` body through the guarded upstream
//! client ([`crate::federation::upstream`]: https, or http on loopback with
//! `LATCHKEY_ALLOW_INSECURE_UPSTREAMS=true`; no private addresses, no redirects followed), within
//! [`REQUEST_TIMEOUT`]. §2.8: a 200 or 204 (any 2xx here) is success; anything else (an error
//! status, a redirect, no answer) is retried after [`backoff_secs`] and given up after
//! [`MAX_ATTEMPTS`] attempts or [`GIVE_UP_AFTER_SECS`], with the last error kept on the row.

use std::time::Duration;

use axum::http::{Method, Request, header};

use super::store::{self, LogoutRow};
use super::token;
use crate::app::AppState;
use crate::federation::upstream::UpstreamError;
use crate::jobs::outbox::{Outbox, Worker};

/// How often the loop looks for due logouts.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long a claimed logout stays leased to the posting process (well over one request).
pub const LEASE_SECS: i64 = 60;
/// Longest time one post may take (the relying party answers at once, §2.8).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts after which a logout is given up.
pub const MAX_ATTEMPTS: i64 = 10;
/// Age after which a logout is given up whatever the attempts: a relying party told a day late has
/// long timed its session out, or had it ended by other means.
pub const GIVE_UP_AFTER_SECS: i64 = 24 * 60 * 60;
/// Delays after the 1st, 2nd, … failure; the last one repeats.
const BACKOFF_SECS: [i64; 7] = [5, 30, 120, 600, 1800, 3600, 7200];
/// Longest stored error text.
const MAX_ERROR_CHARS: usize = 500;

/// Delay after the `attempts`-th failure: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, then every 2 h.
pub fn backoff_secs(attempts: i64) -> i64 {
    let index = usize::try_from(attempts.saturating_sub(1)).unwrap_or(0);
    BACKOFF_SECS[index.min(BACKOFF_SECS.len() - 1)]
}

/// Why one attempt failed.
enum Failure {
    /// Worth another try later (no answer, an error status).
    Temporary(String),
    /// Never going to work (the client has no URI any more, the URI is refused).
    Permanent(String),
}

/// The outbox of logout tokens, read and marked through the server's state.
struct Logouts(AppState);

impl Outbox for Logouts {
    type Row = LogoutRow;
    const NAME: &'static str = "backchannel_logouts";
    const LEASE_SECS: i64 = LEASE_SECS;

    fn now(&self) -> i64 {
        self.0.clock.now()
    }

    async fn due(&self, now: i64, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        store::due(&self.0.db.pool, now, limit).await
    }

    async fn claim(
        &self,
        id: &str,
        now: i64,
        until: i64,
    ) -> Result<Option<LogoutRow>, sqlx::Error> {
        store::claim(&self.0.db.pool, id, now, until).await
    }

    async fn deliver(&self, row: LogoutRow) -> Result<bool, sqlx::Error> {
        deliver(&self.0, row).await
    }
}

/// Starts this process's logout loop, polling every [`POLL_EVERY`].
pub fn start(state: AppState) -> Worker {
    Worker::start(Logouts(state), POLL_EVERY, std::future::pending::<()>)
}

/// Posts one claimed logout and records the outcome; true when the relying party accepted it.
async fn deliver(state: &AppState, row: LogoutRow) -> Result<bool, sqlx::Error> {
    let outcome = attempt(state, &row).await;
    let now = state.clock.now();
    let failure = match outcome {
        Ok(()) => {
            store::mark_delivered(&state.db.pool, &row.id, now).await?;
            crate::metrics::backchannel_logout_delivered();
            tracing::info!(logout_id = %row.id, client_id = %row.client_id, "back-channel logout delivered");
            return Ok(true);
        }
        Err(failure) => failure,
    };
    let attempts = row.attempts + 1;
    let (permanent, text) = match failure {
        Failure::Permanent(t) => (true, t),
        Failure::Temporary(t) => (false, t),
    };
    let text: String = text.chars().take(MAX_ERROR_CHARS).collect();
    let next = now + backoff_secs(attempts);
    let give_up =
        permanent || attempts >= MAX_ATTEMPTS || next - row.created_at > GIVE_UP_AFTER_SECS;
    store::mark_failed(
        &state.db.pool,
        &row.id,
        attempts,
        &text,
        now,
        (!give_up).then_some(next),
    )
    .await?;
    crate::metrics::backchannel_logout_failed();
    if give_up {
        tracing::error!(logout_id = %row.id, client_id = %row.client_id, attempts, error = %text,
            "back-channel logout given up");
    } else {
        tracing::warn!(logout_id = %row.id, client_id = %row.client_id, attempts,
            retry_in_secs = next - now, error = %text, "back-channel logout failed; will retry");
    }
    Ok(false)
}

/// Signs the token and posts it to the client's back-channel logout URI.
async fn attempt(state: &AppState, row: &LogoutRow) -> Result<(), Failure> {
    let client = state
        .clients
        .find(&row.client_id)
        .await
        .map_err(|e| Failure::Temporary(format!("reading the client: {e}")))?
        .ok_or_else(|| Failure::Permanent("the client no longer exists".into()))?;
    let uri = client.backchannel_logout_uri.clone().ok_or_else(|| {
        Failure::Permanent("the client no longer has a back-channel logout URI".into())
    })?;
    let jwt = token::sign(state, &client, &row.sub, &row.sid, state.clock.now())
        .map_err(|e| Failure::Temporary(format!("signing the logout token: {e}")))?;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", &jwt)
        .finish();
    let request = Request::builder()
        .method(Method::POST)
        .uri(&uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.into_bytes())
        .map_err(|e| Failure::Permanent(format!("the back-channel logout URI: {e}")))?;
    let response = tokio::time::timeout(REQUEST_TIMEOUT, state.upstream.call(request))
        .await
        .map_err(|_| {
            Failure::Temporary(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()))
        })?
        .map_err(|e| match e {
            // A refused address stays refused; a redirect may be a passing misconfiguration.
            UpstreamError::Refused(t) if !t.contains("redirect") => Failure::Permanent(t),
            other => Failure::Temporary(other.to_string()),
        })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(Failure::Temporary(format!(
            "the relying party answered {}",
            response.status()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff_secs(0), 5);
        assert_eq!(backoff_secs(1), 5);
        assert_eq!(backoff_secs(2), 30);
        assert_eq!(backoff_secs(3), 120);
        assert_eq!(backoff_secs(7), 7200);
        assert_eq!(backoff_secs(100), 7200);
    }
}
