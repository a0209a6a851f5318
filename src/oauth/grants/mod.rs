//! The grants of the token endpoint, one module each.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;
pub mod switch_org;

use crate::accounts::{self, User};
use crate::app::AppState;
use crate::clients::Client;
use crate::oauth::access_token::{self, AccessGrant, AccessToken, OrgClaims};
use crate::oauth::client_auth::AuthenticatedClient;
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::oidc::{claims, id_token};
use crate::orgs;

/// A token request after client authentication: what every grant works from.
#[derive(Debug, Clone, Copy)]
pub struct TokenRequest<'a> {
    /// The authenticated client.
    pub client: &'a AuthenticatedClient,
    /// The form parameters.
    pub params: &'a Params,
    /// JWK SHA-256 thumbprint of the key of a valid DPoP proof sent with the request (RFC 9449
    /// §5); the tokens issued are bound to it. `None` for a plain bearer request.
    pub dpop_jkt: Option<&'a str>,
}

impl TokenRequest<'_> {
    /// `token_type` of the response: `DPoP` for tokens bound to a proof's key (RFC 9449 §5.1),
    /// `Bearer` otherwise.
    pub fn token_type(&self) -> &'static str {
        if self.dpop_jkt.is_some() {
            "DPoP"
        } else {
            "Bearer"
        }
    }
}

/// The user a grant speaks for, if they may still sign in: a deleted or disabled user gets
/// `invalid_grant` (RFC 6749 §5.2), whatever code or refresh token they hold.
pub async fn active_user(state: &AppState, user_id: &str) -> Result<User, OAuthError> {
    accounts::store::find_by_id(&state.db.pool, user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(user_gone)
}

/// `invalid_grant` for a grant whose user was deleted or disabled since it was issued.
pub fn user_gone() -> OAuthError {
    OAuthError::invalid_grant("the user can no longer sign in")
}

/// The organization claims of a grant whose authorization selected `org_id`, from the live membership
/// (docs/tokens.md: a refresh re-reads the role, so a demoted member never gets the old role back). A
/// member removed since, or an organization deleted since, gets `invalid_grant` (RFC 6749 §5.2), and
/// so does a grant whose sign-in (`amr`) had no second factor for an organization that requires one
/// now ([`second_factor_required`]), or that did not go through the connection an organization
/// requires of this member now ([`check_sso_policy`]). One query (two under `sso_required`).
pub async fn org_claims(
    state: &AppState,
    org_id: Option<&str>,
    user: &User,
    amr: &[String],
) -> Result<Option<OrgClaims>, OAuthError> {
    let Some(org_id) = org_id else {
        return Ok(None);
    };
    let (org, role) = orgs::store::find_org_with_role(&state.db.pool, org_id, &user.id)
        .await?
        .ok_or_else(no_longer_member)?;
    check_sso_policy(state, &org.id, org.sso_required, &user.email, amr).await?;
    check_org_policy(org.require_mfa, amr)?;
    Ok(Some(OrgClaims::of_member(org.id, org.slug, role)))
}

/// The organization policy `sso_required` at the token endpoint ([`crate::federation::policy`]):
/// tokens for an organization that requires its verified-domain members to sign in through its
/// connection are issued to such a member only from a sign-in through a provider (`fed` in its
/// `amr`). Checked against the live flag and the live domains, like `require_mfa`: turning the
/// policy on closes the password families of the members it binds at their next use; their other
/// organizations and the members outside its verified domains are not touched.
pub async fn check_sso_policy(
    state: &AppState,
    org_id: &str,
    sso_required: bool,
    email: &str,
    amr: &[String],
) -> Result<(), OAuthError> {
    if !sso_required || crate::federation::is_federated(amr) {
        return Ok(());
    }
    let required =
        crate::federation::policy::required_connection(&state.db.pool, org_id, true, email).await?;
    if required.is_some() {
        return Err(provider_sign_in_required());
    }
    Ok(())
}

/// `invalid_grant` (RFC 6749 §5.2) for a grant without a sign-in through the provider that the
/// organization requires of this member. The client's way out is a new authorization request,
/// which sends the person to the provider.
pub fn provider_sign_in_required() -> OAuthError {
    OAuthError::invalid_grant(format!(
        "{}; sign in again",
        crate::federation::policy::REQUIRES_SSO
    ))
}

/// The organization policy `require_mfa` at the token endpoint: tokens for an organization that
/// requires a second factor are issued only to a sign-in that used one (`mfa` in its `amr`, RFC
/// 8176 §2). It is checked against the organization's live flag, so an owner who turns the policy
/// on closes the password-only refresh families at their next use, not when they expire. The
/// organization's other members' and this person's other organizations' grants are not touched.
pub fn check_org_policy(require_mfa: bool, amr: &[String]) -> Result<(), OAuthError> {
    if require_mfa && !crate::mfa::is_multi_factor(amr) {
        return Err(second_factor_required());
    }
    Ok(())
}

/// `invalid_grant` (RFC 6749 §5.2: the grant "does not match" what the organization now requires)
/// for a grant without a second factor for an organization that requires one. The client's way
/// out is a new authorization request, which asks for the second factor (or leads to enrolment).
pub fn second_factor_required() -> OAuthError {
    OAuthError::invalid_grant("the organization requires a second factor; sign in again")
}

/// `invalid_grant` for a grant whose user has left the selected organization (or which was deleted).
pub fn no_longer_member() -> OAuthError {
    OAuthError::invalid_grant("the user is no longer a member of the organization")
}

/// What a user-facing grant (code or refresh) issues tokens for.
#[derive(Debug)]
pub struct UserGrant<'a> {
    /// The signed-in user.
    pub user: &'a User,
    /// The client the tokens are for.
    pub client: &'a Client,
    /// Granted scopes, space-separated.
    pub scope: &'a str,
    /// The original login time (kept across refreshes, OIDC Core §12.2).
    pub auth_time: i64,
    /// Browser session id (`sid`).
    pub sid: Option<&'a str>,
    /// `nonce` of the authorization request (none on refresh).
    pub nonce: Option<&'a str>,
    /// Authentication methods (`amr`).
    pub amr: &'a [String],
    /// The selected organization (`org_id`, `org_slug`, `roles`), if any.
    pub org: Option<&'a OrgClaims>,
    /// The resource server the access token is for (RFC 8707), if one was named.
    pub resource: Option<&'a str>,
    /// The DPoP key thumbprint the access token is bound to (RFC 9449), if any.
    pub jkt: Option<&'a str>,
}

