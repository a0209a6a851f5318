//! The second step of a sign-in: after the first factor ([`crate::login::completion`] keeps a
//! [`PendingFactor`] and sends the browser here), the person proves a second one: a TOTP code or a
//! recovery code in the form's input `code`, or a passkey ([`super::passkeys`]). A signed-in
//! session that must add a factor (a step-up asked by [`crate::oauth::authorize`]: `acr_values`
//! with [`super::ACR_MFA`], an organization's `require_mfa`; OIDC Core §3.1.2.1) comes here too,
//! with `?authz=…`.
//!
//! Wrong codes count on the same throttling counters as wrong passwords ([`throttle`]: the
//! attempt is admitted as a failure before the code is checked, a success takes it back), so a
//! known password does not buy unlimited guesses at a 6-digit code (OWASP ASVS V2.2.1). Every
//! refusal is in the login history and the audit log (`mfa.failed`).
//!
//! Every second factor ends in [`complete`], which hands both factors back to
//! [`finish_sign_in`]: one end for every way of signing in.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::mail::FactorChange;
use super::pending::{self, PendingFactor};
use super::totp::{self, Checked};
use super::{AMR_OTP, passkeys, recovery_codes};
use crate::accounts;
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action, login_history};
use crate::error::Result;
use crate::login::completion::{self, Completion, finish_sign_in};
use crate::login::pages::LOGIN_THROTTLED;
use crate::login::{device, session, throttle};
use crate::oauth::authorize::{expired_request, see_other};
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// The login-history and `amr` method of a recovery code (RFC 8176 has no value of its own for it;
/// the `amr` says `otp`).
pub const METHOD_RECOVERY: &str = "recovery";

/// The login-history method of a signed-in session adding a factor (step-up).
pub const METHOD_SESSION: &str = "session";

/// The message of a wrong code.
pub const WRONG_CODE: &str = "That code is not correct. Type the code your authenticator app shows now, or one of your recovery codes.";

/// The message of a code already used.
pub const REUSED_CODE: &str =
    "That code was already used. Wait for the app to show the next one and type it.";

/// The second-step page and its forms.
pub fn router() -> Router<AppState> {
    Router::new().route(
        routes::LOGIN_SECOND_FACTOR,
        get(second_factor_page).post(second_factor_submit),
    )
}

/// `GET /login/second-factor`.
#[derive(Template)]
#[template(path = "pages/mfa/second_step.html")]
struct SecondStepPage<'a> {
    csrf: &'a str,
    /// The account has an authenticator app (else only recovery codes go in the code field).
    has_totp: bool,
    /// The account has unused recovery codes.
    has_recovery_codes: bool,
    /// The passkey offer ([`passkeys::second_factor_offer`]), rendered there.
    passkey_html: Option<&'a str>,
    /// A step-up of a signed-in session (the wording differs).
    step_up: bool,
    /// Where "Cancel" goes.
    cancel_href: &'a str,
    error: Option<&'a str>,
    asset_version: &'a str,
}

/// Query of `GET /login/second-factor`.
#[derive(Debug, Deserialize)]
pub struct SecondStepQuery {
    /// The authorization request that asked a signed-in session for a second factor (step-up).
    #[serde(default)]
    authz: String,
}

/// Fields of the second-step form.
#[derive(Deserialize)]
pub struct SecondStepForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// Where "Cancel" (and an expired second step) goes: the login page, with the authorization request.
fn login_href(authz: &str) -> String {
    if authz.is_empty() {
        routes::LOGIN.to_owned()
    } else {
        let q = url::form_urlencoded::byte_serialize(authz.as_bytes()).collect::<String>();
        format!("{}?authz={q}", routes::LOGIN)
    }
}

