//! `/account/profile`: the display name. ID tokens, userinfo and `/api/v1/me` read the user row when
//! they are issued, so the new name shows from the next one on (tokens already issued keep theirs).

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::notice;
use super::pages::{holder, nav};
use crate::accounts;
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::error::{AppError, Result};
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render, sentence};
use crate::web::request_meta::RequestMeta;

/// `GET /account/profile`.
#[derive(Template)]
#[template(path = "pages/account/profile.html")]
struct ProfilePage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    csrf: &'a str,
    email: &'a str,
    name: &'a str,
    max_name: usize,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    asset_version: &'a str,
}

/// Fields of the profile form.
#[derive(Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

fn page(email: &str, name: &str, notice: Option<&str>, error: Option<&str>) -> Result<Response> {
    let csrf = csrf::token()?;
    let mut response = render(&ProfilePage {
        nav: nav(routes::ACCOUNT_PROFILE),
        csrf: &csrf,
        email,
        name,
        max_name: accounts::MAX_NAME_LEN,
        notice,
        error,
        asset_version: ASSET_VERSION,
    });
    if error.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

/// `GET /account/profile`: the name form.
pub async fn profile_page(State(state): State<AppState>, session: Session) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_PROFILE).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let notice = notice::take(&session).await?;
    page(
        &holder.user.email,
        &holder.user.name,
        notice.as_deref(),
        None,
    )
}

/// `POST /account/profile`: saves the name (validated as at sign-up: trimmed, at most
/// [`accounts::MAX_NAME_LEN`] characters, no control characters), audits `user.profile_updated`,
/// 303 back with a notice.
pub async fn profile_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<ProfileForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let holder = match holder(&state, &session, routes::ACCOUNT_PROFILE).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let user = &holder.user;
    let name = match accounts::validate_name(&form.name) {
        Ok(name) => name,
        Err(AppError::Invalid(message)) => {
            return page(&user.email, &form.name, None, Some(&sentence(&message)));
        }
        Err(other) => return Err(other),
    };
    if name != user.name {
        let now = state.clock.now();
        let mut tx = state.db.begin().await?;
        accounts::store::set_name(&mut *tx, &user.id, &name, now).await?;
        audit::record(
            &mut *tx,
            &AuditEvent {
                org_id: None,
                actor: &Actor::user(user.id.clone(), meta),
                action: action::USER_PROFILE_UPDATED,
                target_type: Some("user"),
                target_id: Some(&user.id),
                details: json!({ "name": { "from": user.name, "to": name } }),
            },
            now,
        )
        .await?;
        tx.commit().await?;
    }
    notice::set(&session, "Your profile was saved.").await?;
    Ok(see_other(routes::ACCOUNT_PROFILE))
}
