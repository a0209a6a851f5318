//! The sign-up page (`LATCHKEY_SIGNUP=open`): email, name, password twice, an optional organization,
//! CSRF. On success the new user is signed in (a new session id, OWASP ASVS V3.2.1) and either
//! continues the authorization request that sent them here or sees the "check your inbox" page.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use super::registration::{self, SignupError, SignupInput};
use super::store;
use crate::app::AppState;
use crate::config::SignupPolicy;
use crate::crypto::password::Password;
use crate::error::{AppError, Result};
use crate::login::session;
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, mismatched, render, sentence};
use crate::web::request_meta::RequestMeta;

/// The sign-up page, also in its "by invitation only" and "email taken" forms.
#[derive(Template)]
#[template(path = "pages/signup.html")]
struct SignupPage<'a> {
    csrf: &'a str,
    authz: &'a str,
    email: &'a str,
    name: &'a str,
    organization: &'a str,
    client_name: Option<&'a str>,
    error: Option<&'a str>,
    /// Why the password was refused, shown under the field.
    password_error: Option<&'a str>,
    invite_only: bool,
    email_taken: bool,
    login_url: &'a str,
    forgot_url: &'a str,
    min_password: usize,
    asset_version: &'a str,
}

/// The "check your inbox" page.
#[derive(Template)]
#[template(path = "pages/signup_done.html")]
struct DonePage<'a> {
    email: &'a str,
    verified: bool,
    csrf: &'a str,
    asset_version: &'a str,
}

/// Query of `GET /signup`.
#[derive(Debug, Deserialize)]
pub struct SignupQuery {
    /// Pending authorization request, if the sign-up is part of one.
    #[serde(default)]
    pub authz: String,
}

/// Fields of the sign-up form. All defaulted, so that a missing field is refused with a message on
/// the form (or a missing CSRF token as a 400), not as a malformed request.
#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    authz: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    /// The page always sends it; a scripted client that leaves it out is not refused for that.
    #[serde(default)]
    password_confirm: Option<String>,
    #[serde(default)]
    organization: String,
}

/// What the form shows again after a refusal (never the password).
#[derive(Default)]
struct Typed<'a> {
    email: &'a str,
    name: &'a str,
    organization: &'a str,
}

/// How the page is to be rendered.
enum Mode<'a> {
    Form(Option<&'a str>),
    /// The password was refused (too short, too long or too easy to guess).
    WeakPassword(&'a str),
    InviteOnly,
    EmailTaken,
}

async fn render_signup(
    state: &AppState,
    session: &Session,
    authz: &str,
    typed: &Typed<'_>,
    mode: Mode<'_>,
) -> Result<Response> {
    let csrf = csrf::token()?;
    let pending = if authz.is_empty() {
        None
    } else {
        session::pending(session, authz).await?
    };
    let client = match &pending {
        Some(req) => state.clients.find(&req.client_id).await?,
        None => None,
    };
    let authz = if pending.is_some() { authz } else { "" };
    let login_url = if authz.is_empty() {
        routes::LOGIN.to_owned()
    } else {
        format!("{}?authz={authz}", routes::LOGIN)
    };
    let (error, password_error, status) = match mode {
        Mode::Form(None) => (None, None, StatusCode::OK),
        Mode::Form(Some(e)) => (Some(e), None, StatusCode::BAD_REQUEST),
        Mode::WeakPassword(e) => (None, Some(e), StatusCode::BAD_REQUEST),
        Mode::InviteOnly => (None, None, StatusCode::FORBIDDEN),
        Mode::EmailTaken => (None, None, StatusCode::CONFLICT),
    };
    let page = SignupPage {
        csrf: &csrf,
        authz,
        email: typed.email,
        name: typed.name,
        organization: typed.organization,
        client_name: client.as_ref().map(|c| c.name.as_str()),
        error,
        password_error,
        invite_only: status == StatusCode::FORBIDDEN,
        email_taken: status == StatusCode::CONFLICT,
        login_url: &login_url,
        forgot_url: routes::PASSWORD_FORGOT,
        min_password: crate::crypto::password::MIN_PASSWORD_CHARS,
        asset_version: ASSET_VERSION,
    };
    let mut response = render(&page);
    *response.status_mut() = status;
    Ok(response)
}

/// `GET /signup`
pub async fn signup_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<SignupQuery>,
) -> Result<Response> {
    let mode = match state.config.signup {
        SignupPolicy::Open => Mode::Form(None),
        SignupPolicy::InviteOnly => Mode::InviteOnly,
    };
    render_signup(&state, &session, &q.authz, &Typed::default(), mode).await
}

/// `POST /signup`
pub async fn signup_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<SignupForm>,
) -> Result<Response> {
    if state.config.signup == SignupPolicy::InviteOnly {
        return render_signup(&state, &session, "", &Typed::default(), Mode::InviteOnly).await;
    }
    csrf::check(&form.csrf)?;
    let typed = Typed {
        email: form.email.trim(),
        name: form.name.trim(),
        organization: form.organization.trim(),
    };
    if mismatched(&form.password, form.password_confirm.as_deref()) {
        let message = sentence("the two passwords do not match");
        let mode = Mode::Form(Some(&message));
        return render_signup(&state, &session, &form.authz, &typed, mode).await;
    }
    let password = Password::new(form.password);
    let input = SignupInput {
        email: &form.email,
        name: &form.name,
        password: &password,
        organization: Some(&form.organization),
    };
    let registered = match registration::register(&state, &input, &meta).await {
        Ok(registered) => registered,
        Err(SignupError::EmailTaken) => {
            return render_signup(&state, &session, &form.authz, &typed, Mode::EmailTaken).await;
        }
        Err(SignupError::Other(e)) => return Err(e),
        // The per-address limit: a 429 page, nothing to correct in the form.
        Err(too_many @ SignupError::TooMany) => {
            return Err(AppError::TooManyRequests(sentence(&too_many.message())));
        }
        Err(SignupError::WeakPassword(why)) => {
            let message = sentence(&why);
            let mode = Mode::WeakPassword(&message);
            return render_signup(&state, &session, &form.authz, &typed, mode).await;
        }
        Err(refused) => {
            let message = sentence(&refused.message());
            let mode = Mode::Form(Some(&message));
            return render_signup(&state, &session, &form.authz, &typed, mode).await;
        }
    };
    session::sign_in(&session, &state.clock, &registered.user.id, &["pwd"], &meta).await?;
    let pending = if form.authz.is_empty() {
        None
    } else {
        session::pending(&session, &form.authz).await?
    };
    if let Some(mut req) = pending {
        // Signing up is a fresh login for this very request (`prompt=login`, `max_age`).
        req.signed_in_for_request = true;
        session::save_pending(&session, &req).await?;
        return Ok(see_other(&format!(
            "{}?authz={}",
            routes::AUTHORIZE_CONTINUE,
            form.authz
        )));
    }
    Ok(see_other(routes::SIGNUP_DONE))
}

/// `GET /signup/welcome`: "check your inbox", with a button for a new link. Signed-in users only.
pub async fn done_page(State(state): State<AppState>, session: Session) -> Result<Response> {
    let Some(signed) = session::signed_in(&session, &state.clock).await? else {
        return Ok(see_other(routes::LOGIN));
    };
    let Some(user) = store::find_by_id(&state.db.pool, &signed.user_id).await? else {
        return Ok(see_other(routes::LOGIN));
    };
    let csrf = csrf::token()?;
    Ok(render(&DonePage {
        email: &user.email,
        verified: user.email_verified,
        csrf: &csrf,
        asset_version: ASSET_VERSION,
    }))
}
