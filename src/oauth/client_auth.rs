//! Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, and `none` for public clients. Secrets are 256-bit
//! random values, checked by SHA-256 in constant time; after `client rotate-secret` with a grace
//! period the previous secret is accepted too until the grace ends ([`Client::previous_secret_hash_at`]). At the token endpoint failures are throttled
//! per client id and per address ([`authenticate_throttled`], [`crate::login::throttle`]).

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use serde_json::json;

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::clients::Client;
use crate::clients::registry::ClientRegistry;
use crate::crypto::tokens::{TokenHash, constant_time_eq};
use crate::login::throttle::{self, Key, Throttled};
use crate::web::request_meta::RequestMeta;

/// Longest presented client id kept in a `client_auth.throttled` event.
const MAX_AUDITED_CLIENT_ID: usize = 128;

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
/// when Basic was tried). Not throttled: endpoints call [`authenticate_throttled`].
pub async fn authenticate(
    registry: &ClientRegistry,
    now: i64,
    headers: &HeaderMap,
    params: &Params,
) -> Result<AuthenticatedClient, OAuthError> {
    check(registry, now, presented(headers, params)?).await
}

/// [`authenticate`], throttled (OWASP Authentication Cheat Sheet, login throttling): failures are
/// counted per client id (5, then a doubling delay) and per address (100 per 15 minutes); a failure
/// while either is blocked is answered 429 `invalid_client` with `Retry-After` (and a
/// `client_auth.throttled` audit event) instead of 401.
///
/// The secret is checked first, and a correct one is never refused nor costs a database round
/// trip: client secrets are 256-bit random values (one SHA-256 to check), which no rate of guessing
/// can find, so what throttling protects here is the server (the failure traffic and its writes),
/// and refusing a correct secret would only let anyone lock a client out by hammering its id (the
/// reason for device cookies at login). It also keeps the token endpoint's hot path free of reads.
pub async fn authenticate_throttled(
    state: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    params: &Params,
) -> Result<AuthenticatedClient, OAuthError> {
    let presented = presented(headers, params)?;
    let client_id = presented.client_id.clone();
    let now = state.clock.now();
    let refused = match check(&state.clients, now, presented).await {
        Err(e) if e.code == ErrorCode::InvalidClient => e,
        other => return other,
    };
    let mut keys = vec![Key::client(&client_id)];
    if let Some(address) = meta.limit_key() {
        keys.push(Key::client_address(&address));
    }
    let found = throttle::counters(&state.db.pool, &keys).await?;
    if let Some(throttled) = throttle::longest_wait(found.iter().map(|(k, c)| (*k, *c)), now) {
        record_throttled(state, meta, &client_id, throttled, now).await?;
        return Err(OAuthError::throttled(throttled.retry_after));
    }
    let mut tx = state.db.begin().await?;
    throttle::count_failure(&mut tx, &keys, now).await?;
    tx.commit().await?;
    Err(refused)
}

/// Records `client_auth.throttled` with the presented client id and the address.
async fn record_throttled(
    state: &AppState,
    meta: &RequestMeta,
    client_id: &str,
    throttled: Throttled,
    now: i64,
) -> Result<(), OAuthError> {
    let _gate = state.db.write_gate().await;
    let event = AuditEvent {
        org_id: None,
        actor: &Actor::anonymous(meta.clone()),
        action: action::CLIENT_AUTH_THROTTLED,
        target_type: None,
        target_id: None,
        details: json!({
            "client_id": client_id.chars().take(MAX_AUDITED_CLIENT_ID).collect::<String>(),
            "limit": throttled.scope.as_str(),
            "retry_after": throttled.retry_after,
        }),
    };
    audit::record(&state.db.pool, &event, now).await?;
    Ok(())
}

/// Checks presented credentials against the registry at `now`: the secret must match the current
/// one or, while its grace period lasts, the one the last rotation replaced.
async fn check(
    registry: &ClientRegistry,
    now: i64,
    presented: Presented,
) -> Result<AuthenticatedClient, OAuthError> {
    let basic = presented.basic;
    let failed = || OAuthError::invalid_client("client authentication failed", basic);
    let client = registry
        .find(&presented.client_id)
        .await?
        .ok_or_else(failed)?;
    let method = match (&client.secret_hash, presented.secret) {
        (Some(expected), Some(secret)) => {
            let actual = TokenHash::of(&secret);
            let matches = |hash: &TokenHash| {
                constant_time_eq(actual.as_str().as_bytes(), hash.as_str().as_bytes())
            };
            // Both comparisons always run (`|` does not short-circuit), so the time taken does
            // not tell which secret matched.
            let current = matches(expected);
            let previous = client.previous_secret_hash_at(now).is_some_and(matches);
            if !(current | previous) {
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
