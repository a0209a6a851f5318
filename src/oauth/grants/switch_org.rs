//! Organization switching on the refresh grant (docs/tokens.md "Switching organization"):
//! `grant_type=refresh_token&refresh_token=…&organization=ID_OR_SLUG` gives tokens for another
//! organization the person belongs to, without a new trip through the browser.
//!
//! * The answer starts a NEW refresh-token family for the target organization; the presented token
//!   is not rotated and its family stays valid, so two tabs (or two windows of an app) working in two
//!   organizations never invalidate each other's tokens.
//! * The new family is the same sign-in: user, client, scope (narrowed by `scope` as usual), `sid`,
//!   offline flag, `auth_time`, `amr`, resource and DPoP key are inherited, and its absolute end is
//!   the old family's: switching never extends the lifetime of a sign-in.
//! * The target's policies are checked against that original sign-in (`amr`): `require_mfa` wants
//!   `mfa`, `sso_required` wants `fed` of a member it binds. A third-party client needs the person's
//!   earlier consent for the target organization covering the scope (the consent page names the
//!   organization, so a consent for one is none for another); without it the client must send an
//!   authorization request with `organization=`, which asks.
//! * An unknown organization and one the person is not in get the same `invalid_grant` (RFC 6749
//!   §5.2), so the grant cannot be used to learn which organizations exist.
//! * The switch is recorded in the target organization's audit log.

use super::{TokenRequest, UserGrant, UserTokens};
use crate::accounts::User;
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent};
use crate::oauth::access_token::OrgClaims;
use crate::oauth::error::OAuthError;
use crate::oauth::refresh::{self, FreshFamily};
use crate::oauth::refresh_store::{self, NewFamily, TokenRow};
use crate::oauth::request::MAX_ORGANIZATION_LEN;
use crate::oauth::store;
use crate::oauth::token::TokenResponse;
use crate::oidc::claims;
use crate::orgs;
use crate::orgs::roles::Role;

/// The organization a switch names, with the person's live role there.
#[derive(Debug, Clone)]
pub struct Target {
    /// Organization id.
    pub id: String,
    /// Its slug.
    pub slug: String,
    /// The person's role there now.
    pub role: Role,
    /// Its live `require_mfa`.
    pub require_mfa: bool,
    /// Its live `sso_required`.
    pub sso_required: bool,
}

/// `invalid_grant` for an organization that does not exist or that the person is not in: one
/// answer for both (RFC 6749 §5.2).
fn not_a_member() -> OAuthError {
    OAuthError::invalid_grant("the user is not a member of the requested organization")
}

/// Resolves `named` (an organization id or slug, as `organization` at `/authorize`) among `user`'s
/// memberships.
pub async fn target(state: &AppState, named: &str, user: &User) -> Result<Target, OAuthError> {
    let named = named.trim();
    if named.is_empty() || named.len() > MAX_ORGANIZATION_LEN {
        return Err(OAuthError::invalid_request(
            "organization must be an organization id or slug",
        ));
    }
    let (org, role) = orgs::store::find_org_with_role(&state.db.pool, named, &user.id)
        .await?
        .ok_or_else(not_a_member)?;
    Ok(Target {
        id: org.id,
        slug: org.slug,
        role,
        require_mfa: org.require_mfa,
        sso_required: org.sso_required,
    })
}

/// A switch the refresh grant decided on: the presented token (its family checked alive, its user
/// active) and the organization to switch to.
#[derive(Debug)]
pub struct Switch<'a> {
    /// The presented token and its family.
    pub row: &'a TokenRow,
    /// The presented refresh token.
    pub presented: &'a str,
    /// The scope of the new tokens (the family's, narrowed by the request).
    pub scope: &'a str,
    /// The access token's `aud` when a resource applies (RFC 8707).
    pub audience: Option<&'a str>,
    /// The target organization.
    pub target: Target,
    /// Now.
    pub now: i64,
}

