//! Sessions and devices: every live signed-in browser session of the person, where and when it was
//! used, and the way to end one of them or all the others. Page `/account/sessions` and
//! `/api/v1/me/sessions…`.
//!
//! Ending goes through [`lifecycle::end_session`] / [`lifecycle::end_other_sessions`], which also
//! revoke the refresh tokens born in those sessions without `offline_access` (as a logout does).
//! Ending this browser's own session from the list is a logout: the session is flushed and the
//! browser goes to the login page.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower_sessions::Session;

use super::display;
use super::notice;
use super::pages::{holder, nav};
use crate::accounts::lifecycle::{self, Ended, EndedSignIns};
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::db::Tx;
use crate::error::{AppError, Result};
use crate::login::session::session_error;
use crate::login::session_store::{self, SessionSummary};
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::web::bearer::{ApiCaller, SCOPE_ACCOUNT_READ, SCOPE_ACCOUNT_WRITE};
use crate::web::csrf;
use crate::web::openapi::{BadRequest, Forbidden, NotFound, Unauthorized};
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// One session as the page shows it.
struct Row {
    sid: String,
    browser: String,
    user_agent: String,
    ip: String,
    signed_in: String,
    last_used: String,
    current: bool,
}

/// `GET /account/sessions`.
#[derive(Template)]
#[template(path = "pages/account/sessions.html")]
struct SessionsPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    rows: Vec<Row>,
    notice: Option<String>,
    csrf: &'a str,
    asset_version: &'a str,
}

/// `GET /account/sessions`: the live sessions, most recently used first, this browser marked.
pub async fn page(State(state): State<AppState>, session: Session) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_SESSIONS).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let sessions =
        session_store::list_for_user(&state.db.pool, &holder.user.id, state.clock.now()).await?;
    let rows = sessions
        .into_iter()
        .map(|s| Row {
            current: s.sid == holder.session.sid,
            browser: display::browser_name(s.user_agent.as_deref()),
            user_agent: s.user_agent.unwrap_or_default(),
            ip: s.ip.unwrap_or_else(|| "unknown".to_owned()),
            signed_in: display::utc(s.signed_in_at),
            last_used: display::utc(s.last_seen_at),
            sid: s.sid,
        })
        .collect();
    let csrf = csrf::token()?;
    Ok(render(&SessionsPage {
        nav: nav(routes::ACCOUNT_SESSIONS),
        rows,
        notice: notice::take(&session).await?,
        csrf: &csrf,
        asset_version: ASSET_VERSION,
    }))
}

/// The "Sign out" form of one session.
#[derive(Debug, Deserialize)]
pub struct EndForm {
    /// Defaulted so that a missing token is refused like a wrong one (400), not as a malformed form.
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    sid: String,
}

/// The "Sign out everywhere else" form.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /account/sessions/end` `{sid}`: ends that session (303 back with a notice); ending this
/// browser's own session signs it out (303 to the login page).
pub async fn end_form(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<EndForm>,
) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_SESSIONS).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    csrf::check(&form.csrf)?;
    let user_id = holder.user.id.clone();
    let ended = end_one(&state, &user_id, &form.sid, Actor::user(&user_id, meta)).await?;
    if ended.is_none() {
        let gone = "That session had already ended.";
        return notice::back(&session, routes::ACCOUNT_SESSIONS, gone).await;
    }
    if form.sid == holder.session.sid {
        // The row is gone already; flushing also clears the cookie, as a logout does.
        session.flush().await.map_err(session_error)?;
        return Ok(see_other(routes::LOGIN));
    }
    notice::back(
        &session,
        routes::ACCOUNT_SESSIONS,
        "The session was signed out.",
    )
    .await
}

/// `POST /account/sessions/end-others`: ends every session but this browser's (303 back).
pub async fn end_others_form(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<CsrfForm>,
) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_SESSIONS).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    csrf::check(&form.csrf)?;
    let user_id = holder.user.id.clone();
    end_others(
        &state,
        &user_id,
        &holder.session.sid,
        Actor::user(&user_id, meta),
    )
    .await?;
    let message = "Every other session was signed out.";
    notice::back(&session, routes::ACCOUNT_SESSIONS, message).await
}

/// Ends session `sid` of `user_id` and records `session.ended`, in one transaction; `None` when the
/// person has no such session.
async fn end_one(
    state: &AppState,
    user_id: &str,
    sid: &str,
    actor: Actor,
) -> Result<Option<Ended>> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let Some(ended) = lifecycle::end_session(&mut tx, user_id, sid, now).await? else {
        return Ok(None);
    };
    let details = json!({"sid": sid, "refresh_families": ended.refresh_families});
    record(
        &mut tx,
        &actor,
        action::SESSION_ENDED,
        user_id,
        details,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(ended))
}

