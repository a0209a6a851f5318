//! Organizations: `GET/POST /api/v1/orgs` and `GET/PATCH/DELETE /api/v1/orgs/{org}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::error::{AppError, Result};
use crate::orgs::access::authorize;
use crate::orgs::roles::{Permission, Role};
use crate::orgs::{self as org_mod, Organization, slug, store};
use crate::web::api::{ApiJson, ApiQuery, Listing, Page};
use crate::web::bearer::{ApiCaller, SCOPE_ORG_READ, SCOPE_ORG_WRITE};
use crate::web::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, UnsupportedMediaType,
};
use crate::web::request_meta::RequestMeta;

/// An organization as the API shows it, with the caller's role (null for an operator),
/// `require_mfa` (members sign in to it with a second factor) and `sso_required` (its
/// verified-domain members sign in through its provider): every member may know the rule they
/// sign in under.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Organization)]
pub struct OrgView {
    /// Random id (UUIDv7), the `org_id` claim.
    id: String,
    /// Unique short name, the `org_slug` claim.
    slug: String,
    /// Display name.
    name: String,
    /// Unix seconds.
    created_at: i64,
    /// Members must sign in to it with a second factor.
    require_mfa: bool,
    /// Members whose address is in one of its verified domains sign in only through its
    /// connection.
    sso_required: bool,
    /// The caller's role; null for an operator.
    role: Option<Role>,
}

impl OrgView {
    fn new(org: &Organization, role: Option<Role>) -> OrgView {
        OrgView {
            id: org.id.clone(),
            slug: org.slug.clone(),
            name: org.name.clone(),
            created_at: org.created_at,
            require_mfa: org.require_mfa,
            sso_required: org.sso_required,
            role,
        }
    }
}

/// `limit` and `cursor` of a list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// Where the page starts: the `cursor` of the `Link: <…>; rel="next"` header of the previous
    /// page (opaque).
    cursor: Option<String>,
}

impl ListQuery {
    /// The page these parameters ask for.
    pub fn page(&self) -> Result<Page> {
        Page::new(self.limit, self.cursor.as_deref())
    }
}

/// `GET /api/v1/orgs`: the caller's organizations (an operator: every organization), oldest first,
/// paginated (`limit`, `cursor`). Needs `org:read`.
#[utoipa::path(
    operation_id = "orgs_list",
    get,
    path = crate::routes::API_ORGS,
    tag = "orgs",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of organizations", body = [OrgView],
         headers(("Link" = String, description = "`<…>; rel=\"next\"` when another page follows (RFC 8288)"))),
        BadRequest, Unauthorized, Forbidden,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Listing<OrgView>> {
    let page = query.page()?;
    let key = |o: &Organization| (o.created_at, o.id.clone());
    if caller.is_operator() {
        let rows = store::list_all_orgs(&state.db.pool, page.after(), page.fetch()).await?;
        return Ok(page.finish(rows, key, |o| OrgView::new(&o, None)));
    }
    let user = caller.require_user()?;
    caller.require_scope(SCOPE_ORG_READ)?;
    let rows =
        store::list_orgs_of_user(&state.db.pool, &user.id, page.after(), page.fetch()).await?;
    Ok(page.finish(rows, |(o, _)| key(o), |(o, r)| OrgView::new(&o, Some(r))))
}

/// Body of `POST /api/v1/orgs`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// Display name, 1 to 100 characters.
    name: String,
    /// Unique short name; derived from the name when absent.
    slug: Option<String>,
    /// Members must sign in with a second factor (default false).
    require_mfa: Option<bool>,
}

