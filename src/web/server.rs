//! The HTTP/1.1 accept loop, with the limits `axum::serve` does not offer, and the request timeout.
//!
//! Why not `axum::serve`: it cannot bound header reading nor the number of connections, and both
//! are what slow or numerous clients exhaust first (OWASP Denial of Service Cheat Sheet; the
//! "Slowloris" attack holds connections open by sending headers a byte at a time):
//!
//! * **Header-read timeout.** A client must send a request's headers within
//!   [`ServerLimits::header_read_timeout`] or its connection is closed (hyper's
//!   `header_read_timeout`, which needs a timer).
//! * **Connection cap.** At most [`ServerLimits::max_connections`] connections are served at once:
//!   the loop takes a slot before it accepts, so beyond the cap new connections wait in the kernel's
//!   listen backlog (and are refused by the kernel once that is full) instead of costing us memory.
//! * **Graceful shutdown.** When `shutdown` completes, no new connection is accepted, idle
//!   keep-alive connections are closed and in-flight requests run to completion.
//!
//! Each request carries [`ConnectInfo<SocketAddr>`] like under `axum::serve`, so the client-address
//! extractors work unchanged. [`request_timeout`] bounds the time a request may take once its headers
//! are in (a stalled body, a slow dependency): 503 with `Retry-After`, in the endpoint's format.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::error::{ErrorBody, RETRY_AFTER_SECS, UNAVAILABLE};
use crate::routes;
use crate::web::errors::{REQUEST_ID_HEADER, render_error};

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Message of a request that ran past its time.
const TIMEOUT_DETAIL: &str = "The server took too long to answer. Please try again.";

/// Limits of the accept loop (from `LATCHKEY_HEADER_READ_TIMEOUT` and `LATCHKEY_MAX_CONNECTIONS`).
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Longest time a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then lets in-flight
/// requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // A slot before `accept`: beyond the cap, connections wait in the kernel's backlog.
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            // What `into_make_service_with_connect_info` would add: the peer's address.
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                // A client that went away or timed out its headers: nothing to act on.
                tracing::debug!(error = %err, %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Middleware: a request that takes longer than the configured time is answered 503 with
/// `Retry-After` (RFC 9110 §15.6.4) in its endpoint's format: problem+json under `/api/`, an HTML
/// page for browsers, RFC 6749 JSON (`temporarily_unavailable`) for protocol clients. The handler's
/// future is dropped, so whatever it held is released.
pub async fn request_timeout(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let api = request.uri().path().starts_with(routes::API_PREFIX);
    let browser = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let Ok(response) = tokio::time::timeout(limit, next.run(request)).await else {
        tracing::warn!(request_id, "request timed out");
        let mut response = if api || browser {
            let body = ErrorBody {
                code: UNAVAILABLE,
                detail: TIMEOUT_DETAIL.to_owned(),
            };
            render_error(api, StatusCode::SERVICE_UNAVAILABLE, &body, &request_id)
        } else {
            let body =
                json!({"error": "temporarily_unavailable", "error_description": TIMEOUT_DETAIL});
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        };
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    };
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;

    use super::*;

    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(60)).await;
        "late"
    }

    fn app() -> Router {
        Router::new()
            .route("/slow", get(slow))
            .route("/api/v1/slow", get(slow))
            .route("/fast", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(20),
                request_timeout,
            ))
    }

    async fn call(path: &str, accept: &str) -> Response {
        let request = Request::builder()
            .uri(path)
            .header(header::ACCEPT, accept)
            .body(Body::empty())
            .unwrap();
        app().oneshot(request).await.unwrap()
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_slow_request_is_answered_503_in_its_endpoints_format() {
        let fast = call("/fast", "*/*").await;
        assert_eq!(fast.status(), StatusCode::OK);

        let page = call("/slow", "text/html,application/xhtml+xml").await;
        assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(page.headers()[header::RETRY_AFTER], "2");
        assert!(
            page.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(body(page).await.contains("took too long"));

        let api = call("/api/v1/slow", "application/json").await;
        assert_eq!(api.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            api.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert!(body(api).await.contains("temporarily-unavailable"));

        let oauth = call("/slow", "application/json").await;
        assert_eq!(oauth.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(oauth.headers().contains_key(header::RETRY_AFTER));
        let json: serde_json::Value = serde_json::from_str(&body(oauth).await).unwrap();
        assert_eq!(json["error"], "temporarily_unavailable");
    }
}
