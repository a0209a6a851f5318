//! Members: `GET /api/v1/orgs/{org}/members` and `GET/PATCH/DELETE …/members/{user_id}`.
//!
//! Rules (docs/api.md): admins change roles and remove members up to their own role; only owners
//! grant or take `owner`; a member may always leave; the last owner can be neither demoted nor
//! removed (409 `last-owner`). Every change runs in one transaction that locks the organization and
//! then re-reads the caller's role, so two concurrent demotions cannot leave it without an owner.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::db::Tx;
use crate::error::{AppError, Result};
use crate::orgs::access::{OrgAccess, authorize};
use crate::orgs::roles::{Permission, Role};
use crate::orgs::store::{self, Member};
use crate::web::api::{ApiJson, ApiQuery, Listing, Page, invalid_query};
use crate::web::bearer::{ApiCaller, SCOPE_ORG_WRITE};
use crate::web::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, UnsupportedMediaType,
};
use crate::web::request_meta::RequestMeta;

/// 404 `member-not-found`.
fn member_not_found() -> AppError {
    AppError::problem(
        StatusCode::NOT_FOUND,
        "member-not-found",
        "no such member in this organization",
    )
}

/// 409 `last-owner`.
fn last_owner() -> AppError {
    AppError::problem(
        StatusCode::CONFLICT,
        "last-owner",
        "the last owner of an organization can be neither demoted nor removed; make someone else owner first",
    )
}

/// 403 `role-insufficient` for acting on a stronger role than one's own, or on owners.
fn too_strong(detail: &str) -> AppError {
    AppError::problem(
        StatusCode::FORBIDDEN,
        "role-insufficient",
        detail.to_owned(),
    )
}

/// Query of `GET /api/v1/orgs/{org}/members`: the page, and `mfa=none` for the members without a
/// second factor.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `cursor` of the previous page's `Link: <…>; rel="next"` (opaque).
    cursor: Option<String>,
    /// `none`: only the members without a second factor (admin and up).
    #[param(pattern = "^none$")]
    mfa: Option<String>,
}

/// The `mfa` filter's one value.
const MFA_NONE: &str = "none";

/// True when `access` may see members' factors: those who manage members (admins and up,
/// operators). Reading them is a read, so the token needs `org:read` only.
fn sees_factors(access: &OrgAccess) -> bool {
    access.acts_as().can(Permission::ManageMembers)
}

/// 403 `role-insufficient` for a member who may not see factors.
fn factors_hidden(access: &OrgAccess) -> AppError {
    let role = access.acts_as();
    too_strong(&format!(
        "the {role} role may not see members' second factors"
    ))
}

/// The member as `access` may see it: `mfa` only for admins and operators.
fn shown(access: &OrgAccess, member: Member) -> Member {
    if sees_factors(access) {
        member
    } else {
        member.without_factors()
    }
}

/// `GET /api/v1/orgs/{org}/members`: `[{user_id, email, name, role, joined_at, mfa?}]` in the
/// order they joined, paginated (viewer and up). `mfa` (has a second factor) is shown to admins
/// and operators only; `?mfa=none` lists only the members without one (admin and up: 403 for
/// others, so that an organization that turns `require_mfa` on can see who must enrol first).
#[utoipa::path(
    operation_id = "members_list",
    get,
    path = crate::routes::API_ORG_MEMBERS,
    tag = "members",
    params(("org" = String, Path, description = "The organization's id or slug"), MembersQuery),
    responses(
        (status = 200, description = "A page of members, in the order they joined", body = [Member], headers(("Link" = String, description = "`<…>; rel=\"next\"` when another page follows (RFC 8288)"))),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(org_ref): Path<String>,
    ApiQuery(query): ApiQuery<MembersQuery>,
) -> Result<Listing<Member>> {
    let without_factor = match query.mfa.as_deref() {
        None => false,
        Some(MFA_NONE) => true,
        Some(_) => {
            return Err(invalid_query(
                "mfa: the only filter is mfa=none (members without a second factor)",
            ));
        }
    };
    let access = authorize(&state.db.pool, &caller, &org_ref, Permission::ReadOrg).await?;
    if without_factor && !sees_factors(&access) {
        return Err(factors_hidden(&access));
    }
    let page = Page::new(query.limit, query.cursor.as_deref())?;
    let rows = store::list_members(
        &state.db.pool,
        &access.org.id,
        without_factor,
        page.after(),
        page.fetch(),
    )
    .await?;
    Ok(page.finish(
        rows,
        |m: &Member| (m.joined_at, m.user_id.clone()),
        |m| shown(&access, m),
    ))
}

/// `GET /api/v1/orgs/{org}/members/{user_id}`: one member (viewer and up; `mfa` as in [`list`]).
#[utoipa::path(
    operation_id = "members_read",
    get,
    path = crate::routes::API_ORG_MEMBER,
    tag = "members",
    params(("org" = String, Path, description = "The organization's id or slug"), ("user_id" = String, Path, description = "The member's user id")),
    responses(
        (status = 200, description = "The member", body = Member),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn read(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((org_ref, user_id)): Path<(String, String)>,
) -> Result<Json<Member>> {
    let access = authorize(&state.db.pool, &caller, &org_ref, Permission::ReadOrg).await?;
    store::find_member(&state.db.pool, &access.org.id, &user_id)
        .await?
        .map(|m| Json(shown(&access, m)))
        .ok_or_else(member_not_found)
}

/// Body of `PATCH …/members/{user_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    /// The new role (`owner`, `admin`, `member`, `viewer`).
    role: String,
}