async fn second_step_view(
    state: &AppState,
    session: &Session,
    pending: &PendingFactor,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response> {
    let csrf = csrf::token()?;
    let factors = super::factors(&state.db.pool, &pending.user_id).await?;
    let offer = passkeys::second_factor_offer(state, session, pending).await?;
    let cancel_href = login_href(&pending.authz);
    let mut response = render(&SecondStepPage {
        csrf: &csrf,
        has_totp: factors.totp,
        has_recovery_codes: factors.recovery_codes > 0,
        passkey_html: offer.as_ref().map(|o| o.html.as_str()),
        step_up: pending.step_up,
        cancel_href: &cancel_href,
        error,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = status;
    if offer.is_some() {
        // The passkey button runs our script; only then does this page allow `script-src 'self'`.
        passkeys::allow_script(&mut response);
    }
    Ok(response)
}

/// The pending second factor of this browser for the request `authz` (empty: any): the one a
/// first factor left, or, for a signed-in session sent here by `/authorize` (step-up), a new one
/// made from the session.
async fn pending_for(
    state: &AppState,
    session: &Session,
    authz: &str,
) -> Result<Option<PendingFactor>> {
    if let Some(pending) = pending::get(session, &state.clock).await?
        && (authz.is_empty() || pending.authz == authz)
    {
        return Ok(Some(pending));
    }
    if authz.is_empty() || session::pending(session, authz).await?.is_none() {
        return Ok(None);
    }
    let Some(signed) = session::signed_in(session, &state.clock).await? else {
        return Ok(None);
    };
    let Some(user) = accounts::store::find_by_id(&state.db.pool, &signed.user_id)
        .await?
        .filter(|u| !u.disabled)
    else {
        return Ok(None);
    };
    let pending = PendingFactor {
        user_id: user.id,
        email: user.email,
        method: METHOD_SESSION.to_owned(),
        amr: signed.amr,
        authz: authz.to_owned(),
        next: String::new(),
        started_at: state.clock.now(),
        step_up: true,
    };
    pending::begin(session, &pending).await?;
    Ok(Some(pending))
}

/// `GET /login/second-factor`: the form (input `code`) and the passkey offer; without a pending
/// first factor (or a step-up request of this signed-in session), the login page.
pub async fn second_factor_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<SecondStepQuery>,
) -> Result<Response> {
    let Some(pending) = pending_for(&state, &session, &q.authz).await? else {
        return Ok(see_other(&login_href(&q.authz)));
    };
    if !super::factors(&state.db.pool, &pending.user_id)
        .await?
        .any()
    {
        // Every factor was removed meanwhile (an operator's reset): a step-up must enrol first; a
        // sign-in starts again (the first factor alone now suffices).
        pending::clear(&session).await?;
        if pending.step_up {
            return Ok(see_other(&format!(
                "{}?authz={}",
                routes::ACCOUNT_TOTP,
                pending.authz
            )));
        }
        return Ok(see_other(&login_href(&pending.authz)));
    }
    second_step_view(&state, &session, &pending, None, StatusCode::OK).await
}

/// `POST /login/second-factor`: a 6-digit `code` is checked against the authenticator app (once
/// per code), anything else as a recovery code (single use; `mfa.recovery_code_used`, the owner
/// mailed). Throttled like the login (429 with `Retry-After`); a wrong code is a 400 page with the
/// pending state kept, recorded (`mfa.failed`, login history); a right one ends in [`complete`].
pub async fn second_factor_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    Form(form): Form<SecondStepForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let Some(pending) = pending::get(&session, &state.clock).await? else {
        return Ok(see_other(routes::LOGIN));
    };
    let user_id = pending.user_id.as_str();
    let now = state.clock.now();
    let device_token = device::device_token(&headers, &state.config);
    let keys =
        completion::throttle_keys(&state, Some(user_id), &pending.email, &device_token, &meta)
            .await?;
    let ip = meta.ip.clone().unwrap_or_default();
    let is_totp = totp::normalise(&form.code).is_some();
    let factor = if is_totp { AMR_OTP } else { METHOD_RECOVERY };
    let history_method = format!("{}+{factor}", pending.method);
    let event = login_history::LoginEvent {
        user_id: Some(user_id),
        email: &pending.email,
        ip: &ip,
        user_agent: meta.user_agent.as_deref(),
        method: &history_method,
    };
    // As the login page (a success takes the counted failure back in `complete`).
    if let Some(throttled) = completion::admit_attempt(&state, &keys, &event, &meta, now).await? {
        let message = format!(
            "{LOGIN_THROTTLED} {}.",
            throttle::wait_text(throttled.retry_after)
        );
        let mut response = second_step_view(
            &state,
            &session,
            &pending,
            Some(&message),
            StatusCode::TOO_MANY_REQUESTS,
        )
        .await?;
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(throttled.retry_after));
        return Ok(response);
    }
    let refusal = if is_totp {
        match totp::verify(&state, user_id, &form.code, now).await? {
            Checked::Accepted => None,
            Checked::Reused => Some(("reused", REUSED_CODE)),
            Checked::Wrong => Some(("wrong_code", WRONG_CODE)),
        }
    } else {
        let mut tx = state.db.begin().await?;
        match recovery_codes::consume(&mut tx, &state, user_id, &form.code, now).await? {
            Some(left) => {
                let email = accounts::store::find_by_id(&mut *tx, user_id)
                    .await?
                    .map(|u| u.email)
                    .unwrap_or_else(|| pending.email.clone());
                super::record_change(
                    &mut tx,
                    &state,
                    &meta,
                    super::Change {
                        user_id,
                        email: &email,
                        action: action::MFA_RECOVERY_CODE_USED,
                        details: json!({ "left": left }),
                        mail: FactorChange::RecoveryCodeUsed { left },
                    },
                    now,
                )
                .await?;
                tx.commit().await?;
                state.mailer.wake();
                None
            }
            None => Some(("wrong_recovery_code", WRONG_CODE)),
        }
    };
    if let Some((reason, message)) = refusal {
        let mut tx = state.db.begin().await?;
        login_history::record_login(&mut *tx, &event, false, now).await?;
        audit::record(
            &mut *tx,
            &AuditEvent {
                org_id: None,
                actor: &Actor::anonymous(meta.clone()),
                action: action::MFA_FAILED,
                target_type: Some("user"),
                target_id: Some(user_id),
                details: json!({ "factor": factor, "reason": reason }),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(user_id, reason, "second factor refused");
        return second_step_view(
            &state,
            &session,
            &pending,
            Some(message),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    complete(
        &state,
        &session,
        &meta,
        &headers,
        &pending,
        &[AMR_OTP],
        factor,
    )
    .await
}

/// Ends a sign-in (or a step-up) whose second factor was just proved: `second` are its RFC 8176
/// methods (`["otp"]`, `["hwk", "user"]`, ...), `method` its name in the login history. The pending
/// state is cleared; the session is signed in with both factors in `amr` (a step-up keeps its
/// `sid`), the attempt's throttling counters are settled, and the pending authorization request
/// continues. An account disabled or deleted meanwhile is refused like an expired request.
pub async fn complete(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    headers: &HeaderMap,
    pending: &PendingFactor,
    second: &[&str],
    method: &str,
) -> Result<Response> {
    pending::clear(session).await?;
    let user = accounts::store::find_by_id(&state.db.pool, &pending.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(expired_request)?;
    let amr = super::with_second_factor(&pending.amr, second);
    let amr: Vec<&str> = amr.iter().map(String::as_str).collect();
    let device_token = device::device_token(headers, &state.config);
    let keys =
        completion::throttle_keys(state, Some(&user.id), &pending.email, &device_token, meta)
            .await?;
    let method = format!("{}+{method}", pending.method);
    let tx = state.db.begin().await?;
    let c = Completion {
        user: &user,
        email: &pending.email,
        method: &method,
        amr: &amr,
        keys: &keys,
        authz: &pending.authz,
        next: &pending.next,
        device_token: &device_token,
    };
    finish_sign_in(state, session, meta, tx, c).await
}