/// Issues tokens for `s.target` in a new family (module doc). Nothing of the old family changes.
pub async fn switch(
    state: &AppState,
    req: &TokenRequest<'_>,
    s: Switch<'_>,
) -> Result<TokenResponse, OAuthError> {
    let Switch {
        row,
        presented,
        scope,
        audience,
        target,
        now,
    } = s;
    let client = &req.client.client;
    let user = &row.user;
    // A rotated token is not the family's current one: the reuse rules of a plain refresh apply
    // (RFC 9700 §4.14.2). Within the grace window it is a concurrent tab's and may still switch;
    // outside it is a replay and revokes the family (and the error ends the switch).
    if row.rotated_at.is_some() {
        refresh::reuse(state, row, presented, now).await?;
    }
    // The target's policies against the original sign-in, as at code redemption.
    super::check_sso_policy(
        state,
        &target.id,
        target.sso_required,
        &user.email,
        &row.amr,
    )
    .await?;
    super::check_org_policy(target.require_mfa, &row.amr)?;
    // A third-party client acts for an organization only with the person's consent for it (the
    // consent page names the organization). Asking is the authorization endpoint's job.
    if !client.first_party {
        let granted =
            store::consented_scopes(&state.db.pool, &user.id, &client.id, Some(&target.id)).await?;
        let covered =
            granted.is_some_and(|g| scope.split(' ').all(|s| g.split(' ').any(|x| x == s)));
        if !covered {
            return Err(OAuthError::invalid_grant(
                "the user has not consented to this client acting for the organization; send an \
                 authorization request with organization",
            ));
        }
    }
    let org = OrgClaims::of_member(target.id.clone(), target.slug.clone(), target.role);
    // Minted before anything is written, so a signing failure leaves nothing behind.
    let UserTokens { access, id_token } = super::mint_user_tokens(
        state,
        &UserGrant {
            user,
            client,
            scope,
            auth_time: row.auth_time,
            sid: row.session_id.as_deref(),
            nonce: None,
            amr: &row.amr,
            org: Some(&org),
            resource: audience,
            jkt: req.dpop_jkt,
        },
    )?;
    let amr = serde_json::to_string(&row.amr).map_err(OAuthError::server_error)?;
    let family = FreshFamily::generate();
    let new_family = NewFamily {
        id: &family.id,
        client_id: &client.id,
        user_id: &user.id,
        org_id: Some(&target.id),
        scope,
        session_id: row.session_id.as_deref(),
        // A narrowed scope without offline_access makes the new family end with the session.
        offline: row.offline && claims::has_scope(scope, "offline_access"),
        auth_time: row.auth_time,
        amr: &amr,
        created_at: now,
        // The old family's absolute end: a switch never extends a sign-in.
        expires_at: row.expires_at,
        resource: row.resource.as_deref(),
        dpop_jkt: row.dpop_jkt.as_deref(),
    };
    // One transaction: the family (only while the old one is not revoked) and its first token.
    let mut tx = state.db.begin().await?;
    if !refresh_store::insert_family_unless_parent_revoked(&mut *tx, &new_family, &row.family_id)
        .await?
    {
        tx.rollback().await?;
        return Err(OAuthError::invalid_grant("the refresh token was revoked"));
    }
    refresh_store::insert_token(&mut *tx, &family.token.hash(), &family.id, 1, now).await?;
    // In the target organization's log: its admins see which applications moved into it.
    audit::record(
        &mut *tx,
        &AuditEvent {
            org_id: Some(&target.id),
            actor: &Actor {
                user_id: Some(user.id.clone()),
                client_id: Some(client.id.clone()),
                meta: Default::default(),
            },
            action: audit::action::ORGANIZATION_SWITCHED,
            target_type: Some("refresh_family"),
            target_id: Some(&family.id),
            details: serde_json::json!({
                "from_org_id": row.org_id,
                "from_family_id": row.family_id,
            }),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: req.token_type(),
        expires_in: access.expires_in,
        scope: scope.to_owned(),
        id_token,
        refresh_token: Some(family.token.into_inner()),
    })
}
