//! Browser sessions kept in our own database: a [`SessionStore`] for tower-sessions on SQLite and
//! PostgreSQL alike.
//!
//! A row of `sessions` is keyed by the SHA-256 of the session id ([`stored_id`]: the cookie's value
//! is never stored) and holds the record's data as JSON text and its expiry in unix seconds of the
//! server's [`Clock`]. tower-sessions computes a record's expiry from the system time
//! (`now_utc() + idle timeout`), while every other expiry here follows the injectable clock, which
//! tests move forward; so the store converts on the way in and out ([`DbSessionStore::to_clock`],
//! [`DbSessionStore::to_system`]). Without it, a clock moved past the idle timeout would make every
//! session, even a brand-new one, look expired. The
//! signed-in user's id (the session key [`USER_ID_KEY`]) is copied into the `user_id` column, so that
//! every session of a user can be ended at once, e.g. after a password reset
//! ([`DbSessionStore::delete_for_user`]), and so that deleting a user deletes its sessions (the
//! column references `users` with `on delete cascade`).
//!
//! [`SessionStore::save`] only ever updates an existing row; rows are inserted by
//! [`SessionStore::create`] alone. tower-sessions calls `save` only for a record it has just loaded
//! (or created), so a missing row means the session was deleted meanwhile (logout, password reset,
//! purge), and re-inserting it would bring an ended session back to life.

use std::future::Future;
use std::pin::Pin;

use time::OffsetDateTime;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, Error};

use super::session;
use crate::clock::Clock;
use crate::crypto::tokens::TokenHash;
use crate::db::{Database, Exec};

/// The session key under which the login code stores the signed-in user's id (a JSON string).
pub const USER_ID_KEY: &str = "user_id";

/// How many fresh ids [`SessionStore::create`] tries before giving up (a collision of two random
/// 128-bit ids is already astronomically unlikely).
const CREATE_ATTEMPTS: usize = 4;

/// What the hand-expanded `#[async_trait]` methods of [`SessionStore`] return.
type BoxFuture<'f, T> = Pin<Box<dyn Future<Output = T> + Send + 'f>>;

/// A tower-sessions store on the `sessions` table.
#[derive(Clone, Debug)]
pub struct DbSessionStore {
    db: Database,
    clock: Clock,
}

impl DbSessionStore {
    /// A store on `db`; `clock` decides which sessions have expired.
    pub fn new(db: Database, clock: Clock) -> DbSessionStore {
        DbSessionStore { db, clock }
    }

    /// Ends every session of `user_id` (password reset, logout everywhere); returns how many.
    pub async fn delete_for_user(&self, user_id: &str) -> Result<u64, sqlx::Error> {
        delete_user_sessions(&self.db.pool, user_id).await
    }

