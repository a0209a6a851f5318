//! The HTTP side of dynamic registration: `POST /register` (RFC 7591 §3) behind an initial access
//! token, and `GET`/`PUT`/`DELETE /register/{client_id}` (RFC 7592 §2) behind the client's
//! registration access token. Errors are RFC 7591 §3.2.2 JSON; a missing or wrong token is 401 with
//! the RFC 6750 §3 challenge. Every answer carries `Cache-Control: no-store` (RFC 7591 §3.2.1).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::metadata::{self, Checked, Metadata};
use super::store::{self, Registration};
use crate::app::AppState;
use crate::audit::Actor;
use crate::clients::api::ensure_signing_key;
use crate::clients::manage::{self, ClientChange};
use crate::clients::{self, Client};
use crate::config::DynamicRegistration;
use crate::crypto::tokens::{TokenHash, constant_time_eq, random_token};
use crate::error::AppError;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oidc::userinfo::bearer_token;
use crate::routes;
use crate::web::request_meta::RequestMeta;

/// What a handler answers when it fails: an RFC 7591 JSON error or another ready response.
type Answer = Result<Response, Response>;

/// `POST /register`: registers a client (201 with its metadata, secret and registration access
/// token).
pub async fn register(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(register_inner(&state, meta, &headers, body).await)
}

async fn register_inner(
    state: &AppState,
    meta: RequestMeta,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    switched_on(state).map_err(IntoResponse::into_response)?;
    let presented = presented_token(headers).ok_or_else(invalid_token)?;
    let now = state.clock.now();
    let initial_token_id =
        store::valid_initial_token(&state.db.pool, &TokenHash::of(&presented), now)
            .await
            .map_err(fail)?
            .ok_or_else(invalid_token)?;
    let metadata = read_metadata(body).map_err(IntoResponse::into_response)?;
    let Checked {
        client: new,
        auth_method,
    } = metadata::check(&metadata).map_err(IntoResponse::into_response)?;
    let registration_token = random_token();
    let actor = Actor::anonymous(meta);
    let mut tx = state.db.begin().await.map_err(fail)?;
    let (client, secret) = clients::create_in(&mut tx, now, new, &actor)
        .await
        .map_err(refused)?;
    let registration = Registration {
        client_id: client.id.clone(),
        token_hash: registration_token.hash(),
        token_endpoint_auth_method: auth_method.clone(),
    };
    store::insert_registration(&mut *tx, &registration, &initial_token_id, now)
        .await
        .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    signing_key_for(state, &client).await?;
    let mut body = metadata::of(&client, &auth_method);
    if let Some(secret) = secret {
        body.insert("client_secret".into(), json!(secret.expose()));
        // RFC 7591 §3.2.1: 0 means the secret does not expire.
        body.insert("client_secret_expires_at".into(), json!(0));
    }
    body.insert(
        "registration_access_token".into(),
        json!(registration_token.expose()),
    );
    add_client_uri(state, &mut body, &client.id);
    Ok(json_answer(StatusCode::CREATED, body))
}

/// `GET /register/{client_id}` (RFC 7592 §2.1): the client's current metadata (never its secret).
pub async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    answer(read_inner(&state, &headers, &client_id).await)
}

async fn read_inner(state: &AppState, headers: &HeaderMap, client_id: &str) -> Answer {
    let (registration, client, presented) = authorized(state, headers, client_id).await?;
    Ok(json_answer(
        StatusCode::OK,
        current(state, &client, &registration, &presented),
    ))
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): replaces the client's metadata; what the body
/// omits goes back to its default.
pub async fn replace(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(replace_inner(&state, meta, &headers, &client_id, body).await)
}

