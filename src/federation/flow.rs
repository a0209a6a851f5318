//! Sign-in through a connection: `GET /federation/start` sends the browser to the upstream's
//! authorization endpoint (code flow, PKCE S256, `state`, `nonce`; the verifier and both values kept in
//! the server-side session), and `GET /federation/callback` redeems the code, validates the ID token
//! (issuer, audience, expiry, nonce, signature by the upstream's JWKS, algorithm allow-list), then
//! finds the linked account, links or provisions one, and ends in
//! [`crate::login::completion::finish_sign_in`] with `amr` `["fed"]`.
//!
//! The attempt is bound to this browser's session by `state` (single use, [`ATTEMPT_TTL_SECS`]), so
//! a callback forged or replayed in another browser finds nothing (OAuth 2.0 Security BCP, RFC 9700
//! §4.7 CSRF, §2.1.1 PKCE). GET is fine for the start: it only sends the browser to its own
//! provider.

use askama::Template;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, LoginHint, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::Session;

use super::connections::{Connection, store as connections_store};
use super::identities::{self, PENDING_LINK_TTL_SECS, PendingLink};
use super::provisioning::{self, Resolution, VerifiedIdentity};
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::error::{AppError, Result};
use crate::login::completion::{self, Completion};
use crate::login::{device, session as login_session};
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// Session key of the sign-ins under way.
const ATTEMPTS_KEY: &str = "federation_attempts";

/// How long the upstream may take to send the browser back (seconds).
pub const ATTEMPT_TTL_SECS: i64 = 10 * 60;

/// Sign-ins kept at once per session (several tabs); the oldest goes first.
const MAX_ATTEMPTS: usize = 5;

/// ID token algorithms accepted from an upstream: asymmetric only, so neither `none` nor an HMAC
/// keyed with a public key is ever accepted (RFC 8725 §3.1, §2.1).
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 4] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// One sign-in under way, kept in the server-side session.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Attempt {
    connection_id: String,
    state: String,
    nonce: String,
    pkce_verifier: String,
    authz: String,
    next: String,
    started_at: i64,
}

/// The federation start and callback routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(routes::FEDERATION_START, get(start))
        .route(routes::FEDERATION_CALLBACK, get(callback))
}

/// A page about a sign-in through a provider that did not happen, with the way back to the login
/// page (carrying the pending request).
#[derive(Template)]
#[template(path = "pages/federation_error.html")]
struct FailedPage<'a> {
    title: &'a str,
    message: &'a str,
    login: &'a str,
    asset_version: &'a str,
}

/// The login page's address for `authz` / `next`.
fn login_link(authz: &str, next: &str) -> String {
    let mut url = routes::LOGIN.to_owned();
    let mut sep = '?';
    for (k, v) in [("authz", authz), ("next", next)] {
        if !v.is_empty() {
            url.push(sep);
            url.push_str(k);
            url.push('=');
            url.push_str(&urlencoding(v));
            sep = '&';
        }
    }
    url
}

fn urlencoding(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn failed_page(
    status: StatusCode,
    title: &str,
    message: &str,
    authz: &str,
    next: &str,
) -> Response {
    let login = login_link(authz, next);
    let mut response = render(&FailedPage {
        title,
        message,
        login: &login,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = status;
    response
}

/// Records `federation.failed` (never a token, code or secret: only the reason and a detail the
/// upstream's metadata or our checks produced).
async fn audit_failure(
    state: &AppState,
    meta: &RequestMeta,
    conn: Option<&Connection>,
    reason: &str,
    detail: &str,
) -> Result<()> {
    tracing::info!(
        connection = conn.map(|c| c.id.as_str()),
        reason,
        detail,
        "federated sign-in refused"
    );
    audit::record(
        &state.db.pool,
        &AuditEvent {
            org_id: conn.and_then(|c| c.org_id.as_deref()),
            actor: &Actor::anonymous(meta.clone()),
            action: action::FEDERATION_FAILED,
            target_type: conn.map(|_| "connection"),
            target_id: conn.map(|c| c.id.as_str()),
            details: json!({
                "connection": conn.map(|c| c.id.as_str()),
                "reason": reason,
                "detail": detail.chars().take(500).collect::<String>(),
            }),
        },
        state.clock.now(),
    )
    .await?;
    Ok(())
}

/// Query of `/federation/start`.
#[derive(Debug, Default, Deserialize)]
pub struct StartQuery {
    #[serde(default)]
    connection: String,
    #[serde(default)]
    authz: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    login_hint: String,
}

/// The `openidconnect` client of `conn` at the upstream described by `metadata`.
async fn client_for(
    state: &AppState,
    conn: &Connection,
    metadata: CoreProviderMetadata,
) -> Result<
    openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
> {
    let mut db = state.db.pool.acquire().await?;
    let secret = connections_store::client_secret(&mut *db, &state.kek, &conn.id)
        .await?
        .ok_or_else(|| AppError::NotFound("This sign-in provider no longer exists.".into()))?;
    let redirect = RedirectUrl::new(super::redirect_uri(&state.config))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("redirect URI: {e}")))?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(conn.client_id.clone()),
        Some(ClientSecret::new(secret)),
    )
    .set_redirect_uri(redirect))
}

