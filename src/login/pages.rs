//! The login page (OWASP ASVS V2/V3): one message for an unknown email and a wrong password, the
//! same Argon2id work in both cases, a CSRF token, 303 after the POST, and a renewed session id.

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use super::{session, store};
use crate::accounts;
use crate::app::AppState;
use crate::crypto::password::Password;
use crate::error::Result;
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::web::page::{ASSET_VERSION, render};

/// The one message for every failed login, so it does not reveal which emails have accounts.
pub const LOGIN_FAILED: &str = "The email or password is not correct.";

/// The login page.
#[derive(Template)]
#[template(path = "pages/login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    authz: &'a str,
    email: &'a str,
    client_name: Option<&'a str>,
    error: Option<&'a str>,
    asset_version: &'a str,
}

/// Query of `GET /login`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// Pending authorization request, if the login is part of one.
    #[serde(default)]
    pub authz: String,
}

/// Fields of the login form.
#[derive(Deserialize)]
pub struct LoginForm {
    /// Defaulted so that a missing token is refused like a wrong one (400), not as a malformed form.
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    authz: String,
    email: String,
    password: String,
}

async fn render_login(
    state: &AppState,
    session: &Session,
    authz: &str,
    email: Option<&str>,
    error: Option<&str>,
) -> Result<Response> {
    let csrf = session::csrf_token(session).await?;
    let pending = if authz.is_empty() {
        None
    } else {
        session::pending(session, authz).await?
    };
    let client = match &pending {
        Some(req) => state.clients.find(&req.client_id).await?,
        None => None,
    };
    let hint = pending.as_ref().and_then(|r| r.login_hint.as_deref());
    let page = LoginPage {
        csrf: &csrf,
        authz: if pending.is_some() { authz } else { "" },
        email: email.or(hint).unwrap_or_default(),
        client_name: client.as_ref().map(|c| c.name.as_str()),
        error,
        asset_version: ASSET_VERSION,
    };
    let mut response = render(&page);
    if error.is_some() {
        *response.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
    }
    Ok(response)
}

/// `GET /login`
pub async fn login_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Result<Response> {
    render_login(&state, &session, &q.authz, None, None).await
}

/// `POST /login`
pub async fn login_submit(
    State(state): State<AppState>,
    session: Session,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response> {
    session::check_csrf(&session, &form.csrf).await?;
    let email = form.email.trim();
    let password = Password::new(form.password);
    let found = if email.len() <= accounts::MAX_EMAIL_LEN {
        accounts::store::find_credentials(&state.db.pool, email).await?
    } else {
        None
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, None),
    };
    // Unknown users are verified against a dummy hash: the same work, no timing oracle.
    let verified = state.hasher.verify(&password, hash.as_deref()).await?;
    let user_id = user.as_ref().map(|u| u.id.clone());
    let ip = peer.ip().to_string();
    let event = store::LoginEvent {
        user_id: user_id.as_deref(),
        email,
        ip: &ip,
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    };
    let now = state.clock.now();
    let Some(user) = user.filter(|u| verified && !u.disabled) else {
        store::record_login(&state.db.pool, &event, false, now).await?;
        return render_login(
            &state,
            &session,
            &form.authz,
            Some(email),
            Some(LOGIN_FAILED),
        )
        .await;
    };
    store::record_login(&state.db.pool, &event, true, now).await?;
    session::sign_in(&session, &state.clock, &user.id, &["pwd"]).await?;
    tracing::info!(user_id = %user.id, "login succeeded");
    let pending = if form.authz.is_empty() {
        None
    } else {
        session::pending(&session, &form.authz).await?
    };
    if let Some(mut req) = pending {
        // This login answers `prompt=login` / `max_age` of the request it was asked for.
        req.signed_in_for_request = true;
        session::save_pending(&session, &req).await?;
        return Ok(see_other(&format!(
            "{}?authz={}",
            routes::AUTHORIZE_CONTINUE,
            form.authz
        )));
    }
    Ok(see_other(routes::HOME))
}
