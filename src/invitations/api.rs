//! The invitation endpoints of the management API (docs/signup-and-invitations.md): create (or renew), list pending,
//! revoke. Admins manage invitations up to their own role; only owners invite owners. The token and
//! the link never appear in a response: they go to the invited address by email only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::mail::{InvitationMail, compose, format_utc};
use super::{Invitation, Status, StoredState, store};
use crate::accounts;
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::clock;
use crate::crypto::tokens::{new_id, random_token};
use crate::error::{AppError, Result};
use crate::mail::MailContext;
use crate::orgs::access::{self, OrgAccess};
use crate::orgs::roles::{Permission, Role};
use crate::routes;
use crate::web::api::{ApiJson, ApiQuery, Listing, Page};
use crate::web::bearer::{ApiCaller, CallerKind};
use crate::web::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, UnsupportedMediaType,
};
use crate::web::request_meta::RequestMeta;

/// Body of `POST /api/v1/orgs/{org}/invitations`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    /// The address to invite.
    pub email: String,
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
}

/// Query of `GET /api/v1/orgs/{org}/invitations`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `cursor` of the previous page's `Link: <…>; rel="next"` (opaque).
    pub cursor: Option<String>,
}

/// An invitation as the API shows it (no token, no link).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Invitation)]
pub struct InvitationView {
    /// Invitation id.
    pub id: String,
    /// Organization id.
    pub org_id: String,
    /// Invited address.
    pub email: String,
    /// Role the invitee gets.
    pub role: Role,
    /// `pending`, `accepted`, `expired` or `revoked`.
    pub state: Status,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the link works until then.
    pub expires_at: i64,
    /// The inviting user (`null` for an operator).
    pub invited_by: Option<String>,
}

impl InvitationView {
    fn new(inv: &Invitation, now: i64) -> InvitationView {
        InvitationView {
            id: inv.id.clone(),
            org_id: inv.org_id.clone(),
            email: inv.email.clone(),
            role: inv.role,
            state: inv.status(now),
            created_at: inv.created_at,
            expires_at: inv.expires_at,
            invited_by: inv.invited_by.clone(),
        }
    }
}

/// The audit actor of an API call.
fn actor(caller: &ApiCaller, meta: RequestMeta) -> Actor {
    match &caller.kind {
        CallerKind::User(user) => Actor::user(user.id.clone(), meta),
        CallerKind::Client(id) => Actor {
            user_id: None,
            client_id: Some(id.clone()),
            meta,
        },
    }
}

/// Admins hand out roles up to their own; only owners (and operators) hand out `owner`.
fn check_role_ceiling(access: &OrgAccess, role: Role) -> Result<()> {
    if access.acts_as().at_least(role) {
        return Ok(());
    }
    let detail = if role == Role::Owner {
        "only owners can invite owners".to_owned()
    } else {
        format!(
            "the {} role may not manage {role} invitations",
            access.acts_as()
        )
    };
    Err(AppError::problem(
        StatusCode::FORBIDDEN,
        "role-ceiling",
        detail,
    ))
}

fn invitation_not_found() -> AppError {
    AppError::problem(
        StatusCode::NOT_FOUND,
        "invitation-not-found",
        "no such invitation in this organization",
    )
}

fn concurrent_change() -> AppError {
    AppError::problem(
        StatusCode::CONFLICT,
        "invitation-changed",
        "the invitation changed while this request ran; try again",
    )
}

