//! Configuration from the environment.
//!
//! Latchkey is configured only through `LATCHKEY_*` environment variables so
//! that it runs the same way under systemd, in containers and in the test
//! harness. Everything is parsed and validated once, at startup, into a typed
//! [`Config`]: a typo should stop the server with a one-line message naming
//! the variable, not surface later as a confusing runtime failure. Secrets
//! (database and SMTP passwords) are wrapped so that neither `Debug` nor an
//! error message can print them.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use lettre::message::Mailbox;

use crate::crypto::kek::KeyEncryptionKey;
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::web::client_addr::TrustedProxies;

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
/// Shortest `LATCHKEY_AUDIT_RETENTION`: the login history also feeds same-day security decisions.
const MIN_AUDIT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// Largest `LATCHKEY_PASSWORD_HASH_CONCURRENCY`: each hash holds 19 MiB.
const MAX_HASH_CONCURRENCY: usize = 1024;
/// Largest `LATCHKEY_MAX_CONNECTIONS`: about a process's default file-descriptor limit.
const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;

// Client addresses behind reverse proxies (attack resistance).
/// Default for `LATCHKEY_TRUSTED_PROXIES`: no proxy is trusted, the TCP peer is the client.
pub const DEFAULT_TRUSTED_PROXIES: &str = "";

/// Upper bound for every duration, so that `now + ttl` can never overflow.
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

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

/// JWS signing algorithms Latchkey supports. This is the single definition
/// used by the configuration, the CLI and the key store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    /// ECDSA with P-256 and SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// Ed25519.
    EdDSA,
}

impl SigningAlg {
    /// Every supported algorithm.
    pub const ALL: [SigningAlg; 3] = [SigningAlg::ES256, SigningAlg::RS256, SigningAlg::EdDSA];

    /// The JOSE `alg` name, e.g. `"ES256"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error from parsing a [`SigningAlg`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signing algorithm {0:?}: expected one of ES256, RS256, EdDSA (exact case)")]
pub struct UnknownSigningAlg(pub String);

impl FromStr for SigningAlg {
    type Err = UnknownSigningAlg;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SigningAlg::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| UnknownSigningAlg(s.to_owned()))
    }
}

/// Who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupPolicy {
    /// Anyone may sign up.
    Open,
    /// Only people holding an invitation may sign up.
    InviteOnly,
}

impl SignupPolicy {
    /// The configuration spelling: `open` or `invite-only`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SignupPolicy::Open => "open",
            SignupPolicy::InviteOnly => "invite-only",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The configuration spelling: `text` or `json`.
    pub fn as_str(&self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// A database URL. May contain a password, so `Debug` and `Display` redact it;
/// use [`DatabaseUrl::expose`] only to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The full URL, password included. Only for opening connections.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether this is a SQLite database (otherwise PostgreSQL).
    pub fn is_sqlite(&self) -> bool {
        self.0.starts_with("sqlite:")
    }

    /// The file of a SQLite database (`sqlite://PATH[?options]`); `None` for PostgreSQL and for
    /// in-memory SQLite (`sqlite::memory:`, `:memory:` or `mode=memory`).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.0.strip_prefix("sqlite://")?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let in_memory = path.is_empty()
            || path.contains(":memory:")
            || query.split('&').any(|p| p == "mode=memory");
        (!in_memory).then(|| PathBuf::from(path))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&redact(&self.0))
            .finish()
    }
}

/// Shows the URL with any password replaced by `***`.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

/// An SMTP URL (`smtp://` or `smtps://`, as understood by lettre). May contain
/// a password, so `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    /// The full URL, password included. Only for building the transport.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SmtpUrl").field(&redact(&self.0)).finish()
    }
}

