//! Pushed authorization requests (RFC 9126): a client posts its authorization request to `/par`
//! (authenticated like at the token endpoint) and sends the browser to `/authorize` with only
//! `client_id` and the `request_uri` it got back; clients registered with `--require-par` must.
//!
//! The pushed parameters are checked by the very validation of `/authorize`
//! ([`super::request::validate_pushed`]), answered as JSON errors (§2.3) instead of redirects, and
//! stored under the SHA-256 of the `request_uri`; `/authorize` claims them once
//! ([`claim`]) and validates them again (the client's registration may have changed meanwhile).
//!
//! A `DPoP` header is checked as at the token endpoint (RFC 9449 §10.1, nonce required, §8): the
//! pushed request's code is then bound to the proof's key, as the `dpop_jkt` parameter would bind it.

pub mod store;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::request::{self, Refusal};
use crate::app::AppState;
use crate::crypto::tokens::{TokenHash, random_token};
use crate::error::AppError;
use crate::routes;
use crate::web::request_meta::RequestMeta;

/// RFC 9126 §2.2: the `request_uri` is a URN under this prefix, followed by 256 random bits.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Lifetime of a pushed request (RFC 9126 §2.2 `expires_in`): long enough to send the browser to
/// `/authorize`, short because the `request_uri` is a bearer value in the browser's address bar.
/// Once claimed, the request lives on in the browser session like any other.
pub const PUSHED_REQUEST_TTL_SECS: i64 = 60;

/// Parameters of a pushed request that are client credentials, not part of the authorization
/// request: never stored (RFC 9126 §2.1 authenticates with them, nothing more).
const CREDENTIALS: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

/// The pushed authorization request endpoint.
pub fn router() -> Router<AppState> {
    Router::new().route(routes::PUSHED_AUTHORIZATION_REQUEST, post(push))
}

/// `POST /par` (RFC 9126 §2): 201 `{"request_uri", "expires_in"}`, or an RFC 6749 §5.2 JSON error;
/// with a `DPoP` header, a `DPoP-Nonce` on either (RFC 9449 §8, as at the token endpoint).
pub async fn push(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = store_pushed(&state, &meta, &headers, body).await;
    crate::dpop::answer(&state, &headers, result)
}

/// Authenticates the client, checks its DPoP proof if any, validates and stores the request.
async fn store_pushed(
    state: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = body.map_err(|r| OAuthError::unreadable_body(&r))?;
    let params = Params::from_form(headers, &body)
        .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    // §2.1: the client authenticates as at the token endpoint (Basic, post, or `none` for a public
    // client, which names itself with `client_id`); a mismatch between Basic and `client_id` in
    // the body is refused there.
    let client = client_auth::authenticate_throttled(state, meta, headers, &params).await?;
    // RFC 9449 §10.1: a proof here is checked as at the token endpoint (after client authentication,
    // so that only a known client's proofs reach the replay cache).
    let proof_jkt =
        crate::dpop::request_jkt(state, headers, routes::PUSHED_AUTHORIZATION_REQUEST).await?;
    // §2.1: "The request_uri authorization request parameter is one exception, and it MUST NOT be
    // provided."
    if params.has("request_uri") {
        return Err(OAuthError::invalid_request(
            "request_uri must not be sent to the pushed authorization request endpoint",
        ));
    }
    // The authorization request as `/authorize` will see it: every parameter but the credentials,
    // with `client_id` (a Basic-authenticated client may leave it out of the body).
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(name, _)| !CREDENTIALS.contains(name) && *name != "client_id")
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    pairs.push(("client_id".to_owned(), client.client.id.clone()));
    if let Some(jkt) = proof_jkt {
        bind_to_proof_key(&mut pairs, jkt)?;
    }
    pairs.sort();
    let pushed = params_of(&pairs).map_err(OAuthError::invalid_request)?;
    // §2.1: "The AS MUST validate the request in the same way as at the authorization endpoint";
    // §2.3: errors are answered here as JSON, never redirected.
    match request::validate_pushed(state, &pushed).await {
        Ok(_) => {}
        Err(Refusal::Redirect { error, .. }) => return Err(error),
        Err(Refusal::Page(err)) if err.status().is_client_error() => {
            return Err(OAuthError::invalid_request(err.to_string()));
        }
        Err(Refusal::Page(err)) => return Err(OAuthError::from(err)),
    }
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", random_token().expose());
    let now = state.clock.now();
    let row = store::PushedRow {
        request_uri_hash: TokenHash::of(&request_uri),
        client_id: client.client.id.clone(),
        params: serde_json::to_string(&pairs).map_err(OAuthError::server_error)?,
        created_at: now,
        expires_at: now + PUSHED_REQUEST_TTL_SECS,
    };
    {
        let _gate = state.db.write_gate().await;
        store::insert(&state.db.pool, &row).await?;
    }
    let body = json!({"request_uri": request_uri, "expires_in": PUSHED_REQUEST_TTL_SECS});
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    crate::web::headers::forbid_caching(&mut response);
    Ok(response)
}

