//! The management API (`/api/v1`, docs/api.md): organizations, members, the audit
//! log, roles and operator statistics, for Bearer access tokens from this issuer.
//!
//! Every handler authenticates with [`ApiCaller`](crate::web::bearer::ApiCaller) and checks access
//! with [`authorize`](crate::orgs::access::authorize); errors are RFC 9457 problem+json with a stable
//! `type` per error. The JSON body and query extractors and the pagination they share with every
//! other feature's API live in [`crate::web::api`].

mod audit_log;
mod me;
mod members;
mod orgs;
mod stats;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;
use crate::routes;
use crate::web::api::method_not_allowed;

/// The management API routes.
pub fn router() -> Router<AppState> {
    Router::new()
        // DELETE (the person deletes their own account) lives with the account deletion page.
        .route(
            routes::API_ME,
            get(me::me).delete(crate::self_service::deletion::api_delete),
        )
        .route(routes::API_ROLES, get(me::roles))
        .route(routes::API_ORGS, get(orgs::list).post(orgs::create))
        .route(
            routes::API_ORG,
            get(orgs::read).patch(orgs::update).delete(orgs::delete),
        )
        .route(routes::API_ORG_MEMBERS, get(members::list))
        .route(
            routes::API_ORG_MEMBER,
            get(members::read)
                .patch(members::update)
                .delete(members::remove),
        )
        .route(routes::API_ORG_AUDIT_LOG, get(audit_log::org_log))
        .route(routes::API_AUDIT_LOG, get(audit_log::full_log))
        .route(routes::API_STATS, get(stats::stats))
        .method_not_allowed_fallback(method_not_allowed)
}
