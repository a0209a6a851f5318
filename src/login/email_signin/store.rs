//! SQL of email sign-in: the requests (`email_signin_requests`), their use by link or code, and the
//! counts behind the sending limits.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::Exec;

/// A new sign-in request.
#[derive(Debug)]
pub struct NewRequest<'a> {
    /// Random id, named by the browser's signed cookie.
    pub id: &'a str,
    /// The account signed in; `None` for an address with no usable account (nothing is mailed, and
    /// nothing can ever be signed in with it).
    pub user_id: Option<&'a str>,
    /// The address as typed.
    pub email: &'a str,
    /// SHA-256 of the mailed link token.
    pub token_hash: &'a str,
    /// Keyed hash of the mailed code.
    pub code_hash: &'a str,
    /// Pending authorization request of the browser that asked.
    pub authz: &'a str,
    /// Local path to continue to.
    pub next: &'a str,
    /// Client address of the request (per-address limit).
    pub requested_ip: Option<&'a str>,
    /// When it was asked for.
    pub created_at: i64,
    /// When it stops working.
    pub expires_at: i64,
}

/// A stored request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Id.
    pub id: String,
    /// The account; `None` for an address with no usable account.
    pub user_id: Option<String>,
    /// The address as typed.
    pub email: String,
    /// Keyed hash of the code.
    pub code_hash: String,
    /// Pending authorization request to continue.
    pub authz: String,
    /// Local path to continue to.
    pub next: String,
    /// Codes typed so far.
    pub attempts: i64,
    /// When it stops working.
    pub expires_at: i64,
    /// When it was used (by link or code).
    pub used_at: Option<i64>,
}

const COLUMNS: &str =
    "id, user_id, email, code_hash, authz, next_path, attempts, expires_at, used_at";

fn request(row: &AnyRow) -> Result<Request, sqlx::Error> {
    Ok(Request {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        email: row.try_get("email")?,
        code_hash: row.try_get("code_hash")?,
        authz: row.try_get("authz")?,
        next: row.try_get("next_path")?,
        attempts: row.try_get("attempts")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
    })
}

/// Stores a request.
pub async fn insert<'c>(ex: impl Exec<'c>, r: &NewRequest<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into email_signin_requests (id, user_id, email, token_hash, code_hash, authz, \
         next_path, requested_ip, attempts, created_at, expires_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10)",
    )
    .bind(r.id)
    .bind(r.user_id)
    .bind(r.email)
    .bind(r.token_hash)
    .bind(r.code_hash)
    .bind(r.authz)
    .bind(r.next)
    .bind(r.requested_ip)
    .bind(r.created_at)
    .bind(r.expires_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Takes the account's row lock (PostgreSQL; SQLite transactions are serialised already) by a no-op
/// update, so that concurrent requests for one account count and insert in turn. Asked with an empty
/// id for addresses with no account, which then do the same work.
pub async fn lock_user<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("update users set updated_at = updated_at where id = $1")
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Requests (that would mail) for `user_id` since `since`.
pub async fn count_for_user<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    since: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from email_signin_requests where user_id = $1 and created_at >= $2",
    )
    .bind(user_id)
    .bind(since)
    .fetch_one(ex)
    .await
}

/// Requests from address `ip` after `since`, whatever address they named, and the oldest one's time
/// (the window frees a place when `since` reaches it).
pub async fn count_from_ip<'c>(
    ex: impl Exec<'c>,
    ip: &str,
    since: i64,
) -> Result<(i64, Option<i64>), sqlx::Error> {
    let row = sqlx::query(
        "select count(*) as n, min(created_at) as oldest from email_signin_requests \
         where requested_ip = $1 and created_at > $2",
    )
    .bind(ip)
    .bind(since)
    .fetch_one(ex)
    .await?;
    Ok((row.try_get("n")?, row.try_get("oldest")?))
}

/// A request by id (whatever its state).
pub async fn find<'c>(ex: impl Exec<'c>, id: &str) -> Result<Option<Request>, sqlx::Error> {
    let sql = format!("select {COLUMNS} from email_signin_requests where id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(ex).await?;
    row.as_ref().map(request).transpose()
}

/// The request of a link token, when it can still sign in at `now` (unused, unexpired, not ended by
/// wrong codes, for an account).
pub async fn find_usable_by_token<'c>(
    ex: impl Exec<'c>,
    token_hash: &str,
    now: i64,
    max_attempts: i64,
) -> Result<Option<Request>, sqlx::Error> {
    let sql = format!(
        "select {COLUMNS} from email_signin_requests where token_hash = $1 and used_at is null \
         and expires_at > $2 and attempts < $3 and user_id is not null"
    );
    let row = sqlx::query(&sql)
        .bind(token_hash)
        .bind(now)
        .bind(max_attempts)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(request).transpose()
}

/// Uses the request of a link token: one conditional update, so of two submissions of one link (or
/// a link and its code) only one signs in. The request, or `None` when it was unknown, expired, used
/// or ended by wrong codes.
pub async fn consume_by_token<'c>(
    ex: impl Exec<'c>,
    token_hash: &str,
    now: i64,
    max_attempts: i64,
) -> Result<Option<Request>, sqlx::Error> {
    let sql = format!(
        "update email_signin_requests set used_at = $1 where token_hash = $2 and used_at is null \
         and expires_at > $1 and attempts < $3 and user_id is not null returning {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(now)
        .bind(token_hash)
        .bind(max_attempts)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(request).transpose()
}

/// Counts a typed code on request `id` when it can still be used at `now`, locking its row until the
/// transaction ends (so concurrent guesses are counted one after the other and never exceed
/// `max_attempts`); the request after the count, or `None` when it is unknown, expired, used or
/// ended by wrong codes.
pub async fn count_attempt<'c>(
    ex: impl Exec<'c>,
    id: &str,
    now: i64,
    max_attempts: i64,
) -> Result<Option<Request>, sqlx::Error> {
    let sql = format!(
        "update email_signin_requests set attempts = attempts + 1 where id = $1 \
         and used_at is null and expires_at > $2 and attempts < $3 returning {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(now)
        .bind(max_attempts)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(request).transpose()
}

/// Marks request `id` used (its row is locked by [`count_attempt`]).
pub async fn mark_used<'c>(ex: impl Exec<'c>, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("update email_signin_requests set used_at = $1 where id = $2")
        .bind(now)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}
