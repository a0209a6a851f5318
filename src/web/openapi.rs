//! The OpenAPI 3.1 description of `/api/v1`, generated from the handlers (`#[utoipa::path]`) and
//! their types (`ToSchema`), served at `GET /api/v1/openapi.json`.
//!
//! Each feature's `api_router()` is a `utoipa_axum::router::OpenApiRouter` built with `routes!`, so
//! a route and its description are registered by the same line and cannot drift apart.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The name of the Bearer security scheme operations refer to (`security(("bearer" = []))`).
pub const BEARER: &str = "bearer";

/// The document's fixed parts (info, the Bearer security scheme, shared schemas); every path comes
/// from the feature routers, merged in `app::router`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey management API",
        description = "The JSON management API of Latchkey under /api/v1: organizations, members, \
                       invitations, the audit log, your account, users, clients, enterprise SSO. \
                       Errors are RFC 9457 problem+json."
    ),
    components(schemas(Problem)),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

/// An RFC 9457 problem (`application/problem+json`), the body of every API error.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // a schema only: `web::errors` renders the body
pub struct Problem {
    /// `urn:latchkey:problem:CODE`, stable per error.
    #[schema(example = "urn:latchkey:problem:organization-not-found")]
    r#type: String,
    /// The HTTP status's reason phrase.
    title: String,
    /// The HTTP status code.
    status: u16,
    /// What went wrong, for a person.
    detail: String,
    /// The request's `x-request-id`.
    request_id: String,
}

/// Adds the Bearer scheme: access tokens (RFC 9068 JWTs) from this issuer.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// `GET /api/v1/openapi.json`: the document, serialized once at start.
pub fn router(doc: &utoipa::openapi::OpenApi) -> axum::Router<crate::app::AppState> {
    let body = axum::body::Bytes::from(doc.to_json().unwrap_or_default());
    axum::Router::new().route(
        crate::routes::API_OPENAPI,
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        }),
    )
}
