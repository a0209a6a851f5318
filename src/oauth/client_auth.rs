//! Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, and `none` for public clients. Secrets are 256-bit
//! random values, checked by SHA-256 in constant time.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::error::OAuthError;
use super::params::Params;
use crate::clients::Client;
use crate::clients::registry::ClientRegistry;
use crate::crypto::tokens::{TokenHash, constant_time_eq};

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the body.
    ClientSecretPost,
    /// Public client: `client_id` only.
    None,
}

/// An authenticated client.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    /// The client.
    pub client: Arc<Client>,
    /// How it proved itself.
    pub method: AuthMethod,
}

/// Credentials as presented, before checking.
struct Presented {
    client_id: String,
    secret: Option<String>,
    basic: bool,
}

fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(value) = authorization {
        let Some(encoded) = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))
        else {
            return Err(OAuthError::invalid_client(
                "unsupported authorization scheme",
                true,
            ));
        };
        if params.has("client_secret") {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        let bad = || OAuthError::invalid_client("malformed Basic credentials", true);
        let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = text.split_once(':').ok_or_else(bad)?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        let decode = |s: &str| -> String {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let client_id = decode(id);
        if let Some(body_id) = params.get("client_id")
            && body_id != client_id
        {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the Basic credentials",
            ));
        }
        return Ok(Presented {
            client_id,
            secret: Some(decode(secret)),
            basic: true,
        });
    }
    let client_id = params
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_client("client authentication is required", false))?;
    Ok(Presented {
        client_id: client_id.to_owned(),
        secret: params.get("client_secret").map(str::to_owned),
        basic: false,
    })
}

/// Authenticates the client of a request, or answers `invalid_client` (401, with a Basic challenge
/// when Basic was tried).
pub async fn authenticate(
    registry: &ClientRegistry,
    headers: &HeaderMap,
    params: &Params,
) -> Result<AuthenticatedClient, OAuthError> {
    let presented = presented(headers, params)?;
    let basic = presented.basic;
    let failed = || OAuthError::invalid_client("client authentication failed", basic);
    let client = registry
        .find(&presented.client_id)
        .await?
        .ok_or_else(failed)?;
    let method = match (&client.secret_hash, presented.secret) {
        (Some(expected), Some(secret)) => {
            let actual = TokenHash::of(&secret);
            if !constant_time_eq(actual.as_str().as_bytes(), expected.as_str().as_bytes()) {
                return Err(failed());
            }
            if basic {
                AuthMethod::ClientSecretBasic
            } else {
                AuthMethod::ClientSecretPost
            }
        }
        (None, None) if client.public => AuthMethod::None,
        _ => return Err(failed()),
    };
    Ok(AuthenticatedClient { client, method })
}
