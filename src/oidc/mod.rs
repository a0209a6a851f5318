//! OpenID Connect: discovery, the JWKS, ID tokens, the claims each scope releases, userinfo,
//! RP-initiated logout, and back-channel logout.

pub mod backchannel;
pub mod claims;
pub mod discovery;
pub mod end_session;
pub mod id_token;
pub mod jwks;
pub mod userinfo;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;
use crate::routes;

/// Routes of the OIDC feature.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            routes::OPENID_CONFIGURATION,
            get(discovery::openid_configuration),
        )
        .route(
            routes::OAUTH_AUTHORIZATION_SERVER,
            get(discovery::oauth_authorization_server),
        )
        .route(routes::JWKS, get(jwks::jwks))
        .route(
            routes::USERINFO,
            get(userinfo::userinfo_get).post(userinfo::userinfo_post),
        )
}

/// Browser-facing routes of the OIDC feature (they need the session layer): RP-initiated logout.
pub fn browser_router() -> Router<AppState> {
    Router::new().route(
        routes::END_SESSION,
        get(end_session::logout_get).post(end_session::logout_post),
    )
}
