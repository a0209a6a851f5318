//! SQL for users.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::User;
use crate::crypto::tokens::new_id;
use crate::db::{self, Exec};

const USER_COLUMNS: &str = "id, email, name, email_verified, disabled, created_at";

/// Columns of a new user row.
#[derive(Debug)]
pub struct NewUserRow<'a> {
    /// Validated address.
    pub email: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Argon2id PHC string.
    pub password_hash: Option<&'a str>,
    /// Whether the address is proven.
    pub email_verified: bool,
}

/// Why an insert failed.
#[derive(Debug)]
pub enum InsertError {
    /// The address exists already (in any letter case).
    EmailTaken,
    /// Anything else.
    Db(sqlx::Error),
}

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        email_verified: row.try_get::<i64, _>("email_verified")? != 0,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

/// Inserts a user; the unique index on the lower-cased address decides races.
pub async fn insert<'c>(
    ex: impl Exec<'c>,
    new: &NewUserRow<'_>,
    now: i64,
) -> Result<User, InsertError> {
    let id = new_id();
    let result = sqlx::query(
        "insert into users (id, email, email_lower, name, password_hash, email_verified, disabled, \
         created_at, updated_at) values ($1, $2, $3, $4, $5, $6, 0, $7, $7)",
    )
    .bind(&id)
    .bind(new.email)
    .bind(super::email_key(new.email))
    .bind(new.name)
    .bind(new.password_hash)
    .bind(db::flag(new.email_verified))
    .bind(now)
    .execute(ex)
    .await;
    match result {
        Ok(_) => Ok(User {
            id,
            email: new.email.to_owned(),
            name: new.name.to_owned(),
            email_verified: new.email_verified,
            disabled: false,
            created_at: now,
        }),
        Err(e) if db::is_unique_violation(&e) => Err(InsertError::EmailTaken),
        Err(e) => Err(InsertError::Db(e)),
    }
}

/// Finds a user by address, in any letter case.
pub async fn find_by_email<'c>(
    ex: impl Exec<'c>,
    email: &str,
) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("select {USER_COLUMNS} from users where email_lower = $1");
    let row = sqlx::query(&sql)
        .bind(super::email_key(email))
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Finds a user by id.
pub async fn find_by_id<'c>(ex: impl Exec<'c>, id: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("select {USER_COLUMNS} from users where id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(ex).await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Finds a user and the password hash to verify against (login).
pub async fn find_credentials<'c>(
    ex: impl Exec<'c>,
    email: &str,
) -> Result<Option<(User, Option<String>)>, sqlx::Error> {
    let sql = format!("select {USER_COLUMNS}, password_hash from users where email_lower = $1");
    let row = sqlx::query(&sql)
        .bind(super::email_key(email))
        .fetch_optional(ex)
        .await?;
    match row {
        Some(row) => Ok(Some((user_from_row(&row)?, row.try_get("password_hash")?))),
        None => Ok(None),
    }
}
