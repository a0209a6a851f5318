//! Organizations: tenants that people belong to with one role each.

pub mod access;
pub mod api;
pub mod picker;
pub mod roles;
pub mod slug;
pub mod stats;
pub mod store;

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;

use crate::accounts;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::clock::Clock;
use crate::crypto::tokens::new_id;
use crate::db::{Database, Exec};
use crate::error::{AppError, Result};
use roles::Role;

/// Routes of the management API (`/api/v1/...`); see docs/api.md.
pub fn api_router() -> utoipa_axum::router::OpenApiRouter<crate::app::AppState> {
    api::router()
}

/// Longest organization name.
pub const MAX_ORG_NAME_LEN: usize = 100;

/// An organization.
#[derive(Debug, Clone, Serialize)]
pub struct Organization {
    /// Random id (UUIDv7), the `org_id` claim.
    pub id: String,
    /// Unique short name, the `org_slug` claim.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Members must sign in to it with a second factor (`acr` `urn:latchkey:acr:mfa`).
    pub require_mfa: bool,
    /// Members whose address is in one of its verified domains sign in to it only through its
    /// connection ([`crate::federation::policy`]).
    pub sso_required: bool,
}

/// One person's role in one organization.
#[derive(Debug, Clone, Serialize)]
pub struct Membership {
    /// The organization.
    pub org_id: String,
    /// The member.
    pub user_id: String,
    /// The member's role.
    pub role: Role,
    /// Unix seconds.
    pub joined_at: i64,
}

/// Checks an organization name (400 `invalid-name` otherwise): 1–100 characters once trimmed, no
/// control characters.
pub fn validate_org_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().count() > MAX_ORG_NAME_LEN
        || name.chars().any(char::is_control)
    {
        return Err(AppError::problem(
            StatusCode::BAD_REQUEST,
            "invalid-name",
            format!(
                "organization name must be 1 to {MAX_ORG_NAME_LEN} characters without control characters"
            ),
        ));
    }
    Ok(name.to_owned())
}

/// 409 `slug-taken`: another organization has this slug.
pub fn slug_taken(slug: &str) -> AppError {
    AppError::problem(
        StatusCode::CONFLICT,
        "slug-taken",
        format!("slug {slug:?} is already taken"),
    )
}

/// The slug to use: the one given (trimmed), or one derived from the name; validated either way.
pub fn choose_slug(name: &str, slug: Option<&str>) -> Result<String> {
    let slug = match slug {
        Some(s) => s.trim().to_owned(),
        None => slug::from_name(name),
    };
    slug::validate(&slug)?;
    Ok(slug)
}

/// Inserts a validated organization with `owner_id` as its owner and records
/// `organization.created`, `organization.mfa_policy_changed` when it starts with `require_mfa`,
/// and `member.added`, inside the caller's
/// transaction. 409 `slug-taken`. The creator is the owner, so they may set the policy at once.
pub async fn insert_with_owner(
    tx: &mut crate::db::Tx,
    name: String,
    slug: String,
    require_mfa: bool,
    owner_id: &str,
    actor: &Actor,
    now: i64,
) -> Result<Organization> {
    let org = Organization {
        id: new_id(),
        slug,
        name,
        created_at: now,
        require_mfa,
        // Needs a connection first, which a new organization cannot have.
        sso_required: false,
    };
    if !store::insert_org(&mut **tx, &org).await? {
        return Err(slug_taken(&org.slug));
    }
    let membership = Membership {
        org_id: org.id.clone(),
        user_id: owner_id.to_owned(),
        role: Role::Owner,
        joined_at: now,
    };
    store::insert_membership(&mut **tx, &membership).await?;
    let created = AuditEvent {
        org_id: Some(&org.id),
        actor,
        action: action::ORG_CREATED,
        target_type: Some("organization"),
        target_id: Some(&org.id),
        details: json!({"name": org.name, "slug": org.slug}),
    };
    audit::record(&mut **tx, &created, now).await?;
    if org.require_mfa {
        // The policy's history starts with the organization.
        let policy = AuditEvent {
            org_id: Some(&org.id),
            actor,
            action: action::ORG_MFA_POLICY_CHANGED,
            target_type: Some("organization"),
            target_id: Some(&org.id),
            details: json!({"require_mfa": true}),
        };
        audit::record(&mut **tx, &policy, now).await?;
    }
    record_member_added(&mut **tx, &membership, actor, now).await?;
    Ok(org)
}

