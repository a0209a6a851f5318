//! The delivery of `mail_outbox`: an [`Outbox`] for the one delivery loop of
//! [`crate::jobs::outbox`] (leases, batches, stopping between messages).
//!
//! The loop wakes on [`super::Mailer::wake`] and polls every [`POLL_EVERY`], so a message is handed
//! over within seconds of its action (docs/operations.md: 5 s). A message is leased for
//! [`LEASE_SECS`] (several SMTP timeouts). Failures back off exponentially ([`backoff_secs`]) and are
//! given up after [`MAX_ATTEMPTS`], with a log line.

use std::time::Duration;

use lettre::message::Mailbox;

use super::store::{self, OutboxRow};
use super::transport::{SendError, Transport, build_message};
use super::{Mail, Mailer};
use crate::clock::Clock;
use crate::db::Database;
use crate::jobs::outbox::{Outbox, Worker};

/// How often the loop looks for due mail without being woken.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long a claimed message stays leased to the sending process (several SMTP timeouts).
pub const LEASE_SECS: i64 = 120;
/// Failed attempts after which a message is given up.
pub const MAX_ATTEMPTS: i64 = 20;
/// Delay before the first retry; doubled for each further failure.
const FIRST_BACKOFF_SECS: i64 = 5;
/// Longest delay between two attempts.
const MAX_BACKOFF_SECS: i64 = 10 * 60;
/// Longest stored error text.
const MAX_ERROR_CHARS: usize = 500;

/// Delay after the `attempts`-th failure: 5 s, 10 s, 20 s, ... capped at 10 minutes.
pub fn backoff_secs(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    FIRST_BACKOFF_SECS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_BACKOFF_SECS)
}

/// What the loop needs, cloned out of `AppState`.
#[derive(Debug, Clone)]
pub struct Deliverer {
    /// Where mail goes.
    pub transport: Transport,
    /// The outbox's database.
    pub db: Database,
    /// Source of "now" (tests move it to make retries due).
    pub clock: Clock,
    /// The `From` of every message.
    pub from: Mailbox,
}

impl Deliverer {
    /// The deliverer of a server: its configured transport, database, clock and sender.
    pub fn from_state(state: &crate::app::AppState) -> anyhow::Result<Deliverer> {
        Ok(Deliverer {
            transport: Transport::from_config(&state.config)?,
            db: state.db.clone(),
            clock: state.clock.clone(),
            from: state.config.mail_from.clone(),
        })
    }

    /// Sends one claimed message and records the outcome; true when it was handed over.
    async fn send(&self, row: OutboxRow) -> Result<bool, sqlx::Error> {
        let mail = Mail {
            to: row.to_address.clone(),
            subject: row.subject.clone(),
            text: row.text_body.clone(),
            html: row.html_body.clone(),
        };
        let outcome = match build_message(&self.from, &mail, row.created_at) {
            Ok(message) => self.transport.send(message).await,
            Err(e) => Err(e),
        };
        let now = self.clock.now();
        match outcome {
            Ok(()) => {
                store::mark_sent(&self.db.pool, &row.id, now).await?;
                crate::metrics::mail_sent();
                tracing::info!(mail_id = %row.id, subject = %row.subject, "mail handed over");
                Ok(true)
            }
            Err(err) => {
                let attempts = match err {
                    SendError::Permanent(_) => MAX_ATTEMPTS,
                    SendError::Temporary(_) => row.attempts + 1,
                };
                let text: String = err.to_string().chars().take(MAX_ERROR_CHARS).collect();
                let next = now + backoff_secs(attempts);
                store::mark_failed(&self.db.pool, &row.id, attempts, MAX_ATTEMPTS, &text, next)
                    .await?;
                crate::metrics::mail_failed();
                if attempts >= MAX_ATTEMPTS {
                    tracing::error!(mail_id = %row.id, attempts, error = %text, "mail given up");
                } else {
                    tracing::warn!(mail_id = %row.id, attempts, retry_in_secs = next - now,
                        error = %text, "mail delivery failed; will retry");
                }
                Ok(false)
            }
        }
    }
}

impl Outbox for Deliverer {
    type Row = OutboxRow;
    const NAME: &'static str = "mail_outbox";
    const LEASE_SECS: i64 = LEASE_SECS;

    fn now(&self) -> i64 {
        self.clock.now()
    }

    async fn due(&self, now: i64, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        store::due(&self.db.pool, now, MAX_ATTEMPTS, limit).await
    }

    async fn claim(
        &self,
        id: &str,
        now: i64,
        until: i64,
    ) -> Result<Option<OutboxRow>, sqlx::Error> {
        store::claim(&self.db.pool, id, now, until).await
    }

    async fn deliver(&self, row: OutboxRow) -> Result<bool, sqlx::Error> {
        self.send(row).await
    }
}

/// Starts this process's mail loop: woken by `mailer`, polling every [`POLL_EVERY`].
pub fn start(deliverer: Deliverer, mailer: Mailer) -> Worker {
    Worker::start(deliverer, POLL_EVERY, move || {
        let mailer = mailer.clone();
        async move { mailer.woken().await }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_secs(1), 5);
        assert_eq!(backoff_secs(2), 10);
        assert_eq!(backoff_secs(3), 20);
        assert_eq!(backoff_secs(8), 600);
        assert_eq!(backoff_secs(100), 600);
        assert_eq!(backoff_secs(0), 5);
    }
}
