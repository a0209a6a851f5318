//! The authorization endpoint (RFC 6749 §4.1, OIDC Core §3.1.2): validates the request, sends the
//! browser through login, the organization picker and consent when needed, and answers with a code
//! at the redirect URI.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;
use url::Url;

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::request::{self, AuthzRequest, Refusal};
use super::store::{self, CodeRow};
use crate::accounts::{self, User};
use crate::app::AppState;
use crate::clients::Client;
use crate::crypto::tokens::random_token;
use crate::error::{AppError, Result};
use crate::federation;
use crate::login::session::{self, SignedIn};
use crate::mfa;
use crate::orgs::picker::{self, OrgDecision};
use crate::routes;

/// RFC 6749 §4.1.2 recommends at most 10 minutes; docs/endpoints.md says at most 60 seconds.
pub const CODE_TTL_SECS: i64 = 60;

/// `GET /authorize`
pub async fn authorize_get(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => start(&state, &session, &params).await,
        Err(e) => {
            AppError::invalid(format!("Malformed authorization request: {e}.")).into_response()
        }
    }
}

/// `POST /authorize` (OIDC Core §3.1.2.1: form-encoded, same parameters).
pub async fn authorize_post(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match Params::from_form(&headers, &body) {
        Ok(params) => start(&state, &session, &params).await,
        Err(e) => {
            AppError::invalid(format!("Malformed authorization request: {e}.")).into_response()
        }
    }
}

async fn start(state: &AppState, session: &Session, params: &Params) -> Response {
    match request::validate(state, params).await {
        Ok((client, req)) => proceed(state, session, &client, req).await,
        Err(Refusal::Page(err)) => err.into_response(),
        Err(Refusal::Redirect {
            redirect_uri,
            state: st,
            error,
        }) => error_redirect(&state.config.issuer, &redirect_uri, st.as_deref(), &error),
    }
}

/// Query of `GET /authorize/continue`.
#[derive(Debug, Deserialize)]
pub struct ContinueQuery {
    /// Id of the pending request in the session.
    pub authz: String,
}

