//! OAuth 2.0: the authorization endpoint with its consent page, the token endpoint and its grants,
//! client authentication, PKCE, access tokens, revocation (RFC 7009), introspection (RFC 7662), and
//! the protocol error type.

pub mod access_token;
pub mod authorize;
pub mod client_auth;
pub mod consent;
pub mod error;
pub mod grants;
pub mod introspection;
pub mod par;
pub mod params;
pub mod pkce;
pub mod refresh;
pub mod refresh_store;
pub mod request;
pub mod resource;
pub mod revocation;
pub mod store;
pub mod token;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;
use crate::routes;

/// Browser-facing routes (they need the session layer): authorization and consent.
pub fn authorize_router() -> Router<AppState> {
    Router::new()
        .route(
            routes::AUTHORIZE,
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(
            routes::AUTHORIZE_CONTINUE,
            get(authorize::authorize_continue),
        )
        .route(
            routes::CONSENT,
            get(consent::consent_page).post(consent::consent_submit),
        )
}

/// Machine-facing routes: token, revocation, introspection (no session).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(routes::TOKEN, post(token::token))
        .route(routes::REVOCATION, post(revocation::revoke))
        .route(routes::INTROSPECTION, post(introspection::introspect))
        .merge(par::router())
}
