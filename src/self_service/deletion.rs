//! Deleting one's own account (GDPR art. 17, the right to erasure): the page `/account/delete` and
//! `DELETE /api/v1/me`, sharing one function ([`delete_account`]).
//!
//! The password is re-entered (throttled like a sign-in, [`super::reauth`]). The deletion itself
//! is [`lifecycle::delete_user`]: refused while the person is the only owner of an organization
//! (naming which), else the user row goes and everything personal with it (sessions, refresh
//! families, consents, memberships, history: foreign keys `on delete cascade`). In the same
//! transaction: the audit event `user.deleted` (the audit log keeps the user id, as it has no
//! foreign keys), a `member.removed` in each organization the person was in, and a goodbye mail to
//! the address.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::mail;
use super::pages::{holder, nav};
use super::reauth::{self, Reauth};
use crate::accounts::User;
use crate::accounts::lifecycle::{self, DeleteRefused, DeletedBy};
use crate::app::AppState;
use crate::audit::Actor;
use crate::crypto::password::Password;
use crate::error::{AppError, Result};
use crate::login::session::session_error;
use crate::oauth::authorize::see_other;
use crate::orgs::{self, Organization};
use crate::routes;
use crate::web::api::ApiJson;
use crate::web::bearer::{ApiCaller, SCOPE_ACCOUNT_WRITE};
use crate::web::csrf;
use crate::web::openapi::{
    BadRequest, Conflict, Forbidden, PayloadTooLarge, TooManyRequests, Unauthorized,
    UnsupportedMediaType,
};
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// `GET /account/delete`.
#[derive(Template)]
#[template(path = "pages/account/delete.html")]
struct DeletePage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    csrf: &'a str,
    email: &'a str,
    has_password: bool,
    /// Organizations the person is the only owner of (the deletion would be refused).
    sole: &'a [Organization],
    error: Option<&'a str>,
    asset_version: &'a str,
}

/// `GET /account/deleted`.
#[derive(Template)]
#[template(path = "pages/account_deleted.html")]
struct DeletedPage<'a> {
    asset_version: &'a str,
}

/// Fields of the deletion form.
#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

/// Body of `DELETE /api/v1/me`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteBody {
    /// The account's password, re-entered.
    password: String,
}

/// Deletes `user` (see the module doc) as `actor`, recording `user.deleted` and queuing the goodbye
/// in one transaction, then wakes the mailer. `Err(refused)`: nothing changed.
pub async fn delete_account(
    state: &AppState,
    user: &User,
    actor: &Actor,
) -> Result<std::result::Result<(), DeleteRefused>> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    if let Err(refused) =
        lifecycle::delete_user(&mut tx, user, actor, DeletedBy::Themselves, now).await?
    {
        return Ok(Err(refused));
    }
    mail::queue_account_deleted(&mut tx, state, &user.email, now).await?;
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!(user_id = %user.id, "account deleted by its owner");
    Ok(Ok(()))
}

async fn delete_page(
    state: &AppState,
    user: &User,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response> {
    let csrf = csrf::token()?;
    let sole = orgs::store::solely_owned_by(&state.db.pool, &user.id).await?;
    let mut response = render(&DeletePage {
        nav: nav(routes::ACCOUNT_DELETE),
        csrf: &csrf,
        email: &user.email,
        has_password: reauth::has_password(state, user).await?,
        sole: &sole,
        error,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = status;
    Ok(response)
}

/// `GET /account/delete`: what goes, and the password form.
pub async fn delete_form(State(state): State<AppState>, session: Session) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_DELETE).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    delete_page(&state, &holder.user, None, StatusCode::OK).await
}

/// `POST /account/delete`: password, then [`delete_account`]; the session is flushed and the
/// browser sent to the goodbye page. The last owner of an organization gets the page back (409)
/// naming it.
pub async fn delete_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(mut form): Form<DeleteForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let holder = match holder(&state, &session, routes::ACCOUNT_DELETE).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let user = &holder.user;
    let password = Password::new(std::mem::take(&mut form.password));
    if let Some(refused) = reauth::verify(&state, user, &password)
        .await?
        .page_refusal()
    {
        let message = Some(refused.message.as_str());
        let page = delete_page(&state, user, message, refused.status).await?;
        return Ok(refused.finish(page));
    }
    let actor = Actor::user(user.id.clone(), meta);
    if let Err(refused) = delete_account(&state, user, &actor).await? {
        let message = refused.message();
        return delete_page(&state, user, Some(&message), StatusCode::CONFLICT).await;
    }
    // The session row went with the user; forget this browser's cookie too.
    session.flush().await.map_err(session_error)?;
    Ok(see_other(routes::ACCOUNT_DELETED))
}

/// `GET /account/deleted`: the goodbye (signed out, so no account layout).
pub async fn deleted_page() -> Response {
    render(&DeletedPage {
        asset_version: ASSET_VERSION,
    })
}

/// `DELETE /api/v1/me` with `{"password": "…"}` (a user token with `account:write`): 204; 403
/// `wrong-password` (429 `too-many-attempts` with `Retry-After` when throttled); 409 `last-owner`
/// naming the organizations; 403 for a client token or a missing scope. The body is read after the
/// token's checks, so a caller without the right learns nothing from a body error.
#[utoipa::path(
    operation_id = "me_delete",
    delete,
    path = crate::routes::API_ME,
    tag = "account",
    request_body = DeleteBody,
    responses(
        (status = 204, description = "The account is deleted"),
        BadRequest, Unauthorized, Forbidden, Conflict, PayloadTooLarge, UnsupportedMediaType, TooManyRequests,
    ),
    security(("bearer" = [])),
)]
pub async fn api_delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    body: std::result::Result<ApiJson<DeleteBody>, AppError>,
) -> Result<Response> {
    let user = caller.require_user()?;
    caller.require_scope(SCOPE_ACCOUNT_WRITE)?;
    let ApiJson(body) = body?;
    let password = Password::new(body.password);
    match reauth::verify(&state, user, &password).await? {
        Reauth::Verified => {}
        Reauth::Wrong => {
            return Err(AppError::problem(
                StatusCode::FORBIDDEN,
                "wrong-password",
                "the password is not correct",
            ));
        }
        Reauth::NoPassword => {
            return Err(AppError::problem(
                StatusCode::FORBIDDEN,
                "wrong-password",
                "the account has no password; set one before deleting it",
            ));
        }
        Reauth::Throttled(throttled) => {
            let mut response = AppError::problem(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-attempts",
                format!(
                    "too many wrong passwords; try again in {}",
                    crate::login::throttle::wait_text(throttled.retry_after)
                ),
            )
            .into_response();
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(throttled.retry_after));
            return Ok(response);
        }
    }
    let actor = Actor::api(&caller, meta);
    match delete_account(&state, user, &actor).await? {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(refused) => Err(AppError::problem(
            StatusCode::CONFLICT,
            "last-owner",
            refused.message(),
        )),
    }
}
