//! `latchkey connection …`: connections to upstream OpenID Connect providers (enterprise SSO), the
//! instance's (the operator API `/api/v1/connections`) or, with `--org`, an organization's. Each
//! command prints one JSON object, never the client secret; the work is
//! [`crate::federation::connections::manage`]'s, shared with the API, and the audit log records the
//! command line as the actor.

use std::io::Read;

use clap::{ArgGroup, Subcommand};
use serde_json::json;

use super::print;
use crate::audit::Actor;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::kek::KeyEncryptionKey;
use crate::db::Database;
use crate::error::{AppError, Result};
use crate::federation::connections::manage::{
    self, ConnectionInput, Owner, Services, connection_json,
};
use crate::federation::connections::store;
use crate::federation::upstream::Upstream;
use crate::orgs::access::org_not_found;

/// `latchkey connection ...`
#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Create a connection after checking the issuer's discovery document and keys; prints it (with
    /// the `redirect_uri` to register at the upstream).
    #[command(group(ArgGroup::new("secret").required(true).args(["client_secret", "client_secret_stdin"])))]
    Create {
        /// Display name ("Continue with NAME").
        #[arg(long)]
        name: String,
        /// The upstream's issuer identifier (https URL).
        #[arg(long)]
        issuer: String,
        /// Our client id at the upstream.
        #[arg(long, allow_hyphen_values = true)]
        client_id: String,
        /// Our client secret at the upstream (visible in the process list: prefer
        /// --client-secret-stdin). May start with `-`, as base64url secrets do one time in 64.
        #[arg(long, allow_hyphen_values = true)]
        client_secret: Option<String>,
        /// Read the client secret from standard input (one line).
        #[arg(long)]
        client_secret_stdin: bool,
        /// Scope to ask the upstream for; repeatable (default: openid email profile; openid is
        /// always asked).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// The organization (id or slug) the connection belongs to; instance-wide without it.
        #[arg(long)]
        org: Option<String>,
    },
    /// List connections, oldest first: `{"connections": [...]}` (instance-wide without --org).
    List {
        /// The organization (id or slug) whose connections to list.
        #[arg(long)]
        org: Option<String>,
    },
    /// Delete a connection (of the instance or of any organization); the identities linked through
    /// it go with it.
    Delete {
        /// The connection id.
        #[arg(long)]
        id: String,
    },
}

/// Runs a `connection` command.
pub async fn run(
    cmd: ConnectionCommand,
    db: &Database,
    clock: &Clock,
    config: &Config,
    kek: &KeyEncryptionKey,
) -> Result<()> {
    let actor = Actor::cli();
    match cmd {
        ConnectionCommand::Create {
            name,
            issuer,
            client_id,
            client_secret,
            client_secret_stdin: _,
            scopes,
            org,
        } => {
            let client_secret = match client_secret {
                Some(secret) => secret,
                None => read_secret()?,
            };
            let org_id = match &org {
                Some(org_ref) => Some(resolve_org(db, org_ref).await?),
                None => None,
            };
            let owner = match &org_id {
                Some(id) => Owner::Org(id),
                None => Owner::Instance,
            };
            let upstream = Upstream::new(config)?;
            let input = ConnectionInput {
                name,
                issuer,
                client_id,
                client_secret,
                scopes: (!scopes.is_empty()).then_some(scopes),
                role_mapping: None,
            };
            let svc = Services {
                db,
                kek,
                upstream: &upstream,
                actor: &actor,
                now: clock.now(),
            };
            let conn = manage::create(&svc, owner, input).await?;
            print(connection_json(&conn, config));
        }
        ConnectionCommand::List { org } => {
            let conns = match &org {
                Some(org_ref) => {
                    let org_id = resolve_org(db, org_ref).await?;
                    manage::list(db, Owner::Org(&org_id)).await?
                }
                None => manage::list(db, Owner::Instance).await?,
            };
            let items: Vec<_> = conns.iter().map(|c| connection_json(c, config)).collect();
            print(json!({"connections": items}));
        }
        ConnectionCommand::Delete { id } => {
            // The operator may delete any connection: its owner is whatever the row says.
            let conn = store::find(&db.pool, &id)
                .await?
                .ok_or_else(manage::not_found)?;
            let owner = match &conn.org_id {
                Some(org_id) => Owner::Org(org_id),
                None => Owner::Instance,
            };
            manage::delete(db, owner, &conn.id, &actor, clock.now()).await?;
            print(json!({"id": conn.id, "deleted": true}));
        }
    }
    Ok(())
}

/// The id of organization `org_ref` (id or slug).
async fn resolve_org(db: &Database, org_ref: &str) -> Result<String> {
    crate::orgs::store::find_org(&db.pool, org_ref)
        .await?
        .map(|org| org.id)
        .ok_or_else(org_not_found)
}

/// The client secret from standard input: its first line, without the line end.
fn read_secret() -> Result<String> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).map_err(|e| {
        AppError::invalid(format!(
            "cannot read the client secret from standard input: {e}"
        ))
    })?;
    Ok(input.lines().next().unwrap_or_default().to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::Parser;

    use crate::cli::Cli;

    #[test]
    fn a_secret_starting_with_a_hyphen_is_a_value() {
        let parsed = Cli::try_parse_from([
            "latchkey",
            "connection",
            "create",
            "--name",
            "Everyone",
            "--issuer",
            "https://idp.example.com",
            "--client-id",
            "-id",
            "--client-secret",
            "-mZ3kq",
        ]);
        assert!(parsed.is_ok(), "{:?}", parsed.err());
    }
}
