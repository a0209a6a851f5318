//! Password hashing with Argon2id, off the async threads and bounded in flight.
//!
//! Why this shape:
//!
//! * **Algorithm and cost.** The [OWASP Password Storage Cheat Sheet] recommends
//!   Argon2id ([RFC 9106]) with at least 19 MiB of memory, 2 iterations and 1
//!   degree of parallelism. Those minimums are used for every new hash; hashes
//!   are stored as self-describing PHC strings so the parameters can be raised
//!   later and old hashes still verify (see [`needs_rehash`]).
//! * **Never on the runtime threads.** One hash costs tens of milliseconds of
//!   CPU and 19 MiB of RAM. Running it inline would stall every other request
//!   on that Tokio worker, so hashing happens in
//!   [`tokio::task::spawn_blocking`].
//! * **Bounded in flight.** A login burst (or a password-spraying attack) could
//!   otherwise queue hundreds of 19 MiB hashes on the blocking pool. A
//!   semaphore caps concurrent hashes (by default at the number of CPUs);
//!   further callers wait asynchronously, but only for a bounded time
//!   ([`DEFAULT_MAX_WAIT`] unless configured): past it they get
//!   [`CryptoError::Busy`], which every caller answers with 503 and
//!   `Retry-After` (RFC 9110 §15.6.4), so a flood is shed instead of queueing
//!   requests, memory and latency without end. The permit is moved into the blocking
//!   task, so it is released only when the hash has really finished, even if
//!   the caller's future is dropped.
//! * **No account enumeration by timing.** Verifying a login for an unknown user
//!   (or one without a password) still runs a full Argon2id verification, against
//!   a dummy hash computed at start-up, and then answers `false` (OWASP
//!   Authentication Cheat Sheet, "Authentication Responses").
//! * **No accidental logging.** [`Password`] has a redacting `Debug`; errors and
//!   warnings never include the password.
//!
//! [OWASP Password Storage Cheat Sheet]: https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#argon2id
//! [RFC 9106]: https://www.rfc-editor.org/rfc/rfc9106

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::CryptoError;