/// Checks `permission` and takes the organization's lock inside `tx`, then checks again: a
/// concurrent change may have demoted or removed the caller while this request waited for the lock.
async fn authorize_locked(
    tx: &mut Tx,
    caller: &ApiCaller,
    org_ref: &str,
    permission: Permission,
    now: i64,
) -> Result<OrgAccess> {
    let access = authorize(&mut **tx, caller, org_ref, permission).await?;
    if !store::lock_org(&mut **tx, &access.org.id, now).await? {
        return Err(crate::orgs::access::org_not_found());
    }
    authorize(&mut **tx, caller, &access.org.id, permission).await
}

/// The member `user_id` of the organization, or 404 `member-not-found`.
async fn find(tx: &mut Tx, access: &OrgAccess, user_id: &str) -> Result<Member> {
    store::find_member(&mut **tx, &access.org.id, user_id)
        .await?
        .ok_or_else(member_not_found)
}

/// `PATCH /api/v1/orgs/{org}/members/{user_id}` `{role}`: changes a member's role (admin and up, on
/// roles up to their own; owner to grant or take `owner`). 409 `last-owner` for the last owner.
#[utoipa::path(
    operation_id = "members_update",
    patch,
    path = crate::routes::API_ORG_MEMBER,
    tag = "members",
    params(("org" = String, Path, description = "The organization's id or slug"), ("user_id" = String, Path, description = "The member's user id")),
    request_body = UpdateMember,
    responses(
        (status = 200, description = "The member with the new role", body = Member),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType,
    ),
    security(("bearer" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path((org_ref, user_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateMember>,
) -> Result<Json<Member>> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let access =
        authorize_locked(&mut tx, &caller, &org_ref, Permission::ManageMembers, now).await?;
    let role: Role = body
        .role
        .parse()
        .map_err(|e: String| AppError::problem(StatusCode::BAD_REQUEST, "invalid-role", e))?;
    let mut member = find(&mut tx, &access, &user_id).await?;
    let actor_role = access.acts_as();
    if (role == Role::Owner || member.role == Role::Owner)
        && !actor_role.can(Permission::ManageOwners)
    {
        return Err(too_strong("only an owner may grant or take the owner role"));
    }
    if !actor_role.at_least(member.role) || !actor_role.at_least(role) {
        return Err(too_strong("you may only manage roles up to your own"));
    }
    if member.role == role {
        return Ok(Json(shown(&access, member)));
    }
    if crate::orgs::is_last_owner(&mut tx, &access.org.id, member.role).await? {
        return Err(last_owner());
    }
    store::set_role(&mut *tx, &access.org.id, &user_id, role).await?;
    let event = AuditEvent {
        org_id: Some(&access.org.id),
        actor: &Actor::api(&caller, meta),
        action: action::MEMBER_ROLE_CHANGED,
        target_type: Some("user"),
        target_id: Some(&user_id),
        details: json!({"old_role": member.role, "new_role": role}),
    };
    audit::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    member.role = role;
    Ok(Json(shown(&access, member)))
}

/// `DELETE /api/v1/orgs/{org}/members/{user_id}`: removes a member (admin and up, on roles up to
/// their own; owners only by an owner), or lets a member leave. 204; 409 `last-owner` for the last
/// owner. The removed member's next refresh re-reads the membership and fails (docs/api.md).
#[utoipa::path(
    operation_id = "members_remove",
    delete,
    path = crate::routes::API_ORG_MEMBER,
    tag = "members",
    params(("org" = String, Path, description = "The organization's id or slug"), ("user_id" = String, Path, description = "The member's user id")),
    responses(
        (status = 204, description = "Removed"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
    ),
    security(("bearer" = [])),
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path((org_ref, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let leaving = caller.user_id() == Some(user_id.as_str());
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let access = if leaving {
        let access = authorize_locked(&mut tx, &caller, &org_ref, Permission::ReadOrg, now).await?;
        caller.require_scope(SCOPE_ORG_WRITE)?;
        access
    } else {
        authorize_locked(&mut tx, &caller, &org_ref, Permission::ManageMembers, now).await?
    };
    let member = find(&mut tx, &access, &user_id).await?;
    if !leaving {
        let actor_role = access.acts_as();
        if member.role == Role::Owner && !actor_role.can(Permission::ManageOwners) {
            return Err(too_strong("only an owner may remove an owner"));
        }
        if !actor_role.at_least(member.role) {
            return Err(too_strong(
                "you may only remove members up to your own role",
            ));
        }
    }
    let actor = Actor::api(&caller, meta);
    crate::orgs::remove_member(
        &mut tx,
        &access.org.id,
        &user_id,
        member.role,
        leaving,
        &actor,
        now,
    )
    .await?
    .map_err(|_| last_owner())?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
