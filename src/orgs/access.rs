//! The one access check of the management API: may this caller do this in that organization?
//!
//! A person acts through their live role in the organization (read from the database on every call,
//! never from token claims); an operator (`client_credentials` token with the `admin` scope) acts on
//! every organization. An organization the caller does not belong to answers 404, exactly like one
//! that does not exist, so its existence does not leak (docs/api.md).

use axum::http::StatusCode;

use super::Organization;
use super::roles::{Permission, Role};
use super::store;
use crate::db::Exec;
use crate::error::{AppError, Result};
use crate::web::bearer::{ApiCaller, CallerKind, SCOPE_ORG_READ, SCOPE_ORG_WRITE};

/// What the caller may act as in one organization.
#[derive(Debug, Clone)]
pub struct OrgAccess {
    /// The organization, resolved from the id or slug in the path.
    pub org: Organization,
    /// The caller's role; `None` for an operator.
    pub role: Option<Role>,
}

impl OrgAccess {
    /// True when the caller is an operator (no membership needed).
    pub fn is_operator(&self) -> bool {
        self.role.is_none()
    }

    /// The strongest role the caller may hand out or act on: their own, or any for an operator.
    pub fn acts_as(&self) -> Role {
        self.role.unwrap_or(Role::Owner)
    }
}

/// The scope a token needs for `permission`: reads need `org:read`, writes `org:write`.
pub fn scope_for(permission: Permission) -> &'static str {
    if permission.is_write() {
        SCOPE_ORG_WRITE
    } else {
        SCOPE_ORG_READ
    }
}

/// 404 for an organization that does not exist or that the caller is not in.
pub fn org_not_found() -> AppError {
    AppError::problem(
        StatusCode::NOT_FOUND,
        "organization-not-found",
        "no such organization",
    )
}

/// Resolves `org_ref` (id or slug) and checks that `caller` holds `permission` there, and the scope
/// it needs. 404 when the caller is not a member (or the organization does not exist), 403 when the
/// member's role or the token's scopes are not enough. An operator needs no `org:*` scope: `admin`
/// covers them.
pub async fn authorize<'c>(
    ex: impl Exec<'c>,
    caller: &ApiCaller,
    org_ref: &str,
    permission: Permission,
) -> Result<OrgAccess> {
    let (org, role) = match &caller.kind {
        CallerKind::Client(_) if caller.is_operator() => {
            let org = store::find_org(ex, org_ref)
                .await?
                .ok_or_else(org_not_found)?;
            (org, None)
        }
        // A client without `admin` belongs to no organization.
        CallerKind::Client(_) => return Err(org_not_found()),
        CallerKind::User(user) => {
            let (org, role) = store::find_org_with_role(ex, org_ref, &user.id)
                .await?
                .ok_or_else(org_not_found)?;
            (org, Some(role))
        }
    };
    // The operator's `admin` scope covers reads and writes of every organization.
    if role.is_some() {
        caller.require_scope(scope_for(permission))?;
    }
    if let Some(role) = role
        && !role.can(permission)
    {
        return Err(AppError::problem(
            StatusCode::FORBIDDEN,
            "role-insufficient",
            format!("the {role} role may not do this"),
        ));
    }
    Ok(OrgAccess { org, role })
}