/// Shows the URL with any password replaced by `***`.
impl fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
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
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// The trimmed value of `var`, or `None` when unset or blank.
    fn raw(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// Parses `var` (or `default`), turning a failure reason into a
    /// [`ConfigError`] that echoes the value with passwords redacted.
    fn get<T>(
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

// --- Key-encryption key (secrets at rest) ---
// `LATCHKEY_KEY_ENCRYPTION_KEY` holds the key itself, `LATCHKEY_KEY_ENCRYPTION_KEY_FILE` a file holding
// it (for secret mounts). The value is never echoed in an error: only the variable, and the path for
// the file variant.

/// Variable holding the key-encryption key: base64 of 32 bytes.
pub const KEK_VAR: &str = "LATCHKEY_KEY_ENCRYPTION_KEY";
/// Variable naming a file that holds the key-encryption key.
pub const KEK_FILE_VAR: &str = "LATCHKEY_KEY_ENCRYPTION_KEY_FILE";

/// Reads the key-encryption key from [`KEK_VAR`] or [`KEK_FILE_VAR`] (not both).
fn key_encryption_key(env: &Env<'_>) -> Result<Option<KeyEncryptionKey>, ConfigError> {
    match (env.raw(KEK_VAR), env.raw(KEK_FILE_VAR)) {
        (None, None) => Ok(None),
        (Some(_), Some(path)) => Err(ConfigError {
            var: KEK_FILE_VAR,
            value: path,
            reason: format!("set either {KEK_VAR} or {KEK_FILE_VAR}, not both"),
        }),
        (Some(text), None) => KeyEncryptionKey::from_base64(&text)
            .map(Some)
            .map_err(|reason| ConfigError {
                var: KEK_VAR,
                value: "***".to_owned(),
                reason,
            }),
        (None, Some(path)) => {
            let fail = |reason: String| ConfigError {
                var: KEK_FILE_VAR,
                value: path.clone(),
                reason,
            };
            let text = std::fs::read_to_string(&path)
                .map_err(|e| fail(format!("cannot read the file: {e}")))?;
            KeyEncryptionKey::from_base64(&text)
                .map(Some)
                .map_err(|reason| fail(format!("the file's content: {reason}")))
        }
    }
}

// Parsers: each returns the value, or a one-line reason that `Env::get` wraps
// with the variable name and the redacted value.

fn parse_bind(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| "expected an address and port such as 127.0.0.1:8080 or [::]:8080".into())
}

fn parse_mailbox(v: &str) -> Result<Mailbox, String> {
    v.parse()
        .map_err(|_| "expected a mailbox such as Latchkey <no-reply@example.com>".into())
}

fn parse_true_false(v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// `IP` or `IP:PORT` (port 53 when none); empty: the system's resolver.
fn parse_dns_server(v: &str) -> Result<Option<SocketAddr>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    if let Ok(addr) = v.parse::<SocketAddr>() {
        return Ok(Some(addr));
    }
    v.parse::<std::net::IpAddr>()
        .map(|ip| Some(SocketAddr::new(ip, 53)))
        .map_err(|_| "expected an IP address, optionally with :PORT".into())
}

fn parse_on_off(v: &str) -> Result<bool, String> {
    match v {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("expected on or off".into()),
    }
}

fn parse_trusted_proxies(v: &str) -> Result<TrustedProxies, String> {
    TrustedProxies::parse(v).map_err(|e| {
        format!(
            "{e}; expected comma-separated CIDRs such as 10.0.0.0/8, 2001:db8::/32 or 192.0.2.1"
        )
    })
}

fn parse_signup(v: &str) -> Result<SignupPolicy, String> {
    match v {
        "open" => Ok(SignupPolicy::Open),
        "invite-only" => Ok(SignupPolicy::InviteOnly),
        _ => Err("expected open or invite-only".into()),
    }
}

fn parse_log_format(v: &str) -> Result<LogFormat, String> {
    match v {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected text or json".into()),
    }
}

/// https, or http on loopback only; no userinfo, query, fragment or trailing
/// slash; already canonical, since the text is used verbatim as `iss`.
fn parse_issuer(v: &str) -> Result<String, String> {
    let url = Url::parse(v)
        .map_err(|_| "expected an absolute URL such as https://id.example.com".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" => {
            let local = match url.host() {
                Some(Host::Domain(d)) => d == "localhost",
                Some(Host::Ipv4(ip)) => ip == Ipv4Addr::LOCALHOST,
                Some(Host::Ipv6(ip)) => ip == Ipv6Addr::LOCALHOST,
                None => false,
            };
            if !local {
                return Err("http is only allowed for localhost or 127.0.0.1; use https".into());
            }
        }
        _ => return Err("expected an https URL (http only for localhost or 127.0.0.1)".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if url.query().is_some() {
        return Err("must not contain a query (?...)".into());
    }
    if url.fragment().is_some() {
        return Err("must not contain a fragment (#...)".into());
    }
    if v.ends_with('/') {
        return Err("must not end with a slash".into());
    }
    // Insist on the form URL libraries normalise to, so relying parties that
    // normalise still compare it equal.
    let canonical = url.as_str().strip_suffix('/').unwrap_or(url.as_str());
    if canonical != v {
        return Err(format!("not in canonical form; use {canonical:?}"));
    }
    Ok(v.to_owned())
}

fn parse_db_url(v: &str) -> Result<DatabaseUrl, String> {
    const EXPECTED: &str =
        "expected sqlite://PATH, sqlite::memory: or postgres://USER:PASSWORD@HOST/DB";
    if v == "sqlite::memory:" {
        return Ok(DatabaseUrl(v.to_owned()));
    }
    if let Some(path) = v.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(format!("missing database file path; {EXPECTED}"));
        }
        return Ok(DatabaseUrl(v.to_owned()));
    }
    if v.starts_with("postgres://") || v.starts_with("postgresql://") {
        return match Url::parse(v) {
            Ok(_) => Ok(DatabaseUrl(v.to_owned())),
            Err(e) => Err(format!("not a valid URL ({e}); {EXPECTED}")),
        };
    }
    Err(EXPECTED.to_owned())
}

