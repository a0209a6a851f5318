//! The queries behind operator statistics (`GET /api/v1/stats`): users by status, users per role,
//! members per organization and sign-ups per day, all over one population of users chosen by
//! sign-up time and status.

use serde::Serialize;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row};

use crate::db::Exec;

/// Seconds in a day (sign-ups are counted per UTC day).
pub const DAY_SECS: i64 = 86_400;

/// Which users count.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserFilter<'a> {
    /// Signed up at or after (unix seconds).
    pub from: Option<i64>,
    /// Signed up at or before (unix seconds).
    pub to: Option<i64>,
    /// `verified`, `unverified` or `disabled` (checked by the caller).
    pub status: Option<&'a str>,
}

/// The condition on `u` (a `users` row) for parameters `$1` (from), `$2` (to), `$3` (status).
const USER_FILTER: &str = "($1 is null or u.created_at >= $1) and ($2 is null or u.created_at <= $2) \
     and ($3 is null or ($3 = 'verified' and u.email_verified = 1 and u.disabled = 0) \
     or ($3 = 'unverified' and u.email_verified = 0 and u.disabled = 0) \
     or ($3 = 'disabled' and u.disabled = 1))";

/// `sql` (which contains [`USER_FILTER`]) with the filter's three parameters bound.
fn filtered<'q>(sql: &'q str, f: &UserFilter<'q>) -> Query<'q, Any, AnyArguments<'q>> {
    sqlx::query(sql).bind(f.from).bind(f.to).bind(f.status)
}

/// Users by status.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserCounts {
    /// All users counted.
    pub total: i64,
    /// Email verified, not disabled.
    pub verified: i64,
    /// Email not verified, not disabled.
    pub unverified: i64,
    /// Disabled.
    pub disabled: i64,
}

/// Counts users by status.
pub async fn user_counts<'c>(
    ex: impl Exec<'c>,
    f: &UserFilter<'_>,
) -> Result<UserCounts, sqlx::Error> {
    let sql = format!(
        "select count(*) as total, \
         count(case when u.email_verified = 1 and u.disabled = 0 then 1 end) as verified, \
         count(case when u.email_verified = 0 and u.disabled = 0 then 1 end) as unverified, \
         count(case when u.disabled = 1 then 1 end) as disabled \
         from users u where {USER_FILTER}"
    );
    let row = filtered(&sql, f).fetch_one(ex).await?;
    Ok(UserCounts {
        total: row.try_get("total")?,
        verified: row.try_get("verified")?,
        unverified: row.try_get("unverified")?,
        disabled: row.try_get("disabled")?,
    })
}

/// `(role, number of distinct users holding it in at least one organization)`.
pub async fn users_per_role<'c>(
    ex: impl Exec<'c>,
    f: &UserFilter<'_>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = format!(
        "select m.role, count(distinct m.user_id) as users from memberships m \
         join users u on u.id = m.user_id where {USER_FILTER} group by m.role"
    );
    let rows = filtered(&sql, f).fetch_all(ex).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("role")?, r.try_get("users")?)))
        .collect()
}

/// Users in no organization at all.
pub async fn users_without_org<'c>(
    ex: impl Exec<'c>,
    f: &UserFilter<'_>,
) -> Result<i64, sqlx::Error> {
    let sql = format!(
        "select count(*) from users u where {USER_FILTER} \
         and not exists (select 1 from memberships m where m.user_id = u.id)"
    );
    filtered(&sql, f).fetch_one(ex).await?.try_get(0)
}

/// Members of one organization.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrgMembers {
    /// Organization id.
    pub org_id: String,
    /// Its slug.
    pub org_slug: String,
    /// Its name.
    pub org_name: String,
    /// Members counted.
    pub members: i64,
    /// Of whom owners.
    pub owners: i64,
    /// Admins.
    pub admins: i64,
    /// Members with the `member` role.
    pub regular_members: i64,
    /// Viewers.
    pub viewers: i64,
}

/// Members per organization (every organization, also empty ones), by slug.
pub async fn members_per_org<'c>(
    ex: impl Exec<'c>,
    f: &UserFilter<'_>,
) -> Result<Vec<OrgMembers>, sqlx::Error> {
    let count =
        |role: &str| format!("count(case when u.id is not null and m.role = '{role}' then 1 end)");
    let sql = format!(
        "select o.id, o.slug, o.name, count(u.id) as members, {} as owners, {} as admins, \
         {} as regular_members, {} as viewers \
         from organizations o left join memberships m on m.org_id = o.id \
         left join users u on u.id = m.user_id and {USER_FILTER} \
         group by o.id, o.slug, o.name order by o.slug",
        count("owner"),
        count("admin"),
        count("member"),
        count("viewer"),
    );
    let rows = filtered(&sql, f).fetch_all(ex).await?;
    rows.iter()
        .map(|r| {
            Ok(OrgMembers {
                org_id: r.try_get("id")?,
                org_slug: r.try_get("slug")?,
                org_name: r.try_get("name")?,
                members: r.try_get("members")?,
                owners: r.try_get("owners")?,
                admins: r.try_get("admins")?,
                regular_members: r.try_get("regular_members")?,
                viewers: r.try_get("viewers")?,
            })
        })
        .collect()
}

/// `(day number since the epoch, sign-ups that UTC day)`, oldest first, days without sign-ups left
/// out.
pub async fn signups_per_day<'c>(
    ex: impl Exec<'c>,
    f: &UserFilter<'_>,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let sql = format!(
        "select u.created_at / {DAY_SECS} as day, count(*) as signups from users u \
         where {USER_FILTER} group by u.created_at / {DAY_SECS} order by day"
    );
    let rows = filtered(&sql, f).fetch_all(ex).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("day")?, r.try_get("signups")?)))
        .collect()
}
