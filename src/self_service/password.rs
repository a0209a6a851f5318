//! `/account/password`: changing the password (OWASP ASVS V2.1.5/V2.1.6: the current password is
//! asked for, throttled like a sign-in ([`super::reauth`]); the new one meets
//! [`check_new_password`]). In one transaction: the new Argon2id hash, every open reset link of the
//! account invalidated (it could set the password back), optionally every other browser signed out
//! ([`lifecycle::end_other_sessions`]), the "password changed" mail and an audit event. This browser
//! stays signed in. An account without a password (invited, or created without one) sets a first
//! one here without "current".

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::pages::{holder, nav};
use super::reauth::{self, Reauth};
use super::{mail, notice, store};
use crate::accounts::lifecycle::{self, Ended};
use crate::accounts::password_strength::check_new_password;
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::crypto::password::Password;
use crate::error::Result;
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, mismatched, render, sentence};
use crate::web::request_meta::RequestMeta;

/// `GET /account/password`.
#[derive(Template)]
#[template(path = "pages/account/password.html")]
struct PasswordPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    csrf: &'a str,
    email: &'a str,
    has_password: bool,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    /// Why the new password was refused, shown under the field.
    password_error: Option<&'a str>,
    asset_version: &'a str,
}

/// Fields of the password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    /// Absent on the form of an account without a password.
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    /// The page always sends it; a scripted client that leaves it out is not refused for that.
    #[serde(default)]
    password_confirm: Option<String>,
    /// The checkbox: present ("on") when ticked.
    #[serde(default)]
    sign_out_others: Option<String>,
}

struct Shown<'a> {
    error: Option<&'a str>,
    password_error: Option<&'a str>,
    status: StatusCode,
}

async fn password_page(
    state: &AppState,
    session: &Session,
    user: &crate::accounts::User,
    shown: Shown<'_>,
) -> Result<Response> {
    let csrf = csrf::token()?;
    let notice = notice::take(session).await?;
    let mut response = render(&PasswordPage {
        nav: nav(routes::ACCOUNT_PASSWORD),
        csrf: &csrf,
        email: &user.email,
        has_password: reauth::has_password(state, user).await?,
        notice: notice.as_deref(),
        error: shown.error,
        password_error: shown.password_error,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = shown.status;
    Ok(response)
}

/// `GET /account/password`.
pub async fn password_form(State(state): State<AppState>, session: Session) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_PASSWORD).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let shown = Shown {
        error: None,
        password_error: None,
        status: StatusCode::OK,
    };
    password_page(&state, &session, &holder.user, shown).await
}

/// `POST /account/password`: see the module doc; 303 back with a notice; audits
/// `user.password_changed` (whether the other browsers were signed out).
pub async fn password_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(mut form): Form<PasswordForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let holder = match holder(&state, &session, routes::ACCOUNT_PASSWORD).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let user = &holder.user;
    let had_password = reauth::has_password(&state, user).await?;
    let new_password = Password::new(std::mem::take(&mut form.password));
    // The new password is checked first: a refused one costs no guess of the current password.
    if let Err(e) = check_new_password(&new_password, &user.email, &user.name) {
        let message = sentence(&format!("the new {e}"));
        return password_page(
            &state,
            &session,
            user,
            Shown {
                error: None,
                password_error: Some(&message),
                status: StatusCode::BAD_REQUEST,
            },
        )
        .await;
    }
    if mismatched(new_password.expose(), form.password_confirm.as_deref()) {
        let message = "The two new passwords are not the same.";
        return password_page(
            &state,
            &session,
            user,
            Shown {
                error: Some(message),
                password_error: None,
                status: StatusCode::BAD_REQUEST,
            },
        )
        .await;
    }
    if had_password {
        let current = Password::new(std::mem::take(&mut form.current_password));
        match reauth::verify(&state, user, &current).await? {
            Reauth::Verified => {}
            Reauth::Wrong | Reauth::NoPassword => {
                let message = "The current password is not correct.";
                return password_page(
                    &state,
                    &session,
                    user,
                    Shown {
                        error: Some(message),
                        password_error: None,
                        status: StatusCode::BAD_REQUEST,
                    },
                )
                .await;
            }
            Reauth::Throttled(throttled) => {
                let message = reauth::throttled_message(throttled);
                let mut response = password_page(
                    &state,
                    &session,
                    user,
                    Shown {
                        error: Some(&message),
                        password_error: None,
                        status: StatusCode::TOO_MANY_REQUESTS,
                    },
                )
                .await?;
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(throttled.retry_after));
                return Ok(response);
            }
        }
    }
    // Argon2id on the blocking pool, within the hasher's limit of concurrent work.
    let phc = state.hasher.hash(&new_password).await?;
    let sign_out_others = form.sign_out_others.is_some();

    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    store::set_password_hash(&mut *tx, &user.id, &phc, now).await?;
    let links = crate::recovery::store::invalidate_user_tokens(&mut *tx, &user.id, now).await?;
    let ended = if sign_out_others {
        lifecycle::end_other_sessions(&mut tx, &user.id, &holder.session.sid, now).await?
    } else {
        Ended::default()
    };
    mail::queue_password_changed(
        &mut tx,
        &state,
        &user.email,
        meta.ip.as_deref(),
        sign_out_others,
        now,
    )
    .await?;
    audit::record(
        &mut *tx,
        &AuditEvent {
            org_id: None,
            actor: &Actor::user(user.id.clone(), meta),
            action: action::USER_PASSWORD_CHANGED,
            target_type: Some("user"),
            target_id: Some(&user.id),
            details: json!({
                "first_password": !had_password,
                "signed_out_others": sign_out_others,
                "sessions_ended": ended.sessions,
                "refresh_families_revoked": ended.refresh_families,
                "reset_links_invalidated": links,
            }),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!(user_id = %user.id, sign_out_others, "password changed");
    let message = match (had_password, sign_out_others) {
        (false, _) => "Your password was set.",
        (true, true) => "Your password was changed, and your other browsers were signed out.",
        (true, false) => "Your password was changed.",
    };
    notice::set(&session, message).await?;
    Ok(see_other(routes::ACCOUNT_PASSWORD))
}