/// The last-owner rule (README: an organization always keeps an owner, so that someone can manage
/// it): a member holding `role` is the last owner when they are an owner and nobody else is. Every
/// path that demotes or removes a member asks this, with the organization locked inside `tx`
/// ([`store::lock_org`]) so that two concurrent changes cannot both pass it.
pub async fn is_last_owner(tx: &mut crate::db::Tx, org_id: &str, role: Role) -> Result<bool> {
    Ok(role == Role::Owner && store::count_owners(&mut **tx, org_id).await? <= 1)
}

/// A membership that was not removed: the member is the organization's last owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastOwner;

/// Removes the member `user_id` (holding `role`) from `org_id` and records `member.removed` (details:
/// the role, and whether the member left by themselves), unless the [`is_last_owner`] rule refuses.
/// Call with the organization locked inside `tx`. The members API (`DELETE
/// /api/v1/orgs/{org}/members/{user_id}`) and leaving from "your account" both go through here.
pub async fn remove_member(
    tx: &mut crate::db::Tx,
    org_id: &str,
    user_id: &str,
    role: Role,
    leaving: bool,
    actor: &Actor,
    now: i64,
) -> Result<std::result::Result<(), LastOwner>> {
    if is_last_owner(tx, org_id, role).await? {
        return Ok(Err(LastOwner));
    }
    store::delete_membership(&mut **tx, org_id, user_id).await?;
    let event = AuditEvent {
        org_id: Some(org_id),
        actor,
        action: action::MEMBER_REMOVED,
        target_type: Some("user"),
        target_id: Some(user_id),
        details: json!({"role": role, "left": leaving}),
    };
    audit::record(&mut **tx, &event, now).await?;
    Ok(Ok(()))
}

/// Records `member.added` for `m`.
pub async fn record_member_added<'c>(
    ex: impl Exec<'c>,
    m: &Membership,
    actor: &Actor,
    now: i64,
) -> Result<()> {
    let event = AuditEvent {
        org_id: Some(&m.org_id),
        actor,
        action: action::MEMBER_ADDED,
        target_type: Some("user"),
        target_id: Some(&m.user_id),
        details: json!({"role": m.role}),
    };
    audit::record(ex, &event, now).await?;
    Ok(())
}

/// Creates an organization with `owner_email` as its owner, in one transaction (the CLI's `org
/// create`, `--require-mfa` for `require_mfa`). The slug defaults to one derived from the name.
/// Refuses an unknown owner (404) and a taken slug (409); writes nothing then. Audited as done by
/// `actor`.
pub async fn create_with_owner(
    db: &Database,
    clock: &Clock,
    name: &str,
    slug: Option<&str>,
    require_mfa: bool,
    owner_email: &str,
    actor: &Actor,
) -> Result<Organization> {
    let name = validate_org_name(name)?;
    let slug = choose_slug(&name, slug)?;
    let mut tx = db.begin().await?;
    let owner = accounts::store::find_by_email(&mut *tx, owner_email)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no user with email {}", owner_email.trim())))?;
    let org = insert_with_owner(
        &mut tx,
        name,
        slug,
        require_mfa,
        &owner.id,
        actor,
        clock.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(org)
}

/// Adds the user with `email` to the organization `org_ref` (id or slug) with `role` (the CLI's `org
/// add-member`). Refuses an unknown organization or user (404) and an existing membership (409).
/// Audited as done by `actor`.
pub async fn add_member(
    db: &Database,
    clock: &Clock,
    org_ref: &str,
    email: &str,
    role: Role,
    actor: &Actor,
) -> Result<Membership> {
    // The same check as every other path that takes an address, so a non-ASCII one gets the clear
    // refusal rather than "no user".
    let email = accounts::validate_email(email)?;
    let mut tx = db.begin().await?;
    let org = store::find_org(&mut *tx, org_ref.trim())
        .await?
        .ok_or_else(|| AppError::not_found(format!("no organization {:?}", org_ref.trim())))?;
    let user = accounts::store::find_by_email(&mut *tx, &email)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no user with email {email}")))?;
    let now = clock.now();
    let membership = Membership {
        org_id: org.id,
        user_id: user.id,
        role,
        joined_at: now,
    };
    if !store::insert_membership(&mut *tx, &membership).await? {
        return Err(AppError::conflict(format!(
            "{} is already a member of {}",
            user.email, org.slug
        )));
    }
    record_member_added(&mut *tx, &membership, actor, now).await?;
    tx.commit().await?;
    Ok(membership)
}
