//! The operator's reset of a user's second factors (`latchkey user mfa-reset`, `DELETE
//! /api/v1/users/{id}/mfa`): every factor removed, every session ended, the owner mailed, audited.
//!
//! This is the way back for a person who lost their authenticator and their recovery codes (OWASP
//! ASVS V2.5: recovery must not be weaker than the factor; here a human operator decides, after
//! checking who asks, outside the application). Everything happens in one transaction: the factors
//! (TOTP, recovery codes, passkeys) go, every browser session and refresh-token family ends (a
//! session that proved a factor which no longer exists must not outlive it), the audit log records
//! `mfa.reset` with what was removed, and the owner's notice is queued (ASVS V2.2.3). The caller
//! wakes the mailer after the commit when it runs inside the server.

use serde::Serialize;
use serde_json::json;

use super::mail::{FactorChange, queue_factor_changed};
use super::store::{self, FactorsRemoved};
use crate::accounts::admin::{self, UserRef};
use crate::accounts::lifecycle;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::config::Config;
use crate::db::Database;
use crate::error::Result;

/// The outcome of a reset, as the command line prints it and the API answers it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = MfaReset)]
pub struct Reset {
    /// The user id.
    pub id: String,
    /// The account's address.
    pub email: String,
    /// Rows removed in all: the authenticator, recovery codes (used or not) and passkeys.
    pub factors_removed: u64,
    /// The same, per kind.
    pub removed: FactorsRemoved,
    /// Browser sessions ended.
    pub sessions_ended: u64,
    /// Refresh-token families revoked.
    pub refresh_families_ended: u64,
}

/// Resets the second factors of `user` (see the module): one transaction; `ip` is the operator's
/// address for the mail (none from the command line). 404 `user-not-found` for an unknown user.
/// A user without any factor is reset all the same (sessions end, the owner is told): the operator
/// asked for a clean slate, and the answer says nothing was removed.
pub async fn reset(
    db: &Database,
    config: &Config,
    now: i64,
    user: UserRef<'_>,
    actor: &Actor,
) -> Result<Reset> {
    let mut tx = db.begin().await?;
    let found = admin::find_in(&mut tx, user)
        .await?
        .ok_or_else(|| admin::not_found(user))?;
    let before = store::factors(&mut *tx, &found.id).await?;
    let removed = store::delete_all(&mut tx, &found.id).await?;
    let ended = lifecycle::end_everything(&mut tx, &found.id, now, "mfa_reset").await?;
    audit::record(
        &mut *tx,
        &AuditEvent {
            org_id: None,
            actor,
            action: action::MFA_RESET,
            target_type: Some("user"),
            target_id: Some(&found.id),
            details: json!({
                "factors_removed": removed,
                "had_second_factor": before.any(),
                "ended": ended,
            }),
        },
        now,
    )
    .await?;
    queue_factor_changed(
        &mut tx,
        config,
        &found.email,
        FactorChange::ResetByOperator,
        actor.meta.ip.as_deref(),
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %found.id, "second factors reset by an operator");
    Ok(Reset {
        id: found.id,
        email: found.email,
        factors_removed: removed.total(),
        removed,
        sessions_ended: ended.sessions,
        refresh_families_ended: ended.refresh_families,
    })
}
