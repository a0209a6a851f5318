//! The `/device` page (RFC 8628 §3.3): a signed-in person types the user code their device shows,
//! confirms what the device will get (§5.4: always a confirmation, since a code can be phished
//! remotely: the application's name, the scopes, who is signed in, the organization) and approves
//! or denies it. One route, one form field `decision` telling the steps apart: none (look the code
//! up and show the confirmation), `approve`, `deny`.
//!
//! Signed-out browsers go to the login page, which comes back here with the code
//! ([`crate::self_service::pages::holder`]). Wrong codes are counted per browser session: after
//! [`MAX_FAILURES`] within [`FAILURE_WINDOW_SECS`] the page refuses every code until the oldest
//! failure leaves the window (§5.1: 34 bits of user code stand only with a limit on guesses).

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use super::store::{self, Decision, DeviceRow};
use super::user_code;
use crate::accounts::User;
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent};
use crate::clients::Client;
use crate::crypto::tokens::TokenHash;
use crate::error::{AppError, Result};
use crate::login::session::session_error;
use crate::oauth::consent;
use crate::oauth::grants;
use crate::orgs::picker::{self, store::MembershipChoice};
use crate::routes;
use crate::self_service::pages::{AccountHolder, holder};
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// Wrong user codes a browser session may type within [`FAILURE_WINDOW_SECS`].
pub const MAX_FAILURES: usize = 5;

/// The window wrong user codes are counted in.
pub const FAILURE_WINDOW_SECS: i64 = 10 * 60;

/// Session key: the times of this session's recent wrong user codes.
const FAILURES_KEY: &str = "device_code_failures";

/// Longest typed code shown back in the form (a code is 9 characters; the rest is noise).
const MAX_SHOWN_INPUT: usize = 32;

/// What a code not found says (the same for a malformed one: no hint about the alphabet).
pub const UNKNOWN_CODE: &str =
    "That code is not valid. Check the code your device shows and type it again.";

/// What an expired code says.
pub const EXPIRED_CODE: &str =
    "That code has expired. Start again on your device to get a new one.";

/// What a code answered already says.
pub const ANSWERED_CODE: &str =
    "That code was already used. Start again on your device if it did not sign in.";

/// What the page says once the limit of wrong codes is reached.
pub const TOO_MANY_CODES: &str = "Too many wrong codes. Wait a few minutes and try again";

/// The page where the code is typed.
#[derive(Template)]
#[template(path = "pages/device.html")]
struct EntryPage<'a> {
    action: &'a str,
    csrf: &'a str,
    user_code: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    asset_version: &'a str,
}

/// One organization the person may approve the device for.
struct OrgOption<'a> {
    id: &'a str,
    name: &'a str,
    slug: &'a str,
    checked: bool,
}

/// The confirmation page.
#[derive(Template)]
#[template(path = "pages/device_confirm.html")]
struct ConfirmPage<'a> {
    action: &'a str,
    csrf: &'a str,
    user_code: &'a str,
    client_name: &'a str,
    scopes: Vec<&'static str>,
    email: &'a str,
    options: Vec<OrgOption<'a>>,
    error: Option<&'a str>,
    /// A link out of a refusal (sign in again, with a second factor or through the provider).
    remedy: Option<(&'a str, &'a str)>,
    asset_version: &'a str,
}

/// The last page: approved or denied.
#[derive(Template)]
#[template(path = "pages/device_done.html")]
struct DonePage<'a> {
    approved: bool,
    client_name: &'a str,
    asset_version: &'a str,
}

/// Query of `GET /device`.
#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    /// The code from `verification_uri_complete`, to prefill the form.
    #[serde(default)]
    user_code: String,
}

/// Fields of the forms of `/device`; defaulted so that a missing field is a clear refusal.
#[derive(Deserialize)]
pub struct DeviceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user_code: String,
    /// Empty: look the code up; `approve` or `deny`: the answer on the confirmation page.
    #[serde(default)]
    decision: String,
    /// The organization chosen on the confirmation page.
    #[serde(default)]
    org: String,
}

