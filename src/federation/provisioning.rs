//! Just-in-time provisioning: the first sign-in through an organization's connection creates the
//! account (its address verified only when the upstream says so and the organization verified the
//! domain) and the membership; the connection's role mapping sets the member's role at every sign-in.
//!
//! [`resolve`] decides which account a verified upstream identity signs in to: the one linked to
//! (connection, `iss`, `sub`); never one found by email alone (an upstream that lets anyone claim any
//! address must not take over accounts here, OpenID Connect Core §5.7: only `iss` + `sub` identify
//! the person), so an existing account with the same address is linked only after its owner signs
//! in here ([`super::identities`]).

use serde_json::json;

use super::connections::Connection;
use super::connections::store as connections_store;
use super::domains::store as domains_store;
use super::identities::store::{self as links, NewLink};
use crate::accounts::{self, User, store as users};
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::config::SignupPolicy;
use crate::db::Tx;
use crate::error::{AppError, Result};
use crate::orgs::roles::Role;
use crate::orgs::{Membership, store as orgs_store};
use crate::web::request_meta::RequestMeta;

/// An upstream identity whose ID token was fully validated ([`super::flow`]).
#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    /// The connection it came through.
    pub connection: Connection,
    /// The token's `iss` (the connection's issuer).
    pub issuer: String,
    /// The token's `sub`.
    pub subject: String,
    /// The upstream address, if it gave one.
    pub email: Option<String>,
    /// Whether the upstream says the address is verified (`email_verified`).
    pub email_verified: bool,
    /// The upstream's display name, if any.
    pub name: Option<String>,
    /// Every claim of the ID token, for the role mapping.
    pub claims: serde_json::Value,
}

/// Which account an upstream identity signs in to.
#[derive(Debug)]
pub enum Resolution {
    /// This account (linked before, or provisioned now inside the transaction).
    Account(User),
    /// An account with the upstream's address exists but is not linked: its owner signs in here
    /// once to link it.
    LinkAfterSignIn {
        /// The existing account.
        user_id: String,
        /// Its address, for the notice on the login page.
        email: String,
    },
    /// Refused: the message to show, the status, and the audit reason.
    Refused {
        /// 403 or 400.
        status: axum::http::StatusCode,
        /// Shown to the person.
        message: String,
        /// `federation.failed` `reason`.
        reason: &'static str,
    },
}

fn refused(status: axum::http::StatusCode, message: String, reason: &'static str) -> Resolution {
    Resolution::Refused {
        status,
        message,
        reason,
    }
}

