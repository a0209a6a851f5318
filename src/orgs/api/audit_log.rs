//! The audit log: `GET /api/v1/orgs/{org}/audit-log` (the organization's admins) and
//! `GET /api/v1/audit-log` (operators: every event, also those of no organization such as key
//! rotations and logins). Newest first, paginated, filtered by `action`, `from` and `to` (unix
//! seconds, inclusive).

use axum::extract::{Path, State};
use serde::Deserialize;

use crate::app::AppState;
use crate::audit::{self, AuditEntry, AuditFilter};
use crate::error::Result;
use crate::orgs::access::authorize;
use crate::orgs::roles::Permission;
use crate::web::api::{ApiQuery, Listing, Page, invalid_query};
use crate::web::bearer::ApiCaller;
use crate::web::openapi::{BadRequest, Forbidden, NotFound, Unauthorized};

/// Longest `action` filter accepted.
const MAX_ACTION_LEN: usize = 100;

/// Query of the audit-log endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `cursor` of the previous page's `Link: <…>; rel="next"` (opaque).
    cursor: Option<String>,
    /// Only events of this action (e.g. `member.role_changed`), 1 to 100 characters.
    action: Option<String>,
    /// Only events at or after this time (Unix seconds).
    from: Option<i64>,
    /// Only events at or before this time (Unix seconds).
    to: Option<i64>,
    /// Operators only: one organization's events.
    org_id: Option<String>,
}

async fn respond(
    state: &AppState,
    query: &LogQuery,
    org_id: Option<&str>,
) -> Result<Listing<AuditEntry>> {
    let page = Page::new(query.limit, query.cursor.as_deref())?;
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from > to
    {
        return Err(invalid_query("from must not be after to"));
    }
    if query
        .action
        .as_deref()
        .is_some_and(|a| a.is_empty() || a.len() > MAX_ACTION_LEN)
    {
        return Err(invalid_query(format!(
            "action must be 1 to {MAX_ACTION_LEN} characters"
        )));
    }
    let filter = AuditFilter {
        org_id,
        action: query.action.as_deref(),
        from: query.from,
        to: query.to,
        before: page.after(),
        limit: page.fetch(),
    };
    let rows = audit::list(&state.db.pool, &filter).await?;
    Ok(page.finish(rows, |e: &AuditEntry| (e.created_at, e.id.clone()), |e| e))
}

/// `GET /api/v1/orgs/{org}/audit-log`: the organization's events, newest first (admin and up).
#[utoipa::path(
    operation_id = "audit_org_log",
    get,
    path = crate::routes::API_ORG_AUDIT_LOG,
    tag = "audit",
    params(("org" = String, Path, description = "The organization's id or slug"), LogQuery),
    responses(
        (status = 200, description = "A page of events, newest first", body = [AuditEntry], headers(("Link" = String, description = "`<…>; rel=\"next\"` when another page follows (RFC 8288)"))),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn org_log(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(org_ref): Path<String>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Listing<AuditEntry>> {
    let access = authorize(&state.db.pool, &caller, &org_ref, Permission::ReadAuditLog).await?;
    if query.org_id.is_some() {
        return Err(invalid_query("org_id is taken from the path here"));
    }
    respond(&state, &query, Some(&access.org.id)).await
}

/// `GET /api/v1/audit-log`: every event, newest first (operators only; `org_id` narrows it to one
/// organization, also a deleted one).
#[utoipa::path(
    operation_id = "audit_full_log",
    get,
    path = crate::routes::API_AUDIT_LOG,
    tag = "audit",
    params(LogQuery),
    responses(
        (status = 200, description = "A page of events, newest first", body = [AuditEntry], headers(("Link" = String, description = "`<…>; rel=\"next\"` when another page follows (RFC 8288)"))),
        BadRequest, Unauthorized, Forbidden,
    ),
    security(("bearer" = [])),
)]
pub async fn full_log(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Listing<AuditEntry>> {
    caller.require_operator()?;
    respond(&state, &query, query.org_id.as_deref()).await
}
