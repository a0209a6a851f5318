//! Managing registered clients, one implementation behind `latchkey client list|show|update|
//! rotate-secret|delete` and the operator API `/api/v1/clients`: every change is one transaction
//! with its audit event (`client.updated`, `client.secret_rotated`, `client.deleted`; never a
//! secret or its hash).
//!
//! Secret rotation keeps the old secret's hash, accepted at client authentication until the end of
//! a grace period the operator names (at most [`MAX_GRACE_SECONDS`]), so a relying party can
//! deploy its new secret without an outage; a grace of 0 refuses the old secret at once. Running
//! servers see every change within [`super::registry::CACHE_TTL`].

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::store::{self, Removed};
use super::{Client, GrantType, NewClient, Settings, validate_settings};
use crate::audit::{self, Actor, AuditEvent, action};
use crate::config::SigningAlg;
use crate::crypto::tokens::{SecretToken, random_token};
use crate::db::{Database, Tx};
use crate::error::{AppError, Result};

/// The audit target type of client events.
pub const TARGET_TYPE: &str = "client";

/// The longest grace period of a rotated secret: 30 days, enough for any deployment cycle while
/// bounding how long a leaked old secret stays useful.
pub const MAX_GRACE_SECONDS: i64 = 30 * 24 * 60 * 60;

/// Problem type of an unknown client id (404).
pub const CLIENT_NOT_FOUND: &str = "client-not-found";
/// Problem type of settings that break a registration rule (400).
pub const INVALID_CLIENT_METADATA: &str = "invalid-client-metadata";
/// Problem type of a grace period out of range (400).
pub const INVALID_GRACE: &str = "invalid-grace";
/// Problem type of rotating the secret of a public client, which has none (409).
pub const PUBLIC_CLIENT: &str = "public-client";

/// A client as operators see it (`client show`, `GET /api/v1/clients/{client_id}`): every setting,
/// never a secret or its hash.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    /// The client's id.
    pub client_id: String,
    /// Display name, shown on the consent page.
    pub name: String,
    /// Redirect URIs, matched exactly (loopback `http` on any port).
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Grant types the client may use.
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    /// A public client has no secret and must use PKCE; fixed at registration.
    pub public: bool,
    /// Skips the consent screen.
    pub first_party: bool,
    /// Only people in an organization may sign in.
    pub require_org: bool,
    /// ID-token signing algorithm of this client (`RS256`, `ES256`, `EdDSA`), or null for the
    /// server's default.
    #[schema(example = "ES256")]
    pub id_token_alg: Option<String>,
    /// May send authorization requests without PKCE (confidential clients only).
    pub allow_no_pkce: bool,
    /// May introspect tokens issued to other clients.
    pub introspect: bool,
    /// Where logout tokens are posted (Back-Channel Logout 1.0), or null.
    pub backchannel_logout_uri: Option<String>,
    /// Resource servers (RFC 8707) the client may ask tokens for.
    pub resources: Vec<String>,
    /// Only pushed authorization requests (RFC 9126) are accepted.
    pub require_par: bool,
    /// Unix seconds of registration.
    pub created_at: i64,
    /// Unix seconds of the last change (settings or secret).
    pub updated_at: i64,
    /// Unix seconds until which the secret replaced by the last rotation is still accepted; null
    /// when there is none (no rotation, a grace of 0, or the grace is over).
    pub previous_secret_expires_at: Option<i64>,
}

impl ClientView {
    /// The view of `client` at `now`.
    pub fn of(client: &Client, now: i64) -> ClientView {
        ClientView {
            client_id: client.id.clone(),
            name: client.name.clone(),
            redirect_uris: client.redirect_uris.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
            grant_types: client.grant_types.clone(),
            scopes: client.scopes.clone(),
            public: client.public,
            first_party: client.first_party,
            require_org: client.require_org,
            id_token_alg: client.id_token_alg.map(|alg| alg.as_str().to_owned()),
            allow_no_pkce: client.allow_no_pkce,
            introspect: client.introspect,
            backchannel_logout_uri: client.backchannel_logout_uri.clone(),
            resources: client.resources.clone(),
            require_par: client.require_par,
            created_at: client.created_at,
            updated_at: client.updated_at,
            previous_secret_expires_at: client
                .previous_secret_hash_at(now)
                .and(client.previous_secret_expires_at),
        }
    }
}

/// A new secret, shown once (`client rotate-secret`, `POST …/rotate-secret`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    /// The client's id.
    pub client_id: String,
    /// The new secret: 256 random bits, base64url. Shown only here; store it now.
    pub client_secret: String,
    /// Unix seconds until which the old secret is still accepted; null for a grace of 0.
    pub previous_secret_expires_at: Option<i64>,
}

