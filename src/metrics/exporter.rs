//! The process-wide Prometheus recorder. The `metrics` facade has one global recorder per process,
//! so it is installed once, by the first server configured with `LATCHKEY_METRICS_BIND`; a later
//! server in the same process (the tests start many) shares its handle. Until then every
//! instrumentation call goes to the facade's no-op recorder, and [`installed`] lets the callers skip
//! even building their labels.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::metrics::{Unit, describe_counter, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::names;

/// How often histogram samples are folded into their buckets (the exporter leaves this to us when it
/// runs no HTTP server of its own), so memory stays bounded between scrapes.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The installed recorder's handle, or why it could not be installed.
static RECORDER: OnceLock<Result<Recorder, String>> = OnceLock::new();

/// The installed recorder.
#[derive(Clone, Debug)]
pub struct Recorder {
    /// Renders the text exposition format.
    pub handle: PrometheusHandle,
    /// When the recorder was installed (the server's start), unix seconds.
    pub started_at: f64,
}

/// Installs the recorder on first use, or returns the one installed before. Fails only when another
/// recorder was installed in this process by something else.
pub fn install() -> anyhow::Result<Recorder> {
    RECORDER
        .get_or_init(|| build().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| anyhow::anyhow!("cannot start metrics: {e}"))
}

/// Whether metrics are being collected in this process.
pub fn installed() -> bool {
    matches!(RECORDER.get(), Some(Ok(_)))
}

fn build() -> anyhow::Result<Recorder> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::HTTP_REQUEST_DURATION.to_owned()),
            &names::LATENCY_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    Ok(Recorder { handle, started_at })
}

/// The `# HELP` lines of the events counted as they happen (also in `docs/metrics.md`); the gauges
/// read at scrape time are written by [`super::scrape`] with their own.
fn describe() {
    describe_counter!(
        names::HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status."
    );
    describe_histogram!(
        names::HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by route template and method."
    );
    describe_counter!(
        names::TOKENS_ISSUED,
        "Access tokens issued by the token endpoint, by grant type and client type."
    );
    describe_counter!(
        names::SIGN_INS,
        "Sign-in attempts, by method and outcome (success, failure, throttled)."
    );
    describe_counter!(
        names::REFRESH_TOKEN_REUSE_DETECTED,
        "Rotated refresh tokens presented again; each revoked its token family."
    );
    describe_counter!(names::MAIL_QUEUED, "Messages put in the outbox.");
    describe_counter!(names::MAIL_SENT, "Messages handed over for delivery.");
    describe_counter!(
        names::MAIL_FAILED,
        "Failed delivery attempts (retried with backoff, then given up)."
    );
}
