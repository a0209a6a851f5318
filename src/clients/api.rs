//! The operator's client management API (`/api/v1/clients`), for operators only (a
//! `client_credentials` token with the `admin` scope; anyone else gets 403 `operator-required`, no
//! usable token 401 `invalid-token`):
//!
//! - `GET /api/v1/clients?limit=&cursor=`: clients oldest first, keyset-paginated (RFC 8288
//!   `Link: rel="next"`);
//! - `POST /api/v1/clients`: registers a client; 201 with `Location`, the client, and (for a
//!   confidential client) its `client_secret`, shown this once;
//! - `GET /api/v1/clients/{client_id}`: the client;
//! - `PATCH /api/v1/clients/{client_id}`: changes settings (not whether it is public);
//! - `DELETE /api/v1/clients/{client_id}`: 204; its codes, refresh tokens and consents go with it;
//! - `POST /api/v1/clients/{client_id}/rotate-secret` `{"grace_seconds"?}`: a new secret, shown
//!   once; the old one keeps working for the grace period.
//!
//! The work is [`super::manage`]'s, shared with `latchkey client …`; so is every audit event. A
//! client is never shown with its secret or its hash except the new secret right after creation or
//! rotation. Unknown ids are 404 `client-not-found`; settings that break a rule are 400
//! `invalid-client-metadata`; bodies and queries fail as [`crate::web::api`] says.

use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::manage::{self, ClientChange, ClientView, RotatedSecret};
use super::{Client, NewClient};
use crate::accounts::admin_api::Operator;
use crate::app::AppState;
use crate::audit::Actor;
use crate::config::SigningAlg;
use crate::crypto::key_store;
use crate::error::{AppError, Result};
use crate::web::api::{ApiJson, ApiQuery, Listing, Page};
use crate::web::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, UnsupportedMediaType,
};
use crate::web::request_meta::RequestMeta;

/// The routes of `/api/v1/clients`, each with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, delete))
        .routes(routes!(rotate_secret))
}

/// Query of `GET /api/v1/clients`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientsQuery {
    /// Items per page, 1 to 200 (default 50).
    limit: Option<i64>,
    /// The cursor of the next page, from the `Link` header of the previous one.
    cursor: Option<String>,
}

/// `GET /api/v1/clients`: clients oldest first, paginated.
#[utoipa::path(
    operation_id = "clients_list",
    get,
    path = crate::routes::API_CLIENTS,
    tag = "clients",
    params(ClientsQuery),
    responses(
        (status = 200, description = "A page of clients, oldest first", body = [ClientView],
         headers(("Link" = String, description = "`<…>; rel=\"next\"` when another page follows (RFC 8288)"))),
        BadRequest, Unauthorized, Forbidden,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(query): ApiQuery<ClientsQuery>,
) -> Result<Listing<ClientView>> {
    let page = Page::new(query.limit, query.cursor.as_deref())?;
    let rows = manage::list(&state.db, page.after(), page.fetch()).await?;
    let now = state.clock.now();
    Ok(page.finish(
        rows,
        |c: &Client| (c.created_at, c.id.clone()),
        |c| ClientView::of(&c, now),
    ))
}

/// Body of `POST /api/v1/clients`: the options of `latchkey client create`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    /// Display name, 1 to 100 characters.
    name: String,
    /// Redirect URIs (https, http on a loopback IP literal, or a private-use scheme).
    #[serde(default)]
    redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    /// Grant types: `authorization_code`, `refresh_token`, `client_credentials` (default: the
    /// first two).
    #[serde(default)]
    grant_types: Vec<String>,
    /// Scopes the client may request (default: `openid profile email offline_access`).
    #[serde(default)]
    scopes: Vec<String>,
    /// A public client: no secret, PKCE required (default false).
    #[serde(default)]
    public: bool,
    /// Skip the consent screen (default false).
    #[serde(default)]
    first_party: bool,
    /// Only people in an organization may sign in (default false).
    #[serde(default)]
    require_org: bool,
    /// ID-token signing algorithm: `RS256`, `ES256` or `EdDSA` (default: the server's).
    #[schema(example = "ES256")]
    id_token_alg: Option<String>,
    /// Accept authorization requests without PKCE (confidential clients only; default false).
    #[serde(default)]
    allow_no_pkce: bool,
    /// May introspect tokens issued to other clients (confidential clients only; default false).
    #[serde(default)]
    introspect: bool,
    /// Where logout tokens are posted (OpenID Connect Back-Channel Logout 1.0): https, or http on
    /// a loopback IP literal.
    backchannel_logout_uri: Option<String>,
    /// Resource servers (absolute URIs, RFC 8707) the client may ask tokens for.
    #[serde(default)]
    resources: Vec<String>,
    /// Accept only pushed authorization requests (RFC 9126; default false).
    #[serde(default)]
    require_par: bool,
}