/// What to change in a client; `None` keeps the stored value. Lists replace the whole list.
#[derive(Debug, Default, Clone)]
pub struct ClientChange {
    /// Display name.
    pub name: Option<String>,
    /// Redirect URIs.
    pub redirect_uris: Option<Vec<String>>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Grant types (wire names).
    pub grant_types: Option<Vec<String>>,
    /// Scopes.
    pub scopes: Option<Vec<String>>,
    /// Skips consent.
    pub first_party: Option<bool>,
    /// Requires an organization at sign-in.
    pub require_org: Option<bool>,
    /// ID-token signing algorithm.
    pub id_token_alg: Option<SigningAlg>,
    /// Authorization requests without PKCE accepted.
    pub allow_no_pkce: Option<bool>,
    /// May introspect other clients' tokens.
    pub introspect: Option<bool>,
    /// Back-channel logout URI; an empty string removes it.
    pub backchannel_logout_uri: Option<String>,
    /// Resource URIs.
    pub resources: Option<Vec<String>>,
    /// Only pushed authorization requests.
    pub require_par: Option<bool>,
}

impl ClientChange {
    /// True when nothing is to change.
    pub fn is_empty(&self) -> bool {
        let ClientChange {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            scopes,
            first_party,
            require_org,
            id_token_alg,
            allow_no_pkce,
            introspect,
            backchannel_logout_uri,
            resources,
            require_par,
        } = self;
        backchannel_logout_uri.is_none()
            && resources.is_none()
            && require_par.is_none()
            && name.is_none()
            && redirect_uris.is_none()
            && post_logout_redirect_uris.is_none()
            && grant_types.is_none()
            && scopes.is_none()
            && first_party.is_none()
            && require_org.is_none()
            && id_token_alg.is_none()
            && allow_no_pkce.is_none()
            && introspect.is_none()
    }
}

/// 404 `client-not-found`.
pub fn not_found(id: &str) -> AppError {
    AppError::problem(
        StatusCode::NOT_FOUND,
        CLIENT_NOT_FOUND,
        format!("no client with id {id:?}"),
    )
}

/// Clients oldest first, strictly after the keyset position `after`; at most `limit`.
pub async fn list(db: &Database, after: Option<(i64, &str)>, limit: i64) -> Result<Vec<Client>> {
    Ok(store::list(&db.pool, after, limit).await?)
}

/// The client with `id`, or 404 `client-not-found`.
pub async fn show(db: &Database, id: &str) -> Result<Client> {
    store::find(&db.pool, id)
        .await?
        .ok_or_else(|| not_found(id))
}

