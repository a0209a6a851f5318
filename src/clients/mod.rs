//! The OAuth client registry: relying parties and service clients, their redirect URIs, grant types,
//! scopes and secrets (256 random bits, shown once, stored as SHA-256: a slow hash would buy nothing
//! against a 256-bit secret and would cap the token endpoint, RFC 6749 §2.3.1).

pub mod api;
pub mod manage;
pub mod registry;
pub mod store;
pub mod validate;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{Actor, action};
use crate::clock::Clock;
use crate::config::SigningAlg;
use crate::crypto::tokens::{SecretToken, TokenHash, new_id, random_token};
use crate::db::{Database, Tx};
use crate::error::{AppError, Result};

/// Scopes a client may request when none are given at creation.
pub const DEFAULT_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The grant type URN of the device authorization grant (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// An OAuth 2.0 grant type a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.1, with PKCE (RFC 7636).
    AuthorizationCode,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 8628 §3.4: the device authorization grant (command-line tools, TVs).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

impl GrantType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::DeviceCode => DEVICE_CODE_GRANT,
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<GrantType> {
        [
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
            GrantType::DeviceCode,
        ]
        .into_iter()
        .find(|g| g.as_str() == s)
    }
}

/// A registered client.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    /// Random id, the `client_id`.
    pub id: String,
    /// SHA-256 hex of the secret; `None` for public clients.
    #[serde(skip)]
    pub secret_hash: Option<TokenHash>,
    /// Display name shown on the consent page.
    pub name: String,
    /// Registered redirect URIs, matched exactly (RFC 9700 §4.1.3) except for the port of a loopback
    /// IP literal (RFC 8252 §7.3), see [`validate::redirect_uri_matches`].
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs (RP-Initiated Logout 1.0 §3).
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    /// A public client has no secret and must use PKCE.
    pub public: bool,
    /// First-party clients skip the consent screen.
    pub first_party: bool,
    /// Only users who are in an organization may sign in.
    pub require_org: bool,
    /// ID-token signing alg registered for this client, if any.
    pub id_token_alg: Option<SigningAlg>,
    /// May send an authorization request without PKCE (`client create --allow-no-pkce`; only
    /// confidential clients). RFC 9700 §2.1.1: PKCE is required of every client unless it opted out.
    pub allow_no_pkce: bool,
    /// May introspect tokens issued to other clients (`client create --introspect`, RFC 7662 §4).
    pub introspect: bool,
    /// SHA-256 hex of the secret replaced by the last rotation, accepted until
    /// [`Client::previous_secret_expires_at`] (the grace period of `client rotate-secret`).
    #[serde(skip)]
    pub previous_secret_hash: Option<TokenHash>,
    /// Unix seconds until which the previous secret is accepted; `None` without one.
    pub previous_secret_expires_at: Option<i64>,
    /// Where logout tokens are posted (OpenID Connect Back-Channel Logout 1.0 §2.2), if anywhere.
    pub backchannel_logout_uri: Option<String>,
    /// Resource servers (absolute URIs) this client may name with `resource` (RFC 8707 §2); the
    /// access token's `aud` is the one it names.
    pub resources: Vec<String>,
    /// Authorization requests must come through a pushed request (RFC 9126 §6:
    /// `require_pushed_authorization_requests`).
    pub require_par: bool,
    /// Unix seconds of registration.
    pub created_at: i64,
    /// Unix seconds of the last change (settings or secret).
    pub updated_at: i64,
}

impl Client {
    /// The previous secret's hash while its grace period lasts at `now` (strictly before its end).
    pub fn previous_secret_hash_at(&self, now: i64) -> Option<&TokenHash> {
        match (&self.previous_secret_hash, self.previous_secret_expires_at) {
            (Some(hash), Some(expires_at)) if expires_at > now => Some(hash),
            _ => None,
        }
    }
}

/// What an operator asks for when registering a client.
#[derive(Debug, Default)]
pub struct NewClient {
    /// Display name.
    pub name: String,
    /// Redirect URIs, validated.
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs, validated.
    pub post_logout_redirect_uris: Vec<String>,
    /// Grant types; empty means `authorization_code` and `refresh_token`.
    pub grant_types: Vec<String>,
    /// Scopes; empty means [`DEFAULT_SCOPES`].
    pub scopes: Vec<String>,
    /// No secret; PKCE required.
    pub public: bool,
    /// Skips consent.
    pub first_party: bool,
    /// Requires an organization at login.
    pub require_org: bool,
    /// ID-token alg.
    pub id_token_alg: Option<SigningAlg>,
    /// Authorization requests without PKCE are accepted (confidential clients only).
    pub allow_no_pkce: bool,
    /// Tokens of other clients may be introspected.
    pub introspect: bool,
    /// Back-channel logout URI, validated.
    pub backchannel_logout_uri: Option<String>,
    /// Resource URIs the client may ask tokens for, validated.
    pub resources: Vec<String>,
    /// Only pushed authorization requests are accepted.
    pub require_par: bool,
}

