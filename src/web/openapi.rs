//! The OpenAPI 3.1 description of `/api/v1`, generated from the handlers (`#[utoipa::path]`) and
//! their types (`ToSchema`), served at `GET /api/v1/openapi.json`.

use utoipa::OpenApi;

/// The document's fixed parts (info, security schemes, shared schemas); every path comes from the
/// feature routers, merged in `app::router`.
#[derive(OpenApi)]
#[openapi(info(
    title = "Latchkey management API",
    description = "The JSON management API of Latchkey under /api/v1."
))]
pub struct ApiDoc;

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
