//! Deletes what can never be used again: expired codes, sessions, refresh-token families, deny-list
//! entries, reset and verification tokens, email sign-in requests, unconfirmed authenticator-app
//! secrets, invitations, and spent
//! failed-attempt counters; and, past `LATCHKEY_AUDIT_RETENTION`, the login history and the audit
//! log ([`retention`]).

use std::future::Future;
use std::time::Duration;

use crate::audit;
use crate::db::Database;

/// Rows one retention statement deletes at most, so that the first purge after years of history
/// (or a shortened retention) never holds one huge delete's locks and undo log.
const RETENTION_BATCH: i64 = 10_000;

/// Rows that stay this long after expiry, so that a late replay still finds (and is refused by) them.
const GRACE_SECS: i64 = 60 * 60;
/// Expired invitations stay this long, so that a late click gets "this invitation has expired"
/// rather than "not valid".
const EXPIRED_INVITATION_KEEP_SECS: i64 = 30 * 24 * 60 * 60;

// The purge of given-up mail spells the attempt limit out in SQL.
const _: () = assert!(crate::mail::delivery::MAX_ATTEMPTS == 20);
// Email sign-in requests must outlive the window their sending limits count them in.
const _: () = assert!(
    crate::login::email_signin::REQUEST_TTL_SECS + GRACE_SECS
        >= crate::login::email_signin::LIMIT_WINDOW_SECS
);

/// What one purge removed, per table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Purged {
    /// Rows deleted, by table name.
    pub rows: Vec<(&'static str, u64)>,
}

/// Runs every purge once at time `now`.
pub async fn run(db: &Database, now: i64) -> Result<Purged, sqlx::Error> {
    // A slice, not an array: each feature adds its own rows without counting the others.
    let statements: &[(&'static str, &str, i64)] = &[
        (
            "authorization_codes",
            "delete from authorization_codes where expires_at < $1",
            now - GRACE_SECS,
        ),
        (
            "device_authorizations",
            "delete from device_authorizations where expires_at < $1",
            now - GRACE_SECS,
        ),
        (
            "sessions",
            "delete from sessions where expires_at <= $1",
            now,
        ),
        (
            "refresh_families",
            "delete from refresh_families where expires_at < $1",
            now - GRACE_SECS,
        ),
        (
            "revoked_access_tokens",
            "delete from revoked_access_tokens where expires_at < $1",
            now,
        ),
        (
            "password_reset_tokens",
            "delete from password_reset_tokens where expires_at < $1",
            now - GRACE_SECS,
        ),
        (
            "email_verification_tokens",
            "delete from email_verification_tokens where expires_at < $1",
            now - GRACE_SECS,
        ),
        // Address changes (your account) whose link expired, used or not.
        (
            "email_changes",
            "delete from email_changes where expires_at < $1",
            now - GRACE_SECS,
        ),
        // Email sign-in requests: kept an hour after expiry, which is also as long as the sending
        // limits look back (`login::email_signin::LIMIT_WINDOW_SECS` from creation).
        (
            "email_signin_requests",
            "delete from email_signin_requests where expires_at < $1",
            now - GRACE_SECS,
        ),
        (
            "invitations",
            "delete from invitations where state = 'pending' and expires_at < $1",
            now - EXPIRED_INVITATION_KEEP_SECS,
        ),
        // Authenticator-app secrets shown but never confirmed: past the hour a reload reuses them
        // (`mfa::totp::pages::UNCONFIRMED_REUSE_SECS`), nobody can confirm them any more.
        (
            "totp_factors",
            "delete from totp_factors where confirmed_at is null and created_at < $1",
            now - crate::mfa::totp::pages::UNCONFIRMED_REUSE_SECS - GRACE_SECS,
        ),
        // Pushed authorization requests (RFC 9126), claimed or not, once they expired.
        (
            "pushed_authorization_requests",
            "delete from pushed_authorization_requests where expires_at < $1",
            now - GRACE_SECS,
        ),
        // Initial access tokens of dynamic registration (RFC 7591) that expired.
        (
            "registration_initial_tokens",
            "delete from registration_initial_tokens where expires_at < $1",
            now - GRACE_SECS,
        ),
        // Failed-attempt counters whose window has passed count nothing any more.
        (
            "login_throttles",
            "delete from login_throttles where window_ends_at <= $1",
            now,
        ),
        (
            "mail_outbox",
            "delete from mail_outbox where sent_at is not null and sent_at < $1",
            now - 7 * 24 * 60 * 60,
        ),
        // Mail the delivery loop gave up on (after `mail::delivery::MAX_ATTEMPTS` failures, each
        // logged) goes a week after it was queued.
        (
            "mail_outbox",
            "delete from mail_outbox where sent_at is null and attempts >= 20 and created_at < $1",
            now - 7 * 24 * 60 * 60,
        ),
        // Back-channel logouts delivered or given up (the error stays on the row) go after a week;
        // clients of sessions that ended without a logout (expired) once the session is gone.
        (
            "backchannel_logouts",
            "delete from backchannel_logouts where coalesce(delivered_at, given_up_at) < $1",
            now - 7 * 24 * 60 * 60,
        ),
        (
            "backchannel_sessions",
            "delete from backchannel_sessions where created_at < $1 and not exists \
             (select 1 from sessions s where s.sid = backchannel_sessions.sid)",
            now - GRACE_SECS,
        ),
        // DPoP proofs too old to be accepted again (RFC 9449 §11.1; `dpop::store`).
        (
            "dpop_proofs",
            "delete from dpop_proofs where expires_at < $1",
            now,
        ),
    ];
    let mut purged = Purged::default();
    for &(table, sql, cutoff) in statements {
        let done = sqlx::query(sql).bind(cutoff).execute(&db.pool).await?;
        if done.rows_affected() > 0 {
            purged.rows.push((table, done.rows_affected()));
        }
    }
    Ok(purged)
}

/// Deletes login events and audit events older than `retention` at time `now`, in batches of
/// [`RETENTION_BATCH`] (each an indexed delete on `created_at`). Keeping personal data such as
/// addresses and browsers no longer than needed is GDPR Art. 5(1)(e); NIST SP 800-92 §5.1 asks for
/// a defined log retention.
pub async fn retention(
    db: &Database,
    now: i64,
    retention: Duration,
) -> Result<Purged, sqlx::Error> {
    let cutoff = now.saturating_sub(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
    let mut purged = Purged::default();
    let login_events =
        drain(|| audit::login_history::delete_before(&db.pool, cutoff, RETENTION_BATCH)).await?;
    let audit_events = drain(|| audit::delete_before(&db.pool, cutoff, RETENTION_BATCH)).await?;
    for (table, rows) in [
        ("login_events", login_events),
        ("audit_events", audit_events),
    ] {
        if rows > 0 {
            purged.rows.push((table, rows));
        }
    }
    Ok(purged)
}

/// Runs a batched delete until a batch comes back short; returns the rows deleted in all.
async fn drain<F, Fut>(mut batch: F) -> Result<u64, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let rows = batch().await?;
        total += rows;
        if rows < RETENTION_BATCH.unsigned_abs() {
            return Ok(total);
        }
    }
}
