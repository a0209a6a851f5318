//! Accounts: the people who sign in. Creating users, looking them up by email (without regard to case),
//! the rules an email address and a password must meet, sign-up (page and JSON API) and email
//! verification; the operator's controls over users ([`admin`], its API [`admin_api`]).

pub mod admin;
pub mod admin_api;
pub mod api;
pub mod lifecycle;
pub mod password_strength;
pub mod registration;
pub mod signup;
pub mod store;
pub mod verification;

use axum::Router;
use axum::routing::{get, post};

use serde::Serialize;

use crate::app::AppState;
use crate::clock::Clock;
use crate::crypto::password::{Password, PasswordHasher};
use crate::db::{Database, Exec};
use crate::error::{AppError, Result};

/// Pages of the accounts feature: sign-up and email verification (they use the browser session).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            crate::routes::SIGNUP,
            get(signup::signup_page).post(signup::signup_submit),
        )
        .route(crate::routes::SIGNUP_DONE, get(signup::done_page))
        .route(
            crate::routes::VERIFY_EMAIL,
            get(verification::verify_page).post(verification::verify_submit),
        )
        .route(
            crate::routes::VERIFY_EMAIL_DONE,
            get(verification::verified_page),
        )
        .route(
            crate::routes::VERIFY_EMAIL_RESEND,
            post(verification::resend),
        )
}

/// JSON endpoints of the accounts feature (`POST /api/v1/signup`, and the operator's
/// `/api/v1/users`), mounted in the `/api` group whose errors are problem+json.
pub fn api_router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(api::signup))
        .routes(routes!(admin_api::list))
        .routes(routes!(
            admin_api::read,
            admin_api::update,
            admin_api::delete
        ))
        .routes(routes!(admin_api::revoke_sessions))
        .routes(routes!(admin_api::reset_mfa))
}

/// Longest accepted email address (RFC 5321 §4.5.3.1.3 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest accepted display name.
pub const MAX_NAME_LEN: usize = 200;

/// A user as the rest of the application sees it (no password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    /// Random id (UUIDv7), the `sub` of tokens.
    pub id: String,
    /// The address as the user typed it.
    pub email: String,
    /// Display name, possibly empty.
    pub name: String,
    /// Whether the address has been proven (verification link or invitation).
    pub email_verified: bool,
    /// Disabled users cannot sign in or refresh.
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// Why an address with characters outside ASCII is refused, as shown to people.
pub const NON_ASCII_EMAIL: &str = "use an email address made of ASCII characters only: \
     addresses with accents or other scripts (in the name or the domain) are not accepted";

