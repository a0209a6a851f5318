//! The `latchkey` command line: `serve`, `migrate`, and the operator commands of docs/cli.md.
//!
//! Commands that create things print one JSON object on stdout and nothing else there; logs go to
//! stderr. Bad input exits non-zero with one line on stderr and writes nothing.

mod clients;
mod connections;
mod ops;
mod users;

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::audit::Actor;
use crate::clock::Clock;
use crate::config::{Config, SigningAlg};
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::kek_file::{self, KekSource, ResolvedKek};
use crate::crypto::{key_seal, key_store};
use crate::db::Database;
use crate::error::{AppError, Result};
use crate::orgs::roles::Role;
use crate::{app, orgs};

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
    Client(clients::ClientCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage instance-wide connections to upstream OpenID Connect providers (enterprise SSO).
    #[command(subcommand)]
    Connection(connections::ConnectionCommand),
    /// Exit 0 when the server on `LATCHKEY_BIND` answers `GET /healthz` with 200 within 2 seconds,
    /// else 1 (the container image's HEALTHCHECK: the image has no curl).
    Healthcheck {
        /// Check `GET /readyz` instead (the database answers too).
        #[arg(long)]
        ready: bool,
    },
    /// Write a consistent copy of the SQLite database to PATH while the server runs (`VACUUM INTO`);
    /// the key-encryption key is not in it. For PostgreSQL use pg_dump (see docs/operations.md).
    Backup {
        /// Where to write the copy; must not exist yet.
        path: PathBuf,
    },
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ops::ConfigCommand),
}

/// `latchkey user ...` (the code is in [`users`]).
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
    /// List users, oldest first: `{"users": [...]}`.
    List {
        /// Only users whose address contains this text (in any letter case).
        #[arg(long)]
        email_contains: Option<String>,
        /// At most this many users.
        #[arg(long, default_value_t = users::DEFAULT_LIST_LIMIT,
              value_parser = clap::value_parser!(i64).range(1..=users::MAX_LIST_LIMIT))]
        limit: i64,
    },
    /// Show a user with memberships, live sessions and refresh-token families, last sign-in.
    Show {
        /// Email address (any letter case).
        #[arg(long)]
        email: String,
    },
    /// Disable a user: no sign-in, no refresh, tokens refused; every session ends now.
    Disable {
        /// Email address (any letter case).
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// Email address (any letter case).
        #[arg(long)]
        email: String,
    },
    /// Delete a user and everything personal (refused while the only owner of an organization).
    Delete {
        /// Email address (any letter case).
        #[arg(long)]
        email: String,
    },
    /// End every browser session and refresh-token family of a user.
    SessionsEnd {
        /// Email address (any letter case).
        #[arg(long)]
        email: String,
    },
    /// Remove every second factor of a user (authenticator app, recovery codes, passkeys), end
    /// every session and refresh-token family, and mail the owner: the way back for someone who
    /// lost their factors (check who asks first).
    MfaReset {
        /// Email address (any letter case).
        #[arg(long)]
        email: String,
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
        /// Members must sign in to the organization with a second factor (TOTP or passkey);
        /// members without one are led to enrol first.
        #[arg(long)]
        require_mfa: bool,
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
    /// Mark an email domain verified for an organization without the DNS check (the operator vouches
    /// for it); the domain must not be verified by another organization.
    VerifyDomain {
        /// Organization id or slug.
        #[arg(long)]
        org: String,
        /// The domain, e.g. `acme.example`.
        #[arg(long)]
        domain: String,
    },
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
    /// Re-seal every signing key, authenticator-app secret and connection secret under a new
    /// key-encryption key, in one transaction; then restart
    /// every server with the new key. Prints `{"rewrapped": N}`.
    Rewrap {
        /// File holding the new key: base64 of 32 bytes (e.g. `openssl rand -base64 32`).
        #[arg(
            long,
            required_unless_present = "new_key_stdin",
            conflicts_with = "new_key_stdin"
        )]
        new_key_file: Option<PathBuf>,
        /// Read the new key (base64 of 32 bytes, one line) from standard input.
        #[arg(long)]
        new_key_stdin: bool,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    let config = std::sync::Arc::new(config);
    let clock = Clock::system();
    // Commands that need no database answer before it is opened.
    match &cli.command {
        Command::Healthcheck { ready } => return ops::healthcheck(&config, *ready).await,
        Command::Config(cmd) => return ops::config(cmd, &config),
        _ => {}
    }
    let needs_kek = match &cli.command {
        Command::Serve | Command::Keys(_) | Command::Connection(_) => true,
        Command::Client(cmd) => clients::needs_kek(cmd),
        Command::Migrate | Command::User(_) | Command::Org(_) | Command::Backup { .. } => false,
        Command::Healthcheck { .. } | Command::Config(_) => false,
    };
    if needs_kek {
        // Refuse a missing key before touching the database (PostgreSQL has no default key).
        kek_file::resolve(&config)?;
    }
    let db = Database::open(&config.database_url).await?;
    match cli.command {
        Command::Serve => app::serve(config, db, clock).await,
        Command::Migrate => {
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::User(cmd) => Ok(users::run(cmd, &db, &clock, &config).await?),
        Command::Org(cmd) => Ok(org(cmd, &db, &clock).await?),
        Command::Client(cmd) => {
            // Only a client with its own ID-token algorithm may need a new signing key.
            let kek = match clients::needs_kek(&cmd) {
                true => Some(unlock_keys(&config, &db).await?.key),
                false => None,
            };
            Ok(clients::run(cmd, &db, &clock, kek.as_ref()).await?)
        }
        Command::Keys(cmd) => {
            let kek = unlock_keys(&config, &db).await?;
            Ok(keys(cmd, &db, &config, &clock, &kek).await?)
        }
        Command::Connection(cmd) => {
            let kek = kek_file::resolve(&config)?;
            Ok(connections::run(cmd, &db, &clock, &config, &kek.key).await?)
        }
        Command::Backup { path } => Ok(ops::backup(&db, &config, &path).await?),
        Command::Healthcheck { .. } | Command::Config(_) => Ok(()),
    }
}

