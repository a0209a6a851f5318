//! The introspection endpoint (RFC 7662): a confidential client (typically a resource server) asks
//! whether a token is active and what it stands for.
//!
//! Only confidential clients may ask (§2.1 requires the endpoint to be protected; a public client's
//! `client_id` proves nothing). A client sees only tokens issued to itself, unless it was registered
//! with `client create --introspect` (§4: the server decides which clients may see which tokens).
//! The operator scope `admin` is no such permission: it lets a token manage organizations, not a
//! client read everyone's tokens. Everything else — unknown, malformed, expired, revoked, or someone
//! else's, or a deleted or disabled user's — is exactly `{"active":false}` (§2.2), so that the answer reveals nothing about tokens the
//! caller does not own.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::access_token;
use super::client_auth::AuthenticatedClient;
use super::error::OAuthError;
use super::revocation::{self, TokenRequest, TokenTypeHint};
use super::store;
use crate::app::AppState;
use crate::crypto::tokens::TokenHash;
use crate::web::request_meta::RequestMeta;

/// Access-token claims copied into an active introspection response (§2.2), when present. `acr`
/// (and `auth_time`) let a resource server that introspects apply the same step-up rule as one that
/// reads the JWT (RFC 9068 §2.2.1, RFC 9470 §3). `cnf` tells a DPoP-bound token's key (RFC 9449
/// §6.2).
const ACCESS_TOKEN_MEMBERS: [&str; 14] = [
    "scope",
    "client_id",
    "sub",
    "exp",
    "iat",
    "iss",
    "aud",
    "jti",
    "org_id",
    "org_slug",
    "roles",
    "acr",
    "auth_time",
    "cnf",
];

/// True when `caller` may learn about a token issued to `owner`: its own, or any with the
/// per-client introspection permission.
fn may_see(caller: &AuthenticatedClient, owner: &str) -> bool {
    caller.client.id == owner || caller.client.introspect
}

/// The §2.2 answer for an access token, `None` when it is not an active one visible to `caller`.
async fn access_token_answer(
    state: &AppState,
    caller: &AuthenticatedClient,
    token: &str,
) -> Result<Option<Map<String, Value>>, OAuthError> {
    // Any audience: a resource server introspects the tokens minted for it (RFC 8707), and `aud`
    // (copied below) tells it whether the token is meant for it (RFC 7662 §2.2).
    let Some(verified) = access_token::verify_issued(state, token) else {
        return Ok(None);
    };
    // A deleted client's tokens are inactive (`client delete`), as the bearer check treats them.
    if !may_see(caller, &verified.client_id)
        || !state.clients.exists(&verified.client_id).await?
        || store::is_access_token_denied(&state.db.pool, &verified.jti).await?
    {
        return Ok(None);
    }
    // A person's token is inactive once its user is deleted or disabled, as the userinfo endpoint
    // and the management API treat it (a `client_credentials` token's subject is the client).
    if verified.subject != verified.client_id {
        let user = crate::accounts::store::find_by_id(&state.db.pool, &verified.subject).await?;
        if user.is_none_or(|u| u.disabled) {
            return Ok(None);
        }
    }
    let mut body = Map::new();
    body.insert("active".into(), json!(true));
    for name in ACCESS_TOKEN_MEMBERS {
        if let Some(value) = verified.claims.get(name) {
            body.insert(name.into(), value.clone());
        }
    }
    // RFC 9449 §6.2: a bound token's type is DPoP.
    let token_type = if verified.claims.contains_key("cnf") {
        "DPoP"
    } else {
        "Bearer"
    };
    body.insert("token_type".into(), json!(token_type));
    Ok(Some(body))
}

/// The §2.2 answer for a refresh token, `None` when it is not an active one visible to `caller`.
async fn refresh_token_answer(
    state: &AppState,
    caller: &AuthenticatedClient,
    token: &str,
) -> Result<Option<Map<String, Value>>, OAuthError> {
    let Some(info) = revocation::find_refresh_token(&state.db.pool, &TokenHash::of(token)).await?
    else {
        return Ok(None);
    };
    if !info.is_active(state.clock.now()) || !may_see(caller, &info.client_id) {
        return Ok(None);
    }
    let mut body = Map::new();
    body.insert("active".into(), json!(true));
    body.insert("scope".into(), json!(info.scope));
    body.insert("client_id".into(), json!(info.client_id));
    body.insert("sub".into(), json!(info.user_id));
    body.insert("exp".into(), json!(info.expires_at));
    body.insert("iat".into(), json!(info.created_at));
    body.insert("iss".into(), json!(state.config.issuer));
    body.insert("token_type".into(), json!("refresh_token"));
    Ok(Some(body))
}

/// A JSON answer with `Cache-Control: no-store`.
fn answer(body: Map<String, Value>) -> Response {
    let mut response = Json(body).into_response();
    crate::web::headers::forbid_caching(&mut response);
    response
}

/// `POST /introspect` (RFC 7662 §2.1): `{"active":true,...}` for an active token the caller may
/// see, otherwise `{"active":false}`; 401 `invalid_client` for a public or unauthenticated caller.
pub async fn introspect(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let request = TokenRequest::parse(&state, &meta, &headers, body).await?;
    if request.client.client.public {
        return Err(OAuthError::invalid_client(
            "introspection requires a confidential client",
            false,
        ));
    }
    let caller = &request.client;
    let token = request.token.as_str();
    // The hint only decides which kind is looked up first (§2.1).
    let found = if request.hint == Some(TokenTypeHint::RefreshToken) {
        match refresh_token_answer(&state, caller, token).await? {
            Some(body) => Some(body),
            None => access_token_answer(&state, caller, token).await?,
        }
    } else {
        match access_token_answer(&state, caller, token).await? {
            Some(body) => Some(body),
            None => refresh_token_answer(&state, caller, token).await?,
        }
    };
    let body = found.unwrap_or_else(|| {
        let mut inactive = Map::new();
        inactive.insert("active".into(), json!(false));
        inactive
    });
    Ok(answer(body))
}