/// Where the login page returns to: this page with the code, when it is one.
fn here(typed: &str) -> String {
    match user_code::normalise(typed) {
        Some(code) => format!("{}?user_code={}", routes::DEVICE, user_code::display(&code)),
        None => routes::DEVICE.to_owned(),
    }
}

/// What the form shows back of what was typed.
fn shown(typed: &str) -> String {
    match user_code::normalise(typed) {
        Some(code) => user_code::display(&code),
        None => typed.trim().chars().take(MAX_SHOWN_INPUT).collect(),
    }
}

fn entry(email: &str, typed: &str, error: Option<&str>, status: StatusCode) -> Result<Response> {
    let csrf = csrf::token()?;
    let mut response = render(&EntryPage {
        action: routes::DEVICE,
        csrf: &csrf,
        user_code: &shown(typed),
        email,
        error,
        asset_version: ASSET_VERSION,
    });
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    Ok(response)
}

/// `GET /device[?user_code=…]`: the form, prefilled from `verification_uri_complete`. Looking the
/// code up waits for the form's POST, so that opening a link never answers anything and every
/// lookup is counted.
pub async fn device_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<DeviceQuery>,
) -> Result<Response> {
    let person = match holder(&state, &session, &here(&q.user_code)).await? {
        Ok(person) => person,
        Err(to_login) => return Ok(to_login),
    };
    entry(&person.user.email, &q.user_code, None, StatusCode::OK)
}

/// `POST /device`: the code typed (then the confirmation page), or the answer on it.
pub async fn device_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<DeviceForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let person = match holder(&state, &session, &here(&form.user_code)).await? {
        Ok(person) => person,
        Err(to_login) => return Ok(to_login),
    };
    let email = person.user.email.clone();
    let now = state.clock.now();
    let mut failures = recent_failures(&session, now).await?;
    if failures.len() >= MAX_FAILURES {
        let oldest = failures.iter().min().copied().unwrap_or(now);
        let retry_after = (oldest + FAILURE_WINDOW_SECS - now).max(1);
        let message = format!(
            "{TOO_MANY_CODES} ({}).",
            crate::login::throttle::wait_text(retry_after)
        );
        let mut response = entry(
            &email,
            &form.user_code,
            Some(&message),
            StatusCode::TOO_MANY_REQUESTS,
        )?;
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after));
        return Ok(response);
    }
    let found = match user_code::normalise(&form.user_code) {
        Some(code) => {
            store::find_by_user_code(&state.db.pool, TokenHash::of(&code).as_str()).await?
        }
        None => None,
    };
    let Some(row) = found else {
        failures.push(now);
        session
            .insert(FAILURES_KEY, &failures)
            .await
            .map_err(session_error)?;
        tracing::info!(user_id = %person.user.id, "wrong device user code");
        return entry(
            &email,
            &form.user_code,
            Some(UNKNOWN_CODE),
            StatusCode::BAD_REQUEST,
        );
    };
    if row.expires_at <= now {
        return entry(
            &email,
            &form.user_code,
            Some(EXPIRED_CODE),
            StatusCode::BAD_REQUEST,
        );
    }
    if row.status != store::PENDING {
        return entry(
            &email,
            &form.user_code,
            Some(ANSWERED_CODE),
            StatusCode::BAD_REQUEST,
        );
    }
    let Some(client) = state.clients.find(&row.client_id).await? else {
        return entry(
            &email,
            &form.user_code,
            Some(UNKNOWN_CODE),
            StatusCode::BAD_REQUEST,
        );
    };
    let memberships = picker::store::memberships_of(&state.db.pool, &person.user.id).await?;
    if memberships.is_empty() && client.require_org {
        return Ok(picker::required_page(&client, &email));
    }
    let page = Confirm {
        state: &state,
        person: &person,
        client: &client,
        row: &row,
        memberships: &memberships,
        typed: &form.user_code,
        meta,
    };
    match form.decision.as_str() {
        "" => page.render(None, None, StatusCode::OK),
        "approve" => approve(&page, &form.org).await,
        "deny" => answer(&page, false, None).await,
        _ => Err(AppError::invalid("Choose Approve or Deny.")),
    }
}

