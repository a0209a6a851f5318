//! The login page (OWASP ASVS V2/V3): one message for an unknown email and a wrong password, the
//! same Argon2id work in both cases, a CSRF token, 303 after the POST, and a renewed session id.
//! Every attempt lands in the login history and the audit log; a `next` query parameter (a local
//! path only) says where to go afterwards when no authorization request is waiting. Attempts are
//! throttled before any password is hashed ([`super::throttle`]): 429 with `Retry-After` and one
//! neutral message for known and unknown emails.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::completion::{self, Completion, finish_sign_in, record_throttled};
use super::throttle::{self, Throttled};
use super::{device, session};
use crate::accounts;
use crate::app::AppState;
use crate::audit::login_history;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::config::SignupPolicy;
use crate::crypto::password::Password;
use crate::db::Tx;
use crate::error::Result;
use crate::federation;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// The one message for every failed login, so it does not reveal which emails have accounts.
pub const LOGIN_FAILED: &str = "The email or password is not correct.";

/// The start of the message of a throttled login, for known and unknown emails alike; the wait
/// follows ("Try again in 8 seconds.").
pub const LOGIN_THROTTLED: &str = "Too many failed sign-ins. Try again in";

/// Longest `next` path accepted.
const MAX_NEXT_LEN: usize = 2048;

/// The login page.
#[derive(Template)]
#[template(path = "pages/login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    authz: &'a str,
    next: &'a str,
    email: &'a str,
    client_name: Option<&'a str>,
    error: Option<&'a str>,
    signup_open: bool,
    /// The "email me a sign-in link" link (with `authz` and `next`), when email sign-in is on.
    email_link: Option<String>,
    /// Whether the "Sign in with a passkey" button is shown (the issuer can be a WebAuthn RP).
    passkeys: bool,
    /// Home-realm discovery: the page asks for the email only (`POST /login/identify`), because
    /// connections exist and no address is known yet.
    email_first: bool,
    /// The connection of the organization the request names (`organization=`), offered first.
    org_offer: Option<Provider>,
    /// Instance-wide connections: "Continue with NAME".
    providers: Vec<Provider>,
    /// Information above the form (a first upstream sign-in waiting to be linked).
    notice: Option<String>,
    asset_version: &'a str,
}

/// A "Continue with NAME" link to `/federation/start`.
struct Provider {
    name: String,
    href: String,
}

/// Query of `GET /login`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// Pending authorization request, if the login is part of one.
    #[serde(default)]
    pub authz: String,
    /// Local path to go to after the login when no authorization request is pending.
    #[serde(default)]
    pub next: String,
}

/// Fields of the login form.
#[derive(Deserialize)]
pub struct LoginForm {
    /// Defaulted so that a missing token is refused like a wrong one (400), not as a malformed form.
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    authz: String,
    #[serde(default)]
    next: String,
    email: String,
    password: String,
}

/// `next` when it is a path on this server (`/…`, not `//host`, no backslash or control
/// character), so the login can never send the browser elsewhere (open redirect, CWE-601).
pub fn local_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= MAX_NEXT_LEN
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    ok.then_some(next)
}

/// What the login page shows: the address when known (the password step), and an error.
pub struct Step<'a> {
    /// Pending authorization request, if any.
    pub authz: &'a str,
    /// Local path to go to afterwards.
    pub next: &'a str,
    /// The address: known (typed in the email-first step, or after a failed attempt), or not.
    pub email: Option<&'a str>,
    /// The message shown above the form (answered 401, or 400 when it is about the form).
    pub error: Option<&'a str>,
}

