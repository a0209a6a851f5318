//! SQL for authorization codes, consents and the access-token deny-list.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::crypto::tokens::TokenHash;
use crate::db::Exec;

/// A stored authorization code (only its hash is kept).
#[derive(Debug, Clone)]
pub struct CodeRow {
    /// SHA-256 of the code.
    pub code_hash: String,
    /// Bound client.
    pub client_id: String,
    /// The user who authorized.
    pub user_id: String,
    /// Selected organization.
    pub org_id: Option<String>,
    /// Bound redirect URI.
    pub redirect_uri: String,
    /// Granted scopes.
    pub scope: String,
    /// Nonce for the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Browser session id (`sid`).
    pub session_id: Option<String>,
    /// Login time.
    pub auth_time: i64,
    /// JSON array of methods.
    pub amr: String,
    /// Issued at.
    pub created_at: i64,
    /// Dead after.
    pub expires_at: i64,
    /// Set once redeemed.
    pub redeemed_at: Option<i64>,
    /// What the redemption issued, revoked on replay.
    pub issued_family_id: Option<String>,
    /// `jti` of the access token the redemption issued.
    pub issued_jti: Option<String>,
    /// The resource server the authorization request named (RFC 8707), if any.
    pub resource: Option<String>,
    /// DPoP key thumbprint the code is bound to (RFC 9449 §10: `dpop_jkt`), if any.
    pub dpop_jkt: Option<String>,
}

/// Stores a new code.
pub async fn insert_code<'c>(ex: impl Exec<'c>, c: &CodeRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into authorization_codes (code_hash, client_id, user_id, org_id, redirect_uri, scope, nonce, \
         code_challenge, code_challenge_method, session_id, auth_time, amr, created_at, expires_at, \
         resource, dpop_jkt) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&c.code_hash)
    .bind(&c.client_id)
    .bind(&c.user_id)
    .bind(&c.org_id)
    .bind(&c.redirect_uri)
    .bind(&c.scope)
    .bind(&c.nonce)
    .bind(&c.code_challenge)
    .bind(c.code_challenge.as_ref().map(|_| "S256"))
    .bind(&c.session_id)
    .bind(c.auth_time)
    .bind(&c.amr)
    .bind(c.created_at)
    .bind(c.expires_at)
    .bind(&c.resource)
    .bind(&c.dpop_jkt)
    .execute(ex)
    .await?;
    Ok(())
}

/// Finds a code by its hash.
pub async fn find_code<'c>(
    ex: impl Exec<'c>,
    hash: &TokenHash,
) -> Result<Option<CodeRow>, sqlx::Error> {
    let row = sqlx::query(
        "select code_hash, client_id, user_id, org_id, redirect_uri, scope, nonce, code_challenge, session_id, \
         auth_time, amr, created_at, expires_at, redeemed_at, issued_family_id, issued_jti, resource, \
         dpop_jkt from authorization_codes where code_hash = $1",
    )
    .bind(hash.as_str())
    .fetch_optional(ex)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(CodeRow {
        code_hash: r.try_get("code_hash")?,
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        org_id: r.try_get("org_id")?,
        redirect_uri: r.try_get("redirect_uri")?,
        scope: r.try_get("scope")?,
        nonce: r.try_get("nonce")?,
        code_challenge: r.try_get("code_challenge")?,
        session_id: r.try_get("session_id")?,
        auth_time: r.try_get("auth_time")?,
        amr: r.try_get("amr")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        redeemed_at: r.try_get("redeemed_at")?,
        issued_family_id: r.try_get("issued_family_id")?,
        issued_jti: r.try_get("issued_jti")?,
        resource: r.try_get("resource")?,
        dpop_jkt: r.try_get("dpop_jkt")?,
    }))
}

/// Marks a code redeemed unless it already was: the conditional update is what makes a code single-use
/// when several requests (or processes) race. True when this caller won.
pub async fn claim_code<'c>(
    ex: impl Exec<'c>,
    hash: &str,
    now: i64,
    jti: &str,
    family_id: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update authorization_codes set redeemed_at = $1, issued_jti = $2, issued_family_id = $3 \
         where code_hash = $4 and redeemed_at is null",
    )
    .bind(now)
    .bind(jti)
    .bind(family_id)
    .bind(hash)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Puts an access token's `jti` on the deny-list until it would expire anyway.
pub async fn deny_access_token<'c>(
    ex: impl Exec<'c>,
    jti: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("insert into revoked_access_tokens (jti, expires_at) values ($1, $2) on conflict (jti) do nothing")
        .bind(jti)
        .bind(expires_at)
        .execute(ex)
        .await?;
    Ok(())
}

/// True when an access token was revoked.
pub async fn is_access_token_denied<'c>(ex: impl Exec<'c>, jti: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("select count(*) from revoked_access_tokens where jti = $1")
        .bind(jti)
        .fetch_one(ex)
        .await?;
    Ok(n > 0)
}

/// Revokes a refresh-token family.
pub async fn revoke_family<'c>(
    ex: impl Exec<'c>,
    family_id: &str,
    now: i64,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("update refresh_families set revoked_at = $1, revoked_reason = $2 where id = $3 and revoked_at is null")
        .bind(now)
        .bind(reason)
        .bind(family_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// The organization key of a consent given for no organization (the key column is not null, so that
/// it can be part of the primary key on both databases).
pub const NO_ORGANIZATION: &str = "";

/// The scopes a user has consented to for a client acting for organization `org_id` (`None`: no
/// organization), space-separated, if any. A consent for one organization says nothing about another.
pub async fn consented_scopes<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    client_id: &str,
    org_id: Option<&str>,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select scopes from consents where user_id = $1 and client_id = $2 and org_id = $3",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(org_id.unwrap_or(NO_ORGANIZATION))
    .fetch_optional(ex)
    .await
}

