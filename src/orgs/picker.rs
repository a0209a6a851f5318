//! Choosing the organization at login (docs/endpoints.md "Which organization"): which
//! organization an authorization request ends with, and the page where a member of several picks one.
//!
//! The decision, in order (as Auth0 and Zitadel do it, before consent so that the consent page can
//! say which organization the application will act for):
//! 1. an `organization` named by the client must be one the user belongs to, else the request is
//!    refused with `access_denied` (RFC 6749 §4.1.2.1), never silently switched;
//! 2. the organization picked on the picker for this very request;
//! 3. `prompt=select_account` (OIDC Core §3.1.2.1) asks again, even with a single membership;
//! 4. one membership is selected; several ask; none gives tokens without organization claims,
//!    unless the client requires an organization (`--require-org`).
//!
//! The last choice is remembered in `memberships.last_selected_at` and preselected next time.

pub mod store;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use tower_sessions::Session;

use crate::app::AppState;
use crate::clients::Client;
use crate::db::Pool;
use crate::error::{AppError, Result};
use crate::login::session;
use crate::oauth::authorize::{
    ContinueQuery, WaitingPage, see_other, waiting_page, waiting_request,
};
use crate::oauth::request::AuthzRequest;
use crate::orgs::roles::Role;
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};
use store::MembershipChoice;

/// The organization an authorization request ends with.
#[derive(Debug, Clone)]
pub struct SelectedOrg {
    /// Organization id (`org_id`).
    pub id: String,
    /// Slug (`org_slug`).
    pub slug: String,
    /// Display name (consent page).
    pub name: String,
    /// The user's live role there (`roles`).
    pub role: Role,
    /// The organization requires a second factor ([`crate::mfa`]).
    pub require_mfa: bool,
    /// The organization requires sign-in through its connection ([`crate::federation::policy`]).
    pub sso_required: bool,
}

/// What the organization step of an authorization request decides.
#[derive(Debug, Clone)]
pub enum OrgDecision {
    /// Go on with this organization, or with none (the user belongs to none).
    Selected(Option<SelectedOrg>),
    /// The user must pick on the organization page.
    Pick,
    /// The named organization does not exist or the user is not in it.
    NotMember,
    /// The client accepts only members of an organization, and the user is in none.
    Required,
}

/// Decides the organization of `req` for `user_id` from the live memberships (module doc).
pub async fn resolve(
    db: &Pool,
    client: &Client,
    req: &AuthzRequest,
    user_id: &str,
) -> Result<OrgDecision> {
    if let Some(named) = &req.organization {
        return Ok(
            match super::store::find_org_with_role(db, named, user_id).await? {
                Some((org, role)) => OrgDecision::Selected(Some(SelectedOrg {
                    id: org.id,
                    slug: org.slug,
                    name: org.name,
                    role,
                    require_mfa: org.require_mfa,
                    sso_required: org.sso_required,
                })),
                None => OrgDecision::NotMember,
            },
        );
    }
    let memberships = store::memberships_of(db, user_id).await?;
    // A choice made on the picker holds while the membership does; a vanished one asks again.
    if let Some(chosen) = &req.chosen_org
        && let Some(m) = memberships.iter().find(|m| &m.org_id == chosen)
    {
        return Ok(OrgDecision::Selected(Some(selected(m))));
    }
    Ok(match memberships.as_slice() {
        [] if client.require_org => OrgDecision::Required,
        [] => OrgDecision::Selected(None),
        _ if req.prompts("select_account") => OrgDecision::Pick,
        [only] => OrgDecision::Selected(Some(selected(only))),
        _ => OrgDecision::Pick,
    })
}

fn selected(m: &MembershipChoice) -> SelectedOrg {
    SelectedOrg {
        id: m.org_id.clone(),
        slug: m.slug.clone(),
        name: m.name.clone(),
        role: m.role,
        require_mfa: m.require_mfa,
        sso_required: m.sso_required,
    }
}

/// Routes of the picker (browser pages: they need the session layer).
pub fn router() -> Router<AppState> {
    Router::new().route(
        routes::ORGANIZATION_PICKER,
        get(picker_page).post(picker_submit),
    )
}

/// One radio button of the picker.
struct PickerOption<'a> {
    id: &'a str,
    name: &'a str,
    slug: &'a str,
    role: &'static str,
    checked: bool,
}

/// The organization picker.
#[derive(Template)]
#[template(path = "pages/org_picker.html")]
struct PickerPage<'a> {
    client_name: &'a str,
    email: &'a str,
    options: Vec<PickerOption<'a>>,
    csrf: &'a str,
    authz: &'a str,
    asset_version: &'a str,
}

/// The page shown instead of a code when a client requires an organization and the user has none.
#[derive(Template)]
#[template(path = "pages/org_required.html")]
struct RequiredPage<'a> {
    client_name: &'a str,
    email: &'a str,
    asset_version: &'a str,
}

