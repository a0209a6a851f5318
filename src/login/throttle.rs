//! Throttling of failed sign-ins and failed client authentications (OWASP Authentication Cheat
//! Sheet, "Login Throttling" and "Device Cookies"; NIST SP 800-63B §5.2.2, "Rate Limiting
//! (Throttling)": no permanent lockout, at most 100 consecutive failures per account).
//!
//! Failures are counted per [`Key`] in `login_throttles`, in the database, so every process agrees
//! and a restart forgets nothing. Two rules:
//! - [`Rule::Doubling`] (an account, an unknown typed email, a known browser of an account, a client
//!   id): the first [`FREE_FAILURES`] - 1 failures cost nothing; the [`FREE_FAILURES`]th and each one
//!   after it block the key for a delay that doubles (1 s, 2 s, 4 s, ... at most [`MAX_DELAY_SECS`]).
//!   The count is forgotten [`WINDOW_SECS`] after the last failure or the end of its delay, and a
//!   success clears it.
//! - [`Rule::Window`] (a client address, IPv6 per /64): at most [`ADDRESS_MAX_FAILURES`] failures per
//!   fixed [`WINDOW_SECS`] window, then blocked until the window ends.
//!
//! Sign-ins are counted pessimistically ([`admit`]): a read-only [`blocked`] check refuses a blocked
//! attempt before it even waits for a hashing slot; once the login holds a slot, one transaction locks
//! each key's row (an upsert, in key order so two attempts cannot deadlock), refuses a key blocked
//! meanwhile, and otherwise counts a failure at once; a success then takes it back
//! ([`settle_success`]). A request shed for want of a slot (503) thus never counts. So concurrent attempts, in one process or several on one PostgreSQL, can
//! never get more guesses through than the limits allow. Client secrets are 256-bit random values
//! checked by one SHA-256, so client authentication checks the secret first and touches the counters
//! only after a failure ([`counters`], then [`count_failure`]): a successful token request reads and
//! writes nothing here.

use std::borrow::Cow;

use super::store::{self, Counter};
use crate::crypto::tokens::TokenHash;
use crate::db::{Exec, Pool, Tx};

/// Length of the counting window, and how long a count is kept after the last failure's delay.
pub const WINDOW_SECS: i64 = 15 * 60;
/// The failure (per account, browser or client id) from which each failure blocks the key.
pub const FREE_FAILURES: i64 = 5;
/// Longest delay of the doubling rule.
pub const MAX_DELAY_SECS: i64 = 15 * 60;
/// Failures per address (IPv6: per /64) and window before the address is blocked.
pub const ADDRESS_MAX_FAILURES: i64 = 100;

/// How a key is throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// [`FREE_FAILURES`], then a doubling delay after each failure.
    Doubling,
    /// [`ADDRESS_MAX_FAILURES`] per fixed window.
    Window,
}

/// What a counter is about, as recorded in `login.throttled` / `client_auth.throttled` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// An account or an unknown typed email (they behave the same).
    Account,
    /// A browser known to the account (its device cookie).
    Device,
    /// A client address.
    Address,
    /// An OAuth client id.
    Client,
}

impl Scope {
    /// The name in audit details.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Device => "device",
            Scope::Address => "address",
            Scope::Client => "client",
        }
    }
}

/// One counter: its row key, rule and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Primary key in `login_throttles`; attacker-chosen text (emails, client ids) is hashed.
    pub name: String,
    /// How it is throttled.
    pub rule: Rule,
    /// What it counts.
    pub scope: Scope,
}

impl Key {
    fn new(name: String, rule: Rule, scope: Scope) -> Key {
        Key { name, rule, scope }
    }

    /// An existing account.
    pub fn account(user_id: &str) -> Key {
        Key::new(format!("account:{user_id}"), Rule::Doubling, Scope::Account)
    }

    /// An email with no account, normalised (trimmed, lower case) so spellings share the count.
    pub fn unknown_email(email: &str) -> Key {
        let normalised = email.trim().to_lowercase();
        let hash = TokenHash::of(&normalised);
        Key::new(
            format!("email:{}", hash.as_str()),
            Rule::Doubling,
            Scope::Account,
        )
    }

    /// A browser (device-cookie hash) that signed in to `user_id` before.
    pub fn device(user_id: &str, device_hash: &str) -> Key {
        let name = format!("device:{user_id}:{device_hash}");
        Key::new(name, Rule::Doubling, Scope::Device)
    }

    /// Sign-ins from one address ([`crate::web::client_addr::limit_key`]).
    pub fn login_address(limit_key: &str) -> Key {
        Key::new(
            format!("login-ip:{limit_key}"),
            Rule::Window,
            Scope::Address,
        )
    }

