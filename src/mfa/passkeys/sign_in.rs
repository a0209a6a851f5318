//! Signing in with a passkey: as the second factor after a password ([`offer`], the standalone
//! page [`second_factor_page`] and [`second_factor_finish`]), and alone from the login page
//! ([`passwordless_start`], [`passwordless_finish`]: a discoverable credential, WebAuthn L2
//! §5.4.6, found by the user handle it returns, §5.4.3).
//!
//! `amr` (RFC 8176 §2): `hwk` for a device-bound credential, `swk` for a backup-eligible (synced)
//! one (its key is software the platform copies between devices, WebAuthn L2 §6.1.3 flag BE),
//! and `user` for the user verification every ceremony here requires. A passkey after a password
//! adds `mfa`; a passkey alone is two factors too (possession, and the PIN or biometric that
//! unlocks it), so its `amr` is `[hwk|swk, user, mfa]` and its `acr` `urn:latchkey:acr:mfa`.
//!
//! Failures count on the login throttling exactly as a wrong password or code does
//! ([`crate::login::throttle`]): a blocked account or address is refused before anything is
//! verified, with `Retry-After`.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::Session;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, DiscoverableKey, Passkey,
    PasskeyAuthentication, PublicKeyCredential,
};

use super::PasskeyOffer;
use super::allow_script;
use super::ceremony::{self, CEREMONY_TTL_SECS};
use super::store::{self, PasskeyRow};
use crate::accounts;
use crate::app::AppState;
use crate::audit::login_history::{self, LoginEvent};
use crate::audit::{self, Actor, AuditEvent, action};
use crate::error::{AppError, Result};
use crate::login::completion::{self, Completion, finish_sign_in};
use crate::login::throttle::{self, Key, Throttled};
use crate::login::{device, pages as login_pages, session as login_session};
use crate::mfa::pending::{self, PendingFactor};
use crate::mfa::second_step;
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// Session key of a second-factor ceremony in progress.
const SECOND_FACTOR_KEY: &str = "passkey_second_factor";
/// Session key of a passwordless ceremony in progress.
const DISCOVERABLE_KEY: &str = "passkey_discoverable";

/// The login-history method of a sign-in with a passkey alone (after a password it is
/// `pwd+passkey`, made by [`second_step::complete`]).
pub const METHOD: &str = "passkey";

/// What a refused passkey sign-in says (the same for an unknown passkey, a disabled account and a
/// signature that does not verify: no oracle).
pub const PASSKEY_FAILED: &str = "That passkey could not sign you in. Try another way to sign in.";

/// A second-factor ceremony in progress.
#[derive(Serialize, Deserialize)]
struct SecondFactor {
    state: PasskeyAuthentication,
    user_id: String,
    started_at: i64,
}

/// A passwordless ceremony in progress, with the authorization request it continues.
#[derive(Serialize, Deserialize)]
struct Discoverable {
    state: DiscoverableAuthentication,
    authz: String,
    next: String,
    started_at: i64,
}

/// The fragment offered on the second-step page.
#[derive(Template)]
#[template(path = "pages/mfa/passkey_offer.html")]
struct OfferFragment<'a> {
    options: &'a str,
    csrf: &'a str,
    asset_version: &'a str,
}

/// The second-step page that offers a passkey alone.
#[derive(Template)]
#[template(path = "pages/mfa/passkey_second_factor.html")]
struct SecondFactorPage<'a> {
    offer: &'a str,
    error: Option<&'a str>,
    asset_version: &'a str,
}

/// The page that runs a passwordless ceremony.
#[derive(Template)]
#[template(path = "pages/mfa/passkey_sign_in.html")]
struct SignInPage<'a> {
    options: &'a str,
    csrf: &'a str,
    authz: &'a str,
    next: &'a str,
    asset_version: &'a str,
}

fn unexpected(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("passkey ceremony: {e}"))
}

/// The base64url credential id of a verified authentication.
fn credential_id_of(result: &AuthenticationResult) -> String {
    URL_SAFE_NO_PAD.encode(result.cred_id().as_ref())
}

/// RFC 8176 method of the key: `swk` for a backup-eligible (synced) credential, `hwk` for one
/// bound to its device.
fn key_method(result: &AuthenticationResult) -> &'static str {
    if result.backup_eligible() {
        "swk"
    } else {
        "hwk"
    }
}

