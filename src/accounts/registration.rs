//! Sign-up, shared by the page and the JSON API: one transaction creates the account, the optional
//! organization (with the new user as owner), their audit events, and the verification token and
//! mail, so either all of it happens or none of it.
//!
//! Sign-ups are limited per client address ([`MAX_SIGNUPS_PER_IP`] per [`SIGNUP_WINDOW_SECS`]),
//! counted from the `user.signed_up` audit events in the database, so that every server process
//! agrees (OWASP Automated Threats OAT-019 "Account Creation").

use axum::http::StatusCode;
use serde_json::json;
use sqlx::AnyConnection;

use super::{NewAccount, User, store, verification};
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent};
use crate::crypto::password::Password;
use crate::crypto::tokens::new_id;
use crate::db::Exec;
use crate::error::AppError;
use crate::orgs::roles::Role;
use crate::orgs::{self, Membership, Organization, slug};
use crate::web::request_meta::RequestMeta;

/// Sign-ups from one client address per [`SIGNUP_WINDOW_SECS`]; further ones are refused (429).
pub const MAX_SIGNUPS_PER_IP: i64 = 10;
/// The window of [`MAX_SIGNUPS_PER_IP`].
pub const SIGNUP_WINDOW_SECS: i64 = 60 * 60;

/// Numeric suffixes tried (`acme-2`, `acme-3`, ...) before a name is declared too common.
const MAX_SLUG_SUFFIX: u32 = 50;

/// What a person submits to sign up.
#[derive(Debug)]
pub struct SignupInput<'a> {
    /// Email address (verified afterwards by mail).
    pub email: &'a str,
    /// Display name, may be empty.
    pub name: &'a str,
    /// The new password.
    pub password: &'a Password,
    /// Name of an organization to create with the new user as owner, if any.
    pub organization: Option<&'a str>,
}

/// A new account and, when one was asked for, its organization.
#[derive(Debug)]
pub struct Registered {
    /// The new user (`email_verified` false).
    pub user: User,
    /// The organization the user owns, if one was created.
    pub organization: Option<Organization>,
}

/// Why a sign-up was refused. Each variant has a stable problem type for the API and a message for
/// the page.
#[derive(Debug)]
pub enum SignupError {
    /// The address is malformed.
    InvalidEmail(String),
    /// The display name is too long or has control characters.
    InvalidName(String),
    /// The password is too short, too long or too easy to guess (NIST SP 800-63B §5.1.1.2).
    WeakPassword(String),
    /// The organization name is empty, too long or has control characters.
    InvalidOrganization(String),
    /// An account with this address exists (in any letter case).
    EmailTaken,
    /// [`MAX_SIGNUPS_PER_IP`] accounts were created from this address within the window.
    TooMany,
    /// Anything else (database, hashing): an internal error.
    Other(AppError),
}

impl SignupError {
    /// The message shown to the person or API caller.
    pub fn message(&self) -> String {
        match self {
            SignupError::InvalidEmail(m)
            | SignupError::InvalidName(m)
            | SignupError::WeakPassword(m)
            | SignupError::InvalidOrganization(m) => m.clone(),
            SignupError::EmailTaken => "an account with this email address exists".to_owned(),
            SignupError::TooMany => "too many accounts were created from your network; \
                                     try again in an hour"
                .to_owned(),
            SignupError::Other(e) => e.to_string(),
        }
    }

    /// The RFC 9457 problem for the API, with a stable `type` per reason.
    pub fn into_problem(self) -> AppError {
        let message = self.message();
        let (status, code) = match self {
            SignupError::InvalidEmail(_) => (StatusCode::BAD_REQUEST, "invalid-email"),
            SignupError::InvalidName(_) => (StatusCode::BAD_REQUEST, "invalid-name"),
            SignupError::WeakPassword(_) => (
                StatusCode::BAD_REQUEST,
                super::password_strength::WEAK_PASSWORD,
            ),
            SignupError::InvalidOrganization(_) => {
                (StatusCode::BAD_REQUEST, "invalid-organization-name")
            }
            SignupError::EmailTaken => (StatusCode::CONFLICT, "email-taken"),
            SignupError::TooMany => (StatusCode::TOO_MANY_REQUESTS, "too-many-signups"),
            SignupError::Other(e) => return e,
        };
        AppError::problem(status, code, message)
    }
}

impl From<AppError> for SignupError {
    fn from(err: AppError) -> Self {
        SignupError::Other(err)
    }
}

