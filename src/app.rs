//! The application: shared state, the router assembled from feature routers, layers, and the server
//! with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::clients::registry::ClientRegistry;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::keyring::Keyring;
use crate::crypto::password::PasswordHasher;
use crate::crypto::{kek_file, key_seal, key_store};
use crate::db::Database;
use crate::login::session::{self, IDLE_TIMEOUT};
use crate::login::session_store::DbSessionStore;
use crate::mail::Mailer;
use crate::oidc::discovery::Discovery;
use crate::web::csrf;
use crate::web::{self, page::ASSET_VERSION};
use crate::{accounts, invitations, login, oauth, oidc, orgs, routes};

/// Largest request body an extractor reads: forms and JSON are small; anything bigger is refused
/// with 413 by the extractor, so each endpoint answers in its own error format.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long `/readyz` waits for the database before answering 503.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);
/// How often each process re-reads the signing keys (a CLI rotation is seen within 2 s, docs/cli.md, `keys rotate`).
const KEY_REFRESH_EVERY: Duration = Duration::from_secs(1);
/// Session cookie on `https` issuers: `__Host-` binds it to our origin (Secure, Path=/, no Domain).
const SECURE_SESSION_COOKIE: &str = "__Host-latchkey_session";
/// Session cookie on `http://localhost` development issuers, where `__Host-` cookies cannot be set.
const DEV_SESSION_COOKIE: &str = "latchkey_session";

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
    /// Signing keys, refreshed from the database.
    pub keyring: Keyring,
    /// The discovery document, serialized once.
    pub discovery: Discovery,
    /// Registered clients, briefly cached.
    pub clients: ClientRegistry,
    /// Wakes the mail delivery loop after mail is queued.
    pub mailer: Mailer,
    /// The key-encryption key: seals secrets at rest and keys the CSRF cookie's signature.
    pub kek: Arc<KeyEncryptionKey>,
    /// The signing key of the signed cookies (CSRF), derived from `kek` once.
    pub cookie_key: web::signed_cookies::CookieKey,
    /// The guarded HTTP client to upstream providers (enterprise SSO).
    pub upstream: crate::federation::upstream::Upstream,
}

impl AppState {
    /// Builds the state, loading the signing keys (opened with `kek`).
    pub async fn new(
        config: Arc<Config>,
        db: Database,
        clock: Clock,
        kek: Arc<KeyEncryptionKey>,
    ) -> anyhow::Result<AppState> {
        let keyring = Keyring::load(&db, Arc::clone(&kek)).await?;
        let hasher = PasswordHasher::with_limits(
            config.password_hash_concurrency,
            config.password_hash_wait,
        );
        let upstream = crate::federation::upstream::Upstream::new(&config)?;
        Ok(AppState {
            upstream,
            discovery: Discovery::new(&config),
            clients: ClientRegistry::new(db.clone()),
            config,
            db,
            clock,
            hasher,
            keyring,
            mailer: Mailer::default(),
            cookie_key: web::signed_cookies::CookieKey::derive(&kek),
            kek,
        })
    }
}

