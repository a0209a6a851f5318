//! `latchkey user …`: create, list, show, disable, enable, delete, sessions-end, mfa-reset. Each prints one JSON
//! object on stdout; an unknown address or bad input exits non-zero with one line on stderr. The
//! work is [`accounts::admin`]'s, shared with the operator API; changes are recorded in the audit
//! log with the command line as the actor.

use std::io::Read;

use serde_json::json;

use super::{UserCommand, print};
use crate::accounts::{self, admin, admin::UserChange, admin::UserRef};
use crate::audit::Actor;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::password::{Password, PasswordHasher};
use crate::db::Database;
use crate::error::{AppError, Result};
use crate::mfa;

/// Users `user list` prints when `--limit` is not given.
pub const DEFAULT_LIST_LIMIT: i64 = 100;
/// Largest `--limit` of `user list`.
pub const MAX_LIST_LIMIT: i64 = 10_000;

/// Runs one `user` command.
pub async fn run(cmd: UserCommand, db: &Database, clock: &Clock, config: &Config) -> Result<()> {
    let actor = Actor::cli();
    match cmd {
        UserCommand::Create {
            email,
            name,
            password_stdin: _,
        } => create(db, clock, &email, &name).await,
        UserCommand::List {
            email_contains,
            limit,
        } => {
            let pattern = email_contains
                .as_deref()
                .map(admin::search_pattern)
                .transpose()
                .map_err(AppError::Invalid)?;
            let users = admin::list(db, pattern.as_deref(), None, limit).await?;
            print(json!({ "users": users }));
            Ok(())
        }
        UserCommand::Show { email } => {
            let user = admin::resolve(db, UserRef::Email(&email)).await?;
            let details = admin::details(db, clock.now(), user).await?;
            print(to_json(&details)?);
            Ok(())
        }
        UserCommand::Disable { email } => set_disabled(db, clock, &email, true, &actor).await,
        UserCommand::Enable { email } => set_disabled(db, clock, &email, false, &actor).await,
        UserCommand::Delete { email } => {
            let user = admin::delete(db, clock.now(), UserRef::Email(&email), &actor).await?;
            print(json!({"id": user.id, "email": user.email, "deleted": true}));
            Ok(())
        }
        UserCommand::SessionsEnd { email } => {
            let (user, ended) =
                admin::end_sessions(db, clock.now(), UserRef::Email(&email), &actor).await?;
            print(json!({"id": user.id, "email": user.email, "ended": ended}));
            Ok(())
        }
        UserCommand::MfaReset { email } => {
            // The owner's notice is queued here and sent by a running server's delivery loop
            // (within a second: it polls the outbox).
            let done =
                mfa::reset::reset(db, config, clock.now(), UserRef::Email(&email), &actor).await?;
            print(to_json(&done)?);
            Ok(())
        }
    }
}

/// `user create`: the password is one line of standard input.
async fn create(db: &Database, clock: &Clock, email: &str, name: &str) -> Result<()> {
    let password = read_password_stdin()?;
    let hasher = PasswordHasher::new(1);
    let new = accounts::NewAccount {
        email,
        name,
        password: &password,
        email_verified: false,
    };
    let user = accounts::create_account(db, &hasher, clock, new).await?;
    print(json!({"id": user.id, "email": user.email}));
    Ok(())
}

/// `user disable` / `user enable`: the user, and for `disable` what ended.
async fn set_disabled(
    db: &Database,
    clock: &Clock,
    email: &str,
    disabled: bool,
    actor: &Actor,
) -> Result<()> {
    let change = UserChange {
        disabled: Some(disabled),
        name: None,
    };
    let updated = admin::update(db, clock.now(), UserRef::Email(email), change, actor).await?;
    print(to_json(&updated)?);
    Ok(())
}

fn to_json(value: &impl serde::Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| AppError::Internal(e.into()))
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
