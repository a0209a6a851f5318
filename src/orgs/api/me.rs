//! `GET /api/v1/me` (who the token speaks for, and where they belong) and `GET /api/v1/roles` (the
//! permission table, so clients need not hard-code it).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::Result;
use crate::orgs::roles::{Permission, Role};
use crate::orgs::store;
use crate::web::bearer::{ApiCaller, SCOPE_ACCOUNT_READ, SCOPE_ORG_READ};
use crate::web::openapi::{BadRequest, Forbidden, Unauthorized};

/// The calling user as `GET /api/v1/me` shows them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Profile {
    /// User id (UUIDv7), the `sub` of tokens.
    id: String,
    /// Email address.
    email: String,
    /// Display name, possibly empty.
    name: String,
    /// Whether the address has been proven.
    email_verified: bool,
    /// Unix seconds.
    created_at: i64,
}

/// One membership of the calling user.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyMembership {
    /// The organization's id.
    org_id: String,
    /// Its slug.
    org_slug: String,
    /// Its name.
    org_name: String,
    /// The user's role in it.
    role: Role,
}

/// The body of `GET /api/v1/me`: the user's fields at the top level and again under `user` (the
/// reference (docs/api.md) says only "user and memberships", and clients read it both ways).
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The user's fields, at the top level.
    #[serde(flatten)]
    profile: Profile,
    /// The same fields.
    user: Profile,
    /// Where the user belongs.
    memberships: Vec<MyMembership>,
}

/// `GET /api/v1/me`: the calling user and their memberships `[{org_id, org_slug, org_name, role}]`
/// (docs/api.md). Needs a user token with `org:read` or `account:read` (an
/// account page of a single-page app reads who is signed in without any organization scope).
#[utoipa::path(
    operation_id = "me",
    get,
    path = crate::routes::API_ME,
    tag = "account",
    responses(
        (status = 200, description = "The calling user and their memberships", body = Me),
        BadRequest, Unauthorized, Forbidden,
    ),
    security(("bearer" = [])),
)]
pub async fn me(State(state): State<AppState>, caller: ApiCaller) -> Result<Json<Me>> {
    let user = caller.require_user()?;
    if !caller.token.has_scope(SCOPE_ACCOUNT_READ) {
        caller.require_scope(SCOPE_ORG_READ)?;
    }
    let memberships = store::memberships_of_user(&state.db.pool, &user.id)
        .await?
        .into_iter()
        .map(|(org, role)| MyMembership {
            org_id: org.id,
            org_slug: org.slug,
            org_name: org.name,
            role,
        })
        .collect();
    let profile = Profile {
        id: user.id.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        email_verified: user.email_verified,
        created_at: user.created_at,
    };
    Ok(Json(Me {
        profile: profile.clone(),
        user: profile,
        memberships,
    }))
}

/// A role and the permissions it holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    /// The role.
    name: Role,
    /// Its strength: higher is stronger.
    rank: u8,
    /// What it may do.
    permissions: Vec<Permission>,
}

/// A permission, what it allows, and the token scope it needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionView {
    /// The permission.
    name: Permission,
    /// What it allows, for a person.
    description: &'static str,
    /// The scope a token needs to use it (`org:read` or `org:write`).
    scope: &'static str,
}

/// The body of `GET /api/v1/roles`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Roles {
    /// Every role, strongest first.
    roles: Vec<RoleView>,
    /// Every permission.
    permissions: Vec<PermissionView>,
}

/// `GET /api/v1/roles`: every role, strongest first, with the permissions it holds, read from the
/// one permission table ([`Role::can`]). Any authenticated caller may read it.
#[utoipa::path(
    operation_id = "roles",
    get,
    path = crate::routes::API_ROLES,
    tag = "orgs",
    responses(
        (status = 200, description = "The roles and permissions", body = Roles),
        BadRequest, Unauthorized,
    ),
    security(("bearer" = [])),
)]
pub async fn roles(_caller: ApiCaller) -> Json<Roles> {
    let roles = Role::ALL
        .into_iter()
        .map(|role| RoleView {
            name: role,
            rank: role.rank(),
            permissions: Permission::ALL
                .into_iter()
                .filter(|p| role.can(*p))
                .collect(),
        })
        .collect();
    let permissions = Permission::ALL
        .into_iter()
        .map(|p| PermissionView {
            name: p,
            description: p.description(),
            scope: crate::orgs::access::scope_for(p),
        })
        .collect();
    Json(Roles { roles, permissions })
}
