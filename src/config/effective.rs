//! The effective configuration (`latchkey config check`): every variable with the value in force,
//! defaults filled in, written as it would be set, secrets redacted.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{Config, KEK_VAR};

/// What stands for a key-encryption key that is set (its value is never shown).
pub const REDACTED_SET: &str = "(set)";

impl Config {
    /// Every `LATCHKEY_*` variable with the value in force (`null`: unset, nothing configured),
    /// passwords in URLs as `***` and the key-encryption key as [`REDACTED_SET`]. Sorted by name.
    pub fn effective(&self) -> Map<String, Value> {
        let text = |v: String| Value::String(v);
        let optional = |v: Option<String>| v.map_or(Value::Null, Value::String);
        let on_off = |on: bool| text(if on { "on" } else { "off" }.to_owned());
        let span = |d: Duration| text(humantime::format_duration(d).to_string());
        let entries = [
            ("LATCHKEY_ISSUER", text(self.issuer.clone())),
            ("LATCHKEY_BIND", text(self.bind.to_string())),
            ("LATCHKEY_DATABASE_URL", text(self.database_url.to_string())),
            (
                "LATCHKEY_SMTP_URL",
                optional(self.smtp_url.as_ref().map(ToString::to_string)),
            ),
            (
                "LATCHKEY_MAIL_DIR",
                text(self.mail_dir.display().to_string()),
            ),
            ("LATCHKEY_MAIL_FROM", text(self.mail_from.to_string())),
            ("LATCHKEY_ACCESS_TOKEN_TTL", span(self.access_token_ttl)),
            ("LATCHKEY_REFRESH_TOKEN_TTL", span(self.refresh_token_ttl)),
            (
                "LATCHKEY_REFRESH_REUSE_GRACE",
                span(self.refresh_reuse_grace),
            ),
            ("LATCHKEY_INVITE_TTL", span(self.invite_ttl)),
            (
                "LATCHKEY_ACCESS_TOKEN_ALG",
                text(self.access_token_alg.to_string()),
            ),
            ("LATCHKEY_ID_TOKEN_ALG", text(self.id_token_alg.to_string())),
            ("LATCHKEY_KEY_ROTATION", span(self.key_rotation)),
            ("LATCHKEY_SIGNUP", text(self.signup.as_str().to_owned())),
            (
                "LATCHKEY_LOG_FORMAT",
                text(self.log_format.as_str().to_owned()),
            ),
            ("LATCHKEY_NEW_DEVICE_ALERTS", on_off(self.new_device_alerts)),
            ("LATCHKEY_EMAIL_SIGNIN", on_off(self.email_signin)),
            (
                "LATCHKEY_DYNAMIC_REGISTRATION",
                text(self.dynamic_registration.as_str().to_owned()),
            ),
            (
                KEK_VAR,
                optional(
                    self.key_encryption_key
                        .as_ref()
                        .map(|_| REDACTED_SET.to_owned()),
                ),
            ),
            ("LATCHKEY_PASSWORD_HASH_WAIT", span(self.password_hash_wait)),
            (
                "LATCHKEY_PASSWORD_HASH_CONCURRENCY",
                text(self.password_hash_concurrency.to_string()),
            ),
            ("LATCHKEY_REQUEST_TIMEOUT", span(self.request_timeout)),
            (
                "LATCHKEY_HEADER_READ_TIMEOUT",
                span(self.header_read_timeout),
            ),
            (
                "LATCHKEY_MAX_CONNECTIONS",
                text(self.max_connections.to_string()),
            ),
            ("LATCHKEY_AUDIT_RETENTION", span(self.audit_retention)),
            (
                "LATCHKEY_TRUSTED_PROXIES",
                text(self.trusted_proxies.to_string()),
            ),
            (
                "LATCHKEY_ALLOW_INSECURE_UPSTREAMS",
                text(self.allow_insecure_upstreams.to_string()),
            ),
            (
                "LATCHKEY_DNS_SERVER",
                optional(self.dns_server.map(|a| a.to_string())),
            ),
            (
                "LATCHKEY_METRICS_BIND",
                optional(self.metrics_bind.map(|a| a.to_string())),
            ),
        ];
        entries
            .into_iter()
            .map(|(var, value)| (var.to_owned(), value))
            .collect()
    }
}
