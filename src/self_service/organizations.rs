//! Organizations: the person's memberships with their role, and "Leave". Page
//! `/account/organizations` and `DELETE /api/v1/me/organizations/{org}`.
//!
//! Leaving is the members API's removal ([`orgs::remove_member`]) with the person as actor: the
//! same last-owner rule (an organization keeps an owner), the same lock on the organization, the
//! same `member.removed` audit event (`left: true`).

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::notice;
use super::pages::{holder, nav};
use crate::accounts::lifecycle::DeleteRefused;
use crate::app::AppState;
use crate::audit::Actor;
use crate::error::{AppError, Result};
use crate::orgs::{self, Organization, store};
use crate::routes;
use crate::web::bearer::{ApiCaller, SCOPE_ACCOUNT_WRITE};
use crate::web::csrf;
use crate::web::openapi::{BadRequest, Conflict, Forbidden, NotFound, Unauthorized};
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// How leaving went.
enum Left {
    /// The membership is gone.
    Done,
    /// The person is not a member (or there is no such organization).
    NotMember,
    /// The person is the organization's last owner.
    LastOwner(Organization),
}

/// Removes `user_id` from the organization `org_ref` (id or slug), in one transaction that locks
/// the organization first (as the members API does) and re-reads the role under the lock.
async fn leave(state: &AppState, user_id: &str, org_ref: &str, actor: &Actor) -> Result<Left> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let Some((org, _)) = store::find_org_with_role(&mut *tx, org_ref, user_id).await? else {
        return Ok(Left::NotMember);
    };
    if !store::lock_org(&mut *tx, &org.id, now).await? {
        return Ok(Left::NotMember);
    }
    let Some(role) = store::find_role(&mut *tx, &org.id, user_id).await? else {
        return Ok(Left::NotMember);
    };
    match orgs::remove_member(&mut tx, &org.id, user_id, role, true, actor, now).await? {
        Ok(()) => {
            tx.commit().await?;
            Ok(Left::Done)
        }
        // Dropping the transaction rolls the lock's touch back.
        Err(orgs::LastOwner) => Ok(Left::LastOwner(org)),
    }
}

/// The refusal naming the organization (the account deletion's sentence, for one organization).
fn last_owner_message(org: Organization) -> String {
    DeleteRefused::LastOwner(vec![org]).message()
}

/// One membership as the page shows it.
struct Row {
    id: String,
    name: String,
    slug: String,
    role: &'static str,
}

/// `GET /account/organizations`.
#[derive(Template)]
#[template(path = "pages/account/organizations.html")]
struct OrganizationsPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    rows: Vec<Row>,
    notice: Option<String>,
    error: Option<&'a str>,
    csrf: &'a str,
    asset_version: &'a str,
}

/// Renders the page for `user_id` with `notice` or `error`, answering `status`.
async fn render_page(
    state: &AppState,
    user_id: &str,
    notice: Option<String>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response> {
    let rows = store::memberships_of_user(&state.db.pool, user_id)
        .await?
        .into_iter()
        .map(|(org, role)| Row {
            id: org.id,
            name: org.name,
            slug: org.slug,
            role: role.as_str(),
        })
        .collect();
    let csrf = csrf::token()?;
    let page = render(&OrganizationsPage {
        nav: nav(routes::ACCOUNT_ORGANIZATIONS),
        rows,
        notice,
        error,
        csrf: &csrf,
        asset_version: ASSET_VERSION,
    });
    Ok((status, page).into_response())
}

/// `GET /account/organizations`.
pub async fn page(State(state): State<AppState>, session: Session) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_ORGANIZATIONS).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let notice = notice::take(&session).await?;
    render_page(&state, &holder.user.id, notice, None, StatusCode::OK).await
}

/// The "Leave" form.
#[derive(Debug, Deserialize)]
pub struct LeaveForm {
    /// Defaulted so that a missing token is refused like a wrong one (400), not as a malformed form.
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    org: String,
}

/// `POST /account/organizations/leave` `{org}`: 303 back with a notice; the last owner gets the
/// page again (409) with the refusal naming the organization.
pub async fn leave_form(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<LeaveForm>,
) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_ORGANIZATIONS).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    csrf::check(&form.csrf)?;
    let user_id = &holder.user.id;
    let actor = Actor::user(user_id, meta);
    let message = match leave(&state, user_id, &form.org, &actor).await? {
        Left::Done => "You left the organization.",
        Left::NotMember => "You were no longer a member of that organization.",
        Left::LastOwner(org) => {
            let message = last_owner_message(org);
            return render_page(&state, user_id, None, Some(&message), StatusCode::CONFLICT).await;
        }
    };
    notice::back(&session, routes::ACCOUNT_ORGANIZATIONS, message).await
}

/// `DELETE /api/v1/me/organizations/{org}` (`account:write`; `org` is an id or a slug): 204; 404
/// `organization-not-found` when the caller is not a member; 409 `last-owner` naming it.
#[utoipa::path(
    operation_id = "my_organizations_leave",
    delete,
    path = crate::routes::API_ME_ORGANIZATION,
    tag = "account",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses(
        (status = 204, description = "The caller left the organization"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
    ),
    security(("bearer" = [])),
)]
pub async fn api_leave(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path(org_ref): Path<String>,
) -> Result<Response> {
    let user = caller.require_user()?;
    caller.require_scope(SCOPE_ACCOUNT_WRITE)?;
    let actor = Actor::api(&caller, meta);
    match leave(&state, &user.id, &org_ref, &actor).await? {
        Left::Done => Ok(StatusCode::NO_CONTENT.into_response()),
        Left::NotMember => Err(orgs::access::org_not_found()),
        Left::LastOwner(org) => Err(AppError::problem(
            StatusCode::CONFLICT,
            "last-owner",
            last_owner_message(org),
        )),
    }
}
