//! Refresh-token families: issuance at code redemption and rotation on every use (RFC 6749 §6,
//! RFC 9700 §4.14.2).
//!
//! * A token is 256 random bits, stored only as SHA-256; every token belongs to a *family* born at one
//!   code redemption. The family carries the client, user, organization, scope, `sid`, `auth_time`, an
//!   absolute end (`LATCHKEY_REFRESH_TOKEN_TTL`) and an idle limit ([`REFRESH_IDLE_LIMIT`]).
//! * Every refresh rotates: the presented token is marked rotated and a successor (generation + 1) is
//!   issued in the same family. A conditional update decides concurrent refreshes: one winner only.
//! * A rotated token presented again within `LATCHKEY_REFRESH_REUSE_GRACE` (concurrent tabs) gets the
//!   *same* successor back, which is stored sealed under the presented token (see [`seal`]); outside
//!   the window it is a replay and the whole family is revoked (RFC 9700 §4.14.2).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::AnyConnection;

use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent};
use crate::clients::{Client, GrantType};
use crate::clock;
use crate::crypto::tokens::{SecretToken, TOKEN_BYTES, TokenHash, new_id, random_token, sha256};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::refresh_store::{self, NewFamily, TokenRow};
use crate::oauth::store;
use crate::oidc::claims;

/// A family unused for this long is dead even before its absolute end (`expires_at`). Thirty days,
/// like Keycloak's default offline-session idle limit; it only bites when `LATCHKEY_REFRESH_TOKEN_TTL`
/// is set longer than that.
pub const REFRESH_IDLE_LIMIT: Duration = Duration::from_secs(30 * 86_400);

/// Domain separation of the one-time pad that seals a successor under its predecessor.
const SUCCESSOR_PAD_CONTEXT: &[u8] = b"latchkey-successor";

/// Why a family was revoked after a replay, as stored in `refresh_families.revoked_reason`.
pub const REUSE_REASON: &str = "refresh token reuse";

/// Whether a code redemption issues a refresh token: the client must be allowed the `refresh_token`
/// grant (it could not use the token otherwise), and either `offline_access` was granted (OIDC Core
/// §11) or the client is first-party.
pub fn should_issue(client: &Client, scope: &str) -> bool {
    client.grant_types.contains(&GrantType::RefreshToken)
        && (claims::has_scope(scope, "offline_access") || client.first_party)
}

/// A family about to be born: its id and its first token.
#[derive(Debug)]
pub struct FreshFamily {
    /// The family id, recorded on the code row so that a code replay revokes the family.
    pub id: String,
    /// The first refresh token (generation 1), handed to the client once.
    pub token: SecretToken,
}

impl FreshFamily {
    /// A new family id and token.
    pub fn generate() -> FreshFamily {
        FreshFamily {
            id: new_id(),
            token: random_token(),
        }
    }
}

/// Stores a family and its first token; run it in the transaction that claims the code.
pub async fn start_family(
    conn: &mut AnyConnection,
    family: &NewFamily<'_>,
    token: &SecretToken,
) -> Result<(), sqlx::Error> {
    refresh_store::insert_family(&mut *conn, family).await?;
    refresh_store::insert_token(&mut *conn, &token.hash(), family.id, 1, family.created_at).await
}

/// The absolute end of a family born now.
pub fn family_expiry(state: &AppState, now: i64) -> i64 {
    now.saturating_add(clock::secs(state.config.refresh_token_ttl))
}

/// Checks that the family of `row` is alive at `now`: not revoked, not past its absolute end, not
/// idle longer than [`REFRESH_IDLE_LIMIT`].
pub fn check_family(row: &TokenRow, now: i64) -> Result<(), OAuthError> {
    if row.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the refresh token was revoked"));
    }
    if row.expires_at <= now || now - row.issued_at > clock::secs(REFRESH_IDLE_LIMIT) {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    Ok(())
}

/// RFC 6749 §6: the requested scope may narrow the family's scope, never widen it. No `scope`
/// parameter means the family's scope.
pub fn narrow_scope(granted: &str, requested: Option<&str>) -> Result<String, OAuthError> {
    let Some(requested) = requested else {
        return Ok(granted.to_owned());
    };
    let mut out: Vec<&str> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !claims::has_scope(granted, s) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("scope {s} exceeds what was originally granted"),
            ));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.is_empty() {
        return Err(OAuthError::new(ErrorCode::InvalidScope, "scope is empty"));
    }
    Ok(out.join(" "))
}

/// The one-time pad of a successor sealed under `presented`: SHA-256("latchkey-successor" ||
/// presented). Only the holder of the presented token can compute it; the database holds only its hash.
fn pad(presented: &str) -> [u8; 32] {
    let mut input = Vec::with_capacity(SUCCESSOR_PAD_CONTEXT.len() + presented.len());
    input.extend_from_slice(SUCCESSOR_PAD_CONTEXT);
    input.extend_from_slice(presented.as_bytes());
    sha256(&input)
}

fn xor_pad(bytes: &[u8], presented: &str) -> Option<String> {
    if bytes.len() != TOKEN_BYTES {
        return None;
    }
    let pad = pad(presented);
    let out: Vec<u8> = bytes.iter().zip(pad.iter()).map(|(a, b)| a ^ b).collect();
    Some(URL_SAFE_NO_PAD.encode(out))
}

