//! SQL for organizations and memberships.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Membership, Organization};
use crate::db::{self, Exec};
use crate::orgs::roles::Role;

fn org_from_row(row: &AnyRow) -> Result<Organization, sqlx::Error> {
    Ok(Organization {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        require_mfa: row.try_get::<i64, _>("require_mfa")? != 0,
        sso_required: row.try_get::<i64, _>("sso_required")? != 0,
    })
}

/// Inserts an organization; `Ok(false)` when the slug is taken.
pub async fn insert_org<'c>(ex: impl Exec<'c>, org: &Organization) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "insert into organizations (id, slug, name, created_at, updated_at, require_mfa, \
         sso_required) values ($1, $2, $3, $4, $4, $5, $6)",
    )
    .bind(&org.id)
    .bind(&org.slug)
    .bind(&org.name)
    .bind(org.created_at)
    .bind(db::flag(org.require_mfa))
    .bind(db::flag(org.sso_required))
    .execute(ex)
    .await;
    db::inserted(result)
}

/// Finds an organization by id or by slug.
pub async fn find_org<'c>(
    ex: impl Exec<'c>,
    id_or_slug: &str,
) -> Result<Option<Organization>, sqlx::Error> {
    let row = sqlx::query(
        "select id, slug, name, created_at, require_mfa, sso_required from organizations where id = $1 or slug = $1",
    )
    .bind(id_or_slug)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(org_from_row).transpose()
}

/// Finds an organization by id or slug together with `user_id`'s role in it; `None` when either the
/// organization does not exist or the user is not a member (the caller cannot tell which).
pub async fn find_org_with_role<'c>(
    ex: impl Exec<'c>,
    id_or_slug: &str,
    user_id: &str,
) -> Result<Option<(Organization, Role)>, sqlx::Error> {
    let row = sqlx::query(
        "select o.id, o.slug, o.name, o.created_at, o.require_mfa, o.sso_required, m.role from organizations o \
         join memberships m on m.org_id = o.id \
         where (o.id = $1 or o.slug = $1) and m.user_id = $2",
    )
    .bind(id_or_slug)
    .bind(user_id)
    .fetch_optional(ex)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let role: String = row.try_get("role")?;
    // The check constraint guarantees a known role; an unknown one reads as no membership.
    role.parse::<Role>()
        .ok()
        .map(|role| org_from_row(&row).map(|org| (org, role)))
        .transpose()
}

/// Adds a membership; `Ok(false)` when the user is a member already.
pub async fn insert_membership<'c>(ex: impl Exec<'c>, m: &Membership) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "insert into memberships (org_id, user_id, role, joined_at) values ($1, $2, $3, $4)",
    )
    .bind(&m.org_id)
    .bind(&m.user_id)
    .bind(m.role.as_str())
    .bind(m.joined_at)
    .execute(ex)
    .await;
    db::inserted(result)
}

/// The role of `user_id` in `org_id`, if a member.
pub async fn find_role<'c>(
    ex: impl Exec<'c>,
    org_id: &str,
    user_id: &str,
) -> Result<Option<Role>, sqlx::Error> {
    let role: Option<String> =
        sqlx::query_scalar("select role from memberships where org_id = $1 and user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .fetch_optional(ex)
            .await?;
    // The check constraint guarantees a known role; an unknown one reads as no membership.
    Ok(role.and_then(|r| r.parse().ok()))
}

/// A member as the member list shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Member {
    /// The member's user id.
    pub user_id: String,
    /// Their email address.
    pub email: String,
    /// Their display name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// Unix seconds.
    pub joined_at: i64,
    /// Whether the member has a second factor (a confirmed TOTP authenticator or a passkey:
    /// [`crate::mfa::Factors::any`]). Shown to admins and operators only (least privilege: who is
    /// the weak account of an organization is not every viewer's business); `None` hides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa: Option<bool>,
}

impl Member {
    /// The member as a caller who may not see factors reads it.
    pub fn without_factors(self) -> Member {
        Member { mfa: None, ..self }
    }
}

/// SQL: 1 when the user `m.user_id` has a second factor, the [`crate::mfa::Factors::any`] rule
/// (recovery codes alone do not count).
const HAS_FACTOR: &str = "cast(case when exists (select 1 from totp_factors t \
     where t.user_id = m.user_id and t.confirmed_at is not null) \
     or exists (select 1 from passkeys p where p.user_id = m.user_id) then 1 else 0 end as bigint)";

fn member_from_row(row: &AnyRow) -> Result<Member, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(Member {
        mfa: Some(row.try_get::<i64, _>("mfa")? != 0),
        user_id: row.try_get("user_id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: role
            .parse()
            .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
        joined_at: row.try_get("joined_at")?,
    })
}

fn org_role_from_row(row: &AnyRow) -> Result<(Organization, Role), sqlx::Error> {
    let role: String = row.try_get("role")?;
    let role = role
        .parse()
        .map_err(|e: String| sqlx::Error::Decode(e.into()))?;
    Ok((org_from_row(row)?, role))
}

/// A keyset page position: rows strictly after `(time, id)` in the list's order.
pub type After<'a> = Option<(i64, &'a str)>;

fn split(after: After<'_>) -> (Option<i64>, Option<&str>) {
    match after {
        Some((t, id)) => (Some(t), Some(id)),
        None => (None, None),
    }
}

