//! Re-entering the password before a sensitive change (new address, new password, deleting the
//! account): OWASP ASVS V2.5.x / Authentication Cheat Sheet "re-authentication". A stolen session
//! must not be a way to guess the password, so each attempt counts against the account exactly as
//! a sign-in does ([`crate::login::throttle`]: admitted as a failure before the hash is checked,
//! taken back on success), and a blocked account is refused before any hashing.

use axum::http::{HeaderValue, StatusCode, header::RETRY_AFTER};
use axum::response::Response;

use crate::accounts::{self, User};
use crate::app::AppState;
use crate::crypto::password::Password;
use crate::error::Result;
use crate::login::throttle::{self, Key, Throttled};

/// The outcome of re-entering the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reauth {
    /// The password is right.
    Verified,
    /// The password is wrong (counted).
    Wrong,
    /// The account has no password to check (the page offers to set one).
    NoPassword,
    /// Too many failures: wait (`Retry-After`).
    Throttled(Throttled),
}

/// Whether `user` has a password at all.
pub async fn has_password(state: &AppState, user: &User) -> Result<bool> {
    let found = accounts::store::find_credentials(&state.db.pool, &user.email).await?;
    Ok(found.is_some_and(|(u, hash)| u.id == user.id && hash.is_some()))
}

/// Checks `password` against `user`'s hash, throttled on the account's counter.
pub async fn verify(state: &AppState, user: &User, password: &Password) -> Result<Reauth> {
    let hash = match accounts::store::find_credentials(&state.db.pool, &user.email).await? {
        Some((found, Some(hash))) if found.id == user.id => hash,
        _ => return Ok(Reauth::NoPassword),
    };
    let keys = [Key::account(&user.id)];
    let now = state.clock.now();
    if let Some(throttled) = throttle::blocked(&state.db.pool, &keys, now).await? {
        return Ok(Reauth::Throttled(throttled));
    }
    // As the login does: the failure is counted once a hashing slot is held (a request shed with
    // 503 counts for nothing), before the hash is checked (concurrent guesses cannot outrun it).
    let slot = state.hasher.reserve().await?;
    let mut tx = state.db.begin().await?;
    if let Some(throttled) = throttle::admit(&mut tx, &keys, now).await? {
        return Ok(Reauth::Throttled(throttled));
    }
    tx.commit().await?;
    if !slot.verify(password, Some(&hash)).await? {
        return Ok(Reauth::Wrong);
    }
    let mut tx = state.db.begin().await?;
    throttle::settle_success(&mut tx, &keys, now).await?;
    tx.commit().await?;
    Ok(Reauth::Verified)
}

/// The message for a throttled attempt, with the wait.
pub fn throttled_message(throttled: Throttled) -> String {
    format!(
        "Too many wrong passwords. Try again in {}.",
        throttle::wait_text(throttled.retry_after)
    )
}

/// The message for a wrong password.
pub const WRONG_PASSWORD: &str = "The password is not correct.";

/// The message for an account without a password.
pub const NO_PASSWORD: &str =
    "Your account has no password yet. Set one on the Password page first.";

/// How a page refuses a re-entered password: the message under the form, the status, and the wait
/// of a throttled attempt. One shape for every page that asks for the password again.
#[derive(Debug, Clone)]
pub struct PageRefusal {
    /// What the page says.
    pub message: String,
    /// 400 for a wrong or missing password, 429 when throttled.
    pub status: StatusCode,
    retry_after: Option<i64>,
}

impl PageRefusal {
    /// `response` (the page showing [`PageRefusal::message`] with [`PageRefusal::status`]) with the
    /// `Retry-After` of a throttled attempt (RFC 9110 §10.2.3).
    pub fn finish(&self, mut response: Response) -> Response {
        if let Some(wait) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(wait));
        }
        response
    }
}

impl Reauth {
    /// `None` when the password is right; else how a page refuses it.
    pub fn page_refusal(self) -> Option<PageRefusal> {
        let (message, status, retry_after) = match self {
            Reauth::Verified => return None,
            Reauth::Wrong => (WRONG_PASSWORD.to_owned(), StatusCode::BAD_REQUEST, None),
            Reauth::NoPassword => (NO_PASSWORD.to_owned(), StatusCode::BAD_REQUEST, None),
            Reauth::Throttled(t) => (
                throttled_message(t),
                StatusCode::TOO_MANY_REQUESTS,
                Some(t.retry_after),
            ),
        };
        Some(PageRefusal {
            message,
            status,
            retry_after,
        })
    }
}
