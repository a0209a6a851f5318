//! `/account/passkeys`: the passkeys of the signed-in person (name, created, last used), adding one
//! (a WebAuthn L2 registration ceremony, §7.1), renaming one, and removing one (the password asked
//! again, OWASP ASVS V2.5.x / V3.7.1, throttled like a sign-in by [`reauth`]). A name is only a
//! label for its owner, so renaming asks for no password (it is audited, not mailed).
//!
//! Adding: the form's POST starts the ceremony (`start_passkey_registration` over the account's
//! stable user handle, its existing credentials excluded) and keeps its state in the server-side
//! session; the answer is a page whose form carries the creation options; `static/passkeys.js`
//! asks the authenticator and posts its answer in `credential` to the finish route, which verifies
//! it, stores the passkey, records `mfa.passkey_added` and mails the owner, in one transaction.
//!
//! The options ask for a discoverable credential (resident key required, WebAuthn L2 §5.4.6) with
//! user verification required (§5.8.6): a passkey that signs in without an email, and is two
//! factors on its own (possession, and the authenticator's PIN or biometric).
//!
//! An account without a password cannot remove a passkey until it sets one (the same rule as
//! deleting the account): re-entering a secret the attacker of a stolen session does not know is
//! what protects the change, and a passwordless account has none to re-enter.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::Session;
use webauthn_rs::prelude::{CredentialID, PasskeyRegistration, RegisterPublicKeyCredential};

use super::ceremony::{self, CEREMONY_TTL_SECS};
use super::store::{self, NewPasskey};
use super::{allow_script, options_with_discoverable_uv};
use crate::accounts::User;
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::crypto::password::Password;
use crate::crypto::tokens::new_id;
use crate::error::{AppError, Result};
use crate::mfa::mail::FactorChange;
use crate::mfa::recovery_codes;
use crate::routes;
use crate::self_service::display;
use crate::self_service::notice;
use crate::self_service::pages::{holder, nav, recently_signed_in_holder};
use crate::self_service::reauth::{self};
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// Longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Passkeys per account: enough for every device a person owns, and a bound on the list that
/// every second step and sign-in loads.
pub const MAX_PASSKEYS: usize = 20;

/// Session key of a registration in progress.
const REGISTRATION_KEY: &str = "passkey_registration";

/// A registration in progress: its webauthn-rs state, for whom, the name, and when it started.
#[derive(Serialize, Deserialize)]
struct Registration {
    state: PasskeyRegistration,
    user_id: String,
    name: String,
    started_at: i64,
}

/// One passkey as the page lists it.
struct Row {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

/// `GET /account/passkeys`.
#[derive(Template)]
#[template(path = "pages/account/passkeys.html")]
struct PasskeysPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    rows: Vec<Row>,
    notice: Option<String>,
    error: Option<&'a str>,
    name: &'a str,
    csrf: &'a str,
    email: &'a str,
    has_password: bool,
    available: bool,
    full: bool,
    asset_version: &'a str,
}

/// The page of a registration ceremony (the script asks the authenticator).
#[derive(Template)]
#[template(path = "pages/account/passkeys_add.html")]
struct AddPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    name: &'a str,
    options: &'a str,
    csrf: &'a str,
    asset_version: &'a str,
}

/// The passkeys page, with `error` and `status` after a refused form.
async fn passkeys_page(
    state: &AppState,
    session: &Session,
    user: &User,
    error: Option<&str>,
    name: &str,
    status: StatusCode,
) -> Result<Response> {
    let passkeys = store::list(&state.db.pool, &user.id).await?;
    let full = passkeys.len() >= MAX_PASSKEYS;
    let rows = passkeys
        .into_iter()
        .map(|p| Row {
            id: p.id,
            name: p.name,
            created: display::utc(p.created_at),
            last_used: p
                .last_used_at
                .map(display::utc)
                .unwrap_or_else(|| "never".to_owned()),
        })
        .collect();
    let csrf = csrf::token()?;
    let mut response = render(&PasskeysPage {
        nav: nav(routes::ACCOUNT_PASSKEYS),
        rows,
        notice: notice::take(session).await?,
        error,
        name,
        csrf: &csrf,
        email: &user.email,
        has_password: reauth::has_password(state, user).await?,
        available: ceremony::relying_party(&state.config).is_some(),
        full,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = status;
    Ok(response)
}

/// `GET /account/passkeys`: the list, and the form that adds one.
pub async fn page(State(state): State<AppState>, session: Session) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_PASSKEYS).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    passkeys_page(&state, &session, &holder.user, None, "", StatusCode::OK).await
}

/// Fields of the "Add a passkey" form.
#[derive(Deserialize)]
pub struct AddForm {
    /// Defaulted so that a missing token is refused like a wrong one (400).
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// A passkey name: trimmed, 1 to [`MAX_NAME_CHARS`] characters, no control characters.
pub fn check_name(name: &str) -> std::result::Result<&str, &'static str> {
    let name = name.trim();
    if name.is_empty() {
        return Err("Give the passkey a name, such as the device it is on.");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err("The name is too long (64 characters at most).");
    }
    if name.chars().any(char::is_control) {
        return Err("The name cannot contain control characters.");
    }
    Ok(name)
}

