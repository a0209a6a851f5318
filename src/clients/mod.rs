//! The OAuth client registry: relying parties and service clients, their redirect URIs, grant types,
//! scopes and secrets (256 random bits, shown once, stored as SHA-256: a slow hash would buy nothing
//! against a 256-bit secret and would cap the token endpoint, RFC 6749 §2.3.1).

pub mod api;
pub mod registry;
pub mod store;
pub mod validate;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::SigningAlg;
use crate::crypto::tokens::{SecretToken, TokenHash, new_id, random_token};
use crate::db::Database;
use crate::error::{AppError, Result};

/// Scopes a client may request when none are given at creation.
pub const DEFAULT_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// An OAuth 2.0 grant type a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.1, with PKCE (RFC 7636).
    AuthorizationCode,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 6749 §4.4.
    ClientCredentials,
}

impl GrantType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<GrantType> {
        [
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
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
}

/// Registers a client after validating everything; returns it with its secret (confidential clients
/// only), which is never stored or shown again.
pub async fn create(
    db: &Database,
    clock: &Clock,
    new: NewClient,
) -> Result<(Client, Option<SecretToken>)> {
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
    let secret = (!new.public).then(random_token);
    let client = Client {
        id: new_id(),
        secret_hash: secret.as_ref().map(SecretToken::hash),
        name: name.to_owned(),
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        scopes,
        public: new.public,
        first_party: new.first_party,
        require_org: new.require_org,
        id_token_alg: new.id_token_alg,
        allow_no_pkce: new.allow_no_pkce,
        introspect: new.introspect,
    };
    store::insert(&db.pool, &client, clock.now()).await?;
    Ok((client, secret))
}
