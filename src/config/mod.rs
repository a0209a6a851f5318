//! Configuration from the environment.
//!
//! Latchkey is configured only through `LATCHKEY_*` environment variables so
//! that it runs the same way under systemd, in containers and in the test
//! harness. Everything is parsed and validated once, at startup, into a typed
//! [`Config`]: a typo should stop the server with a one-line message naming
//! the variable, not surface later as a confusing runtime failure. Secrets
//! (database and SMTP passwords) are wrapped so that neither `Debug` nor an
//! error message can print them.
//!
//! | file | what lives there |
//! |---|---|
//! | `mod.rs` | [`Config`], its defaults, reading the environment, [`ConfigError`] |
//! | `values.rs` | the value types ([`SigningAlg`], [`SignupPolicy`], [`LogFormat`]) and the parsers of plain values |
//! | `secrets.rs` | values that may hold secrets ([`DatabaseUrl`], [`SmtpUrl`], the key-encryption key) and their redaction |
//! | `effective.rs` | the effective configuration, secrets redacted (`latchkey config check`) |

mod effective;
mod secrets;
#[cfg(test)]
mod tests;
mod values;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;

use crate::crypto::kek::KeyEncryptionKey;
use crate::web::client_addr::TrustedProxies;

pub use secrets::{DatabaseUrl, KEK_FILE_VAR, KEK_VAR, SMTP_TLS_OPTION, SmtpUrl, StartTls};
pub use values::{DynamicRegistration, LogFormat, SigningAlg, SignupPolicy, UnknownSigningAlg};

use secrets::{key_encryption_key, parse_db_url, parse_smtp_url, redact};
use values::{
    count, default_hash_concurrency, duration, parse_alg, parse_bind, parse_dns_server,
    parse_dynamic_registration, parse_issuer, parse_log_format, parse_mailbox, parse_on_off,
    parse_signup, parse_true_false, parse_trusted_proxies, positive_duration, retention,
};

/// Default for `LATCHKEY_ISSUER`.
pub const DEFAULT_ISSUER: &str = "http://localhost:8080";
/// Default for `LATCHKEY_BIND`.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Default for `LATCHKEY_DATABASE_URL`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://latchkey.db";
/// Default for `LATCHKEY_MAIL_DIR` (used when no SMTP server is configured).
pub const DEFAULT_MAIL_DIR: &str = "./mail";
/// Default for `LATCHKEY_MAIL_FROM`.
pub const DEFAULT_MAIL_FROM: &str = "Latchkey <no-reply@localhost>";
/// Default for `LATCHKEY_ACCESS_TOKEN_TTL`.
pub const DEFAULT_ACCESS_TOKEN_TTL: &str = "10m";
/// Default for `LATCHKEY_REFRESH_TOKEN_TTL`.
pub const DEFAULT_REFRESH_TOKEN_TTL: &str = "30d";
/// Default for `LATCHKEY_REFRESH_REUSE_GRACE`.
pub const DEFAULT_REFRESH_REUSE_GRACE: &str = "0s";
/// Default for `LATCHKEY_INVITE_TTL`.
pub const DEFAULT_INVITE_TTL: &str = "7d";
/// Default for `LATCHKEY_ACCESS_TOKEN_ALG`.
pub const DEFAULT_ACCESS_TOKEN_ALG: &str = "ES256";
/// Default for `LATCHKEY_ID_TOKEN_ALG`.
pub const DEFAULT_ID_TOKEN_ALG: &str = "RS256";
/// Default for `LATCHKEY_KEY_ROTATION`.
pub const DEFAULT_KEY_ROTATION: &str = "30d";
/// Default for `LATCHKEY_SIGNUP`.
pub const DEFAULT_SIGNUP: &str = "open";
/// Default for `LATCHKEY_LOG_FORMAT`.
pub const DEFAULT_LOG_FORMAT: &str = "text";
/// Default for `LATCHKEY_NEW_DEVICE_ALERTS`.
pub const DEFAULT_NEW_DEVICE_ALERTS: &str = "on";
/// Default for `LATCHKEY_ALLOW_INSECURE_UPSTREAMS`.
pub const DEFAULT_ALLOW_INSECURE_UPSTREAMS: &str = "false";