/// A client just registered: the client, and its secret (confidential clients only), shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedClient {
    /// The client.
    #[serde(flatten)]
    client: ClientView,
    /// The secret (absent for a public client): 256 random bits, base64url. Shown only here.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

/// `POST /api/v1/clients`: registers a client (recorded as `client.created`); 201 with `Location`.
/// Settings that break a rule: 400 `invalid-client-metadata`.
#[utoipa::path(
    operation_id = "clients_create",
    post,
    path = crate::routes::API_CLIENTS,
    tag = "clients",
    request_body = CreateClient,
    responses(
        (status = 201, description = "The client, with its secret shown once", body = CreatedClient,
         headers(("Location" = String, description = "The client's URL"))),
        BadRequest, Unauthorized, Forbidden, PayloadTooLarge, UnsupportedMediaType,
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    Operator(caller): Operator,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CreateClient>,
) -> Result<Response> {
    let id_token_alg = parse_alg(body.id_token_alg.as_deref())?;
    let new = NewClient {
        name: body.name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        grant_types: body.grant_types,
        scopes: body.scopes,
        public: body.public,
        first_party: body.first_party,
        require_org: body.require_org,
        id_token_alg,
        allow_no_pkce: body.allow_no_pkce,
        introspect: body.introspect,
        backchannel_logout_uri: body.backchannel_logout_uri,
        resources: body.resources,
        require_par: body.require_par,
    };
    let actor = Actor::api(&caller, meta);
    let (client, secret) = super::create(&state.db, &state.clock, new, &actor).await?;
    ensure_signing_key(&state, id_token_alg).await?;
    let created = CreatedClient {
        client: ClientView::of(&client, state.clock.now()),
        client_secret: secret.map(|s| s.expose().to_owned()),
    };
    let mut response = (StatusCode::CREATED, Json(created)).into_response();
    if let Ok(location) =
        HeaderValue::from_str(&format!("{}/{}", crate::routes::API_CLIENTS, client.id))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /api/v1/clients/{client_id}`: the client (never its secret); 404 `client-not-found`.
#[utoipa::path(
    operation_id = "clients_read",
    get,
    path = crate::routes::API_CLIENT,
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The client", body = ClientView),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn read(
    State(state): State<AppState>,
    _operator: Operator,
    Path(client_id): Path<String>,
) -> Result<Json<ClientView>> {
    let client = manage::show(&state.db, &client_id).await?;
    Ok(Json(ClientView::of(&client, state.clock.now())))
}

/// Body of `PATCH /api/v1/clients/{client_id}`: at least one setting; lists replace the stored
/// list. Whether a client is public is fixed at registration.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchClient {
    /// Display name, 1 to 100 characters.
    name: Option<String>,
    /// Redirect URIs.
    redirect_uris: Option<Vec<String>>,
    /// Post-logout redirect URIs.
    post_logout_redirect_uris: Option<Vec<String>>,
    /// Grant types (an empty list means the default: `authorization_code`, `refresh_token`).
    grant_types: Option<Vec<String>>,
    /// Scopes (an empty list means the default: `openid profile email offline_access`).
    scopes: Option<Vec<String>>,
    /// Skip the consent screen.
    first_party: Option<bool>,
    /// Only people in an organization may sign in.
    require_org: Option<bool>,
    /// ID-token signing algorithm: `RS256`, `ES256` or `EdDSA`.
    #[schema(example = "ES256")]
    id_token_alg: Option<String>,
    /// Accept authorization requests without PKCE (confidential clients only).
    allow_no_pkce: Option<bool>,
    /// May introspect tokens issued to other clients (confidential clients only).
    introspect: Option<bool>,
    /// Back-channel logout URI; an empty string removes it.
    backchannel_logout_uri: Option<String>,
    /// Resource servers (absolute URIs, RFC 8707) the client may ask tokens for.
    resources: Option<Vec<String>>,
    /// Accept only pushed authorization requests (RFC 9126).
    require_par: Option<bool>,
}

/// `PATCH /api/v1/clients/{client_id}`: changes settings, checked as at registration (recorded as
/// `client.updated` with the old and new values); the client as stored. 400
/// `invalid-client-metadata` for settings that break a rule, 404 `client-not-found`.
#[utoipa::path(
    operation_id = "clients_update",
    patch,
    path = crate::routes::API_CLIENT,
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    request_body = PatchClient,
    responses(
        (status = 200, description = "The client as changed", body = ClientView),
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
    ),
    security(("bearer" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    Operator(caller): Operator,
    meta: RequestMeta,
    Path(client_id): Path<String>,
    ApiJson(body): ApiJson<PatchClient>,
) -> Result<Json<ClientView>> {
    let id_token_alg = parse_alg(body.id_token_alg.as_deref())?;
    let change = ClientChange {
        name: body.name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        grant_types: body.grant_types,
        scopes: body.scopes,
        first_party: body.first_party,
        require_org: body.require_org,
        id_token_alg,
        allow_no_pkce: body.allow_no_pkce,
        introspect: body.introspect,
        backchannel_logout_uri: body.backchannel_logout_uri,
        resources: body.resources,
        require_par: body.require_par,
    };
    if change.is_empty() {
        return Err(AppError::problem(
            StatusCode::BAD_REQUEST,
            "invalid-body",
            "give at least one setting to change",
        ));
    }
    let actor = Actor::api(&caller, meta);
    let client = manage::update(&state.db, state.clock.now(), &client_id, change, &actor).await?;
    state.clients.forget(&client_id);
    ensure_signing_key(&state, id_token_alg).await?;
    Ok(Json(ClientView::of(&client, state.clock.now())))
}

/// `DELETE /api/v1/clients/{client_id}`: 204; the client's authorization codes, refresh tokens and
/// consents go with it, and its access tokens are refused (recorded as `client.deleted`); 404
/// `client-not-found`.
#[utoipa::path(
    operation_id = "clients_delete",
    delete,
    path = crate::routes::API_CLIENT,
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 204, description = "Deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Operator(caller): Operator,
    meta: RequestMeta,
    Path(client_id): Path<String>,
) -> Result<StatusCode> {
    let actor = Actor::api(&caller, meta);
    manage::delete(&state.db, state.clock.now(), &client_id, &actor).await?;
    state.clients.forget(&client_id);
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/clients/{client_id}/rotate-secret` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the old secret stays valid, 0 to 2592000 seconds (30 days); default 0: refused at
    /// once.
    #[serde(default)]
    grace_seconds: i64,
}

