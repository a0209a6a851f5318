//! `latchkey client …`: the OAuth client registry from the command line. Each command prints one
//! JSON object; a secret only when it is created or rotated, once.

use clap::{Args, Subcommand};
use serde_json::json;

use super::print;
use crate::audit::Actor;
use crate::clients;
use crate::clients::manage::{self, ClientChange, ClientView};
use crate::clock::Clock;
use crate::config::SigningAlg;
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::key_store;
use crate::db::Database;
use crate::error::{AppError, Result};

/// `latchkey client ...`
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and (for confidential clients) its secret, once.
    Create(CreateClientArgs),
    /// List clients, oldest first: `{"clients": [...]}` (never a secret).
    List,
    /// Show one client (never its secret).
    Show {
        /// The client's id.
        #[arg(long)]
        client_id: String,
    },
    /// Change a client's settings; what is not given stays as it is.
    Update(UpdateClientArgs),
    /// Give a confidential client a new secret, printed once; the old one keeps working for
    /// `--grace` (default: not at all).
    RotateSecret {
        /// The client's id.
        #[arg(long)]
        client_id: String,
        /// How long the old secret stays valid (humantime: `0s`, `1h`, `7d`; at most `30d`).
        #[arg(long, default_value = "0s")]
        grace: String,
    },
    /// Delete a client with its codes, refresh tokens and consents.
    Delete {
        /// The client's id.
        #[arg(long)]
        client_id: String,
    },
    /// Issue an initial access token for dynamic client registration (RFC 7591, with
    /// `LATCHKEY_DYNAMIC_REGISTRATION=initial-access-token`); prints `{"token": …}` once. It
    /// registers any number of clients until it expires.
    RegistrationToken {
        /// How long the token may register clients (humantime: `1h`, `7d`; at most `365d`; default
        /// 24 hours).
        #[arg(long)]
        expires_in: Option<String>,
    },
}

/// Arguments of `client create`.
#[derive(Debug, Args)]
pub struct CreateClientArgs {
    /// Display name.
    #[arg(long)]
    name: String,
    /// Allowed redirect URI (exact match); repeatable.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Allowed post-logout redirect URI; repeatable.
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Public client (no secret, PKCE required).
    #[arg(long)]
    public: bool,
    /// Grant type; repeatable (default: authorization_code and refresh_token).
    #[arg(long = "grant-type")]
    grant_types: Vec<String>,
    /// Scope the client may request; repeatable (default: openid profile email offline_access).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Skip the consent screen.
    #[arg(long)]
    first_party: bool,
    /// Only accept users who are in an organization.
    #[arg(long)]
    require_org: bool,
    /// ID-token signing algorithm: RS256, ES256 or EdDSA.
    #[arg(long)]
    id_token_alg: Option<SigningAlg>,
    /// Accept authorization requests without PKCE (confidential clients only; PKCE is required
    /// otherwise, RFC 9700 §2.1.1).
    #[arg(long)]
    allow_no_pkce: bool,
    /// Allow this client to introspect tokens issued to other clients (RFC 7662 §4).
    #[arg(long)]
    introspect: bool,
    /// Where logout tokens are posted when a session of this client ends (OpenID Connect
    /// Back-Channel Logout 1.0); https, or http on a loopback IP literal.
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// A resource server (absolute URI) the client may ask tokens for with `resource` (RFC 8707);
    /// repeatable.
    #[arg(long = "resource")]
    resources: Vec<String>,
    /// Accept only pushed authorization requests (RFC 9126).
    #[arg(long)]
    require_par: bool,
}

/// Arguments of `client update`: every option replaces the stored value; list options (given at
/// least once) replace the whole list.
#[derive(Debug, Args)]
pub struct UpdateClientArgs {
    /// The client's id.
    #[arg(long)]
    pub client_id: String,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Allowed redirect URI (exact match); repeatable; replaces the list.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Allowed post-logout redirect URI; repeatable; replaces the list.
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Grant type; repeatable; replaces the list.
    #[arg(long = "grant-type")]
    pub grant_types: Vec<String>,
    /// Scope the client may request; repeatable; replaces the list.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Skip the consent screen (`true` or `false`).
    #[arg(long)]
    pub first_party: Option<bool>,
    /// Only accept users who are in an organization (`true` or `false`).
    #[arg(long)]
    pub require_org: Option<bool>,
    /// ID-token signing algorithm: RS256, ES256 or EdDSA.
    #[arg(long)]
    pub id_token_alg: Option<SigningAlg>,
    /// Accept authorization requests without PKCE (`true` or `false`; confidential clients only).
    #[arg(long)]
    pub allow_no_pkce: Option<bool>,
    /// May introspect tokens issued to other clients (`true` or `false`).
    #[arg(long)]
    pub introspect: Option<bool>,
    /// Back-channel logout URI; an empty value removes it.
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    /// A resource server the client may ask tokens for; repeatable; replaces the list.
    #[arg(long = "resource")]
    pub resources: Vec<String>,
    /// Accept only pushed authorization requests (`true` or `false`).
    #[arg(long)]
    pub require_par: Option<bool>,
}

/// Whether the command may need a signing key of a client's own ID-token algorithm (and so the
/// key-encryption key).
pub fn needs_kek(cmd: &ClientCommand) -> bool {
    match cmd {
        ClientCommand::Create(args) => args.id_token_alg.is_some(),
        ClientCommand::Update(args) => args.id_token_alg.is_some(),
        _ => false,
    }
}

