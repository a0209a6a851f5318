//! The one delivery loop of queued work: mail (`mail::delivery`) and back-channel logout tokens
//! (`oidc::backchannel::delivery`) are rows of an outbox table, handed over off the request path by
//! a loop in every process.
//!
//! A pass reads the ids due now in batches and leases each row (one conditional update) before
//! handling it, so processes sharing a database never handle one row twice, and a process that dies
//! mid-way frees its lease when the lease runs out. The loop runs a pass at start (rows left by an
//! earlier run), on every wake and on every poll interval (rows queued by another process or the
//! CLI, retries that came due), and stops between rows, never in the middle of one.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Ids read per batch.
const BATCH: i64 = 50;

/// One outbox table and how its rows are handed over.
pub trait Outbox: Send + Sync + 'static {
    /// A leased row.
    type Row: Send;

    /// What the log calls a failed pass.
    const NAME: &'static str;

    /// Seconds a claimed row stays leased to this process (well over one attempt).
    const LEASE_SECS: i64;

    /// Now, from the injectable clock (tests move it to make retries due).
    fn now(&self) -> i64;

    /// Ids due at `now` and not leased, oldest first, at most `limit`.
    fn due(
        &self,
        now: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<String>, sqlx::Error>> + Send;

    /// Leases row `id` until `until`; `None` when another process holds it or it is done.
    fn claim(
        &self,
        id: &str,
        now: i64,
        until: i64,
    ) -> impl Future<Output = Result<Option<Self::Row>, sqlx::Error>> + Send;

    /// Hands one leased row over and records the outcome (done, or failed with its next attempt);
    /// true when it was handed over.
    fn deliver(&self, row: Self::Row) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
}

/// Hands over every row of `outbox` due now, checking `stop` between rows; returns how many were
/// handed over.
pub async fn deliver_due<O: Outbox>(
    outbox: &O,
    stop: &watch::Receiver<bool>,
) -> Result<usize, sqlx::Error> {
    let mut delivered = 0;
    loop {
        let ids = outbox.due(outbox.now(), BATCH).await?;
        let mut progressed = false;
        for id in &ids {
            if *stop.borrow() {
                return Ok(delivered);
            }
            let now = outbox.now();
            let Some(row) = outbox.claim(id, now, now + O::LEASE_SECS).await? else {
                continue;
            };
            progressed = true;
            if outbox.deliver(row).await? {
                delivered += 1;
            }
        }
        // A full batch may hide more due rows; stop when nothing was ours to hand over.
        if i64::try_from(ids.len()).unwrap_or(0) < BATCH || !progressed {
            return Ok(delivered);
        }
    }
}

/// A running delivery loop; [`Worker::stop`] ends it between rows.
#[derive(Debug)]
pub struct Worker {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Worker {
    /// Starts the loop over `outbox`: a pass at once, then one on every tick of `poll_every` and
    /// every time `woken()` completes (work queued in this process).
    pub fn start<O, W, F>(outbox: O, poll_every: Duration, woken: W) -> Worker
    where
        O: Outbox,
        W: Fn() -> F + Send + 'static,
        F: Future<Output = ()> + Send,
    {
        let (stop, mut stopped) = watch::channel(false);
        let handle = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(poll_every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = woken() => {}
                    _ = stopped.changed() => break,
                }
                // A stop is seen between rows: the one in flight finishes (each attempt has its
                // timeout), so it is never handed over and then left unmarked.
                if let Err(e) = deliver_due(&outbox, &stopped).await {
                    tracing::warn!(error = %e, outbox = O::NAME, "delivery pass failed");
                }
            }
        });
        Worker { stop, handle }
    }

    /// Asks the loop to stop and waits for the row in flight, if any.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}