/// The organizations `user_id` belongs to with their role, oldest first, at most `limit` after
/// `after` (`created_at`, `id`).
pub async fn list_orgs_of_user<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    after: After<'_>,
    limit: i64,
) -> Result<Vec<(Organization, Role)>, sqlx::Error> {
    let (at, id) = split(after);
    let rows = sqlx::query(
        "select o.id, o.slug, o.name, o.created_at, o.require_mfa, o.sso_required, m.role from organizations o \
         join memberships m on m.org_id = o.id where m.user_id = $1 \
         and ($2 is null or o.created_at > $2 or (o.created_at = $2 and o.id > $3)) \
         order by o.created_at, o.id limit $4",
    )
    .bind(user_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter().map(org_role_from_row).collect()
}

/// Every organization (operators), oldest first, paginated like [`list_orgs_of_user`].
pub async fn list_all_orgs<'c>(
    ex: impl Exec<'c>,
    after: After<'_>,
    limit: i64,
) -> Result<Vec<Organization>, sqlx::Error> {
    let (at, id) = split(after);
    let rows = sqlx::query(
        "select id, slug, name, created_at, require_mfa, sso_required from organizations \
         where ($1 is null or created_at > $1 or (created_at = $1 and id > $2)) \
         order by created_at, id limit $3",
    )
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter().map(org_from_row).collect()
}

/// Takes the organization's row lock (PostgreSQL) by touching `updated_at`, so that concurrent
/// membership changes of one organization run one after the other and the last-owner check holds
/// (SQLite transactions are serialised already). `Ok(false)` when the organization is gone.
pub async fn lock_org<'c>(ex: impl Exec<'c>, org_id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("update organizations set updated_at = $1 where id = $2")
        .bind(now)
        .bind(org_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets name, slug, `require_mfa` and `sso_required`; `Ok(false)` when the slug is taken.
pub async fn update_org<'c>(
    ex: impl Exec<'c>,
    org: &Organization,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "update organizations set name = $1, slug = $2, require_mfa = $3, sso_required = $4, \
         updated_at = $5 where id = $6",
    )
    .bind(&org.name)
    .bind(&org.slug)
    .bind(db::flag(org.require_mfa))
    .bind(db::flag(org.sso_required))
    .bind(now)
    .bind(&org.id)
    .execute(ex)
    .await;
    db::inserted(result)
}

/// Deletes an organization; memberships, invitations, codes and refresh families go with it
/// (`on delete cascade`).
pub async fn delete_org<'c>(ex: impl Exec<'c>, org_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from organizations where id = $1")
        .bind(org_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Members of `org_id`, in the order they joined, at most `limit` after `after` (`joined_at`,
/// `user_id`); with `without_factor`, only those who have no second factor.
pub async fn list_members<'c>(
    ex: impl Exec<'c>,
    org_id: &str,
    without_factor: bool,
    after: After<'_>,
    limit: i64,
) -> Result<Vec<Member>, sqlx::Error> {
    let (at, id) = split(after);
    let sql = format!(
        "select * from (select m.user_id, u.email, u.name, m.role, m.joined_at, {HAS_FACTOR} as mfa \
         from memberships m join users u on u.id = m.user_id where m.org_id = $1 \
         and ($2 is null or m.joined_at > $2 or (m.joined_at = $2 and m.user_id > $3))) x \
         where ($4 = 0 or x.mfa = 0) \
         order by x.joined_at, x.user_id limit $5"
    );
    let rows = sqlx::query(&sql)
        .bind(org_id)
        .bind(at)
        .bind(id)
        .bind(db::flag(without_factor))
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(member_from_row).collect()
}

/// One member of `org_id`.
pub async fn find_member<'c>(
    ex: impl Exec<'c>,
    org_id: &str,
    user_id: &str,
) -> Result<Option<Member>, sqlx::Error> {
    let sql = format!(
        "select m.user_id, u.email, u.name, m.role, m.joined_at, {HAS_FACTOR} as mfa \
         from memberships m join users u on u.id = m.user_id where m.org_id = $1 and m.user_id = $2"
    );
    let row = sqlx::query(&sql)
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(member_from_row).transpose()
}

/// Changes a member's role.
pub async fn set_role<'c>(
    ex: impl Exec<'c>,
    org_id: &str,
    user_id: &str,
    role: Role,
) -> Result<(), sqlx::Error> {
    sqlx::query("update memberships set role = $1 where org_id = $2 and user_id = $3")
        .bind(role.as_str())
        .bind(org_id)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Removes a membership.
pub async fn delete_membership<'c>(
    ex: impl Exec<'c>,
    org_id: &str,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from memberships where org_id = $1 and user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// How many owners `org_id` has.
pub async fn count_owners<'c>(ex: impl Exec<'c>, org_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from memberships where org_id = $1 and role = 'owner'")
        .bind(org_id)
        .fetch_one(ex)
        .await
}

/// Every organization `user_id` belongs to with their role, by name (for `GET /api/v1/me`).
pub async fn memberships_of_user<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
) -> Result<Vec<(Organization, Role)>, sqlx::Error> {
    let rows = sqlx::query(
        "select o.id, o.slug, o.name, o.created_at, o.require_mfa, o.sso_required, m.role from organizations o \
         join memberships m on m.org_id = o.id where m.user_id = $1 order by o.name, o.id",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await?;
    rows.iter().map(org_role_from_row).collect()
}

/// The organizations whose only owner is `user_id` (such a person can neither leave them nor delete
/// their account until another owner is named), by name.
pub async fn solely_owned_by<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
) -> Result<Vec<Organization>, sqlx::Error> {
    let rows = sqlx::query(
        "select o.id, o.slug, o.name, o.created_at, o.require_mfa, o.sso_required, m.role from organizations o \
         join memberships m on m.org_id = o.id \
         where m.user_id = $1 and m.role = 'owner' \
         and (select count(*) from memberships x where x.org_id = o.id and x.role = 'owner') = 1 \
         order by o.name, o.id",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|row| org_role_from_row(row).map(|(org, _)| org))
        .collect()
}