/// `POST /api/v1/orgs` `{name, slug?, require_mfa?}`: creates an organization with the calling
/// user as its owner (who may set `require_mfa` at once); 201 with `Location`. The slug defaults
/// to one derived from the name. Needs a user token with `org:write`; 409 `slug-taken`.
#[utoipa::path(
    operation_id = "orgs_create",
    post,
    path = crate::routes::API_ORGS,
    tag = "orgs",
    request_body = CreateOrg,
    responses(
        (status = 201, description = "Created; the caller is its owner", body = OrgView,
         headers(("Location" = String, description = "The new organization's URL"))),
        BadRequest, Unauthorized, Forbidden, Conflict, PayloadTooLarge, UnsupportedMediaType,
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CreateOrg>,
) -> Result<Response> {
    let user_id = caller.require_user()?.id.clone();
    caller.require_scope(SCOPE_ORG_WRITE)?;
    let name = org_mod::validate_org_name(&body.name)?;
    let slug = org_mod::choose_slug(&name, body.slug.as_deref())?;
    let actor = Actor::api(&caller, meta);
    let mut tx = state.db.begin().await?;
    let org = org_mod::insert_with_owner(
        &mut tx,
        name,
        slug,
        body.require_mfa.unwrap_or(false),
        &user_id,
        &actor,
        state.clock.now(),
    )
    .await?;
    tx.commit().await?;
    let mut response = (
        StatusCode::CREATED,
        Json(OrgView::new(&org, Some(Role::Owner))),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("{}/{}", crate::routes::API_ORGS, org.id))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /api/v1/orgs/{org}`: one organization (viewer and up).
#[utoipa::path(
    operation_id = "orgs_read",
    get,
    path = crate::routes::API_ORG,
    tag = "orgs",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses(
        (status = 200, description = "The organization", body = OrgView),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn read(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(org_ref): Path<String>,
) -> Result<Json<OrgView>> {
    let access = authorize(&state.db.pool, &caller, &org_ref, Permission::ReadOrg).await?;
    Ok(Json(OrgView::new(&access.org, access.role)))
}

/// Body of `PATCH /api/v1/orgs/{org}`: at least one of `name`, `slug`, `require_mfa`,
/// `sso_required`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    /// New display name (admin and up).
    name: Option<String>,
    /// New slug (admin and up).
    slug: Option<String>,
    /// Members must sign in with a second factor (owner only).
    require_mfa: Option<bool>,
    /// Verified-domain members sign in only through the organization's connection (owner only).
    sso_required: Option<bool>,
}

/// `PATCH /api/v1/orgs/{org}` `{name?, slug?, require_mfa?}`: renames (admin and up), and sets
/// whether members must sign in to the organization with a second factor (owner only: 403
/// `role-insufficient` for an admin, even with a name). Tokens already issued keep the old
/// `org_slug` until they are refreshed; `require_mfa` holds at once: the next authorization for the
/// organization asks for a second factor and the next refresh of a family that never used one
/// fails (see [`crate::oauth::grants::refresh_token`]). 409 `slug-taken`. The change and its audit
/// events (`organization.renamed`, `organization.mfa_policy_changed`,
/// `organization.sso_policy_changed`, each only when something changed) are one transaction.
///
/// `sso_required` (owner only, like `require_mfa`) sends the members whose address is in one of the
/// organization's verified domains through its connection ([`crate::federation::policy`]); turning
/// it on needs a connection of the organization (409 `connection-required`), or those members
/// could not sign in to it at all.
#[utoipa::path(
    operation_id = "orgs_update",
    patch,
    path = crate::routes::API_ORG,
    tag = "orgs",
    params(("org" = String, Path, description = "The organization's id or slug")),
    request_body = UpdateOrg,
    responses(
        (status = 200, description = "The organization as it is now", body = OrgView),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
        UnsupportedMediaType,
    ),
    security(("bearer" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path(org_ref): Path<String>,
    ApiJson(body): ApiJson<UpdateOrg>,
) -> Result<Json<OrgView>> {
    // The policy is the owners' (the permission that also guards the owner role); renaming is
    // the admins'.
    let permission = if body.require_mfa.is_some() || body.sso_required.is_some() {
        Permission::ManageOwners
    } else {
        Permission::UpdateOrg
    };
    let mut tx = state.db.begin().await?;
    let access = authorize(&mut *tx, &caller, &org_ref, permission).await?;
    if body.name.is_none()
        && body.slug.is_none()
        && body.require_mfa.is_none()
        && body.sso_required.is_none()
    {
        return Err(AppError::problem(
            StatusCode::BAD_REQUEST,
            "invalid-body",
            "give at least one of name, slug, require_mfa and sso_required",
        ));
    }
    let name = body
        .name
        .as_deref()
        .map(org_mod::validate_org_name)
        .transpose()?;
    let new_slug = body.slug.as_deref().map(str::trim).map(str::to_owned);
    if let Some(s) = &new_slug {
        slug::validate(s)?;
    }
    let old = access.org.clone();
    let org = Organization {
        name: name.unwrap_or_else(|| old.name.clone()),
        slug: new_slug.unwrap_or_else(|| old.slug.clone()),
        require_mfa: body.require_mfa.unwrap_or(old.require_mfa),
        sso_required: body.sso_required.unwrap_or(old.sso_required),
        ..old.clone()
    };
    let renamed = org.name != old.name || org.slug != old.slug;
    let policy_changed = org.require_mfa != old.require_mfa;
    let sso_changed = org.sso_required != old.sso_required;
    if !renamed && !policy_changed && !sso_changed {
        return Ok(Json(OrgView::new(&old, access.role)));
    }
    // Checked inside the transaction that sets the flag. (A connection deleted later leaves the
    // flag on but binding nobody: the policy needs a connection to send people to.)
    if sso_changed
        && org.sso_required
        && crate::federation::connections::store::list_for_org(&mut *tx, &org.id)
            .await?
            .is_empty()
    {
        return Err(AppError::problem(
            StatusCode::CONFLICT,
            "connection-required",
            "add a connection to the organization before requiring sign-in through it: \
             otherwise its verified-domain members could not sign in",
        ));
    }
    let now = state.clock.now();
    if !store::update_org(&mut *tx, &org, now).await? {
        return Err(org_mod::slug_taken(&org.slug));
    }
    let actor = Actor::api(&caller, meta);
    if renamed {
        let event = AuditEvent {
            org_id: Some(&org.id),
            actor: &actor,
            action: action::ORG_RENAMED,
            target_type: Some("organization"),
            target_id: Some(&org.id),
            details: json!({
                "old": {"name": old.name, "slug": old.slug},
                "new": {"name": org.name, "slug": org.slug},
            }),
        };
        audit::record(&mut *tx, &event, now).await?;
    }
    if policy_changed {
        let event = AuditEvent {
            org_id: Some(&org.id),
            actor: &actor,
            action: action::ORG_MFA_POLICY_CHANGED,
            target_type: Some("organization"),
            target_id: Some(&org.id),
            details: json!({"require_mfa": org.require_mfa}),
        };
        audit::record(&mut *tx, &event, now).await?;
    }
    if sso_changed {
        let event = AuditEvent {
            org_id: Some(&org.id),
            actor: &actor,
            action: action::ORG_SSO_POLICY_CHANGED,
            target_type: Some("organization"),
            target_id: Some(&org.id),
            details: json!({"sso_required": org.sso_required}),
        };
        audit::record(&mut *tx, &event, now).await?;
    }
    tx.commit().await?;
    Ok(Json(OrgView::new(&org, access.role)))
}

/// `DELETE /api/v1/orgs/{org}`: deletes the organization (owner only); memberships, invitations and
/// the refresh-token families issued for it go with it. 204. The audit event keeps the org id, so
/// operators still see it.
#[utoipa::path(
    operation_id = "orgs_delete",
    delete,
    path = crate::routes::API_ORG,
    tag = "orgs",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses(
        (status = 204, description = "Deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path(org_ref): Path<String>,
) -> Result<StatusCode> {
    let mut tx = state.db.begin().await?;
    let access = authorize(&mut *tx, &caller, &org_ref, Permission::DeleteOrg).await?;
    let org = &access.org;
    let now = state.clock.now();
    let event = AuditEvent {
        org_id: Some(&org.id),
        actor: &Actor::api(&caller, meta),
        action: action::ORG_DELETED,
        target_type: Some("organization"),
        target_id: Some(&org.id),
        details: json!({"name": org.name, "slug": org.slug}),
    };
    audit::record(&mut *tx, &event, now).await?;
    store::delete_org(&mut *tx, &org.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
