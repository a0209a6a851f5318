//! What ends an account's sign-ins, and the account itself: ending one browser session, all but the
//! current one, or everything (every session and every refresh-token family); disabling and enabling
//! an account; deleting it. The account pages, the `/api/v1/me` routes and the operator's CLI and
//! API all go through these, inside the caller's transaction. Callers record the audit events of
//! ending sessions and disabling themselves (what they say differs); a deletion records its own
//! (`member.removed` per organization and `user.deleted`), so that both ways to delete leave the same
//! trace.
//!
//! Ending a browser session also revokes the refresh-token families born in it that were not granted
//! `offline_access`, as RP-initiated logout does ([`revoke_session_families`]): an application the
//! person signed in to from that browser loses its session with it, while an application given
//! offline access keeps it until it is removed from the connected apps. Disabling, deleting and an
//! operator's "end every session" revoke every family (OWASP ASVS V3.3.3: the account's sessions end
//! at once, wherever they are). Every way a session ends here also queues the back-channel logouts of
//! its clients (`oidc::backchannel`, in the same transaction).

use serde::Serialize;
use serde_json::json;

use crate::accounts::User;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::db::Tx;
use crate::error::Result;
use crate::login::session_store;
use crate::oauth::store::revoke_user_families;
use crate::oidc::backchannel;
use crate::oidc::end_session::revoke_session_families;
use crate::orgs::roles::Role;
use crate::orgs::{self, Organization};

/// What ending an account's sign-ins ended.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Ended {
    /// Browser sessions deleted.
    pub sessions: u64,
    /// Refresh-token families revoked.
    pub refresh_families: u64,
}

/// The API's answer after ending sign-ins (`{"ended": {"sessions", "refresh_families"}}`):
/// `POST /api/v1/users/{id}/sessions/revoke` and `POST /api/v1/me/sessions/end-others`.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct EndedSignIns {
    /// What was ended.
    pub ended: Ended,
}

/// Ends the browser session `sid` of `user_id` and the refresh-token families born in it without
/// offline access. `None` when `user_id` has no such session (another person's sid ends nothing).
pub async fn end_session(tx: &mut Tx, user_id: &str, sid: &str, now: i64) -> Result<Option<Ended>> {
    if !session_store::delete_by_sid(&mut **tx, user_id, sid).await? {
        return Ok(None);
    }
    backchannel::session_ended(tx, sid, now).await;
    let refresh_families = revoke_session_families(&mut **tx, sid, now).await?;
    Ok(Some(Ended {
        sessions: 1,
        refresh_families,
    }))
}

/// Ends every browser session of `user_id` but `keep_sid` ("sign out everywhere else"), each as
/// [`end_session`] does.
pub async fn end_other_sessions(
    tx: &mut Tx,
    user_id: &str,
    keep_sid: &str,
    now: i64,
) -> Result<Ended> {
    let mut ended = Ended::default();
    for sid in session_store::other_sids(&mut **tx, user_id, keep_sid).await? {
        if let Some(one) = end_session(tx, user_id, &sid, now).await? {
            ended.sessions += one.sessions;
            ended.refresh_families += one.refresh_families;
        }
    }
    Ok(ended)
}

/// Ends every browser session of `user_id` and revokes every refresh-token family, offline ones
/// included (`reason` is stored with each family: `user_disabled`, `sessions_ended`, …).
pub async fn end_everything(tx: &mut Tx, user_id: &str, now: i64, reason: &str) -> Result<Ended> {
    backchannel::user_signed_out(tx, user_id, now).await;
    let sessions = session_store::delete_user_sessions(&mut **tx, user_id).await?;
    let refresh_families = revoke_user_families(&mut **tx, user_id, now, reason).await?;
    Ok(Ended {
        sessions,
        refresh_families,
    })
}

