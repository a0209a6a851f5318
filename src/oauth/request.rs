//! Validation of authorization requests (RFC 6749 §4.1.1, OIDC Core §3.1.2.1-2, RFC 7636, RFC 9700,
//! RFC 8707 `resource`, RFC 9449 §10 `dpop_jkt`).
//!
//! Order matters: `client_id` and `redirect_uri` are checked first and their failures are shown on our
//! own error page, never redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.1); only once the redirect URI is
//! trusted do later errors travel back to the client as redirects.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::pkce;
use crate::app::AppState;
use crate::clients::{Client, GrantType, validate};
use crate::crypto::tokens::new_id;
use crate::error::AppError;

/// Prompt values of OIDC Core §3.1.2.1.
pub const PROMPTS: [&str; 4] = ["none", "login", "consent", "select_account"];

/// Longest `organization` parameter accepted (ids are 36 characters, slugs shorter); anything longer
/// cannot name an organization.
pub const MAX_ORGANIZATION_LEN: usize = 100;

/// Most `acr_values` kept (more say nothing more: we know two).
pub const MAX_ACR_VALUES: usize = 10;

/// A validated authorization request, kept in the browser session while the user signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthzRequest {
    /// Random id naming this request in the session (several tabs may have one each).
    pub id: String,
    /// The client.
    pub client_id: String,
    /// The redirect URI of the request, matching a registered one (see `clients::validate`).
    pub redirect_uri: String,
    /// Requested scopes, space-separated, order kept.
    pub scope: String,
    /// Echoed byte-exact.
    pub state: Option<String>,
    /// Echoed in the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// `prompt` values.
    pub prompt: Vec<String>,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// Email to prefill on the login page.
    pub login_hint: Option<String>,
    /// `sub` of a valid `id_token_hint`.
    pub hinted_subject: Option<String>,
    /// `organization` (id or slug): the organization the client asks the user to act for. When
    /// named, it is the only one the request may end with (docs/endpoints.md "Which
    /// organization"): a user outside it is refused, never switched silently.
    pub organization: Option<String>,
    /// The organization id the user chose on the organization picker for this very request, which
    /// satisfies `prompt=select_account` (checked again against the live membership when used).
    #[serde(default)]
    pub chosen_org: Option<String>,
    /// When we received it (unix seconds); `prompt=login` needs a login after this.
    pub created_at: i64,
    /// Set once the user approved this very request on the consent page (`prompt=consent`).
    #[serde(default)]
    pub consent_given: bool,
    /// `acr_values` (OIDC Core §3.1.2.1), in order: [`crate::mfa::ACR_MFA`] among them asks for a
    /// second factor; unknown values ask nothing more (the `acr` claim says what was done).
    #[serde(default)]
    pub acr_values: Vec<String>,
    /// Set once the user signed in on the login page for this very request, which satisfies
    /// `prompt=login` and `max_age` (times are whole seconds, so comparing `auth_time` with
    /// `created_at` cannot tell a login just before the request from one just after it).
    #[serde(default)]
    pub signed_in_for_request: bool,
    /// The connection this request must sign in through (enterprise SSO: the selected organization
    /// requires it, or home-realm discovery routed the address there); `/federation/start?authz=…`
    /// without a `connection` uses it.
    #[serde(default)]
    pub sso_connection: Option<String>,
    /// The resource server the access token will be for (RFC 8707 §2), one of the client's
    /// registered resources; kept on the code ([`crate::oauth::resource`]).
    #[serde(default)]
    pub resource: Option<String>,
    /// The JWK SHA-256 thumbprint the code is bound to (RFC 9449 §10: `dpop_jkt`, or the key of the
    /// proof sent to `/par`, §10.1): it is redeemed only with a DPoP proof by that key.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
}

impl AuthzRequest {
    /// True when `prompt` contains `value`.
    pub fn prompts(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }

    /// True when `acr_values` asks for a second factor ([`crate::mfa::ACR_MFA`]).
    pub fn asks_mfa(&self) -> bool {
        self.acr_values.iter().any(|v| v == crate::mfa::ACR_MFA)
    }
}

