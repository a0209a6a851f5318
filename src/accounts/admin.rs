//! Operator controls over users: list and search, look one up with what it holds (memberships, live
//! sessions and refresh-token families, last sign-in), disable and enable, end every sign-in,
//! rename, delete. The one implementation behind `latchkey user …` (actor: the command line) and the
//! operator API `/api/v1/users` (actor: the operator's client, [`super::admin_api`]).
//!
//! Every change runs in one transaction with its audit event, and goes through
//! [`super::lifecycle`] for its effects, so that what a disabled or deleted account loses is the
//! same whoever acts (the account pages, the operator). All state is in the database: a running
//! server sees a change made by the command line at its next request.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;

use super::lifecycle::{self, DeleteRefused, DeletedBy, Ended};
use super::{User, store};
use crate::audit::{self, Actor, AuditEvent, action};
use crate::db::{Database, Tx};
use crate::error::{AppError, Result};
use crate::orgs::roles::Role;

/// Longest text [`search_pattern`] accepts (no address is longer).
pub const MAX_SEARCH_LEN: usize = super::MAX_EMAIL_LEN;

/// How the operator names a user: by id (the API's paths) or by address (the command line, in
/// any letter case).
#[derive(Debug, Clone, Copy)]
pub enum UserRef<'a> {
    /// The user id (the `sub` of tokens).
    Id(&'a str),
    /// The email address.
    Email(&'a str),
}

/// 404 `user-not-found`, naming the address when the operator gave one.
pub(crate) fn not_found(user: UserRef<'_>) -> AppError {
    let detail = match user {
        UserRef::Id(_) => "no such user".to_owned(),
        UserRef::Email(email) => format!("no user with email {}", email.trim()),
    };
    AppError::problem(StatusCode::NOT_FOUND, "user-not-found", detail)
}

/// The user `user` names, read inside `tx`.
pub(crate) async fn find_in(tx: &mut Tx, user: UserRef<'_>) -> Result<Option<User>> {
    Ok(match user {
        UserRef::Id(id) => store::find_by_id(&mut **tx, id).await?,
        UserRef::Email(email) if email.trim().len() <= super::MAX_EMAIL_LEN => {
            store::find_by_email(&mut **tx, email).await?
        }
        UserRef::Email(_) => None,
    })
}

/// The user `user` names; 404 `user-not-found` when there is none.
pub async fn resolve(db: &Database, user: UserRef<'_>) -> Result<User> {
    let found = match user {
        UserRef::Id(id) => store::find_by_id(&db.pool, id).await?,
        UserRef::Email(email) if email.trim().len() <= super::MAX_EMAIL_LEN => {
            store::find_by_email(&db.pool, email).await?
        }
        UserRef::Email(_) => None,
    };
    found.ok_or_else(|| not_found(user))
}

/// Checks a search text (1 to [`MAX_SEARCH_LEN`] characters once trimmed, no control characters)
/// and turns it into the pattern [`list`] takes: a case-insensitive substring match on the
/// address. The error is a sentence for a 400 or the command line.
pub fn search_pattern(raw: &str) -> std::result::Result<String, String> {
    let needle = raw.trim();
    if needle.is_empty() || needle.len() > MAX_SEARCH_LEN || needle.chars().any(char::is_control) {
        return Err(format!(
            "the email search must be 1 to {MAX_SEARCH_LEN} characters without control characters"
        ));
    }
    Ok(store::email_search_pattern(needle))
}

/// Users oldest first, those matching `pattern` (from [`search_pattern`]) only, after the keyset
/// position `after` (creation time, id); at most `limit`.
pub async fn list(
    db: &Database,
    pattern: Option<&str>,
    after: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<User>> {
    Ok(store::list_users(&db.pool, pattern, after, limit).await?)
}

/// One membership as the operator sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = UserMembership)]
pub struct MembershipView {
    /// Organization id.
    pub org_id: String,
    /// Organization slug.
    pub org_slug: String,
    /// Organization name.
    pub org_name: String,
    /// The user's role there.
    pub role: Role,
}

/// A user with what the account holds: `user show` and `GET /api/v1/users/{id}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserDetails {
    /// The account.
    #[serde(flatten)]
    pub user: User,
    /// Its organizations, by name.
    pub memberships: Vec<MembershipView>,
    /// Live signed-in browser sessions.
    pub sessions: i64,
    /// Refresh-token families that can still be refreshed.
    pub refresh_families: i64,
    /// Unix seconds of the last successful sign-in in the login history, if any.
    pub last_sign_in_at: Option<i64>,
    /// Its second factors (what `user mfa-reset` would remove).
    pub mfa: FactorsView,
}

/// The second factors of an account as the operator sees them.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct FactorsView {
    /// A confirmed authenticator app.
    pub totp: bool,
    /// Registered passkeys.
    pub passkeys: i64,
    /// Unused recovery codes.
    pub recovery_codes: i64,
}

