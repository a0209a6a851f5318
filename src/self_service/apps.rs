//! Connected apps: every application the person consented to (`consents`, per client and
//! organization) or that holds a live refresh token of theirs (first-party clients skip consent
//! and show up this way), and "Remove access". Page `/account/apps` and `/api/v1/me/apps…`.
//!
//! Removing access deletes every consent of the person for that client (the next authorization asks
//! again) and revokes all their refresh-token families there, `offline_access` ones included (reason
//! `access_removed`; the next refresh is `invalid_grant`, RFC 6749 §5.2), in one transaction.
//! Access tokens already issued are self-contained JWTs and run out on their own (minutes).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::Session;

use super::display;
use super::notice;
use super::pages::{holder, nav};
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::error::{AppError, Result};
use crate::oauth::store;
use crate::routes;
use crate::web::bearer::{ApiCaller, SCOPE_ACCOUNT_READ, SCOPE_ACCOUNT_WRITE};
use crate::web::csrf;
use crate::web::openapi::{BadRequest, Forbidden, NotFound, Unauthorized};
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// The `revoked_reason` of the refresh-token families ended by "Remove access".
pub const REVOKED_REASON: &str = "access_removed";

/// An organization an application acts for.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
pub struct AppOrg {
    /// The organization's id.
    org_id: String,
    /// Its slug.
    org_slug: String,
    /// Its name.
    org_name: String,
}

/// One connected application.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectedApp {
    /// The application's client id.
    client_id: String,
    /// Its name.
    client_name: String,
    /// Every scope granted by a consent or held by a live refresh token, sorted.
    scopes: Vec<String>,
    /// The organizations it acts for (empty: none).
    organizations: Vec<AppOrg>,
    /// The earliest consent or refresh-token grant (unix seconds).
    granted_at: i64,
    /// The newest refresh-token issue (unix seconds); `null` without live refresh tokens (a consent
    /// alone leaves no trace of use: access tokens are verified offline by resource servers).
    last_used_at: Option<i64>,
}

impl ConnectedApp {
    fn new(client_id: &str, client_name: &str, granted_at: i64) -> ConnectedApp {
        ConnectedApp {
            client_id: client_id.to_owned(),
            client_name: client_name.to_owned(),
            scopes: Vec::new(),
            organizations: Vec::new(),
            granted_at,
            last_used_at: None,
        }
    }

    fn add(&mut self, scopes: &str, org: Option<(String, String, String)>, granted_at: i64) {
        for scope in scopes.split(' ').filter(|s| !s.is_empty()) {
            if !self.scopes.iter().any(|s| s == scope) {
                self.scopes.push(scope.to_owned());
            }
        }
        if let Some((org_id, org_slug, org_name)) = org {
            let org = AppOrg {
                org_id,
                org_slug,
                org_name,
            };
            if !self.organizations.contains(&org) {
                self.organizations.push(org);
            }
        }
        self.granted_at = self.granted_at.min(granted_at);
    }
}

/// The applications `user_id` has connected, by client name.
pub async fn connected_apps(state: &AppState, user_id: &str) -> Result<Vec<ConnectedApp>> {
    let consents = store::consents_of_user(&state.db.pool, user_id).await?;
    let families = store::live_families_of_user(&state.db.pool, user_id, state.clock.now()).await?;
    let mut apps: BTreeMap<String, ConnectedApp> = BTreeMap::new();
    for c in consents {
        apps.entry(c.client_id.clone())
            .or_insert_with(|| ConnectedApp::new(&c.client_id, &c.client_name, c.granted_at))
            .add(&c.scopes, c.org, c.granted_at);
    }
    for f in families {
        let app = apps
            .entry(f.client_id.clone())
            .or_insert_with(|| ConnectedApp::new(&f.client_id, &f.client_name, f.created_at));
        app.add(&f.scope, f.org, f.created_at);
        app.last_used_at = Some(app.last_used_at.unwrap_or(i64::MIN).max(f.last_used_at));
    }
    let mut apps: Vec<ConnectedApp> = apps.into_values().collect();
    for app in &mut apps {
        app.scopes.sort();
        app.organizations.sort();
    }
    apps.sort_by(|a, b| {
        (a.client_name.to_lowercase(), &a.client_id)
            .cmp(&(b.client_name.to_lowercase(), &b.client_id))
    });
    Ok(apps)
}