/// A refused authorization request.
#[derive(Debug)]
pub enum Refusal {
    /// Client or redirect URI untrusted: show an error page.
    Page(AppError),
    /// Redirect the error to the (trusted) redirect URI.
    Redirect {
        /// Where to send it.
        redirect_uri: String,
        /// `state` to echo.
        state: Option<String>,
        /// The error.
        error: OAuthError,
    },
}

/// Where the parameters of an authorization request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The browser's query string or form.
    FrontChannel,
    /// A pushed authorization request (RFC 9126), authenticated at `/par`.
    Pushed,
}

/// Validates the parameters of an authorization request. With a `request_uri` (RFC 9126 §4) the
/// pushed request it names is claimed and validated instead; its other parameters are ignored.
pub async fn validate(
    state: &AppState,
    params: &Params,
) -> Result<(Arc<Client>, AuthzRequest), Refusal> {
    if let Some(request_uri) = params.get("request_uri") {
        let pushed = super::par::claim(state, params.get("client_id"), request_uri).await?;
        return check(state, &pushed, Source::Pushed).await;
    }
    check(state, params, Source::FrontChannel).await
}

/// Validates the parameters posted to `/par` (RFC 9126 §2.1: as at the authorization endpoint).
pub async fn validate_pushed(
    state: &AppState,
    params: &Params,
) -> Result<(Arc<Client>, AuthzRequest), Refusal> {
    check(state, params, Source::Pushed).await
}