/// `POST /account/passkeys/add` `{name}`: starts a registration; answers the ceremony page.
pub async fn add(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<AddForm>,
) -> Result<Response> {
    // Adding a factor needs a recent sign-in (`pages::RECENT_SIGN_IN_SECS`).
    let holder = match recently_signed_in_holder(&state, &session, routes::ACCOUNT_PASSKEYS).await?
    {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    csrf::check(&form.csrf)?;
    let user = &holder.user;
    let bad = StatusCode::BAD_REQUEST;
    let name = match check_name(&form.name) {
        Ok(name) => name,
        Err(error) => {
            return passkeys_page(&state, &session, user, Some(error), &form.name, bad).await;
        }
    };
    let Some(webauthn) = ceremony::relying_party(&state.config) else {
        return passkeys_page(
            &state,
            &session,
            user,
            Some(ceremony::UNAVAILABLE),
            name,
            bad,
        )
        .await;
    };
    let existing = store::list(&state.db.pool, &user.id).await?;
    if existing.len() >= MAX_PASSKEYS {
        let error = "This account has as many passkeys as it can hold. Remove one first.";
        return passkeys_page(&state, &session, user, Some(error), name, bad).await;
    }
    if existing.iter().any(|p| p.name == name) {
        let error = "Another passkey already has this name.";
        return passkeys_page(&state, &session, user, Some(error), name, bad).await;
    }
    // WebAuthn L2 §5.4.3 excludeCredentials: an authenticator that holds one of the account's
    // passkeys already is not registered twice.
    let exclude: Vec<CredentialID> = existing
        .iter()
        .map(|p| p.credential.cred_id().clone())
        .collect();
    let display_name = if user.name.is_empty() {
        &user.email
    } else {
        &user.name
    };
    let (options, registration) = webauthn
        .start_passkey_registration(
            ceremony::user_handle(&user.id),
            &user.email,
            display_name,
            Some(exclude),
        )
        .map_err(|e| AppError::Internal(anyhow::anyhow!("passkey registration: {e}")))?;
    let options = options_with_discoverable_uv(&options)?;
    ceremony::keep(
        &session,
        REGISTRATION_KEY,
        &Registration {
            state: registration,
            user_id: user.id.clone(),
            name: name.to_owned(),
            started_at: state.clock.now(),
        },
    )
    .await?;
    let csrf = csrf::token()?;
    let mut response = render(&AddPage {
        nav: nav(routes::ACCOUNT_PASSKEYS),
        name,
        options: &options,
        csrf: &csrf,
        asset_version: ASSET_VERSION,
    });
    allow_script(&mut response);
    Ok(response)
}

/// Fields of the form `static/passkeys.js` submits after the authenticator answered.
#[derive(Deserialize)]
pub struct FinishForm {
    #[serde(default)]
    csrf: String,
    /// The `PublicKeyCredential` as JSON (binary fields base64url).
    #[serde(default)]
    credential: String,
}

/// `POST /account/passkeys/finish` `{credential}`: verifies the authenticator's answer against the
/// ceremony kept in the session (taken out: an answer is accepted once), stores the passkey,
/// audits `mfa.passkey_added` and mails the owner, in one transaction; 303 back with a notice.
pub async fn finish(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<FinishForm>,
) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_PASSKEYS).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    csrf::check(&form.csrf)?;
    let user = &holder.user;
    let now = state.clock.now();
    let registration = ceremony::take::<Registration>(&session, REGISTRATION_KEY)
        .await?
        .filter(|r| r.user_id == user.id)
        .ok_or_else(|| {
            AppError::invalid(
                "No passkey is being added in this browser. Start again from the Passkeys page.",
            )
        })?;
    if now - registration.started_at > CEREMONY_TTL_SECS {
        return Err(AppError::invalid(
            "Adding the passkey took too long. Start again from the Passkeys page.",
        ));
    }
    let answer: RegisterPublicKeyCredential = ceremony::parse_credential(&form.credential)?;
    let webauthn = ceremony::require_relying_party(&state.config)?;
    let passkey = webauthn
        .finish_passkey_registration(&answer, &registration.state)
        .map_err(|e| {
            tracing::info!(user_id = %user.id, error = %e, "passkey registration refused");
            AppError::invalid(
                "The passkey could not be verified. Start again from the Passkeys page.",
            )
        })?;
    let credential_id = URL_SAFE_NO_PAD.encode(passkey.cred_id().as_ref());
    let mut tx = state.db.begin().await?;
    // WebAuthn L2 §7.1 step 22: a credential id registered already (to anyone) is refused.
    if store::find_by_credential(&mut *tx, &credential_id)
        .await?
        .is_some()
    {
        return Err(AppError::invalid("This passkey is registered already."));
    }
    // The first factor of an account comes with recovery codes (the way back when it is lost),
    // as an authenticator app's enrolment does.
    let first_factor = !crate::mfa::factors(&mut *tx, &user.id).await?.any();
    let id = new_id();
    let name = registration.name.as_str();
    store::insert(
        &mut tx,
        &NewPasskey {
            id: &id,
            user_id: &user.id,
            credential_id: &credential_id,
            name,
            credential: &passkey,
        },
        now,
    )
    .await?;
    crate::mfa::record_change(
        &mut tx,
        &state,
        &meta,
        crate::mfa::Change {
            user_id: &user.id,
            email: &user.email,
            action: action::MFA_PASSKEY_ADDED,
            details: json!({ "passkey_id": id, "name": name }),
            mail: FactorChange::PasskeyAdded(name),
        },
        now,
    )
    .await?;
    let codes = if first_factor {
        recovery_codes::replace(&mut tx, &state, &user.id, now).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    state.mailer.wake();
    let message = format!("The passkey \"{name}\" was added.");
    if codes.is_empty() {
        return notice::back(&session, routes::ACCOUNT_PASSKEYS, &message).await;
    }
    Ok(recovery_codes::shown_page(
        routes::ACCOUNT_PASSKEYS,
        &message,
        &codes,
        routes::ACCOUNT_PASSKEYS,
    ))
}