async fn find_in(tx: &mut Tx, id: &str) -> Result<Client> {
    store::find(&mut **tx, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// Applies `change` to the client `id` after checking the result by the rules of registration
/// ([`super::create`]); a public client stays public and a confidential one confidential. Records
/// `client.updated` with each changed field's old and new value; a change that changes nothing
/// records nothing. Returns the client as stored.
pub async fn update(
    db: &Database,
    now: i64,
    id: &str,
    change: ClientChange,
    actor: &Actor,
) -> Result<Client> {
    let mut tx = db.begin().await?;
    let after = update_in(&mut tx, now, id, change, actor).await?;
    tx.commit().await?;
    Ok(after)
}

/// [`update`] inside the caller's transaction (dynamic registration's RFC 7592 update stores its
/// own record of the client with it).
pub async fn update_in(
    tx: &mut Tx,
    now: i64,
    id: &str,
    change: ClientChange,
    actor: &Actor,
) -> Result<Client> {
    let before = find_in(tx, id).await?;
    let wanted = NewClient {
        name: change.name.unwrap_or_else(|| before.name.clone()),
        redirect_uris: change
            .redirect_uris
            .unwrap_or_else(|| before.redirect_uris.clone()),
        post_logout_redirect_uris: change
            .post_logout_redirect_uris
            .unwrap_or_else(|| before.post_logout_redirect_uris.clone()),
        grant_types: change.grant_types.unwrap_or_else(|| {
            before
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect()
        }),
        scopes: change.scopes.unwrap_or_else(|| before.scopes.clone()),
        public: before.public,
        first_party: change.first_party.unwrap_or(before.first_party),
        require_org: change.require_org.unwrap_or(before.require_org),
        id_token_alg: change.id_token_alg.or(before.id_token_alg),
        allow_no_pkce: change.allow_no_pkce.unwrap_or(before.allow_no_pkce),
        introspect: change.introspect.unwrap_or(before.introspect),
        backchannel_logout_uri: change
            .backchannel_logout_uri
            .or_else(|| before.backchannel_logout_uri.clone()),
        resources: change.resources.unwrap_or_else(|| before.resources.clone()),
        require_par: change.require_par.unwrap_or(before.require_par),
    };
    let Settings {
        name,
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        scopes,
        first_party,
        require_org,
        id_token_alg,
        allow_no_pkce,
        introspect,
        backchannel_logout_uri,
        resources,
        require_par,
    } = validate_settings(&wanted)?;
    let after = Client {
        name,
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        scopes,
        first_party,
        require_org,
        id_token_alg,
        allow_no_pkce,
        introspect,
        backchannel_logout_uri,
        resources,
        require_par,
        updated_at: now,
        ..before.clone()
    };
    let changes = changed_fields(&ClientView::of(&before, now), &ClientView::of(&after, now));
    if changes.is_empty() {
        return Ok(before);
    }
    store::update_settings(&mut **tx, &after).await?;
    record(
        tx,
        actor,
        action::CLIENT_UPDATED,
        id,
        json!({"changes": changes}),
        now,
    )
    .await?;
    Ok(after)
}

/// The fields that differ between two views, each as `{"old", "new"}` (`updated_at` aside).
fn changed_fields(before: &ClientView, after: &ClientView) -> Map<String, Value> {
    let (Value::Object(old), Value::Object(new)) = (json!(before), json!(after)) else {
        return Map::new();
    };
    new.into_iter()
        .filter(|(field, value)| field != "updated_at" && old.get(field) != Some(value))
        .map(|(field, value)| {
            let was = old.get(&field).cloned().unwrap_or(Value::Null);
            (field, json!({"old": was, "new": value}))
        })
        .collect()
}

/// Gives the confidential client `id` a new secret (256 random bits, stored as SHA-256 like at
/// registration). The old secret stays valid for `grace_seconds` (0 to [`MAX_GRACE_SECONDS`];
/// 0 refuses it at once); a secret kept from an earlier rotation is dropped. Records
/// `client.secret_rotated`. 400 `invalid-grace`, 404 `client-not-found`, 409 `public-client`.
pub async fn rotate_secret(
    db: &Database,
    now: i64,
    id: &str,
    grace_seconds: i64,
    actor: &Actor,
) -> Result<(Client, SecretToken)> {
    if !(0..=MAX_GRACE_SECONDS).contains(&grace_seconds) {
        return Err(AppError::problem(
            StatusCode::BAD_REQUEST,
            INVALID_GRACE,
            format!("the grace period must be between 0 and {MAX_GRACE_SECONDS} seconds (30 days)"),
        ));
    }
    let mut tx = db.begin().await?;
    let before = find_in(&mut tx, id).await?;
    let Some(old_hash) = before.secret_hash.clone().filter(|_| !before.public) else {
        return Err(AppError::problem(
            StatusCode::CONFLICT,
            PUBLIC_CLIENT,
            "a public client has no secret to rotate",
        ));
    };
    let secret = random_token();
    let previous_expires_at = (grace_seconds > 0).then(|| now + grace_seconds);
    let previous = previous_expires_at.map(|at| (&old_hash, at));
    store::set_secrets(&mut *tx, id, &secret.hash(), previous, now).await?;
    record(
        &mut tx,
        actor,
        action::CLIENT_SECRET_ROTATED,
        id,
        json!({
            "grace_seconds": grace_seconds,
            "previous_secret_expires_at": previous_expires_at,
        }),
        now,
    )
    .await?;
    let after = find_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok((after, secret))
}

/// What a rotation shows, once.
pub fn rotated(client: &Client, secret: &SecretToken) -> RotatedSecret {
    RotatedSecret {
        client_id: client.id.clone(),
        client_secret: secret.expose().to_owned(),
        previous_secret_expires_at: client.previous_secret_expires_at,
    }
}

/// Deletes the client `id` with everything that names it (authorization codes, refresh-token
/// families, consents; see [`store::delete`]) and records `client.deleted`. Its access tokens are
/// refused from then on: bearer verification and introspection look the client up
/// ([`super::registry::ClientRegistry::exists`]). 404 `client-not-found`.
pub async fn delete(db: &Database, now: i64, id: &str, actor: &Actor) -> Result<Removed> {
    let mut tx = db.begin().await?;
    let before = find_in(&mut tx, id).await?;
    let removed = store::delete(&mut tx, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    record(
        &mut tx,
        actor,
        action::CLIENT_DELETED,
        id,
        json!({"name": before.name, "removed": removed}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(removed)
}

/// Records a client event (target: the client) inside the write's transaction.
pub(crate) async fn record(
    tx: &mut Tx,
    actor: &Actor,
    what: &'static str,
    id: &str,
    details: Value,
    now: i64,
) -> Result<()> {
    let event = AuditEvent {
        org_id: None,
        actor,
        action: what,
        target_type: Some(TARGET_TYPE),
        target_id: Some(id),
        details,
    };
    audit::record(&mut **tx, &event, now).await?;
    Ok(())
}
