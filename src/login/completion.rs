//! What every way of signing in shares once the person is authenticated (a password on the login
//! page, a mailed link or code of [`super::email_signin`]): settling the throttling counters, the
//! login history, the audit log, recognising the browser (new-device alert), renewing the session
//! with the method's `amr`, and continuing the pending authorization request or going to `next`.
//! A person with a second factor ([`crate::mfa`]) is sent to the second step first, which ends
//! here again with both factors in `amr`.
//! Also the throttling keys of an attempt and the record of a throttled one, so that every method
//! counts its failures on the same counters ([`super::throttle`]).

use axum::response::Response;
use serde_json::json;
use tower_sessions::Session;

use super::throttle::{Key, Throttled};
use super::{device, session, store, throttle};
use crate::accounts::User;
use crate::app::AppState;
use crate::audit::login_history;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::crypto::tokens::SecretToken;
use crate::db::Tx;
use crate::error::Result;
use crate::mfa::{self, pending::PendingFactor};
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::web::request_meta::RequestMeta;

/// A successful authentication, as [`finish_sign_in`] needs it.
pub struct Completion<'a> {
    /// Who signed in (enabled: the caller checked).
    pub user: &'a User,
    /// The address as typed (the login history keeps it).
    pub email: &'a str,
    /// The RFC 8176 method recorded in the login history and the audit event (`pwd`, `email`).
    pub method: &'a str,
    /// The session's `amr` (RFC 8176), carried into authorization codes and ID tokens.
    pub amr: &'a [&'a str],
    /// The throttling counters the attempt was [`throttle::admit`]ted on, settled as a success
    /// (empty when none counted a failure for it).
    pub keys: &'a [Key],
    /// Pending authorization request of this browser's session, if the login is part of one.
    pub authz: &'a str,
    /// Local path to go to when no authorization request is pending.
    pub next: &'a str,
    /// This browser's device token (see [`device`]).
    pub device_token: &'a SecretToken,
}

/// Completes a sign-in inside `tx` (the attempt's transaction, committed here): throttling settled,
/// login history (`succeeded`, with the method), audit `login.succeeded` (details: the method), the
/// browser recognised (new-device alert); then the session renewed with the method's `amr`
/// ([`session::sign_in`]), and a 303 to the pending authorization request (which this sign-in answers,
/// for `prompt=login` / `max_age`), else to `next` or home, with the renewed device cookie.
pub async fn finish_sign_in(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    mut tx: Tx,
    c: Completion<'_>,
) -> Result<Response> {
    let now = state.clock.now();
    let user = c.user;
    let amr: Vec<String> = c.amr.iter().map(|m| (*m).to_owned()).collect();
    if !mfa::is_multi_factor(&amr) && mfa::factors(&mut *tx, &user.id).await?.any() {
        // The first factor is proved; the second comes on its own page (mfa::second_step), which
        // calls back here with both. Nothing is settled yet: the counters of the attempt stay
        // charged until the second factor is proved, so a known password does not buy unlimited
        // guesses at the code.
        tx.commit().await?;
        let pending = PendingFactor {
            user_id: user.id.clone(),
            email: c.email.to_owned(),
            method: c.method.to_owned(),
            amr,
            authz: c.authz.to_owned(),
            next: c.next.to_owned(),
            started_at: now,
            step_up: false,
        };
        mfa::pending::begin(session, &pending).await?;
        return Ok(see_other(routes::LOGIN_SECOND_FACTOR));
    }
    let ip = meta.ip.clone().unwrap_or_default();
    let event = login_history::LoginEvent {
        user_id: Some(&user.id),
        email: c.email,
        ip: &ip,
        user_agent: meta.user_agent.as_deref(),
        method: c.method,
    };
    throttle::settle_success(&mut tx, c.keys, now).await?;
    login_history::record_login(&mut *tx, &event, true, now).await?;
    audit::record(
        &mut *tx,
        &AuditEvent {
            org_id: None,
            actor: &Actor::user(user.id.clone(), meta.clone()),
            action: action::LOGIN_SUCCEEDED,
            target_type: Some("user"),
            target_id: Some(&user.id),
            details: json!({ "method": c.method }),
        },
        now,
    )
    .await?;
    crate::federation::identities::complete_pending_link(state, session, &mut tx, user, meta, now)
        .await?;
    let alerted = device::recognise(&mut tx, state, user, meta, c.device_token, now).await?;
    tx.commit().await?;
    if alerted {
        state.mailer.wake();
    }
    session::sign_in(session, &state.clock, &user.id, c.amr, meta).await?;
    tracing::info!(user_id = %user.id, method = c.method, "login succeeded");
    let pending = if c.authz.is_empty() {
        None
    } else {
        session::pending(session, c.authz).await?
    };
    let mut response = if let Some(mut req) = pending {
        // This login answers `prompt=login` / `max_age` of the request it was asked for.
        req.signed_in_for_request = true;
        session::save_pending(session, &req).await?;
        see_other(&format!("{}?authz={}", routes::AUTHORIZE_CONTINUE, c.authz))
    } else {
        see_other(super::pages::local_next(c.next).unwrap_or(routes::HOME))
    };
    device::set_cookie(response.headers_mut(), &state.config, c.device_token);
    Ok(response)
}