/// Default for `LATCHKEY_EMAIL_SIGNIN`.
pub const DEFAULT_EMAIL_SIGNIN: &str = "on";
/// Default for `LATCHKEY_DYNAMIC_REGISTRATION`.
pub const DEFAULT_DYNAMIC_REGISTRATION: &str = "off";

// Bounded resources (password hashing, connections, requests) and retention of the audit trail.
/// Default for `LATCHKEY_PASSWORD_HASH_WAIT`.
pub const DEFAULT_PASSWORD_HASH_WAIT: &str = "5s";
/// Default for `LATCHKEY_REQUEST_TIMEOUT`.
pub const DEFAULT_REQUEST_TIMEOUT: &str = "30s";
/// Default for `LATCHKEY_HEADER_READ_TIMEOUT`.
pub const DEFAULT_HEADER_READ_TIMEOUT: &str = "10s";
/// Default for `LATCHKEY_MAX_CONNECTIONS`.
pub const DEFAULT_MAX_CONNECTIONS: &str = "1024";
/// Default for `LATCHKEY_AUDIT_RETENTION`: a little over a year, so a yearly review still finds
/// last year's events.
pub const DEFAULT_AUDIT_RETENTION: &str = "400d";
/// Largest `LATCHKEY_PASSWORD_HASH_CONCURRENCY`: each hash holds 19 MiB.
const MAX_HASH_CONCURRENCY: usize = 1024;
/// Largest `LATCHKEY_MAX_CONNECTIONS`: about a process's default file-descriptor limit.
const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;

// Client addresses behind reverse proxies (attack resistance).
/// Default for `LATCHKEY_TRUSTED_PROXIES`: no proxy is trusted, the TCP peer is the client.
pub const DEFAULT_TRUSTED_PROXIES: &str = "";

/// The validated server configuration. Fields are public so tests can start
/// from [`Config::from_lookup`] and adjust what they need.
#[derive(Debug, Clone)]
pub struct Config {
    /// Issuer identifier (`iss`), exactly as configured; no trailing slash.
    pub issuer: String,
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// Database connection URL (SQLite or PostgreSQL).
    pub database_url: DatabaseUrl,
    /// SMTP server for outgoing mail; when unset, mail is written to `mail_dir`.
    pub smtp_url: Option<SmtpUrl>,
    /// Directory that receives mail as files when no SMTP server is set.
    pub mail_dir: PathBuf,
    /// Sender of all outgoing mail.
    pub mail_from: Mailbox,
    /// Lifetime of access tokens.
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_token_ttl: Duration,
    /// How long an already-rotated refresh token may still be presented
    /// without being treated as reuse (0 = never).
    pub refresh_reuse_grace: Duration,
    /// Lifetime of organization invitations.
    pub invite_ttl: Duration,
    /// Algorithm used to sign access tokens.
    pub access_token_alg: SigningAlg,
    /// Algorithm used to sign ID tokens.
    pub id_token_alg: SigningAlg,
    /// How often signing keys are rotated.
    pub key_rotation: Duration,
    /// Who may create an account.
    pub signup: SignupPolicy,
    /// Log output format.
    pub log_format: LogFormat,
    /// Whether a sign-in from a browser the account has not used before is mailed to its owner.
    pub new_device_alerts: bool,
    /// Whether people may sign in with a mailed link or code (`/login/email`) instead of a password.
    pub email_signin: bool,
    /// Whether clients may register themselves at `/register` (RFC 7591/7592).
    pub dynamic_registration: DynamicRegistration,
    /// The key-encryption key from `LATCHKEY_KEY_ENCRYPTION_KEY` or `LATCHKEY_KEY_ENCRYPTION_KEY_FILE`;
    /// `None` when neither is set (see `crypto::kek_file::resolve` for the fallback). Redacted in
    /// `Debug`.
    pub key_encryption_key: Option<KeyEncryptionKey>,