/// The domain of an address (lower case), if it has one.
pub fn email_domain(email: &str) -> Option<String> {
    email
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// Decides the account of `identity` inside `tx` (see the module doc): the link's account (its
/// `last_used_at` and address updated); a refusal when the address belongs to a domain another
/// organization verified; a pending link when an account has the address; else a new account
/// (just-in-time provisioning, audited) with its link.
pub async fn resolve(
    state: &AppState,
    tx: &mut Tx,
    identity: &VerifiedIdentity,
    meta: &RequestMeta,
    now: i64,
) -> Result<Resolution> {
    use axum::http::StatusCode;
    let conn = &identity.connection;
    let email = identity.email.as_deref();
    if let Some((link_id, user_id)) =
        links::find_link(&mut **tx, &conn.id, &identity.issuer, &identity.subject).await?
    {
        let user = users::find_by_id(&mut **tx, &user_id).await?;
        return Ok(match user {
            Some(user) if !user.disabled => {
                links::touch(&mut **tx, &link_id, email, now).await?;
                Resolution::Account(user)
            }
            _ => refused(
                StatusCode::FORBIDDEN,
                "This account is disabled.".to_owned(),
                "account-disabled",
            ),
        });
    }
    let Some(email) = email else {
        return Ok(refused(
            StatusCode::FORBIDDEN,
            format!(
                "{} did not share your email address, which an account here needs. Ask your \
                 administrator to allow the email scope.",
                conn.name
            ),
            "no-email",
        ));
    };
    let Ok(email) = accounts::validate_email(email) else {
        return Ok(refused(
            StatusCode::FORBIDDEN,
            format!(
                "{} gave an email address that is not usable here.",
                conn.name
            ),
            "invalid-email",
        ));
    };
    let domain = email_domain(&email).unwrap_or_default();
    let verified_by = domains_store::verified_owner(&mut **tx, &domain).await?;
    if let Some(owner) = &verified_by {
        let belongs_elsewhere = match &conn.org_id {
            Some(org_id) => owner != org_id,
            // An instance-wide provider does not sign in the people of an organization that has its
            // own: they go through it (and its policy).
            None => !connections_store::list_for_org(&mut **tx, owner)
                .await?
                .is_empty(),
        };
        if belongs_elsewhere {
            return Ok(refused(
                StatusCode::FORBIDDEN,
                format!(
                    "The address {email} belongs to another organization. Sign in through its \
                     own provider."
                ),
                "domain-of-another-organization",
            ));
        }
    }
    if let Some(existing) = users::find_by_email(&mut **tx, &email).await? {
        if existing.disabled {
            return Ok(refused(
                StatusCode::FORBIDDEN,
                "This account is disabled.".to_owned(),
                "account-disabled",
            ));
        }
        return Ok(Resolution::LinkAfterSignIn {
            user_id: existing.id,
            email: existing.email,
        });
    }
    if conn.org_id.is_none() && state.config.signup == SignupPolicy::InviteOnly {
        return Ok(refused(
            StatusCode::FORBIDDEN,
            "New accounts are created by invitation only on this server.".to_owned(),
            "signup-invite-only",
        ));
    }
    // Verified here only when the upstream says so, and for an organization's provider only for a
    // domain that organization proved it owns (anyone can run a provider asserting any address).
    let email_verified = identity.email_verified
        && match &conn.org_id {
            Some(org_id) => verified_by.as_deref() == Some(org_id.as_str()),
            None => true,
        };
    let name: String = identity
        .name
        .as_deref()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(accounts::MAX_NAME_LEN)
        .collect();
    let user = match users::insert(
        &mut **tx,
        &users::NewUserRow {
            email: &email,
            name: name.trim(),
            password_hash: None,
            email_verified,
        },
        now,
    )
    .await
    {
        Ok(user) => user,
        Err(users::InsertError::EmailTaken) => {
            return Err(AppError::Conflict(
                "An account with this address was just created. Try again.".to_owned(),
            ));
        }
        Err(users::InsertError::Db(e)) => return Err(e.into()),
    };
    let actor = Actor::user(user.id.clone(), meta.clone());
    audit::record(
        &mut **tx,
        &AuditEvent {
            org_id: conn.org_id.as_deref(),
            actor: &actor,
            action: action::USER_PROVISIONED,
            target_type: Some("user"),
            target_id: Some(&user.id),
            details: json!({ "connection": conn.id, "email_verified": email_verified }),
        },
        now,
    )
    .await?;
    link(tx, identity, &user.id, meta, now).await?;
    Ok(Resolution::Account(user))
}

/// Links `identity` to `user_id` in `tx` and audits `federation.identity_linked`. A link made
/// meanwhile by a concurrent sign-in is a conflict (409), not a second link.
pub async fn link(
    tx: &mut Tx,
    identity: &VerifiedIdentity,
    user_id: &str,
    meta: &RequestMeta,
    now: i64,
) -> Result<()> {
    let conn = &identity.connection;
    let inserted = links::insert(
        &mut **tx,
        &NewLink {
            user_id,
            connection_id: &conn.id,
            issuer: &identity.issuer,
            subject: &identity.subject,
            email: identity.email.as_deref(),
        },
        now,
    )
    .await?;
    if inserted.is_none() {
        return Err(AppError::Conflict(format!(
            "This {} identity is already linked to an account.",
            conn.name
        )));
    }
    audit::record(
        &mut **tx,
        &AuditEvent {
            org_id: conn.org_id.as_deref(),
            actor: &Actor::user(user_id.to_owned(), meta.clone()),
            action: action::IDENTITY_LINKED,
            target_type: Some("user"),
            target_id: Some(user_id),
            details: json!({
                "connection": conn.id,
                "issuer": identity.issuer,
                "subject": identity.subject,
            }),
        },
        now,
    )
    .await?;
    Ok(())
}

/// The role a mapping gives: never `owner` (ownership is only granted here), which reads as no
/// mapping.
fn mapped_role(conn: &Connection, claims: &serde_json::Value) -> Option<Role> {
    conn.role_mapping
        .as_ref()
        .map(|m| m.role_for(claims))
        .filter(|r| *r != Role::Owner)
}

/// For an organization's connection, at every sign-in: the membership of `user_id` ensured, its
/// role set by the role mapping (an owner is left alone; without a mapping a new member is
/// `member` and an existing one keeps their role). A change is audited `federation.role_mapped`.
pub async fn apply_membership(
    tx: &mut Tx,
    conn: &Connection,
    user_id: &str,
    claims: &serde_json::Value,
    meta: &RequestMeta,
    now: i64,
) -> Result<()> {
    let Some(org_id) = conn.org_id.as_deref() else {
        return Ok(());
    };
    let current = orgs_store::find_role(&mut **tx, org_id, user_id).await?;
    let mapped = mapped_role(conn, claims);
    let new = match (current, mapped) {
        (None, mapped) => {
            let role = mapped.unwrap_or(Role::Member);
            orgs_store::insert_membership(
                &mut **tx,
                &Membership {
                    org_id: org_id.to_owned(),
                    user_id: user_id.to_owned(),
                    role,
                    joined_at: now,
                },
            )
            .await?;
            role
        }
        (Some(Role::Owner), _) | (Some(_), None) => return Ok(()),
        (Some(old), Some(role)) if old == role => return Ok(()),
        (Some(_), Some(role)) => {
            orgs_store::set_role(&mut **tx, org_id, user_id, role).await?;
            role
        }
    };
    audit::record(
        &mut **tx,
        &AuditEvent {
            org_id: Some(org_id),
            actor: &Actor::user(user_id.to_owned(), meta.clone()),
            action: action::ROLE_MAPPED,
            target_type: Some("user"),
            target_id: Some(user_id),
            details: json!({
                "connection": conn.id,
                "old": current.map(|r| r.as_str()),
                "new": new.as_str(),
            }),
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
    fn domain_of_an_address() {
        assert_eq!(
            email_domain("Ann@Acme.Example").as_deref(),
            Some("acme.example")
        );
        assert_eq!(email_domain("a@b@c.example").as_deref(), Some("c.example"));
        assert_eq!(email_domain("nobody"), None);
        assert_eq!(email_domain("x@"), None);
    }
}