/// Argon2id memory cost in KiB (19 MiB): the OWASP minimum.
pub const ARGON2_M_COST_KIB: u32 = 19_456;
/// Argon2id number of passes over memory: the OWASP minimum for 19 MiB.
pub const ARGON2_T_COST: u32 = 2;
/// Argon2id degree of parallelism (lanes): the OWASP recommendation.
pub const ARGON2_P_COST: u32 = 1;
/// Longest wait for a hashing slot when none is configured (`LATCHKEY_PASSWORD_HASH_WAIT`).
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(5);
/// Minimum password length, in Unicode scalar values (NIST SP 800-63B §5.1.1.2
/// and OWASP Authentication Cheat Sheet both ask for at least 8).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Maximum password length, in UTF-8 bytes. Long passphrases are welcome, but
/// an unbounded input would let a client make the server hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A plaintext password, kept out of logs.
///
/// A zero-cost newtype over `String` whose `Debug` prints `Password(***)`, so
/// a password that ends up in a `tracing` field or a `{:?}` is not disclosed.
/// Use [`Password::expose`] at the one place that needs the characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a plaintext password.
    pub fn new(password: String) -> Self {
        Self(password)
    }

    /// Returns the plaintext; call only where the password is actually needed.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in Unicode scalar values (what a user would call characters).
    pub fn len_chars(&self) -> usize {
        self.0.chars().count()
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Self(password)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Why a new password was rejected by [`check_policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("password must be at least {} characters", MIN_PASSWORD_CHARS)]
    TooShort,
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    #[error("password must be at most {} bytes", MAX_PASSWORD_BYTES)]
    TooLong,
}

/// Checks a *new* password against the policy: at least
/// [`MIN_PASSWORD_CHARS`] characters and at most [`MAX_PASSWORD_BYTES`] bytes.
///
/// Following NIST SP 800-63B there are no composition rules (mandatory digits,
/// symbols, …): length is what matters.
pub fn check_policy(p: &Password) -> Result<(), PasswordPolicyError> {
    if p.expose().len() > MAX_PASSWORD_BYTES {
        return Err(PasswordPolicyError::TooLong);
    }
    if p.len_chars() < MIN_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooShort);
    }
    Ok(())
}

/// Whether a stored PHC string should be replaced by a fresh hash at the next
/// successful login: it is not Argon2id, or weaker than the current
/// parameters, or cannot be parsed.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return true;
    }
    match Params::try_from(&parsed) {
        Ok(p) => {
            p.m_cost() < ARGON2_M_COST_KIB
                || p.t_cost() < ARGON2_T_COST
                || p.p_cost() < ARGON2_P_COST
        }
        Err(_) => true,
    }
}

/// Argon2id password hasher with a bounded number of hashes in flight.
///
/// Cheap to clone (an `Arc` inside): build one at start-up and share it.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    /// Longest wait for a permit before [`CryptoError::Busy`].
    max_wait: Duration,
    argon2: Argon2<'static>,
    /// PHC hash of a random password, verified against for unknown users. Computed on first use on
    /// a blocking thread, so start-up stays fast and small.
    dummy_phc: std::sync::OnceLock<Option<String>>,
}

impl PasswordHasher {
    /// Creates a hasher allowing at most `max_in_flight` concurrent hashes
    /// (clamped to at least 1), whose callers wait at most [`DEFAULT_MAX_WAIT`].
    ///
    /// Cheap: the dummy hash for unknown users is computed on first use.
    pub fn new(max_in_flight: usize) -> Self {
        Self::with_limits(max_in_flight, DEFAULT_MAX_WAIT)
    }

    /// Creates a hasher allowing at most `max_in_flight` concurrent hashes
    /// (clamped to at least 1), whose callers wait at most `max_wait` for a
    /// slot and then get [`CryptoError::Busy`].
    pub fn with_limits(max_in_flight: usize, max_wait: Duration) -> Self {
        let max_in_flight = max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        let argon2 = argon2_owasp();
        Self {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(max_in_flight)),
                max_in_flight,
                max_wait,
                argon2,
                dummy_phc: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Hashes a password into a PHC string
    /// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) with a fresh random
    /// 128-bit salt.
    ///
    /// Waits for a permit (at most the configured time, then
    /// [`CryptoError::Busy`]), then hashes on the blocking thread pool.
    pub async fn hash(&self, password: &Password) -> Result<String, CryptoError> {
        let permit = self.acquire().await?;
        let inner = Arc::clone(&self.inner);
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_blocking(&inner.argon2, password.expose().as_bytes())
        })
        .await
        .map_err(|e| CryptoError::Hashing(format!("hashing task failed: {e}")))?
    }

    /// Verifies a password against a stored PHC string: [`PasswordHasher::reserve`] then
    /// [`HashSlot::verify`].
    ///
    /// `Err` is only returned when no slot was free in time
    /// ([`CryptoError::Busy`]) or the blocking task itself failed.
    pub async fn verify(
        &self,
        password: &Password,
        phc: Option<&str>,
    ) -> Result<bool, CryptoError> {
        self.reserve().await?.verify(password, phc).await
    }

    /// Reserves a hashing slot (waiting at most the configured time, then [`CryptoError::Busy`]),
    /// for a caller that must know the work will run before it commits to it: the login counts an
    /// attempt against the throttle only once its verification is sure to happen, so that a request
    /// shed with 503 never counts as a failed sign-in.
    pub async fn reserve(&self) -> Result<HashSlot, CryptoError> {
        Ok(HashSlot {
            permit: self.acquire().await?,
            inner: Arc::clone(&self.inner),
        })
    }

    /// Computes the dummy hash now (blocking; call from `spawn_blocking` at start-up) so that the first
    /// login of an unknown email takes no longer than any other.
    pub fn warm_up(&self) {
        self.inner
            .dummy_phc
            .get_or_init(|| self.inner.compute_dummy());
    }

    /// The configured maximum number of concurrent hashes.
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight
    }

    /// Hashes running now (each holds a permit until its blocking task ends).
    pub fn in_flight(&self) -> usize {
        self.inner.max_in_flight - self.inner.permits.available_permits()
    }

    /// A permit, waited for at most `max_wait`: beyond that the server is
    /// overloaded and the caller should shed the request (OWASP Denial of
    /// Service Cheat Sheet, "limit queue lengths").
    async fn acquire(&self) -> Result<OwnedSemaphorePermit, CryptoError> {
        let permits = Arc::clone(&self.inner.permits);
        match tokio::time::timeout(self.inner.max_wait, permits.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(CryptoError::Hashing(
                "password hasher is shut down".to_owned(),
            )),
            Err(_) => {
                tracing::warn!(
                    max_in_flight = self.inner.max_in_flight,
                    "no password-hashing slot free in time; request shed"
                );
                Err(CryptoError::Busy)
            }
        }
    }
}

/// A reserved hashing slot ([`PasswordHasher::reserve`]); dropping it frees the slot.
pub struct HashSlot {
    permit: OwnedSemaphorePermit,
    inner: Arc<Inner>,
}

impl HashSlot {
    /// Verifies a password against a stored PHC string on the blocking pool, in this slot.
    ///
    /// * `phc = None` (unknown user, or a user without a password): a full
    ///   verification against the dummy hash is still performed, then `false`
    ///   is returned, so the response time does not reveal whether the account
    ///   exists.
    /// * A malformed or unsupported PHC string yields `Ok(false)` and a
    ///   warning (without the password).
    pub async fn verify(self, password: &Password, phc: Option<&str>) -> Result<bool, CryptoError> {
        let HashSlot { permit, inner } = self;
        let password = password.clone();
        let phc = phc.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.verify_blocking(password.expose().as_bytes(), phc.as_deref())
        })
        .await
        .map_err(|e| CryptoError::Hashing(format!("verification task failed: {e}")))
    }
}

impl fmt::Debug for HashSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashSlot")
    }
}

impl Default for PasswordHasher {
    /// One hash in flight per available CPU.
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cpus)
    }
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("max_in_flight", &self.inner.max_in_flight)
            .field("available", &self.inner.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn verify_blocking(&self, password: &[u8], phc: Option<&str>) -> bool {
        match phc {
            None => {
                self.burn_equivalent_time(password);
                false
            }
            Some(phc) => match PasswordHash::new(phc) {
                Ok(parsed) => match self.argon2.verify_password(password, &parsed) {
                    Ok(()) => true,
                    Err(argon2::password_hash::Error::Password) => false,
                    Err(err) => {
                        tracing::warn!(error = %err, "stored password hash could not be verified");
                        false
                    }
                },
                Err(err) => {
                    tracing::warn!(error = %err, "malformed stored password hash");
                    self.burn_equivalent_time(password);
                    false
                }
            },
        }
    }

    /// Hashes a random password with our parameters (once per process).
    fn compute_dummy(&self) -> Option<String> {
        let mut dummy_password = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut dummy_password);
        match hash_blocking(&self.argon2, &dummy_password) {
            Ok(phc) => Some(phc),
            Err(err) => {
                // Not expected with constant parameters. Unknown users then pay
                // for a fresh hash instead, which costs the same time.
                tracing::error!(error = %err, "could not compute the dummy password hash");
                None
            }
        }
    }

    /// Spends the time of a real verification; the result is discarded.
    fn burn_equivalent_time(&self, password: &[u8]) {
        let dummy = self
            .dummy_phc
            .get_or_init(|| self.compute_dummy())
            .as_deref()
            .map(PasswordHash::new);
        match dummy {
            Some(Ok(dummy)) => {
                let _ = self.argon2.verify_password(password, &dummy);
            }
            _ => {
                let _ = hash_blocking(&self.argon2, password);
            }
        }
    }
}

/// The Argon2id instance with the OWASP parameters.
fn argon2_owasp() -> Argon2<'static> {
    let params = Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None)
        .unwrap_or_else(|_| Params::default());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(argon2: &Argon2<'_>, password: &[u8]) -> Result<String, CryptoError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| CryptoError::Hashing(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    /// One shared hasher: building one costs a (slow, in debug builds) hash.
    fn hasher() -> &'static PasswordHasher {
        static H: OnceLock<PasswordHasher> = OnceLock::new();
        H.get_or_init(|| PasswordHasher::new(2))
    }

    fn pw(s: &str) -> Password {
        Password::new(s.to_owned())
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let h = hasher();
        let phc = h.hash(&pw("correct horse battery")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!needs_rehash(&phc));
        assert!(
            h.verify(&pw("correct horse battery"), Some(&phc))
                .await
                .unwrap()
        );
        assert!(
            !h.verify(&pw("correct horse battery!"), Some(&phc))
                .await
                .unwrap()
        );
        // Fresh salt each time.
        let phc2 = h.hash(&pw("correct horse battery")).await.unwrap();
        assert_ne!(phc, phc2);
    }

    #[tokio::test]
    async fn unknown_user_and_malformed_hash_are_false() {
        let h = hasher();
        assert!(!h.verify(&pw("whatever1"), None).await.unwrap());
        assert!(
            !h.verify(&pw("whatever1"), Some("not a phc string"))
                .await
                .unwrap()
        );
        assert!(!h.verify(&pw("whatever1"), Some("")).await.unwrap());
        assert!(needs_rehash("not a phc string"));
    }

    #[tokio::test]
    async fn semaphore_bounds_concurrency() {
        let h = PasswordHasher::new(1);
        assert_eq!(h.max_in_flight(), 1);
        // Two concurrent hashes with a single permit both complete.
        let (p1, p2) = (pw("first password"), pw("second password"));
        let (a, b) = tokio::join!(h.hash(&p1), h.hash(&p2));
        assert!(
            h.verify(&pw("first password"), Some(&a.unwrap()))
                .await
                .unwrap()
        );
        assert!(
            h.verify(&pw("second password"), Some(&b.unwrap()))
                .await
                .unwrap()
        );
        assert_eq!(h.inner.permits.available_permits(), 1);

        // While the only permit is held elsewhere, a hash does not even start:
        // it stays unfinished for several times the duration of a real hash.
        let started = std::time::Instant::now();
        let p3 = pw("third one");
        h.hash(&p3).await.unwrap();
        let wait = (started.elapsed() * 4).max(Duration::from_millis(500));
        let held = Arc::clone(&h.inner.permits).acquire_owned().await.unwrap();
        let h2 = h.clone();
        let task = tokio::spawn(async move { h2.hash(&p3).await });
        tokio::time::sleep(wait).await;
        assert!(!task.is_finished(), "hash ran without a permit");
        drop(held);
        assert!(task.await.unwrap().is_ok());
        assert_eq!(h.inner.permits.available_permits(), 1);
        assert_eq!(PasswordHasher::new(0).max_in_flight(), 1);
    }

    #[tokio::test]
    async fn a_caller_waits_at_most_max_wait_then_is_told_busy() {
        let h = PasswordHasher::with_limits(1, Duration::from_millis(50));
        let held = Arc::clone(&h.inner.permits).acquire_owned().await.unwrap();
        assert_eq!(h.in_flight(), 1);
        let err = h.hash(&pw("a passphrase here")).await.unwrap_err();
        assert!(matches!(err, CryptoError::Busy), "{err}");
        let err = h.verify(&pw("a passphrase here"), None).await.unwrap_err();
        assert!(matches!(err, CryptoError::Busy), "{err}");
        drop(held);
        assert_eq!(h.in_flight(), 0);
        assert!(h.hash(&pw("a passphrase here")).await.is_ok());
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = pw("hunter22hunter22");
        assert_eq!(format!("{p:?}"), "Password(***)");
        assert!(!format!("{:?}", Some(&p)).contains("hunter"));
        assert_eq!(p.expose(), "hunter22hunter22");
    }

    #[test]
    fn policy() {
        assert_eq!(
            check_policy(&pw("short")),
            Err(PasswordPolicyError::TooShort)
        );
        assert_eq!(
            PasswordPolicyError::TooShort.to_string(),
            "password must be at least 8 characters"
        );
        assert!(check_policy(&pw("eightchr")).is_ok());
        // 7 characters but 14 bytes: still too short.
        let seven = pw("ééééééé");
        assert_eq!(seven.len_chars(), 7);
        assert_eq!(check_policy(&seven), Err(PasswordPolicyError::TooShort));
        assert!(check_policy(&pw(&"a".repeat(MAX_PASSWORD_BYTES))).is_ok());
        assert_eq!(
            check_policy(&pw(&"a".repeat(MAX_PASSWORD_BYTES + 1))),
            Err(PasswordPolicyError::TooLong)
        );
    }
}