impl From<sqlx::Error> for SignupError {
    fn from(err: sqlx::Error) -> Self {
        SignupError::Other(err.into())
    }
}

/// Creates an account (unverified) and, if asked, an organization it owns; queues the verification
/// mail and wakes the mailer after the commit. `meta` is recorded in the audit log.
pub async fn register(
    state: &AppState,
    input: &SignupInput<'_>,
    meta: &RequestMeta,
) -> Result<Registered, SignupError> {
    // Every check that needs no database first, so a refused form costs no Argon2 work.
    let email = super::validate_email(input.email).map_err(|_| {
        SignupError::InvalidEmail(if input.email.is_ascii() {
            "enter a valid email address".to_owned()
        } else {
            super::NON_ASCII_EMAIL.to_owned()
        })
    })?;
    let name =
        super::validate_name(input.name).map_err(|e| SignupError::InvalidName(e.to_string()))?;
    super::password_strength::check_new_password(input.password, &email, &name)
        .map_err(|e| SignupError::WeakPassword(e.message().to_owned()))?;
    let org_name = match input.organization.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => Some(
            orgs::validate_org_name(n)
                .map_err(|e| SignupError::InvalidOrganization(e.to_string()))?,
        ),
        None => None,
    };
    // Before any hashing: a refused flood costs no Argon2 work. Checked again in the transaction.
    check_limit(&state.db.pool, meta, state.clock.now()).await?;
    // A cheap look-up so a taken address costs no hashing; the unique index decides races.
    if store::find_by_email(&state.db.pool, &email)
        .await?
        .is_some()
    {
        return Err(SignupError::EmailTaken);
    }
    let account = super::prepare_account(
        &state.hasher,
        NewAccount {
            email: &email,
            name: &name,
            password: input.password,
            email_verified: false,
        },
    )
    .await?;

    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    check_limit(&mut *tx, meta, now).await?;
    let user = super::insert_account(&mut *tx, &account, now)
        .await
        .map_err(|e| match e {
            AppError::Conflict(_) => SignupError::EmailTaken,
            other => SignupError::Other(other),
        })?;
    audit::record(
        &mut *tx,
        &AuditEvent {
            org_id: None,
            actor: &Actor::anonymous(meta.clone()),
            action: audit::action::USER_SIGNED_UP,
            target_type: Some("user"),
            target_id: Some(&user.id),
            details: json!({"organization": org_name.is_some()}),
        },
        now,
    )
    .await?;
    let actor = Actor::user(user.id.clone(), meta.clone());
    let organization = match org_name {
        Some(org_name) => Some(create_owned_org(&mut tx, &org_name, &user, &actor, now).await?),
        None => None,
    };
    verification::issue(&mut tx, state, &user, now).await?;
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!(user_id = %user.id, "account signed up");
    Ok(Registered { user, organization })
}

/// Refuses a sign-up from an address that created [`MAX_SIGNUPS_PER_IP`] accounts within the
/// window. Requests without a known address are not limited (there is nothing to count them by).
async fn check_limit<'c>(
    ex: impl Exec<'c>,
    meta: &RequestMeta,
    now: i64,
) -> Result<(), SignupError> {
    let Some(ip) = meta.ip.as_deref() else {
        return Ok(());
    };
    let since = now - SIGNUP_WINDOW_SECS;
    if audit::count_from_ip(ex, audit::action::USER_SIGNED_UP, ip, since).await?
        >= MAX_SIGNUPS_PER_IP
    {
        tracing::info!(ip, "sign-up limit reached");
        return Err(SignupError::TooMany);
    }
    Ok(())
}