/// The key-encryption key for a command that touches signing keys, checked against the database
/// (and legacy plaintext keys sealed), exactly as `serve` does at start.
async fn unlock_keys(config: &Config, db: &Database) -> anyhow::Result<ResolvedKek> {
    let kek = kek_file::resolve(config)?;
    key_seal::unlock(db, &kek.key).await?;
    Ok(kek)
}

fn print(value: serde_json::Value) {
    println!("{value}");
}

async fn org(cmd: OrgCommand, db: &Database, clock: &Clock) -> Result<()> {
    match cmd {
        OrgCommand::Create {
            name,
            slug,
            owner,
            require_mfa,
        } => {
            let org = orgs::create_with_owner(
                db,
                clock,
                &name,
                slug.as_deref(),
                require_mfa,
                &owner,
                &Actor::cli(),
            )
            .await?;
            print(json!({
                "id": org.id,
                "slug": org.slug,
                "name": org.name,
                "require_mfa": org.require_mfa,
            }));
        }
        OrgCommand::AddMember { org, email, role } => {
            let role: Role = role.parse().map_err(AppError::Invalid)?;
            let m = orgs::add_member(db, clock, &org, &email, role, &Actor::cli()).await?;
            print(json!({"org_id": m.org_id, "user_id": m.user_id, "role": m.role}));
        }
        OrgCommand::VerifyDomain { org, domain } => {
            let verified =
                crate::federation::domains::verify_by_operator(db, clock, &org, &domain).await?;
            print(verified);
        }
    }
    Ok(())
}

async fn keys(
    cmd: KeysCommand,
    db: &Database,
    config: &Config,
    clock: &Clock,
    kek: &ResolvedKek,
) -> Result<()> {
    if let KeysCommand::Rewrap {
        new_key_file,
        new_key_stdin: _,
    } = cmd
    {
        return rewrap(db, kek, new_key_file).await;
    }
    key_store::ensure_active_keys(db, config, clock, &kek.key).await?;
    match cmd {
        KeysCommand::List => {
            let keys = key_store::list(&db.pool).await?;
            print(json!({"keys": keys}));
        }
        KeysCommand::Rotate { alg } => {
            let alg = alg.unwrap_or(config.access_token_alg);
            let key =
                key_store::rotate_now(db, config, clock, &kek.key, alg, key_store::ROTATED_BY_CLI)
                    .await?;
            tracing::info!(kid = %key.kid, alg = alg.as_str(), "rotated signing key");
            print(json!({"kid": key.kid, "alg": key.alg}));
        }
        KeysCommand::Rewrap { .. } => {}
    }
    Ok(())
}

/// `keys rewrap`: reads the new key (from `file`, or standard input), re-seals every signing key under
/// it in one transaction, and, when the current key is the `latchkey.kek` file beside a SQLite
/// database, replaces that file (after the commit) so the next start uses the new key.
async fn rewrap(db: &Database, current: &ResolvedKek, file: Option<PathBuf>) -> Result<()> {
    let (text, origin) = match &file {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|e| {
                AppError::invalid(format!(
                    "cannot read --new-key-file {}: {e}",
                    path.display()
                ))
            })?,
            "--new-key-file",
        ),
        None => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).map_err(|e| {
                AppError::invalid(format!("cannot read the new key from standard input: {e}"))
            })?;
            (input, "standard input")
        }
    };
    let new = KeyEncryptionKey::from_base64(&text)
        .map_err(|reason| AppError::invalid(format!("the new key from {origin}: {reason}")))?;
    let rewrapped = key_seal::rewrap(db, &current.key, &new).await?;
    tracing::info!(
        rewrapped,
        "signing keys re-sealed under the new key-encryption key; restart every server with it"
    );
    match &current.source {
        KekSource::DefaultFile(path) => {
            kek_file::replace(path, &new).map_err(|e| {
                AppError::Internal(anyhow::anyhow!(
                    "the keys are re-sealed under the new key, but {} could not be replaced ({e}): \
                     set LATCHKEY_KEY_ENCRYPTION_KEY to the new key",
                    path.display()
                ))
            })?;
            print(json!({"rewrapped": rewrapped, "key_file": path.display().to_string()}));
        }
        KekSource::Configured | KekSource::Ephemeral => print(json!({"rewrapped": rewrapped})),
    }
    Ok(())
}