    /// Deletes the sessions that have expired; returns how many (run by a background job).
    pub async fn purge_expired(&self) -> Result<u64, sqlx::Error> {
        let result = sqlx::query("delete from sessions where expires_at <= $1")
            .bind(self.clock.now())
            .execute(&self.db.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// A system time from tower-sessions (a record's expiry) as unix seconds of our clock.
    fn to_clock(&self, system: OffsetDateTime) -> i64 {
        system.unix_timestamp().saturating_add(self.clock.offset())
    }

    /// Unix seconds of our clock (a stored expiry) as the system time tower-sessions expects.
    fn to_system(&self, clock_secs: i64) -> session_store::Result<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(clock_secs.saturating_sub(self.clock.offset()))
            .map_err(|e| Error::Decode(e.to_string()))
    }

    /// Inserts `record`, drawing a new id while the current one is taken.
    async fn insert_new(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(record)?;
        let shown = Shown::of(record);
        for _ in 0..CREATE_ATTEMPTS {
            // A foreign-key violation (a user id that does not exist) is an error, not a collision:
            // `do nothing` only covers the conflict on the primary key.
            let result = sqlx::query(
                "insert into sessions (id, user_id, data, created_at, expires_at, sid, user_agent, \
                 ip, signed_in_at, last_seen_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 on conflict (id) do nothing",
            )
            .bind(stored_id(&record.id))
            .bind(shown.user_id.as_deref())
            .bind(&data)
            .bind(self.clock.now())
            .bind(self.to_clock(record.expiry_date))
            .bind(shown.sid.as_deref())
            .bind(shown.user_agent.as_deref())
            .bind(shown.ip.as_deref())
            .bind(shown.signed_in_at)
            .bind(shown.last_seen_at)
            .execute(&self.db.pool)
            .await
            .map_err(backend)?;
            if result.rows_affected() == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(Error::Backend(
            "could not allocate an unused session id".to_owned(),
        ))
    }

    /// Updates the data, user and expiry of an existing row; `created_at` never changes.
    async fn update(&self, record: &Record) -> session_store::Result<()> {
        let shown = Shown::of(record);
        sqlx::query(
            "update sessions set data = $2, user_id = $3, expires_at = $4, sid = $5, \
             user_agent = $6, ip = $7, signed_in_at = $8, last_seen_at = $9 where id = $1",
        )
        .bind(stored_id(&record.id))
        .bind(encode(record)?)
        .bind(shown.user_id.as_deref())
        .bind(self.to_clock(record.expiry_date))
        .bind(shown.sid.as_deref())
        .bind(shown.user_agent.as_deref())
        .bind(shown.ip.as_deref())
        .bind(shown.signed_in_at)
        .bind(shown.last_seen_at)
        .execute(&self.db.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// The record with `id`, unless it is missing or has expired.
    async fn find(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "select data, expires_at from sessions where id = $1 and expires_at > $2",
        )
        .bind(stored_id(id))
        .bind(self.clock.now())
        .fetch_optional(&self.db.pool)
        .await
        .map_err(backend)?;
        let Some((data, expires_at)) = row else {
            return Ok(None);
        };
        let data = serde_json::from_str(&data).map_err(|e| Error::Decode(e.to_string()))?;
        let expiry_date = self.to_system(expires_at)?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    /// Deletes the row with `id`, if any.
    async fn remove(&self, id: &Id) -> session_store::Result<()> {
        sqlx::query("delete from sessions where id = $1")
            .bind(stored_id(id))
            .execute(&self.db.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// Ends every session of `user_id` on `ex`; pass a transaction to make it part of a password reset.
pub async fn delete_user_sessions<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("delete from sessions where user_id = $1")
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(result.rows_affected())
}

/// A live signed-in browser session as its owner sees it on the account pages.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionSummary {
    /// The session's `sid` (stable across id renewal; the handle to end it by).
    pub sid: String,
    /// The browser that signed in (`User-Agent`), if it sent one.
    pub user_agent: Option<String>,
    /// The client address that signed in.
    pub ip: Option<String>,
    /// Unix seconds of the sign-in.
    pub signed_in_at: i64,
    /// Unix seconds of the last renewal by use (exact to within the renewal interval).
    pub last_seen_at: i64,
}

/// A `sessions` row as [`list_for_user`] reads it: sid, browser, address, sign-in, last use, creation.
type SummaryRow = (
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    i64,
);

/// The live signed-in sessions of `user_id` at `now`, most recently used first.
pub async fn list_for_user<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    now: i64,
) -> Result<Vec<SessionSummary>, sqlx::Error> {
    let rows: Vec<SummaryRow> = sqlx::query_as(
        "select sid, user_agent, ip, signed_in_at, last_seen_at, created_at from sessions \
             where user_id = $1 and sid is not null and expires_at > $2 \
             order by last_seen_at desc, created_at desc",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(sid, user_agent, ip, signed_in_at, last_seen_at, created_at)| {
                let signed_in_at = signed_in_at.unwrap_or(created_at);
                SessionSummary {
                    sid,
                    user_agent,
                    ip,
                    signed_in_at,
                    last_seen_at: last_seen_at.unwrap_or(signed_in_at),
                }
            },
        )
        .collect())
}

/// The `sid`s of the sessions of `user_id` other than `keep_sid` (expired ones included: they are
/// ended too).
pub async fn other_sids<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    keep_sid: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select sid from sessions where user_id = $1 and sid is not null and sid <> $2",
    )
    .bind(user_id)
    .bind(keep_sid)
    .fetch_all(ex)
    .await
}

/// Deletes the session `sid` of `user_id` (another user's sid deletes nothing); true when one went.
pub async fn delete_by_sid<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    sid: &str,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("delete from sessions where user_id = $1 and sid = $2")
        .bind(user_id)
        .bind(sid)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// tower-sessions 0.14 declares its trait with `#[async_trait]`; these are the signatures that macro
/// produces, written out so that we need no extra dependency.
impl SessionStore for DbSessionStore {
    fn create<'a, 'b, 'f>(
        &'a self,
        record: &'b mut Record,
    ) -> BoxFuture<'f, session_store::Result<()>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(self.insert_new(record))
    }

    fn save<'a, 'b, 'f>(&'a self, record: &'b Record) -> BoxFuture<'f, session_store::Result<()>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(self.update(record))
    }

    fn load<'a, 'b, 'f>(
        &'a self,
        id: &'b Id,
    ) -> BoxFuture<'f, session_store::Result<Option<Record>>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(self.find(id))
    }

    fn delete<'a, 'b, 'f>(&'a self, id: &'b Id) -> BoxFuture<'f, session_store::Result<()>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(self.remove(id))
    }
}

/// The `sessions.id` of a session: the SHA-256 (hex) of the id in the cookie, so that a copy of the
/// database (a backup, a replica) holds no id a browser could present (OWASP ASVS V3.2; the same
/// reason as for refresh tokens and codes). The 128-bit random id needs no salt or slow hash.
fn stored_id(id: &Id) -> String {
    TokenHash::of(&id.to_string()).into_inner()
}

/// The record's data as JSON text.
fn encode(record: &Record) -> session_store::Result<String> {
    serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))
}

/// What the `sessions` row shows of a record beside its data: the signed-in user (so that every
/// session of a user can be found and ended), and for the account's sessions page the `sid`, the
/// browser, the address, the sign-in time and the last renewal by use. All `None` for an anonymous
/// session.
struct Shown {
    user_id: Option<String>,
    sid: Option<String>,
    user_agent: Option<String>,
    ip: Option<String>,
    signed_in_at: Option<i64>,
    last_seen_at: Option<i64>,
}

impl Shown {
    fn of(record: &Record) -> Shown {
        let text = |key: &str| {
            record
                .data
                .get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let number = |key: &str| record.data.get(key).and_then(serde_json::Value::as_i64);
        Shown {
            user_id: text(USER_ID_KEY),
            sid: text(session::SID_KEY),
            user_agent: text(session::USER_AGENT_KEY),
            ip: text(session::IP_KEY),
            signed_in_at: number(session::AUTH_TIME_KEY),
            last_seen_at: number(session::SEEN_KEY),
        }
    }
}

/// Hides the database error's type from tower-sessions, keeping its message for the logs.
fn backend(err: sqlx::Error) -> Error {
    Error::Backend(err.to_string())
}
