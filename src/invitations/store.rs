//! SQL for invitations. Tokens are looked up by their SHA-256 hash only.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Invitation, StoredState};
use crate::crypto::tokens::TokenHash;
use crate::db::{self, Exec};

const COLUMNS: &str = "id, org_id, email, role, state, invited_by, created_at, expires_at, \
                       accepted_at, accepted_by";

fn from_row(row: &AnyRow) -> Result<Invitation, sqlx::Error> {
    let decode = |column: &str, e: String| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: e.into(),
    };
    let role: String = row.try_get("role")?;
    let state: String = row.try_get("state")?;
    Ok(Invitation {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        email: row.try_get("email")?,
        role: role.parse().map_err(|e| decode("role", e))?,
        state: StoredState::parse(&state)
            .ok_or_else(|| decode("state", format!("unknown state {state:?}")))?,
        invited_by: row.try_get("invited_by")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        accepted_at: row.try_get("accepted_at")?,
        accepted_by: row.try_get("accepted_by")?,
    })
}

/// Inserts a pending invitation with the hash of its token; `Ok(false)` when a pending invitation
/// for the same organization and address appeared in the meantime (the partial unique index).
pub async fn insert<'c>(
    ex: impl Exec<'c>,
    inv: &Invitation,
    token_hash: &TokenHash,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "insert into invitations (id, org_id, email, email_lower, role, token_hash, state, \
         invited_by, created_at, expires_at) values ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9)",
    )
    .bind(&inv.id)
    .bind(&inv.org_id)
    .bind(&inv.email)
    .bind(crate::accounts::email_key(&inv.email))
    .bind(inv.role.as_str())
    .bind(token_hash.as_str())
    .bind(inv.invited_by.as_deref())
    .bind(inv.created_at)
    .bind(inv.expires_at)
    .execute(ex)
    .await;
    db::inserted(result)
}

/// The pending invitation (expired or not) of `email` to `org_id`, if any.
pub async fn find_pending<'c>(
    ex: impl Exec<'c>,
    org_id: &str,
    email: &str,
) -> Result<Option<Invitation>, sqlx::Error> {
    let sql = format!(
        "select {COLUMNS} from invitations \
         where org_id = $1 and email_lower = $2 and state = 'pending'"
    );
    let row = sqlx::query(&sql)
        .bind(org_id)
        .bind(crate::accounts::email_key(email))
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Renews a pending invitation: a new token (the old link dies), a new expiry, the new role and
/// inviter, and the address as typed this time. `Ok(false)` when it is no longer pending.
pub async fn renew<'c>(
    ex: impl Exec<'c>,
    inv: &Invitation,
    token_hash: &TokenHash,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "update invitations set token_hash = $2, role = $3, invited_by = $4, expires_at = $5, \
         email = $6 where id = $1 and state = 'pending'",
    )
    .bind(&inv.id)
    .bind(token_hash.as_str())
    .bind(inv.role.as_str())
    .bind(inv.invited_by.as_deref())
    .bind(inv.expires_at)
    .bind(&inv.email)
    .execute(ex)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The invitation whose token hashes to `token_hash`, in any state.
pub async fn find_by_token<'c>(
    ex: impl Exec<'c>,
    token_hash: &TokenHash,
) -> Result<Option<Invitation>, sqlx::Error> {
    let sql = format!("select {COLUMNS} from invitations where token_hash = $1");
    let row = sqlx::query(&sql)
        .bind(token_hash.as_str())
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The invitation `id` of `org_id`, in any state.
pub async fn find_in_org<'c>(
    ex: impl Exec<'c>,
    org_id: &str,
    id: &str,
) -> Result<Option<Invitation>, sqlx::Error> {
    let sql = format!("select {COLUMNS} from invitations where org_id = $1 and id = $2");
    let row = sqlx::query(&sql)
        .bind(org_id)
        .bind(id)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The invitation `id`, in any state.
pub async fn find_by_id<'c>(
    ex: impl Exec<'c>,
    id: &str,
) -> Result<Option<Invitation>, sqlx::Error> {
    let sql = format!("select {COLUMNS} from invitations where id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(ex).await?;
    row.as_ref().map(from_row).transpose()
}

/// Up to `limit` pending, unexpired invitations of `org_id`, newest first, after the position
/// `after` = `(created_at, id)` of the last one of the previous page (keyset pagination).
pub async fn list_pending<'c>(
    ex: impl Exec<'c>,
    org_id: &str,
    now: i64,
    after: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<Invitation>, sqlx::Error> {
    // Two statements rather than `$4 is null or ...`, which PostgreSQL cannot type.
    let after_cursor = if after.is_some() {
        "and (created_at < $4 or (created_at = $4 and id < $5))"
    } else {
        ""
    };
    let sql = format!(
        "select {COLUMNS} from invitations \
         where org_id = $1 and state = 'pending' and expires_at > $2 {after_cursor} \
         order by created_at desc, id desc limit $3"
    );
    let mut query = sqlx::query(&sql).bind(org_id).bind(now).bind(limit);
    if let Some((created_at, id)) = after {
        query = query.bind(created_at).bind(id);
    }
    let rows = query.fetch_all(ex).await?;
    rows.iter().map(from_row).collect()
}

/// Revokes a pending invitation; `Ok(false)` when it is not pending (any more).
pub async fn revoke<'c>(ex: impl Exec<'c>, id: &str) -> Result<bool, sqlx::Error> {
    let result =
        sqlx::query("update invitations set state = 'revoked' where id = $1 and state = 'pending'")
            .bind(id)
            .execute(ex)
            .await?;
    Ok(result.rows_affected() == 1)
}

/// Marks a pending, unexpired invitation accepted by `user_id`; `Ok(false)` when it was accepted,
/// revoked, renewed or expired in the meantime, so of two concurrent accepts exactly one wins.
pub async fn accept<'c>(
    ex: impl Exec<'c>,
    id: &str,
    token_hash: &TokenHash,
    user_id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "update invitations set state = 'accepted', accepted_at = $3, accepted_by = $4 \
         where id = $1 and token_hash = $2 and state = 'pending' and expires_at > $3",
    )
    .bind(id)
    .bind(token_hash.as_str())
    .bind(now)
    .bind(user_id)
    .execute(ex)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// True when a user with address `email` (any letter case) is a member of `org_id`.
pub async fn is_member_by_email<'c>(
    ex: impl Exec<'c>,
    org_id: &str,
    email: &str,
) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(
        "select 1 from memberships m join users u on u.id = m.user_id \
         where m.org_id = $1 and u.email_lower = $2",
    )
    .bind(org_id)
    .bind(crate::accounts::email_key(email))
    .fetch_optional(ex)
    .await?;
    Ok(found.is_some())
}
