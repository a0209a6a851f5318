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

/// A [`User`] from a row with the columns `id, email, name, email_verified, disabled, created_at`
/// (also used by queries that join `users`, such as the refresh grant's one lookup).
pub(crate) fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
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

/// A row of `email_verification_tokens`, found by the hash of its token.
#[derive(Debug, Clone)]
pub struct VerificationToken {
    /// The user whose address the token proves.
    pub user_id: String,
    /// Unix seconds after which the token is refused.
    pub expires_at: i64,
    /// When it was used, if it was.
    pub used_at: Option<i64>,
}

/// Stores a verification token (its SHA-256 only) for `user_id`, valid until `expires_at`.
pub async fn insert_verification_token<'c>(
    ex: impl Exec<'c>,
    token_hash: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into email_verification_tokens (token_hash, user_id, created_at, expires_at) \
         values ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Finds a verification token by the hash of its value.
pub async fn find_verification_token<'c>(
    ex: impl Exec<'c>,
    token_hash: &str,
) -> Result<Option<VerificationToken>, sqlx::Error> {
    let row = sqlx::query(
        "select user_id, expires_at, used_at from email_verification_tokens where token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(ex)
    .await?;
    row.map(|row| {
        Ok(VerificationToken {
            user_id: row.try_get("user_id")?,
            expires_at: row.try_get("expires_at")?,
            used_at: row.try_get("used_at")?,
        })
    })
    .transpose()
}

/// Marks an unused, unexpired token used; `Ok(false)` when it was used (or expired) in the meantime,
/// so of two concurrent confirmations exactly one succeeds.
pub async fn use_verification_token<'c>(
    ex: impl Exec<'c>,
    token_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "update email_verification_tokens set used_at = $2 \
         where token_hash = $1 and used_at is null and expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Records that `user_id` proved their address.
pub async fn mark_email_verified<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("update users set email_verified = 1, updated_at = $2 where id = $1")
        .bind(user_id)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// When the newest verification token of `user_id` was issued (to space out resends).
pub async fn last_verification_sent_at<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("select max(created_at) from email_verification_tokens where user_id = $1")
        .bind(user_id)
        .fetch_one(ex)
        .await
}

/// Sets the `disabled` flag of `user_id`: `None` when there is no such user, else whether it changed.
pub async fn set_disabled(
    ex: &mut sqlx::AnyConnection,
    user_id: &str,
    disabled: bool,
    now: i64,
) -> Result<Option<bool>, sqlx::Error> {
    let Some(before): Option<i64> = sqlx::query_scalar("select disabled from users where id = $1")
        .bind(user_id)
        .fetch_optional(&mut *ex)
        .await?
    else {
        return Ok(None);
    };
    sqlx::query("update users set disabled = $2, updated_at = $3 where id = $1")
        .bind(user_id)
        .bind(db::flag(disabled))
        .bind(now)
        .execute(ex)
        .await?;
    Ok(Some((before != 0) != disabled))
}

/// Deletes `user_id` (what references it goes by `on delete cascade`); true when a row went.
pub async fn delete<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("delete from users where id = $1")
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() == 1)
}

// --- The operator's view of users (`accounts::admin`: `latchkey user …` and `/api/v1/users`) ---

/// The escape character of [`email_search_pattern`]'s `LIKE` patterns. Not the backslash, whose
/// meaning inside a string literal differs between SQL dialects and settings.
const LIKE_ESCAPE: char = '!';

/// A `LIKE` pattern that finds `needle` anywhere in `users.email_lower`: letters lower-cased as
/// [`super::email_key`] does, and the pattern characters `%` and `_` (and the escape itself) taken
/// literally, so that searching `a_b` does not match `axb`.
pub fn email_search_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars().map(|c| c.to_ascii_lowercase()) {
        if matches!(c, '%' | '_') || c == LIKE_ESCAPE {
            pattern.push(LIKE_ESCAPE);
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Users oldest first (by creation time, then id), optionally only those whose address matches
/// `pattern` (from [`email_search_pattern`]), strictly after the keyset position `after`; at most
/// `limit`.
pub async fn list_users<'c>(
    ex: impl Exec<'c>,
    pattern: Option<&str>,
    after: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<User>, sqlx::Error> {
    let (after_at, after_id) = match after {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    // Every condition is always present and neutralised by a null parameter: one static statement.
    let sql = format!(
        "select {USER_COLUMNS} from users \
         where ($1 is null or email_lower like $1 escape '{LIKE_ESCAPE}') \
         and ($2 is null or created_at > $2 or (created_at = $2 and id > $3)) \
         order by created_at, id limit $4"
    );
    let rows = sqlx::query(&sql)
        .bind(pattern)
        .bind(after_at)
        .bind(after_id)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(user_from_row).collect()
}

/// How many signed-in browser sessions of `user_id` are live at `now`.
pub async fn count_live_sessions<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from sessions where user_id = $1 and expires_at > $2")
        .bind(user_id)
        .bind(now)
        .fetch_one(ex)
        .await
}

/// How many refresh-token families of `user_id` can still be refreshed at `now` (not revoked, not
/// past their absolute lifetime).
pub async fn count_live_refresh_families<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from refresh_families \
         where user_id = $1 and revoked_at is null and expires_at > $2",
    )
    .bind(user_id)
    .bind(now)
    .fetch_one(ex)
    .await
}

/// When `user_id` last signed in successfully (the login history), if ever (or not since the
/// history's retention).
pub async fn last_sign_in_at<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "select max(created_at) from login_events where user_id = $1 and success = 1",
    )
    .bind(user_id)
    .fetch_one(ex)
    .await
}

/// Sets the display name of `user_id` (validated by the caller); false when there is no such user.
pub async fn set_name<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    name: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("update users set name = $2, updated_at = $3 where id = $1")
        .bind(user_id)
        .bind(name)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() == 1)
}
