//! `/account/totp`: setting up an authenticator app (a QR code rendered on the server, the secret
//! as text in `#totp-secret`, confirmed by a first code in the input `code`), and removing it.
//!
//! Adding a factor needs no password (it only makes signing in harder; the owner is mailed);
//! removing one does ([`reauth`], throttled). Wrong confirmation codes count on the login
//! throttling like wrong second-step codes. When the enrolment is part of an authorization request
//! that needs a second factor (`?authz=…`, sent by [`crate::oauth::authorize`]), the code just
//! proved upgrades the session (RFC 8176 `otp` + `mfa`) and "Continue" resumes the request.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::store;
use crate::accounts::User;
use crate::app::AppState;
use crate::audit::{action, login_history};
use crate::crypto::password::Password;
use crate::error::Result;
use crate::login::completion::{self};
use crate::login::{device, session, throttle};
use crate::mfa::mail::FactorChange;
use crate::mfa::{self, AMR_OTP, recovery_codes};
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::self_service::display::utc;
use crate::self_service::notice;
use crate::self_service::pages::{AccountHolder, holder, nav, recently_signed_in_holder};
use crate::self_service::reauth::{self};
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// An unconfirmed secret is shown again on a reload (a QR code already scanned keeps working) for
/// this long; after it, a new one is made (an old one may have been seen over a shoulder).
pub const UNCONFIRMED_REUSE_SECS: i64 = 60 * 60;

/// The message of a wrong confirmation code.
pub const WRONG_CODE: &str = "That code is not correct. Check that the time on your phone is right and type the code the app shows now.";

/// The TOTP pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(routes::ACCOUNT_TOTP, get(totp_page).post(enrol_submit))
        .route(routes::ACCOUNT_TOTP_REMOVE, post(remove_submit))
}

/// Enrolment: the QR code, the secret, the form.
#[derive(Template)]
#[template(path = "pages/account/totp_enrol.html")]
struct EnrolPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    csrf: &'a str,
    authz: &'a str,
    qr_svg: &'a str,
    secret: &'a str,
    issuer: &'a str,
    email: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    asset_version: &'a str,
}

/// What a page shows besides its content, and its status.
struct Shown<'a> {
    notice: Option<&'a str>,
    error: Option<&'a str>,
    status: StatusCode,
}

/// An authenticator is set up: since when, recovery codes, removal.
#[derive(Template)]
#[template(path = "pages/account/totp_status.html")]
struct StatusPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    csrf: &'a str,
    email: &'a str,
    since: &'a str,
    codes_left: i64,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    asset_version: &'a str,
}

/// Query of `GET /account/totp`.
#[derive(Debug, Deserialize)]
pub struct TotpQuery {
    /// The authorization request this enrolment is part of, if any.
    #[serde(default)]
    authz: String,
}

/// `authz` when it names an authorization request waiting in this session, else empty.
async fn live_authz<'a>(session: &Session, authz: &'a str) -> Result<&'a str> {
    if authz.is_empty() || session::pending(session, authz).await?.is_none() {
        return Ok("");
    }
    Ok(authz)
}

/// Where this page is, with its `authz` (the login comes back here).
fn here(authz: &str) -> String {
    if authz.is_empty() {
        routes::ACCOUNT_TOTP.to_owned()
    } else {
        let q = url::form_urlencoded::byte_serialize(authz.as_bytes()).collect::<String>();
        format!("{}?authz={q}", routes::ACCOUNT_TOTP)
    }
}

/// The unconfirmed secret of `user` to show: the one made within [`UNCONFIRMED_REUSE_SECS`], or a
/// new one.
async fn unconfirmed_secret(state: &AppState, user: &User) -> Result<Vec<u8>> {
    let now = state.clock.now();
    if let Some(row) = store::find(&state.db.pool, &user.id).await?
        && row.confirmed_at.is_none()
        && now - row.created_at < UNCONFIRMED_REUSE_SECS
        && let Ok(secret) = super::open(state, &user.id, &row.secret_sealed)
    {
        return Ok(secret);
    }
    let secret = super::new_secret();
    let sealed = super::seal(state, &user.id, &secret)?;
    store::put_unconfirmed(&state.db.pool, &user.id, &sealed, now).await?;
    Ok(secret)
}