/// The session's wrong codes still within the window.
async fn recent_failures(session: &Session, now: i64) -> Result<Vec<i64>> {
    let failures: Vec<i64> = session
        .get(FAILURES_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or_default();
    Ok(failures
        .into_iter()
        .filter(|t| now - t < FAILURE_WINDOW_SECS)
        .collect())
}

/// Everything the confirmation step works from.
struct Confirm<'a> {
    state: &'a AppState,
    person: &'a AccountHolder,
    client: &'a Arc<Client>,
    row: &'a DeviceRow,
    memberships: &'a [MembershipChoice],
    typed: &'a str,
    meta: RequestMeta,
}

impl Confirm<'_> {
    fn user(&self) -> &User {
        &self.person.user
    }

    /// The option to preselect: the organization the client suggested (id or slug) when the person
    /// is in it, else the last one they chose at a login, else the first.
    fn preselected(&self, chosen: Option<&str>) -> Option<&str> {
        let ms = self.memberships;
        chosen
            .and_then(|c| ms.iter().find(|m| m.org_id == c))
            .or_else(|| {
                self.row
                    .org_hint
                    .as_deref()
                    .and_then(|h| ms.iter().find(|m| m.org_id == h || m.slug == h))
            })
            .or_else(|| {
                ms.iter()
                    .filter(|m| m.last_selected_at.is_some())
                    .max_by_key(|m| m.last_selected_at)
            })
            .or(ms.first())
            .map(|m| m.org_id.as_str())
    }

    fn render(
        &self,
        error: Option<(&str, Option<&str>)>,
        remedy: Option<(&str, &str)>,
        status: StatusCode,
    ) -> Result<Response> {
        let csrf = csrf::token()?;
        let (message, chosen) = match error {
            Some((message, chosen)) => (Some(message), chosen),
            None => (None, None),
        };
        let checked = self.preselected(chosen);
        let options = self
            .memberships
            .iter()
            .map(|m| OrgOption {
                id: &m.org_id,
                name: &m.name,
                slug: &m.slug,
                checked: checked == Some(m.org_id.as_str()),
            })
            .collect();
        let mut scopes: Vec<&'static str> =
            self.row.scope.split(' ').map(consent::describe).collect();
        scopes.dedup();
        let code = shown(self.typed);
        let mut response = render(&ConfirmPage {
            action: routes::DEVICE,
            csrf: &csrf,
            user_code: &code,
            client_name: &self.client.name,
            scopes,
            email: &self.user().email,
            options,
            error: message,
            remedy,
            asset_version: ASSET_VERSION,
        });
        if response.status() == StatusCode::OK {
            *response.status_mut() = status;
        }
        Ok(response)
    }
}

