//! The operator API over users (`/api/v1/users`), for operators only (a `client_credentials` token
//! with the `admin` scope; anyone else gets 403 `operator-required`, as `/api/v1/audit-log` and
//! `/api/v1/stats` answer):
//!
//! - `GET /api/v1/users?email=&limit=&cursor=`: users oldest first, `email` a case-insensitive
//!   substring of the address, keyset-paginated (RFC 8288 `Link: rel="next"`);
//! - `GET /api/v1/users/{id}`: one user with memberships, live sessions and refresh-token families,
//!   and the last sign-in;
//! - `PATCH /api/v1/users/{id}` `{"disabled"?: bool, "name"?: string}`: the user (and, when
//!   disabling, what ended);
//! - `DELETE /api/v1/users/{id}`: 204, or 409 `last-owner` naming the organizations;
//! - `POST /api/v1/users/{id}/sessions/revoke`: `{"ended": {"sessions", "refresh_families"}}`;
//! - `DELETE /api/v1/users/{id}/mfa`: removes every second factor, ends every sign-in, mails the
//!   owner (see [`crate::mfa::reset`]); 200 with what it did.
//!
//! Unknown ids are 404 `user-not-found`; bodies and queries fail as [`crate::web::api`] says. The
//! work is [`super::admin`]'s, shared with `latchkey user …`.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::User;
use super::admin::{self, UserChange, UserDetails, UserRef};
use super::lifecycle::EndedSignIns;
use crate::app::AppState;
use crate::audit::Actor;
use crate::error::{AppError, Result};
use crate::web::api::{ApiJson, ApiQuery, Listing, Page, invalid_query};
use crate::web::bearer::ApiCaller;
use crate::web::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, UnsupportedMediaType,
};
use crate::web::request_meta::RequestMeta;

/// An operator calling: an [`ApiCaller`] with a `client_credentials` token holding `admin`. As an
/// extractor it refuses before the request body is read: 401 without a usable token, 403
/// `operator-required` for anyone else (a person's token, even one that asked for `admin`, or a
/// client without `admin`).
#[derive(Debug, Clone)]
pub struct Operator(pub ApiCaller);

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let caller = ApiCaller::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        caller
            .require_operator()
            .map_err(IntoResponse::into_response)?;
        Ok(Operator(caller))
    }
}

/// Query of `GET /api/v1/users`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Case-insensitive substring of the address.
    email: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `cursor` of the previous page's `Link: <…>; rel="next"` (opaque).
    cursor: Option<String>,
}

/// `GET /api/v1/users`: users oldest first (`email` narrows to addresses containing it), paginated.
#[utoipa::path(
    operation_id = "users_list",
    get,
    path = crate::routes::API_USERS,
    tag = "users",
    params(UsersQuery),
    responses(
        (status = 200, description = "A page of users, oldest first", body = [User], headers(("Link" = String, description = "`<…>; rel=\"next\"` when another page follows (RFC 8288)"))),
        BadRequest, Unauthorized, Forbidden,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(query): ApiQuery<UsersQuery>,
) -> Result<Listing<User>> {
    let page = Page::new(query.limit, query.cursor.as_deref())?;
    let pattern = query
        .email
        .as_deref()
        .map(admin::search_pattern)
        .transpose()
        .map_err(invalid_query)?;
    let rows = admin::list(&state.db, pattern.as_deref(), page.after(), page.fetch()).await?;
    Ok(page.finish(rows, |u: &User| (u.created_at, u.id.clone()), |u| u))
}

/// `GET /api/v1/users/{id}`: the user with memberships, sessions, refresh families, last sign-in.
#[utoipa::path(
    operation_id = "users_read",
    get,
    path = crate::routes::API_USER,
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user with what the account holds", body = UserDetails),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn read(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<UserDetails>> {
    let user = admin::resolve(&state.db, UserRef::Id(&id)).await?;
    Ok(Json(
        admin::details(&state.db, state.clock.now(), user).await?,
    ))
}

/// Body of `PATCH /api/v1/users/{id}`: at least one of `disabled`, `name`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// Disable (ends every sign-in) or enable the account.
    disabled: Option<bool>,
    /// New display name.
    name: Option<String>,
}

/// `PATCH /api/v1/users/{id}` `{"disabled"?, "name"?}`: disables (every session and refresh family
/// ends at once, and the API refuses the person's tokens) or enables the account, renames it.
#[utoipa::path(
    operation_id = "users_update",
    patch,
    path = crate::routes::API_USER,
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    request_body = PatchUser,
    responses(
        (status = 200, description = "The user as it is now, and what disabling ended", body = admin::Updated),
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
    ),
    security(("bearer" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    Operator(caller): Operator,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchUser>,
) -> Result<Json<admin::Updated>> {
    if body.disabled.is_none() && body.name.is_none() {
        return Err(AppError::problem(
            StatusCode::BAD_REQUEST,
            "invalid-body",
            "give at least one of disabled and name",
        ));
    }
    let change = UserChange {
        disabled: body.disabled,
        name: body.name,
    };
    let actor = Actor::api(&caller, meta);
    let updated = admin::update(
        &state.db,
        state.clock.now(),
        UserRef::Id(&id),
        change,
        &actor,
    )
    .await?;
    Ok(Json(updated))
}

/// `DELETE /api/v1/users/{id}`: 204; 409 `last-owner` while the user is the only owner of an
/// organization (the detail names them).
#[utoipa::path(
    operation_id = "users_delete",
    delete,
    path = crate::routes::API_USER,
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Operator(caller): Operator,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let actor = Actor::api(&caller, meta);
    admin::delete(&state.db, state.clock.now(), UserRef::Id(&id), &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/users/{id}/sessions/revoke`: ends every browser session and refresh-token family
/// of the user; `{"ended": {"sessions": n, "refresh_families": m}}`. No body is needed.
#[utoipa::path(
    operation_id = "users_revoke_sessions",
    post,
    path = crate::routes::API_USER_SESSIONS_REVOKE,
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "What was ended", body = EndedSignIns),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Operator(caller): Operator,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> Result<Json<EndedSignIns>> {
    let actor = Actor::api(&caller, meta);
    let (_, ended) =
        admin::end_sessions(&state.db, state.clock.now(), UserRef::Id(&id), &actor).await?;
    Ok(Json(EndedSignIns { ended }))
}

/// `DELETE /api/v1/users/{id}/mfa`: removes every second factor of the user (authenticator app,
/// recovery codes, passkeys), ends every browser session and refresh-token family, mails the owner
/// and records `mfa.reset` ([`crate::mfa::reset`], shared with `latchkey user mfa-reset`). 200
/// `{"id", "email", "factors_removed", "removed": {"totp", "recovery_codes", "passkeys"},
/// "sessions_ended", "refresh_families_ended"}` rather than 204: the operator sees what went, as
/// `sessions/revoke` answers. No body is needed.
#[utoipa::path(
    operation_id = "users_reset_mfa",
    delete,
    path = crate::routes::API_USER_MFA,
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "What was removed and ended", body = crate::mfa::reset::Reset),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn reset_mfa(
    State(state): State<AppState>,
    Operator(caller): Operator,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> Result<Json<crate::mfa::reset::Reset>> {
    let actor = Actor::api(&caller, meta);
    let done = crate::mfa::reset::reset(
        &state.db,
        &state.config,
        state.clock.now(),
        UserRef::Id(&id),
        &actor,
    )
    .await?;
    state.mailer.wake();
    Ok(Json(done))
}