/// `GET /authorize/continue?authz=ID`: resumes a request after login or consent.
pub async fn authorize_continue(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ContinueQuery>,
) -> Response {
    let req = match session::pending(&session, &q.authz).await {
        Ok(Some(req)) => req,
        Ok(None) => return expired_request().into_response(),
        Err(e) => return e.into_response(),
    };
    match state.clients.find(&req.client_id).await {
        Ok(Some(client)) => proceed(&state, &session, &client, req).await,
        Ok(None) => AppError::invalid("The application is no longer registered.").into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// The page shown when a pending request is gone (session expired, or already answered).
pub fn expired_request() -> AppError {
    AppError::invalid(
        "This sign-in request has expired. Go back to the application and start again.",
    )
}

/// The authorization request `authz` waiting in this session and the signed-in user it waits for,
/// as the forms of the picker and consent pages need them; either missing (session expired, signed
/// out, request answered in another tab) is [`expired_request`].
pub async fn waiting_request(
    state: &AppState,
    session: &Session,
    authz: &str,
) -> Result<(AuthzRequest, SignedIn)> {
    let req = session::pending(session, authz)
        .await?
        .ok_or_else(expired_request)?;
    let signed = session::signed_in(session, &state.clock)
        .await?
        .ok_or_else(expired_request)?;
    Ok((req, signed))
}

/// What the picker and consent pages show: the waiting request, the signed-in user's account and
/// the requesting client.
#[derive(Debug)]
pub struct WaitingPage {
    /// The waiting authorization request.
    pub req: AuthzRequest,
    /// The signed-in user.
    pub user: User,
    /// The client that sent the request.
    pub client: Arc<Client>,
}

/// [`waiting_request`] with the user's account and the client looked up; an account or client gone
/// meanwhile is [`expired_request`] too.
pub async fn waiting_page(state: &AppState, session: &Session, authz: &str) -> Result<WaitingPage> {
    let (req, signed) = waiting_request(state, session, authz).await?;
    let user = accounts::store::find_by_id(&state.db.pool, &signed.user_id)
        .await?
        .ok_or_else(expired_request)?;
    let client = state
        .clients
        .find(&req.client_id)
        .await?
        .ok_or_else(expired_request)?;
    Ok(WaitingPage { req, user, client })
}

/// Decides what the request needs next: login, consent, or a code.
pub async fn proceed(
    state: &AppState,
    session: &Session,
    client: &Arc<Client>,
    mut req: AuthzRequest,
) -> Response {
    match next_step(state, session, client, &mut req).await {
        Ok(Step::Redirect(response)) => response,
        Ok(Step::Show(response)) => {
            let _ = session::remove_pending(session, &req.id).await;
            response
        }
        Ok(Step::Interact(path)) => match session::save_pending(session, &req).await {
            Ok(()) => see_other(&format!("{path}?authz={}", req.id)),
            Err(e) => e.into_response(),
        },
        Ok(Step::Refuse(code, msg)) => {
            let _ = session::remove_pending(session, &req.id).await;
            error_redirect(
                &state.config.issuer,
                &req.redirect_uri,
                req.state.as_deref(),
                &OAuthError::new(code, msg),
            )
        }
        Err(err) => {
            tracing::error!(error = %err, "authorization failed");
            let error = OAuthError::new(
                ErrorCode::ServerError,
                "the server could not complete the request",
            );
            error_redirect(
                &state.config.issuer,
                &req.redirect_uri,
                req.state.as_deref(),
                &error,
            )
        }
    }
}

/// What an authorization request needs next.
enum Step {
    /// Done: the code (or an error) goes to the client.
    Redirect(Response),
    /// The person must act on one of our pages first (login, organization picker, a second factor
    /// or its enrolment, consent).
    Interact(&'static str),
    /// Refused: an error redirect to the client (RFC 6749 §4.1.2.1).
    Refuse(ErrorCode, &'static str),
    /// A final page for the person, nothing for the client (the request ends here).
    Show(Response),
}

async fn current_user(state: &AppState, session: &Session) -> Result<Option<(SignedIn, User)>> {
    let Some(signed) = session::signed_in(session, &state.clock).await? else {
        return Ok(None);
    };
    let user = accounts::store::find_by_id(&state.db.pool, &signed.user_id).await?;
    Ok(user.filter(|u| !u.disabled).map(|u| (signed, u)))
}

async fn next_step(
    state: &AppState,
    session: &Session,
    client: &Client,
    req: &mut AuthzRequest,
) -> Result<Step> {
    let now = state.clock.now();
    let current = current_user(state, session).await?;
    let needs_login = match &current {
        None => true,
        Some((signed, user)) => {
            // OIDC Core §3.1.2.1: `prompt=login` and `max_age=0` (its equivalent) always ask for a
            // new login; a login done for this request satisfies them.
            let reauthenticate = req.prompts("login")
                || req
                    .max_age
                    .is_some_and(|max| max == 0 || now - signed.auth_time > max);
            (reauthenticate && !req.signed_in_for_request)
                || req
                    .hinted_subject
                    .as_ref()
                    .is_some_and(|sub| sub != &user.id)
        }
    };
    if needs_login {
        if req.prompts("none") {
            return Ok(Step::Refuse(
                ErrorCode::LoginRequired,
                "the user must sign in",
            ));
        }
        return Ok(Step::Interact(routes::LOGIN));
    }
    let Some((signed, user)) = current else {
        return Ok(Step::Interact(routes::LOGIN));
    };
    // The organization comes before consent, so the consent page can name it (orgs::picker).
    let org = match picker::resolve(&state.db.pool, client, req, &user.id).await? {
        OrgDecision::Selected(org) => org,
        OrgDecision::Pick if req.prompts("none") => {
            return Ok(Step::Refuse(
                ErrorCode::InteractionRequired,
                "the user must choose an organization",
            ));
        }
        OrgDecision::Pick => return Ok(Step::Interact(routes::ORGANIZATION_PICKER)),
        // Never a silent switch to another organization: the client asked for this one.
        OrgDecision::NotMember => {
            return Ok(Step::Refuse(
                ErrorCode::AccessDenied,
                "the user is not a member of the requested organization",
            ));
        }
        OrgDecision::Required if req.prompts("none") => {
            return Ok(Step::Refuse(
                ErrorCode::AccessDenied,
                "this application requires an organization and the user is in none",
            ));
        }
        OrgDecision::Required => return Ok(Step::Show(picker::required_page(client, &user.email))),
    };
    // An organization's `sso_required` (federation::policy), before the second factor: a member of
    // one of its verified domains signs in to it through its connection, whatever the session holds
    // (a password sign-in, even with a second factor, is not one through the provider). The pending
    // request keeps the connection, and `/federation/start?authz=…` uses it; the new sign-in comes
    // back here with `fed` in its `amr`.
    if let Some(selected) = &org
        && !federation::is_federated(&signed.amr)
        && let Some(connection) = federation::policy::required_connection(
            &state.db.pool,
            &selected.id,
            selected.sso_required,
            &user.email,
        )
        .await?
    {
        if req.prompts("none") {
            return Ok(Step::Refuse(
                ErrorCode::LoginRequired,
                federation::policy::REQUIRES_SSO,
            ));
        }
        req.sso_connection = Some(connection.id);
        return Ok(Step::Interact(routes::FEDERATION_START));
    }
    // Step-up (OIDC Core §3.1.2.1 `acr_values`; an organization's `require_mfa`): after the
    // organization is known and before consent, a session whose `amr` has no second factor adds
    // one (the second step, or enrolment for a person without any factor). `max_age` and
    // `prompt=login` were handled above: their new login asks for the second factor itself.
    let needs_mfa = req.asks_mfa() || org.as_ref().is_some_and(|o| o.require_mfa);
    if needs_mfa && !mfa::is_multi_factor(&signed.amr) {
        if req.prompts("none") {
            return Ok(Step::Refuse(
                ErrorCode::InteractionRequired,
                "the user must authenticate with a second factor",
            ));
        }
        if mfa::factors(&state.db.pool, &user.id).await?.any() {
            return Ok(Step::Interact(routes::LOGIN_SECOND_FACTOR));
        }
        return Ok(Step::Interact(routes::ACCOUNT_TOTP));
    }
    if !client.first_party && !req.consent_given {
        let org_id = org.as_ref().map(|o| o.id.as_str());
        let granted = store::consented_scopes(&state.db.pool, &user.id, &client.id, org_id).await?;
        let covered =
            granted.is_some_and(|g| req.scope.split(' ').all(|s| g.split(' ').any(|x| x == s)));
        if !covered || req.prompts("consent") {
            if req.prompts("none") {
                return Ok(Step::Refuse(
                    ErrorCode::ConsentRequired,
                    "the user must consent",
                ));
            }
            return Ok(Step::Interact(routes::CONSENT));
        }
    }
    let code = random_token();
    let row = CodeRow {
        code_hash: code.hash().into_inner(),
        client_id: client.id.clone(),
        user_id: user.id.clone(),
        org_id: org.map(|o| o.id),
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scope.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        session_id: Some(signed.sid.clone()),
        auth_time: signed.auth_time,
        amr: serde_json::to_string(&signed.amr).unwrap_or_else(|_| "[]".to_owned()),
        created_at: now,
        expires_at: now + CODE_TTL_SECS,
        redeemed_at: None,
        issued_family_id: None,
        issued_jti: None,
        resource: req.resource.clone(),
        dpop_jkt: req.dpop_jkt.clone(),
    };
    store::insert_code(&state.db.pool, &row).await?;
    crate::oidc::backchannel::remember(&state.db, &signed.sid, client, &user.id, now).await;
    session::remove_pending(session, &req.id).await?;
    let mut pairs = vec![("code", code.expose())];
    if let Some(st) = &req.state {
        pairs.push(("state", st));
    }
    pairs.push(("iss", &state.config.issuer));
    Ok(Step::Redirect(redirect_with(&req.redirect_uri, &pairs)))
}

/// An authorization error sent back to the client (RFC 6749 §4.1.2.1) with `iss` (RFC 9207).
pub fn error_redirect(
    issuer: &str,
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
) -> Response {
    let mut pairs = vec![
        ("error", error.code.as_str()),
        ("error_description", error.description.as_str()),
    ];
    if let Some(st) = state {
        pairs.push(("state", st));
    }
    pairs.push(("iss", issuer));
    redirect_with(redirect_uri, &pairs)
}

/// 303 to `uri` with `pairs` added to its query (RFC 6749 §3.1.2: keep the registered query).
fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = Url::parse(uri) else {
        return AppError::invalid("The registered redirect URI cannot be used.").into_response();
    };
    url.query_pairs_mut().extend_pairs(pairs);
    see_other(url.as_str())
}

/// A 303 See Other (RFC 9700 §4.12: never 307 after a form post), not cached.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(header::LOCATION, value);
            crate::web::headers::forbid_caching(&mut r);
            r
        }
        Err(_) => AppError::invalid("Cannot redirect to that address.").into_response(),
    }
}
