//! Passkeys (WebAuthn Level 2 through webauthn-rs): registration on `/account/passkeys`
//! ([`account`]), use as the second factor, and sign-in with a passkey alone from the login page
//! (discoverable credentials) ([`sign_in`]). The relying party is derived from the issuer
//! ([`ceremony`]); the passkeys are kept in `passkeys` ([`store`]).
//!
//! Every ceremony's state (its challenge) lives in the server-side session and is taken out when
//! the answer comes (WebAuthn L2 §13.4.3: a challenge is used once). The pages of a ceremony load
//! our own small script, `static/passkeys.js` (the WebAuthn API has no HTML form): only they get
//! `script-src 'self'` in their Content Security Policy ([`allow_script`]); every other page stays
//! script-free, and no page allows inline script.

pub mod account;
pub mod ceremony;
pub mod sign_in;
pub mod store;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use tower_sessions::Session;
use webauthn_rs::prelude::CreationChallengeResponse;

use super::pending::PendingFactor;
use crate::app::AppState;
use crate::error::{AppError, Result};
use crate::routes;
use crate::web::headers::SCRIPT_CONTENT_SECURITY_POLICY;

/// The passkey pages and ceremonies.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(routes::ACCOUNT_PASSKEYS, get(account::page))
        .route(routes::ACCOUNT_PASSKEYS_ADD, post(account::add))
        .route(routes::ACCOUNT_PASSKEYS_FINISH, post(account::finish))
        .route(routes::ACCOUNT_PASSKEYS_REMOVE, post(account::remove))
        .route(routes::ACCOUNT_PASSKEYS_RENAME, post(account::rename))
        .route(
            routes::LOGIN_SECOND_FACTOR_PASSKEY,
            get(sign_in::second_factor_page).post(sign_in::second_factor_finish),
        )
        .route(routes::LOGIN_PASSKEY, post(sign_in::passwordless_start))
        .route(
            routes::LOGIN_PASSKEY_FINISH,
            post(sign_in::passwordless_finish),
        )
}

/// What the second-step page ([`super::second_step`]) shows to offer a passkey: a fragment of HTML
/// rendered here (the button, its form and the ceremony's options), inserted as is.
#[derive(Debug, Clone)]
pub struct PasskeyOffer {
    /// The rendered fragment.
    pub html: String,
}

/// The passkey offer for the second step of `pending`, when the account has passkeys (the
/// ceremony's challenge is kept in the session). The page that shows it must load our script:
/// call [`allow_script`] on its response.
pub async fn second_factor_offer(
    state: &AppState,
    session: &Session,
    pending: &PendingFactor,
) -> Result<Option<PasskeyOffer>> {
    sign_in::offer(state, session, pending).await
}

/// Lets the page of `response` run `static/passkeys.js`: its Content Security Policy becomes
/// [`SCRIPT_CONTENT_SECURITY_POLICY`] (the default one plus `script-src 'self'`; still no inline
/// script, no `eval`). Only the pages that run a passkey ceremony call this.
pub fn allow_script(response: &mut Response) {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SCRIPT_CONTENT_SECURITY_POLICY),
    );
}

/// The creation options of a registration as JSON, asking for a discoverable credential with user
/// verification (WebAuthn L2 §5.4.4 `authenticatorSelection`: `residentKey` "required",
/// `requireResidentKey` true for Level 1 clients, `userVerification` "required"): webauthn-rs's
/// `start_passkey_registration` leaves the resident key optional, and a passkey must sign in
/// without an email. The registration state needs no change: webauthn-rs verifies the user
/// verification it asked for, and does not refuse a resident key it did not require.
pub fn options_with_discoverable_uv(options: &CreationChallengeResponse) -> Result<String> {
    let mut value = serde_json::to_value(options).map_err(|e| AppError::Internal(e.into()))?;
    let selection = value
        .get_mut("publicKey")
        .and_then(|pk| pk.as_object_mut())
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("creation options without publicKey")))?
        .entry("authenticatorSelection")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(selection) = selection.as_object_mut() {
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
        selection.insert("userVerification".into(), "required".into());
    }
    ceremony::options_json(&value)
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(issuer: &str) -> Config {
        Config::from_lookup(|k| (k == "LATCHKEY_ISSUER").then(|| issuer.to_owned()))
            .expect("configuration")
    }

    #[test]
    fn registration_asks_for_a_discoverable_verified_credential() {
        let config = config("http://localhost:8080");
        let webauthn = ceremony::relying_party(&config).expect("localhost is an RP ID");
        let (options, _) = webauthn
            .start_passkey_registration(
                ceremony::user_handle("0190b7a4-1c2d-7e3f-8a9b-0c1d2e3f4a5b"),
                "a@example.com",
                "A",
                None,
            )
            .expect("registration starts");
        let json: serde_json::Value =
            serde_json::from_str(&options_with_discoverable_uv(&options).expect("options"))
                .expect("JSON");
        let selection = &json["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["residentKey"], "required");
        assert_eq!(selection["requireResidentKey"], true);
        assert_eq!(selection["userVerification"], "required");
        assert_eq!(json["publicKey"]["rp"]["id"], "localhost");
    }

    #[test]
    fn no_relying_party_on_an_ip_address() {
        let config = config("http://127.0.0.1:8080");
        assert!(ceremony::relying_party(&config).is_none());
    }
}