/// `GET /federation/start?connection=&authz=&next=&login_hint=`: 303 to the upstream's
/// authorization endpoint. The connection is `connection`, else the pending request's
/// `sso_connection`; none or unknown is a 400 page; an upstream that cannot be discovered is a
/// 503 page (audited `federation.failed`).
pub async fn start(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    query: std::result::Result<Query<StartQuery>, QueryRejection>,
) -> Result<Response> {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let mut connection_id = q.connection.trim().to_owned();
    if connection_id.is_empty()
        && !q.authz.is_empty()
        && let Some(req) = login_session::pending(&session, &q.authz).await?
    {
        connection_id = req.sso_connection.unwrap_or_default();
    }
    let conn = if connection_id.is_empty() || connection_id.len() > 64 {
        None
    } else {
        connections_store::find(&state.db.pool, &connection_id).await?
    };
    let Some(conn) = conn else {
        return Ok(failed_page(
            StatusCode::BAD_REQUEST,
            "Unknown sign-in provider",
            "This sign-in link names no sign-in provider of this server.",
            &q.authz,
            &q.next,
        ));
    };
    let metadata = match state.upstream.discover(&conn.issuer).await {
        Ok(m) => m,
        Err(e) => {
            audit_failure(&state, &meta, Some(&conn), "discovery", &e.to_string()).await?;
            return Ok(failed_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in provider unavailable",
                &format!(
                    "{} cannot be reached right now. Try again later, or sign in another way.",
                    conn.name
                ),
                &q.authz,
                &q.next,
            ));
        }
    };
    let client = client_for(&state, &conn, metadata).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    // `openid` is always asked by the crate.
    for scope in conn.scopes.iter().filter(|s| s.as_str() != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let hint = q.login_hint.trim();
    if !hint.is_empty() && hint.len() <= crate::accounts::MAX_EMAIL_LEN {
        request = request.set_login_hint(LoginHint::new(hint.to_owned()));
    }
    let (url, csrf_state, nonce) = request.url();
    let now = state.clock.now();
    let mut attempts = load_attempts(&session, now).await?;
    if attempts.len() >= MAX_ATTEMPTS {
        attempts.remove(0);
    }
    attempts.push(Attempt {
        connection_id: conn.id.clone(),
        state: csrf_state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        authz: q.authz.chars().take(128).collect(),
        next: crate::login::pages::local_next(&q.next)
            .unwrap_or_default()
            .to_owned(),
        started_at: now,
    });
    save_attempts(&session, &attempts).await?;
    Ok(see_other(url.as_str()))
}

/// The live attempts of this session (expired ones dropped).
async fn load_attempts(session: &Session, now: i64) -> Result<Vec<Attempt>> {
    let attempts: Option<Vec<Attempt>> = session
        .get(ATTEMPTS_KEY)
        .await
        .map_err(login_session::session_error)?;
    Ok(attempts
        .unwrap_or_default()
        .into_iter()
        .filter(|a| now - a.started_at <= ATTEMPT_TTL_SECS && a.started_at <= now)
        .collect())
}

async fn save_attempts(session: &Session, attempts: &[Attempt]) -> Result<()> {
    session
        .insert(ATTEMPTS_KEY, attempts)
        .await
        .map_err(login_session::session_error)
}

/// Removes and returns the live attempt of `state_value` (single use).
async fn take_attempt(session: &Session, state_value: &str, now: i64) -> Result<Option<Attempt>> {
    let mut attempts = load_attempts(session, now).await?;
    let found = attempts
        .iter()
        .position(|a| {
            !state_value.is_empty()
                && crate::crypto::tokens::constant_time_eq(
                    a.state.as_bytes(),
                    state_value.as_bytes(),
                )
        })
        .map(|i| attempts.remove(i));
    save_attempts(session, &attempts).await?;
    Ok(found)
}

