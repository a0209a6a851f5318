//! Upstream identities linked to accounts, by (connection, `iss`, `sub`) and never by email; the link
//! an existing account makes by signing in here once after a first upstream sign-in with its address;
//! and the account page that lists and removes them (`/account/identities`).
//!
//! Linking by email alone would let any upstream that asserts an address take over the account
//! here (OpenID Connect Core §5.7: only `iss` and `sub` identify the person), so the first upstream
//! sign-in with the address of an existing account only leaves a [`PendingLink`] in the session;
//! the link is made once that account's owner signs in here with every factor
//! ([`complete_pending_link`], called by [`crate::login::completion::finish_sign_in`]).

pub mod store;

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::Session;

use super::connections::store as connections_store;
use super::provisioning::{self, VerifiedIdentity};
use crate::accounts::User;
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::db::Tx;
use crate::error::{AppError, Result};
use crate::login::session as login_session;
use crate::routes;
use crate::self_service::display;
use crate::self_service::notice;
use crate::self_service::pages::{holder, nav};
use crate::self_service::reauth;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// Session key of the link waiting for its account's owner to sign in.
const PENDING_LINK_KEY: &str = "federation_pending_link";

/// How long a pending link waits for the sign-in that makes it (seconds).
pub const PENDING_LINK_TTL_SECS: i64 = 10 * 60;

/// An upstream identity whose address is an existing account's, waiting in the session for that
/// account's owner to sign in here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLink {
    /// The connection.
    pub connection_id: String,
    /// Its display name (for the notice).
    pub connection_name: String,
    /// The token's `iss`.
    pub issuer: String,
    /// The token's `sub`.
    pub subject: String,
    /// The upstream address (the account's).
    pub email: String,
    /// The account to link, and only that one.
    pub user_id: String,
    /// The ID token's claims, for the role mapping once linked.
    pub claims: serde_json::Value,
    /// Unix seconds after which it is dropped.
    pub expires: i64,
}

/// Keeps `link` in the session (replacing any earlier one).
pub async fn save_pending_link(session: &Session, link: &PendingLink) -> Result<()> {
    session
        .insert(PENDING_LINK_KEY, link)
        .await
        .map_err(login_session::session_error)
}

async fn pending_link(session: &Session, now: i64) -> Result<Option<PendingLink>> {
    let link: Option<PendingLink> = session
        .get(PENDING_LINK_KEY)
        .await
        .map_err(login_session::session_error)?;
    Ok(link.filter(|l| l.expires > now))
}

/// What the login page shows while a link waits.
pub struct LinkNotice {
    /// "An account with ADDRESS already exists. Sign in to link it to NAME."
    pub message: String,
    /// The address, filled in on the password form.
    pub email: String,
}

/// The login page's notice while a link waits (see [`LinkNotice`]).
pub async fn pending_link_notice(session: &Session) -> Result<Option<LinkNotice>> {
    // Expiry is checked when the link is made; an expired one only keeps its notice until then.
    Ok(pending_link(session, i64::MIN).await?.map(|l| LinkNotice {
        message: format!(
            "An account with {} already exists. Sign in to link it to {}.",
            l.email, l.connection_name
        ),
        email: l.email,
    }))
}

/// Called by [`crate::login::completion::finish_sign_in`] inside the sign-in's transaction once
/// `user` is fully signed in (every factor proved): makes the link a first upstream sign-in left
/// waiting in the session, when `user` is the account it named (any other sign-in drops it), and
/// applies the connection's organization membership and role mapping.
pub async fn complete_pending_link(
    _state: &AppState,
    session: &Session,
    tx: &mut Tx,
    user: &User,
    meta: &RequestMeta,
    now: i64,
) -> Result<()> {
    let Some(pending) = pending_link(session, now).await? else {
        return Ok(());
    };
    session
        .remove::<PendingLink>(PENDING_LINK_KEY)
        .await
        .map_err(login_session::session_error)?;
    if pending.user_id != user.id {
        return Ok(());
    }
    let Some(connection) = connections_store::find(&mut **tx, &pending.connection_id).await? else {
        return Ok(());
    };
    if store::find_link(&mut **tx, &connection.id, &pending.issuer, &pending.subject)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let identity = VerifiedIdentity {
        connection,
        issuer: pending.issuer,
        subject: pending.subject,
        email: Some(pending.email),
        email_verified: false,
        name: None,
        claims: pending.claims,
    };
    provisioning::link(tx, &identity, &user.id, meta, now).await?;
    provisioning::apply_membership(
        tx,
        &identity.connection,
        &user.id,
        &identity.claims,
        meta,
        now,
    )
    .await?;
    Ok(())
}