    // Bounded resources and retention.
    /// Longest wait for a password-hashing slot before the request is answered 503.
    pub password_hash_wait: Duration,
    /// Password hashes (Argon2id, 19 MiB each) computed at once; default: the number of CPUs.
    pub password_hash_concurrency: usize,
    /// Longest time a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Longest time a client may take to send a request's headers before it is disconnected.
    pub header_read_timeout: Duration,
    /// Connections served at once; further ones wait in the kernel's accept backlog.
    pub max_connections: usize,
    /// Age after which login history and audit events are deleted.
    pub audit_retention: Duration,

    // Client addresses behind reverse proxies (attack resistance).
    /// Peers whose `Forwarded` / `X-Forwarded-For` headers are believed (none by default).
    pub trusted_proxies: TrustedProxies,

    // Enterprise SSO (`crate::federation`).
    /// Whether upstream providers on a loopback address may be used, over plain http too (tests and
    /// development; never in production). Private and link-local addresses stay refused.
    pub allow_insecure_upstreams: bool,
    /// The DNS server that answers the verified-domain TXT lookups; `None`: the system's resolver.
    pub dns_server: Option<SocketAddr>,

    // Operations.
    /// Where `GET /metrics` (Prometheus text format) is served; `None`: no metrics at all. Never the
    /// public listener.
    pub metrics_bind: Option<SocketAddr>,
}

