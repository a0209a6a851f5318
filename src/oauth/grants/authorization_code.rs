//! The authorization code grant (RFC 6749 §4.1.3, OIDC Core §3.1.3): a code is single use, lives at
//! most 60 seconds, is bound to its client and redirect URI, and needs the PKCE verifier when a
//! challenge was sent, and a proof by the DPoP key it is bound to when it is (RFC 9449 §10). A second
//! redemption revokes what the first one issued (RFC 6749 §4.1.2).

use super::{TokenRequest, UserGrant, UserTokens};
use crate::app::AppState;
use crate::crypto::tokens::TokenHash;
use crate::dpop::Bound;
use crate::oauth::error::OAuthError;
use crate::oauth::refresh::{self, FreshFamily};
use crate::oauth::refresh_store::NewFamily;
use crate::oauth::token::TokenResponse;
use crate::oauth::{pkce, resource, store};
use crate::oidc::claims;

/// Redeems a code for tokens.
pub async fn exchange(
    state: &AppState,
    req: &TokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    let (client, params) = (req.client, req.params);
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = params.get("redirect_uri");
    let verifier = params.get("code_verifier");
    if let Some(v) = verifier
        && !pkce::valid_verifier(v)
    {
        return Err(OAuthError::invalid_request("code_verifier is malformed"));
    }
    let invalid = || OAuthError::invalid_grant("the code is invalid, expired or already used");
    let row = store::find_code(&state.db.pool, &TokenHash::of(code))
        .await?
        .ok_or_else(invalid)?;
    let now = state.clock.now();
    if row.redeemed_at.is_some() {
        revoke_replayed(state, &row).await?;
        return Err(invalid());
    }
    if row.client_id != client.client.id || row.expires_at <= now {
        return Err(invalid());
    }
    if redirect_uri != Some(row.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&row.code_challenge, verifier) {
        (Some(challenge), Some(v)) if pkce::verify_s256(v, challenge) => {}
        (Some(_), _) => return Err(OAuthError::invalid_grant("PKCE verification failed")),
        // RFC 9700 §2.1.1: a verifier without a challenge is refused (PKCE downgrade).
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent but no code_challenge was",
            ));
        }
        (None, None) => {}
    }
    // RFC 9449 §10: a code bound to a key is redeemed only with a proof by that key. Checked before
    // the code is claimed, like PKCE: a request without the key cannot spend the client's code.
    crate::dpop::check_binding(
        Bound::AuthorizationCode,
        row.dpop_jkt.as_deref(),
        req.dpop_jkt,
    )?;
    // RFC 8707 §2.2: the resource of the authorization request, or (without one) any registered
    // resource the token request names; the access token's `aud`.
    let audience = resource::for_token(&client.client, params, row.resource.as_deref())?;
    let user = super::active_user(state, &row.user_id).await?;
    let amr: Vec<String> = serde_json::from_str(&row.amr).unwrap_or_default();
    // The authorization endpoint asks for the second factor an organization requires before it
    // issues a code; checking again here closes the window where the owner turns `require_mfa` on
    // between the code and its redemption; likewise for `sso_required`.
    let org = super::org_claims(state, row.org_id.as_deref(), &user, &amr).await?;
    // Everything that can fail is done before the code is claimed, so that a failure (say, no active
    // key for the client's ID-token alg yet) leaves the code usable for a retry.
    let UserTokens { access, id_token } = super::mint_user_tokens(
        state,
        &UserGrant {
            user: &user,
            client: &client.client,
            scope: &row.scope,
            auth_time: row.auth_time,
            sid: row.session_id.as_deref(),
            nonce: row.nonce.as_deref(),
            amr: &amr,
            org: org.as_ref(),
            resource: audience,
            jkt: req.dpop_jkt,
        },
    )?;
    let family = refresh::should_issue(&client.client, &row.scope).then(FreshFamily::generate);
    // The conditional update decides races: exactly one redemption wins. It is the first statement
    // of the transaction that also stores the refresh-token family, so both happen or neither.
    let mut tx = state.db.begin().await?;
    let family_id = family.as_ref().map(|f| f.id.as_str());
    if !store::claim_code(&mut *tx, &row.code_hash, now, &access.jti, family_id).await? {
        tx.rollback().await?;
        if let Some(current) =
            store::find_code(&state.db.pool, &TokenHash::from_hex(row.code_hash.clone())).await?
        {
            revoke_replayed(state, &current).await?;
        }
        return Err(invalid());
    }
    if let Some(family) = &family {
        let new_family = NewFamily {
            id: &family.id,
            client_id: &client.client.id,
            user_id: &user.id,
            org_id: row.org_id.as_deref(),
            scope: &row.scope,
            session_id: row.session_id.as_deref(),
            offline: claims::has_scope(&row.scope, "offline_access"),
            auth_time: row.auth_time,
            amr: &row.amr,
            created_at: now,
            expires_at: refresh::family_expiry(state, now),
            // The authorization's resource binds the family's refreshes too; a resource named only
            // at this token request was for this one access token.
            resource: row.resource.as_deref(),
            // RFC 9449 §5: a public client's refresh tokens are bound to its proof's key; a
            // confidential client's are already bound to it by client authentication.
            dpop_jkt: req.dpop_jkt.filter(|_| client.client.public),
        };
        refresh::start_family(&mut tx, &new_family, &family.token).await?;
    }
    tx.commit().await?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: req.token_type(),
        expires_in: access.expires_in,
        scope: row.scope,
        id_token,
        refresh_token: family.map(|f| f.token.into_inner()),
    })
}

/// A replayed code: revoke the tokens its first redemption issued.
async fn revoke_replayed(state: &AppState, row: &store::CodeRow) -> Result<(), OAuthError> {
    let now = state.clock.now();
    tracing::warn!(client_id = %row.client_id, "authorization code replayed; revoking what it issued");
    if let Some(jti) = &row.issued_jti {
        let expires_at =
            row.redeemed_at.unwrap_or(now) + crate::clock::secs(state.config.access_token_ttl);
        store::deny_access_token(&state.db.pool, jti, expires_at).await?;
    }
    if let Some(family) = &row.issued_family_id {
        store::revoke_family(&state.db.pool, family, now, "code replay").await?;
    }
    Ok(())
}