fn parse_smtp_url(v: &str) -> Result<SmtpUrl, String> {
    const EXPECTED: &str = "expected smtp://HOST:PORT or smtps://USER:PASSWORD@HOST";
    let url = Url::parse(v).map_err(|e| format!("not a valid URL ({e}); {EXPECTED}"))?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        return Err(format!("unsupported scheme; {EXPECTED}"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("missing host; {EXPECTED}"));
    }
    smtp_starttls(&url)?;
    Ok(SmtpUrl(v.to_owned()))
}

// ---- SMTP transport security (protocol hardening) ----
// `smtp://` must upgrade with STARTTLS (RFC 3207) unless the server is on this machine or the URL
// opts out with `?tls=opportunistic`: opportunistic STARTTLS falls back to clear text when the
// server does not offer it, which an attacker on the path arranges by removing the offer (RFC 8314
// §1 and §5: prefer TLS; "STARTTLS stripping"). `smtps://` always uses implicit TLS.

/// The URL query option that sets the STARTTLS policy of `smtp://`.
pub const SMTP_TLS_OPTION: &str = "tls";

/// What an `smtp://` connection does when the server does not offer STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartTls {
    /// Refuse to send (`tls=required`; the default for a server on another host).
    Required,
    /// Send in clear text (`tls=opportunistic`; the default for a loopback server).
    Opportunistic,
}

impl SmtpUrl {
    /// The STARTTLS policy of this URL (validated when the configuration was read; anything
    /// unreadable falls back to [`StartTls::Required`]).
    pub fn starttls(&self) -> StartTls {
        Url::parse(&self.0)
            .ok()
            .and_then(|url| smtp_starttls(&url).ok())
            .unwrap_or(StartTls::Required)
    }
}

/// The STARTTLS policy of an SMTP URL: `?tls=required`, `?tls=opportunistic`, or by default
/// required unless the host is loopback (`127.0.0.0/8`, `::1`, `localhost`).
fn smtp_starttls(url: &Url) -> Result<StartTls, String> {
    let mut options = url
        .query_pairs()
        .filter(|(k, _)| k == SMTP_TLS_OPTION)
        .map(|(_, v)| v.into_owned());
    let chosen = options.next();
    if options.next().is_some() {
        return Err(format!("{SMTP_TLS_OPTION}= given more than once"));
    }
    match chosen.as_deref() {
        Some("required") => Ok(StartTls::Required),
        Some("opportunistic") => Ok(StartTls::Opportunistic),
        Some(other) => Err(format!(
            "unknown {SMTP_TLS_OPTION}={other:?}; expected {SMTP_TLS_OPTION}=required or \
             {SMTP_TLS_OPTION}=opportunistic"
        )),
        None => {
            let loopback = match url.host() {
                Some(Host::Ipv4(ip)) => ip.is_loopback(),
                Some(Host::Ipv6(ip)) => ip.is_loopback(),
                // `smtp` is not a special scheme, so an IPv4 address arrives as an opaque host.
                Some(Host::Domain(d)) => {
                    d.eq_ignore_ascii_case("localhost")
                        || d.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
                }
                None => false,
            };
            Ok(if loopback {
                StartTls::Opportunistic
            } else {
                StartTls::Required
            })
        }
    }
}

