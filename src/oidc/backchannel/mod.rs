//! OpenID Connect Back-Channel Logout 1.0: when a browser session ends (sign-out, ended from
//! `/account`, a disabled or deleted user, a password reset), every client that got tokens in that
//! session and registered a `backchannel_logout_uri` is sent a signed logout token, queued and
//! retried like mail.
//!
//! - **Which clients** (§2.7 "each RP that the End-User has logged into during this session"): the
//!   authorization endpoint records (session `sid`, client, user) in `backchannel_sessions` when it
//!   issues a code to a client with a back-channel URI ([`remember`]). Codes are purged an hour after
//!   they expire, while a session lives for days, so the codes themselves could not answer.
//! - **When a session ends**, the end of the session calls [`session_ended`] or [`user_signed_out`]
//!   inside its own transaction (RP-initiated logout: [`sessions_ended`], once the session store has
//!   deleted the browser's session): the rows of that session (or of every session of that user) are
//!   taken out of `backchannel_sessions` by one `delete … returning` (so of two processes ending one
//!   session, one announces it) and a row per client is queued in `backchannel_logouts`. The queuing
//!   runs in a savepoint: if it fails, it is logged and rolled back alone, and the sign-out goes on
//!   (a person's sign-out never fails because an application could not be told).
//! - **Delivery** ([`delivery`]): a loop started with the server (beside the mail loop), polling
//!   every second (the queuing happens inside the caller's transaction, so waking the loop at that
//!   point would find nothing committed yet), posts each token (`application/x-www-form-urlencoded`,
//!   `logout_token=…`, §2.5) through the guarded upstream client, leasing each row by a conditional
//!   update, with backoff and a final give-up.

pub mod delivery;
pub mod store;
pub mod token;

use sqlx::{AnyConnection, Connection};

use crate::clients::Client;
use crate::db::Database;

/// Records that `client` was issued a code in browser session `sid` of `user_id`, when it has a
/// back-channel logout URI (others are never told, so they need no row). A failure is logged and
/// does not stop the authorization: at worst that client is not told of the logout.
pub async fn remember(db: &Database, sid: &str, client: &Client, user_id: &str, now: i64) {
    if client.backchannel_logout_uri.is_none() {
        return;
    }
    if let Err(e) = store::remember(&db.pool, sid, &client.id, user_id, now).await {
        tracing::warn!(error = %e, client_id = %client.id, "cannot record the session's client for back-channel logout");
    }
}

/// Which sessions ended.
#[derive(Debug, Clone, Copy)]
enum Ending<'a> {
    /// One browser session, by `sid`.
    Session(&'a str),
    /// One browser session, by `sid`, if no session row with that `sid` is left.
    EndedSession(&'a str),
    /// Every browser session of a user, by user id.
    User(&'a str),
}

/// Queues the logout tokens of browser session `sid` on `conn` (the caller's transaction, so they
/// are sent if and only if the session really ended). Never fails: see the module doc.
pub async fn session_ended(conn: &mut AnyConnection, sid: &str, now: i64) {
    queue(conn, Ending::Session(sid), now).await;
}

/// Queues the logout tokens of every browser session of `user_id` (disabled, deleted, every session
/// ended, password reset). Never fails: see the module doc.
pub async fn user_signed_out(conn: &mut AnyConnection, user_id: &str, now: i64) {
    queue(conn, Ending::User(user_id), now).await;
}

/// Queues the logout tokens of the browser sessions `sids` that are over (no session row left), in a
/// transaction of its own: RP-initiated logout calls it after the session store deleted the
/// browser's session; a `sid` named by its `id_token_hint` whose session still lives in another
/// browser was not ended, so it is not announced. Never fails.
pub async fn sessions_ended(db: &Database, sids: &[String], now: i64) {
    let result = async {
        let mut tx = db.begin().await?;
        for sid in sids {
            queue(&mut tx, Ending::EndedSession(sid), now).await;
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot queue back-channel logouts; sign-out goes on");
    }
}

/// Takes the (session, client) rows of `ending` and queues one logout per row, in a savepoint of
/// `conn` so that a failure rolls back only this (on PostgreSQL a failed statement would otherwise
/// abort the caller's whole transaction).
async fn queue(conn: &mut AnyConnection, ending: Ending<'_>, now: i64) {
    let result = async {
        let mut sp = conn.begin().await?;
        let ended = match ending {
            Ending::Session(sid) => store::take_session(&mut *sp, sid).await?,
            Ending::EndedSession(sid) => store::take_ended_session(&mut *sp, sid).await?,
            Ending::User(user_id) => store::take_user(&mut *sp, user_id).await?,
        };
        for one in &ended {
            store::queue(&mut *sp, one, now).await?;
        }
        sp.commit().await?;
        Ok::<usize, sqlx::Error>(ended.len())
    }
    .await;
    match result {
        Ok(0) => {}
        Ok(queued) => tracing::info!(queued, "back-channel logouts queued"),
        Err(e) => {
            tracing::warn!(error = %e, ?ending, "cannot queue back-channel logouts; sign-out goes on")
        }
    }
}