async fn check(
    state: &AppState,
    params: &Params,
    source: Source,
) -> Result<(Arc<Client>, AuthzRequest), Refusal> {
    let page = |msg: &str| Refusal::Page(AppError::invalid(msg.to_owned()));
    let client_id = params
        .get("client_id")
        .ok_or_else(|| page("The request names no client (client_id)."))?;
    let client = state
        .clients
        .find(client_id)
        .await
        .map_err(|e| Refusal::Page(e.into()))?
        .ok_or_else(|| page("The application that sent you here is not registered."))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| page("The request has no redirect_uri."))?;
    // RFC 9700 §4.1.3: exact string comparison against the registered URIs (any port for a loopback
    // IP literal, RFC 8252 §7.3). The request's own URI is kept: the code goes back to that port.
    if !client
        .redirect_uris
        .iter()
        .any(|r| validate::redirect_uri_matches(r, redirect_uri))
    {
        return Err(page(
            "The redirect_uri is not registered for this application.",
        ));
    }
    let redirect = |code: ErrorCode, msg: &str| Refusal::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        state: params.get("state").map(str::to_owned),
        error: OAuthError::new(code, msg),
    };
    if params.has("request") {
        return Err(redirect(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    // RFC 9126 §6: a client registered with `require_pushed_authorization_requests` sends nothing
    // but pushed requests (a request_uri was handled in `validate` and never reaches here).
    if source == Source::FrontChannel && client.require_par {
        return Err(redirect(
            ErrorCode::InvalidRequest,
            "this client must use pushed authorization requests",
        ));
    }
    match params.get("response_type") {
        None => {
            return Err(redirect(
                ErrorCode::InvalidRequest,
                "response_type is required",
            ));
        }
        Some("code") => {}
        Some(_) => {
            return Err(redirect(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if let Some(mode) = params.get("response_mode")
        && mode != "query"
    {
        return Err(redirect(
            ErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ));
    }
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(redirect(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code grant",
        ));
    }
    let scopes = requested_scopes(&client.scopes, params.get("scope").unwrap_or_default())
        .map_err(|why| redirect(ErrorCode::InvalidScope, &why))?;
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        // RFC 9700 §2.1.1: PKCE for every client, unless a confidential one was registered with
        // `--allow-no-pkce` (a public client cannot be).
        (None, None) if client.public || !client.allow_no_pkce => {
            return Err(redirect(
                ErrorCode::InvalidRequest,
                "PKCE (code_challenge with S256) is required for this client",
            ));
        }
        (None, None) => None,
        (None, Some(_)) => {
            return Err(redirect(
                ErrorCode::InvalidRequest,
                "code_challenge_method without code_challenge",
            ));
        }
        (Some(_), Some(m)) if m != "S256" => {
            return Err(redirect(
                ErrorCode::InvalidRequest,
                "only code_challenge_method=S256 is supported",
            ));
        }
        // RFC 7636 §4.3 makes `plain` the default; we support only S256, so the method must be named.
        (Some(_), None) => {
            return Err(redirect(
                ErrorCode::InvalidRequest,
                "code_challenge_method=S256 is required",
            ));
        }
        (Some(c), Some(_)) if !pkce::valid_challenge(c) => {
            return Err(redirect(
                ErrorCode::InvalidRequest,
                "code_challenge is malformed",
            ));
        }
        (Some(c), Some(_)) => Some(c.to_owned()),
    };
    let prompt: Vec<String> = params
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(unknown) = prompt.iter().find(|p| !PROMPTS.contains(&p.as_str())) {
        return Err(redirect(
            ErrorCode::InvalidRequest,
            &format!("unsupported prompt value {unknown}"),
        ));
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(redirect(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                return Err(redirect(
                    ErrorCode::InvalidRequest,
                    "max_age must be a non-negative integer",
                ));
            }
        },
    };
    let hinted_subject = match params.get("id_token_hint") {
        None => None,
        Some(hint) => match hint_subject(state, hint, &client.id) {
            Some(sub) => Some(sub),
            None => {
                return Err(redirect(
                    ErrorCode::InvalidRequest,
                    "id_token_hint is not a valid ID token from this issuer",
                ));
            }
        },
    };
    let organization = match params.get("organization").map(str::trim) {
        None => None,
        Some(o) if o.is_empty() || o.len() > MAX_ORGANIZATION_LEN => {
            return Err(redirect(
                ErrorCode::InvalidRequest,
                "organization must be an organization id or slug",
            ));
        }
        Some(o) => Some(o.to_owned()),
    };
    // RFC 8707 §2: an unknown, unregistered, malformed or repeated resource is `invalid_target`,
    // sent to the (now trusted) redirect URI.
    let resource = match super::resource::requested(&client, params) {
        Ok(resource) => resource.map(str::to_owned),
        Err(error) => {
            return Err(Refusal::Redirect {
                redirect_uri: redirect_uri.to_owned(),
                state: params.get("state").map(str::to_owned),
                error,
            });
        }
    };
    // RFC 9449 §10: dpop_jkt is "the JWK SHA-256 Thumbprint … base64url encoded"; anything else
    // could never match a proof's key, so it is refused now rather than at the token endpoint.
    let dpop_jkt = match params.get("dpop_jkt") {
        None => None,
        Some(jkt) if crate::dpop::is_thumbprint(jkt) => Some(jkt.to_owned()),
        Some(_) => {
            return Err(redirect(
                ErrorCode::InvalidRequest,
                "dpop_jkt must be a base64url JWK SHA-256 thumbprint (43 characters)",
            ));
        }
    };
    let acr_values: Vec<String> = params
        .get("acr_values")
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty())
        .take(MAX_ACR_VALUES)
        .map(str::to_owned)
        .collect();
    let request = AuthzRequest {
        id: new_id(),
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scope: scopes,
        state: params.get("state").map(str::to_owned),
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_owned),
        hinted_subject,
        organization,
        acr_values,
        chosen_org: None,
        created_at: state.clock.now(),
        consent_given: false,
        signed_in_for_request: false,
        sso_connection: None,
        resource,
        dpop_jkt,
    };
    Ok((client, request))
}

/// The `sub` of an ID token we issued to `client_id` (OIDC Core §3.1.2.1: an expired hint is fine).
fn hint_subject(state: &AppState, hint: &str, client_id: &str) -> Option<String> {
    let claims = crate::oidc::id_token::verify_ours(state, hint)?;
    let aud_ok = match claims.get("aud")? {
        serde_json::Value::String(a) => a == client_id,
        serde_json::Value::Array(list) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    aud_ok.then(|| claims.get("sub")?.as_str().map(str::to_owned))?
}

/// The scopes of `requested` (space-separated), each one the client is `allowed`, duplicates dropped,
/// order kept, at least one (RFC 6749 §3.3); else why, for `invalid_scope`. The authorization and
/// device authorization endpoints ask the same of a request.
pub fn requested_scopes(allowed: &[String], requested: &str) -> Result<String, String> {
    let mut scopes: Vec<&str> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == s) {
            return Err(format!("scope {s} is not allowed for this client"));
        }
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    if scopes.is_empty() {
        return Err("scope is required".to_owned());
    }
    Ok(scopes.join(" "))
}
