//! SQL on `federated_identities` (migration 0013): the link of an upstream identity, by
//! (connection, `iss`, `sub`), to an account.

use sqlx::Row;

use crate::db::Exec;
use crate::error::Result;

/// A linked identity as the account page lists it (with its connection's name).
#[derive(Debug, Clone)]
pub struct LinkedIdentity {
    /// Random id.
    pub id: String,
    /// The connection it came through.
    pub connection_id: String,
    /// The connection's display name.
    pub connection_name: String,
    /// The upstream's issuer.
    pub issuer: String,
    /// The upstream's `sub`.
    pub subject: String,
    /// The upstream address at the last sign-in (shown only; never used to find the account).
    pub email: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last sign-in through it.
    pub last_used_at: Option<i64>,
}

/// The account linked to (`connection_id`, `issuer`, `subject`): `(link id, user id)`.
pub async fn find_link<'c>(
    ex: impl Exec<'c>,
    connection_id: &str,
    issuer: &str,
    subject: &str,
) -> Result<Option<(String, String)>> {
    let row = sqlx::query(
        "select id, user_id from federated_identities \
         where connection_id = $1 and issuer = $2 and subject = $3",
    )
    .bind(connection_id)
    .bind(issuer)
    .bind(subject)
    .fetch_optional(ex)
    .await?;
    Ok(match row {
        Some(row) => Some((row.try_get("id")?, row.try_get("user_id")?)),
        None => None,
    })
}

/// A link to insert.
pub struct NewLink<'a> {
    /// The account.
    pub user_id: &'a str,
    /// The connection.
    pub connection_id: &'a str,
    /// The upstream's issuer.
    pub issuer: &'a str,
    /// The upstream's `sub`.
    pub subject: &'a str,
    /// The upstream address, if any.
    pub email: Option<&'a str>,
}

/// Inserts a link (used now: `last_used_at` is `now`); returns its id, or `None` when the
/// upstream identity is linked already (the unique index decides races).
pub async fn insert<'c>(ex: impl Exec<'c>, new: &NewLink<'_>, now: i64) -> Result<Option<String>> {
    let id = crate::crypto::tokens::new_id();
    let result = sqlx::query(
        "insert into federated_identities (id, user_id, connection_id, issuer, subject, email, \
         created_at, last_used_at) values ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(&id)
    .bind(new.user_id)
    .bind(new.connection_id)
    .bind(new.issuer)
    .bind(new.subject)
    .bind(new.email)
    .bind(now)
    .execute(ex)
    .await;
    Ok(crate::db::inserted(result)?.then_some(id))
}

/// Records a sign-in through link `id`: `last_used_at`, and the upstream address as it is now.
pub async fn touch<'c>(ex: impl Exec<'c>, id: &str, email: Option<&str>, now: i64) -> Result<()> {
    sqlx::query(
        "update federated_identities set last_used_at = $1, email = coalesce($2, email) \
         where id = $3",
    )
    .bind(now)
    .bind(email)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(())
}

/// The identities linked to `user_id`, oldest first.
pub async fn list_for_user<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<Vec<LinkedIdentity>> {
    let rows = sqlx::query(
        "select f.id, f.connection_id, c.name, f.issuer, f.subject, f.email, f.created_at, \
         f.last_used_at from federated_identities f join connections c on c.id = f.connection_id \
         where f.user_id = $1 order by f.created_at, f.id",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LinkedIdentity {
                id: row.try_get("id")?,
                connection_id: row.try_get("connection_id")?,
                connection_name: row.try_get("name")?,
                issuer: row.try_get("issuer")?,
                subject: row.try_get("subject")?,
                email: row.try_get("email")?,
                created_at: row.try_get("created_at")?,
                last_used_at: row.try_get("last_used_at")?,
            })
        })
        .collect()
}

/// Removes link `id` of `user_id`; whether there was one.
pub async fn delete<'c>(ex: impl Exec<'c>, id: &str, user_id: &str) -> Result<bool> {
    let done = sqlx::query("delete from federated_identities where id = $1 and user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}
