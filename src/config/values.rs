//! The value types of the configuration and the parsers of plain values. Each parser returns the
//! value, or a one-line reason that `Env::get` wraps with the variable name and the redacted value.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::web::client_addr::TrustedProxies;

/// Shortest `LATCHKEY_AUDIT_RETENTION`: the login history also feeds same-day security decisions.
pub(super) const MIN_AUDIT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// Upper bound for every duration, so that `now + ttl` can never overflow.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

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

/// Whether clients may register themselves (RFC 7591).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicRegistration {
    /// No registration endpoint: operators register clients.
    Off,
    /// `POST /register` with an initial access token from `latchkey client registration-token`
    /// (RFC 7591 §3: the endpoint "MAY be an OAuth 2.0 protected resource").
    InitialAccessToken,
}

impl DynamicRegistration {
    /// The configuration spelling: `off` or `initial-access-token`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DynamicRegistration::Off => "off",
            DynamicRegistration::InitialAccessToken => "initial-access-token",
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

pub(super) fn parse_bind(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| "expected an address and port such as 127.0.0.1:8080 or [::]:8080".into())
}

pub(super) fn parse_mailbox(v: &str) -> Result<Mailbox, String> {
    v.parse()
        .map_err(|_| "expected a mailbox such as Latchkey <no-reply@example.com>".into())
}

pub(super) fn parse_true_false(v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// `IP` or `IP:PORT` (port 53 when none); empty: the system's resolver.
pub(super) fn parse_dns_server(v: &str) -> Result<Option<SocketAddr>, String> {
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

pub(super) fn parse_on_off(v: &str) -> Result<bool, String> {
    match v {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("expected on or off".into()),
    }
}

pub(super) fn parse_trusted_proxies(v: &str) -> Result<TrustedProxies, String> {
    TrustedProxies::parse(v).map_err(|e| {
        format!(
            "{e}; expected comma-separated CIDRs such as 10.0.0.0/8, 2001:db8::/32 or 192.0.2.1"
        )
    })
}

pub(super) fn parse_signup(v: &str) -> Result<SignupPolicy, String> {
    match v {
        "open" => Ok(SignupPolicy::Open),
        "invite-only" => Ok(SignupPolicy::InviteOnly),
        _ => Err("expected open or invite-only".into()),
    }
}

pub(super) fn parse_dynamic_registration(v: &str) -> Result<DynamicRegistration, String> {
    match v {
        "off" => Ok(DynamicRegistration::Off),
        "initial-access-token" => Ok(DynamicRegistration::InitialAccessToken),
        _ => Err("expected off or initial-access-token".into()),
    }
}

pub(super) fn parse_log_format(v: &str) -> Result<LogFormat, String> {
    match v {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected text or json".into()),
    }
}

/// https, or http on loopback only; no userinfo, query, fragment or trailing
/// slash; already canonical, since the text is used verbatim as `iss`.
pub(super) fn parse_issuer(v: &str) -> Result<String, String> {
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

pub(super) fn parse_alg(v: &str) -> Result<SigningAlg, String> {
    v.parse()
        .map_err(|_| "expected one of ES256, RS256, EdDSA (exact case)".to_owned())
}

pub(super) fn duration(v: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(v)
        .map_err(|_| "expected a duration such as 90s, 10m or 30d".to_owned())?;
    if d > MAX_DURATION {
        return Err("must be at most 100 years".to_owned());
    }
    Ok(d)
}

pub(super) fn positive_duration(v: &str) -> Result<Duration, String> {
    let d = duration(v)?;
    if d.is_zero() {
        return Err("must be greater than zero".to_owned());
    }
    Ok(d)
}

// Parsers of the bounded-resources block.

/// The default of `LATCHKEY_PASSWORD_HASH_CONCURRENCY`: one hash per CPU.
pub(super) fn default_hash_concurrency() -> String {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string()
}

/// A whole number from 1 to `max`.
pub(super) fn count(v: &str, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {max}")),
    }
}

/// A duration of at least [`MIN_AUDIT_RETENTION`].
pub(super) fn retention(v: &str) -> Result<Duration, String> {
    let d = duration(v)?;
    if d < MIN_AUDIT_RETENTION {
        return Err("must be at least 1d".to_owned());
    }
    Ok(d)
}