/// What `user` holds at `now`.
pub async fn details(db: &Database, now: i64, user: User) -> Result<UserDetails> {
    let memberships = crate::orgs::store::memberships_of_user(&db.pool, &user.id)
        .await?
        .into_iter()
        .map(|(org, role)| MembershipView {
            org_id: org.id,
            org_slug: org.slug,
            org_name: org.name,
            role,
        })
        .collect();
    let sessions = store::count_live_sessions(&db.pool, &user.id, now).await?;
    let refresh_families = store::count_live_refresh_families(&db.pool, &user.id, now).await?;
    let last_sign_in_at = store::last_sign_in_at(&db.pool, &user.id).await?;
    let factors = crate::mfa::factors(&db.pool, &user.id).await?;
    Ok(UserDetails {
        user,
        memberships,
        sessions,
        refresh_families,
        last_sign_in_at,
        mfa: FactorsView {
            totp: factors.totp,
            passkeys: factors.passkeys,
            recovery_codes: factors.recovery_codes,
        },
    })
}

/// A change to an account (`PATCH /api/v1/users/{id}`, `user disable`, `user enable`).
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// Disable (`true`) or enable (`false`) the account.
    pub disabled: Option<bool>,
    /// A new display name (checked by [`super::validate_name`]).
    pub name: Option<String>,
}

/// The account after a change, and what disabling it ended (only when it was disabled).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = UpdatedUser)]
pub struct Updated {
    /// The account as it is now.
    #[serde(flatten)]
    pub user: User,
    /// Sessions and refresh-token families ended by disabling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
}

/// Applies `change` to `user` in one transaction, with an audit event per effective change. Disabling
/// ends every session and refresh-token family ([`lifecycle::set_disabled`]) and invalidates the
/// password-reset links still open, so that enabling the account later does not revive a link
/// that may have been asked for by whoever the account was disabled against. Disabling a disabled
/// account (or enabling an enabled one) changes nothing and records nothing, unless sign-ins were
/// left to end.
pub async fn update(
    db: &Database,
    now: i64,
    user: UserRef<'_>,
    change: UserChange,
    actor: &Actor,
) -> Result<Updated> {
    let name = change
        .name
        .as_deref()
        .map(super::validate_name)
        .transpose()?;
    let mut tx = db.begin().await?;
    let before = find_in(&mut tx, user)
        .await?
        .ok_or_else(|| not_found(user))?;
    let id = before.id.as_str();
    if let Some(name) = name.as_deref()
        && name != before.name
    {
        store::set_name(&mut *tx, id, name, now).await?;
        record(
            &mut tx,
            actor,
            action::USER_RENAMED,
            id,
            json!({"old_name": before.name, "new_name": name}),
            now,
        )
        .await?;
    }
    let mut ended = None;
    if let Some(disabled) = change.disabled {
        let Some((changed, ended_now)) =
            lifecycle::set_disabled(&mut tx, id, disabled, now).await?
        else {
            return Err(not_found(user));
        };
        if disabled {
            // Links already mailed would otherwise work again once the account is enabled.
            crate::recovery::store::invalidate_user_tokens(&mut *tx, id, now).await?;
            ended = Some(ended_now);
        }
        // A second disable still records what it ended, if anything was left.
        if changed || (disabled && ended_now != Ended::default()) {
            let (what, details) = if disabled {
                (action::USER_DISABLED, json!({"ended": ended_now}))
            } else {
                (action::USER_ENABLED, json!({}))
            };
            record(&mut tx, actor, what, id, details, now).await?;
        }
    }
    let after = store::find_by_id(&mut *tx, id)
        .await?
        .ok_or_else(|| not_found(user))?;
    tx.commit().await?;
    Ok(Updated { user: after, ended })
}