async fn enrol_view(
    state: &AppState,
    user: &User,
    secret: &[u8],
    authz: &str,
    shown: Shown<'_>,
) -> Result<Response> {
    let csrf = csrf::token()?;
    let issuer = super::issuer_label(state);
    let uri = super::otpauth_uri(secret, &issuer, &user.email);
    let qr = super::qr_svg(&uri)?;
    let b32 = super::secret_base32(secret);
    let mut response = render(&EnrolPage {
        nav: nav(routes::ACCOUNT_TOTP),
        csrf: &csrf,
        authz,
        qr_svg: &qr,
        secret: &b32,
        issuer: &issuer,
        email: &user.email,
        notice: shown.notice,
        error: shown.error,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = shown.status;
    Ok(response)
}

async fn status_view(
    state: &AppState,
    session: &Session,
    user: &User,
    confirmed_at: i64,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response> {
    let csrf = csrf::token()?;
    let notice = notice::take(session).await?;
    let codes_left = recovery_codes::left(&state.db.pool, &user.id).await?;
    let mut response = render(&StatusPage {
        nav: nav(routes::ACCOUNT_TOTP),
        csrf: &csrf,
        email: &user.email,
        since: &utc(confirmed_at),
        codes_left,
        notice: notice.as_deref(),
        error,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = status;
    Ok(response)
}

/// `GET /account/totp`: the status of a confirmed authenticator, or the enrolment.
pub async fn totp_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<TotpQuery>,
) -> Result<Response> {
    // Adding a factor needs a recent sign-in (`pages::RECENT_SIGN_IN_SECS`).
    let holder = match recently_signed_in_holder(&state, &session, &here(&q.authz)).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let authz = live_authz(&session, &q.authz).await?;
    let user = &holder.user;
    if let Some(confirmed_at) = store::find(&state.db.pool, &user.id)
        .await?
        .and_then(|r| r.confirmed_at)
    {
        if !authz.is_empty() {
            // Set up meanwhile (another tab): the request now asks for the code instead.
            return Ok(see_other(&format!(
                "{}?authz={authz}",
                routes::LOGIN_SECOND_FACTOR
            )));
        }
        return status_view(&state, &session, user, confirmed_at, None, StatusCode::OK).await;
    }
    let secret = unconfirmed_secret(&state, user).await?;
    // A notice left by a removal is shown above the new set-up.
    let notice = notice::take(&session).await?;
    let shown = Shown {
        notice: notice.as_deref(),
        error: None,
        status: StatusCode::OK,
    };
    enrol_view(&state, user, &secret, authz, shown).await
}

/// Fields of the enrolment form.
#[derive(Deserialize)]
pub struct EnrolForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    authz: String,
    #[serde(default)]
    code: String,
}

/// `POST /account/totp`: confirms the unconfirmed secret with a first code (throttled like a
/// sign-in). In one transaction: the authenticator confirmed (its step used up), ten recovery codes
/// (replacing any), `mfa.totp_enabled`, the owner's mail. The codes are shown once; during an
/// authorization request the session gains `otp` + `mfa` and "Continue" resumes it.
pub async fn enrol_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    Form(form): Form<EnrolForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let holder = match recently_signed_in_holder(&state, &session, &here(&form.authz)).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let authz = live_authz(&session, &form.authz).await?;
    let user = &holder.user;
    let row = match store::find(&state.db.pool, &user.id).await? {
        Some(row) if row.confirmed_at.is_none() => row,
        Some(_) => {
            return notice::back(
                &session,
                routes::ACCOUNT_TOTP,
                "Your authenticator app is already set up.",
            )
            .await;
        }
        // Nothing to confirm (removed by a reset meanwhile): start again.
        None => return Ok(see_other(&here(authz))),
    };
    let secret = super::open(&state, &user.id, &row.secret_sealed)?;
    // Only a person without any factor is upgraded by the code of a new authenticator: one who
    // has a passkey proves that (or a recovery code) at the second step, so a session that knows
    // no factor cannot step up by setting up one of its own.
    let had_factor = mfa::factors(&state.db.pool, &user.id).await?.any();
    let now = state.clock.now();
    let device_token = device::device_token(&headers, &state.config);
    let keys = completion::throttle_keys(&state, Some(&user.id), &user.email, &device_token, &meta)
        .await?;
    let ip = meta.ip.clone().unwrap_or_default();
    let event = login_history::LoginEvent {
        user_id: Some(&user.id),
        email: &user.email,
        ip: &ip,
        user_agent: meta.user_agent.as_deref(),
        // The login history's name of a code typed while setting up the app (throttled ones only).
        method: "totp",
    };
    if let Some(throttled) = completion::admit_attempt(&state, &keys, &event, &meta, now).await? {
        let message = format!(
            "Too many wrong codes. Try again in {}.",
            throttle::wait_text(throttled.retry_after)
        );
        let shown = Shown {
            notice: None,
            error: Some(&message),
            status: StatusCode::TOO_MANY_REQUESTS,
        };
        let mut response = enrol_view(&state, user, &secret, authz, shown).await?;
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(throttled.retry_after));
        return Ok(response);
    }
    let step = super::normalise(&form.code).and_then(|c| super::matching_step(&secret, &c, now));
    let mut tx = state.db.begin().await?;
    let confirmed = match step {
        Some(step) => store::confirm(&mut *tx, &user.id, &row.secret_sealed, step, now).await?,
        None => false,
    };
    if !confirmed {
        // The failure stays counted (admitted above); the same secret is shown again.
        drop(tx);
        let shown = Shown {
            notice: None,
            error: Some(WRONG_CODE),
            status: StatusCode::BAD_REQUEST,
        };
        return enrol_view(&state, user, &secret, authz, shown).await;
    }
    let codes = recovery_codes::replace(&mut tx, &state, &user.id, now).await?;
    throttle::settle_success(&mut tx, &keys, now).await?;
    crate::mfa::record_change(
        &mut tx,
        &state,
        &meta,
        crate::mfa::Change {
            user_id: &user.id,
            email: &user.email,
            action: action::MFA_TOTP_ENABLED,
            details: json!({ "recovery_codes": codes.len() }),
            mail: FactorChange::TotpEnabled,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!(user_id = %user.id, "authenticator app set up");
    let continue_href = if authz.is_empty() {
        routes::ACCOUNT_TOTP.to_owned()
    } else if had_factor {
        format!("{}?authz={authz}", routes::LOGIN_SECOND_FACTOR)
    } else {
        upgrade_session(&state, &session, &holder, &meta).await?;
        format!("{}?authz={authz}", routes::AUTHORIZE_CONTINUE)
    };
    Ok(recovery_codes::shown_page(
        routes::ACCOUNT_TOTP,
        "Your authenticator app is set up. From now on, signing in asks for a code from it.",
        &codes,
        &continue_href,
    ))
}

/// The session of `holder` after a code was just proved during an authorization request: the same
/// `sid`, its methods plus `otp` and `mfa` (RFC 8176), a new `auth_time`.
async fn upgrade_session(
    state: &AppState,
    session: &Session,
    holder: &AccountHolder,
    meta: &RequestMeta,
) -> Result<()> {
    let amr = mfa::with_second_factor(&holder.session.amr, &[AMR_OTP]);
    let amr: Vec<&str> = amr.iter().map(String::as_str).collect();
    session::sign_in(session, &state.clock, &holder.user.id, &amr, meta).await?;
    Ok(())
}

/// Fields of the removal form.
#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

/// `POST /account/totp/remove`: after the password (throttled), the authenticator is removed (and
/// the recovery codes, when no passkey is left for them to stand in for), `mfa.totp_removed`, the
/// owner's mail; 303 back with a notice.
pub async fn remove_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(mut form): Form<RemoveForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let holder = match holder(&state, &session, routes::ACCOUNT_TOTP).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let user = &holder.user;
    let Some(confirmed_at) = store::find(&state.db.pool, &user.id)
        .await?
        .and_then(|r| r.confirmed_at)
    else {
        return Ok(see_other(routes::ACCOUNT_TOTP));
    };
    let password = Password::new(std::mem::take(&mut form.password));
    if let Some(refused) = reauth::verify(&state, user, &password)
        .await?
        .page_refusal()
    {
        let message = Some(refused.message.as_str());
        let page = status_view(
            &state,
            &session,
            user,
            confirmed_at,
            message,
            refused.status,
        );
        return Ok(refused.finish(page.await?));
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let removed = store::delete(&mut *tx, &user.id).await?;
    let factors = mfa::factors(&mut *tx, &user.id).await?;
    let codes_removed = if factors.passkeys == 0 {
        recovery_codes::delete_all(&mut *tx, &user.id).await?
    } else {
        0
    };
    if removed {
        crate::mfa::record_change(
            &mut tx,
            &state,
            &meta,
            crate::mfa::Change {
                user_id: &user.id,
                email: &user.email,
                action: action::MFA_TOTP_REMOVED,
                details: json!({ "recovery_codes_removed": codes_removed }),
                mail: FactorChange::TotpRemoved,
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!(user_id = %user.id, "authenticator app removed");
    notice::back(
        &session,
        routes::ACCOUNT_TOTP,
        "Your authenticator app was removed. Signing in no longer asks for its codes.",
    )
    .await
}
