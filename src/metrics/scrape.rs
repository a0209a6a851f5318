//! The metrics listener's one endpoint, `GET /metrics`, in the Prometheus text exposition format
//! (version 0.0.4).
//!
//! The counters and the latency histogram come from the recorder. The gauges that describe state are
//! read at each scrape, from this server's own pool, keys and outbox, and written after them: read
//! when asked, they are never stale, and a series that no longer exists (the age of a key retired
//! since) simply stops appearing, which a gauge kept in the process-wide recorder could not do.

use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use super::exporter::{Recorder, UPKEEP_EVERY};
use super::names;
use crate::app::AppState;
use crate::crypto::key_store;
use crate::crypto::keyring::KeyState;
use crate::mail::delivery::MAX_ATTEMPTS;
use crate::routes;
use crate::web::server::{self, ServerLimits};

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Longest wait for the database while reading the gauges: a scrape answers (without the gauges
/// that need the database) rather than hang while the database does.
const DATABASE_WAIT: Duration = Duration::from_secs(2);

/// Connections the metrics listener serves at once: Prometheus scrapes over one or two.
const MAX_SCRAPE_CONNECTIONS: usize = 4;

/// Serves `GET /metrics` on `listener` until `stop` completes, within the public listener's
/// header-read timeout, and keeps the recorder's histograms folded meanwhile.
pub async fn serve(
    listener: TcpListener,
    app: AppState,
    recorder: Recorder,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = recorder.handle.clone();
    let upkeep = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(UPKEEP_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            handle.run_upkeep();
        }
    });
    let limits = ServerLimits {
        header_read_timeout: app.config.header_read_timeout,
        max_connections: MAX_SCRAPE_CONNECTIONS,
    };
    let result = server::serve(listener, router(app, recorder), limits, stop).await;
    upkeep.abort();
    result
}

/// What the endpoint reads.
#[derive(Clone)]
struct Scrape {
    app: AppState,
    recorder: Recorder,
}

/// The router of the metrics listener (no request metrics of its own: scrapes are not traffic): `GET /metrics`, and 404 for anything else.
pub fn router(app: AppState, recorder: Recorder) -> Router {
    Router::new()
        .route(routes::METRICS, get(metrics))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(Scrape { app, recorder })
}

/// `GET /metrics`
async fn metrics(State(scrape): State<Scrape>) -> Response {
    let mut body = scrape.recorder.handle.render();
    write_gauges(&mut body, &scrape).await;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// Appends the scrape-time gauges to `out`.
async fn write_gauges(out: &mut String, scrape: &Scrape) {
    let app = &scrape.app;
    let now = app.clock.now();
    gauge(
        out,
        names::PROCESS_START_TIME,
        "When this process started serving, unix seconds.",
        &[(&[], scrape.recorder.started_at)],
    );
    gauge(
        out,
        names::BUILD_INFO,
        "Always 1; the version label names the running build.",
        &[(&[(names::VERSION, env!("CARGO_PKG_VERSION"))], 1.0)],
    );
    let pool = &app.db.pool;
    let open = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(open);
    gauge(
        out,
        names::DB_POOL_CONNECTIONS,
        "Database pool connections, by state (idle, in_use).",
        &[
            (&[(names::STATE, names::IDLE)], f64::from(idle)),
            (&[(names::STATE, names::IN_USE)], f64::from(open - idle)),
        ],
    );
    gauge(
        out,
        names::DB_POOL_MAX_CONNECTIONS,
        "Most connections the database pool opens.",
        &[(&[], f64::from(pool.options().get_max_connections()))],
    );
    match tokio::time::timeout(DATABASE_WAIT, key_store::list(pool)).await {
        Ok(Ok(keys)) => {
            let active: Vec<_> = keys
                .iter()
                .filter(|k| KeyState::parse(&k.state) == Some(KeyState::Active))
                .collect();
            let samples: Vec<(Vec<(&str, &str)>, f64)> = active
                .iter()
                .map(|k| {
                    let labels = vec![(names::KID, k.kid.as_str()), (names::ALG, k.alg.as_str())];
                    (labels, seconds(now - k.created_at))
                })
                .collect();
            let samples: Vec<(&[(&str, &str)], f64)> = samples
                .iter()
                .map(|(labels, age)| (labels.as_slice(), *age))
                .collect();
            gauge(
                out,
                names::SIGNING_KEY_AGE,
                "Seconds since each active signing key was created.",
                &samples,
            );
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: cannot read the signing keys"),
        Err(_) => tracing::warn!("metrics: reading the signing keys timed out"),
    }
    let oldest = crate::mail::store::oldest_waiting(pool, MAX_ATTEMPTS);
    match tokio::time::timeout(DATABASE_WAIT, oldest).await {
        Ok(Ok(oldest)) => gauge(
            out,
            names::MAIL_QUEUE_OLDEST_AGE,
            "Age of the oldest message waiting for delivery; 0 when none waits.",
            &[(&[], oldest.map_or(0.0, |queued| seconds(now - queued)))],
        ),
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: cannot read the mail outbox"),
        Err(_) => tracing::warn!("metrics: reading the mail outbox timed out"),
    }
}

/// A non-negative number of seconds (a clock moved backwards reads as 0, not as a negative age).
fn seconds(secs: i64) -> f64 {
    // Ages fit f64 exactly far beyond any real value (2^53 s).
    #[allow(clippy::cast_precision_loss)]
    let secs = secs.max(0) as f64;
    secs
}

/// Writes one gauge family: `# HELP`, `# TYPE`, then a line per sample (none: no lines but the
/// header, which Prometheus accepts).
fn gauge(out: &mut String, name: &str, help: &str, samples: &[(&[(&str, &str)], f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in samples {
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{key}=\"{}\"", escape_label(value));
            }
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
    }
    out.push('\n');
}

/// A label value as the text format quotes it: backslash, double quote and line feed escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_in_the_text_format() {
        let mut out = String::new();
        gauge(
            &mut out,
            "x_seconds",
            "An age.",
            &[
                (&[("kid", "a\"b\\c\nd"), ("alg", "ES256")], 12.0),
                (&[], 0.5),
            ],
        );
        assert_eq!(
            out,
            "# HELP x_seconds An age.\n# TYPE x_seconds gauge\n\
             x_seconds{kid=\"a\\\"b\\\\c\\nd\",alg=\"ES256\"} 12\nx_seconds 0.5\n\n"
        );
    }

    #[test]
    fn ages_are_never_negative() {
        assert_eq!(seconds(-5), 0.0);
        assert_eq!(seconds(90), 90.0);
    }
}