/// Runs `latchkey client …`.
pub async fn run(
    cmd: ClientCommand,
    db: &Database,
    clock: &Clock,
    kek: Option<&KeyEncryptionKey>,
) -> Result<()> {
    let actor = Actor::cli();
    match cmd {
        ClientCommand::Create(args) => client_create(args, db, clock, kek).await,
        ClientCommand::List => {
            let now = clock.now();
            let clients = manage::list(db, None, i64::MAX).await?;
            let views: Vec<ClientView> = clients.iter().map(|c| ClientView::of(c, now)).collect();
            print(json!({ "clients": views }));
            Ok(())
        }
        ClientCommand::Show { client_id } => {
            let client = manage::show(db, &client_id).await?;
            print(json!(ClientView::of(&client, clock.now())));
            Ok(())
        }
        ClientCommand::Update(args) => client_update(args, db, clock, kek, &actor).await,
        ClientCommand::RotateSecret { client_id, grace } => {
            let grace_seconds = parse_grace(&grace)?;
            let (client, secret) =
                manage::rotate_secret(db, clock.now(), &client_id, grace_seconds, &actor).await?;
            print(json!(manage::rotated(&client, &secret)));
            Ok(())
        }
        ClientCommand::Delete { client_id } => {
            manage::delete(db, clock.now(), &client_id, &actor).await?;
            print(json!({"client_id": client_id, "deleted": true}));
            Ok(())
        }
        ClientCommand::RegistrationToken { expires_in } => {
            let invalid = || {
                AppError::invalid(format!(
                    "invalid --expires-in {:?}: expected a duration such as 1h or 7d (at most 365d)",
                    expires_in.as_deref().unwrap_or_default()
                ))
            };
            let lifetime = match &expires_in {
                None => crate::registration::DEFAULT_INITIAL_TOKEN_LIFETIME,
                Some(text) => humantime::parse_duration(text.trim()).map_err(|_| invalid())?,
            };
            let token =
                crate::registration::issue_initial_token(db, clock, lifetime, &actor).await?;
            print(json!({"token": token.expose()}));
            Ok(())
        }
    }
}

/// `--grace` as seconds: a humantime duration (`0s`, `90m`, `1h`, `7d`). The upper bound is
/// [`manage::rotate_secret`]'s, checked there for the CLI and the API alike.
fn parse_grace(text: &str) -> Result<i64> {
    let invalid = || {
        AppError::invalid(format!(
            "invalid --grace {text:?}: expected a duration such as 0s, 1h or 7d (at most 30d)"
        ))
    };
    let duration = humantime::parse_duration(text.trim()).map_err(|_| invalid())?;
    i64::try_from(duration.as_secs()).map_err(|_| invalid())
}

async fn client_update(
    args: UpdateClientArgs,
    db: &Database,
    clock: &Clock,
    kek: Option<&KeyEncryptionKey>,
    actor: &Actor,
) -> Result<()> {
    let list = |items: Vec<String>| (!items.is_empty()).then_some(items);
    let change = ClientChange {
        name: args.name,
        redirect_uris: list(args.redirect_uris),
        post_logout_redirect_uris: list(args.post_logout_redirect_uris),
        grant_types: list(args.grant_types),
        scopes: list(args.scopes),
        first_party: args.first_party,
        require_org: args.require_org,
        id_token_alg: args.id_token_alg,
        allow_no_pkce: args.allow_no_pkce,
        introspect: args.introspect,
        backchannel_logout_uri: args.backchannel_logout_uri,
        resources: list(args.resources),
        require_par: args.require_par,
    };
    let client = manage::update(db, clock.now(), &args.client_id, change, actor).await?;
    if let (Some(alg), Some(kek)) = (args.id_token_alg, kek) {
        // As for `client create`: running servers pick the key up with their next keyring refresh.
        key_store::ensure_active_key(db, clock, kek, alg).await?;
    }
    print(json!(ClientView::of(&client, clock.now())));
    Ok(())
}

async fn client_create(
    args: CreateClientArgs,
    db: &Database,
    clock: &Clock,
    kek: Option<&KeyEncryptionKey>,
) -> Result<()> {
    let new = clients::NewClient {
        name: args.name,
        redirect_uris: args.redirect_uris,
        post_logout_redirect_uris: args.post_logout_redirect_uris,
        grant_types: args.grant_types,
        scopes: args.scopes,
        public: args.public,
        first_party: args.first_party,
        require_org: args.require_org,
        id_token_alg: args.id_token_alg,
        allow_no_pkce: args.allow_no_pkce,
        introspect: args.introspect,
        backchannel_logout_uri: args.backchannel_logout_uri,
        resources: args.resources,
        require_par: args.require_par,
    };
    let id_token_alg = new.id_token_alg;
    let (client, secret) = clients::create(db, clock, new, &Actor::cli()).await?;
    if let (Some(alg), Some(kek)) = (id_token_alg, kek) {
        // Running servers pick the key up with their next keyring refresh (within a second).
        key_store::ensure_active_key(db, clock, kek, alg).await?;
    }
    match secret {
        Some(secret) => print(json!({"client_id": client.id, "client_secret": secret.expose()})),
        None => print(json!({"client_id": client.id})),
    }
    Ok(())
}
