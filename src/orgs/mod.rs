//! Organizations: tenants that people belong to with one role each.

pub mod access;
pub mod audit;
pub mod roles;
pub mod slug;
pub mod store;

use serde::Serialize;

use crate::accounts;
use crate::clock::Clock;
use crate::crypto::tokens::new_id;
use crate::db::Database;
use crate::error::{AppError, Result};
use roles::Role;

/// Routes of the management API (`/api/v1/...`); see `CONTRACT.md`.
pub fn api_router() -> axum::Router<crate::app::AppState> {
    axum::Router::new()
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

/// Checks an organization name: 1–100 characters, no control characters.
pub fn validate_org_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().count() > MAX_ORG_NAME_LEN
        || name.chars().any(char::is_control)
    {
        return Err(AppError::invalid(format!(
            "organization name must be 1 to {MAX_ORG_NAME_LEN} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

/// Creates an organization with `owner_email` as its owner, in one transaction. The slug defaults to one
/// derived from the name. Refuses an unknown owner (404) and a taken slug (409); writes nothing then.
pub async fn create_with_owner(
    db: &Database,
    clock: &Clock,
    name: &str,
    slug: Option<&str>,
    owner_email: &str,
) -> Result<Organization> {
    let name = validate_org_name(name)?;
    let slug = match slug {
        Some(s) => s.trim().to_owned(),
        None => slug::from_name(&name),
    };
    slug::validate(&slug)?;
    let mut tx = db.begin().await?;
    let owner = accounts::store::find_by_email(&mut *tx, owner_email)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no user with email {}", owner_email.trim())))?;
    let now = clock.now();
    let org = Organization {
        id: new_id(),
        slug,
        name,
        created_at: now,
    };
    if !store::insert_org(&mut *tx, &org).await? {
        return Err(AppError::conflict(format!(
            "slug {:?} is already taken",
            org.slug
        )));
    }
    let membership = Membership {
        org_id: org.id.clone(),
        user_id: owner.id,
        role: Role::Owner,
        joined_at: now,
    };
    store::insert_membership(&mut *tx, &membership).await?;
    tx.commit().await?;
    Ok(org)
}

/// Adds the user with `email` to the organization `org_ref` (id or slug) with `role`. Refuses an
/// unknown organization or user (404) and an existing membership (409).
pub async fn add_member(
    db: &Database,
    clock: &Clock,
    org_ref: &str,
    email: &str,
    role: Role,
) -> Result<Membership> {
    let mut tx = db.begin().await?;
    let org = store::find_org(&mut *tx, org_ref.trim())
        .await?
        .ok_or_else(|| AppError::not_found(format!("no organization {:?}", org_ref.trim())))?;
    let user = accounts::store::find_by_email(&mut *tx, email)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no user with email {}", email.trim())))?;
    let membership = Membership {
        org_id: org.id,
        user_id: user.id,
        role,
        joined_at: clock.now(),
    };
    if !store::insert_membership(&mut *tx, &membership).await? {
        return Err(AppError::conflict(format!(
            "{} is already a member of {}",
            user.email, org.slug
        )));
    }
    tx.commit().await?;
    Ok(membership)
}
