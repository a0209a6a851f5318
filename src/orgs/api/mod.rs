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

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;

/// The management API routes, each registered with its OpenAPI description (one `routes!` per
/// path).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // DELETE (the person deletes their own account) lives with the account deletion page.
        .routes(routes!(me::me, crate::self_service::deletion::api_delete))
        .routes(routes!(me::roles))
        .routes(routes!(orgs::list, orgs::create))
        .routes(routes!(orgs::read, orgs::update, orgs::delete))
        .routes(routes!(members::list))
        .routes(routes!(members::read, members::update, members::remove))
        .routes(routes!(audit_log::org_log))
        .routes(routes!(audit_log::full_log))
        .routes(routes!(stats::stats))
}