/// Records (or widens) a consent for a client acting for organization `org_id` (`None`: none).
pub async fn save_consent<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    client_id: &str,
    org_id: Option<&str>,
    scopes: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into consents (user_id, client_id, org_id, scopes, granted_at) values ($1, $2, $3, $4, $5) \
         on conflict (user_id, client_id, org_id) do update set scopes = excluded.scopes, \
         granted_at = excluded.granted_at",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(org_id.unwrap_or(NO_ORGANIZATION))
    .bind(scopes)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Revokes every live refresh-token family of `user_id` (password reset: whoever held a refresh
/// token may have held the old password too). Returns how many were revoked.
pub async fn revoke_user_families<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    now: i64,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update refresh_families set revoked_at = $1, revoked_reason = $2 \
         where user_id = $3 and revoked_at is null",
    )
    .bind(now)
    .bind(reason)
    .bind(user_id)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// One consent of a person, as the connected-apps page lists it.
#[derive(Debug, Clone)]
pub struct ConsentRow {
    /// The client consented to.
    pub client_id: String,
    /// Its display name.
    pub client_name: String,
    /// The organization the client acts for, as `(id, slug, name)` (`None`: no organization).
    pub org: Option<(String, String, String)>,
    /// Scopes granted, space-separated.
    pub scopes: String,
    /// Unix seconds of the (last) grant.
    pub granted_at: i64,
}

/// One live refresh-token family of a person, as the connected-apps page lists it.
#[derive(Debug, Clone)]
pub struct FamilyRow {
    /// The client holding it.
    pub client_id: String,
    /// Its display name.
    pub client_name: String,
    /// The organization it speaks for, as `(id, slug, name)`, if any.
    pub org: Option<(String, String, String)>,
    /// Scopes, space-separated.
    pub scope: String,
    /// Unix seconds of the grant it was born from.
    pub created_at: i64,
    /// Unix seconds of its last use: its newest token's issue (the family's own `last_used_at` is no
    /// longer updated on rotation, migration 0002).
    pub last_used_at: i64,
}

/// Every consent of `user_id` (all clients, all organizations), with the client's name and the
/// organization's slug.
pub async fn consents_of_user<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
) -> Result<Vec<ConsentRow>, sqlx::Error> {
    let rows = sqlx::query(
        "select c.client_id, cl.name as client_name, o.id as org_id, o.slug as org_slug, o.name as org_name, c.scopes, \
         c.granted_at from consents c join clients cl on cl.id = c.client_id \
         left join organizations o on o.id = c.org_id \
         where c.user_id = $1 order by c.granted_at, c.client_id",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ConsentRow {
                client_id: r.try_get("client_id")?,
                client_name: r.try_get("client_name")?,
                org: org_of(r)?,
                scopes: r.try_get("scopes")?,
                granted_at: r.try_get("granted_at")?,
            })
        })
        .collect()
}

/// The `(id, slug, name)` of the organization a row's `left join organizations` found, if any.
fn org_of(r: &AnyRow) -> Result<Option<(String, String, String)>, sqlx::Error> {
    let id: Option<String> = r.try_get("org_id")?;
    let slug: Option<String> = r.try_get("org_slug")?;
    let name: Option<String> = r.try_get("org_name")?;
    Ok(id
        .zip(slug)
        .zip(name)
        .map(|((id, slug), name)| (id, slug, name)))
}

/// The live (not revoked, not expired at `now`) refresh-token families of `user_id`, with the
/// client's name and the organization's slug.
pub async fn live_families_of_user<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    now: i64,
) -> Result<Vec<FamilyRow>, sqlx::Error> {
    let rows = sqlx::query(
        "select f.client_id, cl.name as client_name, o.id as org_id, o.slug as org_slug, o.name as org_name, f.scope, \
         f.created_at, coalesce((select max(t.created_at) from refresh_tokens t \
         where t.family_id = f.id), f.last_used_at) as last_used_at \
         from refresh_families f join clients cl on cl.id = f.client_id \
         left join organizations o on o.id = f.org_id \
         where f.user_id = $1 and f.revoked_at is null and f.expires_at > $2 \
         order by f.created_at, f.id",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(FamilyRow {
                client_id: r.try_get("client_id")?,
                client_name: r.try_get("client_name")?,
                org: org_of(r)?,
                scope: r.try_get("scope")?,
                created_at: r.try_get("created_at")?,
                last_used_at: r.try_get("last_used_at")?,
            })
        })
        .collect()
}

/// Deletes every consent `user_id` gave `client_id` (for every organization); returns how many.
pub async fn delete_client_consents<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    client_id: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("delete from consents where user_id = $1 and client_id = $2")
        .bind(user_id)
        .bind(client_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}

/// Revokes every live refresh-token family `user_id` holds at `client_id` (offline ones included)
/// with `reason`; returns how many.
pub async fn revoke_client_families<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    client_id: &str,
    now: i64,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update refresh_families set revoked_at = $1, revoked_reason = $2 \
         where user_id = $3 and client_id = $4 and revoked_at is null",
    )
    .bind(now)
    .bind(reason)
    .bind(user_id)
    .bind(client_id)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}
