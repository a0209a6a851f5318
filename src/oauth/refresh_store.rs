//! SQL for refresh-token families and their tokens (RFC 6749 §6, RFC 9700 §4.14): only SHA-256 hashes
//! of tokens are stored; a family is what a reuse revokes as a whole.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row};

use crate::accounts::{self, User};
use crate::crypto::tokens::TokenHash;
use crate::db::Exec;
use crate::orgs::roles::Role;

/// A new refresh-token family, born at a code redemption.
#[derive(Debug, Clone)]
pub struct NewFamily<'a> {
    /// Family id (UUIDv7).
    pub id: &'a str,
    /// The client the family belongs to.
    pub client_id: &'a str,
    /// The user the family speaks for.
    pub user_id: &'a str,
    /// Selected organization, if any.
    pub org_id: Option<&'a str>,
    /// Scope granted at the code redemption; a refresh may narrow it per request, never widen it.
    pub scope: &'a str,
    /// Browser session (`sid`) the family was born in.
    pub session_id: Option<&'a str>,
    /// `offline_access` was granted: the family survives logout.
    pub offline: bool,
    /// Original `auth_time`, kept in every ID token of the family (OIDC Core §12.2).
    pub auth_time: i64,
    /// Authentication methods of the original login (`amr`), JSON array text.
    pub amr: &'a str,
    /// Now.
    pub created_at: i64,
    /// Absolute end of the family.
    pub expires_at: i64,
    /// The resource server the family's access tokens are for (RFC 8707), if one was named.
    pub resource: Option<&'a str>,
    /// DPoP key thumbprint the family is bound to (RFC 9449 §5: a public client's refresh tokens
    /// are bound to the key of the proof that obtained them), if any.
    pub dpop_jkt: Option<&'a str>,
}

/// A presented refresh token together with its family.
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// SHA-256 of the token.
    pub token_hash: String,
    /// Its generation in the family (1 for the token issued with the code).
    pub generation: i64,
    /// Set once exchanged for a successor.
    pub rotated_at: Option<i64>,
    /// The successor, sealed under this token (see `oauth::refresh`).
    pub successor_sealed: Option<String>,
    /// Family id.
    pub family_id: String,
    /// Family client.
    pub client_id: String,
    /// Family organization.
    pub org_id: Option<String>,
    /// Family scope.
    pub scope: String,
    /// Family `sid`.
    pub session_id: Option<String>,
    /// `offline_access` was granted: the family survives logout.
    pub offline: bool,
    /// Original `auth_time`.
    pub auth_time: i64,
    /// Authentication methods of the original login.
    pub amr: Vec<String>,
    /// The family's user, as it is now (one query with the token, the hot path of the refresh grant).
    pub user: User,
    /// Slug of the family's organization, `None` when it has none or it is gone.
    pub org_slug: Option<String>,
    /// The user's current role in the family's organization, `None` when no longer a member.
    pub org_role: Option<Role>,
    /// The family's organization requires a second factor now (its live `require_mfa`; false when
    /// it has none or the user is no longer a member).
    pub org_require_mfa: bool,
    /// The family's organization requires sign-in through its connection now (its live
    /// `sso_required`; false when it has none or the user is no longer a member).
    pub org_sso_required: bool,
    /// When this token was issued. While it is the family's current token this is the family's last
    /// successful use (birth or last rotation), which the idle limit counts from.
    pub issued_at: i64,
    /// Absolute end.
    pub expires_at: i64,
    /// Set when the family was revoked.
    pub revoked_at: Option<i64>,
    /// The family's resource server (RFC 8707), if any.
    pub resource: Option<String>,
    /// The DPoP key thumbprint the family is bound to, if any.
    pub dpop_jkt: Option<String>,
}

/// `f`'s values bound as `$1`–`$13` of a family insert (`$10` is both `created_at` and
/// `last_used_at`): the one column order both inserts below use.
fn bind_family<'q>(sql: &'q str, f: &NewFamily<'q>) -> Query<'q, Any, AnyArguments<'q>> {
    sqlx::query(sql)
        .bind(f.id)
        .bind(f.client_id)
        .bind(f.user_id)
        .bind(f.org_id)
        .bind(f.scope)
        .bind(f.session_id)
        .bind(crate::db::flag(f.offline))
        .bind(f.auth_time)
        .bind(f.amr)
        .bind(f.created_at)
        .bind(f.expires_at)
        .bind(f.resource)
        .bind(f.dpop_jkt)
}