/// A configuration variable with an unusable value. `Display` is a single
/// line naming the variable, the (redacted) value and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {var}={value:?}: {reason}")]
pub struct ConfigError {
    /// The environment variable, e.g. `LATCHKEY_BIND`.
    pub var: &'static str,
    /// The offending value, with any password replaced by `***`.
    pub value: String,
    /// What was wrong or expected.
    pub reason: String,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        // Non-UTF-8 values are kept (lossily) so they fail validation instead
        // of silently falling back to the default.
        Config::from_lookup(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Builds the configuration from `lookup` (variable name → value).
    /// Values are trimmed; an empty value counts as unset and gets the default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env(&lookup);
        Ok(Config {
            issuer: env.get("LATCHKEY_ISSUER", DEFAULT_ISSUER, parse_issuer)?,
            bind: env.get("LATCHKEY_BIND", DEFAULT_BIND, parse_bind)?,
            database_url: env.get("LATCHKEY_DATABASE_URL", DEFAULT_DATABASE_URL, parse_db_url)?,
            smtp_url: env
                .raw("LATCHKEY_SMTP_URL")
                .map(|_| env.get("LATCHKEY_SMTP_URL", "", parse_smtp_url))
                .transpose()?,
            mail_dir: env.get("LATCHKEY_MAIL_DIR", DEFAULT_MAIL_DIR, |v| {
                Ok(PathBuf::from(v))
            })?,
            mail_from: env.get("LATCHKEY_MAIL_FROM", DEFAULT_MAIL_FROM, parse_mailbox)?,
            access_token_ttl: env.get(
                "LATCHKEY_ACCESS_TOKEN_TTL",
                DEFAULT_ACCESS_TOKEN_TTL,
                positive_duration,
            )?,
            refresh_token_ttl: env.get(
                "LATCHKEY_REFRESH_TOKEN_TTL",
                DEFAULT_REFRESH_TOKEN_TTL,
                positive_duration,
            )?,
            refresh_reuse_grace: env.get(
                "LATCHKEY_REFRESH_REUSE_GRACE",
                DEFAULT_REFRESH_REUSE_GRACE,
                duration,
            )?,
            invite_ttl: env.get("LATCHKEY_INVITE_TTL", DEFAULT_INVITE_TTL, positive_duration)?,
            access_token_alg: env.get(
                "LATCHKEY_ACCESS_TOKEN_ALG",
                DEFAULT_ACCESS_TOKEN_ALG,
                parse_alg,
            )?,
            id_token_alg: env.get("LATCHKEY_ID_TOKEN_ALG", DEFAULT_ID_TOKEN_ALG, parse_alg)?,
            key_rotation: env.get(
                "LATCHKEY_KEY_ROTATION",
                DEFAULT_KEY_ROTATION,
                positive_duration,
            )?,
            signup: env.get("LATCHKEY_SIGNUP", DEFAULT_SIGNUP, parse_signup)?,
            log_format: env.get("LATCHKEY_LOG_FORMAT", DEFAULT_LOG_FORMAT, parse_log_format)?,
            new_device_alerts: env.get(
                "LATCHKEY_NEW_DEVICE_ALERTS",
                DEFAULT_NEW_DEVICE_ALERTS,
                parse_on_off,
            )?,
            email_signin: env.get("LATCHKEY_EMAIL_SIGNIN", DEFAULT_EMAIL_SIGNIN, parse_on_off)?,
            dynamic_registration: env.get(
                "LATCHKEY_DYNAMIC_REGISTRATION",
                DEFAULT_DYNAMIC_REGISTRATION,
                parse_dynamic_registration,
            )?,
            key_encryption_key: key_encryption_key(&env)?,

            // Bounded resources and retention.
            password_hash_wait: env.get(
                "LATCHKEY_PASSWORD_HASH_WAIT",
                DEFAULT_PASSWORD_HASH_WAIT,
                positive_duration,
            )?,
            password_hash_concurrency: env.get(
                "LATCHKEY_PASSWORD_HASH_CONCURRENCY",
                &default_hash_concurrency(),
                |v| count(v, MAX_HASH_CONCURRENCY),
            )?,
            request_timeout: env.get(
                "LATCHKEY_REQUEST_TIMEOUT",
                DEFAULT_REQUEST_TIMEOUT,
                positive_duration,
            )?,
            header_read_timeout: env.get(
                "LATCHKEY_HEADER_READ_TIMEOUT",
                DEFAULT_HEADER_READ_TIMEOUT,
                positive_duration,
            )?,
            max_connections: env.get("LATCHKEY_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, |v| {
                count(v, MAX_CONNECTIONS_LIMIT)
            })?,
            audit_retention: env.get(
                "LATCHKEY_AUDIT_RETENTION",
                DEFAULT_AUDIT_RETENTION,
                retention,
            )?,

            // Client addresses behind reverse proxies (attack resistance).
            trusted_proxies: env.get(
                "LATCHKEY_TRUSTED_PROXIES",
                DEFAULT_TRUSTED_PROXIES,
                parse_trusted_proxies,
            )?,

            // Enterprise SSO.
            allow_insecure_upstreams: env.get(
                "LATCHKEY_ALLOW_INSECURE_UPSTREAMS",
                DEFAULT_ALLOW_INSECURE_UPSTREAMS,
                parse_true_false,
            )?,
            dns_server: env.get("LATCHKEY_DNS_SERVER", "", parse_dns_server)?,

            // Operations.
            metrics_bind: env
                .raw("LATCHKEY_METRICS_BIND")
                .map(|_| env.get("LATCHKEY_METRICS_BIND", "", parse_bind))
                .transpose()?,
        })
    }

    /// Whether the issuer is served over https (decides `Secure` cookies).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// The variable source, with trimming, empty-means-unset and error building.
pub(super) struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// The trimmed value of `var`, or `None` when unset or blank.
    pub(super) fn raw(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// Parses `var` (or `default`), turning a failure reason into a
    /// [`ConfigError`] that echoes the value with passwords redacted.
    pub(super) fn get<T>(
        &self,
        var: &'static str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let value = self.raw(var).unwrap_or_else(|| default.to_owned());
        parse(&value).map_err(|reason| ConfigError {
            var,
            value: redact(&value),
            reason,
        })
    }
}