/// Fields of a "Remove" form.
#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    password: String,
}

/// `POST /account/passkeys/remove` `{id, password}`: removes one of the person's passkeys once the
/// password is re-entered; audits `mfa.passkey_removed` and mails the owner, in one transaction.
/// Another account's passkey id is "not found" (404), never a hint that it exists.
pub async fn remove(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(mut form): Form<RemoveForm>,
) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_PASSKEYS).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    csrf::check(&form.csrf)?;
    let user = &holder.user;
    let Some(found) = store::find_for_user(&state.db.pool, &user.id, form.id.trim()).await? else {
        return Err(AppError::not_found(
            "There is no such passkey on your account.",
        ));
    };
    let password = Password::new(std::mem::take(&mut form.password));
    if let Some(refused) = reauth::verify(&state, user, &password)
        .await?
        .page_refusal()
    {
        let message = Some(refused.message.as_str());
        let page = passkeys_page(&state, &session, user, message, "", refused.status).await?;
        return Ok(refused.finish(page));
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    if !store::delete(&mut tx, &user.id, &found.id).await? {
        let gone = "That passkey had already been removed.";
        return notice::back(&session, routes::ACCOUNT_PASSKEYS, gone).await;
    }
    // Recovery codes stand in for a lost factor; with no factor left they would open nothing.
    if !crate::mfa::factors(&mut *tx, &user.id).await?.any() {
        recovery_codes::delete_all(&mut *tx, &user.id).await?;
    }
    crate::mfa::record_change(
        &mut tx,
        &state,
        &meta,
        crate::mfa::Change {
            user_id: &user.id,
            email: &user.email,
            action: action::MFA_PASSKEY_REMOVED,
            details: json!({ "passkey_id": found.id, "name": found.name }),
            mail: FactorChange::PasskeyRemoved(&found.name),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    state.mailer.wake();
    let message = format!("The passkey \"{}\" was removed.", found.name);
    notice::back(&session, routes::ACCOUNT_PASSKEYS, &message).await
}

/// Fields of a "Rename" form.
#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

/// `POST /account/passkeys/rename` `{id, name}`: renames one of the person's passkeys (audited
/// `mfa.passkey_renamed`); another account's passkey id is "not found" (404).
pub async fn rename(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<RenameForm>,
) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_PASSKEYS).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    csrf::check(&form.csrf)?;
    let user = &holder.user;
    let id = form.id.trim();
    let Some(found) = store::find_for_user(&state.db.pool, &user.id, id).await? else {
        return Err(AppError::not_found(
            "There is no such passkey on your account.",
        ));
    };
    let bad = StatusCode::BAD_REQUEST;
    let name = match check_name(&form.name) {
        Ok(name) => name,
        Err(error) => return passkeys_page(&state, &session, user, Some(error), "", bad).await,
    };
    let others = store::list(&state.db.pool, &user.id).await?;
    if others.iter().any(|p| p.id != found.id && p.name == name) {
        let error = "Another passkey already has this name.";
        return passkeys_page(&state, &session, user, Some(error), "", bad).await;
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    if !store::rename(&mut tx, &user.id, &found.id, name).await? {
        return Err(AppError::not_found(
            "There is no such passkey on your account.",
        ));
    }
    audit::record(
        &mut *tx,
        &AuditEvent {
            org_id: None,
            actor: &Actor::user(user.id.clone(), meta),
            action: action::MFA_PASSKEY_RENAMED,
            target_type: Some("user"),
            target_id: Some(&user.id),
            details: json!({ "passkey_id": found.id, "from": found.name, "to": name }),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    let message = format!("The passkey is now called \"{name}\".");
    notice::back(&session, routes::ACCOUNT_PASSKEYS, &message).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("  Laptop "), Ok("Laptop"));
        assert!(check_name("   ").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(check_name(&"é".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(check_name("a\u{7}b").is_err());
    }
}
