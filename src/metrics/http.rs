//! The request metrics of the public listener: `latchkey_http_requests_total{route,method,status}`
//! and `latchkey_http_request_duration_seconds{route,method}`.
//!
//! Two layers, because the route is known only inside the router while the time should cover the
//! whole stack: [`mark_route`], a route layer, hands the matched route template ([`MatchedPath`]) out
//! in the response's extensions; [`record`], the outermost layer, times the request and counts it
//! under that template, or under `unmatched` when no route matched. A template, never the path
//! itself, keeps the number of series bounded (`/api/v1/orgs/{org_id}`, not one series per id).

use std::sync::Arc;
use std::time::Instant;

use ::metrics::{SharedString, counter, histogram};
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::names;

/// Route layer: copies the matched route template into the response, for [`record`].
pub async fn mark_route(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(matched);
    }
    response
}

/// Outermost layer: counts the request and observes its latency (until the response headers).
pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let route: SharedString = response
        .extensions()
        .get::<MatchedPath>()
        .map_or(SharedString::const_str(names::UNMATCHED_ROUTE), |m| {
            SharedString::from(Arc::<str>::from(m.as_str()))
        });
    let status = response.status().as_str().to_owned();
    counter!(names::HTTP_REQUESTS, names::ROUTE => route.clone(), names::METHOD => method, names::STATUS => status)
        .increment(1);
    histogram!(names::HTTP_REQUEST_DURATION, names::ROUTE => route, names::METHOD => method)
        .record(seconds);
    response
}

/// The `method` label: the standard methods by name, anything else (extension methods are
/// unbounded) as `other`.
fn method_label(method: &Method) -> &'static str {
    names::HTTP_METHODS
        .iter()
        .find(|m| **m == method.as_str())
        .copied()
        .unwrap_or(names::OTHER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        assert_eq!(method_label(&Method::TRACE), "other");
        #[allow(clippy::unwrap_used)]
        let custom = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_label(&custom), "other");
    }
}
