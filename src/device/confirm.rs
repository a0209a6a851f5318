//! The confirmation step of the `/device` page (RFC 8628 §3.3, §5.4): what the device will get (the
//! application, the scopes, who is signed in, the organization to act for), then the person's answer,
//! stored once and audited. The organization's policies (`sso_required`, `require_mfa`) are checked
//! against this sign-in when it approves, and again at the poll ([`crate::oauth::grants::org_claims`]).

use std::sync::Arc;

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use super::pages::{ANSWERED_CODE, entry, here, shown};
use super::store::{self, Decision, DeviceRow};
use crate::accounts::User;
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent};
use crate::clients::Client;
use crate::error::{AppError, Result};
use crate::oauth::consent;
use crate::orgs::picker::{self, store::MembershipChoice};
use crate::routes;
use crate::self_service::pages::AccountHolder;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

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

/// Everything the confirmation step works from.
pub(super) struct Confirm<'a> {
    pub(super) state: &'a AppState,
    pub(super) person: &'a AccountHolder,
    pub(super) client: &'a Arc<Client>,
    pub(super) row: &'a DeviceRow,
    pub(super) memberships: &'a [MembershipChoice],
    pub(super) typed: &'a str,
    pub(super) meta: RequestMeta,
}

impl Confirm<'_> {
    /// The form's `decision`: none shows the confirmation, `approve` or `deny` answers.
    pub(super) async fn respond(&self, decision: &str, org: &str) -> Result<Response> {
        match decision {
            "" => self.render(None, None, StatusCode::OK),
            "approve" => approve(self, org).await,
            "deny" => answer(self, false, None).await,
            _ => Err(AppError::invalid("Choose Approve or Deny.")),
        }
    }

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
/// sign-in (the token endpoint checks them again at the poll, [`crate::oauth::grants::org_claims`]).
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
        if !crate::federation::is_federated(amr)
            && let Some(connection) = crate::federation::policy::required_connection(
                &state.db.pool,
                &m.org_id,
                m.sso_required,
                &user.email,
            )
            .await?
        {
            let link = crate::federation::home_realm::start_link(
                &connection.id,
                "",
                &next,
                Some(&user.email),
            );
            let message = format!(
                "{} requires you to sign in through its identity provider before you approve a device for it.",
                m.name
            );
            return page.render(
                Some((&message, chosen)),
                Some((&link, "Sign in through your organization's provider")),
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
