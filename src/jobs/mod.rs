//! Background jobs: expiry purges and signing-key rotation, each run at most once at a time across
//! all processes sharing the database (a lease in `job_leases`), stopped cleanly at shutdown; and
//! [`outbox`], the delivery loop of queued rows (mail, back-channel logout tokens), which runs in
//! every process.

pub mod lease;
pub mod outbox;
pub mod purge;

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::crypto::key_store;
use crate::crypto::tokens::new_id;

/// How often each job runs.
pub const JOB_INTERVAL: Duration = Duration::from_secs(60);
/// A lease outlives one run comfortably, and frees itself if its process dies.
const LEASE_SECS: i64 = 55;

/// Running jobs; [`Jobs::stop`] ends them between runs, never in the middle of one.
#[derive(Debug)]
pub struct Jobs {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Jobs {
    /// Starts the job loop for this process.
    pub fn start(state: AppState) -> Jobs {
        let (stop, mut stopped) = watch::channel(false);
        let holder = new_id();
        let handle = tokio::spawn(async move {
            // The first run comes one interval after start: start-up already ensured the keys, and
            // a burst of processes starting together should not all race for the leases.
            let first = tokio::time::Instant::now() + JOB_INTERVAL;
            let mut ticks = tokio::time::interval_at(first, JOB_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => run_due(&state, &holder).await,
                    _ = stopped.changed() => break,
                }
            }
        });
        Jobs { stop, handle }
    }

    /// Asks the loop to stop and waits for the current run to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

/// Runs every job whose lease this process can take now.
pub async fn run_due(state: &AppState, holder: &str) {
    let now = state.clock.now();
    let until = now + LEASE_SECS;
    match lease::acquire(&state.db.pool, "purge", holder, now, until).await {
        Ok(true) => {
            match purge::run(&state.db, now).await {
                Ok(purged) if !purged.rows.is_empty() => {
                    tracing::info!(?purged, "purged expired rows")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purge failed"),
            }
            match purge::retention(&state.db, now, state.config.audit_retention).await {
                Ok(purged) if !purged.rows.is_empty() => {
                    tracing::info!(?purged, "purged history past its retention")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention purge failed"),
            }
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "cannot take the purge lease"),
    }
    match lease::acquire(&state.db.pool, "key_rotation", holder, now, until).await {
        Ok(true) => {
            if let Err(e) =
                key_store::rotate_due(&state.db, &state.config, &state.clock, &state.kek).await
            {
                tracing::warn!(error = %e, "key rotation failed");
            }
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "cannot take the key-rotation lease"),
    }
}