/// `POST /api/v1/clients/{client_id}/rotate-secret` `{"grace_seconds"?}`: a new secret, shown
/// once; the old one is accepted until `previous_secret_expires_at` (recorded as
/// `client.secret_rotated`). 400 `invalid-grace` outside 0 to 30 days, 404 `client-not-found`,
/// 409 `public-client` (a public client has no secret).
#[utoipa::path(
    operation_id = "clients_rotate_secret",
    post,
    path = crate::routes::API_CLIENT_ROTATE_SECRET,
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    request_body = Option<RotateSecret>,
    responses(
        (status = 200, description = "The new secret, shown once", body = RotatedSecret),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType,
    ),
    security(("bearer" = [])),
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Operator(caller): Operator,
    meta: RequestMeta,
    Path(client_id): Path<String>,
    request: Request,
) -> Result<Json<RotatedSecret>> {
    let body = optional_body::<RotateSecret>(request, &state).await?;
    let actor = Actor::api(&caller, meta);
    let (client, secret) = manage::rotate_secret(
        &state.db,
        state.clock.now(),
        &client_id,
        body.grace_seconds,
        &actor,
    )
    .await?;
    state.clients.forget(&client_id);
    Ok(Json(manage::rotated(&client, &secret)))
}

/// A JSON body that may be left out (nothing, or only whitespace: `T::default()`); otherwise
/// exactly what [`ApiJson`] accepts, with its problems.
async fn optional_body<T: serde::de::DeserializeOwned + Default>(
    request: Request,
    state: &AppState,
) -> Result<T> {
    match ApiJson::<T>::from_request(request, state).await {
        Ok(ApiJson(value)) => Ok(value),
        Err(AppError::Problem {
            code: "missing-body",
            ..
        }) => Ok(T::default()),
        Err(e) => Err(e),
    }
}

/// An `id_token_alg` from a body: 400 `invalid-client-metadata` unless `RS256`, `ES256`, `EdDSA`.
fn parse_alg(alg: Option<&str>) -> Result<Option<SigningAlg>> {
    alg.map(|a| {
        a.parse::<SigningAlg>().map_err(|_| {
            AppError::problem(
                StatusCode::BAD_REQUEST,
                manage::INVALID_CLIENT_METADATA,
                format!("invalid id_token_alg {a:?}: expected RS256, ES256 or EdDSA"),
            )
        })
    })
    .transpose()
}

/// A client with its own ID-token algorithm needs a signing key of that algorithm, as `client
/// create` ensures. This process reloads its keyring at once, so the client's first ID token does not
/// wait for the periodic refresh; other processes pick the key up with theirs (every second).
pub(crate) async fn ensure_signing_key(state: &AppState, alg: Option<SigningAlg>) -> Result<()> {
    if let Some(alg) = alg {
        key_store::ensure_active_key(&state.db, &state.clock, &state.kek, alg).await?;
        state.keyring.refresh(&state.db).await?;
    }
    Ok(())
}
