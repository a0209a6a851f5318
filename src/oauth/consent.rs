//! The consent page (OIDC Core §3.1.2.4) for clients that are not first-party. A consent is
//! remembered per user, client and organization (with its scopes), so the page appears again only
//! for new scopes, for another organization, or with `prompt=consent`. When the request ends with an organization (chosen before consent, see
//! `orgs::picker`), the page names it, since the application will act for it.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use super::authorize::{self, ContinueQuery, error_redirect};
use super::error::{ErrorCode, OAuthError};
use super::store;
use crate::app::AppState;
use crate::error::{AppError, Result};
use crate::login::session;
use crate::orgs::picker::{self, OrgDecision};
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};

/// The consent page.
#[derive(Template)]
#[template(path = "pages/consent.html")]
struct ConsentPage<'a> {
    client_name: &'a str,
    scopes: Vec<&'static str>,
    email: &'a str,
    /// The organization the application will act for, with the user's role there.
    org: Option<(&'a str, &'a str)>,
    csrf: &'a str,
    authz: &'a str,
    asset_version: &'a str,
}

/// What a scope means to a person.
pub fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "Confirm who you are",
        "profile" => "See your name",
        "email" => "See your email address",
        "offline_access" => "Stay signed in when you are away",
        "org:read" => "Read your organizations and their members",
        "org:write" => "Manage your organizations: members, roles and invitations",
        "account:read" => "See your sessions, connected apps and sign-in history",
        "account:write" => "Sign out your sessions, remove app access, leave organizations",
        _ => "Use an additional permission",
    }
}

/// `GET /consent?authz=ID`
pub async fn consent_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ContinueQuery>,
) -> Result<Response> {
    let authorize::WaitingPage { req, user, client } =
        authorize::waiting_page(&state, &session, &q.authz).await?;
    let csrf = csrf::token()?;
    let mut scopes: Vec<&'static str> = req.scope.split(' ').map(describe).collect();
    scopes.dedup();
    let org = match picker::resolve(&state.db.pool, &client, &req, &user.id).await? {
        OrgDecision::Selected(org) => org,
        _ => None,
    };
    Ok(render(&ConsentPage {
        client_name: &client.name,
        scopes,
        email: &user.email,
        org: org.as_ref().map(|o| (o.name.as_str(), o.role.as_str())),
        csrf: &csrf,
        authz: &req.id,
        asset_version: ASSET_VERSION,
    }))
}

/// Fields of the consent form.
#[derive(Deserialize)]
pub struct ConsentForm {
    /// Defaulted so that a missing token is refused like a wrong one (400), not as a malformed form.
    #[serde(default)]
    csrf: String,
    authz: String,
    decision: String,
}

/// `POST /consent`
pub async fn consent_submit(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<ConsentForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let (mut req, signed) = authorize::waiting_request(&state, &session, &form.authz).await?;
    match form.decision.as_str() {
        "allow" => {
            let client = state
                .clients
                .find(&req.client_id)
                .await?
                .ok_or_else(authorize::expired_request)?;
            // The organization the page named; if the membership changed meanwhile, nothing is
            // remembered and the request starts its organization step again.
            let org = match picker::resolve(&state.db.pool, &client, &req, &signed.user_id).await? {
                OrgDecision::Selected(org) => org,
                _ => return Ok(continue_request(&req)),
            };
            let org_id = org.as_ref().map(|o| o.id.as_str());
            let granted =
                store::consented_scopes(&state.db.pool, &signed.user_id, &req.client_id, org_id)
                    .await?;
            let mut scopes: Vec<&str> = granted
                .as_deref()
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .collect();
            for s in req.scope.split(' ') {
                if !scopes.contains(&s) {
                    scopes.push(s);
                }
            }
            scopes.sort_unstable();
            store::save_consent(
                &state.db.pool,
                &signed.user_id,
                &req.client_id,
                org_id,
                &scopes.join(" "),
                state.clock.now(),
            )
            .await?;
            req.consent_given = true;
            session::save_pending(&session, &req).await?;
            Ok(continue_request(&req))
        }
        "deny" => {
            session::remove_pending(&session, &req.id).await?;
            let error = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
            Ok(error_redirect(
                &state.config.issuer,
                &req.redirect_uri,
                req.state.as_deref(),
                &error,
            ))
        }
        _ => Err(AppError::invalid("Choose Allow or Deny.")),
    }
}

/// 303 to the authorization endpoint's continuation for `req`.
fn continue_request(req: &super::request::AuthzRequest) -> Response {
    authorize::see_other(&format!("{}?authz={}", routes::AUTHORIZE_CONTINUE, req.id))
}