async fn replace_inner(
    state: &AppState,
    meta: RequestMeta,
    headers: &HeaderMap,
    client_id: &str,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let (registration, before, presented) = authorized(state, headers, client_id).await?;
    let metadata = read_metadata(body).map_err(IntoResponse::into_response)?;
    // RFC 7592 §2.2: the body names the client, and a secret it carries must be the current one.
    if metadata.client_id.as_deref() != Some(client_id) {
        return Err(
            metadata::invalid("client_id in the body must be this client's id").into_response(),
        );
    }
    if let Some(secret) = &metadata.client_secret {
        let matches = before.secret_hash.as_ref().is_some_and(|hash| {
            constant_time_eq(
                TokenHash::of(secret).as_str().as_bytes(),
                hash.as_str().as_bytes(),
            )
        });
        if !matches {
            return Err(
                metadata::invalid("client_secret is not this client's secret").into_response(),
            );
        }
    }
    let Checked {
        client: wanted,
        auth_method,
    } = metadata::check(&metadata).map_err(IntoResponse::into_response)?;
    if wanted.public != before.public {
        return Err(metadata::invalid(
            "token_endpoint_auth_method cannot change between none and a client secret",
        )
        .into_response());
    }
    let change = ClientChange {
        name: Some(wanted.name),
        redirect_uris: Some(wanted.redirect_uris),
        post_logout_redirect_uris: Some(wanted.post_logout_redirect_uris),
        grant_types: Some(wanted.grant_types),
        // An empty list is the default scopes, as at registration.
        scopes: Some(wanted.scopes),
        first_party: Some(false),
        require_org: Some(false),
        id_token_alg: wanted.id_token_alg,
        allow_no_pkce: Some(false),
        introspect: Some(false),
        // An empty string removes it.
        backchannel_logout_uri: Some(wanted.backchannel_logout_uri.unwrap_or_default()),
        resources: None,
        require_par: Some(wanted.require_par),
    };
    let actor = client_actor(client_id, meta);
    let now = state.clock.now();
    let clears_alg = wanted.id_token_alg.is_none();
    let mut tx = state.db.begin().await.map_err(fail)?;
    let mut after = manage::update_in(&mut tx, now, client_id, change, &actor)
        .await
        .map_err(refused)?;
    if clears_alg && let Some(old) = after.id_token_alg {
        // `ClientChange` keeps an algorithm it is not given; RFC 7592 §2.2 wants an omitted member
        // back at its default (the server's algorithm), so it is cleared here, audited the same way.
        after.id_token_alg = None;
        after.updated_at = now;
        clients::store::update_settings(&mut *tx, &after)
            .await
            .map_err(fail)?;
        manage::record(
            &mut tx,
            &actor,
            crate::audit::action::CLIENT_UPDATED,
            client_id,
            json!({"changes": {"id_token_alg": {"old": old.as_str(), "new": null}}}),
            now,
        )
        .await
        .map_err(refused)?;
    }
    store::set_auth_method(&mut *tx, client_id, &auth_method)
        .await
        .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    state.clients.forget(client_id);
    signing_key_for(state, &after).await?;
    let registration = Registration {
        token_endpoint_auth_method: auth_method,
        ..registration
    };
    Ok(json_answer(
        StatusCode::OK,
        current(state, &after, &registration, &presented),
    ))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): deletes the client with its codes, refresh
/// tokens and consents; 204.
pub async fn remove(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    answer(remove_inner(&state, meta, &headers, &client_id).await)
}

async fn remove_inner(
    state: &AppState,
    meta: RequestMeta,
    headers: &HeaderMap,
    client_id: &str,
) -> Answer {
    authorized(state, headers, client_id).await?;
    let actor = client_actor(client_id, meta);
    manage::delete(&state.db, state.clock.now(), client_id, &actor)
        .await
        .map_err(refused)?;
    state.clients.forget(client_id);
    let mut response = StatusCode::NO_CONTENT.into_response();
    crate::web::headers::forbid_caching(&mut response);
    Ok(response)
}

