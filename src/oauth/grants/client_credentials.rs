//! The client credentials grant (RFC 6749 §4.4): a confidential client gets an access token for
//! itself (`sub` is the client id). No ID token, no refresh token (§4.4.3).

use crate::app::AppState;
use crate::oauth::access_token::{self, AccessGrant};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::grants::TokenRequest;
use crate::oauth::resource;
use crate::oauth::token::TokenResponse;

/// Scopes that only make sense for a user and are never granted to a client acting for itself.
const USER_ONLY_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Issues an access token to an authenticated confidential client.
pub fn exchange(state: &AppState, req: &TokenRequest<'_>) -> Result<TokenResponse, OAuthError> {
    let (client, params) = (req.client, req.params);
    if client.client.public {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    }
    let allowed = client
        .client
        .scopes
        .iter()
        .filter(|s| !USER_ONLY_SCOPES.contains(&s.as_str()));
    let scope = match params.get("scope") {
        // No scope asked: everything the client may have (RFC 6749 §3.3 lets us pick a default).
        None => allowed.map(String::as_str).collect::<Vec<_>>().join(" "),
        Some(requested) => {
            let mut granted: Vec<&str> = Vec::new();
            for s in requested.split(' ').filter(|s| !s.is_empty()) {
                if USER_ONLY_SCOPES.contains(&s) || !client.client.scopes.iter().any(|a| a == s) {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidScope,
                        format!("scope {s} is not allowed for this client"),
                    ));
                }
                if !granted.contains(&s) {
                    granted.push(s);
                }
            }
            granted.join(" ")
        }
    };
    // RFC 8707 §2.2: any resource the client registered; its `aud`.
    let audience = resource::for_token(&client.client, params, None)?;
    let grant = AccessGrant {
        subject: &client.client.id,
        client_id: &client.client.id,
        scope: &scope,
        auth_time: None,
        acr: None,
        sid: None,
        org: None,
        audience,
        jkt: req.dpop_jkt,
    };
    let token = access_token::mint(state, &grant)?;
    Ok(TokenResponse {
        access_token: token.token,
        token_type: req.token_type(),
        expires_in: token.expires_in,
        scope,
        id_token: None,
        refresh_token: None,
    })
}
