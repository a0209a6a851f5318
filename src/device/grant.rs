//! The device code grant at the token endpoint (RFC 8628 §3.4–3.5): the device polls with its
//! device code until the person answered. The answers, in order: a code unknown, another client's
//! or already redeemed is `invalid_grant`; an expired one `expired_token`; a denied one
//! `access_denied`; a poll sooner than the interval after the last `slow_down` (and the interval
//! grows by 5 seconds); a pending one `authorization_pending`; an approved one the tokens, once.

use super::store::{self, DeviceRow};
use crate::app::AppState;
use crate::crypto::tokens::TokenHash;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::grants::{self, TokenRequest, UserGrant, UserTokens};
use crate::oauth::refresh::{self, FreshFamily};
use crate::oauth::refresh_store::NewFamily;
use crate::oauth::resource;
use crate::oauth::token::TokenResponse;
use crate::oidc::claims;

/// Exchanges a device code for tokens once the person approved it.
pub async fn exchange(
    state: &AppState,
    req: &TokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    let device_code = req
        .params
        .get("device_code")
        .ok_or_else(|| OAuthError::invalid_request("device_code is required"))?;
    // RFC 8707 §2 at the token request, as for the other grants: a registered resource becomes the
    // access token's audience (the device authorization names none).
    let audience = resource::for_token(&req.client.client, req.params, None)?;
    let invalid = || OAuthError::invalid_grant("the device code is invalid or was already used");
    let hash = TokenHash::of(device_code);
    let row = store::find_by_device_code(&state.db.pool, hash.as_str())
        .await?
        .ok_or_else(invalid)?;
    // §3.5 binds the code to the client that asked for it; another client's code reads as unknown.
    if row.client_id != req.client.client.id || row.status == store::REDEEMED {
        return Err(invalid());
    }
    let now = state.clock.now();
    if row.expires_at <= now {
        return Err(OAuthError::new(
            ErrorCode::ExpiredToken,
            "the device code has expired; start again",
        ));
    }
    if row.status == store::DENIED {
        return Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "the user denied the request",
        ));
    }
    if !store::record_poll(&state.db.pool, hash.as_str(), now).await? {
        return Err(OAuthError::new(
            ErrorCode::SlowDown,
            format!(
                "poll at most every {} seconds",
                row.interval + super::POLL_INTERVAL_SECS
            ),
        ));
    }
    if row.status != store::APPROVED {
        return Err(OAuthError::new(
            ErrorCode::AuthorizationPending,
            "the user has not answered yet",
        ));
    }
    issue(state, req, &row, audience, now).await
}

/// The tokens of an approved authorization: what the person approved (user, organization, their
/// session's `auth_time` and `amr`), checked live as a code redemption is.
async fn issue(
    state: &AppState,
    req: &TokenRequest<'_>,
    row: &DeviceRow,
    audience: Option<&str>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let client = &req.client.client;
    let user_id = row.user_id.as_deref().ok_or_else(grants::user_gone)?;
    let user = grants::active_user(state, user_id).await?;
    let amr_json = row.amr.clone().unwrap_or_else(|| "[]".to_owned());
    let amr: Vec<String> = serde_json::from_str(&amr_json).unwrap_or_default();
    let auth_time = row.auth_time.unwrap_or(now);
    // The membership, `require_mfa` and `sso_required` were checked at approval; checking them
    // again closes the window between the approval and the poll, as for codes.
    let org = grants::org_claims(state, row.org_id.as_deref(), &user, &amr).await?;
    // Minted before the claim, so that a signing failure leaves the approval redeemable.
    let UserTokens { access, id_token } = grants::mint_user_tokens(
        state,
        &UserGrant {
            user: &user,
            client,
            scope: &row.scope,
            auth_time,
            // The device's tokens are not tied to the browser session that approved them: ending
            // that session does not sign the TV out (docs/device.md).
            sid: None,
            nonce: None,
            amr: &amr,
            org: org.as_ref(),
            resource: audience,
            jkt: req.dpop_jkt,
        },
    )?;
    let family = refresh::should_issue(client, &row.scope).then(FreshFamily::generate);
    // The conditional update decides races between polls: exactly one redemption wins, in the
    // transaction that also stores the refresh-token family.
    let mut tx = state.db.begin().await?;
    if !store::claim(&mut *tx, &row.device_code_hash).await? {
        tx.rollback().await?;
        return Err(OAuthError::invalid_grant(
            "the device code is invalid or was already used",
        ));
    }
    if let Some(family) = &family {
        let new_family = NewFamily {
            id: &family.id,
            client_id: &client.id,
            user_id: &user.id,
            org_id: row.org_id.as_deref(),
            scope: &row.scope,
            session_id: None,
            offline: claims::has_scope(&row.scope, "offline_access"),
            auth_time,
            amr: &amr_json,
            created_at: now,
            expires_at: refresh::family_expiry(state, now),
            resource: audience,
            // RFC 9449 §5: a public client's refresh tokens are bound to its DPoP key (a
            // confidential client's are bound by its authentication).
            dpop_jkt: if client.public { req.dpop_jkt } else { None },
        };
        refresh::start_family(&mut tx, &new_family, &family.token).await?;
    }
    tx.commit().await?;
    tracing::info!(client_id = %client.id, "device code redeemed");
    Ok(TokenResponse {
        access_token: access.token,
        token_type: req.token_type(),
        expires_in: access.expires_in,
        scope: row.scope.clone(),
        id_token,
        refresh_token: family.map(|f| f.token.into_inner()),
    })
}