    /// Authentications of one client id (as presented).
    pub fn client(client_id: &str) -> Key {
        let hash = TokenHash::of(client_id);
        Key::new(
            format!("client:{}", hash.as_str()),
            Rule::Doubling,
            Scope::Client,
        )
    }

    /// Client authentications from one address.
    pub fn client_address(limit_key: &str) -> Key {
        Key::new(
            format!("client-ip:{limit_key}"),
            Rule::Window,
            Scope::Address,
        )
    }
}

/// The prefix of every device key of `user_id`, for clearing them all.
pub fn device_prefix(user_id: &str) -> String {
    format!("device:{user_id}:")
}

/// A refused attempt: how long to wait and which limit refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until an attempt is accepted again (`Retry-After`, RFC 9110 §10.2.3).
    pub retry_after: i64,
    /// The limit with the longest wait.
    pub scope: Scope,
}

/// The doubling delay after the `failures`th failure (none before [`FREE_FAILURES`]).
fn delay(failures: i64) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let doublings = u32::try_from(failures - FREE_FAILURES).unwrap_or(u32::MAX);
    1_i64
        .checked_shl(doublings)
        .filter(|d| *d > 0)
        .map_or(MAX_DELAY_SECS, |d| d.min(MAX_DELAY_SECS))
}

/// The counter after one more failure at `now`.
pub fn after_failure(rule: Rule, c: Counter, now: i64) -> Counter {
    let expired = c.window_ends_at <= now;
    match rule {
        Rule::Doubling => {
            let failures = if expired { 1 } else { c.failures + 1 };
            let blocked_until = match delay(failures) {
                0 => 0,
                d => now + d,
            };
            Counter {
                failures,
                window_ends_at: blocked_until.max(now) + WINDOW_SECS,
                blocked_until,
            }
        }
        Rule::Window => {
            let (failures, window_ends_at) = if expired {
                (1, now + WINDOW_SECS)
            } else {
                (c.failures + 1, c.window_ends_at)
            };
            let blocked_until = if failures >= ADDRESS_MAX_FAILURES {
                window_ends_at
            } else {
                0
            };
            Counter {
                failures,
                window_ends_at,
                blocked_until,
            }
        }
    }
}

/// The counter after a success took back a failure [`admit`] counted; `None`: forget the key.
fn after_success(rule: Rule, c: Counter) -> Option<Counter> {
    match rule {
        Rule::Doubling => None,
        Rule::Window => {
            let failures = (c.failures - 1).max(0);
            let blocked_until = if failures >= ADDRESS_MAX_FAILURES {
                c.blocked_until
            } else {
                0
            };
            Some(Counter {
                failures,
                blocked_until,
                ..c
            })
        }
    }
}

/// The longest wait among `counters` at `now`, if any is blocked.
pub fn longest_wait<'a>(
    counters: impl Iterator<Item = (&'a Key, Counter)>,
    now: i64,
) -> Option<Throttled> {
    counters
        .filter(|(_, c)| c.blocked_until > now)
        .map(|(key, c)| Throttled {
            retry_after: c.blocked_until - now,
            scope: key.scope,
        })
        .max_by_key(|t| t.retry_after)
}

/// `keys` sorted by row key: every transaction locks rows in the same order (no deadlock).
fn in_lock_order(keys: &[Key]) -> Vec<&Key> {
    let mut sorted: Vec<&Key> = keys.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    sorted.dedup_by(|a, b| a.name == b.name);
    sorted
}

/// Inside the attempt's transaction, before any password is checked: refuses the attempt when a key
/// is blocked (nothing counted), else counts a failure on every key (see the module doc).
pub async fn admit(tx: &mut Tx, keys: &[Key], now: i64) -> Result<Option<Throttled>, sqlx::Error> {
    let mut locked = Vec::new();
    for key in in_lock_order(keys) {
        locked.push((key, store::lock_throttle(&mut **tx, &key.name, now).await?));
    }
    if let Some(throttled) = longest_wait(locked.iter().map(|(k, c)| (*k, *c)), now) {
        return Ok(Some(throttled));
    }
    for (key, counter) in locked {
        let next = after_failure(key.rule, counter, now);
        store::save_throttle(&mut **tx, &key.name, &next).await?;
    }
    Ok(None)
}

/// After a sign-in [`admit`]ted on `keys` succeeded: clears the doubling counters (account, browser)
/// and takes the failure back from the address counter.
pub async fn settle_success(tx: &mut Tx, keys: &[Key], now: i64) -> Result<(), sqlx::Error> {
    for key in in_lock_order(keys) {
        let counter = store::lock_throttle(&mut **tx, &key.name, now).await?;
        match after_success(key.rule, counter) {
            Some(next) => store::save_throttle(&mut **tx, &key.name, &next).await?,
            None => store::delete_throttle(&mut **tx, &key.name).await?,
        }
    }
    Ok(())
}

