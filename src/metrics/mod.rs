//! Prometheus metrics (`GET /metrics` on `LATCHKEY_METRICS_BIND` only, never on the public listener).
//!
//! Events are counted where they happen through the `metrics` facade, recorded by
//! `metrics-exporter-prometheus` ([`exporter`]); the request counter and latency histogram come from
//! one layer of the public router ([`http`]); the gauges that describe state (signing-key ages, the
//! mail queue, the database pool, start time) are read when Prometheus scrapes ([`scrape`]). Every
//! name and label is in [`names`]; `docs/metrics.md` is the operator's reference.
//!
//! Without `LATCHKEY_METRICS_BIND` no recorder is installed: the functions below return after one
//! atomic load, and the request layer is not in the router at all.

pub mod exporter;
pub mod http;
pub mod names;
pub mod scrape;

use ::metrics::counter;

use crate::audit::login_history::Outcome;
use crate::clients::GrantType;

pub use exporter::installed;

/// The token endpoint issued an access token.
pub fn token_issued(grant: GrantType, public_client: bool) {
    if !installed() {
        return;
    }
    let client_type = if public_client {
        names::PUBLIC
    } else {
        names::CONFIDENTIAL
    };
    counter!(names::TOKENS_ISSUED, names::GRANT_TYPE => grant.as_str(), names::CLIENT_TYPE => client_type)
        .increment(1);
}

/// A sign-in attempt was recorded in the login history; `history_method` is its method there
/// (`pwd`, `email`, `pwd+otp`, …).
pub fn sign_in(history_method: &str, outcome: Outcome) {
    if !installed() {
        return;
    }
    let outcome = match outcome {
        Outcome::Succeeded => names::SUCCESS,
        Outcome::Failed => names::FAILURE,
        Outcome::Throttled => names::THROTTLED,
    };
    counter!(names::SIGN_INS, names::METHOD => sign_in_method(history_method), names::OUTCOME => outcome)
        .increment(1);
}

/// The `method` label of a login-history method: the factor this attempt checked, which is the last
/// one of a combination (`pwd+otp` is the second step, a TOTP code); one of a fixed set, so a new
/// method name can never add unbounded series.
pub fn sign_in_method(history_method: &str) -> &'static str {
    let factor = history_method.rsplit('+').next().unwrap_or(history_method);
    names::SIGN_IN_METHODS
        .iter()
        .find(|(name, _)| *name == factor)
        .map_or(names::OTHER, |(_, label)| label)
}

/// A rotated refresh token was presented again and its family revoked.
pub fn refresh_token_reuse_detected() {
    if installed() {
        counter!(names::REFRESH_TOKEN_REUSE_DETECTED).increment(1);
    }
}

/// A message was put in the outbox.
pub fn mail_queued() {
    if installed() {
        counter!(names::MAIL_QUEUED).increment(1);
    }
}

/// A message was handed over for delivery.
pub fn mail_sent() {
    if installed() {
        counter!(names::MAIL_SENT).increment(1);
    }
}

/// A delivery attempt failed.
pub fn mail_failed() {
    if installed() {
        counter!(names::MAIL_FAILED).increment(1);
    }
}

/// A relying party accepted a back-channel logout token.
pub fn backchannel_logout_delivered() {
    if installed() {
        counter!(names::BACKCHANNEL_LOGOUT_DELIVERED).increment(1);
    }
}

/// A back-channel logout post failed.
pub fn backchannel_logout_failed() {
    if installed() {
        counter!(names::BACKCHANNEL_LOGOUT_FAILED).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_methods_are_a_fixed_set() {
        assert_eq!(sign_in_method("pwd"), "password");
        assert_eq!(sign_in_method("email"), "email");
        assert_eq!(sign_in_method("pwd+otp"), "totp");
        assert_eq!(sign_in_method("email+recovery"), "recovery_code");
        assert_eq!(sign_in_method("pwd+passkey"), "passkey");
        assert_eq!(sign_in_method("fed"), "federation");
        assert_eq!(sign_in_method("totp"), "totp");
        assert_eq!(sign_in_method("someone@example.com"), "other");
        assert_eq!(sign_in_method(""), "other");
    }
}
