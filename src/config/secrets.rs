//! Values that may hold secrets: the database and SMTP URLs (passwords redacted in `Debug`,
//! `Display` and errors), the SMTP STARTTLS policy, and the key-encryption key.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use url::{Host, Url};

use super::{ConfigError, Env};
use crate::crypto::kek::KeyEncryptionKey;

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

// --- Key-encryption key (secrets at rest) ---
// `LATCHKEY_KEY_ENCRYPTION_KEY` holds the key itself, `LATCHKEY_KEY_ENCRYPTION_KEY_FILE` a file holding
// it (for secret mounts). The value is never echoed in an error: only the variable, and the path for
// the file variant.

/// Variable holding the key-encryption key: base64 of 32 bytes.
pub const KEK_VAR: &str = "LATCHKEY_KEY_ENCRYPTION_KEY";
/// Variable naming a file that holds the key-encryption key.
pub const KEK_FILE_VAR: &str = "LATCHKEY_KEY_ENCRYPTION_KEY_FILE";

/// Reads the key-encryption key from [`KEK_VAR`] or [`KEK_FILE_VAR`] (not both).
pub(super) fn key_encryption_key(env: &Env<'_>) -> Result<Option<KeyEncryptionKey>, ConfigError> {
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

pub(super) fn parse_db_url(v: &str) -> Result<DatabaseUrl, String> {
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

pub(super) fn parse_smtp_url(v: &str) -> Result<SmtpUrl, String> {
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
pub(super) fn smtp_starttls(url: &Url) -> Result<StartTls, String> {
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

/// Replaces the password in `scheme://user:password@host...` (and any
/// `password=` style query parameter) with `***`. Works on unparsable text
/// too, erring on the side of hiding more.
pub(super) fn redact(value: &str) -> String {
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
