//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at [`routes::END_SESSION`], GET and
//! POST, with the parameters `id_token_hint`, `client_id`, `post_logout_redirect_uri`, `state`,
//! `logout_hint` and `ui_locales` (the last two are accepted and ignored).
//!
//! - `id_token_hint` must carry our signature and our `iss`; an expired hint is fine (§2: the OP
//!   "SHOULD accept ID Tokens when the RP identified by the ID Token's aud claim ... has a current
//!   session or had a recent session"), so `exp` is not checked. A hint that does not verify is
//!   refused with an error page. Its `aud` names the client; a `client_id` sent as well must match.
//! - `post_logout_redirect_uri` is honoured only when the client is known (from the hint or
//!   `client_id`) and the URI exactly matches one it registered (§3); anything else is an error
//!   page, never a redirect.
//! - A valid hint for the signed-in user (or with nobody signed in) ends the session at once. Without
//!   one, the user confirms on a page with a CSRF-protected form (§2: "the OP SHOULD ask the End-User
//!   whether to log out"); the carried parameters are validated again when the form comes back.
//! - After logout the browser goes to the verified `post_logout_redirect_uri` with `state`, or sees a
//!   "You are signed out" page.
//! - A logout request POSTed from the RP's site carries no session cookie (it is `SameSite=Lax`), so
//!   it could not end the browser session. Such a POST (no session cookie, not our own confirmation
//!   form) is answered with a page of ours that re-sends the same parameters as a GET to this endpoint
//!   (a `<meta http-equiv="refresh">`, and a form with a button as fallback; no script, so the CSP
//!   stays strict). That second request is same-site and carries the cookie (§2 allows GET and POST).
//!
//! # Refresh tokens on logout
//! Refresh-token families born in the ended browser session (`session_id` = its `sid`) and not
//! granted `offline_access` (`offline = 0`) are revoked with reason `logout`: they stand for "this
//! sign-in", which is now over. Families granted `offline_access` (`offline = 1`) survive logout:
//! offline access is, by definition, access while the user is not signed in (OIDC Core §11), and
//! ends only by revocation (RFC 7009), its absolute lifetime, a password reset or a reuse detection.
//! When a valid hint names a `sid` (for the signed-in user, or with nobody signed in), the
//! session-bound families of that `sid` are revoked too, so an RP's logout ends its refresh tokens even
//! when the browser session has already expired.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tower_sessions::Session;
use url::Url;

use crate::app::AppState;
use crate::db::Exec;
use crate::error::{AppError, Result};
use crate::login::session;
use crate::oauth::authorize::see_other;
use crate::oauth::params::Params;
use crate::routes;
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};

/// The `revoked_reason` of refresh-token families ended by a logout.
pub const LOGOUT_REASON: &str = "logout";

/// The confirmation page ("Sign out of Latchkey?").
#[derive(Template)]
#[template(path = "pages/logout.html")]
struct ConfirmPage<'a> {
    csrf: &'a str,
    client_name: Option<&'a str>,
    client_id: Option<&'a str>,
    post_logout_redirect_uri: Option<&'a str>,
    state: Option<&'a str>,
    asset_version: &'a str,
}

/// The page shown after logout when there is nowhere to send the browser back to.
#[derive(Template)]
#[template(path = "pages/logged_out.html")]
struct SignedOutPage<'a> {
    client_name: Option<&'a str>,
    asset_version: &'a str,
}

/// The page that re-sends a cross-site logout POST as a same-site GET (module doc).
#[derive(Template)]
#[template(path = "pages/logout_continue.html")]
struct ContinuePage<'a> {
    /// The GET form of the request.
    next: &'a str,
    /// Its parameters, for the fallback form.
    params: Vec<(&'static str, &'a str)>,
    asset_version: &'a str,
}

/// The parameters of a logout request (§2) carried from a POST to its GET form.
const LOGOUT_PARAMS: [&str; 6] = [
    "id_token_hint",
    "logout_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
];

/// A validated `id_token_hint`.
#[derive(Debug, Clone)]
struct Hint {
    /// `sub`: the user the RP believes is signed in.
    sub: Option<String>,
    /// `sid`: the browser session the ID token was issued in.
    sid: Option<String>,
}