/// A role as people read it.
fn role_label(role: Role) -> &'static str {
    match role {
        Role::Owner => "Owner",
        Role::Admin => "Admin",
        Role::Member => "Member",
        Role::Viewer => "Viewer",
    }
}

/// The option to preselect: this request's choice, else the last one made, else the first.
fn preselected<'a>(req: &AuthzRequest, memberships: &'a [MembershipChoice]) -> Option<&'a str> {
    req.chosen_org
        .as_deref()
        .and_then(|c| memberships.iter().find(|m| m.org_id == c))
        .or_else(|| {
            memberships
                .iter()
                .filter(|m| m.last_selected_at.is_some())
                .max_by_key(|m| m.last_selected_at)
        })
        .or(memberships.first())
        .map(|m| m.org_id.as_str())
}

/// `GET /organization?authz=ID`: lists the user's organizations with their role.
pub async fn picker_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ContinueQuery>,
) -> Result<Response> {
    let WaitingPage { req, user, client } = waiting_page(&state, &session, &q.authz).await?;
    let memberships = store::memberships_of(&state.db.pool, &user.id).await?;
    if memberships.is_empty() {
        // Nothing to pick (the last membership went meanwhile): the authorization flow decides.
        return Ok(see_other(&format!(
            "{}?authz={}",
            routes::AUTHORIZE_CONTINUE,
            req.id
        )));
    }
    let checked = preselected(&req, &memberships);
    let options = memberships
        .iter()
        .map(|m| PickerOption {
            id: &m.org_id,
            name: &m.name,
            slug: &m.slug,
            role: role_label(m.role),
            checked: checked == Some(m.org_id.as_str()),
        })
        .collect();
    let csrf = csrf::token()?;
    Ok(render(&PickerPage {
        client_name: &client.name,
        email: &user.email,
        options,
        csrf: &csrf,
        authz: &req.id,
        asset_version: ASSET_VERSION,
    }))
}

/// Fields of the picker form; defaulted so that a missing field is a clear 400, not a rejection.
#[derive(Deserialize)]
pub struct PickerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    authz: String,
    #[serde(default)]
    org: String,
}

/// `POST /organization`: records the choice (it must be one of the user's memberships) and goes on
/// with the authorization request.
pub async fn picker_submit(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<PickerForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let (mut req, signed) = waiting_request(&state, &session, &form.authz).await?;
    if form.org.is_empty() {
        return Err(AppError::invalid("Choose an organization."));
    }
    // The update is the membership check: it touches a row only if the user is in that organization.
    let now = state.clock.now();
    if !store::mark_selected(&state.db.pool, &form.org, &signed.user_id, now).await? {
        return Err(AppError::invalid(
            "You are not a member of that organization. Go back and choose one from the list.",
        ));
    }
    req.chosen_org = Some(form.org);
    session::save_pending(&session, &req).await?;
    Ok(see_other(&format!(
        "{}?authz={}",
        routes::AUTHORIZE_CONTINUE,
        req.id
    )))
}

/// The "you need to be in an organization" page (403): the client is not sent a code or an error,
/// since only the person can fix this (by joining an organization or signing in as someone else).
pub fn required_page(client: &Client, email: &str) -> Response {
    let mut response = render(&RequiredPage {
        client_name: &client.name,
        email,
        asset_version: ASSET_VERSION,
    });
    if response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::FORBIDDEN;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(id: &str, last: Option<i64>) -> MembershipChoice {
        MembershipChoice {
            org_id: id.to_owned(),
            slug: id.to_owned(),
            name: id.to_owned(),
            role: Role::Member,
            last_selected_at: last,
            require_mfa: false,
            sso_required: false,
        }
    }

    fn request(chosen: Option<&str>) -> AuthzRequest {
        AuthzRequest {
            id: "r".into(),
            client_id: "c".into(),
            redirect_uri: "https://rp.example/cb".into(),
            scope: "openid".into(),
            state: None,
            nonce: None,
            code_challenge: None,
            prompt: vec![],
            max_age: None,
            login_hint: None,
            hinted_subject: None,
            organization: None,
            acr_values: vec![],
            chosen_org: chosen.map(str::to_owned),
            created_at: 0,
            consent_given: false,
            signed_in_for_request: false,
            sso_connection: None,
            resource: None,
            dpop_jkt: None,
        }
    }

    #[test]
    fn preselects_this_requests_choice_then_the_last_one_then_the_first() {
        let list = [
            choice("a", Some(5)),
            choice("b", Some(9)),
            choice("c", None),
        ];
        assert_eq!(preselected(&request(Some("c")), &list), Some("c"));
        assert_eq!(preselected(&request(None), &list), Some("b"));
        assert_eq!(preselected(&request(Some("gone")), &list), Some("b"));
        let never = [choice("a", None), choice("b", None)];
        assert_eq!(preselected(&request(None), &never), Some("a"));
        assert_eq!(preselected(&request(None), &[]), None);
    }
}