fn parse_alg(v: &str) -> Result<SigningAlg, String> {
    v.parse()
        .map_err(|_| "expected one of ES256, RS256, EdDSA (exact case)".to_owned())
}

fn duration(v: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(v)
        .map_err(|_| "expected a duration such as 90s, 10m or 30d".to_owned())?;
    if d > MAX_DURATION {
        return Err("must be at most 100 years".to_owned());
    }
    Ok(d)
}

fn positive_duration(v: &str) -> Result<Duration, String> {
    let d = duration(v)?;
    if d.is_zero() {
        return Err("must be greater than zero".to_owned());
    }
    Ok(d)
}

// Parsers of the bounded-resources block.

/// The default of `LATCHKEY_PASSWORD_HASH_CONCURRENCY`: one hash per CPU.
fn default_hash_concurrency() -> String {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string()
}

/// A whole number from 1 to `max`.
fn count(v: &str, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {max}")),
    }
}

/// A duration of at least [`MIN_AUDIT_RETENTION`].
fn retention(v: &str) -> Result<Duration, String> {
    let d = duration(v)?;
    if d < MIN_AUDIT_RETENTION {
        return Err("must be at least 1d".to_owned());
    }
    Ok(d)
}

/// Replaces the password in `scheme://user:password@host...` (and any
/// `password=` style query parameter) with `***`. Works on unparsable text
/// too, erring on the side of hiding more.
fn redact(value: &str) -> String {
    let Some(scheme_end) = value.find("://") else {
        return value.to_owned();
    };
    let (scheme, rest) = value.split_at(scheme_end + 3);
    let mut out = scheme.to_owned();
    let rest = match rest.rfind('@') {
        Some(at) => {
            let (userinfo, after) = rest.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            after
        }
        None => rest,
    };
    let Some((before_query, query)) = rest.split_once('?') else {
        out.push_str(rest);
        return out;
    };
    out.push_str(before_query);
    out.push('?');
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("pass") => format!("{key}=***"),
            _ => param.to_owned(),
        })
        .collect();
    out.push_str(&params.join("&"));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |k| map.get(k).cloned())
    }

    fn err(var: &str, value: &str) -> ConfigError {
        let e = with(&[(var, value)]).expect_err(&format!("{var}={value} should be rejected"));
        assert_eq!(e.var, var);
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("invalid {var}=")), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        e
    }

    fn ok(var: &str, value: &str) -> Config {
        with(&[(var, value)]).unwrap_or_else(|e| panic!("{var}={value}: {e}"))
    }

    #[test]
    fn defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c.issuer, "http://localhost:8080");
        assert_eq!(c.bind, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.database_url.expose(), "sqlite://latchkey.db");
        assert!(c.database_url.is_sqlite());
        assert!(c.smtp_url.is_none());
        assert_eq!(c.mail_dir, PathBuf::from("./mail"));
        assert_eq!(c.mail_from.email.to_string(), "no-reply@localhost");
        assert_eq!(c.mail_from.name.as_deref(), Some("Latchkey"));
        assert_eq!(c.access_token_ttl, Duration::from_secs(600));
        assert_eq!(c.refresh_token_ttl, Duration::from_secs(30 * 86400));
        assert_eq!(c.refresh_reuse_grace, Duration::ZERO);
        assert_eq!(c.invite_ttl, Duration::from_secs(7 * 86400));
        assert_eq!(c.access_token_alg, SigningAlg::ES256);
        assert_eq!(c.id_token_alg, SigningAlg::RS256);
        assert_eq!(c.key_rotation, Duration::from_secs(30 * 86400));
        assert_eq!(c.signup, SignupPolicy::Open);
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(!c.is_https());
    }

    #[test]
    fn empty_values_mean_default() {
        let c = with(&[
            ("LATCHKEY_ISSUER", ""),
            ("LATCHKEY_SMTP_URL", ""),
            ("LATCHKEY_ACCESS_TOKEN_TTL", "  "),
        ])
        .unwrap();
        assert_eq!(c.issuer, DEFAULT_ISSUER);
        assert!(c.smtp_url.is_none());
        assert_eq!(c.access_token_ttl, Duration::from_secs(600));
    }

    #[test]
    fn issuer() {
        let c = ok("LATCHKEY_ISSUER", "https://id.example.com/t1");
        assert_eq!(c.issuer, "https://id.example.com/t1");
        assert!(c.is_https());
        assert!(ok("LATCHKEY_ISSUER", "https://id.example.com").is_https());
        assert_eq!(
            ok("LATCHKEY_ISSUER", "http://127.0.0.1:9000").issuer,
            "http://127.0.0.1:9000"
        );
        ok("LATCHKEY_ISSUER", "http://[::1]:9000");

        let e = err("LATCHKEY_ISSUER", "http://example.com");
        assert_eq!(
            e.to_string(),
            "invalid LATCHKEY_ISSUER=\"http://example.com\": \
             http is only allowed for localhost or 127.0.0.1; use https"
        );
        assert!(
            err("LATCHKEY_ISSUER", "https://id.example.com/")
                .reason
                .contains("slash")
        );
        assert!(
            err("LATCHKEY_ISSUER", "http://localhost:8080/")
                .reason
                .contains("slash")
        );
        assert!(
            err("LATCHKEY_ISSUER", "https://id.example.com?a=b")
                .reason
                .contains("query")
        );
        assert!(
            err("LATCHKEY_ISSUER", "https://id.example.com#x")
                .reason
                .contains("fragment")
        );
        assert!(
            err("LATCHKEY_ISSUER", "not a url")
                .reason
                .contains("absolute URL")
        );
        assert!(
            err("LATCHKEY_ISSUER", "ftp://id.example.com")
                .reason
                .contains("https")
        );
        assert!(
            err("LATCHKEY_ISSUER", "https://u:p@id.example.com")
                .reason
                .contains("user")
        );
        assert!(
            err("LATCHKEY_ISSUER", "https://ID.example.com")
                .reason
                .contains("canonical")
        );
    }

    #[test]
    fn bind() {
        assert_eq!(
            ok("LATCHKEY_BIND", "[::]:80").bind,
            "[::]:80".parse().unwrap()
        );
        err("LATCHKEY_BIND", "localhost");
        err("LATCHKEY_BIND", "127.0.0.1");
    }

    #[test]
    fn database_url() {
        let c = ok("LATCHKEY_DATABASE_URL", "postgres://u:p@h/db");
        assert!(!c.database_url.is_sqlite());
        ok("LATCHKEY_DATABASE_URL", "postgresql://h/db");
        assert!(
            ok("LATCHKEY_DATABASE_URL", "sqlite::memory:")
                .database_url
                .is_sqlite()
        );
        ok("LATCHKEY_DATABASE_URL", "sqlite:///var/lib/latchkey.db");
        err("LATCHKEY_DATABASE_URL", "sqlite://");
        err("LATCHKEY_DATABASE_URL", "mysql://u:p@h/db");
        let e = err(
            "LATCHKEY_DATABASE_URL",
            "postgres://u:hunter2@h:notaport/db",
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(!format!("{e:?}").contains("hunter2"));
        let e = err("LATCHKEY_DATABASE_URL", "mysql://u:hunter2@h/db");
        assert!(e.to_string().contains("mysql://u:***@h/db"), "{e}");
    }

    #[test]
    fn smtp_url() {
        let c = ok("LATCHKEY_SMTP_URL", "smtps://u:p@mail.example.com");
        assert_eq!(c.smtp_url.unwrap().expose(), "smtps://u:p@mail.example.com");
        ok("LATCHKEY_SMTP_URL", "smtp://localhost:2525");
        let e = err("LATCHKEY_SMTP_URL", "http://u:hunter2@mail.example.com");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        err("LATCHKEY_SMTP_URL", "smtp://");
        err("LATCHKEY_SMTP_URL", "mail.example.com");
    }

    #[test]
    fn smtp_starttls_is_required_off_loopback() {
        let tls = |v: &str| ok("LATCHKEY_SMTP_URL", v).smtp_url.unwrap().starttls();
        assert_eq!(tls("smtp://mail.example.com:587"), StartTls::Required);
        assert_eq!(tls("smtp://127.0.0.1:2525"), StartTls::Opportunistic);
        assert_eq!(tls("smtp://127.8.9.10"), StartTls::Opportunistic);
        assert_eq!(tls("smtp://[::1]:2525"), StartTls::Opportunistic);
        assert_eq!(tls("smtp://localhost:2525"), StartTls::Opportunistic);
        assert_eq!(
            tls("smtp://mail.example.com?tls=opportunistic"),
            StartTls::Opportunistic
        );
        assert_eq!(tls("smtp://localhost?tls=required"), StartTls::Required);
        let e = err(
            "LATCHKEY_SMTP_URL",
            "smtp://u:hunter2@mail.example.com?tls=maybe",
        );
        assert!(e.to_string().contains("tls=\"maybe\""), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        err(
            "LATCHKEY_SMTP_URL",
            "smtp://mail.example.com?tls=required&tls=opportunistic",
        );
    }

    #[test]
    fn mail() {
        assert_eq!(
            ok("LATCHKEY_MAIL_DIR", "/tmp/m").mail_dir,
            PathBuf::from("/tmp/m")
        );
        let c = ok("LATCHKEY_MAIL_FROM", "a@example.com");
        assert_eq!(c.mail_from.email.to_string(), "a@example.com");
        err("LATCHKEY_MAIL_FROM", "not a mailbox");
        err("LATCHKEY_MAIL_FROM", "Name <broken");
    }

    #[test]
    fn durations() {
        let e = err("LATCHKEY_ACCESS_TOKEN_TTL", "ten minutes");
        assert_eq!(
            e.to_string(),
            "invalid LATCHKEY_ACCESS_TOKEN_TTL=\"ten minutes\": \
             expected a duration such as 90s, 10m or 30d"
        );
        for var in [
            "LATCHKEY_ACCESS_TOKEN_TTL",
            "LATCHKEY_REFRESH_TOKEN_TTL",
            "LATCHKEY_INVITE_TTL",
            "LATCHKEY_KEY_ROTATION",
        ] {
            assert!(err(var, "0s").reason.contains("greater than zero"));
            err(var, "5");
            err(var, "1000000y");
        }
        assert_eq!(
            ok("LATCHKEY_REFRESH_REUSE_GRACE", "0s").refresh_reuse_grace,
            Duration::ZERO
        );
        assert_eq!(
            ok("LATCHKEY_REFRESH_REUSE_GRACE", "5s").refresh_reuse_grace,
            Duration::from_secs(5)
        );
        err("LATCHKEY_REFRESH_REUSE_GRACE", "soon");
        assert_eq!(
            ok("LATCHKEY_INVITE_TTL", "1h 30m").invite_ttl,
            Duration::from_secs(5400)
        );
    }

    #[test]
    fn algs() {
        assert_eq!(
            ok("LATCHKEY_ACCESS_TOKEN_ALG", "EdDSA").access_token_alg,
            SigningAlg::EdDSA
        );
        assert_eq!(
            ok("LATCHKEY_ID_TOKEN_ALG", "ES256").id_token_alg,
            SigningAlg::ES256
        );
        err("LATCHKEY_ACCESS_TOKEN_ALG", "es256");
        err("LATCHKEY_ID_TOKEN_ALG", "HS256");
        for alg in SigningAlg::ALL {
            assert_eq!(alg.as_str().parse::<SigningAlg>().unwrap(), alg);
            assert_eq!(alg.to_string(), alg.as_str());
        }
        assert!("eddsa".parse::<SigningAlg>().is_err());
    }

    #[test]
    fn signup_and_log_format() {
        assert_eq!(
            ok("LATCHKEY_SIGNUP", "invite-only").signup,
            SignupPolicy::InviteOnly
        );
        err("LATCHKEY_SIGNUP", "closed");
        err("LATCHKEY_SIGNUP", "Open");
        assert_eq!(
            ok("LATCHKEY_LOG_FORMAT", "json").log_format,
            LogFormat::Json
        );
        err("LATCHKEY_LOG_FORMAT", "yaml");
    }

    #[test]
    fn new_device_alerts() {
        assert!(with(&[]).unwrap().new_device_alerts);
        assert!(ok("LATCHKEY_NEW_DEVICE_ALERTS", "on").new_device_alerts);
        assert!(!ok("LATCHKEY_NEW_DEVICE_ALERTS", "off").new_device_alerts);
        err("LATCHKEY_NEW_DEVICE_ALERTS", "yes");
    }

    #[test]
    fn enterprise_sso() {
        let c = with(&[]).unwrap();
        assert!(!c.allow_insecure_upstreams);
        assert_eq!(c.dns_server, None);
        assert!(ok("LATCHKEY_ALLOW_INSECURE_UPSTREAMS", "true").allow_insecure_upstreams);
        err("LATCHKEY_ALLOW_INSECURE_UPSTREAMS", "yes");
        assert_eq!(
            ok("LATCHKEY_DNS_SERVER", "127.0.0.1:5353").dns_server,
            Some("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            ok("LATCHKEY_DNS_SERVER", "::1").dns_server,
            Some("[::1]:53".parse().unwrap())
        );
        err("LATCHKEY_DNS_SERVER", "dns.example");
    }

    #[test]
    fn email_signin() {
        assert!(with(&[]).unwrap().email_signin);
        assert!(ok("LATCHKEY_EMAIL_SIGNIN", "on").email_signin);
        assert!(!ok("LATCHKEY_EMAIL_SIGNIN", "off").email_signin);
        let e = err("LATCHKEY_EMAIL_SIGNIN", "yes");
        assert!(e.to_string().contains("LATCHKEY_EMAIL_SIGNIN"), "{e}");
        err("LATCHKEY_EMAIL_SIGNIN", "On");
    }

    #[test]
    fn bounded_resources_and_retention() {
        let c = with(&[]).unwrap();
        assert_eq!(c.password_hash_wait, Duration::from_secs(5));
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(c.password_hash_concurrency, cpus);
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.audit_retention, Duration::from_secs(400 * 86400));

        assert_eq!(
            ok("LATCHKEY_PASSWORD_HASH_WAIT", "200ms").password_hash_wait,
            Duration::from_millis(200)
        );
        assert_eq!(
            ok("LATCHKEY_PASSWORD_HASH_CONCURRENCY", "1").password_hash_concurrency,
            1
        );
        assert_eq!(
            ok("LATCHKEY_REQUEST_TIMEOUT", "2m").request_timeout,
            Duration::from_secs(120)
        );
        assert_eq!(
            ok("LATCHKEY_HEADER_READ_TIMEOUT", "1s").header_read_timeout,
            Duration::from_secs(1)
        );
        assert_eq!(ok("LATCHKEY_MAX_CONNECTIONS", "2").max_connections, 2);
        assert_eq!(
            ok("LATCHKEY_AUDIT_RETENTION", "1d").audit_retention,
            Duration::from_secs(86400)
        );
        for var in [
            "LATCHKEY_PASSWORD_HASH_WAIT",
            "LATCHKEY_REQUEST_TIMEOUT",
            "LATCHKEY_HEADER_READ_TIMEOUT",
        ] {
            assert!(err(var, "0s").reason.contains("greater than zero"));
            err(var, "soon");
        }
        for var in [
            "LATCHKEY_PASSWORD_HASH_CONCURRENCY",
            "LATCHKEY_MAX_CONNECTIONS",
        ] {
            assert!(err(var, "0").reason.contains("whole number"));
            err(var, "-1");
            err(var, "many");
        }
        err("LATCHKEY_PASSWORD_HASH_CONCURRENCY", "1025");
        ok("LATCHKEY_MAX_CONNECTIONS", "100000");
        err("LATCHKEY_MAX_CONNECTIONS", "1000001");
        assert_eq!(
            err("LATCHKEY_AUDIT_RETENTION", "23h").to_string(),
            "invalid LATCHKEY_AUDIT_RETENTION=\"23h\": must be at least 1d"
        );
        err("LATCHKEY_AUDIT_RETENTION", "forever");
    }

    #[test]
    fn trusted_proxies() {
        use std::net::IpAddr;
        assert!(with(&[]).unwrap().trusted_proxies.is_empty());
        let c = ok("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/8, ::1");
        assert!(
            c.trusted_proxies
                .contains("10.1.2.3".parse::<IpAddr>().unwrap())
        );
        assert!(c.trusted_proxies.contains("::1".parse::<IpAddr>().unwrap()));
        assert!(
            !c.trusted_proxies
                .contains("192.0.2.1".parse::<IpAddr>().unwrap())
        );
        let e = err("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local");
        assert!(e.reason.contains("CIDRs"), "{e}");
        err("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/40");
    }

    #[test]
    fn debug_hides_secrets() {
        let c = with(&[
            ("LATCHKEY_DATABASE_URL", "postgres://u:secretpw@h/db"),
            ("LATCHKEY_SMTP_URL", "smtp://u:pw2@h"),
        ])
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("secretpw"), "{dbg}");
        assert!(!dbg.contains("pw2"), "{dbg}");
        assert!(dbg.contains("postgres://u:***@h/db"), "{dbg}");
        assert_eq!(c.database_url.to_string(), "postgres://u:***@h/db");
        assert_eq!(c.database_url.expose(), "postgres://u:secretpw@h/db");
    }

    #[test]
    fn key_encryption_key() {
        use base64::Engine;
        let bytes = [42u8; 32];
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert!(with(&[]).unwrap().key_encryption_key.is_none());
        let c = ok(KEK_VAR, &text);
        assert_eq!(c.key_encryption_key.as_ref().unwrap().bytes(), &bytes);
        assert!(!format!("{c:?}").contains(&text), "redacted in Debug");
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfbu8; 32]);
        assert_eq!(
            ok(KEK_VAR, &url_safe).key_encryption_key.unwrap().bytes(),
            &[0xfbu8; 32]
        );
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        let e = err(KEK_VAR, &short);
        assert!(!e.to_string().contains(&short), "never echoed: {e}");
        assert!(e.reason.contains("32 bytes"));
        err(KEK_VAR, "not base64 at all!");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kek");
        std::fs::write(&file, format!("{text}\n")).unwrap();
        let path = file.display().to_string();
        let c = ok(KEK_FILE_VAR, &path);
        assert_eq!(c.key_encryption_key.unwrap().bytes(), &bytes);
        std::fs::write(&file, "garbage").unwrap();
        let e = err(KEK_FILE_VAR, &path);
        assert!(e.reason.contains("32 bytes"), "{e}");
        let e = err(
            KEK_FILE_VAR,
            &dir.path().join("missing").display().to_string(),
        );
        assert!(e.reason.contains("cannot read"), "{e}");
        let both = with(&[(KEK_VAR, text.as_str()), (KEK_FILE_VAR, path.as_str())]).unwrap_err();
        assert_eq!(both.var, KEK_FILE_VAR);
        assert!(both.to_string().contains("not both"), "{both}");
        assert!(!both.to_string().contains(&text));
    }

    #[test]
    fn sqlite_path() {
        let path = |url: &str| ok("LATCHKEY_DATABASE_URL", url).database_url.sqlite_path();
        assert_eq!(
            path("sqlite://latchkey.db"),
            Some(PathBuf::from("latchkey.db"))
        );
        assert_eq!(
            path("sqlite:///var/lib/l.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/l.db"))
        );
        assert_eq!(path("sqlite::memory:"), None);
        assert_eq!(path("sqlite://x.db?mode=memory"), None);
        assert_eq!(path("postgres://u:p@h/db"), None);
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("sqlite://latchkey.db"), "sqlite://latchkey.db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("postgres://h/db?user=u&password=x"),
            "postgres://h/db?user=u&password=***"
        );
        assert_eq!(redact("10m"), "10m");
    }
}
