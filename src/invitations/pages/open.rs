//! `GET /invitation`: the page for the invitation this browser opened.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use super::{Gone, TOKEN_HASH_COOKIE, gone_page, token_hash, unusable};
use crate::accounts::{self, User};
use crate::app::AppState;
use crate::crypto::tokens::TokenHash;
use crate::error::{AppError, Result};
use crate::invitations::{Invitation, store};
use crate::login::session;
use crate::oauth::authorize::see_other;
use crate::orgs::Organization;
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::signed_cookies;

/// Longest token accepted in the link (ours are 43 characters).
const MAX_TOKEN_LEN: usize = 256;

/// Query of `GET /invitation`.
#[derive(Debug, Deserialize)]
pub struct OpenQuery {
    /// The token from the mailed link.
    pub token: Option<String>,
}

/// What every invitation page says about the invitation.
pub(super) struct Summary {
    /// Who invited ("Ada Lovelace (ada@example.com)", or "An administrator").
    pub inviter: String,
    /// The organization's name.
    pub org_name: String,
    /// The role offered.
    pub role: String,
    /// The invited address.
    pub email: String,
}

/// Signed in with the invited address: one "Accept" button.
#[derive(Template)]
#[template(path = "pages/invitation_accept.html")]
struct AcceptPage<'a> {
    s: &'a Summary,
    csrf: &'a str,
    asset_version: &'a str,
}

/// Signed in with another address.
#[derive(Template)]
#[template(path = "pages/invitation_mismatch.html")]
struct MismatchPage<'a> {
    s: &'a Summary,
    signed_in_as: &'a str,
    login_url: &'a str,
    csrf: &'a str,
    asset_version: &'a str,
}

/// Not signed in, and an account with the invited address exists: log in first.
#[derive(Template)]
#[template(path = "pages/invitation_login.html")]
struct LoginFirstPage<'a> {
    s: &'a Summary,
    login_url: &'a str,
    asset_version: &'a str,
}

/// Not signed in, no account: name and password.
#[derive(Template)]
#[template(path = "pages/invitation_register.html")]
pub(super) struct RegisterPage<'a> {
    pub s: &'a Summary,
    pub csrf: &'a str,
    pub name: &'a str,
    pub error: Option<&'a str>,
    /// Why the password was refused, shown under the field.
    pub password_error: Option<&'a str>,
    pub min_password: usize,
    pub asset_version: &'a str,
}

/// `/login?next=/invitation`: the login page brings the person back here.
fn login_url() -> String {
    let next: String =
        url::form_urlencoded::byte_serialize(routes::INVITATION.as_bytes()).collect();
    format!("{}?next={next}", routes::LOGIN)
}

/// `GET /invitation?token=…` keeps the token's hash in a signed cookie and redirects (303) to
/// `/invitation`; `GET /invitation` shows the page for that invitation.
pub async fn invitation_page(
    State(state): State<AppState>,
    session: Session,
    query: std::result::Result<Query<OpenQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(query) =
        query.map_err(|_| AppError::invalid("This invitation link is malformed."))?;
    if let Some(token) = query.token {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(gone_page(Gone::Unknown));
        }
        signed_cookies::set(TOKEN_HASH_COOKIE, TokenHash::of(&token).as_str(), None)?;
        return Ok(see_other(routes::INVITATION));
    }
    show(&state, &session).await
}

/// The invitation, its organization and its summary, or why there is none to accept.
pub(super) async fn load(
    state: &AppState,
) -> Result<std::result::Result<(Invitation, Organization, Summary), Gone>> {
    let Some(hash) = token_hash() else {
        return Ok(Err(Gone::NoLink));
    };
    let pool = &state.db.pool;
    let Some(inv) = store::find_by_token(pool, &hash).await? else {
        return Ok(Err(Gone::Unknown));
    };
    if let Some(why) = unusable(&inv, state.clock.now()) {
        return Ok(Err(why));
    }
    let Some(org) = crate::orgs::store::find_org(pool, &inv.org_id).await? else {
        return Ok(Err(Gone::Unknown));
    };
    let inviter = match &inv.invited_by {
        Some(id) => accounts::store::find_by_id(pool, id).await?,
        None => None,
    };
    let summary = Summary {
        inviter: match inviter {
            Some(u) if !u.name.is_empty() => format!("{} ({})", u.name, u.email),
            Some(u) => u.email,
            None => format!("An administrator of {}", org.name),
        },
        org_name: org.name.clone(),
        role: inv.role.to_string(),
        email: inv.email.clone(),
    };
    Ok(Ok((inv, org, summary)))
}

/// The signed-in user of this session, if any (and still existing).
pub(super) async fn current_user(state: &AppState, session: &Session) -> Result<Option<User>> {
    match session::signed_in(session, &state.clock).await? {
        Some(signed) => Ok(accounts::store::find_by_id(&state.db.pool, &signed.user_id).await?),
        None => Ok(None),
    }
}

/// True when `user` holds the invited address (letter case aside).
pub(super) fn is_invitee(user: &User, inv: &Invitation) -> bool {
    accounts::email_key(&user.email) == accounts::email_key(&inv.email)
}

/// Renders the page that fits the visitor.
pub(super) async fn show(state: &AppState, session: &Session) -> Result<Response> {
    let (inv, _org, s) = match load(state).await? {
        Ok(found) => found,
        Err(why) => return Ok(gone_page(why)),
    };
    let csrf = csrf::token()?;
    if let Some(user) = current_user(state, session).await? {
        if is_invitee(&user, &inv) {
            return Ok(render(&AcceptPage {
                s: &s,
                csrf: &csrf,
                asset_version: ASSET_VERSION,
            }));
        }
        let mut response = render(&MismatchPage {
            s: &s,
            signed_in_as: &user.email,
            login_url: &login_url(),
            csrf: &csrf,
            asset_version: ASSET_VERSION,
        });
        *response.status_mut() = StatusCode::FORBIDDEN;
        return Ok(response);
    }
    if accounts::store::find_by_email(&state.db.pool, &inv.email)
        .await?
        .is_some()
    {
        return Ok(render(&LoginFirstPage {
            s: &s,
            login_url: &login_url(),
            asset_version: ASSET_VERSION,
        }));
    }
    Ok(render(&RegisterPage {
        s: &s,
        csrf: &csrf,
        name: "",
        error: None,
        password_error: None,
        min_password: crate::crypto::password::MIN_PASSWORD_CHARS,
        asset_version: ASSET_VERSION,
    }))
}
