//! Sign-in through a connection: `GET /federation/start` sends the browser to the upstream's
//! authorization endpoint (code flow, PKCE S256, `state`, `nonce`; the verifier and both values kept in
//! the server-side session), and `GET /federation/callback` redeems the code, validates the ID token
//! (issuer, audience, expiry, nonce, signature by the upstream's JWKS, algorithm allow-list), then
//! finds the linked account, links or provisions one, and ends in
//! [`crate::login::completion::finish_sign_in`] with `amr` `["fed"]`.

use axum::Router;

use crate::app::AppState;

/// The federation start and callback routes.
pub fn router() -> Router<AppState> {
    Router::new()
}