/// Creates the organization `name` with `owner` as its owner, recording both audit events.
async fn create_owned_org(
    conn: &mut AnyConnection,
    name: &str,
    owner: &User,
    actor: &Actor,
    now: i64,
) -> Result<Organization, SignupError> {
    let slug = free_slug(&mut *conn, name).await?;
    let org = Organization {
        id: new_id(),
        slug,
        name: name.to_owned(),
        created_at: now,
        require_mfa: false,
        sso_required: false,
    };
    if !orgs::store::insert_org(&mut *conn, &org).await? {
        // Another sign-up took the slug between our look-up and the insert (PostgreSQL has aborted
        // the transaction by now, so the caller rolls back).
        return Err(SignupError::Other(AppError::problem(
            StatusCode::CONFLICT,
            "slug-taken",
            "the organization's short name was taken at this very moment; please try again",
        )));
    }
    let membership = Membership {
        org_id: org.id.clone(),
        user_id: owner.id.clone(),
        role: Role::Owner,
        joined_at: now,
    };
    orgs::store::insert_membership(&mut *conn, &membership).await?;
    audit::record(
        &mut *conn,
        &AuditEvent {
            org_id: Some(&org.id),
            actor,
            action: audit::action::ORG_CREATED,
            target_type: Some("organization"),
            target_id: Some(&org.id),
            details: json!({"name": org.name, "slug": org.slug, "via": "signup"}),
        },
        now,
    )
    .await?;
    audit::record(
        &mut *conn,
        &AuditEvent {
            org_id: Some(&org.id),
            actor,
            action: audit::action::MEMBER_ADDED,
            target_type: Some("user"),
            target_id: Some(&owner.id),
            details: json!({"role": Role::Owner.as_str(), "via": "signup"}),
        },
        now,
    )
    .await?;
    Ok(org)
}

/// A slug for `name` that is valid and free: the derived slug, or with `-2`, `-3`, ... appended.
/// Names that give no usable slug (too short, reserved, no Latin letters) fall back to `<slug>-org`
/// or `organization`.
async fn free_slug(ex: &mut AnyConnection, name: &str) -> Result<String, SignupError> {
    let base = base_slug(name);
    for n in 1..=MAX_SLUG_SUFFIX {
        let candidate = candidate(&base, n);
        if slug::validate(&candidate).is_ok() && !slug_taken(&mut *ex, &candidate).await? {
            return Ok(candidate);
        }
    }
    Err(SignupError::InvalidOrganization(
        "this organization name is too common; choose a more distinctive one".to_owned(),
    ))
}

async fn slug_taken<'c>(ex: impl Exec<'c>, candidate: &str) -> Result<bool, sqlx::Error> {
    Ok(orgs::store::find_org(ex, candidate).await?.is_some())
}

/// The slug derived from `name`, or `<slug>-org` when that is too short or reserved, or
/// `organization` when the name has no ASCII letters or digits.
fn base_slug(name: &str) -> String {
    let derived = slug::from_name(name);
    [derived.clone(), format!("{derived}-org")]
        .into_iter()
        .find(|s| slug::validate(s).is_ok())
        .unwrap_or_else(|| "organization".to_owned())
}

/// The `n`-th slug to try: `base` itself, then `base-2`, `base-3`, ... within the length limit.
fn candidate(base: &str, n: u32) -> String {
    if n <= 1 {
        return base.to_owned();
    }
    let suffix = format!("-{n}");
    let keep = slug::MAX_SLUG_LEN.saturating_sub(suffix.len());
    let stem: String = base.chars().take(keep).collect();
    format!("{}{suffix}", stem.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_slugs_are_always_valid() {
        assert_eq!(base_slug("Acme Corp"), "acme-corp");
        assert_eq!(base_slug("IO"), "io-org");
        assert_eq!(base_slug("API"), "api-org");
        assert_eq!(base_slug("日本"), "organization");
        assert_eq!(base_slug("!!!"), "organization");
        for name in [
            "Acme Corp",
            "IO",
            "API",
            "日本",
            "x",
            &"long name ".repeat(20),
        ] {
            assert!(slug::validate(&base_slug(name)).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn candidates_add_a_numeric_suffix_within_the_length_limit() {
        assert_eq!(candidate("acme", 1), "acme");
        assert_eq!(candidate("acme", 2), "acme-2");
        let long = base_slug(&"word ".repeat(30));
        let tenth = candidate(&long, 10);
        assert!(
            tenth.ends_with("-10") && tenth.len() <= slug::MAX_SLUG_LEN,
            "{tenth}"
        );
        assert!(slug::validate(&tenth).is_ok());
    }

    #[test]
    fn each_refusal_has_its_own_problem_type() {
        let code = |e: SignupError| e.into_problem().code();
        assert_eq!(code(SignupError::EmailTaken), "email-taken");
        assert_eq!(code(SignupError::TooMany), "too-many-signups");
        assert_eq!(code(SignupError::WeakPassword("x".into())), "weak-password");
        assert_eq!(code(SignupError::InvalidEmail("x".into())), "invalid-email");
        assert_eq!(code(SignupError::InvalidName("x".into())), "invalid-name");
        assert_eq!(
            code(SignupError::InvalidOrganization("x".into())),
            "invalid-organization-name"
        );
    }
}