/// Query of `/federation/callback` (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207 `iss`).
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    iss: Option<String>,
}

/// Why an ID token or its exchange was refused: the audit reason and its detail.
struct Refusal {
    reason: &'static str,
    detail: String,
}

fn refusal(reason: &'static str, detail: impl std::fmt::Display) -> Refusal {
    Refusal {
        reason,
        detail: detail.to_string(),
    }
}

/// Redeems `code` and validates the ID token (module doc); the identity it proves.
async fn verify_identity(
    state: &AppState,
    conn: &Connection,
    attempt: &Attempt,
    code: &str,
) -> Result<std::result::Result<VerifiedIdentity, Refusal>> {
    let metadata = match state.upstream.discover(&conn.issuer).await {
        Ok(m) => m,
        Err(e) => return Ok(Err(refusal("discovery", e))),
    };
    let client = client_for(state, conn, metadata).await?;
    let exchange = match client.exchange_code(AuthorizationCode::new(code.to_owned())) {
        Ok(exchange) => exchange,
        Err(e) => return Ok(Err(refusal("token-endpoint", e))),
    };
    let token = match exchange
        .set_pkce_verifier(PkceCodeVerifier::new(attempt.pkce_verifier.clone()))
        .request_async(&state.upstream)
        .await
    {
        Ok(token) => token,
        Err(e) => {
            return Ok(Err(refusal(
                "token-exchange",
                super::upstream::error_chain(&e),
            )));
        }
    };
    let Some(id_token) = token.id_token() else {
        return Ok(Err(refusal(
            "id-token",
            "the token response has no ID token",
        )));
    };
    let verifier = client.id_token_verifier().set_allowed_algs(ALLOWED_ALGS);
    let claims = match id_token.claims(&verifier, &Nonce::new(attempt.nonce.clone())) {
        Ok(claims) => claims,
        Err(e) => return Ok(Err(refusal("id-token", super::upstream::error_chain(&e)))),
    };
    // OpenID Connect Core §3.1.3.8: `at_hash`, when present, binds the access token to the ID token.
    if let Some(expected) = claims.access_token_hash() {
        let actual = id_token
            .signing_alg()
            .map_err(|e| e.to_string())
            .and_then(|alg| {
                let key = id_token.signing_key(&verifier).map_err(|e| e.to_string())?;
                AccessTokenHash::from_token(token.access_token(), alg, key)
                    .map_err(|e| e.to_string())
            });
        match actual {
            Ok(actual) if actual == *expected => {}
            Ok(_) => return Ok(Err(refusal("id-token", "at_hash does not match"))),
            Err(e) => return Ok(Err(refusal("id-token", e))),
        }
    }
    let raw = match raw_claims(&id_token.to_string()) {
        Some(raw) => raw,
        None => return Ok(Err(refusal("id-token", "the ID token payload is not JSON"))),
    };
    Ok(Ok(VerifiedIdentity {
        connection: conn.clone(),
        issuer: claims.issuer().as_str().to_owned(),
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|e| e.as_str().to_owned()),
        email_verified: claims.email_verified().unwrap_or(false),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
        claims: raw,
    }))
}

/// The claims of a compact JWT (already verified) as JSON, for the role mapping.
fn raw_claims(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.is_object().then_some(value)
}