/// Ends every browser session and refresh-token family of `user` (`user sessions-end`, `POST
/// /api/v1/users/{id}/sessions/revoke`): the person must sign in again everywhere. Access tokens
/// already issued stay valid until they expire (minutes); disable the account to refuse them now.
pub async fn end_sessions(
    db: &Database,
    now: i64,
    user: UserRef<'_>,
    actor: &Actor,
) -> Result<(User, Ended)> {
    let mut tx = db.begin().await?;
    let found = find_in(&mut tx, user)
        .await?
        .ok_or_else(|| not_found(user))?;
    let ended = lifecycle::end_everything(&mut tx, &found.id, now, "sessions_ended").await?;
    record(
        &mut tx,
        actor,
        action::USER_SESSIONS_ENDED,
        &found.id,
        json!({"ended": ended}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((found, ended))
}

/// 409 `last-owner` for an account that is the only owner of organizations, naming them.
pub fn last_owner(user: &User, refused: &DeleteRefused) -> AppError {
    let DeleteRefused::LastOwner(orgs) = refused;
    let names: Vec<String> = orgs
        .iter()
        .map(|o| format!("{} ({})", o.name, o.slug))
        .collect();
    AppError::problem(
        StatusCode::CONFLICT,
        "last-owner",
        format!(
            "{} is the only owner of {}: make another member an owner, or delete the \
             organization, first",
            user.email,
            names.join(", ")
        ),
    )
}

/// Deletes `user` and everything personal ([`lifecycle::delete_user`]); 409 `last-owner` (see
/// [`last_owner`]) while the account is the only owner of an organization. The audit log keeps the
/// deletion (target: the former id; details: the address) and, in each organization the person was
/// in, the membership that went with it. Returns the account as it was.
pub async fn delete(db: &Database, now: i64, user: UserRef<'_>, actor: &Actor) -> Result<User> {
    let mut tx = db.begin().await?;
    let found = find_in(&mut tx, user)
        .await?
        .ok_or_else(|| not_found(user))?;
    match lifecycle::delete_user(&mut tx, &found, actor, DeletedBy::Operator, now).await? {
        Err(refused) => return Err(last_owner(&found, &refused)),
        Ok(false) => return Err(not_found(user)),
        Ok(true) => {}
    }
    tx.commit().await?;
    tracing::info!(user_id = %found.id, "user deleted by an operator");
    Ok(found)
}

/// One audit event about the user `user_id`, outside any organization.
async fn record(
    tx: &mut Tx,
    actor: &Actor,
    action: &'static str,
    user_id: &str,
    details: serde_json::Value,
    now: i64,
) -> Result<()> {
    audit::record(
        &mut **tx,
        &AuditEvent {
            org_id: None,
            actor,
            action,
            target_type: Some("user"),
            target_id: Some(user_id),
            details,
        },
        now,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_texts_are_checked_and_escaped() {
        assert_eq!(search_pattern(" Ada ").ok().as_deref(), Some("%ada%"));
        assert_eq!(
            search_pattern("a_b%c!").ok().as_deref(),
            Some("%a!_b!%c!!%")
        );
        assert!(search_pattern("").is_err());
        assert!(search_pattern("   ").is_err());
        assert!(search_pattern("a\u{0}b").is_err());
        assert!(search_pattern(&"a".repeat(MAX_SEARCH_LEN + 1)).is_err());
    }
}