/// Ends every session of `user_id` but `keep_sid` (`""`: every session) and records
/// `sessions.ended_others`, in one transaction.
async fn end_others(
    state: &AppState,
    user_id: &str,
    keep_sid: &str,
    actor: Actor,
) -> Result<Ended> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let ended = lifecycle::end_other_sessions(&mut tx, user_id, keep_sid, now).await?;
    let details = json!({
        "kept_sid": (!keep_sid.is_empty()).then_some(keep_sid),
        "sessions": ended.sessions,
        "refresh_families": ended.refresh_families,
    });
    record(
        &mut tx,
        &actor,
        action::SESSIONS_ENDED_OTHERS,
        user_id,
        details,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(ended)
}

/// Records one of this feature's audit events about the person's own account.
async fn record(
    tx: &mut Tx,
    actor: &Actor,
    action: &'static str,
    user_id: &str,
    details: Value,
    now: i64,
) -> Result<()> {
    let event = AuditEvent {
        org_id: None,
        actor,
        action,
        target_type: Some("user"),
        target_id: Some(user_id),
        details,
    };
    audit::record(&mut **tx, &event, now).await?;
    Ok(())
}

/// One session in `GET /api/v1/me/sessions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub struct ApiSession {
    /// The session's id (`sid` claim of tokens issued in it).
    sid: String,
    /// The browser, for a person (from the user agent).
    browser: String,
    /// The user agent it signed in with.
    user_agent: Option<String>,
    /// The address it signed in from.
    ip: Option<String>,
    /// Unix seconds.
    signed_in_at: i64,
    /// Unix seconds.
    last_seen_at: i64,
    /// The session the calling token was issued in.
    current: bool,
}

impl ApiSession {
    fn of(s: SessionSummary, current_sid: Option<&str>) -> ApiSession {
        ApiSession {
            current: current_sid == Some(s.sid.as_str()),
            browser: display::browser_name(s.user_agent.as_deref()),
            sid: s.sid,
            user_agent: s.user_agent,
            ip: s.ip,
            signed_in_at: s.signed_in_at,
            last_seen_at: s.last_seen_at,
        }
    }
}

/// The body of `GET /api/v1/me/sessions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    /// Most recently used first.
    sessions: Vec<ApiSession>,
}

/// `GET /api/v1/me/sessions` (`account:read`): `{"sessions": [...]}`, most recently used first.
#[utoipa::path(
    operation_id = "my_sessions_list",
    get,
    path = crate::routes::API_ME_SESSIONS,
    tag = "account",
    responses(
        (status = 200, description = "The caller's live browser sessions", body = SessionList),
        BadRequest, Unauthorized, Forbidden,
    ),
    security(("bearer" = [])),
)]
pub async fn api_list(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<SessionList>> {
    let user = caller.require_user()?;
    caller.require_scope(SCOPE_ACCOUNT_READ)?;
    let sessions =
        session_store::list_for_user(&state.db.pool, &user.id, state.clock.now()).await?;
    let current = caller.token.sid.as_deref();
    let sessions: Vec<ApiSession> = sessions
        .into_iter()
        .map(|s| ApiSession::of(s, current))
        .collect();
    Ok(Json(SessionList { sessions }))
}

/// `DELETE /api/v1/me/sessions/{sid}` (`account:write`): 204; 404 `session-not-found` for a sid
/// that is not one of the caller's sessions.
#[utoipa::path(
    operation_id = "my_sessions_end",
    delete,
    path = crate::routes::API_ME_SESSION,
    tag = "account",
    params(("sid" = String, Path, description = "The session's id")),
    responses(
        (status = 204, description = "Ended"),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn api_end(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path(sid): Path<String>,
) -> Result<Response> {
    let user = caller.require_user()?;
    caller.require_scope(SCOPE_ACCOUNT_WRITE)?;
    let actor = Actor::api(&caller, meta);
    match end_one(&state, &user.id, &sid, actor).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(AppError::problem(
            StatusCode::NOT_FOUND,
            "session-not-found",
            "you have no such session",
        )),
    }
}

/// `POST /api/v1/me/sessions/end-others` (`account:write`): ends every session but the one the
/// token was issued in (every session for a token without `sid`);
/// `{"ended": {"sessions": n, "refresh_families": m}}`.
#[utoipa::path(
    operation_id = "my_sessions_end_others",
    post,
    path = crate::routes::API_ME_SESSIONS_END_OTHERS,
    tag = "account",
    responses(
        (status = 200, description = "What was ended", body = EndedSignIns),
        BadRequest, Unauthorized, Forbidden,
    ),
    security(("bearer" = [])),
)]
pub async fn api_end_others(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
) -> Result<Json<EndedSignIns>> {
    let user = caller.require_user()?;
    caller.require_scope(SCOPE_ACCOUNT_WRITE)?;
    let keep = caller.token.sid.clone().unwrap_or_default();
    let ended = end_others(&state, &user.id, &keep, Actor::api(&caller, meta)).await?;
    Ok(Json(EndedSignIns { ended }))
}