/// The account page routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(routes::ACCOUNT_IDENTITIES, get(page))
        .route(routes::ACCOUNT_IDENTITIES_REMOVE, post(remove))
}

/// One linked identity as the page lists it.
struct Row {
    id: String,
    connection: String,
    issuer: String,
    email: String,
    linked: String,
    last_used: String,
}

/// `GET /account/identities`.
#[derive(Template)]
#[template(path = "pages/account/identities.html")]
struct IdentitiesPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    rows: Vec<Row>,
    notice: Option<String>,
    error: Option<&'a str>,
    csrf: &'a str,
    asset_version: &'a str,
}

async fn identities_page(
    state: &AppState,
    session: &Session,
    user: &User,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response> {
    let rows = store::list_for_user(&state.db.pool, &user.id)
        .await?
        .into_iter()
        .map(|l| Row {
            id: l.id,
            connection: l.connection_name,
            issuer: l.issuer,
            email: l.email.unwrap_or_default(),
            linked: display::utc(l.created_at),
            last_used: l
                .last_used_at
                .map(display::utc)
                .unwrap_or_else(|| "never".to_owned()),
        })
        .collect();
    let csrf = csrf::token()?;
    let mut response = render(&IdentitiesPage {
        nav: nav(routes::ACCOUNT_IDENTITIES),
        rows,
        notice: notice::take(session).await?,
        error,
        csrf: &csrf,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = status;
    Ok(response)
}

/// `GET /account/identities`: the upstream identities linked to the account.
pub async fn page(State(state): State<AppState>, session: Session) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_IDENTITIES).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    identities_page(&state, &session, &holder.user, None, StatusCode::OK).await
}

/// Fields of a row's "Remove" form.
#[derive(Deserialize)]
pub struct RemoveForm {
    /// Defaulted so that a missing token is refused like a wrong one (400).
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

/// `POST /account/identities/remove` `{id}`: unlinks one identity, unless it is the account's last
/// way to sign in (no password, no passkey, no other link): 400 "Set a password first".
pub async fn remove(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<RemoveForm>,
) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_IDENTITIES).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    csrf::check(&form.csrf)?;
    let user = &holder.user;
    let links = store::list_for_user(&state.db.pool, &user.id).await?;
    let Some(link) = links.iter().find(|l| l.id == form.id) else {
        return Err(AppError::NotFound("No such linked identity.".to_owned()));
    };
    let other_ways = links.len() > 1
        || reauth::has_password(&state, user).await?
        || !crate::mfa::passkeys::store::list(&state.db.pool, &user.id)
            .await?
            .is_empty();
    if !other_ways {
        return identities_page(
            &state,
            &session,
            user,
            Some(
                "This is the only way to sign in to your account. Set a password first, then \
                 remove it.",
            ),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    if store::delete(&mut *tx, &link.id, &user.id).await? {
        audit::record(
            &mut *tx,
            &AuditEvent {
                org_id: None,
                actor: &Actor::user(user.id.clone(), meta),
                action: action::IDENTITY_UNLINKED,
                target_type: Some("user"),
                target_id: Some(&user.id),
                details: json!({
                    "connection": link.connection_id,
                    "issuer": link.issuer,
                    "subject": link.subject,
                }),
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;
    notice::back(
        &session,
        routes::ACCOUNT_IDENTITIES,
        &format!(
            "{} is no longer linked to your account.",
            link.connection_name
        ),
    )
    .await
}
