//! The `latchkey` command line: `serve`, `migrate`, and the operator commands of the documented interface (README).
//!
//! Commands that create things print one JSON object on stdout and nothing else there; logs go to
//! stderr. Bad input exits non-zero with one line on stderr and writes nothing.

use std::io::Read;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::audit::Actor;
use crate::clock::Clock;
use crate::config::{Config, SigningAlg};
use crate::crypto::key_store;
use crate::crypto::password::{Password, PasswordHasher};
use crate::db::Database;
use crate::error::{AppError, Result};
use crate::orgs::roles::Role;
use crate::{accounts, app, clients, orgs};

/// Latchkey: an OpenID Connect and OAuth 2.0 server with organizations built in.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve HTTP until SIGTERM or SIGINT.
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `latchkey user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create {
        /// Email address (unique without regard to case).
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// Read the password from standard input (one line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

/// `latchkey org ...`
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization owned by an existing user.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Short URL-safe name; derived from the name when omitted.
        #[arg(long)]
        slug: Option<String>,
        /// Email of the owner.
        #[arg(long)]
        owner: String,
    },
    /// Add an existing user to an organization.
    AddMember {
        /// Organization id or slug.
        #[arg(long)]
        org: String,
        /// Email of the user.
        #[arg(long)]
        email: String,
        /// owner, admin, member or viewer.
        #[arg(long)]
        role: String,
    },
}

/// `latchkey client ...`
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and (for confidential clients) its secret, once.
    Create(CreateClientArgs),
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
}

/// `latchkey keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys.
    List,
    /// Make a new key active now; the old one stays in the JWKS until its tokens expire.
    Rotate {
        /// Algorithm (default: the access-token algorithm).
        #[arg(long)]
        alg: Option<SigningAlg>,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    let config = std::sync::Arc::new(config);
    let clock = Clock::system();
    let db = Database::open(&config.database_url).await?;
    match cli.command {
        Command::Serve => app::serve(config, db, clock).await,
        Command::Migrate => {
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::User(cmd) => Ok(user(cmd, &db, &clock).await?),
        Command::Org(cmd) => Ok(org(cmd, &db, &clock).await?),
        Command::Client(ClientCommand::Create(args)) => Ok(client_create(args, &db, &clock).await?),
        Command::Keys(cmd) => Ok(keys(cmd, &db, &config, &clock).await?),
    }
}

fn print(value: serde_json::Value) {
    println!("{value}");
}

/// Reads a password from standard input: one line, without its line ending.
fn read_password_stdin() -> Result<Password> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).map_err(|e| {
        AppError::invalid(format!("cannot read the password from standard input: {e}"))
    })?;
    let line = input.lines().next().unwrap_or_default();
    Ok(Password::new(line.to_owned()))
}

async fn user(cmd: UserCommand, db: &Database, clock: &Clock) -> Result<()> {
    let UserCommand::Create {
        email,
        name,
        password_stdin: _,
    } = cmd;
    let password = read_password_stdin()?;
    let hasher = PasswordHasher::new(1);
    let new = accounts::NewAccount {
        email: &email,
        name: &name,
        password: &password,
        email_verified: false,
    };
    let user = accounts::create_account(db, &hasher, clock, new).await?;
    print(json!({"id": user.id, "email": user.email}));
    Ok(())
}

async fn org(cmd: OrgCommand, db: &Database, clock: &Clock) -> Result<()> {
    match cmd {
        OrgCommand::Create { name, slug, owner } => {
            let org =
                orgs::create_with_owner(db, clock, &name, slug.as_deref(), &owner, &Actor::cli())
                    .await?;
            print(json!({"id": org.id, "slug": org.slug, "name": org.name}));
        }
        OrgCommand::AddMember { org, email, role } => {
            let role: Role = role.parse().map_err(AppError::Invalid)?;
            let m = orgs::add_member(db, clock, &org, &email, role, &Actor::cli()).await?;
            print(json!({"org_id": m.org_id, "user_id": m.user_id, "role": m.role}));
        }
    }
    Ok(())
}

async fn client_create(args: CreateClientArgs, db: &Database, clock: &Clock) -> Result<()> {
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
    };
    let id_token_alg = new.id_token_alg;
    let (client, secret) = clients::create(db, clock, new).await?;
    if let Some(alg) = id_token_alg {
        // Running servers pick the key up with their next keyring refresh (within a second).
        key_store::ensure_active_key(db, clock, alg).await?;
    }
    match secret {
        Some(secret) => print(json!({"client_id": client.id, "client_secret": secret.expose()})),
        None => print(json!({"client_id": client.id})),
    }
    Ok(())
}

async fn keys(cmd: KeysCommand, db: &Database, config: &Config, clock: &Clock) -> Result<()> {
    key_store::ensure_active_keys(db, config, clock).await?;
    match cmd {
        KeysCommand::List => {
            let keys = key_store::list(&db.pool).await?;
            print(json!({"keys": keys}));
        }
        KeysCommand::Rotate { alg } => {
            let alg = alg.unwrap_or(config.access_token_alg);
            let key =
                key_store::rotate_now(db, config, clock, alg, key_store::ROTATED_BY_CLI).await?;
            tracing::info!(kid = %key.kid, alg = alg.as_str(), "rotated signing key");
            print(json!({"kid": key.kid, "alg": key.alg}));
        }
    }
    Ok(())
}
