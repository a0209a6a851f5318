//! The refresh token grant (RFC 6749 §6, RFC 9700 §4.14.2, OIDC Core §12): a client exchanges its
//! refresh token for a new access token, a new (rotated) refresh token and, when `openid` is in scope,
//! a new ID token with the original `auth_time` and no nonce (OIDC Core §12.2).
//!
//! With `organization=ID_OR_SLUG` naming another organization of the person, the grant switches
//! organization instead of rotating ([`super::switch_org`]).

use super::{TokenRequest, UserGrant, UserTokens};
use crate::app::AppState;
use crate::crypto::tokens::TokenHash;
use crate::oauth::access_token::OrgClaims;
use crate::oauth::error::OAuthError;
use crate::oauth::refresh;
use crate::oauth::refresh_store;
use crate::oauth::resource;
use crate::oauth::token::TokenResponse;

/// Refreshes: checks the token, its family and its user, then rotates.
pub async fn exchange(
    state: &AppState,
    req: &TokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    let (client, params) = (req.client, req.params);
    let presented = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid");
    let row = refresh_store::find_token(&state.db.pool, &TokenHash::of(presented))
        .await?
        .ok_or_else(invalid)?;
    // RFC 6749 §10.4: a refresh token is bound to the client it was issued to. Another client's token
    // is simply invalid here (it is not a replay by the legitimate holder).
    if row.client_id != client.client.id {
        return Err(invalid());
    }
    let now = state.clock.now();
    refresh::check_family(&row, now)?;
    crate::dpop::check_binding(
        crate::dpop::Bound::RefreshToken,
        row.dpop_jkt.as_deref(),
        req.dpop_jkt,
    )?;
    let scope = refresh::narrow_scope(&row.scope, params.get("scope"))?;
    // RFC 8707 §2.2: the family's resource (from its authorization), or any registered one when it
    // has none; the access token's `aud`.
    let audience = resource::for_token(&client.client, params, row.resource.as_deref())?;
    // The user and their membership were read with the token (one query on the hot path): a
    // disabled user, or a member removed since, gets invalid_grant; the role is the current one.
    if row.user.disabled {
        return Err(super::user_gone());
    }
    let user = &row.user;
    // Organization switching: the family's own organization named again is a plain refresh (known
    // from the token's row by id or slug, so that it costs no lookup).
    if let Some(named) = params.get("organization")
        && ![row.org_id.as_deref(), row.org_slug.as_deref()].contains(&Some(named.trim()))
    {
        let target = super::switch_org::target(state, named, user).await?;
        if row.org_id.as_deref() != Some(target.id.as_str()) {
            let switch = super::switch_org::Switch {
                row: &row,
                presented,
                scope: &scope,
                audience,
                target,
                now,
            };
            return super::switch_org::switch(state, req, switch).await;
        }
    }
    let org = match (&row.org_id, &row.org_slug, row.org_role) {
        (None, _, _) => None,
        (Some(id), Some(slug), Some(role)) => {
            Some(OrgClaims::of_member(id.clone(), slug.clone(), role))
        }
        (Some(_), _, _) => return Err(super::no_longer_member()),
    };
    // The organization's live `require_mfa` against what the family's sign-in proved. Refused
    // before rotation, so the token is NOT consumed: RFC 6749 §5.2 refuses the grant, and RFC 9700
    // §4.14.2 revokes a family on evidence of theft (a replay), which a policy change is not. The
    // family stays bounded by its own expiry and by sign-out, keeps working if the owner turns the
    // policy off again, and is replaced when the person signs in again with a second factor.
    super::check_org_policy(row.org_require_mfa, &row.amr)?;
    // Likewise its live `sso_required` (and live verified domains) against whether the family's
    // sign-in went through a provider; not consumed either, for the same reasons.
    if let Some(org_id) = &row.org_id {
        super::check_sso_policy(state, org_id, row.org_sso_required, &user.email, &row.amr).await?;
    }
    // Everything that can fail is minted before rotating, so a failure leaves the token usable.
    let UserTokens { access, id_token } = super::mint_user_tokens(
        state,
        &UserGrant {
            user,
            client: &client.client,
            scope: &scope,
            auth_time: row.auth_time,
            sid: row.session_id.as_deref(),
            nonce: None,
            amr: &row.amr,
            org: org.as_ref(),
            resource: audience,
            jkt: req.dpop_jkt,
        },
    )?;
    let successor = refresh::rotate(state, &row, presented, now).await?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: req.token_type(),
        expires_in: access.expires_in,
        scope,
        id_token,
        refresh_token: Some(successor.into_inner()),
    })
}