/// `POST /api/v1/orgs/{org}/invitations` with `{email, role}`: invites the address (201), or, when a
/// pending invitation for it exists, renews that one (new token and expiry, the new role; also 201,
/// since a new link was made) and mails the new link. 409 `already-member` when the address belongs
/// to a member; 403 `role-ceiling` above the caller's own role.
#[utoipa::path(
    operation_id = "invitations_create",
    post,
    path = crate::routes::API_ORG_INVITATIONS,
    tag = "invitations",
    params(("org" = String, Path, description = "The organization's id or slug")),
    request_body = CreateInvitation,
    responses(
        (status = 201, description = "Invited (or a pending invitation renewed); the link goes by email only", body = InvitationView),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType,
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<CreateInvitation>,
) -> Result<Response> {
    let email = accounts::validate_email(&body.email)
        .map_err(|e| AppError::problem(StatusCode::BAD_REQUEST, "invalid-email", e.to_string()))?;
    let role: Role = body
        .role
        .parse()
        .map_err(|e: String| AppError::problem(StatusCode::BAD_REQUEST, "invalid-role", e))?;
    let mut tx = state.db.begin().await?;
    let access = access::authorize(&mut *tx, &caller, &org, Permission::ManageInvitations).await?;
    check_role_ceiling(&access, role)?;
    let org = &access.org;
    if store::is_member_by_email(&mut *tx, &org.id, &email).await? {
        return Err(AppError::problem(
            StatusCode::CONFLICT,
            "already-member",
            format!("{email} is already a member of {}", org.name),
        ));
    }
    let now = state.clock.now();
    let token = random_token();
    let hash = token.hash();
    let expires_at = now.saturating_add(clock::secs(state.config.invite_ttl));
    let invited_by = caller.user_id().map(str::to_owned);
    let (invitation, renewed) = match store::find_pending(&mut *tx, &org.id, &email).await? {
        Some(existing) => {
            let renewed = Invitation {
                email: email.clone(),
                role,
                invited_by,
                expires_at,
                ..existing
            };
            if !store::renew(&mut *tx, &renewed, &hash).await? {
                return Err(concurrent_change());
            }
            (renewed, true)
        }
        None => {
            let invitation = Invitation {
                id: new_id(),
                org_id: org.id.clone(),
                email: email.clone(),
                role,
                state: StoredState::Pending,
                invited_by,
                created_at: now,
                expires_at,
                accepted_at: None,
                accepted_by: None,
            };
            if !store::insert(&mut *tx, &invitation, &hash).await? {
                return Err(concurrent_change());
            }
            (invitation, false)
        }
    };
    let inviter = match caller.user() {
        Some(u) if u.name.is_empty() => u.email.clone(),
        Some(u) => format!("{} ({})", u.name, u.email),
        None => format!("An administrator of {}", org.name),
    };
    let actor = actor(&caller, meta);
    let event = AuditEvent {
        org_id: Some(&org.id),
        actor: &actor,
        action: action::INVITATION_CREATED,
        target_type: Some("invitation"),
        target_id: Some(&invitation.id),
        details: json!({"email": invitation.email, "role": role, "renewed": renewed}),
    };
    audit::record(&mut *tx, &event, now).await?;
    let link = format!(
        "{}{}?token={}",
        state.config.issuer,
        routes::INVITATION,
        token.expose()
    );
    let expires = format_utc(expires_at);
    let mail = compose(
        &MailContext::new(&state.config),
        &invitation.email,
        &InvitationMail {
            inviter: &inviter,
            org_name: &org.name,
            role,
            link: &link,
            expires: &expires,
        },
    )?;
    crate::mail::queue(&mut *tx, &mail, now).await?;
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!(invitation_id = %invitation.id, org_id = %org.id, renewed, "invitation sent");
    let view = InvitationView::new(&invitation, now);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /api/v1/orgs/{org}/invitations?limit=&cursor=`: pending, unexpired invitations, newest
/// first, as an array (next page in the `Link` header). Needs `org:read` and a role that manages invitations (admin).
#[utoipa::path(
    operation_id = "invitations_list",
    get,
    path = crate::routes::API_ORG_INVITATIONS,
    tag = "invitations",
    params(("org" = String, Path, description = "The organization's id or slug"), ListQuery),
    responses(
        (status = 200, description = "A page of pending invitations, newest first", body = [InvitationView], headers(("Link" = String, description = "`<…>; rel=\"next\"` when another page follows (RFC 8288)"))),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(org): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Listing<InvitationView>> {
    let page = Page::new(query.limit, query.cursor.as_deref())?;
    // Listing is a read (`org:read`), but only for those who manage invitations.
    let access = access::authorize(&state.db.pool, &caller, &org, Permission::ReadOrg).await?;
    if !access.acts_as().can(Permission::ManageInvitations) {
        return Err(AppError::problem(
            StatusCode::FORBIDDEN,
            "role-insufficient",
            format!("the {} role may not see invitations", access.acts_as()),
        ));
    }
    let now = state.clock.now();
    let rows = store::list_pending(
        &state.db.pool,
        &access.org.id,
        now,
        page.after(),
        page.fetch(),
    )
    .await?;
    Ok(page.finish(
        rows,
        |inv| (inv.created_at, inv.id.clone()),
        |inv| InvitationView::new(&inv, now),
    ))
}

/// `DELETE /api/v1/orgs/{org}/invitations/{id}`: revokes a pending (or expired) invitation, so its
/// link stops working (204; again 204 when already revoked). 404 for an id not in this organization,
/// 409 `invitation-accepted` for one already used.
#[utoipa::path(
    operation_id = "invitations_revoke",
    delete,
    path = crate::routes::API_ORG_INVITATION,
    tag = "invitations",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The invitation's id")),
    responses(
        (status = 204, description = "Revoked (also when it already was)"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
    ),
    security(("bearer" = [])),
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let mut tx = state.db.begin().await?;
    let access = access::authorize(&mut *tx, &caller, &org, Permission::ManageInvitations).await?;
    let invitation = store::find_in_org(&mut *tx, &access.org.id, &id)
        .await?
        .ok_or_else(invitation_not_found)?;
    check_role_ceiling(&access, invitation.role)?;
    match invitation.state {
        StoredState::Revoked => return Ok(StatusCode::NO_CONTENT),
        StoredState::Accepted => {
            return Err(AppError::problem(
                StatusCode::CONFLICT,
                "invitation-accepted",
                "the invitation was already accepted; remove the member instead",
            ));
        }
        StoredState::Pending => {}
    }
    if !store::revoke(&mut *tx, &invitation.id).await? {
        return Err(concurrent_change());
    }
    let now = state.clock.now();
    let actor = actor(&caller, meta);
    let event = AuditEvent {
        org_id: Some(&access.org.id),
        actor: &actor,
        action: action::INVITATION_REVOKED,
        target_type: Some("invitation"),
        target_id: Some(&invitation.id),
        details: json!({"email": invitation.email, "role": invitation.role}),
    };
    audit::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
