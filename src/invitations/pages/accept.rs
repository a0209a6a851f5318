//! The accept forms: one click for a signed-in invitee (`POST /invitation`), name and password for a
//! new person (`POST /invitation/register`), and the "you joined" page. Each acceptance is one
//! transaction: the invitation marked accepted (only if still pending, so it works once), the
//! membership, the address marked verified (the link proved it), and the audit events.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::open::{RegisterPage, current_user, is_invitee, load};
use super::{ACCEPTED_KEY, Accepted, Gone, gone_page, session_error, token_hash};
use crate::accounts::{self, NewAccount};
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::crypto::password::Password;
use crate::crypto::tokens::TokenHash;
use crate::db::Tx;
use crate::error::{AppError, Result};
use crate::invitations::{Invitation, store};
use crate::login::session;
use crate::oauth::authorize::see_other;
use crate::orgs::{Membership, store as org_store};
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, mismatched, render, sentence};
use crate::web::request_meta::RequestMeta;

/// Fields of the "Accept" form.
#[derive(Debug, Deserialize)]
pub struct AcceptForm {
    /// Defaulted so that a missing token is refused like a wrong one (400).
    #[serde(default)]
    csrf: String,
}

/// Fields of the new-account form.
#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    /// The page always sends it; a scripted client that leaves it out is not refused for that.
    #[serde(default)]
    password_confirm: Option<String>,
}

/// The "you joined" page.
#[derive(Template)]
#[template(path = "pages/invitation_accepted.html")]
struct AcceptedPage<'a> {
    org_name: &'a str,
    role: &'a str,
    kept_existing: bool,
    asset_version: &'a str,
}

/// Accepts `inv` for `user_id` inside `tx`; `Ok(None)` when it is no longer pending (accepted,
/// revoked, renewed or expired meanwhile). A person who is a member already keeps their role.
async fn accept_in(
    tx: &mut Tx,
    inv: &Invitation,
    hash: &TokenHash,
    user_id: &str,
    meta: RequestMeta,
    now: i64,
) -> Result<Option<Accepted>> {
    if !store::accept(&mut **tx, &inv.id, hash, user_id, now).await? {
        return Ok(None);
    }
    accounts::store::mark_email_verified(&mut **tx, user_id, now).await?;
    let membership = Membership {
        org_id: inv.org_id.clone(),
        user_id: user_id.to_owned(),
        role: inv.role,
        joined_at: now,
    };
    // Look first: on PostgreSQL a refused insert would abort the transaction.
    let existing = org_store::find_role(&mut **tx, &inv.org_id, user_id).await?;
    let added = existing.is_none() && org_store::insert_membership(&mut **tx, &membership).await?;
    let role = existing.unwrap_or(inv.role);
    let actor = Actor::user(user_id, meta);
    let accepted = AuditEvent {
        org_id: Some(&inv.org_id),
        actor: &actor,
        action: action::INVITATION_ACCEPTED,
        target_type: Some("invitation"),
        target_id: Some(&inv.id),
        details: json!({"email": inv.email, "role": inv.role, "already_member": !added}),
    };
    audit::record(&mut **tx, &accepted, now).await?;
    if added {
        crate::orgs::record_member_added(&mut **tx, &membership, &actor, now).await?;
    }
    Ok(Some(Accepted {
        org_id: inv.org_id.clone(),
        role: role.to_string(),
        kept_existing: !added,
    }))
}

/// After a commit: remember the outcome and show it (303). The token's hash stays in its cookie,
/// so that a second submission finds the invitation used and says so.
async fn finish(session: &Session, accepted: &Accepted) -> Result<Response> {
    session
        .insert(ACCEPTED_KEY, accepted)
        .await
        .map_err(session_error)?;
    Ok(see_other(routes::INVITATION_ACCEPTED))
}

