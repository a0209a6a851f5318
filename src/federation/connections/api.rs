//! The management API of connections: an organization's (`/api/v1/orgs/{org}/connections`, admins
//! and owners) and the instance's (`/api/v1/connections`, operators). The work is
//! [`super::manage`]'s, shared with `latchkey connection …`.
//!
//! - `GET …/connections`: the connections, oldest first, as a JSON array (like every list of the
//!   API; a handful per organization, so one page);
//! - `POST …/connections` `{name, issuer, client_id, client_secret, scopes?, role_mapping?}`: 201
//!   with `Location`; the issuer is discovered first (400 `issuer-refused`, 422
//!   `issuer-unreachable`, 422 `issuer-invalid`);
//! - `GET/PATCH/DELETE …/connections/{id}`: 404 `connection-not-found` for a connection of another
//!   organization (or of the instance);
//!
//! The client secret is write-only: no answer carries it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::RoleMapping;
use super::manage::{self, ConnectionInput, ConnectionPatch, Owner, Services, connection_json};
use crate::accounts::admin_api::Operator;
use crate::app::AppState;
use crate::audit::Actor;
use crate::error::{AppError, Result};
use crate::orgs::access::{OrgAccess, authorize};
use crate::orgs::roles::{Permission, Role};
use crate::routes;
use crate::web::api::ApiJson;
use crate::web::bearer::ApiCaller;
use crate::web::openapi::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unprocessable,
    UnsupportedMediaType,
};
use crate::web::request_meta::RequestMeta;

/// The connection routes of the management API, each with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(org_list, org_create))
        .routes(routes!(org_read, org_update, org_delete))
        .routes(routes!(instance_list, instance_create))
        .routes(routes!(instance_read, instance_update, instance_delete))
}

/// A connection as the API answers it ([`connection_json`], which renders it; this type only
/// describes it in the OpenAPI document). The client secret is write-only and never appears.
#[derive(utoipa::ToSchema)]
#[schema(as = Connection)]
#[allow(dead_code)] // a description only
pub struct ConnectionView {
    /// Random id (UUIDv7).
    id: String,
    /// The organization it belongs to; null for an instance-wide connection.
    org_id: Option<String>,
    /// Display name ("Continue with NAME").
    name: String,
    /// The upstream's issuer identifier.
    issuer: String,
    /// Our client id at the upstream.
    client_id: String,
    /// Scopes asked for.
    scopes: Vec<String>,
    /// How the upstream's claims set the role (organizations' connections only).
    role_mapping: Option<RoleMapping>,
    /// The redirect URI to register at the upstream.
    redirect_uri: String,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds.
    updated_at: i64,
}

/// The caller's access to `{org}`'s connections: admins and owners (and operators). Reads need
/// `org:read`, writes `org:write`; a viewer or member gets 403 `role-insufficient`, an organization
/// the caller is not in 404, as every organization resource answers.
async fn org_access(
    state: &AppState,
    caller: &ApiCaller,
    org_ref: &str,
    write: bool,
) -> Result<OrgAccess> {
    // The permissions whose weakest role is admin, read and write: the scope follows from them.
    let permission = if write {
        Permission::UpdateOrg
    } else {
        Permission::ReadAuditLog
    };
    let access = authorize(&state.db.pool, caller, org_ref, permission).await?;
    if let Some(role) = access.role
        && !role.at_least(Role::Admin)
    {
        return Err(AppError::problem(
            StatusCode::FORBIDDEN,
            "role-insufficient",
            format!("the {role} role may not manage connections"),
        ));
    }
    Ok(access)
}

fn created(json: Value, location: &str) -> Response {
    let mut response = (StatusCode::CREATED, Json(json)).into_response();
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn list_json(state: &AppState, conns: &[super::Connection]) -> Json<Value> {
    Json(Value::Array(
        conns
            .iter()
            .map(|c| connection_json(c, &state.config))
            .collect(),
    ))
}

/// `GET /api/v1/orgs/{org}/connections`: the organization's connections, oldest first.
#[utoipa::path(
    operation_id = "connections_org_list",
    get,
    path = crate::routes::API_ORG_CONNECTIONS,
    tag = "sso",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses(
        (status = 200, description = "The organization's connections, oldest first", body = [ConnectionView]),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn org_list(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(org_ref): Path<String>,
) -> Result<Json<Value>> {
    let access = org_access(&state, &caller, &org_ref, false).await?;
    let conns = manage::list(&state.db, Owner::Org(&access.org.id)).await?;
    Ok(list_json(&state, &conns))
}

/// `POST /api/v1/orgs/{org}/connections`: 201 with the connection and its `Location`.
#[utoipa::path(
    operation_id = "connections_org_create",
    post,
    path = crate::routes::API_ORG_CONNECTIONS,
    tag = "sso",
    params(("org" = String, Path, description = "The organization's id or slug")),
    request_body = ConnectionInput,
    responses(
        (status = 201, description = "Created", body = ConnectionView, headers(("Location" = String, description = "The new connection's URL"))),
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, Unprocessable,
    ),
    security(("bearer" = [])),
)]
pub async fn org_create(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path(org_ref): Path<String>,
    ApiJson(body): ApiJson<ConnectionInput>,
) -> Result<Response> {
    let access = org_access(&state, &caller, &org_ref, true).await?;
    let actor = Actor::api(&caller, meta);
    let conn = manage::create(&services(&state, &actor), Owner::Org(&access.org.id), body).await?;
    let location = format!("/api/v1/orgs/{}/connections/{}", access.org.id, conn.id);
    Ok(created(connection_json(&conn, &state.config), &location))
}