/// The access token of a user-facing grant, and an ID token when `openid` was granted.
#[derive(Debug)]
pub struct UserTokens {
    /// RFC 9068 access token.
    pub access: AccessToken,
    /// ID token, with `at_hash` of the access token.
    pub id_token: Option<String>,
}

/// Signs the tokens of a user-facing grant. Callers mint before they consume the code or rotate the
/// refresh token, so that a signing failure leaves the grant usable for a retry.
pub fn mint_user_tokens(state: &AppState, g: &UserGrant<'_>) -> Result<UserTokens, OAuthError> {
    let access = access_token::mint(
        state,
        &AccessGrant {
            subject: &g.user.id,
            client_id: &g.client.id,
            scope: g.scope,
            auth_time: Some(g.auth_time),
            acr: Some(crate::mfa::acr(g.amr)),
            sid: g.sid,
            org: g.org,
            audience: g.resource,
            jkt: g.jkt,
        },
    )?;
    let id_token = if claims::has_scope(g.scope, "openid") {
        Some(id_token::mint(
            state,
            &id_token::IdTokenInput {
                user: g.user,
                client: g.client,
                scope: g.scope,
                nonce: g.nonce,
                auth_time: g.auth_time,
                amr: g.amr,
                sid: g.sid,
                access_token: Some(&access.token),
                org: g.org,
            },
        )?)
    } else {
        None
    };
    Ok(UserTokens { access, id_token })
}