/// `POST /invitation`: the signed-in invitee accepts. Anyone else is sent back to the page, which
/// explains what to do.
pub async fn accept(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<AcceptForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let Some(hash) = token_hash() else {
        return Ok(gone_page(Gone::NoLink));
    };
    let Some(user) = current_user(&state, &session).await? else {
        return Ok(see_other(routes::INVITATION));
    };
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let Some(inv) = store::find_by_token(&mut *tx, &hash).await? else {
        return Ok(gone_page(Gone::Unknown));
    };
    if let Some(why) = super::unusable(&inv, now) {
        return Ok(gone_page(why));
    }
    if !is_invitee(&user, &inv) {
        return Ok(see_other(routes::INVITATION));
    }
    let Some(accepted) = accept_in(&mut tx, &inv, &hash, &user.id, meta, now).await? else {
        return Ok(gone_page(Gone::Used));
    };
    tx.commit().await?;
    tracing::info!(invitation_id = %inv.id, user_id = %user.id, "invitation accepted");
    finish(&session, &accepted).await
}

/// `POST /invitation/register`: a new person sets a name and a password; the account (address
/// verified), the membership and the acceptance are written in one transaction, then the person is
/// signed in.
pub async fn register(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<RegisterForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let Some(hash) = token_hash() else {
        return Ok(gone_page(Gone::NoLink));
    };
    if current_user(&state, &session).await?.is_some() {
        return Ok(see_other(routes::INVITATION));
    }
    let (inv, _org, summary) = match load(&state).await? {
        Ok(found) => found,
        Err(why) => return Ok(gone_page(why)),
    };
    // `password_error`: the message goes under the password field rather than above the form.
    let form_error = |message: &str, password_error: bool| -> Result<Response> {
        let csrf = form.csrf.as_str();
        let mut response = render(&RegisterPage {
            s: &summary,
            csrf,
            name: &form.name,
            error: (!password_error).then_some(message),
            password_error: password_error.then_some(message),
            min_password: crate::crypto::password::MIN_PASSWORD_CHARS,
            asset_version: ASSET_VERSION,
        });
        *response.status_mut() = StatusCode::BAD_REQUEST;
        Ok(response)
    };
    if mismatched(&form.password, form.password_confirm.as_deref()) {
        return form_error("The two passwords do not match.", false);
    }
    // A cheap check first, so a taken address costs no Argon2 work; the unique index decides races.
    if accounts::store::find_by_email(&state.db.pool, &inv.email)
        .await?
        .is_some()
    {
        return Ok(see_other(routes::INVITATION));
    }
    let password = Password::new(form.password.clone());
    let prepared = accounts::prepare_account(
        &state.hasher,
        NewAccount {
            email: &inv.email,
            name: &form.name,
            password: &password,
            email_verified: true,
        },
    )
    .await;
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(AppError::Invalid(message)) => return form_error(&sentence(&message), false),
        Err(AppError::Problem { code, detail, .. })
            if code == accounts::password_strength::WEAK_PASSWORD =>
        {
            return form_error(&sentence(&detail), true);
        }
        Err(other) => return Err(other),
    };
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    match store::find_by_token(&mut *tx, &hash).await? {
        Some(current) if current.id == inv.id => {}
        _ => return Ok(gone_page(Gone::Unknown)),
    }
    let user = match accounts::insert_account(&mut *tx, &prepared, now).await {
        Ok(user) => user,
        // Someone created the account meanwhile: the page now asks to log in.
        Err(AppError::Conflict(_)) => return Ok(see_other(routes::INVITATION)),
        Err(other) => return Err(other),
    };
    let Some(accepted) = accept_in(&mut tx, &inv, &hash, &user.id, meta.clone(), now).await? else {
        return Ok(gone_page(Gone::Used));
    };
    tx.commit().await?;
    tracing::info!(invitation_id = %inv.id, user_id = %user.id, "account created from invitation");
    session::sign_in(&session, &state.clock, &user.id, &["pwd"], &meta).await?;
    finish(&session, &accepted).await
}

/// `GET /invitation/accepted`: "You joined <org> as <role>", with a link home; without a recent
/// acceptance in this session, a redirect home.
pub async fn accepted(State(state): State<AppState>, session: Session) -> Result<Response> {
    let Some(accepted) = session
        .get::<Accepted>(ACCEPTED_KEY)
        .await
        .map_err(session_error)?
    else {
        return Ok(see_other(routes::HOME));
    };
    let Some(org) = org_store::find_org(&state.db.pool, &accepted.org_id).await? else {
        return Ok(see_other(routes::HOME));
    };
    Ok(render(&AcceptedPage {
        org_name: &org.name,
        role: &accepted.role,
        kept_existing: accepted.kept_existing,
        asset_version: ASSET_VERSION,
    }))
}