/// The whole router, with its layers.
pub fn router(state: AppState) -> Router {
    let x_request_id = axum::http::HeaderName::from_static(web::errors::REQUEST_ID_HEADER);
    let idle = time::Duration::seconds(i64::try_from(IDLE_TIMEOUT.as_secs()).unwrap_or(i64::MAX));
    let sessions =
        SessionManagerLayer::new(DbSessionStore::new(state.db.clone(), state.clock.clone()))
            .with_name(if state.config.is_https() {
                SECURE_SESSION_COOKIE
            } else {
                DEV_SESSION_COOKIE
            })
            .with_secure(state.config.is_https())
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(idle));
    // Pages and the authorization endpoint use the browser session; machine endpoints (token,
    // userinfo, JWKS, discovery) do not, so they never touch the session store.
    // Pages (and the fallback) answer errors as HTML, or problem+json under /api/, through the
    // rendering middleware; machine endpoints answer in their own formats and skip it.
    let pages = Router::new()
        .route(routes::HOME, get(home))
        .merge(login::router())
        .merge(crate::recovery::router())
        .merge(invitations::router())
        .merge(accounts::router())
        .merge(crate::self_service::router())
        .merge(crate::mfa::router())
        .merge(crate::federation::router())
        .merge(oauth::authorize_router())
        .merge(orgs::picker::router())
        .merge(oidc::browser_router())
        .merge(crate::device::browser_router())
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::signed_cookies::layer,
        ))
        .route(
            &format!("{}/{{file}}", routes::STATIC_PREFIX),
            get(web::assets::serve),
        )
        .fallback(web::errors::not_found)
        .layer(axum::middleware::from_fn(web::errors::render));
    // The management API (and other JSON under /api/): Bearer tokens, no browser session, errors as
    // problem+json through the rendering middleware.
    // Each feature's API router carries its routes' OpenAPI descriptions (utoipa-axum), so the
    // document served at /api/v1/openapi.json is assembled from exactly the routes that exist.
    let (api, openapi) = OpenApiRouter::with_openapi(web::openapi::ApiDoc::openapi())
        .merge(orgs::api_router())
        .merge(invitations::api_router())
        .merge(accounts::api_router())
        .merge(crate::self_service::api_router())
        .merge(crate::federation::api_router())
        .merge(crate::clients::api::router())
        .split_for_parts();
    let api = api
        .merge(web::openapi::router(&openapi))
        .method_not_allowed_fallback(crate::web::api::method_not_allowed)
        .layer(axum::middleware::from_fn(crate::web::api::link_next_page))
        .layer(axum::middleware::from_fn(web::errors::render));
    let hsts = web::headers::hsts_layer(state.config.is_https());
    // Request metrics only when they are collected: without LATCHKEY_METRICS_BIND the layers are not
    // even in the stack.
    let request_metrics = state.config.metrics_bind.is_some();
    let mut router = Router::new()
        .merge(api)
        .merge(oauth::router())
        .merge(oidc::router())
        .merge(crate::device::router())
        .merge(crate::registration::router())
        .route(routes::HEALTHZ, get(healthz))
        .route(routes::READYZ, get(readyz))
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            state.config.request_timeout,
            web::server::request_timeout,
        ))
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    if request_metrics {
        router = router.route_layer(axum::middleware::from_fn(crate::metrics::http::mark_route));
    }
    for layer in web::headers::security_layers().into_iter().chain(hsts) {
        router = router.layer(layer);
    }
    let router = router
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::extract::Request| {
            let id = req
                .headers()
                .get(web::errors::REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid));
    if request_metrics {
        // Outermost, so the latency covers every layer.
        return router.layer(axum::middleware::from_fn(crate::metrics::http::record));
    }
    router
}

/// The landing page.
#[derive(Template)]
#[template(path = "pages/home.html")]
struct HomePage<'a> {
    issuer: &'a str,
    signed_in_as: Option<&'a str>,
    /// CSRF token of the "send a new verification link" button, shown while the address is unproven.
    verify_csrf: Option<&'a str>,
    asset_version: &'a str,
}

/// `GET /`: a short page saying what this server is, or who is signed in.
async fn home(State(state): State<AppState>, session: Session) -> crate::error::Result<Response> {
    let user = match session::signed_in(&session, &state.clock).await? {
        Some(signed) => accounts::store::find_by_id(&state.db.pool, &signed.user_id).await?,
        None => None,
    };
    let verify_csrf = match &user {
        Some(u) if !u.email_verified => Some(csrf::token()?),
        _ => None,
    };
    Ok(web::page::render(&HomePage {
        issuer: &state.config.issuer,
        signed_in_as: user.as_ref().map(|u| u.email.as_str()),
        verify_csrf: verify_csrf.as_deref(),
        asset_version: ASSET_VERSION,
    }))
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
    /// The metrics listener (`LATCHKEY_METRICS_BIND`), if configured.
    metrics: Option<MetricsListener>,
    router: Router,
    state: AppState,
    deliverer: crate::mail::delivery::Deliverer,
}

