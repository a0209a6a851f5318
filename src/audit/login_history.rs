//! The login history: one row per sign-in attempt (`login_events`), successful or not, with the
//! email as typed, the client address, the browser and the outcome (succeeded, failed, or throttled
//! before any password check). It backs what a person sees of their own sign-ins (the sign-in limits
//! themselves are counted in `login_throttles`, `crate::login::throttle`); like the audit log, it is
//! written inside the transaction of the attempt it describes.

use crate::crypto::tokens::new_id;
use crate::db::{self, Exec};

/// One login attempt.
#[derive(Debug)]
pub struct LoginEvent<'a> {
    /// The account, when the email matched one.
    pub user_id: Option<&'a str>,
    /// The email as typed.
    pub email: &'a str,
    /// Client address.
    pub ip: &'a str,
    /// Browser.
    pub user_agent: Option<&'a str>,
    /// How the person tried to authenticate: the RFC 8176 `amr` value of the method (`pwd` for a
    /// password; other methods name theirs).
    pub method: &'a str,
}

/// How a login attempt ended (`login_events.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The password was right and the account usable.
    Succeeded,
    /// The password was checked and refused (or the account is disabled).
    Failed,
    /// Refused before any password check: too many recent failures (429).
    Throttled,
}

impl Outcome {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Throttled => "throttled",
        }
    }
}

/// Records a login attempt that succeeded or failed.
pub async fn record_login<'c>(
    ex: impl Exec<'c>,
    e: &LoginEvent<'_>,
    success: bool,
    now: i64,
) -> Result<(), sqlx::Error> {
    let outcome = if success {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    };
    record_login_outcome(ex, e, outcome, now).await
}

/// Records a login attempt with its outcome (`success` is 1 only for [`Outcome::Succeeded`]), and
/// counts it in `latchkey_sign_ins_total`: every sign-in attempt, whatever its method, comes here.
pub async fn record_login_outcome<'c>(
    ex: impl Exec<'c>,
    e: &LoginEvent<'_>,
    outcome: Outcome,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into login_events (id, user_id, email, success, ip, user_agent, created_at, \
         outcome, method) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new_id())
    .bind(e.user_id)
    .bind(e.email.chars().take(254).collect::<String>())
    .bind(db::flag(outcome == Outcome::Succeeded))
    .bind(e.ip)
    .bind(
        e.user_agent
            .map(|ua| ua.chars().take(512).collect::<String>()),
    )
    .bind(now)
    .bind(outcome.as_str())
    .bind(e.method)
    .execute(ex)
    .await?;
    crate::metrics::sign_in(e.method, outcome);
    Ok(())
}

/// Deletes up to `batch` login events recorded before `before` (the retention purge, NIST SP 800-92
/// §5.1: keep logs as long as policy says, then dispose of them); returns how many went. The
/// `login_events_time` index keeps the selection to the rows deleted.
pub async fn delete_before<'c>(
    ex: impl Exec<'c>,
    before: i64,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from login_events where id in \
         (select id from login_events where created_at < $1 limit $2)",
    )
    .bind(before)
    .bind(batch)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// A sign-in attempt as its account's owner sees it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Unix seconds.
    pub at: i64,
    /// Client address, if known.
    pub ip: Option<String>,
    /// Browser (`User-Agent`), if sent.
    pub user_agent: Option<String>,
    /// RFC 8176 method (`pwd`, …); `None` for rows older than migration 0008.
    pub method: Option<String>,
    /// `succeeded`, `failed` or `throttled`.
    pub outcome: &'static str,
}

/// A `login_events` row as [`recent_for_user`] reads it: time, address, browser, method, outcome,
/// success flag.
type AttemptRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

/// The `limit` newest sign-in attempts of `user_id`, newest first. Rows written before the outcome
/// column existed have it null: their `success` flag tells succeeded from failed.
pub async fn recent_for_user<'c>(
    ex: impl Exec<'c>,
    user_id: &str,
    limit: i64,
) -> Result<Vec<Attempt>, sqlx::Error> {
    let rows: Vec<AttemptRow> = sqlx::query_as(
        "select created_at, ip, user_agent, method, outcome, success from login_events \
         where user_id = $1 order by created_at desc, id desc limit $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(at, ip, user_agent, method, outcome, success)| Attempt {
            at,
            ip,
            user_agent,
            method,
            outcome: match outcome.as_deref() {
                Some("succeeded") => Outcome::Succeeded.as_str(),
                Some("throttled") => Outcome::Throttled.as_str(),
                Some(_) => Outcome::Failed.as_str(),
                None if success != 0 => Outcome::Succeeded.as_str(),
                None => Outcome::Failed.as_str(),
            },
        })
        .collect())
}