/// Approve: the organization must be one of the person's, and its policies must hold for this
/// sign-in (the token endpoint checks them again at the poll, [`grants::org_claims`]).
async fn approve(page: &Confirm<'_>, org: &str) -> Result<Response> {
    let state = page.state;
    let user = page.user();
    let amr = &page.person.session.amr;
    let selected = if page.memberships.is_empty() {
        None
    } else if org.is_empty() {
        return page.render(
            Some(("Choose an organization.", None)),
            None,
            StatusCode::BAD_REQUEST,
        );
    } else {
        match page.memberships.iter().find(|m| m.org_id == org) {
            Some(m) => Some(m),
            None => {
                return page.render(
                    Some((
                        "You are not a member of that organization. Choose one from the list.",
                        None,
                    )),
                    None,
                    StatusCode::BAD_REQUEST,
                );
            }
        }
    };
    if let Some(m) = selected {
        let chosen = Some(m.org_id.as_str());
        let next = here(page.typed);
        // `sso_required` (federation::policy): this member signs in to the organization through
        // its provider; a password session cannot approve a device for it.
        if grants::check_sso_policy(state, &m.org_id, m.sso_required, &user.email, amr)
            .await
            .is_err()
        {
            let connection = crate::federation::policy::required_connection(
                &state.db.pool,
                &m.org_id,
                m.sso_required,
                &user.email,
            )
            .await?;
            let link = connection.map(|c| {
                crate::federation::home_realm::start_link(&c.id, "", &next, Some(&user.email))
            });
            let message = format!(
                "{} requires you to sign in through its identity provider before you approve a device for it.",
                m.name
            );
            return page.render(
                Some((&message, chosen)),
                link.as_deref()
                    .map(|l| (l, "Sign in through your organization's provider")),
                StatusCode::FORBIDDEN,
            );
        }
        // `require_mfa`: a session without a second factor signs in again (the login asks for the
        // second factor of an account that has one) or sets one up first.
        if m.require_mfa && !crate::mfa::is_multi_factor(amr) {
            let has_factor = crate::mfa::factors(&state.db.pool, &user.id).await?.any();
            let message = format!(
                "{} requires a second factor. Sign in again with your second factor, then approve the device.",
                m.name
            );
            let login = format!(
                "{}?next={}",
                routes::LOGIN,
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            );
            let remedy = if has_factor {
                (login.as_str(), "Sign in again")
            } else {
                (routes::ACCOUNT_TOTP, "Set up two-factor authentication")
            };
            return page.render(
                Some((&message, chosen)),
                Some(remedy),
                StatusCode::FORBIDDEN,
            );
        }
        // Remembered like a choice on the organization picker; false if the membership went.
        if !picker::store::mark_selected(&state.db.pool, &m.org_id, &user.id, state.clock.now())
            .await?
        {
            return page.render(
                Some((
                    "You are not a member of that organization. Choose one from the list.",
                    None,
                )),
                None,
                StatusCode::BAD_REQUEST,
            );
        }
    }
    answer(page, true, selected.map(|m| m.org_id.as_str())).await
}

/// Stores the answer (once: a code answered meanwhile, in another tab, is refused) and shows the
/// last page.
async fn answer(page: &Confirm<'_>, approve: bool, org_id: Option<&str>) -> Result<Response> {
    let state = page.state;
    let signed = &page.person.session;
    let amr = serde_json::to_string(&signed.amr).unwrap_or_else(|_| "[]".to_owned());
    let decision = Decision {
        user_id: &page.person.user.id,
        org_id,
        auth_time: signed.auth_time,
        amr: &amr,
    };
    let now = state.clock.now();
    // The answer and its audit event together: an answer is never stored unaudited.
    let mut tx = state.db.begin().await?;
    let decided = store::decide(
        &mut *tx,
        &page.row.device_code_hash,
        approve,
        &decision,
        now,
    )
    .await?;
    if decided {
        let actor = Actor {
            client_id: Some(page.client.id.clone()),
            ..Actor::user(page.person.user.id.clone(), page.meta.clone())
        };
        audit::record(
            &mut *tx,
            &AuditEvent {
                org_id,
                actor: &actor,
                action: if approve {
                    audit::action::DEVICE_APPROVED
                } else {
                    audit::action::DEVICE_DENIED
                },
                target_type: Some("client"),
                target_id: Some(&page.client.id),
                details: serde_json::json!({ "scope": page.row.scope }),
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;
    if !decided {
        return entry(
            &page.person.user.email,
            page.typed,
            Some(ANSWERED_CODE),
            StatusCode::BAD_REQUEST,
        );
    }
    tracing::info!(
        user_id = %page.person.user.id,
        client_id = %page.client.id,
        approved = approve,
        "device authorization answered"
    );
    Ok(render(&DonePage {
        approved: approve,
        client_name: &page.client.name,
        asset_version: ASSET_VERSION,
    }))
}
