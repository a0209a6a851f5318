//! SQL of the device authorization grant (table `device_authorizations`, migration 0017). Every
//! change of status is a conditional update on the status it leaves, so that two browsers (or two
//! processes) answering the same code, or two polls redeeming it, cannot both win.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::Exec;

/// Waiting for the person.
pub const PENDING: &str = "pending";
/// Approved; the device may redeem it once.
pub const APPROVED: &str = "approved";
/// Denied by the person (`access_denied` at the token endpoint).
pub const DENIED: &str = "denied";
/// Tokens were issued.
pub const REDEEMED: &str = "redeemed";

/// A new device authorization, as `/device_authorization` stores it.
#[derive(Debug)]
pub struct NewDeviceAuthorization<'a> {
    /// SHA-256 hex of the device code.
    pub device_code_hash: &'a str,
    /// SHA-256 hex of the normalised user code.
    pub user_code_hash: &'a str,
    /// The client that asked.
    pub client_id: &'a str,
    /// Validated scopes, space-separated.
    pub scope: &'a str,
    /// The `organization` the client suggested (id or slug), if any.
    pub org_hint: Option<&'a str>,
    /// Seconds between polls.
    pub interval: i64,
    /// Issued at.
    pub created_at: i64,
    /// Dead after.
    pub expires_at: i64,
}

/// A stored device authorization.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    /// SHA-256 hex of the device code.
    pub device_code_hash: String,
    /// The client that asked.
    pub client_id: String,
    /// Scopes, space-separated.
    pub scope: String,
    /// The organization the client suggested.
    pub org_hint: Option<String>,
    /// [`PENDING`], [`APPROVED`], [`DENIED`] or [`REDEEMED`].
    pub status: String,
    /// Who approved.
    pub user_id: Option<String>,
    /// The organization chosen at approval.
    pub org_id: Option<String>,
    /// Login time of the session that approved.
    pub auth_time: Option<i64>,
    /// JSON array of the methods of that session.
    pub amr: Option<String>,
    /// Seconds the device must wait between polls.
    pub interval: i64,
    /// Dead after.
    pub expires_at: i64,
}

const COLUMNS: &str = "device_code_hash, client_id, scope, org_hint, status, user_id, org_id, \
                       auth_time, amr, poll_interval, expires_at";

fn row(r: &AnyRow) -> Result<DeviceRow, sqlx::Error> {
    Ok(DeviceRow {
        device_code_hash: r.try_get("device_code_hash")?,
        client_id: r.try_get("client_id")?,
        scope: r.try_get("scope")?,
        org_hint: r.try_get("org_hint")?,
        status: r.try_get("status")?,
        user_id: r.try_get("user_id")?,
        org_id: r.try_get("org_id")?,
        auth_time: r.try_get("auth_time")?,
        amr: r.try_get("amr")?,
        interval: r.try_get("poll_interval")?,
        expires_at: r.try_get("expires_at")?,
    })
}

/// Stores a new authorization; a unique violation (the same user code is live already) is the
/// caller's to retry with another code.
pub async fn insert<'c>(
    ex: impl Exec<'c>,
    d: &NewDeviceAuthorization<'_>,
) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
    sqlx::query(
        "insert into device_authorizations (device_code_hash, user_code_hash, client_id, scope, \
         org_hint, status, poll_interval, created_at, expires_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(d.device_code_hash)
    .bind(d.user_code_hash)
    .bind(d.client_id)
    .bind(d.scope)
    .bind(d.org_hint)
    .bind(PENDING)
    .bind(d.interval)
    .bind(d.created_at)
    .bind(d.expires_at)
    .execute(ex)
    .await
}

/// The authorization of a device code (by its hash).
pub async fn find_by_device_code<'c>(
    ex: impl Exec<'c>,
    hash: &str,
) -> Result<Option<DeviceRow>, sqlx::Error> {
    let sql = format!("select {COLUMNS} from device_authorizations where device_code_hash = $1");
    let found = sqlx::query(&sql).bind(hash).fetch_optional(ex).await?;
    found.as_ref().map(row).transpose()
}

/// The authorization of a user code (by the hash of its normalised form).
pub async fn find_by_user_code<'c>(
    ex: impl Exec<'c>,
    hash: &str,
) -> Result<Option<DeviceRow>, sqlx::Error> {
    let sql = format!("select {COLUMNS} from device_authorizations where user_code_hash = $1");
    let found = sqlx::query(&sql).bind(hash).fetch_optional(ex).await?;
    found.as_ref().map(row).transpose()
}

/// What the person decided, with what the tokens will carry.
#[derive(Debug)]
pub struct Decision<'a> {
    /// Who answered.
    pub user_id: &'a str,
    /// The organization chosen (approval only).
    pub org_id: Option<&'a str>,
    /// Login time of the answering session.
    pub auth_time: i64,
    /// JSON array of the session's methods.
    pub amr: &'a str,
}

/// Approves (`approve`) or denies a pending, unexpired authorization; false when it was answered
/// already or expired meanwhile (the conditional update decides a race between two answers).
pub async fn decide<'c>(
    ex: impl Exec<'c>,
    device_code_hash: &str,
    approve: bool,
    d: &Decision<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update device_authorizations set status = $1, user_id = $2, org_id = $3, auth_time = $4, \
         amr = $5 where device_code_hash = $6 and status = $7 and expires_at > $8",
    )
    .bind(if approve { APPROVED } else { DENIED })
    .bind(d.user_id)
    .bind(if approve { d.org_id } else { None })
    .bind(d.auth_time)
    .bind(d.amr)
    .bind(device_code_hash)
    .bind(PENDING)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a poll at `now` (RFC 8628 §3.5). A poll sooner than the interval after the last one
/// grows the interval by 5 seconds for this and every later poll and answers false (`slow_down`);
/// one condition in one statement, so concurrent polls cannot both pass.
pub async fn record_poll<'c>(
    ex: impl Exec<'c> + Copy,
    device_code_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let on_time = sqlx::query(
        "update device_authorizations set last_polled_at = $1 where device_code_hash = $2 \
         and (last_polled_at is null or last_polled_at + poll_interval <= $1)",
    )
    .bind(now)
    .bind(device_code_hash)
    .execute(ex)
    .await?;
    if on_time.rows_affected() == 1 {
        return Ok(true);
    }
    sqlx::query(
        "update device_authorizations set poll_interval = poll_interval + 5, last_polled_at = $1 \
         where device_code_hash = $2",
    )
    .bind(now)
    .bind(device_code_hash)
    .execute(ex)
    .await?;
    Ok(false)
}

/// Marks an approved authorization redeemed; true when this caller won (exactly one redemption).
pub async fn claim<'c>(ex: impl Exec<'c>, device_code_hash: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update device_authorizations set status = $1 where device_code_hash = $2 and status = $3",
    )
    .bind(REDEEMED)
    .bind(device_code_hash)
    .bind(APPROVED)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}
