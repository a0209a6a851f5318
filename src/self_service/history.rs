//! Sign-in history: the account's last [`HISTORY_LEN`] sign-in attempts from the login history
//! (`login_events`), succeeded, failed or throttled, so that a person can spot attempts that were not
//! theirs. Page `/account/history` and `GET /api/v1/me/login-history`.

use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use tower_sessions::Session;

use super::display;
use super::pages::{holder, nav};
use crate::app::AppState;
use crate::audit::login_history::{self, Attempt};
use crate::error::Result;
use crate::routes;
use crate::web::bearer::{ApiCaller, SCOPE_ACCOUNT_READ};
use crate::web::openapi::{BadRequest, Forbidden, Unauthorized};
use crate::web::page::{ASSET_VERSION, render};

/// How many attempts the page and the API show.
pub const HISTORY_LEN: i64 = 30;

/// One attempt as the page shows it.
struct Row {
    at: String,
    ip: String,
    browser: String,
    user_agent: String,
    method: String,
    outcome: &'static str,
    succeeded: bool,
}

/// `GET /account/history`.
#[derive(Template)]
#[template(path = "pages/account/history.html")]
struct HistoryPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    rows: Vec<Row>,
    asset_version: &'a str,
}

/// `GET /account/history`: the newest attempts first.
pub async fn page(State(state): State<AppState>, session: Session) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_HISTORY).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let rows = login_history::recent_for_user(&state.db.pool, &holder.user.id, HISTORY_LEN)
        .await?
        .into_iter()
        .map(|a| Row {
            at: display::utc(a.at),
            ip: a.ip.unwrap_or_else(|| "unknown".to_owned()),
            browser: display::browser_name(a.user_agent.as_deref()),
            user_agent: a.user_agent.unwrap_or_default(),
            method: display::method_label(a.method.as_deref()),
            outcome: display::outcome_label(a.outcome),
            succeeded: a.outcome == "succeeded",
        })
        .collect();
    Ok(render(&HistoryPage {
        nav: nav(routes::ACCOUNT_HISTORY),
        rows,
        asset_version: ASSET_VERSION,
    }))
}

/// One attempt in `GET /api/v1/me/login-history`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = LoginAttempt)]
pub struct ApiEvent {
    /// Unix seconds.
    at: i64,
    /// The address it came from.
    ip: Option<String>,
    /// Its user agent.
    user_agent: Option<String>,
    /// The browser, for a person.
    browser: String,
    /// RFC 8176 `amr` value as stored (`pwd`, …); `null` for attempts older than its column.
    method: Option<String>,
    /// `succeeded`, `failed` or `throttled`.
    #[schema(value_type = String, pattern = "^(succeeded|failed|throttled)$")]
    outcome: &'static str,
}

impl From<Attempt> for ApiEvent {
    fn from(a: Attempt) -> ApiEvent {
        ApiEvent {
            at: a.at,
            browser: display::browser_name(a.user_agent.as_deref()),
            ip: a.ip,
            user_agent: a.user_agent,
            method: a.method,
            outcome: a.outcome,
        }
    }
}

/// The body of `GET /api/v1/me/login-history`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginHistory {
    /// The newest first.
    events: Vec<ApiEvent>,
}

/// `GET /api/v1/me/login-history` (`account:read`): `{"events": [...]}`, the 30 newest.
#[utoipa::path(
    operation_id = "my_login_history",
    get,
    path = crate::routes::API_ME_LOGIN_HISTORY,
    tag = "account",
    responses(
        (status = 200, description = "The last sign-in attempts", body = LoginHistory),
        BadRequest, Unauthorized, Forbidden,
    ),
    security(("bearer" = [])),
)]
pub async fn api_list(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<LoginHistory>> {
    let user = caller.require_user()?;
    caller.require_scope(SCOPE_ACCOUNT_READ)?;
    let events: Vec<ApiEvent> =
        login_history::recent_for_user(&state.db.pool, &user.id, HISTORY_LEN)
            .await?
            .into_iter()
            .map(ApiEvent::from)
            .collect();
    Ok(Json(LoginHistory { events }))
}
