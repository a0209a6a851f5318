//! Renders [`AppError`](crate::error::AppError) responses: an HTML page with the request id people can
//! quote, or RFC 9457 problem+json under `/api/`.

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{AppError, ErrorBody};
use crate::routes;
use crate::web::page::ASSET_VERSION;

/// Header carrying the request id (set by `SetRequestIdLayer`, echoed to the client).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Prefix of the stable problem `type` URIs (RFC 9457 §3.1.1); the error code follows.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:latchkey:problem:";

/// The error page.
#[derive(Template)]
#[template(path = "pages/error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    detail: &'a str,
    request_id: &'a str,
    asset_version: &'a str,
}

/// Middleware: replaces a bare error response by its rendered body.
pub async fn render(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with(routes::API_PREFIX);
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let response = next.run(request).await;
    let Some(body) = response.extensions().get::<ErrorBody>().cloned() else {
        return response;
    };
    let mut rendered = render_error(api, response.status(), &body, &request_id);
    // Keep headers the handler set (WWW-Authenticate, Allow, ...), except the body's own.
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rendered
}

/// The body of an error response: RFC 9457 problem+json when `api`, else the HTML error page.
pub fn render_error(api: bool, status: StatusCode, body: &ErrorBody, request_id: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    if api {
        let problem = json!({
            "type": format!("{PROBLEM_TYPE_PREFIX}{}", body.code),
            "title": title,
            "status": status.as_u16(),
            "detail": body.detail,
            "request_id": request_id,
        });
        let mut r = (status, problem.to_string()).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        return r;
    }
    let page = ErrorPage {
        status: status.as_u16(),
        title,
        detail: &body.detail,
        request_id,
        asset_version: ASSET_VERSION,
    };
    match page.render() {
        Ok(html) => (status, axum::response::Html(html)).into_response(),
        Err(_) => (
            status,
            format!("{title}: {} (request id {request_id})", body.detail),
        )
            .into_response(),
    }
}

/// Fallback for unknown paths.
pub async fn not_found() -> AppError {
    AppError::not_found("There is nothing at this address.")
}