/// `GET /api/v1/orgs/{org}/connections/{id}`.
#[utoipa::path(
    operation_id = "connections_org_read",
    get,
    path = crate::routes::API_ORG_CONNECTION,
    tag = "sso",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "The connection", body = ConnectionView),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn org_read(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((org_ref, id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let access = org_access(&state, &caller, &org_ref, false).await?;
    let conn = manage::find(&state.db.pool, Owner::Org(&access.org.id), &id).await?;
    Ok(Json(connection_json(&conn, &state.config)))
}

/// `PATCH /api/v1/orgs/{org}/connections/{id}`: any subset of the create fields;
/// `role_mapping: null` removes the mapping.
#[utoipa::path(
    operation_id = "connections_org_update",
    patch,
    path = crate::routes::API_ORG_CONNECTION,
    tag = "sso",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The connection's id")),
    request_body = ConnectionPatch,
    responses(
        (status = 200, description = "The connection as it is now", body = ConnectionView),
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, Unprocessable,
    ),
    security(("bearer" = [])),
)]
pub async fn org_update(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path((org_ref, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<ConnectionPatch>,
) -> Result<Json<Value>> {
    let access = org_access(&state, &caller, &org_ref, true).await?;
    let actor = Actor::api(&caller, meta);
    let conn = manage::update(
        &services(&state, &actor),
        Owner::Org(&access.org.id),
        &id,
        body,
    )
    .await?;
    Ok(Json(connection_json(&conn, &state.config)))
}

/// `DELETE /api/v1/orgs/{org}/connections/{id}`: 204; the identities linked through it go too.
#[utoipa::path(
    operation_id = "connections_org_delete",
    delete,
    path = crate::routes::API_ORG_CONNECTION,
    tag = "sso",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The connection's id")),
    responses(
        (status = 204, description = "Deleted, with the identities linked through it"),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn org_delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path((org_ref, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let access = org_access(&state, &caller, &org_ref, true).await?;
    let actor = Actor::api(&caller, meta);
    manage::delete(
        &state.db,
        Owner::Org(&access.org.id),
        &id,
        &actor,
        state.clock.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/connections`: the instance-wide connections, oldest first (operators).
#[utoipa::path(
    operation_id = "connections_instance_list",
    get,
    path = crate::routes::API_CONNECTIONS,
    tag = "sso",
    responses(
        (status = 200, description = "The instance-wide connections, oldest first", body = [ConnectionView]),
        BadRequest, Unauthorized, Forbidden,
    ),
    security(("bearer" = [])),
)]
pub async fn instance_list(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<Value>> {
    let conns = manage::list(&state.db, Owner::Instance).await?;
    Ok(list_json(&state, &conns))
}

/// `POST /api/v1/connections`: 201; `role_mapping` is refused (no organization to map into).
#[utoipa::path(
    operation_id = "connections_instance_create",
    post,
    path = crate::routes::API_CONNECTIONS,
    tag = "sso",
    request_body = ConnectionInput,
    responses(
        (status = 201, description = "Created", body = ConnectionView, headers(("Location" = String, description = "The new connection's URL"))),
        BadRequest, Unauthorized, Forbidden, PayloadTooLarge, UnsupportedMediaType, Unprocessable,
    ),
    security(("bearer" = [])),
)]
pub async fn instance_create(
    State(state): State<AppState>,
    Operator(caller): Operator,
    meta: RequestMeta,
    ApiJson(body): ApiJson<ConnectionInput>,
) -> Result<Response> {
    let actor = Actor::api(&caller, meta);
    let conn = manage::create(&services(&state, &actor), Owner::Instance, body).await?;
    let location = format!("{}/{}", routes::API_CONNECTIONS, conn.id);
    Ok(created(connection_json(&conn, &state.config), &location))
}

/// `GET /api/v1/connections/{id}`.
#[utoipa::path(
    operation_id = "connections_instance_read",
    get,
    path = crate::routes::API_CONNECTION,
    tag = "sso",
    params(("id" = String, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "The connection", body = ConnectionView),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn instance_read(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let conn = manage::find(&state.db.pool, Owner::Instance, &id).await?;
    Ok(Json(connection_json(&conn, &state.config)))
}

/// `PATCH /api/v1/connections/{id}`.
#[utoipa::path(
    operation_id = "connections_instance_update",
    patch,
    path = crate::routes::API_CONNECTION,
    tag = "sso",
    params(("id" = String, Path, description = "The connection's id")),
    request_body = ConnectionPatch,
    responses(
        (status = 200, description = "The connection as it is now", body = ConnectionView),
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, Unprocessable,
    ),
    security(("bearer" = [])),
)]
pub async fn instance_update(
    State(state): State<AppState>,
    Operator(caller): Operator,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConnectionPatch>,
) -> Result<Json<Value>> {
    let actor = Actor::api(&caller, meta);
    let conn = manage::update(&services(&state, &actor), Owner::Instance, &id, body).await?;
    Ok(Json(connection_json(&conn, &state.config)))
}

/// `DELETE /api/v1/connections/{id}`: 204.
#[utoipa::path(
    operation_id = "connections_instance_delete",
    delete,
    path = crate::routes::API_CONNECTION,
    tag = "sso",
    params(("id" = String, Path, description = "The connection's id")),
    responses(
        (status = 204, description = "Deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn instance_delete(
    State(state): State<AppState>,
    Operator(caller): Operator,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let actor = Actor::api(&caller, meta);
    manage::delete(&state.db, Owner::Instance, &id, &actor, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn services<'a>(state: &'a AppState, actor: &'a Actor) -> Services<'a> {
    Services {
        db: &state.db,
        kek: &state.kek,
        upstream: &state.upstream,
        actor,
        now: state.clock.now(),
    }
}