/// Disables (`true`) or enables `user_id`; a disabled account's sign-ins all end at once, and an
/// enabled one starts with no browser session. Returns
/// `None` when there is no such user, else whether the flag changed and what ended.
pub async fn set_disabled(
    tx: &mut Tx,
    user_id: &str,
    disabled: bool,
    now: i64,
) -> Result<Option<(bool, Ended)>> {
    let Some(changed) = crate::accounts::store::set_disabled(tx, user_id, disabled, now).await?
    else {
        return Ok(None);
    };
    let ended = if disabled {
        end_everything(tx, user_id, now, "user_disabled").await?
    } else {
        // A sign-in whose password check raced the disabling can have written its session row
        // after the sessions were ended; it was ignored while the account was disabled, and must
        // not come back to life now: enabling restores signing in, not old sessions.
        session_store::delete_user_sessions(&mut **tx, user_id).await?;
        Ended::default()
    };
    Ok(Some((changed, ended)))
}

/// Why an account cannot be deleted (or an organization left).
#[derive(Debug, Clone)]
pub enum DeleteRefused {
    /// The person is the only owner of these organizations: another owner must be named first (or
    /// the organization deleted), else nobody could manage it.
    LastOwner(Vec<Organization>),
}

impl DeleteRefused {
    /// A sentence naming the organizations, for a page or a problem's `detail`.
    pub fn message(&self) -> String {
        match self {
            DeleteRefused::LastOwner(orgs) => {
                let names: Vec<String> = orgs
                    .iter()
                    .map(|o| format!("{} ({})", o.name, o.slug))
                    .collect();
                format!(
                    "You are the only owner of {}. Make another member an owner, or delete the \
                     organization, first.",
                    names.join(", ")
                )
            }
        }
    }
}

/// Who asks for a deletion, as the audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletedBy {
    /// The person deleted their own account (they left their organizations).
    Themselves,
    /// An operator deleted it (CLI or operator API).
    Operator,
}

/// Deletes `user` and everything personal: memberships, sessions, refresh families, codes,
/// consents, login history, known browsers, reset and verification tokens go with the row (foreign
/// keys `on delete cascade`); the sign-in counters of the account are dropped. Refused while the
/// person is the last owner of an organization: the organizations they own are locked first (in id
/// order, so that two deletions cannot deadlock), as membership changes lock theirs, so that a
/// concurrent demotion of the other owner cannot leave one without an owner (PostgreSQL; SQLite
/// serialises writes). The audit log keeps the user id: `member.removed` in each organization's log
/// (`account_deleted: true`) and `user.deleted` with the email, by `actor`. `Ok(Ok(false))`: the
/// user was already gone.
pub async fn delete_user(
    tx: &mut Tx,
    user: &User,
    actor: &Actor,
    by: DeletedBy,
    now: i64,
) -> Result<std::result::Result<bool, DeleteRefused>> {
    let memberships = orgs::store::memberships_of_user(&mut **tx, &user.id).await?;
    let mut owned: Vec<&str> = memberships
        .iter()
        .filter(|(_, role)| *role == Role::Owner)
        .map(|(org, _)| org.id.as_str())
        .collect();
    owned.sort_unstable();
    for org_id in owned {
        orgs::store::lock_org(&mut **tx, org_id, now).await?;
    }
    let sole = orgs::store::solely_owned_by(&mut **tx, &user.id).await?;
    if !sole.is_empty() {
        return Ok(Err(DeleteRefused::LastOwner(sole)));
    }
    crate::login::throttle::clear_account(&mut **tx, &user.id).await?;
    backchannel::user_signed_out(tx, &user.id, now).await;
    if !crate::accounts::store::delete(&mut **tx, &user.id).await? {
        return Ok(Ok(false));
    }
    let left = by == DeletedBy::Themselves;
    for (org, role) in &memberships {
        audit::record(
            &mut **tx,
            &AuditEvent {
                org_id: Some(&org.id),
                actor,
                action: action::MEMBER_REMOVED,
                target_type: Some("user"),
                target_id: Some(&user.id),
                details: json!({"role": role, "left": left, "account_deleted": true}),
            },
            now,
        )
        .await?;
    }
    audit::record(
        &mut **tx,
        &AuditEvent {
            org_id: None,
            actor,
            action: action::USER_DELETED,
            target_type: Some("user"),
            target_id: Some(&user.id),
            details: json!({ "email": user.email }),
        },
        now,
    )
    .await?;
    Ok(Ok(true))
}
