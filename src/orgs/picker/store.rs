//! SQL of the organization picker: a user's memberships with what the page shows, and the
//! remembered last choice (`memberships.last_selected_at`).

use sqlx::Row;

use crate::db::Exec;
use crate::orgs::roles::Role;

/// One organization a user may act for, as the picker lists it.
#[derive(Debug, Clone)]
pub struct MembershipChoice {
    /// Organization id (the `org_id` claim).
    pub org_id: String,
    /// Organization slug (the `org_slug` claim).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// The user's role there.
    pub role: Role,
    /// When the user last picked it at login (unix seconds), if ever.
    pub last_selected_at: Option<i64>,
    /// The organization requires a second factor.
    pub require_mfa: bool,
    /// The organization requires its verified-domain members to sign in through its connection.
    pub sso_required: bool,
}

/// Every organization `user_id` belongs to, by name.
pub async fn memberships_of<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
) -> Result<Vec<MembershipChoice>, sqlx::Error> {
    let rows = sqlx::query(
        "select o.id, o.slug, o.name, o.require_mfa, o.sso_required, m.role, m.last_selected_at from memberships m \
         join organizations o on o.id = m.org_id \
         where m.user_id = $1 order by o.name, o.slug",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let role: String = row.try_get("role")?;
        // The check constraint guarantees a known role; an unknown one reads as no membership.
        let Ok(role) = role.parse::<Role>() else {
            continue;
        };
        out.push(MembershipChoice {
            org_id: row.try_get("id")?,
            slug: row.try_get("slug")?,
            name: row.try_get("name")?,
            role,
            last_selected_at: row.try_get("last_selected_at")?,
            require_mfa: row.try_get::<i64, _>("require_mfa")? != 0,
            sso_required: row.try_get::<i64, _>("sso_required")? != 0,
        });
    }
    Ok(out)
}

/// Remembers that `user_id` picked `org_id` at `now`; `Ok(false)` when the user is not a member.
pub async fn mark_selected<'c>(
    ex: impl Exec<'c>,
    org_id: &str,
    user_id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "update memberships set last_selected_at = $1 where org_id = $2 and user_id = $3",
    )
    .bind(now)
    .bind(org_id)
    .bind(user_id)
    .execute(ex)
    .await?;
    Ok(result.rows_affected() > 0)
}
