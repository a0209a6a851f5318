//! SQL for back-channel logout: the clients of each browser session (`backchannel_sessions`) and
//! the queue of logout tokens to post (`backchannel_logouts`).

use crate::crypto::tokens::new_id;
use crate::db::Exec;

/// Records that `client_id` was issued a code in browser session `sid` of `user_id`; a repeat is a
/// no-op (the primary key decides, so concurrent authorizations never fail on it).
pub async fn remember<'c>(
    ex: impl Exec<'c>,
    sid: &str,
    client_id: &str,
    user_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into backchannel_sessions (sid, client_id, user_id, created_at) \
         values ($1, $2, $3, $4) on conflict (sid, client_id) do nothing",
    )
    .bind(sid)
    .bind(client_id)
    .bind(user_id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// One (session, client) whose end must be announced.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Ended {
    /// The browser session (`sid`).
    pub sid: String,
    /// The client to tell.
    pub client_id: String,
    /// The user (`sub`).
    pub user_id: String,
}

/// Takes the clients of session `sid` out of `backchannel_sessions`. The delete decides: of two
/// processes ending one session, each row goes to exactly one, so a client is told once.
pub async fn take_session<'c>(ex: impl Exec<'c>, sid: &str) -> Result<Vec<Ended>, sqlx::Error> {
    sqlx::query_as(
        "delete from backchannel_sessions where sid = $1 returning sid, client_id, user_id",
    )
    .bind(sid)
    .fetch_all(ex)
    .await
}

/// [`take_session`], only when no browser session `sid` is left: RP-initiated logout may name a
/// session (in its `id_token_hint`) that still lives in another browser, which it does not end.
pub async fn take_ended_session<'c>(
    ex: impl Exec<'c>,
    sid: &str,
) -> Result<Vec<Ended>, sqlx::Error> {
    sqlx::query_as(
        "delete from backchannel_sessions where sid = $1 \
         and not exists (select 1 from sessions where sid = $1) \
         returning sid, client_id, user_id",
    )
    .bind(sid)
    .fetch_all(ex)
    .await
}

/// Takes the clients of every session of `user_id` (see [`take_session`]).
pub async fn take_user<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<Vec<Ended>, sqlx::Error> {
    sqlx::query_as(
        "delete from backchannel_sessions where user_id = $1 returning sid, client_id, user_id",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await
}

/// Queues one logout token for `ended`, due at `now`.
pub async fn queue<'c>(ex: impl Exec<'c>, ended: &Ended, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into backchannel_logouts (id, client_id, sub, sid, created_at, next_attempt_at) \
         values ($1, $2, $3, $4, $5, $5)",
    )
    .bind(new_id())
    .bind(&ended.client_id)
    .bind(&ended.user_id)
    .bind(&ended.sid)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// A queued logout as the delivery loop reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LogoutRow {
    /// Row id.
    pub id: String,
    /// The client to tell (`aud`).
    pub client_id: String,
    /// The user (`sub`).
    pub sub: String,
    /// The ended session (`sid`).
    pub sid: String,
    /// When the session ended.
    pub created_at: i64,
    /// Failed attempts so far.
    pub attempts: i64,
}

/// Ids of undelivered, not given-up logouts due at `now` and not leased by a process, oldest first.
pub async fn due<'c>(ex: impl Exec<'c>, now: i64, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select id from backchannel_logouts where delivered_at is null and given_up_at is null \
         and next_attempt_at <= $1 and (locked_until is null or locked_until < $1) \
         order by next_attempt_at, created_at limit $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(ex)
    .await
}

/// Leases logout `id` until `until` and returns it, or `None` when another process holds it or it
/// is done. One conditional update takes the lease, so two processes never both post one logout.
pub async fn claim<'c>(
    ex: impl Exec<'c> + Copy,
    id: &str,
    now: i64,
    until: i64,
) -> Result<Option<LogoutRow>, sqlx::Error> {
    let done = sqlx::query(
        "update backchannel_logouts set locked_until = $2 where id = $1 and delivered_at is null \
         and given_up_at is null and (locked_until is null or locked_until < $3)",
    )
    .bind(id)
    .bind(until)
    .bind(now)
    .execute(ex)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    sqlx::query_as(
        "select id, client_id, sub, sid, created_at, attempts from backchannel_logouts \
         where id = $1",
    )
    .bind(id)
    .fetch_optional(ex)
    .await
}

/// Records that logout `id` was accepted (a 2xx) at `now`.
pub async fn mark_delivered<'c>(ex: impl Exec<'c>, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update backchannel_logouts set delivered_at = $2, locked_until = null, \
         attempts = attempts + 1, last_error = null where id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Records a failed attempt: `attempts` so far, the error, and either the next try at `next` or,
/// when `next` is `None`, the end of the tries (`given_up_at` = `now`).
pub async fn mark_failed<'c>(
    ex: impl Exec<'c>,
    id: &str,
    attempts: i64,
    error: &str,
    now: i64,
    next: Option<i64>,
) -> Result<(), sqlx::Error> {
    let given_up = next.is_none().then_some(now);
    sqlx::query(
        "update backchannel_logouts set attempts = $2, last_error = $3, \
         next_attempt_at = $4, given_up_at = $5, locked_until = null where id = $1",
    )
    .bind(id)
    .bind(attempts)
    .bind(error)
    .bind(next.unwrap_or(now))
    .bind(given_up)
    .execute(ex)
    .await?;
    Ok(())
}