/// Read-only: whether one of `keys` is blocked at `now` (a cheap refusal before anything waits for
/// a hashing slot; [`admit`] decides again under the row locks).
pub async fn blocked(
    pool: &Pool,
    keys: &[Key],
    now: i64,
) -> Result<Option<Throttled>, sqlx::Error> {
    let found = counters(pool, keys).await?;
    Ok(longest_wait(found.into_iter(), now))
}

/// Read-only, before a client secret is verified: the counters `keys` have (see [`longest_wait`]).
pub async fn counters<'k>(
    pool: &Pool,
    keys: &'k [Key],
) -> Result<Vec<(&'k Key, Counter)>, sqlx::Error> {
    let mut found = Vec::new();
    for key in keys {
        if let Some(counter) = store::read_throttle(pool, &key.name).await? {
            found.push((key, counter));
        }
    }
    Ok(found)
}

/// Counts one failure on every key, in one transaction (client authentication).
pub async fn count_failure(tx: &mut Tx, keys: &[Key], now: i64) -> Result<(), sqlx::Error> {
    for key in in_lock_order(keys) {
        let counter = store::lock_throttle(&mut **tx, &key.name, now).await?;
        let next = after_failure(key.rule, counter, now);
        store::save_throttle(&mut **tx, &key.name, &next).await?;
    }
    Ok(())
}

/// Forgets the account's counter and those of its known browsers (a successful password reset).
pub async fn clear_account<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<(), sqlx::Error> {
    let account = Key::account(user_id);
    store::delete_account_throttles(ex, &account.name, &device_prefix(user_id)).await
}

/// A description of the wait for people: "1 second", "15 minutes".
pub fn wait_text(secs: i64) -> Cow<'static, str> {
    match secs {
        ..=1 => Cow::Borrowed("1 second"),
        2..=90 => Cow::Owned(format!("{secs} seconds")),
        _ => Cow::Owned(format!("{} minutes", (secs + 59) / 60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: Counter = Counter {
        failures: 0,
        window_ends_at: 0,
        blocked_until: 0,
    };

    #[test]
    fn doubling_starts_at_the_fifth_failure_and_is_capped() {
        let now = 1_000;
        let mut c = FRESH;
        let mut delays = Vec::new();
        for _ in 0..20 {
            c = after_failure(Rule::Doubling, c, now);
            delays.push(if c.blocked_until == 0 {
                0
            } else {
                c.blocked_until - now
            });
        }
        assert_eq!(&delays[..8], &[0, 0, 0, 0, 1, 2, 4, 8]);
        assert_eq!(delays[13], 512);
        assert_eq!(delays[14], MAX_DELAY_SECS);
        assert_eq!(delays[19], MAX_DELAY_SECS);
        assert_eq!(delay(i64::MAX), MAX_DELAY_SECS);
        // Forgotten a window after the delay ends, not before.
        let later = after_failure(Rule::Doubling, c, c.blocked_until + WINDOW_SECS - 1);
        assert_eq!(later.failures, 21);
        let forgotten = after_failure(Rule::Doubling, c, c.blocked_until + WINDOW_SECS);
        assert_eq!(forgotten.failures, 1);
        assert_eq!(forgotten.blocked_until, 0);
    }

    #[test]
    fn the_address_window_allows_a_hundred() {
        let mut c = FRESH;
        for i in 1..ADDRESS_MAX_FAILURES {
            c = after_failure(Rule::Window, c, 1_000 + i);
            assert_eq!(c.blocked_until, 0);
        }
        c = after_failure(Rule::Window, c, 1_500);
        assert_eq!(c.failures, ADDRESS_MAX_FAILURES);
        assert_eq!(c.blocked_until, 1_001 + WINDOW_SECS);
        assert_eq!(after_failure(Rule::Window, c, c.window_ends_at).failures, 1);
        let back = after_success(Rule::Window, c).unwrap_or(FRESH);
        assert_eq!(
            (back.failures, back.blocked_until),
            (ADDRESS_MAX_FAILURES - 1, 0)
        );
        assert!(after_success(Rule::Doubling, c).is_none());
    }

    #[test]
    fn keys_hash_what_callers_type() {
        assert_eq!(
            Key::unknown_email(" Bob@Example.com"),
            Key::unknown_email("bob@example.com")
        );
        assert!(!Key::unknown_email("bob@example.com").name.contains('@'));
        assert_ne!(Key::client("a").name, Key::client("b").name);
        assert!(
            Key::device("u1", "h")
                .name
                .starts_with(&device_prefix("u1"))
        );
        assert_eq!(wait_text(1), "1 second");
        assert_eq!(wait_text(8), "8 seconds");
        assert_eq!(wait_text(900), "15 minutes");
    }
}