/// Removes `client_id`'s access to `user_id`'s account (consents deleted, refresh-token families
/// revoked) and records `app.access_removed`, in one transaction. `false` when there was nothing to
/// remove.
async fn remove_access(
    state: &AppState,
    user_id: &str,
    client_id: &str,
    actor: Actor,
) -> Result<bool> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let consents = store::delete_client_consents(&mut *tx, user_id, client_id).await?;
    let families =
        store::revoke_client_families(&mut *tx, user_id, client_id, now, REVOKED_REASON).await?;
    if consents == 0 && families == 0 {
        return Ok(false);
    }
    let event = AuditEvent {
        org_id: None,
        actor: &actor,
        action: action::APP_ACCESS_REMOVED,
        target_type: Some("client"),
        target_id: Some(client_id),
        details: json!({"user_id": user_id, "consents": consents, "refresh_families": families}),
    };
    audit::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// One application as the page shows it.
struct Row {
    client_id: String,
    client_name: String,
    scopes: String,
    organizations: String,
    granted: String,
    last_used: String,
}

/// `GET /account/apps`.
#[derive(Template)]
#[template(path = "pages/account/apps.html")]
struct AppsPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    rows: Vec<Row>,
    notice: Option<String>,
    csrf: &'a str,
    asset_version: &'a str,
}

/// `GET /account/apps`.
pub async fn page(State(state): State<AppState>, session: Session) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_APPS).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let rows = connected_apps(&state, &holder.user.id)
        .await?
        .into_iter()
        .map(|app| Row {
            scopes: app.scopes.join(" "),
            organizations: if app.organizations.is_empty() {
                "none".to_owned()
            } else {
                app.organizations
                    .iter()
                    .map(|o| format!("{} ({})", o.org_name, o.org_slug))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            granted: display::utc(app.granted_at),
            last_used: app
                .last_used_at
                .map(display::utc)
                .unwrap_or_else(|| "unknown".to_owned()),
            client_id: app.client_id,
            client_name: app.client_name,
        })
        .collect();
    let csrf = csrf::token()?;
    Ok(render(&AppsPage {
        nav: nav(routes::ACCOUNT_APPS),
        rows,
        notice: notice::take(&session).await?,
        csrf: &csrf,
        asset_version: ASSET_VERSION,
    }))
}

/// The "Remove access" form.
#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    /// Defaulted so that a missing token is refused like a wrong one (400), not as a malformed form.
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    client_id: String,
}

/// `POST /account/apps/remove` `{client_id}`: 303 back with a notice.
pub async fn remove_form(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<RemoveForm>,
) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_APPS).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    csrf::check(&form.csrf)?;
    let user_id = &holder.user.id;
    let removed =
        remove_access(&state, user_id, &form.client_id, Actor::user(user_id, meta)).await?;
    let message = if removed {
        "The application's access was removed."
    } else {
        "That application had no access left to remove."
    };
    notice::back(&session, routes::ACCOUNT_APPS, message).await
}

/// The body of `GET /api/v1/me/apps`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppList {
    /// By client name.
    apps: Vec<ConnectedApp>,
}

/// `GET /api/v1/me/apps` (`account:read`): `{"apps": [...]}` by client name.
#[utoipa::path(
    operation_id = "my_apps_list",
    get,
    path = crate::routes::API_ME_APPS,
    tag = "account",
    responses(
        (status = 200, description = "The applications with access to the account", body = AppList),
        BadRequest, Unauthorized, Forbidden,
    ),
    security(("bearer" = [])),
)]
pub async fn api_list(State(state): State<AppState>, caller: ApiCaller) -> Result<Json<AppList>> {
    let user = caller.require_user()?;
    caller.require_scope(SCOPE_ACCOUNT_READ)?;
    let apps = connected_apps(&state, &user.id).await?;
    Ok(Json(AppList { apps }))
}

/// `DELETE /api/v1/me/apps/{client_id}` (`account:write`): 204; 404 `app-not-found` when the client
/// has no consent and no live refresh token of the caller.
#[utoipa::path(
    operation_id = "my_apps_remove",
    delete,
    path = crate::routes::API_ME_APP,
    tag = "account",
    params(("client_id" = String, Path, description = "The application's client id")),
    responses(
        (status = 204, description = "Its access is removed"),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn api_remove(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path(client_id): Path<String>,
) -> Result<Response> {
    let user = caller.require_user()?;
    caller.require_scope(SCOPE_ACCOUNT_WRITE)?;
    if remove_access(&state, &user.id, &client_id, Actor::api(&caller, meta)).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(AppError::problem(
            StatusCode::NOT_FOUND,
            "app-not-found",
            "no application has access to your account under this client id",
        ))
    }
}
