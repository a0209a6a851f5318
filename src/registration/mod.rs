//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592), behind an
//! initial access token that operators issue with `latchkey client registration-token`; off unless
//! `LATCHKEY_DYNAMIC_REGISTRATION=initial-access-token`.
//!
//! An initial access token (256 random bits, stored as SHA-256) registers any number of clients
//! until it expires (default [`DEFAULT_INITIAL_TOKEN_LIFETIME`]): an operator hands one to a team or
//! a deployment pipeline rather than to each client. Each registered client gets its own
//! registration access token (stored as SHA-256) for `/register/{client_id}`; clients an operator
//! registered have none, so RFC 7592 cannot touch them.

pub mod endpoint;
pub mod metadata;
pub mod store;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde_json::json;

use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::clock::Clock;
use crate::crypto::tokens::{SecretToken, new_id, random_token};
use crate::db::Database;
use crate::error::{AppError, Result};
use crate::routes;

/// How long an initial access token registers clients when `--expires-in` is not given.
pub const DEFAULT_INITIAL_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest `--expires-in`: a token that outlives a year is a standing credential, which an
/// operator should rather replace.
pub const MAX_INITIAL_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The audit target type of an initial access token.
pub const TOKEN_TARGET_TYPE: &str = "registration_token";

/// Machine-facing routes: `/register` and `/register/{client_id}` (only when switched on).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(routes::REGISTRATION, post(endpoint::register))
        .route(
            routes::REGISTRATION_CLIENT,
            get(endpoint::read)
                .put(endpoint::replace)
                .delete(endpoint::remove),
        )
}

/// Issues an initial access token valid for `lifetime` (1 second to
/// [`MAX_INITIAL_TOKEN_LIFETIME`]) and records `client.registration_token_created` (its id and
/// expiry, never the token). Returns the token, shown once.
pub async fn issue_initial_token(
    db: &Database,
    clock: &Clock,
    lifetime: Duration,
    actor: &Actor,
) -> Result<SecretToken> {
    if lifetime.is_zero() || lifetime > MAX_INITIAL_TOKEN_LIFETIME {
        return Err(AppError::invalid(
            "the lifetime of a registration token must be between 1 second and 365 days",
        ));
    }
    let token = random_token();
    let id = new_id();
    let now = clock.now();
    let expires_at = now.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
    let mut tx = db.begin().await?;
    store::insert_initial_token(&mut *tx, &id, &token.hash(), now, expires_at).await?;
    let event = AuditEvent {
        org_id: None,
        actor,
        action: action::CLIENT_REGISTRATION_TOKEN_CREATED,
        target_type: Some(TOKEN_TARGET_TYPE),
        target_id: Some(&id),
        details: json!({"expires_at": expires_at}),
    };
    audit::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(token)
}