/// A validated logout request.
#[derive(Debug, Clone, Default)]
struct LogoutRequest {
    hint: Option<Hint>,
    /// The known client, as `(id, display name)`.
    client: Option<(String, String)>,
    /// A registered post-logout redirect URI of that client.
    redirect_uri: Option<String>,
    /// Echoed to `redirect_uri`.
    state: Option<String>,
}

/// `GET /logout` (RP-Initiated Logout 1.0 §2).
pub async fn logout_get(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => respond(handle(&state, &session, &params, false).await),
        Err(e) => AppError::invalid(format!("Malformed logout request: {e}.")).into_response(),
    }
}

/// `POST /logout`: a logout request sent as a form (§2), or the answer of the confirmation page
/// (`confirm=yes` with its CSRF token).
pub async fn logout_post(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match Params::from_form(&headers, &body) {
        Ok(params) => {
            let confirmed = params.get("confirm") == Some("yes");
            // No session cookie came with the request (`id()` is the cookie's id, before any load):
            // re-send it from our own origin so the browser's cookie comes along (module doc).
            if !confirmed && session.id().is_none() {
                return resubmit_page(&params);
            }
            respond(handle(&state, &session, &params, confirmed).await)
        }
        Err(e) => AppError::invalid(format!("Malformed logout request: {e}.")).into_response(),
    }
}

/// The [`ContinuePage`] for a logout POST with `params`.
fn resubmit_page(params: &Params) -> Response {
    let carried: Vec<(&'static str, &str)> = LOGOUT_PARAMS
        .iter()
        .filter_map(|&name| params.get(name).map(|value| (name, value)))
        .collect();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&carried)
        .finish();
    let next = format!("{}?{query}", routes::END_SESSION);
    render(&ContinuePage {
        next: &next,
        params: carried,
        asset_version: ASSET_VERSION,
    })
}

fn respond(result: Result<Response>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn handle(
    state: &AppState,
    session: &Session,
    params: &Params,
    confirmed: bool,
) -> Result<Response> {
    if confirmed {
        // Checked before anything else, so a forged form learns nothing and changes nothing.
        csrf::check(params.get("csrf").unwrap_or_default())?;
    }
    let request = validate(state, params).await?;
    let signed_in = session::signed_in(session, &state.clock).await?;
    let hint_matches = request.hint.as_ref().is_some_and(|hint| match &signed_in {
        None => true,
        Some(user) => hint.sub.as_deref() == Some(user.user_id.as_str()),
    });
    if !confirmed && !hint_matches {
        let csrf = csrf::token()?;
        return Ok(render(&ConfirmPage {
            csrf: &csrf,
            client_name: request.client.as_ref().map(|(_, name)| name.as_str()),
            client_id: request.client.as_ref().map(|(id, _)| id.as_str()),
            post_logout_redirect_uri: request.redirect_uri.as_deref(),
            state: request.state.as_deref(),
            asset_version: ASSET_VERSION,
        }));
    }
    let mut sids: Vec<String> = signed_in.iter().map(|s| s.sid.clone()).collect();
    if hint_matches && let Some(sid) = request.hint.as_ref().and_then(|h| h.sid.clone()) {
        sids.push(sid);
    }
    sids.retain(|s| !s.is_empty());
    sids.dedup();
    let now = state.clock.now();
    for sid in &sids {
        let revoked = revoke_session_families(&state.db.pool, sid, now).await?;
        if revoked > 0 {
            tracing::info!(revoked, "session-bound refresh tokens revoked at logout");
        }
    }
    session
        .flush()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))?;
    crate::oidc::backchannel::sessions_ended(&state.db, &sids, now).await;
    if let Some(user) = &signed_in {
        tracing::info!(user_id = %user.user_id, "signed out");
    }
    match &request.redirect_uri {
        Some(uri) => Ok(see_other(&with_state(uri, request.state.as_deref())?)),
        None => Ok(render(&SignedOutPage {
            client_name: request.client.as_ref().map(|(_, name)| name.as_str()),
            asset_version: ASSET_VERSION,
        })),
    }
}

