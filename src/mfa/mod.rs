//! Multi-factor authentication: TOTP authenticators ([`totp`]), single-use recovery codes
//! ([`recovery_codes`]), passkeys ([`passkeys`], WebAuthn Level 2 through webauthn-rs), the second
//! step of a sign-in ([`second_step`]) with the state it keeps between the two factors
//! ([`pending`]), the operator's reset ([`reset`]), and the mails about factor changes ([`mail`]).
//!
//! What a sign-in proved is its `amr` (RFC 8176), kept in the session and carried into codes,
//! refresh families and ID tokens; the `acr` of a token is derived from it by [`acr`]: two factors
//! are [`ACR_MFA`], one is [`ACR_PWD`]. Who needs a second factor is decided where the request is
//! answered: [`crate::login::completion`] (a person who has a factor), [`crate::oauth::authorize`]
//! (`acr_values`, `max_age`, an organization's `require_mfa`) and the refresh grant.

pub mod mail;
pub mod passkeys;
pub mod pending;
pub mod recovery_codes;
pub mod reset;
pub mod second_step;
pub mod store;
pub mod totp;

use axum::Router;

use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent};
use crate::db::{Exec, Tx};
use crate::error::Result;
use crate::web::request_meta::RequestMeta;
use mail::FactorChange;

/// `acr` of a sign-in with one factor (a password, a mailed link or code).
pub const ACR_PWD: &str = "urn:latchkey:acr:pwd";
/// `acr` of a sign-in with two factors (a password and a TOTP code, a recovery code or a passkey;
/// or a passkey with user verification alone).
pub const ACR_MFA: &str = "urn:latchkey:acr:mfa";
/// The `acr` values this server knows, weakest first (discovery `acr_values_supported`).
pub const ACR_VALUES: [&str; 2] = [ACR_PWD, ACR_MFA];

/// The RFC 8176 `amr` value that marks a sign-in with more than one factor.
pub const AMR_MFA: &str = "mfa";
/// RFC 8176 `otp`: a one-time code (TOTP, a recovery code, or a mailed code).
pub const AMR_OTP: &str = "otp";

/// The `acr` of a sign-in whose methods were `amr`.
pub fn acr(amr: &[String]) -> &'static str {
    if is_multi_factor(amr) {
        ACR_MFA
    } else {
        ACR_PWD
    }
}

/// True when the methods `amr` include a second factor.
pub fn is_multi_factor(amr: &[String]) -> bool {
    amr.iter().any(|m| m == AMR_MFA)
}

/// `first` followed by the methods of a second factor, and `mfa` (RFC 8176 §2), without duplicates.
pub fn with_second_factor(first: &[String], second: &[&str]) -> Vec<String> {
    let mut amr: Vec<String> = Vec::with_capacity(first.len() + second.len() + 1);
    for method in first
        .iter()
        .map(String::as_str)
        .chain(second.iter().copied())
        .chain([AMR_MFA])
    {
        if !amr.iter().any(|m| m == method) {
            amr.push(method.to_owned());
        }
    }
    amr
}

/// The factors an account has, beyond its password.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Factors {
    /// A confirmed TOTP authenticator.
    pub totp: bool,
    /// Registered passkeys.
    pub passkeys: i64,
    /// Unused recovery codes.
    pub recovery_codes: i64,
}

impl Factors {
    /// True when the account can give a second factor (recovery codes alone do not count: they are
    /// the way back when the factor is lost).
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

/// The factors of `user_id`.
pub async fn factors<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<Factors, sqlx::Error> {
    store::factors(ex, user_id).await
}

/// One change of a person's factors, as [`record_change`] records it.
#[derive(Debug)]
pub struct Change<'a> {
    /// Whose factors changed (the audit target).
    pub user_id: &'a str,
    /// The account's address (the mail goes there).
    pub email: &'a str,
    /// The audit action (`mfa.*`).
    pub action: &'static str,
    /// The audit details.
    pub details: serde_json::Value,
    /// What the owner's mail says.
    pub mail: FactorChange<'a>,
}

/// Records `change` inside `tx`: the audit event (the person of `meta` as actor) and the owner's
/// mail (OWASP ASVS V2.2.3: every change of an authenticator is notified). The caller wakes the
/// mailer after the commit.
pub async fn record_change(
    tx: &mut Tx,
    state: &AppState,
    meta: &RequestMeta,
    change: Change<'_>,
    now: i64,
) -> Result<()> {
    audit::record(
        &mut **tx,
        &AuditEvent {
            org_id: None,
            actor: &Actor::user(change.user_id.to_owned(), meta.clone()),
            action: change.action,
            target_type: Some("user"),
            target_id: Some(change.user_id),
            details: change.details,
        },
        now,
    )
    .await?;
    mail::queue_factor_changed(
        tx,
        &state.config,
        change.email,
        change.mail,
        meta.ip.as_deref(),
        now,
    )
    .await
}

/// The MFA pages: enrolment on the account pages, the second step of a sign-in, passkeys.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(totp::router())
        .merge(recovery_codes::router())
        .merge(passkeys::router())
        .merge(second_step::router())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn second_factor_adds_mfa_once() {
        let amr = with_second_factor(&owned(&["pwd"]), &["otp"]);
        assert_eq!(amr, owned(&["pwd", "otp", "mfa"]));
        let again = with_second_factor(&amr, &["otp"]);
        assert_eq!(again, owned(&["pwd", "otp", "mfa"]));
        assert_eq!(acr(&again), ACR_MFA);
        assert_eq!(acr(&owned(&["pwd"])), ACR_PWD);
        assert_eq!(acr(&owned(&["email", "otp"])), ACR_PWD);
    }
}