/// The counters a sign-in is throttled on (OWASP "device cookies"): a browser that signed in to the
/// account before is counted on its own, so attackers cannot delay the owner; any other attempt on
/// the account (or on an unknown email: the same rule, no oracle); and the client address.
pub async fn throttle_keys(
    state: &AppState,
    user_id: Option<&str>,
    email: &str,
    device: &SecretToken,
    meta: &RequestMeta,
) -> Result<Vec<Key>> {
    let device_hash = device.hash();
    // Asked for unknown emails too (with no user id), so both take the same work.
    let known = store::is_known_device(
        &state.db.pool,
        user_id.unwrap_or_default(),
        device_hash.as_str(),
    )
    .await?;
    let mut keys = vec![match user_id {
        Some(id) if known => Key::device(id, device_hash.as_str()),
        Some(id) => Key::account(id),
        None => Key::unknown_email(email),
    }];
    if let Some(address) = meta.limit_key() {
        keys.push(Key::login_address(&address));
    }
    Ok(keys)
}

/// Admits an attempt on `keys` as OWASP login throttling asks: refused before anything is checked
/// when a counter is blocked; otherwise counted as a failure first (a success takes it back, see
/// [`throttle::settle_success`]), so that concurrent guesses cannot outrun the count. A refused
/// attempt is recorded ([`record_throttled`]) and its wait returned. (The password login admits
/// around its hashing slot, and the mailed code inside its own transaction; every other factor
/// comes through here.)
pub async fn admit_attempt(
    state: &AppState,
    keys: &[Key],
    event: &login_history::LoginEvent<'_>,
    meta: &RequestMeta,
    now: i64,
) -> Result<Option<Throttled>> {
    let blocked = throttle::blocked(&state.db.pool, keys, now).await?;
    let mut tx = state.db.begin().await?;
    let throttled = match blocked {
        Some(throttled) => Some(throttled),
        None => throttle::admit(&mut tx, keys, now).await?,
    };
    if let Some(throttled) = throttled {
        record_throttled(&mut tx, event, meta, throttled, now).await?;
    }
    tx.commit().await?;
    Ok(throttled)
}

/// Records a throttled attempt in `tx`: the login history (`throttled`) and the audit log
/// (`login.throttled`, with the limit that refused it and the wait).
pub async fn record_throttled(
    tx: &mut Tx,
    event: &login_history::LoginEvent<'_>,
    meta: &RequestMeta,
    throttled: Throttled,
    now: i64,
) -> Result<()> {
    login_history::record_login_outcome(&mut **tx, event, login_history::Outcome::Throttled, now)
        .await?;
    let actor = Actor::anonymous(meta.clone());
    audit::record(
        &mut **tx,
        &AuditEvent {
            org_id: None,
            actor: &actor,
            action: action::LOGIN_THROTTLED,
            target_type: event.user_id.map(|_| "user"),
            target_id: event.user_id,
            details: json!({
                "email": event.email.chars().take(254).collect::<String>(),
                "limit": throttled.scope.as_str(),
                "retry_after": throttled.retry_after,
                "method": event.method,
            }),
        },
        now,
    )
    .await?;
    Ok(())
}