/// Validates the parameters; every failure is an error page (nothing here is trusted enough to be
/// redirected to).
async fn validate(state: &AppState, params: &Params) -> Result<LogoutRequest> {
    let mut client_id = params.get("client_id").map(str::to_owned);
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(raw) => {
            let claims = verify_hint(state, raw).ok_or_else(|| {
                AppError::invalid("The id_token_hint is not a valid ID token from this issuer.")
            })?;
            let audiences = audiences(&claims);
            match &client_id {
                Some(id) if !audiences.iter().any(|a| a == id) => {
                    return Err(AppError::invalid(
                        "The id_token_hint was not issued to the client named by client_id.",
                    ));
                }
                Some(_) => {}
                None => client_id = hinted_client(&claims, &audiences),
            }
            let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
            Some(Hint {
                sub: text("sub"),
                sid: text("sid"),
            })
        }
    };
    let client = match &client_id {
        None => None,
        Some(id) => Some(state.clients.find(id).await?.ok_or_else(|| {
            AppError::invalid("The application that sent you here is not registered.")
        })?),
    };
    let redirect_uri = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            // §3: exact string comparison with a URI the client registered.
            let registered = client
                .as_ref()
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                return Err(AppError::invalid(
                    "The post_logout_redirect_uri is not registered for this application.",
                ));
            }
            Some(uri.to_owned())
        }
    };
    Ok(LogoutRequest {
        hint,
        client: client.map(|c| (c.id.clone(), c.name.clone())),
        redirect_uri,
        state: params.get("state").map(str::to_owned),
    })
}

/// The claims of an ID token we signed, whatever its `exp` (§2: expired hints are accepted). Only
/// our ID tokens qualify (§2: "the ID Token previously issued by the OP"): an access token (`typ`
/// `at+jwt`), a token of another issuer or one signed by a key not ours is refused with
/// `invalid_request` as an error page (§4 lets the OP refuse a request it cannot validate), rather
/// than treated as absent, so that an RP sending the wrong token learns of its mistake.
fn verify_hint(state: &AppState, hint: &str) -> Option<serde_json::Map<String, Value>> {
    crate::oidc::id_token::verify_ours(state, hint)
}

/// The `aud` claim as a list (a string or an array of strings).
fn audiences(claims: &serde_json::Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The client a hint was issued to: its only audience, or its `azp` (OIDC Core §2).
fn hinted_client(claims: &serde_json::Map<String, Value>, audiences: &[String]) -> Option<String> {
    if let [only] = audiences {
        return Some(only.clone());
    }
    let azp = claims.get("azp")?.as_str()?;
    audiences.iter().any(|a| a == azp).then(|| azp.to_owned())
}

/// `uri` with `state` added to its query (§3: "the OP passes this value to the RP using the state
/// parameter when redirecting").
fn with_state(uri: &str, state: Option<&str>) -> Result<String> {
    let Some(state) = state else {
        return Ok(uri.to_owned());
    };
    let mut url = Url::parse(uri)
        .map_err(|_| AppError::invalid("The post_logout_redirect_uri is not a valid URI."))?;
    url.query_pairs_mut().append_pair("state", state);
    Ok(url.into())
}

/// Revokes the refresh-token families born in browser session `sid` that were not granted
/// `offline_access` (see the module doc); returns how many.
pub async fn revoke_session_families<'c>(
    ex: impl Exec<'c>,
    sid: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "update refresh_families set revoked_at = $1, revoked_reason = 'logout' \
         where session_id = $2 and offline = 0 and revoked_at is null",
    )
    .bind(now)
    .bind(sid)
    .execute(ex)
    .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_appended_to_the_query() {
        assert_eq!(
            with_state("https://rp.example.com/bye?x=1", Some("a b&c")).ok(),
            Some("https://rp.example.com/bye?x=1&state=a+b%26c".to_owned())
        );
        assert_eq!(
            with_state("https://rp.example.com/bye", None).ok(),
            Some("https://rp.example.com/bye".to_owned())
        );
    }

    #[test]
    fn the_hinted_client_is_the_only_audience_or_azp() {
        let claims = |v: Value| v.as_object().cloned().unwrap_or_default();
        let one = claims(serde_json::json!({"aud": "c1"}));
        assert_eq!(hinted_client(&one, &audiences(&one)).as_deref(), Some("c1"));
        let many = claims(serde_json::json!({"aud": ["c1", "c2"], "azp": "c2"}));
        assert_eq!(
            hinted_client(&many, &audiences(&many)).as_deref(),
            Some("c2")
        );
        let none = claims(serde_json::json!({"aud": ["c1", "c2"]}));
        assert_eq!(hinted_client(&none, &audiences(&none)), None);
    }
}