/// `GET /federation/callback?state=&code=` (or `error=`): the end of a sign-in through a
/// connection (module doc). Every refusal is a 4xx page and a `federation.failed` audit event.
pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    query: std::result::Result<Query<CallbackQuery>, QueryRejection>,
) -> Result<Response> {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let now = state.clock.now();
    let Some(attempt) = take_attempt(&session, &q.state, now).await? else {
        audit_failure(&state, &meta, None, "unknown-state", "").await?;
        return Ok(failed_page(
            StatusCode::BAD_REQUEST,
            "Sign-in link expired",
            "This sign-in link is no longer valid. Start the sign-in again.",
            "",
            "",
        ));
    };
    let (authz, next) = (attempt.authz.as_str(), attempt.next.as_str());
    let Some(conn) = connections_store::find(&state.db.pool, &attempt.connection_id).await? else {
        return Ok(failed_page(
            StatusCode::BAD_REQUEST,
            "Unknown sign-in provider",
            "This sign-in provider was removed. Sign in another way.",
            authz,
            next,
        ));
    };
    let refuse = |status: StatusCode, message: String| {
        failed_page(status, "Sign-in refused", &message, authz, next)
    };
    // RFC 9207 §2.4: an `iss` that is not the provider's means a mix-up; refuse before the code is
    // sent anywhere.
    if let Some(iss) = &q.iss
        && iss != &conn.issuer
    {
        audit_failure(&state, &meta, Some(&conn), "issuer-mismatch", iss).await?;
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "The answer did not come from {}. Start the sign-in again.",
                conn.name
            ),
        ));
    }
    if !q.error.is_empty() {
        let code: String = q.error.chars().take(64).collect();
        audit_failure(&state, &meta, Some(&conn), "upstream-error", &code).await?;
        return Ok(failed_page(
            StatusCode::BAD_REQUEST,
            "Sign-in cancelled",
            &format!("The sign-in at {} was cancelled or refused.", conn.name),
            authz,
            next,
        ));
    }
    if q.code.is_empty() || q.code.len() > 2048 {
        audit_failure(&state, &meta, Some(&conn), "no-code", "").await?;
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "{} sent no authorization code. Start the sign-in again.",
                conn.name
            ),
        ));
    }
    let identity = match verify_identity(&state, &conn, &attempt, &q.code).await? {
        Ok(identity) => identity,
        Err(r) => {
            audit_failure(&state, &meta, Some(&conn), r.reason, &r.detail).await?;
            return Ok(refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "The sign-in at {} could not be verified. Start the sign-in again, or ask your \
                     administrator.",
                    conn.name
                ),
            ));
        }
    };
    let mut tx = state.db.begin().await?;
    let resolution = provisioning::resolve(&state, &mut tx, &identity, &meta, now).await?;
    let user = match resolution {
        Resolution::Account(user) => user,
        Resolution::Refused {
            status,
            message,
            reason,
        } => {
            drop(tx);
            audit_failure(&state, &meta, Some(&conn), reason, "").await?;
            return Ok(refuse(status, message));
        }
        Resolution::LinkAfterSignIn { user_id, email } => {
            drop(tx);
            identities::save_pending_link(
                &session,
                &PendingLink {
                    connection_id: conn.id.clone(),
                    connection_name: conn.name.clone(),
                    issuer: identity.issuer,
                    subject: identity.subject,
                    email,
                    user_id,
                    claims: identity.claims,
                    expires: now + PENDING_LINK_TTL_SECS,
                },
            )
            .await?;
            return Ok(see_other(&login_link(authz, next)));
        }
    };
    provisioning::apply_membership(&mut tx, &conn, &user.id, &identity.claims, &meta, now).await?;
    select_org(&session, &conn, authz).await?;
    let device_token = device::device_token(&headers, &state.config);
    completion::finish_sign_in(
        &state,
        &session,
        &meta,
        tx,
        Completion {
            user: &user,
            email: &user.email,
            method: super::AMR_FED,
            amr: &[super::AMR_FED],
            keys: &[],
            authz,
            next,
            device_token: &device_token,
        },
    )
    .await
}

/// For an organization's connection: a pending request that named no organization continues in
/// the connection's ([`crate::orgs::picker::resolve`] honours `chosen_org`).
pub async fn select_org(session: &Session, conn: &Connection, authz: &str) -> Result<()> {
    let Some(org_id) = &conn.org_id else {
        return Ok(());
    };
    if authz.is_empty() {
        return Ok(());
    }
    if let Some(mut req) = login_session::pending(session, authz).await?
        && req.organization.is_none()
    {
        req.chosen_org = Some(org_id.clone());
        login_session::save_pending(session, &req).await?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn raw_claims_of_a_jwt() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"a","roles":["admin"]}"#);
        let jwt = format!("e30.{payload}.sig");
        assert_eq!(raw_claims(&jwt).unwrap()["roles"][0], "admin");
        assert!(raw_claims("e30.bm90IGpzb24.sig").is_none());
        assert!(raw_claims("nodots").is_none());
    }

    #[test]
    fn login_link_carries_the_request() {
        assert_eq!(login_link("", ""), "/login");
        assert_eq!(login_link("abc", ""), "/login?authz=abc");
        assert_eq!(
            login_link("a", "/x?y=1"),
            "/login?authz=a&next=%2Fx%3Fy%3D1"
        );
    }
}