/// The login page at `form` (see [`Step`]); the email-first step of home-realm discovery
/// ([`crate::federation::home_realm`]) when connections exist and no address is known.
pub async fn login_step(state: &AppState, session: &Session, form: Step<'_>) -> Result<Response> {
    let csrf = csrf::token()?;
    let pending = if form.authz.is_empty() {
        None
    } else {
        session::pending(session, form.authz).await?
    };
    let client = match &pending {
        Some(req) => state.clients.find(&req.client_id).await?,
        None => None,
    };
    let hint = pending.as_ref().and_then(|r| r.login_hint.as_deref());
    let authz = if pending.is_some() { form.authz } else { "" };
    let next = local_next(form.next).unwrap_or_default();
    let notice = federation::identities::pending_link_notice(session).await?;
    let federated = federation::connections::store::any(&state.db.pool).await?;
    let (org_offer, providers) = if federated {
        let offer = match &pending {
            Some(req) => federation::home_realm::requested_org_connection(state, req).await?,
            None => None,
        };
        let providers = federation::connections::store::list_instance(&state.db.pool).await?;
        (
            offer.map(|(c, _)| Provider {
                href: federation::home_realm::start_link(&c.id, authz, next, hint),
                name: c.name,
            }),
            providers
                .into_iter()
                .map(|c| Provider {
                    href: federation::home_realm::start_link(&c.id, authz, next, None),
                    name: c.name,
                })
                .collect(),
        )
    } else {
        (None, Vec::new())
    };
    let page = LoginPage {
        email_first: federated && form.email.is_none() && hint.is_none() && notice.is_none(),
        org_offer,
        providers,
        notice: notice.as_ref().map(|n| n.message.clone()),
        csrf: &csrf,
        authz,
        next,
        email: form
            .email
            .or(hint)
            .or(notice.as_ref().map(|n| n.email.as_str()))
            .unwrap_or_default(),
        client_name: client.as_ref().map(|c| c.name.as_str()),
        error: form.error,
        signup_open: state.config.signup == SignupPolicy::Open,
        email_link: state
            .config
            .email_signin
            .then(|| super::email_signin::request_link(authz, next)),
        passkeys: crate::mfa::passkeys::ceremony::relying_party(&state.config).is_some(),
        asset_version: ASSET_VERSION,
    };
    let mut response = render(&page);
    if form.error.is_some() {
        *response.status_mut() = StatusCode::UNAUTHORIZED;
    }
    Ok(response)
}

/// The login page with an error from another way of signing in (a passkey, [`crate::mfa::passkeys`]).
pub struct ErrorPage<'a> {
    /// Pending authorization request, if any.
    pub authz: &'a str,
    /// Local path to go to afterwards.
    pub next: &'a str,
    /// The message.
    pub error: &'a str,
    /// The status of the answer.
    pub status: StatusCode,
}

/// Renders the login page with `page.error`, answered with `page.status`.
pub async fn login_with_error(
    state: &AppState,
    session: &Session,
    page: ErrorPage<'_>,
) -> Result<Response> {
    let form = Step {
        authz: page.authz,
        next: page.next,
        email: None,
        error: Some(page.error),
    };
    let mut response = login_step(state, session, form).await?;
    *response.status_mut() = page.status;
    Ok(response)
}

/// `GET /login`
pub async fn login_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Result<Response> {
    // Home-realm discovery: an organization that requires SSO, or a `login_hint` of a verified and
    // connected domain, goes straight to its provider.
    if let Some(redirect) =
        federation::home_realm::redirect_for_login(&state, &session, &q.authz, &q.next).await?
    {
        return Ok(redirect);
    }
    let form = Step {
        authz: &q.authz,
        next: &q.next,
        email: None,
        error: None,
    };
    login_step(&state, &session, form).await
}