/// RFC 9449 §10.1: a request pushed with a proof binds its code to the proof's key, as `dpop_jkt`
/// would; when both are present "the authorization server MUST reject the request" unless they are
/// the same key (`invalid_dpop_proof`: the proof is not by the key the request names).
fn bind_to_proof_key(pairs: &mut Vec<(String, String)>, jkt: String) -> Result<(), OAuthError> {
    match pairs.iter().find(|(name, _)| name == "dpop_jkt") {
        None => {
            pairs.push(("dpop_jkt".to_owned(), jkt));
            Ok(())
        }
        Some((_, named)) if *named == jkt => Ok(()),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "dpop_jkt names another key than the DPoP proof's",
        )),
    }
}

/// The parameters of the pushed request named by `request_uri`, for `client_id`, claimed for this
/// one use (RFC 9126 §4: "the authorization server MUST … treat [it] as one-time use"). Unknown,
/// expired, used, another client's, or not ours at all: the error page (400 `invalid_request_uri`),
/// never a redirect, since no redirect URI of the request could be trusted.
pub async fn claim(
    state: &AppState,
    client_id: Option<&str>,
    request_uri: &str,
) -> Result<Params, Refusal> {
    let invalid = |detail: &str| {
        Refusal::Page(AppError::problem(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequestUri.as_str(),
            format!("{detail} (invalid_request_uri). Go back to the application and start again."),
        ))
    };
    // §4: client_id is required alongside request_uri, and must be the client that pushed it.
    let client_id = client_id.ok_or_else(|| {
        Refusal::Page(AppError::invalid(
            "The request names no client (client_id).",
        ))
    })?;
    // Request objects by reference (OpenID Connect Core §6.2) stay unsupported: only the URNs
    // this server handed out are accepted.
    if !request_uri.starts_with(REQUEST_URI_PREFIX) {
        return Err(invalid(
            "This server accepts only request_uri values from its own pushed authorization request endpoint",
        ));
    }
    let hash = TokenHash::of(request_uri);
    let now = state.clock.now();
    let stored = {
        let _gate = state.db.write_gate().await;
        store::claim(&state.db.pool, &hash, client_id, now)
            .await
            .map_err(|e| Refusal::Page(e.into()))?
    };
    let Some(stored) = stored else {
        return Err(invalid(
            "This authorization request is unknown, expired or already used",
        ));
    };
    let pairs: Vec<(String, String)> =
        serde_json::from_str(&stored).map_err(|e| Refusal::Page(AppError::Internal(e.into())))?;
    params_of(&pairs).map_err(|e| Refusal::Page(AppError::Internal(anyhow::anyhow!(e))))
}

/// [`Params`] holding `pairs`, through the one parser every endpoint uses (same rules: no repeats,
/// bounded values).
fn params_of(pairs: &[(String, String)]) -> Result<Params, String> {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    Params::parse(encoded.as_bytes()).map_err(|e| e.to_string())
}