/// The registration and the client named in the path, when the request carries that client's
/// registration access token. RFC 7592 §2: a wrong token, an unknown client and a client without a
/// registration (an operator's) are all 401, so the endpoint tells nothing about which clients exist.
async fn authorized(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<(Registration, Client, String), Response> {
    switched_on(state).map_err(IntoResponse::into_response)?;
    let presented = presented_token(headers).ok_or_else(invalid_token)?;
    let registration = store::find_registration(&state.db.pool, client_id)
        .await
        .map_err(fail)?
        .ok_or_else(invalid_token)?;
    let hash = TokenHash::of(&presented);
    if !constant_time_eq(
        hash.as_str().as_bytes(),
        registration.token_hash.as_str().as_bytes(),
    ) {
        return Err(invalid_token());
    }
    let client = clients::store::find(&state.db.pool, client_id)
        .await
        .map_err(fail)?
        .ok_or_else(invalid_token)?;
    Ok((registration, client, presented))
}

/// The client information response (RFC 7592 §3): the metadata, the registration access token the
/// caller presented (still the valid one: it is never rotated) and the configuration URI.
fn current(
    state: &AppState,
    client: &Client,
    registration: &Registration,
    presented: &str,
) -> Map<String, Value> {
    let mut body = metadata::of(client, &registration.token_endpoint_auth_method);
    if !client.public {
        body.insert("client_secret_expires_at".into(), json!(0));
    }
    body.insert("registration_access_token".into(), json!(presented));
    add_client_uri(state, &mut body, &client.id);
    body
}

fn add_client_uri(state: &AppState, body: &mut Map<String, Value>, client_id: &str) {
    let path = routes::REGISTRATION_CLIENT.replace("{client_id}", client_id);
    body.insert(
        "registration_client_uri".into(),
        json!(format!("{}{path}", state.config.issuer)),
    );
}

/// 404 while registration is switched off: the endpoint does not exist (RFC 7591 §3 makes it
/// optional; discovery does not name it then).
fn switched_on(state: &AppState) -> Result<(), AppError> {
    if state.config.dynamic_registration == DynamicRegistration::Off {
        return Err(AppError::not_found("There is nothing at this address."));
    }
    Ok(())
}

/// The request's `Authorization: Bearer` token ([`bearer_token`], RFC 6750 §2.1); a missing or
/// malformed one is refused like a wrong one ([`invalid_token`]).
fn presented_token(headers: &HeaderMap) -> Option<String> {
    bearer_token(headers, None).ok()
}

/// 401 `invalid_token` with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1).
fn invalid_token() -> Response {
    let mut response = OAuthError::new(
        ErrorCode::InvalidToken,
        "the access token is missing, unknown or expired",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

/// The metadata of a request body (413 for an unreadable one).
fn read_metadata(body: Result<Bytes, BytesRejection>) -> Result<Metadata, OAuthError> {
    let body = body.map_err(|r| OAuthError::unreadable_body(&r))?;
    metadata::parse(&body)
}

/// A refusal of the client registry: a broken registration rule is `invalid_client_metadata`
/// with the rule; anything else is the server's fault.
fn refused(err: AppError) -> Response {
    match &err {
        AppError::Problem { code, detail, .. } if *code == manage::INVALID_CLIENT_METADATA => {
            metadata::invalid(detail.clone()).into_response()
        }
        _ => OAuthError::from(err).into_response(),
    }
}

/// A database failure (logged once by `OAuthError::server_error`).
fn fail(err: sqlx::Error) -> Response {
    OAuthError::from(err).into_response()
}

/// A client with its own ID-token algorithm needs an active key of it, as after `client create`
/// ([`ensure_signing_key`]).
async fn signing_key_for(state: &AppState, client: &Client) -> Result<(), Response> {
    ensure_signing_key(state, client.id_token_alg)
        .await
        .map_err(|e| OAuthError::from(e).into_response())
}

/// The registered client acting on its own registration (RFC 7592).
fn client_actor(client_id: &str, meta: RequestMeta) -> Actor {
    Actor {
        user_id: None,
        client_id: Some(client_id.to_owned()),
        meta,
    }
}

fn json_answer(status: StatusCode, body: Map<String, Value>) -> Response {
    let mut response = (status, Json(Value::Object(body))).into_response();
    crate::web::headers::forbid_caching(&mut response);
    response
}

fn answer(result: Answer) -> Response {
    let mut response = result.unwrap_or_else(|refusal| refusal);
    crate::web::headers::forbid_caching(&mut response);
    response
}