/// Starts a second-factor ceremony over the passkeys of `pending`'s account, kept in the session;
/// the fragment that runs it, or `None` when the account has no passkey (or this server cannot
/// be a WebAuthn relying party).
pub async fn offer(
    state: &AppState,
    session: &Session,
    pending: &PendingFactor,
) -> Result<Option<PasskeyOffer>> {
    let Some(webauthn) = ceremony::relying_party(&state.config) else {
        return Ok(None);
    };
    let passkeys: Vec<Passkey> = store::list(&state.db.pool, &pending.user_id)
        .await?
        .into_iter()
        .map(|p| p.credential)
        .collect();
    if passkeys.is_empty() {
        return Ok(None);
    }
    let (options, auth) = webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(unexpected)?;
    ceremony::keep(
        session,
        SECOND_FACTOR_KEY,
        &SecondFactor {
            state: auth,
            user_id: pending.user_id.clone(),
            started_at: state.clock.now(),
        },
    )
    .await?;
    let options = ceremony::options_json(&options)?;
    let csrf = csrf::token()?;
    let html = OfferFragment {
        options: &options,
        csrf: &csrf,
        asset_version: ASSET_VERSION,
    }
    .render()
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(Some(PasskeyOffer { html }))
}

/// The page offering the passkey of `pending` alone, with `error` and `status`.
async fn second_factor_response(
    state: &AppState,
    session: &Session,
    pending: &PendingFactor,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response> {
    let Some(offer) = offer(state, session, pending).await? else {
        // No passkey (removed meanwhile): the other factors are on the second-step page.
        return Ok(see_other(routes::LOGIN_SECOND_FACTOR));
    };
    let mut response = render(&SecondFactorPage {
        offer: &offer.html,
        error,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = status;
    allow_script(&mut response);
    Ok(response)
}

/// `GET /login/second-factor/passkey`: the second step with a passkey alone (the second-step page
/// offers the same fragment beside the code form).
pub async fn second_factor_page(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response> {
    let Some(pending) = pending::get(&session, &state.clock).await? else {
        return Ok(see_other(routes::LOGIN));
    };
    second_factor_response(&state, &session, &pending, None, StatusCode::OK).await
}

/// Fields of the form `static/passkeys.js` submits after the authenticator answered.
#[derive(Deserialize)]
pub struct CredentialForm {
    /// Defaulted so that a missing token is refused like a wrong one (400).
    #[serde(default)]
    csrf: String,
    /// The `PublicKeyCredential` as JSON (binary fields base64url).
    #[serde(default)]
    credential: String,
}

/// The 429 page of a throttled attempt, with `Retry-After`.
fn throttled_page(throttled: Throttled) -> Response {
    let message = format!(
        "{} {}.",
        login_pages::LOGIN_THROTTLED,
        throttle::wait_text(throttled.retry_after)
    );
    let mut response = AppError::TooManyRequests(message).into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(throttled.retry_after));
    response
}

/// `POST /login/second-factor/passkey` `{credential}`: verifies the passkey of the pending sign-in
/// against the ceremony kept in the session (taken out: one answer per challenge), updates its
/// counter and last use, and ends the sign-in with both factors ([`second_step::complete`], `amr`
/// `[…, hwk|swk, user, mfa]`). A failure is audited (`mfa.failed`), counted on the login
/// throttling, and answered with the page again (a new challenge).
pub async fn second_factor_finish(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    Form(form): Form<CredentialForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let Some(pending) = pending::get(&session, &state.clock).await? else {
        return Err(AppError::invalid(
            "This sign-in has expired. Sign in again with your password.",
        ));
    };
    let now = state.clock.now();
    let ceremony = ceremony::take::<SecondFactor>(&session, SECOND_FACTOR_KEY)
        .await?
        .filter(|c| c.user_id == pending.user_id)
        .ok_or_else(|| {
            AppError::invalid("No passkey was asked for in this browser. Go back and try again.")
        })?;
    if now - ceremony.started_at > CEREMONY_TTL_SECS {
        let error = "The passkey took too long to answer. Try again.";
        let bad = StatusCode::BAD_REQUEST;
        return second_factor_response(&state, &session, &pending, Some(error), bad).await;
    }
    let answer: PublicKeyCredential = ceremony::parse_credential(&form.credential)?;
    let device_token = device::device_token(&headers, &state.config);
    let keys = completion::throttle_keys(
        &state,
        Some(&pending.user_id),
        &pending.email,
        &device_token,
        &meta,
    )
    .await?;
    let ip = meta.ip.clone().unwrap_or_default();
    let history_method = format!("{}+{METHOD}", pending.method);
    let event = LoginEvent {
        user_id: Some(&pending.user_id),
        email: &pending.email,
        ip: &ip,
        user_agent: meta.user_agent.as_deref(),
        method: &history_method,
    };
    // As the code form of the second step: counted first, settled by `complete` on success.
    if let Some(throttled) = completion::admit_attempt(&state, &keys, &event, &meta, now).await? {
        return Ok(throttled_page(throttled));
    }
    let webauthn = ceremony::require_relying_party(&state.config)?;
    let verified = webauthn
        .finish_passkey_authentication(&answer, &ceremony.state)
        .ok();
    let found = match &verified {
        Some(result) => store::find_by_credential(&state.db.pool, &credential_id_of(result))
            .await?
            .filter(|p| p.user_id == pending.user_id),
        None => None,
    };
    let (Some(result), Some(row)) = (verified, found) else {
        let mut tx = state.db.begin().await?;
        audit::record(
            &mut *tx,
            &AuditEvent {
                org_id: None,
                actor: &Actor::anonymous(meta.clone()),
                action: action::MFA_FAILED,
                target_type: Some("user"),
                target_id: Some(&pending.user_id),
                details: json!({ "factor": "passkey" }),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        let bad = StatusCode::BAD_REQUEST;
        let error =
            "That passkey could not be verified. Try again, or go back and use another way.";
        return second_factor_response(&state, &session, &pending, Some(error), bad).await;
    };
    let mut tx = state.db.begin().await?;
    note_use(&mut tx, row, &result, now).await?;
    tx.commit().await?;
    let kind = key_method(&result);
    second_step::complete(
        &state,
        &session,
        &meta,
        &headers,
        &pending,
        &[kind, "user"],
        METHOD,
    )
    .await
}

/// Keeps the credential's new signature counter and backup state (WebAuthn L2 §7.2 steps 21-22,
/// `update_credential`) and the time of use.
async fn note_use(
    tx: &mut crate::db::Tx,
    mut row: PasskeyRow,
    result: &AuthenticationResult,
    now: i64,
) -> Result<()> {
    row.credential.update_credential(result);
    store::record_use(tx, &row.id, &row.credential, now).await
}

/// Fields of the "Sign in with a passkey" button on the login page.
#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    authz: String,
    #[serde(default)]
    next: String,
}

/// `POST /login/passkey` `{authz, next}`: starts a discoverable ceremony (no email asked: the
/// authenticator offers the passkeys it holds for this site), kept in the session, and answers the
/// page that runs it. A POST, so that merely looking at the login page creates no session.
pub async fn passwordless_start(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<StartForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let Some(webauthn) = ceremony::relying_party(&state.config) else {
        let page = login_pages::ErrorPage {
            authz: &form.authz,
            next: &form.next,
            error: ceremony::UNAVAILABLE,
            status: StatusCode::BAD_REQUEST,
        };
        return login_pages::login_with_error(&state, &session, page).await;
    };
    let (mut options, auth) = webauthn
        .start_discoverable_authentication()
        .map_err(unexpected)?;
    // webauthn-rs marks the options for conditional mediation (autofill); this ceremony is started
    // by a button, so the browser's modal dialog is wanted (WebAuthn L2 §5.1.4).
    options.mediation = None;
    // Only a request this session is waiting on is carried through (as the login page does).
    let authz = if form.authz.is_empty()
        || login_session::pending(&session, &form.authz)
            .await?
            .is_none()
    {
        String::new()
    } else {
        form.authz.clone()
    };
    let next = login_pages::local_next(&form.next).unwrap_or_default();
    ceremony::keep(
        &session,
        DISCOVERABLE_KEY,
        &Discoverable {
            state: auth,
            authz: authz.clone(),
            next: next.to_owned(),
            started_at: state.clock.now(),
        },
    )
    .await?;
    let options = ceremony::options_json(&options)?;
    let csrf = csrf::token()?;
    let mut response = render(&SignInPage {
        options: &options,
        csrf: &csrf,
        authz: &authz,
        next,
        asset_version: ASSET_VERSION,
    });
    allow_script(&mut response);
    Ok(response)
}

/// `POST /login/passkey/finish` `{credential}`: finds the passkey by the credential id and user
/// handle the authenticator returned, verifies it against the ceremony kept in the session, and
/// signs its owner in ([`finish_sign_in`], `amr` `[hwk|swk, user, mfa]`, method `passkey`). An
/// unknown passkey, a disabled account or a signature that does not verify: the login page with
/// one message, the attempt in the login history and the audit log, counted on the throttling.
pub async fn passwordless_finish(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    Form(form): Form<CredentialForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let now = state.clock.now();
    let Some(ceremony) = ceremony::take::<Discoverable>(&session, DISCOVERABLE_KEY).await? else {
        return Err(AppError::invalid(
            "No passkey sign-in was started in this browser. Go back to the sign-in page and try again.",
        ));
    };
    let refuse = |error: &'static str, status: StatusCode| login_pages::ErrorPage {
        authz: "",
        next: "",
        error,
        status,
    };
    if now - ceremony.started_at > CEREMONY_TTL_SECS {
        let mut page = refuse(
            "The passkey took too long to answer. Try again.",
            StatusCode::BAD_REQUEST,
        );
        page.authz = &ceremony.authz;
        page.next = &ceremony.next;
        return login_pages::login_with_error(&state, &session, page).await;
    }
    let answer: PublicKeyCredential = ceremony::parse_credential(&form.credential)?;
    let webauthn = ceremony::require_relying_party(&state.config)?;
    let ip = meta.ip.clone().unwrap_or_default();
    let device_token = device::device_token(&headers, &state.config);
    // The passkey the authenticator says it used, and its owner (whose handle it must carry).
    let identified = webauthn.identify_discoverable_authentication(&answer).ok();
    let row = match identified {
        Some((handle, raw_id)) => {
            store::find_by_credential(&state.db.pool, &URL_SAFE_NO_PAD.encode(raw_id))
                .await?
                .filter(|p| ceremony::user_handle(&p.user_id) == handle)
        }
        None => None,
    };
    let user = match &row {
        Some(row) => accounts::store::find_by_id(&state.db.pool, &row.user_id).await?,
        None => None,
    };
    let email = user.as_ref().map(|u| u.email.clone()).unwrap_or_default();
    let user_id = user.as_ref().map(|u| u.id.clone());
    let event = LoginEvent {
        user_id: user_id.as_deref(),
        email: &email,
        ip: &ip,
        user_agent: meta.user_agent.as_deref(),
        method: METHOD,
    };
    let keys = match &user_id {
        Some(id) => {
            completion::throttle_keys(&state, Some(id), &email, &device_token, &meta).await?
        }
        // An unknown passkey counts on the address only: there is no account to charge.
        None => meta
            .limit_key()
            .map(|address| vec![Key::login_address(&address)])
            .unwrap_or_default(),
    };
    let mut page = refuse(PASSKEY_FAILED, StatusCode::UNAUTHORIZED);
    page.authz = &ceremony.authz;
    page.next = &ceremony.next;
    // OWASP login throttling, as the password login: refused before verifying when blocked,
    // counted as a failure before verifying when admitted (a success takes it back).
    if let Some(throttled) = completion::admit_attempt(&state, &keys, &event, &meta, now).await? {
        return Ok(throttled_page(throttled));
    }
    let user_disabled = user.as_ref().is_some_and(|u| u.disabled);
    let verified = match (&row, &user) {
        (Some(row), Some(user)) if !user.disabled => webauthn
            .finish_discoverable_authentication(
                &answer,
                ceremony.state,
                &[DiscoverableKey::from(&row.credential)],
            )
            .ok(),
        _ => None,
    };
    let (Some(result), Some(row), Some(user)) = (verified, row, user.filter(|u| !u.disabled))
    else {
        let disabled = user_disabled;
        let reason = match (&user_id, identified.is_some()) {
            (Some(_), _) if disabled => "account_disabled",
            (Some(_), _) => "passkey_refused",
            (None, true) => "unknown_passkey",
            (None, false) => "no_user_handle",
        };
        let mut tx = state.db.begin().await?;
        login_history::record_login(&mut *tx, &event, false, now).await?;
        audit::record(
            &mut *tx,
            &AuditEvent {
                org_id: None,
                actor: &Actor::anonymous(meta.clone()),
                action: action::LOGIN_FAILED,
                target_type: user_id.as_ref().map(|_| "user"),
                target_id: user_id.as_deref(),
                details: json!({ "method": METHOD, "reason": reason }),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        return login_pages::login_with_error(&state, &session, page).await;
    };
    let kind = key_method(&result);
    let mut tx = state.db.begin().await?;
    note_use(&mut tx, row, &result, now).await?;
    let completion = Completion {
        user: &user,
        email: &user.email,
        method: METHOD,
        amr: &[kind, "user", crate::mfa::AMR_MFA],
        keys: &keys,
        authz: &ceremony.authz,
        next: &ceremony.next,
        device_token: &device_token,
    };
    finish_sign_in(&state, &session, &meta, tx, completion).await
}
