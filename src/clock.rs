//! Time, injectable so that expiry and rotation can be tested without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The source of "now" for everything time-dependent (code expiry, key rotation, purges).
///
/// Production uses the system clock; tests may shift it forward with [`Clock::advance`] and stop it
/// with [`Clock::freeze`] (short delays, such as login throttling's first second, then do not lapse
/// while a slow test runs).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
    /// The system time the clock stopped at (0: running).
    frozen_at: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Seconds since the Unix epoch (UTC), as stored in the database.
    pub fn now(&self) -> i64 {
        let base = match self.frozen_at.load(Ordering::Relaxed) {
            0 => system_now(),
            frozen => frozen,
        };
        base.saturating_add(self.offset_secs.load(Ordering::Relaxed))
    }

    /// Stops this clock (and every clone of it) at the current system time; [`Clock::advance`] still
    /// moves it. For tests.
    pub fn freeze(&self) {
        self.frozen_at.store(system_now(), Ordering::Relaxed);
    }

    /// How far this clock is ahead of the system clock, in seconds (0 in production). Code handed
    /// system times by a library (tower-sessions' session expiry) adds it to get this clock's time.
    pub fn offset(&self) -> i64 {
        self.offset_secs.load(Ordering::Relaxed)
    }

    /// Moves this clock (and every clone of it) forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}

/// The system time in Unix seconds.
fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Converts a configured duration to whole seconds for the database.
pub fn secs(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}
