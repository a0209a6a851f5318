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
    })
}

/// Inserts an organization; `Ok(false)` when the slug is taken.
pub async fn insert_org<'c>(ex: impl Exec<'c>, org: &Organization) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "insert into organizations (id, slug, name, created_at, updated_at) values ($1, $2, $3, $4, $4)",
    )
    .bind(&org.id)
    .bind(&org.slug)
    .bind(&org.name)
    .bind(org.created_at)
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
        "select id, slug, name, created_at from organizations where id = $1 or slug = $1",
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
        "select o.id, o.slug, o.name, o.created_at, m.role from organizations o \
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