/// Inserts a family.
pub async fn insert_family<'c>(ex: impl Exec<'c>, f: &NewFamily<'_>) -> Result<(), sqlx::Error> {
    bind_family(
        "insert into refresh_families (id, client_id, user_id, org_id, scope, session_id, offline, \
         auth_time, amr, created_at, last_used_at, expires_at, resource, dpop_jkt) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13)",
        f,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Inserts `f`, a family born from an organization switch, only while the family it was switched
/// from (`parent_id`) is not revoked: a sign-out or a reuse that revokes the parent concurrently
/// wins, and no child outlives it (false then). The condition is part of the insert, so the race is
/// decided by the database, not by an earlier read.
pub async fn insert_family_unless_parent_revoked<'c>(
    ex: impl Exec<'c>,
    f: &NewFamily<'_>,
    parent_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = bind_family(
        "insert into refresh_families (id, client_id, user_id, org_id, scope, session_id, offline, \
         auth_time, amr, created_at, last_used_at, expires_at, resource, dpop_jkt) \
         select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13 \
         where exists (select 1 from refresh_families p where p.id = $14 and p.revoked_at is null)",
        f,
    )
    .bind(parent_id)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts a token of generation `generation` into a family.
pub async fn insert_token<'c>(
    ex: impl Exec<'c>,
    hash: &TokenHash,
    family_id: &str,
    generation: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into refresh_tokens (token_hash, family_id, generation, created_at) values ($1, $2, $3, $4)",
    )
    .bind(hash.as_str())
    .bind(family_id)
    .bind(generation)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Finds a token and its family by the token's hash.
pub async fn find_token<'c>(
    ex: impl Exec<'c>,
    hash: &TokenHash,
) -> Result<Option<TokenRow>, sqlx::Error> {
    let row = sqlx::query(
        "select t.token_hash, t.generation, t.rotated_at, t.successor_sealed, f.id as family_id, \
         f.client_id, f.org_id, f.scope, f.session_id, f.offline, f.auth_time, f.amr, \
         t.created_at as issued_at, f.expires_at, f.revoked_at, f.resource, f.dpop_jkt, \
         u.id, u.email, u.name, u.email_verified, u.disabled, u.created_at, \
         o.slug as org_slug, m.role as org_role, o.require_mfa as org_require_mfa, \
         o.sso_required as org_sso_required \
         from refresh_tokens t \
         join refresh_families f on f.id = t.family_id \
         join users u on u.id = f.user_id \
         left join memberships m on m.org_id = f.org_id and m.user_id = f.user_id \
         left join organizations o on o.id = m.org_id \
         where t.token_hash = $1",
    )
    .bind(hash.as_str())
    .fetch_optional(ex)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(TokenRow {
        token_hash: r.try_get("token_hash")?,
        generation: r.try_get("generation")?,
        rotated_at: r.try_get("rotated_at")?,
        successor_sealed: r.try_get("successor_sealed")?,
        family_id: r.try_get("family_id")?,
        client_id: r.try_get("client_id")?,
        org_id: r.try_get("org_id")?,
        scope: r.try_get("scope")?,
        session_id: r.try_get("session_id")?,
        offline: r.try_get::<i64, _>("offline")? != 0,
        auth_time: r.try_get("auth_time")?,
        amr: serde_json::from_str(&r.try_get::<String, _>("amr")?).unwrap_or_default(),
        user: accounts::store::user_from_row(&r)?,
        org_slug: r.try_get("org_slug")?,
        // The check constraint guarantees a known role; an unknown one reads as no membership.
        org_role: r
            .try_get::<Option<String>, _>("org_role")?
            .and_then(|role| role.parse().ok()),
        org_require_mfa: r
            .try_get::<Option<i64>, _>("org_require_mfa")?
            .is_some_and(|flag| flag != 0),
        org_sso_required: r
            .try_get::<Option<i64>, _>("org_sso_required")?
            .is_some_and(|flag| flag != 0),
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        resource: r.try_get("resource")?,
        dpop_jkt: r.try_get("dpop_jkt")?,
    }))
}

/// Marks a token rotated, with its sealed successor, unless it already was or its family was revoked
/// meanwhile. This conditional update decides races between concurrent refreshes (and processes):
/// true only for the one caller that wins.
pub async fn claim_rotation<'c>(
    ex: impl Exec<'c>,
    hash: &str,
    now: i64,
    successor_sealed: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update refresh_tokens set rotated_at = $1, successor_sealed = $2 \
         where token_hash = $3 and rotated_at is null \
         and exists (select 1 from refresh_families f where f.id = refresh_tokens.family_id and f.revoked_at is null)",
    )
    .bind(now)
    .bind(successor_sealed)
    .bind(hash)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a token that was inserted as a successor but lost the rotation race (nobody ever saw it).
pub async fn delete_token<'c>(ex: impl Exec<'c>, hash: &TokenHash) -> Result<(), sqlx::Error> {
    sqlx::query("delete from refresh_tokens where token_hash = $1")
        .bind(hash.as_str())
        .execute(ex)
        .await?;
    Ok(())
}

/// True when the token of `hash` has been rotated (used to tell a fresh successor from a spent one).
pub async fn is_rotated<'c>(ex: impl Exec<'c>, hash: &TokenHash) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "select count(*) from refresh_tokens where token_hash = $1 and rotated_at is not null",
    )
    .bind(hash.as_str())
    .fetch_one(ex)
    .await?;
    Ok(n > 0)
}
