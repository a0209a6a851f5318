//! Home-realm discovery: where a person signs in, decided before any password is asked for.
//! - When connections exist, the login page asks for the email first (`POST /login/identify`): an
//!   address whose domain an organization verified and connected goes straight to that
//!   organization's provider; any other gets the password step with the address filled in.
//! - `login_hint` of the authorization request routes like a typed address.
//! - `organization=` naming an organization with a connection offers that connection first on the
//!   login page, and goes straight there when the organization requires SSO (`sso_required`).
//! - Instance-wide connections are the "Continue with NAME" buttons.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;
use tower_sessions::Session;
use url::form_urlencoded;

use super::connections::{Connection, store as connections};
use super::domains::{self, store as domains_store};
use crate::accounts;
use crate::app::AppState;
use crate::db::Exec;
use crate::error::Result;
use crate::login::pages::{self, local_next};
use crate::login::session;
use crate::oauth::authorize::see_other;
use crate::oauth::request::AuthzRequest;
use crate::routes;
use crate::web::csrf;

/// The email-first step of the login page.
pub fn router() -> Router<AppState> {
    Router::new().route(routes::LOGIN_IDENTIFY, post(identify))
}

/// The connection an address goes to: its domain's organization (the one that verified it) and
/// that organization's first connection.
pub async fn route<'c>(ex: impl Exec<'c> + Copy, email: &str) -> Result<Option<Connection>> {
    let Some(domain) = domains::email_domain(email) else {
        return Ok(None);
    };
    let Some(org_id) = domains_store::verified_owner(ex, &domain).await? else {
        return Ok(None);
    };
    Ok(connections::list_for_org(ex, &org_id)
        .await?
        .into_iter()
        .next())
}

/// `/federation/start?connection=…&authz=…&next=…&login_hint=…`: the link that starts a sign-in
/// through `connection`.
pub fn start_link(connection: &str, authz: &str, next: &str, login_hint: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("connection", connection);
    if !authz.is_empty() {
        query.append_pair("authz", authz);
    }
    if let Some(next) = local_next(next) {
        query.append_pair("next", next);
    }
    if let Some(hint) = login_hint {
        query.append_pair("login_hint", hint);
    }
    format!("{}?{}", routes::FEDERATION_START, query.finish())
}

/// The connection the login page offers first for a pending request: the first connection of the
/// organization it names (`organization=`), with whether that organization requires SSO.
pub async fn requested_org_connection(
    state: &AppState,
    req: &AuthzRequest,
) -> Result<Option<(Connection, bool)>> {
    let Some(named) = req.organization.as_deref() else {
        return Ok(None);
    };
    let Some(org) = crate::orgs::store::find_org(&state.db.pool, named).await? else {
        return Ok(None);
    };
    let first = connections::list_for_org(&state.db.pool, &org.id)
        .await?
        .into_iter()
        .next();
    Ok(first.map(|c| (c, org.sso_required)))
}

/// Where `GET /login` goes instead of showing itself for a pending request: straight to the
/// provider of an organization that requires SSO (`organization=`), or of the `login_hint`'s domain.
/// Not while a first upstream sign-in waits for the person to sign in here to link (that would send
/// them back upstream in a loop).
pub async fn redirect_for_login(
    state: &AppState,
    session: &Session,
    authz: &str,
    next: &str,
) -> Result<Option<Response>> {
    if authz.is_empty()
        || super::identities::pending_link_notice(session)
            .await?
            .is_some()
    {
        return Ok(None);
    }
    let Some(req) = session::pending(session, authz).await? else {
        return Ok(None);
    };
    if let Some((connection, true)) = requested_org_connection(state, &req).await? {
        let hint = req.login_hint.as_deref();
        return Ok(Some(see_other(&start_link(
            &connection.id,
            authz,
            next,
            hint,
        ))));
    }
    if let Some(hint) = req.login_hint.as_deref()
        && let Some(connection) = route(&state.db.pool, hint).await?
    {
        return Ok(Some(see_other(&start_link(
            &connection.id,
            authz,
            next,
            Some(hint),
        ))));
    }
    Ok(None)
}

/// The email-first form.
#[derive(Deserialize)]
pub struct IdentifyForm {
    /// Defaulted so that a missing token is refused like a wrong one.
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    authz: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    email: String,
}

/// `POST /login/identify`: an address of a verified and connected domain goes to its provider (303
/// to `/federation/start` with the address as `login_hint`); any other gets the password step of the
/// login page with the address filled in. Nothing is written: the answer does not depend on whether
/// an account exists, so it reveals none.
async fn identify(
    State(state): State<AppState>,
    session: Session,
    axum::Form(form): axum::Form<IdentifyForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let email = form.email.trim();
    if email.is_empty() || email.len() > accounts::MAX_EMAIL_LEN {
        let mut response = pages::login_step(
            &state,
            &session,
            pages::Step {
                authz: &form.authz,
                next: &form.next,
                email: None,
                error: Some("Enter your email address."),
            },
        )
        .await?;
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(response);
    }
    if let Some(connection) = route(&state.db.pool, email).await? {
        let authz = match session::pending(&session, &form.authz).await? {
            Some(_) => form.authz.as_str(),
            None => "",
        };
        return Ok(see_other(&start_link(
            &connection.id,
            authz,
            &form.next,
            Some(email),
        )));
    }
    pages::login_step(
        &state,
        &session,
        pages::Step {
            authz: &form.authz,
            next: &form.next,
            email: Some(email),
            error: None,
        },
    )
    .await
}