/// Seals `successor` under `presented`: base64url of the successor's 32 raw bytes XOR [`pad`]. `None`
/// when the successor is not a 32-byte token.
pub fn seal(presented: &str, successor: &SecretToken) -> Option<String> {
    let raw = URL_SAFE_NO_PAD.decode(successor.expose()).ok()?;
    xor_pad(&raw, presented)
}

/// Opens what [`seal`] made. `None` when `sealed` is malformed.
pub fn unseal(presented: &str, sealed: &str) -> Option<SecretToken> {
    let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    xor_pad(&raw, presented).map(SecretToken::new)
}

/// Exchanges the presented token (found as `row`, its family checked alive) for its successor:
/// rotates it when this caller wins the conditional update, else follows the reuse rules.
pub async fn rotate(
    state: &AppState,
    row: &TokenRow,
    presented: &str,
    now: i64,
) -> Result<SecretToken, OAuthError> {
    if row.rotated_at.is_none() {
        let successor = random_token();
        let sealed = seal(presented, &successor)
            .ok_or_else(|| OAuthError::server_error("cannot seal the successor token"))?;
        // Two autocommit statements and no transaction (the refresh grant is the hot path, and on
        // SQLite every statement is a hand-off to the connection's thread): the successor is
        // inserted first, then the conditional update decides the race. A successor whose
        // predecessor loses the race was never handed out and is deleted; until then nobody knows
        // its value. The idle limit needs no family update: it counts from the newest token's
        // `created_at`.
        let successor_hash = successor.hash();
        let gate = state.db.write_gate().await;
        refresh_store::insert_token(
            &state.db.pool,
            &successor_hash,
            &row.family_id,
            row.generation + 1,
            now,
        )
        .await?;
        if refresh_store::claim_rotation(&state.db.pool, &row.token_hash, now, &sealed).await? {
            return Ok(successor);
        }
        refresh_store::delete_token(&state.db.pool, &successor_hash).await?;
        drop(gate);
        // Lost the race: re-read and follow the reuse rules like any other presentation of a
        // rotated token.
        let current =
            refresh_store::find_token(&state.db.pool, &TokenHash::from_hex(row.token_hash.clone()))
                .await?
                .ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
        return reuse(state, &current, presented, now).await;
    }
    reuse(state, row, presented, now).await
}

/// A rotated token presented again. Within the grace window (strictly positive) and while its
/// successor is still unused, the same successor is returned; otherwise this is a replay (RFC 9700
/// §4.14.2): the family is revoked.
pub(crate) async fn reuse(
    state: &AppState,
    row: &TokenRow,
    presented: &str,
    now: i64,
) -> Result<SecretToken, OAuthError> {
    if row.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the refresh token was revoked"));
    }
    let grace = clock::secs(state.config.refresh_reuse_grace);
    if let (Some(rotated_at), Some(sealed)) = (row.rotated_at, &row.successor_sealed)
        && grace > 0
        && now - rotated_at <= grace
        && let Some(successor) = unseal(presented, sealed)
        && !refresh_store::is_rotated(&state.db.pool, &successor.hash()).await?
    {
        return Ok(successor);
    }
    tracing::warn!(
        client_id = %row.client_id,
        family_id = %row.family_id,
        generation = row.generation,
        "refresh token reused; revoking its family"
    );
    let mut tx = state.db.begin().await?;
    store::revoke_family(&mut *tx, &row.family_id, now, REUSE_REASON).await?;
    audit::record(
        &mut *tx,
        &AuditEvent {
            org_id: row.org_id.as_deref(),
            actor: &Actor {
                user_id: Some(row.user.id.clone()),
                client_id: Some(row.client_id.clone()),
                meta: Default::default(),
            },
            action: audit::action::REFRESH_REUSE_DETECTED,
            target_type: Some("refresh_family"),
            target_id: Some(&row.family_id),
            details: serde_json::json!({ "generation": row.generation }),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    crate::metrics::refresh_token_reuse_detected();
    Err(OAuthError::invalid_grant(
        "the refresh token was already used; its family is revoked",
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_only_with_the_presented_token() {
        let presented = random_token();
        let successor = random_token();
        let sealed = seal(presented.expose(), &successor).unwrap();
        assert_ne!(sealed, successor.expose());
        assert_eq!(unseal(presented.expose(), &sealed).unwrap(), successor);
        let other = random_token();
        assert_ne!(unseal(other.expose(), &sealed).unwrap(), successor);
        assert!(unseal(presented.expose(), "not base64 !").is_none());
        assert!(unseal(presented.expose(), "AAAA").is_none());
    }

    #[test]
    fn scope_may_shrink_but_not_grow() {
        let granted = "openid email offline_access";
        assert_eq!(narrow_scope(granted, None).unwrap(), granted);
        assert_eq!(
            narrow_scope(granted, Some("email openid email")).unwrap(),
            "email openid"
        );
        assert!(narrow_scope(granted, Some("openid profile")).is_err());
        assert!(narrow_scope(granted, Some(" ")).is_err());
    }
}
