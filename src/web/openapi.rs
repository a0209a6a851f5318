//! The OpenAPI 3.1 description of `/api/v1`, generated from the handlers (`#[utoipa::path]`) and
//! their types (`ToSchema`), served at `GET /api/v1/openapi.json`.
//!
//! Each feature's `api_router()` is a `utoipa_axum::router::OpenApiRouter` built with `routes!`, so
//! a route and its description are registered by the same line and cannot drift apart.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

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
    modifiers(&BearerScheme),
    paths(openapi_document)
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

/// The problem responses operations list next to their success responses, one type per status so
/// that each operation names exactly the statuses it can answer (`responses((status = 200, …),
/// BadRequest, NotFound)`). Each body is a [`Problem`] whose `type` says which error it is.
macro_rules! problem_responses {
    ($($(#[doc = $doc:literal])* $name:ident = $status:literal;)*) => {$(
        $(#[doc = $doc])*
        #[derive(Debug, IntoResponses)]
        #[response(status = $status, content_type = "application/problem+json")]
        #[allow(dead_code)] // a description only: `web::errors` renders the body
        pub struct $name(Problem);
    )*};
}

problem_responses! {
    /// A malformed request: a bad query parameter (`invalid-query`, `invalid-cursor`), a body
    /// that is missing, not JSON or not the expected fields (`missing-body`, `malformed-json`,
    /// `invalid-body`), a field value that is refused (the `type` names it), or a NUL character
    /// anywhere in the path or query (`invalid-text`, any operation).
    BadRequest = 400;
    /// No access token, or one that is invalid or expired (`WWW-Authenticate: Bearer` says why).
    Unauthorized = 401;
    /// The token lacks a scope, the caller's role is too weak, or the caller is not who the
    /// operation is for (e.g. `insufficient-scope`, `role-insufficient`, `operator-required`).
    Forbidden = 403;
    /// The resource does not exist or is not visible to the caller (e.g.
    /// `organization-not-found`).
    NotFound = 404;
    /// The request conflicts with the current state (e.g. `slug-taken`, `last-owner`).
    Conflict = 409;
    /// The request body is larger than the server accepts (`payload-too-large`).
    PayloadTooLarge = 413;
    /// The request body is not `application/json` (`unsupported-media-type`).
    UnsupportedMediaType = 415;
    /// The request is well-formed but cannot be carried out (the `type` says why).
    Unprocessable = 422;
    /// Too many attempts; `Retry-After` says when to try again.
    TooManyRequests = 429;
}

/// The document itself: this OpenAPI 3.1 description of `/api/v1` (no authentication).
#[utoipa::path(
    get,
    path = crate::routes::API_OPENAPI,
    tag = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document (JSON)", content_type = "application/json", body = Object)),
)]
#[allow(dead_code)] // described here, served by [`router`] from the document built once at start
fn openapi_document() {}

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