/// Normalises and checks an email address, the one check every path that takes a new address uses
/// (sign-up page and API, `user create`, invitations, `org add-member`): trimmed, one `@`, non-empty
/// local part and domain, no whitespace or control characters, at most [`MAX_EMAIL_LEN`] bytes, and
/// ASCII only. Unicode addresses (RFC 6531) are refused rather than case-folded: folding rules differ
/// between mail systems, and look-alike characters would let a second account pass for an existing
/// one (Unicode TR 36 §2). An internationalised domain is accepted in its ASCII (`xn--`) form only.
///
/// Deliverability is proven by the verification mail, not by a regular expression.
pub fn validate_email(raw: &str) -> Result<String> {
    let email = raw.trim();
    let invalid = || AppError::invalid(format!("invalid email address {email:?}"));
    if email.is_empty() || email.len() > MAX_EMAIL_LEN {
        return Err(invalid());
    }
    if !email.is_ascii() {
        return Err(AppError::invalid(NON_ASCII_EMAIL));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    if local.is_empty() || domain.is_empty() || domain.contains('@') || domain.starts_with('.') {
        return Err(invalid());
    }
    if domain.ends_with('.') || domain.contains("..") {
        return Err(invalid());
    }
    Ok(email.to_owned())
}

/// The key under which an address is unique, and under which every lookup (login, reset,
/// invitations) finds it: trimmed, with ASCII letters lower-cased and nothing else changed (no
/// Unicode case folding, see [`validate_email`]).
pub fn email_key(email: &str) -> String {
    email.trim().to_ascii_lowercase()
}

/// Checks a display name: at most [`MAX_NAME_LEN`] characters, no control characters.
pub fn validate_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(AppError::invalid(format!(
            "name must be at most {MAX_NAME_LEN} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

/// What is needed to create an account.
#[derive(Debug)]
pub struct NewAccount<'a> {
    /// Email address, validated here.
    pub email: &'a str,
    /// Display name, may be empty.
    pub name: &'a str,
    /// The password, checked against the policy and hashed with Argon2id.
    pub password: &'a Password,
    /// True when the address is already proven (e.g. by an invitation link).
    pub email_verified: bool,
}

/// A validated account with its password hashed, ready to insert (inside the caller's transaction,
/// e.g. together with a membership when an invitation is accepted).
#[derive(Debug)]
pub struct PreparedAccount {
    email: String,
    name: String,
    password_hash: String,
    email_verified: bool,
}

impl PreparedAccount {
    /// The validated address.
    pub fn email(&self) -> &str {
        &self.email
    }
}

/// The refusal of a weak password: 400 `weak-password` with the reason and how to fix it.
pub fn weak_password(err: &password_strength::WeakPassword) -> AppError {
    AppError::problem(
        axum::http::StatusCode::BAD_REQUEST,
        password_strength::WEAK_PASSWORD,
        err.message(),
    )
}

/// Validates `new` (address, name, password length and strength) and hashes the password with Argon2id, off the
/// async threads. Touches no database.
pub async fn prepare_account(
    hasher: &PasswordHasher,
    new: NewAccount<'_>,
) -> Result<PreparedAccount> {
    let email = validate_email(new.email)?;
    let name = validate_name(new.name)?;
    password_strength::check_new_password(new.password, &email, &name)
        .map_err(|e| weak_password(&e))?;
    let password_hash = hasher.hash(new.password).await?;
    Ok(PreparedAccount {
        email,
        name,
        password_hash,
        email_verified: new.email_verified,
    })
}

/// Inserts a prepared account; 409 when the address is taken in any letter case. On PostgreSQL the
/// failed insert aborts the surrounding transaction, so the caller returns the error (and rolls back).
pub async fn insert_account<'c>(
    ex: impl Exec<'c>,
    account: &PreparedAccount,
    now: i64,
) -> Result<User> {
    let row = store::NewUserRow {
        email: &account.email,
        name: &account.name,
        password_hash: Some(&account.password_hash),
        email_verified: account.email_verified,
    };
    store::insert(ex, &row, now).await.map_err(|e| match e {
        store::InsertError::EmailTaken => email_taken(&account.email),
        store::InsertError::Db(e) => e.into(),
    })
}

/// Creates an account on its own. Refuses an invalid address, a weak password and an address already
/// taken in any letter case (409). Writes nothing on refusal.
pub async fn create_account(
    db: &Database,
    hasher: &PasswordHasher,
    clock: &Clock,
    new: NewAccount<'_>,
) -> Result<User> {
    // A cheap check first, so a taken address costs no Argon2 work; the unique index decides races.
    let email = validate_email(new.email)?;
    if store::find_by_email(&db.pool, &email).await?.is_some() {
        return Err(email_taken(&email));
    }
    let account = prepare_account(hasher, new).await?;
    insert_account(&db.pool, &account, clock.now()).await
}

fn email_taken(email: &str) -> AppError {
    AppError::conflict(format!("a user with email {email} already exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_trims() {
        assert_eq!(
            validate_email(" a@example.com ").ok().as_deref(),
            Some("a@example.com")
        );
        assert!(validate_email("first.last+tag@sub.example.co.uk").is_ok());
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "a",
            "@example.com",
            "a@",
            "a@@b",
            "a b@example.com",
            "a@.com",
            "a@b..c",
            "a@b.",
        ] {
            assert!(validate_email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn email_key_ignores_case() {
        assert_eq!(email_key("A@Example.COM"), email_key("a@example.com"));
    }

    #[test]
    fn only_ascii_letters_are_folded_and_unicode_is_refused() {
        // No Unicode folding: the Kelvin sign and dotted capital I stay what they are.
        assert_eq!(email_key("\u{212A}@example.com"), "\u{212A}@example.com");
        assert_eq!(email_key(" \u{130}X@Example.com "), "\u{130}x@example.com");
        for bad in [
            "jos\u{e9}@example.com",
            "\u{430}da@example.com",
            "ada@b\u{fc}cher.example",
            "\u{212A}elvin@example.com",
        ] {
            let e = validate_email(bad).err().map(|e| e.to_string());
            assert!(e.is_some_and(|m| m.contains("ASCII")), "{bad:?} accepted");
        }
        assert!(validate_email("ada@xn--bcher-kva.example").is_ok());
    }

    #[test]
    fn names_are_bounded() {
        assert!(validate_name("Ada Lovelace").is_ok());
        assert!(validate_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(validate_name("bad\u{0}name").is_err());
    }
}