/// `POST /login`: refuses a throttled attempt (429, `login.throttled`) or verifies the password;
/// records the attempt in the login history and the audit log (`login.succeeded` /
/// `login.failed` with the typed email, never the password); on success
/// renews the session, recognises the browser (new-device alert, [`device`]) and continues the
/// pending authorization request, else goes to `next` or home: the steps every way of signing in
/// shares ([`finish_sign_in`], also used by email sign-in), with `amr` `["pwd"]`.
pub async fn login_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    axum::Form(mut form): axum::Form<LoginForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let email = form.email.trim();
    let password = Password::new(std::mem::take(&mut form.password));
    let found = if email.len() <= accounts::MAX_EMAIL_LEN {
        accounts::store::find_credentials(&state.db.pool, email).await?
    } else {
        None
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, None),
    };
    let user_id = user.as_ref().map(|u| u.id.clone());
    let ip = meta.ip.clone().unwrap_or_default();
    let event = login_history::LoginEvent {
        user_id: user_id.as_deref(),
        email,
        ip: &ip,
        user_agent: meta.user_agent.as_deref(),
        method: "pwd",
    };
    let device_token = device::device_token(&headers, &state.config);
    let keys =
        completion::throttle_keys(&state, user_id.as_deref(), email, &device_token, &meta).await?;
    let now = state.clock.now();
    // OWASP login throttling: a blocked attempt is refused before it waits for a hashing slot; an
    // admitted one is counted as a failure before its password is hashed (a success takes it
    // back), but only once a slot is reserved, so that a request shed with 503 counts for nothing.
    if let Some(throttled) = throttle::blocked(&state.db.pool, &keys, now).await? {
        let tx = state.db.begin().await?;
        return refuse_throttled(&state, &session, tx, &event, &meta, &form, throttled).await;
    }
    let slot = state.hasher.reserve().await?;
    let mut tx = state.db.begin().await?;
    if let Some(throttled) = throttle::admit(&mut tx, &keys, now).await? {
        drop(slot);
        return refuse_throttled(&state, &session, tx, &event, &meta, &form, throttled).await;
    }
    tx.commit().await?;
    // Unknown users are verified against a dummy hash: the same work, no timing oracle.
    let verified = slot.verify(&password, hash.as_deref()).await?;
    let Some(user) = user.filter(|u| verified && !u.disabled) else {
        let mut tx = state.db.begin().await?;
        login_history::record_login(&mut *tx, &event, false, now).await?;
        let reason = match (&user_id, verified) {
            (None, _) => "unknown_email",
            (Some(_), true) => "account_disabled",
            (Some(_), false) => "wrong_password",
        };
        let actor = Actor::anonymous(meta.clone());
        audit::record(
            &mut *tx,
            &AuditEvent {
                org_id: None,
                actor: &actor,
                action: action::LOGIN_FAILED,
                target_type: user_id.as_ref().map(|_| "user"),
                target_id: user_id.as_deref(),
                details: json!({ "email": email.chars().take(254).collect::<String>(), "reason": reason }),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        let form = Step {
            authz: &form.authz,
            next: &form.next,
            email: Some(email),
            error: Some(LOGIN_FAILED),
        };
        return login_step(&state, &session, form).await;
    };
    let tx = state.db.begin().await?;
    let completion = Completion {
        user: &user,
        email,
        method: "pwd",
        amr: &["pwd"],
        keys: &keys,
        authz: &form.authz,
        next: &form.next,
        device_token: &device_token,
    };
    finish_sign_in(&state, &session, &meta, tx, completion).await
}

/// The 429 answer to a throttled attempt (OWASP: the same neutral message for every account, with
/// `Retry-After`), recorded in `tx` (login history and `login.throttled`).
async fn refuse_throttled(
    state: &AppState,
    session: &Session,
    mut tx: Tx,
    event: &login_history::LoginEvent<'_>,
    meta: &RequestMeta,
    form: &LoginForm,
    throttled: Throttled,
) -> Result<Response> {
    let now = state.clock.now();
    record_throttled(&mut tx, event, meta, throttled, now).await?;
    tx.commit().await?;
    let message = format!(
        "{LOGIN_THROTTLED} {}.",
        throttle::wait_text(throttled.retry_after)
    );
    let page = Step {
        authz: &form.authz,
        next: &form.next,
        email: Some(event.email),
        error: Some(&message),
    };
    let mut response = login_step(state, session, page).await?;
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(throttled.retry_after));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::local_next;

    #[test]
    fn next_is_a_local_path_only() {
        for ok in ["/", "/invitation", "/invitation?x=1&y=%2F", "/a/b#c"] {
            assert_eq!(local_next(ok), Some(ok), "{ok}");
        }
        for bad in [
            "",
            "invitation",
            "//evil.example/x",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "/a\nb",
            " /x",
        ] {
            assert_eq!(local_next(bad), None, "{bad:?}");
        }
    }
}
