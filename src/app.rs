//! The application: shared state, the router assembled from feature routers, layers, and the server
//! with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::key_store;
use crate::crypto::password::PasswordHasher;
use crate::db::Database;
use crate::routes;
use crate::web::{self, page::ASSET_VERSION};

/// Largest request body we read: forms and JSON are small; anything bigger is refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long `/readyz` waits for the database before answering 503.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything a handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// The database.
    pub db: Database,
    /// Source of "now".
    pub clock: Clock,
    /// Argon2id hasher with a bounded number of hashes in flight.
    pub hasher: PasswordHasher,
}

impl AppState {
    /// Builds the state.
    pub fn new(config: Arc<Config>, db: Database, clock: Clock) -> AppState {
        AppState {
            config,
            db,
            clock,
            hasher: PasswordHasher::default(),
        }
    }
}

/// The whole router, with its layers.
pub fn router(state: AppState) -> Router {
    let x_request_id = axum::http::HeaderName::from_static(web::errors::REQUEST_ID_HEADER);
    let mut router = Router::new()
        .route(routes::HOME, get(home))
        .route(routes::HEALTHZ, get(healthz))
        .route(routes::READYZ, get(readyz))
        .route(
            &format!("{}/{{file}}", routes::STATIC_PREFIX),
            get(web::assets::serve),
        )
        .fallback(web::errors::not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(web::errors::render))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES));
    for layer in web::headers::security_layers() {
        router = router.layer(layer);
    }
    router
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::extract::Request| {
            let id = req
                .headers()
                .get(web::errors::REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}

/// The landing page.
#[derive(Template)]
#[template(path = "pages/home.html")]
struct HomePage<'a> {
    issuer: &'a str,
    asset_version: &'a str,
}

/// `GET /`: a short page saying what this server is.
async fn home(State(state): State<AppState>) -> Response {
    web::page::render(&HomePage {
        issuer: &state.config.issuer,
        asset_version: ASSET_VERSION,
    })
}

/// `GET /healthz`: the process is up (no dependencies checked).
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when the database answers within [`READINESS_TIMEOUT`], 503 otherwise.
async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(READINESS_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => Json(json!({"status": "ready", "database": "ok"})).into_response(),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database unreachable");
            not_ready()
        }
        Err(_) => {
            tracing::warn!("readiness: database timed out");
            not_ready()
        }
    }
}

fn not_ready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "unavailable", "database": "unreachable"})),
    )
        .into_response()
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    router: Router,
}

impl Server {
    /// Prepares signing keys and binds the listen address (`:0` picks a free port).
    pub async fn bind(config: Arc<Config>, db: Database, clock: Clock) -> anyhow::Result<Server> {
        key_store::ensure_active_keys(&db, &config, &clock).await?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
        let router = router(AppState::new(config, db, clock));
        Ok(Server { listener, router })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// `latchkey serve`: binds, logs `listening on ADDR`, serves until SIGTERM or SIGINT.
pub async fn serve(config: Arc<Config>, db: Database, clock: Clock) -> anyhow::Result<()> {
    let server = Server::bind(config, db, clock).await?;
    tracing::info!("listening on {}", server.local_addr()?);
    server.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
