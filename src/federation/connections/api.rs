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
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

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
use crate::web::request_meta::RequestMeta;

/// The connection routes of the management API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(routes::API_ORG_CONNECTIONS, get(org_list).post(org_create))
        .route(
            routes::API_ORG_CONNECTION,
            get(org_read).patch(org_update).delete(org_delete),
        )
        .route(
            routes::API_CONNECTIONS,
            get(instance_list).post(instance_create),
        )
        .route(
            routes::API_CONNECTION,
            get(instance_read)
                .patch(instance_update)
                .delete(instance_delete),
        )
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
pub async fn instance_list(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<Value>> {
    let conns = manage::list(&state.db, Owner::Instance).await?;
    Ok(list_json(&state, &conns))
}

/// `POST /api/v1/connections`: 201; `role_mapping` is refused (no organization to map into).
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
pub async fn instance_read(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let conn = manage::find(&state.db.pool, Owner::Instance, &id).await?;
    Ok(Json(connection_json(&conn, &state.config)))
}

/// `PATCH /api/v1/connections/{id}`.
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