/// A client's settings after validation: what [`create`] stores and what
/// [`manage::update`] stores, checked by the same rules.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    pub(crate) name: String,
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) post_logout_redirect_uris: Vec<String>,
    pub(crate) grant_types: Vec<GrantType>,
    pub(crate) scopes: Vec<String>,
    pub(crate) first_party: bool,
    pub(crate) require_org: bool,
    pub(crate) id_token_alg: Option<SigningAlg>,
    pub(crate) allow_no_pkce: bool,
    pub(crate) introspect: bool,
    pub(crate) backchannel_logout_uri: Option<String>,
    pub(crate) resources: Vec<String>,
    pub(crate) require_par: bool,
}

/// Validates what an operator asks for (registration and changes alike); a broken rule is 400
/// `invalid-client-metadata` (the name RFC 7591 §3.2.2 gives the error) with the rule in the detail.
pub(crate) fn validate_settings(new: &NewClient) -> Result<Settings> {
    check_settings(new).map_err(|e| match e {
        AppError::Invalid(detail) => AppError::problem(
            axum::http::StatusCode::BAD_REQUEST,
            manage::INVALID_CLIENT_METADATA,
            detail,
        ),
        other => other,
    })
}

fn check_settings(new: &NewClient) -> Result<Settings> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::invalid("client name must be 1 to 100 characters"));
    }
    let redirect_uris = validate::uris(&new.redirect_uris, "redirect URI")?;
    let post_logout_redirect_uris =
        validate::uris(&new.post_logout_redirect_uris, "post-logout redirect URI")?;
    let grant_types = validate::grant_types(&new.grant_types)?;
    if new.public && new.introspect {
        return Err(AppError::invalid(
            "--introspect is only for confidential clients: introspection requires client authentication",
        ));
    }
    if new.public && new.allow_no_pkce {
        return Err(AppError::invalid(
            "--allow-no-pkce is only for confidential clients: a public client must use PKCE",
        ));
    }
    if new.public && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(AppError::invalid(
            "a public client cannot use the client_credentials grant",
        ));
    }
    let scopes = if new.scopes.is_empty() {
        DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        validate::scopes(&new.scopes)?
    };
    let backchannel_logout_uri = match new.backchannel_logout_uri.as_deref() {
        None | Some("") => None,
        Some(uri) => Some(validate::backchannel_logout_uri(uri)?),
    };
    let resources = validate::resources(&new.resources)?;
    Ok(Settings {
        backchannel_logout_uri,
        resources,
        require_par: new.require_par,
        name: name.to_owned(),
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        scopes,
        first_party: new.first_party,
        require_org: new.require_org,
        id_token_alg: new.id_token_alg,
        allow_no_pkce: new.allow_no_pkce,
        introspect: new.introspect,
    })
}

/// Registers a client after validating everything and records `client.created`; returns it with
/// its secret (confidential clients only), which is never stored or shown again.
pub async fn create(
    db: &Database,
    clock: &Clock,
    new: NewClient,
    actor: &Actor,
) -> Result<(Client, Option<SecretToken>)> {
    let mut tx = db.begin().await?;
    let created = create_in(&mut tx, clock.now(), new, actor).await?;
    tx.commit().await?;
    Ok(created)
}

/// [`create`] inside the caller's transaction, for registrations that store more with the client
/// (dynamic registration keeps its registration access token in the same transaction).
pub async fn create_in(
    tx: &mut Tx,
    now: i64,
    new: NewClient,
    actor: &Actor,
) -> Result<(Client, Option<SecretToken>)> {
    let settings = validate_settings(&new)?;
    let secret = (!new.public).then(random_token);
    let client = Client {
        id: new_id(),
        secret_hash: secret.as_ref().map(SecretToken::hash),
        name: settings.name,
        redirect_uris: settings.redirect_uris,
        post_logout_redirect_uris: settings.post_logout_redirect_uris,
        grant_types: settings.grant_types,
        scopes: settings.scopes,
        public: new.public,
        first_party: settings.first_party,
        require_org: settings.require_org,
        id_token_alg: settings.id_token_alg,
        allow_no_pkce: settings.allow_no_pkce,
        introspect: settings.introspect,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        backchannel_logout_uri: settings.backchannel_logout_uri,
        resources: settings.resources,
        require_par: settings.require_par,
        created_at: now,
        updated_at: now,
    };
    store::insert(&mut **tx, &client, now).await?;
    manage::record(
        tx,
        actor,
        action::CLIENT_CREATED,
        &client.id,
        json!({
            "name": client.name,
            "public": client.public,
            "grant_types": client.grant_types,
        }),
        now,
    )
    .await?;
    Ok((client, secret))
}