impl Server {
    /// Resolves the key-encryption key, prepares the signing keys (refusing a KEK that does not open
    /// them, sealing any stored in plaintext) and binds the listen address (`:0` picks a free port).
    /// A [`kek_file::KekError`] comes back as such inside the `anyhow::Error` (the binary exits 2).
    pub async fn bind(config: Arc<Config>, db: Database, clock: Clock) -> anyhow::Result<Server> {
        let kek = Arc::new(kek_file::resolve(&config)?.key);
        key_seal::unlock(&db, &kek).await?;
        key_store::ensure_active_keys(&db, &config, &clock, &kek).await?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
        let metrics = match config.metrics_bind {
            Some(addr) => Some(MetricsListener::bind(addr).await?),
            None => None,
        };
        let state = AppState::new(config, db, clock, kek).await?;
        let deliverer = crate::mail::delivery::Deliverer::from_state(&state)?;
        let hasher = state.hasher.clone();
        tokio::task::spawn_blocking(move || hasher.warm_up());
        Ok(Server {
            listener,
            metrics,
            router: router(state.clone()),
            state,
            deliverer,
        })
    }

    /// The key-encryption key this server resolved (tests seal and rotate with it).
    pub fn kek(&self) -> Arc<KeyEncryptionKey> {
        Arc::clone(&self.state.kek)
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address the metrics listener actually bound, when `LATCHKEY_METRICS_BIND` is set.
    pub fn metrics_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.metrics.as_ref().map(|m| m.listener.local_addr())
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish; headers must arrive
    /// within `LATCHKEY_HEADER_READ_TIMEOUT` and at most `LATCHKEY_MAX_CONNECTIONS` connections are
    /// served at once (see [`web::server`]). The metrics listener, if any, starts and stops with it.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let jobs = crate::jobs::Jobs::start(self.state.clone());
        let mail = crate::mail::delivery::start(self.deliverer, self.state.mailer.clone());
        let logouts = crate::oidc::backchannel::delivery::start(self.state.clone());
        let refresher = self
            .state
            .keyring
            .spawn_refresher(self.state.db.clone(), KEY_REFRESH_EVERY);
        let limits = web::server::ServerLimits {
            header_read_timeout: self.state.config.header_read_timeout,
            max_connections: self.state.config.max_connections,
        };
        // The metrics listener stops when the public one does: when `shutdown` completes, or when
        // the public listener fails and drops it.
        let (stop_metrics, mut metrics_stopped) = tokio::sync::watch::channel(());
        let metrics = self.metrics.map(|m| {
            tokio::spawn(crate::metrics::scrape::serve(
                m.listener,
                self.state.clone(),
                m.recorder,
                async move {
                    let _ = metrics_stopped.changed().await;
                },
            ))
        });
        let shutdown = async move {
            shutdown.await;
            drop(stop_metrics);
        };
        let result = web::server::serve(self.listener, self.router, limits, shutdown).await;
        if let Some(metrics) = metrics {
            match metrics.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the metrics listener failed"),
                Err(e) => tracing::warn!(error = %e, "the metrics listener stopped abnormally"),
            }
        }
        refresher.abort();
        jobs.stop().await;
        mail.stop().await;
        logouts.stop().await;
        result
    }
}

/// The bound metrics listener and the process-wide recorder it renders.
struct MetricsListener {
    listener: TcpListener,
    recorder: crate::metrics::exporter::Recorder,
}

impl MetricsListener {
    /// Installs the recorder (once per process) and binds `addr` (`:0` picks a free port).
    async fn bind(addr: SocketAddr) -> anyhow::Result<MetricsListener> {
        let recorder = crate::metrics::exporter::install()?;
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!("cannot serve metrics on {addr} (LATCHKEY_METRICS_BIND): {e}")
        })?;
        Ok(MetricsListener { listener, recorder })
    }
}

/// `latchkey serve`: binds, logs `metrics on ADDR` (when configured) and `listening on ADDR`, serves until SIGTERM or SIGINT.
pub async fn serve(config: Arc<Config>, db: Database, clock: Clock) -> anyhow::Result<()> {
    let server = Server::bind(config, db, clock).await?;
    if let Some(addr) = server.metrics_addr() {
        tracing::info!("metrics on {}", addr?);
    }
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
