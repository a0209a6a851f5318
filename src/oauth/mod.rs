//! OAuth 2.0: the authorization endpoint with its consent page, the token endpoint and its grants,
//! client authentication, PKCE, access tokens, and the protocol error type.

pub mod access_token;
pub mod authorize;
pub mod client_auth;
pub mod consent;
pub mod error;
pub mod grants;
pub mod params;
pub mod pkce;
pub mod request;
pub mod store;
pub mod token;

use axum::Router;
use axum::http::StatusCode;
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
        // Revocation, introspection and logout arrive with the token lifecycle; advertised already.
        .route(routes::REVOCATION, post(not_implemented))
        .route(routes::INTROSPECTION, post(not_implemented))
        .route(
            routes::END_SESSION,
            get(not_implemented).post(not_implemented),
        )
}

async fn not_implemented() -> StatusCode {
    StatusCode::NOT_IMPLEMENTED
}
